"""Data loading: fixtures, the real XTREME/GLUE/ANLI files in ../shared/data, hub, and errors."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from collections import Counter
from pathlib import Path

import pytest

from xscale import data
from xscale.data import FIXTURES, HUB, available_languages, load_examples, resolve_root
from xscale.errors import XScaleError
from xscale.tasks.registry import NLI_LABELS, TASKS, XNLI_LANGUAGES, get_task

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
shared_data = pytest.mark.skipif(
    not SHARED.exists(), reason="../shared/data not present (real XTREME files); CI always has it"
)

XNLI = get_task("xnli")
PAWSX = get_task("pawsx")
MNLI = get_task("mnli")
ANLI = get_task("anli")
SST2 = get_task("sst2")
FIXTURE_LANGS = {"xnli": ["en", "de", "es", "fr", "zh"], "pawsx": ["en", "de", "es", "fr"]}


def row_index(example) -> int:
    return int(example.guid.rsplit("-", 1)[1])


def pairs(examples) -> set[tuple[str, str]]:
    return {(e.fields["text_a"], e.fields["text_b"]) for e in examples}


# --- registry ---------------------------------------------------------------------------------
def test_registry_tasks():
    assert set(TASKS) >= {"mnli", "anli", "sst2", "xnli", "pawsx"}
    assert XNLI.languages[0] == "en" and len(XNLI.languages) == 15 == len(set(XNLI.languages))
    assert set(PAWSX.languages) == {"en", "de", "es", "fr", "ja", "ko", "zh"}
    assert SST2.format == "single_classification" and SST2.labels == ("0", "1")
    assert {t.metric for t in TASKS.values()} == {"accuracy", "f1", "map_at_20"}
    # XTREME-R reports its two dual-encoder retrieval tasks as mAP@20
    assert {t.name for t in TASKS.values() if t.metric == "map_at_20"} == {"lareqa", "mewslix"}
    assert "target" in XNLI.roles and "intermediate" in MNLI.roles
    assert ANLI.hub.splits == {"train": "train_r1", "dev": "dev_r1", "test": "test_r1"}


def test_unknown_task_names_it_and_known_ones():
    with pytest.raises(XScaleError, match=r"unknown task 'xnlii'.*mnli.*xnli"):
        get_task("xnlii")


# --- fixtures ---------------------------------------------------------------------------------
def test_resolve_root():
    assert resolve_root(FIXTURES) == data.FIXTURES_DIR and data.FIXTURES_DIR.is_dir()
    assert resolve_root(HUB) == HUB
    assert resolve_root(str(REPO)) == REPO
    with pytest.raises(XScaleError, match="no-such-folder"):
        resolve_root(REPO / "no-such-folder")


@pytest.mark.parametrize(
    "task, sizes",
    [
        (XNLI, {"train": 800, "dev": 150, "test": 250}),
        (PAWSX, {"train": 600, "dev": 150, "test": 250}),
    ],
)
def test_fixture_target_tasks_are_parallel_and_balanced(task, sizes):
    for split, n in sizes.items():
        langs = available_languages(task, FIXTURES, split)
        assert langs == FIXTURE_LANGS[task.name]
        by_lang = {lang: load_examples(task, split, lang, FIXTURES) for lang in langs}
        en = by_lang["en"]
        assert len(en) == n
        counts = Counter(e.fields["label"] for e in en)
        assert set(counts) == set(task.labels)
        assert min(counts.values()) >= n // len(task.labels) - 1
        for lang, exs in by_lang.items():
            assert [e.lang for e in exs] == [lang] * n
            assert [row_index(e) for e in exs] == list(range(n))
            assert [e.fields["label"] for e in exs] == [e.fields["label"] for e in en]
            if lang in ("es", "fr"):  # a translation: other words, the same people
                names = 0
                for x, y in zip(en, exs):
                    assert x.fields["text_a"] != y.fields["text_a"]
                    for text in (y.fields["text_a"], y.fields["text_b"]):
                        for name in re.findall(r"(?<=\s)[A-Z][a-z]+", text):
                            names += 1
                            assert name in x.fields["text_a"] + x.fields["text_b"], (x, y)
                assert names >= n // 20


def test_fixture_intermediate_tasks():
    sizes = [(MNLI, "train", 800), (MNLI, "dev", 200), (ANLI, "train", 500), (ANLI, "dev", 150)]
    sizes += [(SST2, "train", 600), (SST2, "dev", 150)]
    for task, split, n in sizes:
        assert available_languages(task, FIXTURES, split) == ["en"]
        exs = load_examples(task, split, "en", FIXTURES)
        assert len(exs) == n, (task.name, split)
        assert set(Counter(e.fields["label"] for e in exs)) == set(task.labels)
        keys = {"text", "label"} if task is SST2 else {"text_a", "text_b", "label"}
        assert all(set(e.fields) == keys and all(e.fields.values()) for e in exs)
    assert available_languages(MNLI, FIXTURES, "test") == []
    # XNLI's English train set and MNLI share no pair; no fixture NLI dev/test pair is trained on
    xnli_train = pairs(load_examples(XNLI, "train", "en", FIXTURES))
    assert not xnli_train & pairs(load_examples(MNLI, "train", "en", FIXTURES))
    assert not xnli_train & pairs(load_examples(XNLI, "test", "en", FIXTURES))


def test_fixture_limit_keeps_the_first_examples():
    full = load_examples(XNLI, "dev", "de", FIXTURES)
    assert load_examples(XNLI, "dev", "de", FIXTURES, limit=7) == full[:7]


def test_fixture_pretrain_text_is_parallel_and_fills_a_2000_vocab(tmp_path):
    files = [data.FIXTURES_DIR / "pretrain" / f"{lang}.txt" for lang in FIXTURE_LANGS["xnli"]]
    counts = [len(f.read_text(encoding="utf-8").split("\n")) - 1 for f in files]
    assert len(set(counts)) == 1 and counts[0] > 2800  # parallel; 3000 minus held-out rows
    from tokenizers.implementations import SentencePieceUnigramTokenizer

    tok = SentencePieceUnigramTokenizer()
    special = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    tok.train([str(f) for f in files], 2000, special_tokens=special, unk_token="<unk>")
    assert tok.get_vocab_size() == 2000


def test_fixture_pretraining_text_holds_no_evaluation_sentence():
    """No dev/test sentence of any task (in any language) is in the pretraining text, so a
    tiny model never sees a test sentence or its translation before it is evaluated on it."""
    spec = importlib.util.spec_from_file_location("mf", REPO / "scripts/make_fixtures.py")
    gen = importlib.util.module_from_spec(spec)
    sys.modules["mf"] = gen
    try:
        spec.loader.exec_module(gen)
        held_out = gen.evaluation_sentences(data.FIXTURES_DIR)
    finally:
        del sys.modules["mf"]
    rows = load_examples(XNLI, "test", "de", FIXTURES)
    assert gen.text_key(rows[0].fields["text_a"]) in held_out  # the check sees test sentences
    assert len(held_out) > 3000
    for lang in FIXTURE_LANGS["xnli"]:
        lines = (data.FIXTURES_DIR / "pretrain" / f"{lang}.txt").read_text().split("\n")
        leaked = [x for x in lines if x and gen.text_key(x) in held_out]
        assert leaked == [], (lang, leaked[:3])


def test_fixtures_are_what_the_generator_writes_and_small(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location(
        "make_fixtures", REPO / "scripts/make_fixtures.py"
    )
    gen = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "make_fixtures", gen)  # dataclasses look their module up
    spec.loader.exec_module(gen)
    gen.main(["--out", str(tmp_path), "--seed", "0"])
    shipped = {
        p.relative_to(data.FIXTURES_DIR) for p in data.FIXTURES_DIR.rglob("*") if p.is_file()
    }
    made = {p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file()}
    assert shipped == made
    for rel in made:
        assert (tmp_path / rel).read_bytes() == (data.FIXTURES_DIR / rel).read_bytes(), rel
    # small enough to ship in the package (3.65 MB with Mewsli-X's release-schema jsonl and
    # the multilingual training files of PAN-X, UD-POS and SQuAD translate-train)
    assert sum((tmp_path / rel).stat().st_size for rel in made) < 4_000_000
    gen.main(["--out", str(tmp_path / "other"), "--seed", "1"])
    other = (tmp_path / "other/xtreme/xnli/dev-en.tsv").read_bytes()
    assert other != (tmp_path / "xtreme/xnli/dev-en.tsv").read_bytes()


# --- the real files in ../shared/data -------------------------------------------------------
@shared_data
def test_real_xnli_group_split():
    langs = available_languages(XNLI, SHARED, "dev")
    assert langs == ["en", "de", "es", "fr", "zh"]
    assert available_languages(XNLI, SHARED, "train") == langs
    # 2490 rows in 830 premise triplets, each triplet in one split (bucket of its first row)
    sizes = {"train": 1494, "dev": 249, "test": 747}
    assert sum(sizes.values()) == 2490
    split_rows = {}
    for split, n in sizes.items():
        by_lang = {lang: load_examples(XNLI, split, lang, SHARED) for lang in langs}
        en = by_lang["en"]
        assert len(en) == n
        assert {e.fields["label"] for e in en} == set(NLI_LABELS)
        split_rows[split] = {row_index(e) for e in en}
        assert {(i - i % 3) % 10 for i in split_rows[split]} == set(data.BUCKETS[split])
        for exs in by_lang.values():  # parallel: same rows and labels in every language
            assert [row_index(e) for e in exs] == [row_index(e) for e in en]
            assert [e.fields["label"] for e in exs] == [e.fields["label"] for e in en]
        assert by_lang["zh"][0].fields["text_a"] != en[0].fields["text_a"]
    assert not split_rows["train"] & split_rows["test"]
    assert not split_rows["train"] & split_rows["dev"]
    assert len(set.union(*split_rows.values())) == 2490
    train, test = (load_examples(XNLI, s, "en", SHARED) for s in ("train", "test"))
    assert not pairs(train) & pairs(test)
    assert "Mama" in train[0].fields["text_a"] and train[0].fields["label"] == "neutral"


@shared_data
def test_real_pawsx_group_split():
    assert available_languages(PAWSX, SHARED, "test") == ["en", "de", "es", "fr"]
    # 2000 rows; rows sharing a sentence in any language are grouped, so the split is not
    # exactly 6:1:3 (1234 / 179 / 587 when only English sentences grouped)
    for split, n in {"train": 1229, "dev": 183, "test": 588}.items():
        for lang in ("en", "fr"):
            exs = load_examples(PAWSX, split, lang, SHARED)
            assert len(exs) == n
            assert {e.fields["label"] for e in exs} == {"0", "1"}
            assert not any(e.fields["text_b"].endswith("\r") for e in exs)


@shared_data
@pytest.mark.parametrize("task", [XNLI, PAWSX], ids=["xnli", "pawsx"])
def test_no_english_test_sentence_is_in_training_or_selection_rows(task):
    """Before the group split, 332 of 747 XNLI test rows shared their premise verbatim with a
    training row (and 175 of 600 PAWS-X test rows their sentence1); their translations are the
    other languages' test rows."""
    norm = " ".join
    seen = set()
    for split in ("train", "dev"):
        for e in load_examples(task, split, "en", SHARED):
            seen |= {norm(e.fields[k].split()) for k in ("text_a", "text_b")}
    test = load_examples(task, "test", "en", SHARED)
    leaked = [e for e in test if {norm(e.fields[k].split()) for k in ("text_a", "text_b")} & seen]
    assert len(test) > 500 and leaked == []
    for lang in available_languages(task, SHARED, "test"):  # translations: the same rows
        rows = [row_index(e) for e in load_examples(task, "test", lang, SHARED)]
        assert rows == [row_index(e) for e in test]


@shared_data
def test_real_anli_csv_with_quoted_newlines_is_the_dev_split():
    raw = (SHARED / "intermediate/anli/ANLI_analysis_r1_dev.csv").read_text(encoding="utf-8")
    assert raw.count("\n") > 1001  # some records span several lines
    assert available_languages(ANLI, SHARED, "dev") == ["en"]
    assert available_languages(ANLI, SHARED, "train") == []
    exs = load_examples(ANLI, "dev", "en", SHARED)
    assert len(exs) == 1000
    assert Counter(e.fields["label"] for e in exs) == {
        "entailment": 334,
        "contradiction": 333,
        "neutral": 333,
    }
    assert exs[0].fields["text_a"].startswith("Linguistics is the scientific study")
    with pytest.raises(XScaleError, match=r"anli.*R1/train\.jsonl"):
        load_examples(ANLI, "train", "en", SHARED)


@shared_data
def test_real_sst2_text_label_header():
    exs = load_examples(SST2, "dev", "en", SHARED)
    assert len(exs) == 872
    assert Counter(e.fields["label"] for e in exs) == {"1": 444, "0": 428}
    assert exs[0].fields == {"text": "it 's a charming and often affecting journey .", "label": "1"}


@shared_data
def test_real_language_missing_from_root_names_available_ones():
    assert "ar" in XNLI_LANGUAGES
    with pytest.raises(XScaleError, match=r"'ar'.*dev-ar\.tsv.*available: en, de, es, fr, zh"):
        load_examples(XNLI, "test", "ar", SHARED)


# --- local layouts and their errors -------------------------------------------------------
def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def xnli_rows(n: int) -> str:
    return "".join(f"p{i}\th{i}\t{NLI_LABELS[i % 3]}\r\n" for i in range(n))


def test_group_split_keeps_rows_sharing_a_sentence_together(tmp_path):
    # rows 0-2 share a premise (bucket of row 0: train); row 7 reuses row 13's hypothesis, so
    # 7 and 13 are one group in bucket 7 (test); row 16 repeats row 6's premise (dev)
    rows = [(f"p{i}", f"h{i}") for i in range(20)]
    rows[1] = rows[2] = ("p0", "h1b")
    rows[7] = ("p7", "shared")
    rows[13] = ("p13", "shared")
    rows[16] = ("p6", "h16")
    lines = [f"{a}\t{b}\t{NLI_LABELS[0]}" for a, b in rows]
    write(tmp_path / "xtreme/xnli/dev-en.tsv", "".join(f"{x}\n" for x in lines))
    write(tmp_path / "xtreme/xnli/dev-sw.tsv", "".join(f"sw-{x}\n" for x in lines))
    for lang in ("en", "sw"):  # the groups come from English, in every language
        got = {
            s: [row_index(e) for e in load_examples(XNLI, s, lang, tmp_path)] for s in data.SPLITS
        }
        assert got["train"] == [0, 1, 2, 3, 4, 5, 10, 11, 12, 14, 15]
        assert got["dev"] == [6, 16]
        assert got["test"] == [7, 8, 9, 13, 17, 18, 19]


def test_row_index_split_on_a_dev_only_folder(tmp_path):
    write(tmp_path / "xtreme/xnli/dev-en.tsv", xnli_rows(25))
    write(tmp_path / "xtreme/xnli/dev-sw.tsv", xnli_rows(25))
    assert available_languages(XNLI, tmp_path, "test") == ["en", "sw"]
    got = {
        s: [e.fields["text_a"] for e in load_examples(XNLI, s, "sw", tmp_path)] for s in data.SPLITS
    }
    assert got["dev"] == ["p6", "p16"]
    assert got["test"] == ["p7", "p8", "p9", "p17", "p18", "p19"]
    assert got["train"] == [f"p{i}" for i in range(25) if i % 10 < 6]
    assert load_examples(XNLI, "dev", "en", tmp_path)[0].fields["label"] == NLI_LABELS[0]


def test_full_split_files_are_used_as_they_are(tmp_path):
    write(tmp_path / "xtreme/xnli/train-en.tsv", xnli_rows(4))
    write(tmp_path / "xtreme/xnli/dev-de.tsv", xnli_rows(12))
    write(tmp_path / "xtreme/xnli/test-de.tsv", xnli_rows(3))
    assert len(load_examples(XNLI, "dev", "de", tmp_path)) == 12
    assert len(load_examples(XNLI, "test", "de", tmp_path)) == 3
    assert available_languages(XNLI, tmp_path, "train") == ["en"]
    with pytest.raises(XScaleError, match=r"no train data for language 'de'.*available: en"):
        load_examples(XNLI, "train", "de", tmp_path)


def test_pawsx_line_separator_inside_text_is_not_a_row_break(tmp_path):
    text = "Erste Zeile\u2028zweite Zeile\tEin Satz\t1\nA\tB\t0\n"
    write(tmp_path / "xtreme/pawsx/train-ko.tsv", text)
    write(tmp_path / "xtreme/pawsx/test-ko.tsv", text)
    exs = load_examples(PAWSX, "train", "ko", tmp_path)
    assert [e.fields["label"] for e in exs] == ["1", "0"]
    assert exs[0].fields["text_a"] == "Erste Zeile\u2028zweite Zeile"


def test_malformed_rows_name_file_and_line(tmp_path):
    bad = write(tmp_path / "xtreme/xnli/dev-en.tsv", "a\tb\tneutral\n\nc\td\n")
    with pytest.raises(XScaleError) as err:
        load_examples(XNLI, "test", "en", tmp_path)  # every row is checked, whatever the split
    assert f"{bad}:3" in str(err.value) and "expected 3" in str(err.value)
    write(tmp_path / "xtreme/pawsx/dev-en.tsv", "a\tb\t1\nc\td\tyes\n")
    with pytest.raises(XScaleError, match=r"dev-en\.tsv:2: unknown label 'yes'.*pawsx"):
        load_examples(PAWSX, "train", "en", tmp_path)


def test_malformed_intermediate_files(tmp_path):
    header = "index\tsentence1\tsentence2\tgold_label\n"
    write(tmp_path / "intermediate/mnli/train.tsv", header + '0\t"a\tb\tneutral\n1\tc\td\n')
    with pytest.raises(
        XScaleError, match=r"train\.tsv:3: expected 4 tab-separated columns, found 3"
    ):
        load_examples(MNLI, "train", "en", tmp_path)
    write(
        tmp_path / "intermediate/mnli/dev_matched.tsv",
        header + '0\t"a\tb "x\tneutral\n1\tc\td\t-\n',
    )
    exs = load_examples(MNLI, "dev", "en", tmp_path)  # quotes are text; "-" rows are skipped
    assert [e.fields for e in exs] == [{"text_a": '"a', "text_b": 'b "x', "label": "neutral"}]
    write(tmp_path / "intermediate/mnli/dev_mismatched.tsv", "sentence1\tsentence2\tlabel\n")
    with pytest.raises(
        XScaleError, match=r"dev_mismatched\.tsv:1: header lacks column\(s\) gold_label"
    ):
        load_examples(MNLI, "test", "en", tmp_path)
    rec = {"uid": "u", "context": "c", "hypothesis": "h", "label": "e"}
    write(
        tmp_path / "intermediate/anli/R1/dev.jsonl",
        json.dumps(rec) + "\n" + json.dumps(rec | {"label": "x"}),
    )
    with pytest.raises(XScaleError, match=r"dev\.jsonl:2: unknown label 'x'"):
        load_examples(ANLI, "dev", "en", tmp_path)
    write(tmp_path / "intermediate/sst2/train.tsv", "text\tlabel\ngood .\t1\nbad .\t0\nmeh\t2\n")
    with pytest.raises(XScaleError, match=r"train\.tsv:4: unknown label '2'"):
        load_examples(SST2, "train", "en", tmp_path)


def test_tydiqa_selects_on_passages_held_out_of_its_training_file(tmp_path):
    """The English dev split (model selection) is whole passages of the train file; the scored
    test split is the dev file, never used for selection."""
    import json

    def squad(n_passages: int, prefix: str) -> dict:
        paragraphs = []
        for p in range(n_passages):
            context = f"{prefix} passage {p} says the answer is here."
            qas = [
                {
                    "id": f"{prefix}-{p}-{q}",
                    "question": f"q{q}?",
                    "answers": [{"text": "answer", "answer_start": context.index("answer")}],
                }
                for q in range(3)
            ]
            paragraphs.append({"context": context, "qas": qas})
        return {"version": "1.1", "data": [{"title": prefix, "paragraphs": paragraphs}]}

    train = tmp_path / "xtreme/tydiqa/tydiqa-goldp-v1.1-train/tydiqa.goldp.en.train.json"
    test = tmp_path / "xtreme/tydiqa/tydiqa-goldp-v1.1-dev/tydiqa.goldp.en.dev.json"
    write(train, json.dumps(squad(40, "train")))
    write(test, json.dumps(squad(5, "test")))
    tydiqa = get_task("tydiqa")
    got = {s: load_examples(tydiqa, s, "en", tmp_path) for s in data.SPLITS}
    passages = {s: {e.fields["context"] for e in exs} for s, exs in got.items()}
    assert len(got["train"]) + len(got["dev"]) == 120  # every training question, once
    # passage p's questions are rows 3p..3p+2: dev when 3p = 6 mod 10 (p = 2, 12, 22, 32)
    assert passages["dev"] == {
        f"train passage {p} says the answer is here." for p in (2, 12, 22, 32)
    }
    assert not passages["train"] & passages["dev"]
    assert all(c.startswith("test") for c in passages["test"]) and len(got["test"]) == 15


def test_missing_file_names_path_and_task(tmp_path):
    (tmp_path / "intermediate/sst2").mkdir(parents=True)
    with pytest.raises(XScaleError, match=r"task sst2: missing data file .*sst2/dev\.tsv"):
        load_examples(SST2, "dev", "en", tmp_path)
    with pytest.raises(XScaleError, match=r"task xnli: missing data file .*xnli/dev-en\.tsv"):
        load_examples(XNLI, "dev", "en", tmp_path)
    assert available_languages(XNLI, tmp_path, "dev") == []


def test_unknown_language_and_split():
    with pytest.raises(XScaleError, match=r"task xnli has no language 'xx'; its languages: en, ar"):
        load_examples(XNLI, "dev", "xx", FIXTURES)
    with pytest.raises(XScaleError, match=r"task sst2 has no language 'de'"):
        load_examples(SST2, "dev", "de", FIXTURES)
    with pytest.raises(XScaleError, match=r"unknown split 'validation'"):
        load_examples(XNLI, "validation", "en", FIXTURES)


# --- hub ----------------------------------------------------------------------------------------
def test_hub_maps_columns_and_int_labels(monkeypatch):
    import datasets

    calls = []

    def fake_load_dataset(path, name=None, split=None):
        calls.append((path, name, split))
        return [
            {"premise": "P0", "hypothesis": "H0", "label": 2},
            {"premise": "P1", "hypothesis": "H1", "label": 0},
        ]

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    exs = load_examples(XNLI, "dev", "de", HUB, limit=5)
    assert calls == [("facebook/xnli", "de", "validation[:5]")]
    assert [e.fields for e in exs] == [
        {"text_a": "P0", "text_b": "H0", "label": "contradiction"},
        {"text_a": "P1", "text_b": "H1", "label": "entailment"},
    ]
    assert {e.lang for e in exs} == {"de"}
    load_examples(ANLI, "train", "en", HUB)
    assert calls[-1] == ("facebook/anli", None, "train_r1")
    assert available_languages(PAWSX, HUB, "test") == list(PAWSX.languages)


def test_hub_rejects_hidden_test_labels(monkeypatch):
    import datasets

    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: [{"sentence": "s", "label": -1}])
    with pytest.raises(XScaleError, match=r"label -1 is not a gold label"):
        load_examples(SST2, "dev", "en", HUB)


def test_hub_failure_is_one_line_naming_the_dataset(monkeypatch):
    import datasets

    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'google-research-datasets/paws-x'\n(offline mode)")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(XScaleError) as err:
        load_examples(PAWSX, "train", "fr", HUB)
    msg = str(err.value)
    assert "\n" not in msg
    assert "google-research-datasets/paws-x (fr)" in msg and "ConnectionError" in msg
    assert "local folder in XTREME download layout" in msg


def _sentences(examples) -> set[str]:
    return {s for e in examples for s in (e.fields["text_a"], e.fields["text_b"]) if s != "NS"}


@pytest.mark.shared_data
@pytest.mark.parametrize("task", ["pawsx", "xnli"])
def test_no_test_sentence_of_any_language_is_trained_on(task):
    """The group split of the real dev files: a sentence in any language's test rows never
    appears in that language's train or dev rows (PAWS-X's translations repeat sentences the
    English file does not: de 21, es 18, fr 4 test rows overlapped when only English grouped)."""
    from conftest import SHARED_DATA, SHARED_DATA_REASON

    if not SHARED_DATA.is_dir():
        pytest.skip(SHARED_DATA_REASON)
    t = get_task(task)
    for lang in available_languages(t, SHARED_DATA, "test"):
        seen = _sentences(
            load_examples(t, "train", lang, SHARED_DATA)
            + load_examples(t, "dev", lang, SHARED_DATA)
        )
        test = load_examples(t, "test", lang, SHARED_DATA)
        assert test and not _sentences(test) & seen, lang


def test_split_groups_join_rows_a_translation_repeats_and_never_on_a_placeholder(tmp_path):
    """Rows 0 and 13 differ in English but share a German sentence: one group, so row 13 takes
    row 0's bucket (0, train) instead of its own (3). Rows untranslated in German ("NS") are
    not grouped by that marker."""
    from xscale.data.xtreme import split_buckets

    folder = tmp_path / "xtreme" / "pawsx"
    folder.mkdir(parents=True)
    en = [f"english a{i}\tenglish b{i}\t{i % 2}" for i in range(30)]
    de = [f"deutsch a{i}\tdeutsch b{i}\t{i % 2}" for i in range(30)]
    de[13] = "deutsch a0\tanders\t0"  # a sentence of row 0, again in row 13
    for i in (3, 4, 5, 7, 8, 9):
        de[i] = f"NS\tdeutsch b{i}\t0"
    (folder / "dev-en.tsv").write_text("\n".join(en) + "\n")
    (folder / "dev-de.tsv").write_text("\n".join(de) + "\n")
    buckets = split_buckets(get_task("pawsx"), folder, "en", 30)
    assert buckets[13] == buckets[0] == 0
    from xscale.data.rows import _groups
    from xscale.data.xtreme import _pair_sentences

    rows = [a + b for a, b in zip(_pair_sentences(folder / "dev-en.tsv"),
                                  _pair_sentences(folder / "dev-de.tsv"))]  # fmt: skip
    first = _groups(rows)
    assert first[13] == 0 and first[3] == 3 and first[4] == 4  # NS rows stay apart
