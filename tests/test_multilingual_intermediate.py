"""Multilingual intermediate tasks that are not a target's own data (issue 26): SQuAD's
translate-train files (`squad_tt`), PAN-X and UD-POS in several languages; the overlap flag
that marks an intermediate task whose training data hold a target's test sentences (or their
translations); plans that count every language a stage trains on."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from xscale import data as xdata
from xscale.analyze.analysis import build_analysis
from xscale.analyze.questions import answer, data_flags, flags_text, training_data
from xscale.analyze.scores import score_records
from xscale.data import overlap
from xscale.data.layout import FIXTURES_DIR
from xscale.errors import XScaleError
from xscale.graph.expand import trained_languages
from xscale.graph.stage import StageSpec, stage_path
from xscale.stage.finetune import intermediate_overlap, load_train
from xscale.sweep.schema import build_sweep
from xscale.tasks.base import Example
from xscale.tasks.registry import TASKS

TT = "xtreme/squad/translate-train/squad.translate.train.en-{lang}.json"


# --------------------------------------------------------------------------- squad_tt


def test_squad_translate_train_reads_english_from_squad_and_the_rest_from_xtreme_files():
    task = TASKS["squad_tt"]
    assert xdata.available_languages(task, "fixtures", "train") == ["en", "de", "es", "zh"]
    en = xdata.load_examples(task, "train", "en", "fixtures")
    de = xdata.load_examples(task, "train", "de", "fixtures")
    dev = xdata.load_examples(task, "dev", "de", "fixtures")
    squad = xdata.load_examples(TASKS["squad"], "train", "en", "fixtures")
    # English is SQuAD's own training file (less the held-out passages), German its translation
    assert {e.fields["id"] for e in en} <= {e.fields["id"] for e in squad}
    assert all(e.lang == "de" for e in de + dev) and de and dev
    assert len(de) + len(dev) == len(squad)  # one file gives train and held-out dev
    assert not {e.fields["context"] for e in de} & {e.fields["context"] for e in dev}
    assert not {e.fields["question"] for e in de} & {e.fields["question"] for e in en}


def test_squad_translate_train_missing_file_says_where_to_put_it(tmp_path):
    root = tmp_path / "data"
    (root / "intermediate" / "squad").mkdir(parents=True)
    shutil.copy(
        FIXTURES_DIR / "intermediate" / "squad" / "train-v1.1.json",
        root / "intermediate" / "squad" / "train-v1.1.json",
    )
    task = TASKS["squad_tt"]
    assert xdata.available_languages(task, root, "train") == ["en"]
    with pytest.raises(XScaleError) as err:
        xdata.load_examples(task, "train", "de", root)
    msg = str(err.value)
    assert "\n" not in msg and TT.format(lang="de") in msg and "xtreme_translations" in msg
    with pytest.raises(XScaleError, match="no Hugging Face hub copy"):
        xdata.load_examples(task, "train", "de", "hub")


def _sweep(tmp_path, entry, target="xquad"):
    return {
        "name": "ml",
        "output_dir": str(tmp_path / "out"),
        "models": ["tiny-xs"],
        "intermediate_tasks": ["squad", entry],
        "target_tasks": [target],
        "data": {"root": "fixtures"},
    }


@pytest.mark.parametrize(
    "entry",
    [
        {"task": "squad_tt", "languages": ["en", "de", "es", "zh"]},
        {"task": "panx", "languages": ["en", "de", "fr"]},
        {"task": "udpos", "languages": ["en", "zh"]},
    ],
)
def test_new_multilingual_intermediate_tasks_are_accepted_and_bad_languages_refused(
    tmp_path, entry
):
    cfg = build_sweep(_sweep(tmp_path, entry), "ml.yaml")
    (got,) = cfg.multilingual.values()
    assert got.task == entry["task"] and sorted(got.languages) == sorted(entry["languages"])
    bad = {**entry, "languages": [*entry["languages"], "xx"]}
    with pytest.raises(XScaleError, match=r"intermediate_tasks\.1\.languages\.\d"):
        build_sweep(_sweep(tmp_path, bad), "ml.yaml")


def test_tagging_tasks_train_in_every_fixture_language():
    for name in ("panx", "udpos"):
        task = TASKS[name]
        assert xdata.available_languages(task, "fixtures", "train") == [
            "en",
            "de",
            "es",
            "fr",
            "zh",
        ]
        ex = load_train(task, ["de", "zh"], "fixtures", None, None, 0)
        assert {e.lang for e in ex} == {"de", "zh"}


def test_the_report_names_translations_translate_train_and_native_data_in_language():
    assert training_data("xnli") == "translate-train"
    assert training_data("pawsx") == "translate-train"
    assert training_data("panx") == "in-language"
    assert training_data("udpos") == "in-language"


# --------------------------------------------------------------------------- overlap flag


def _ex(**fields) -> Example:
    return Example("g", "en", fields)


def test_overlap_counts_examples_sharing_a_normalized_text():
    keys = overlap.text_keys(
        [_ex(text_a="The cat sat on the mat.", text_b="It rained all day long.", label="x")]
    )
    test = [
        _ex(text_a="the  CAT sat on the mat.", text_b="Something else entirely.", label="x"),
        _ex(text_a="No shared sentence here.", text_b="Nor in this one at all.", label="x"),
        _ex(tokens=["It", "rained", "all", "day", "long."], tags=["O"] * 5),
        _ex(text_a="short", text_b="entailment", label="neutral"),  # < 12 characters: never
    ]
    assert overlap.overlapping(keys, test) == 2
    assert overlap.overlapping(overlap.text_keys([_ex(text="short")]), [_ex(text="short")]) == 0


def test_overlap_keys_round_trip(tmp_path):
    keys = overlap.text_keys([_ex(text=f"sentence number {i} of many") for i in range(50)])
    overlap.write_keys(tmp_path / overlap.KEYS_FILE, keys)
    assert overlap.read_keys(tmp_path / overlap.KEYS_FILE) == keys
    assert overlap.read_keys(tmp_path / "absent.keys") is None


def _chain(tmp_path: Path, root: Path, langs: list[str]) -> SimpleNamespace:
    """An intermediate stage of XNLI in `langs` that wrote its keys, and a target XNLI stage
    below it: the context `intermediate_overlap` reads."""
    out = tmp_path / "out"
    inter = StageSpec(
        kind="intermediate",
        model="tiny-xs",
        task="xnli",
        intermediate_task="xnli@" + "+".join(langs),
        train_languages="+".join(langs),
        data_root=str(root),
        deepspeed_config="cpu_zero2.json",
    )
    folder = stage_path(out, inter.key)
    folder.mkdir(parents=True)
    (folder / "spec.json").write_text(json.dumps(inter.model_dump(mode="json")))
    trained = load_train(TASKS["xnli"], langs, str(root), None, None, 0)
    overlap.write_keys(folder / overlap.KEYS_FILE, overlap.text_keys(trained))
    target = StageSpec(
        kind="target",
        model="tiny-xs",
        task="xnli",
        intermediate_task=inter.intermediate_task,
        target_task="xnli",
        data_root=str(root),
        deepspeed_config="cpu_zero2.json",
        parent=inter.key,
    )
    return SimpleNamespace(spec=target, output_dir=out)


def _write_xnli(root: Path, langs=("en", "de", "zh")) -> Path:
    """A small XNLI folder whose every sentence is unique to its split, language and row."""
    folder = root / "xtreme" / "xnli"
    folder.mkdir(parents=True)
    for split, n in (("train", 30), ("dev", 10), ("test", 20)):
        for lang in langs:
            rows = [
                f"premise {i} of the {split} file in {lang}\t"
                f"hypothesis {i} of the {split} file in {lang}\tentailment"
                for i in range(n)
            ]
            (folder / f"{split}-{lang}.tsv").write_text("\n".join(rows) + "\n")
    return folder


def test_the_overlap_flag_fires_on_an_intermediate_task_holding_test_sentences(tmp_path):
    clean_root = tmp_path / "clean-data"
    _write_xnli(clean_root)
    clean = _chain(tmp_path / "clean", clean_root, ["en", "de"])
    got = intermediate_overlap(clean, TASKS["xnli"], ["en", "de", "zh"])
    assert got == {"overlap.test_examples": 0, "overlap.en": 0, "overlap.de": 0, "overlap.zh": 0}
    # the constructed pair: three German test rows in the German training file, and the
    # hypothesis (only) of an English test row in the English one
    root = tmp_path / "data"
    folder = _write_xnli(root)
    test_de = (folder / "test-de.tsv").read_text().split("\n")
    with open(folder / "train-de.tsv", "a") as f:
        f.write("\n".join(test_de[:3]) + "\n")
    with open(folder / "train-en.tsv", "a") as f:
        f.write("an unrelated premise\thypothesis 10 of the TEST file  in en\tneutral\n")
    ctx = _chain(tmp_path / "leaky", root, ["en", "de"])
    got = intermediate_overlap(ctx, TASKS["xnli"], ["en", "de", "zh"])
    assert got == {"overlap.test_examples": 4, "overlap.en": 1, "overlap.de": 3, "overlap.zh": 0}
    # a target without an intermediate stage has nothing to compare
    alone = SimpleNamespace(spec=StageSpec(**{**ctx.spec.model_dump(), "parent": None}))
    assert intermediate_overlap(alone, TASKS["xnli"], ["en"]) == {}


def _record(size, inter, seed, score, data, shared=None):
    metrics = {"xnli.en.accuracy": score + 10, "xnli.de.accuracy": score}
    if shared is not None:
        metrics["overlap.test_examples"] = shared
    return {
        "run_id": f"{size}-{inter}-{seed}",
        "params": {
            "stage_kind": "target",
            "model_size": size,
            "intermediate_task": inter,
            "target_task": "xnli",
            "train_languages": "en",
            "seed": seed,
            "intermediate_languages": "en" if "@" not in inter else "de+en",
            "intermediate_data": data,
        },
        "metrics": metrics,
    }


def test_the_report_flags_own_data_and_shared_test_sentences():
    records = []
    for size, base in (("tiny-xs", 50.0), ("tiny-s", 60.0)):
        for seed in (0, 1, 2):
            records.append(_record(size, "panx", seed, base + seed, "panx", 0))
            records.append(_record(size, "panx@de+en", seed, base + 2 + seed, "panx", 7))
            records.append(_record(size, "xnli@de+en", seed, base + 5 + seed, "xnli", 0))
            records.append(_record(size, "mnli", seed, base + 1 + seed, "mnli", 0))
    scored = score_records(records, main_metrics={"xnli": "accuracy"})
    rows = data_flags(scored)
    by = {r["intermediate_task"]: r for r in rows}
    # the clean English panx is not flagged; MNLI is: XNLI's English training set is MNLI's
    assert set(by) == {"panx@de+en", "xnli@de+en", "mnli"}
    assert by["xnli@de+en"]["relation"] == "the target's own training data"
    assert by["mnli"]["relation"] == "the target's training data (mnli)"
    assert by["panx@de+en"]["shared_test_examples"] == 7 and not by["panx@de+en"]["relation"]
    text = flags_text(rows)
    assert "xnli@de+en before xnli (the target's own training data)" in text
    assert "7 test examples share a text" in text
    analysis = build_analysis(records, main_metrics={"xnli": "accuracy"})
    assert analysis.tables["intermediate_data_flags"] == rows
    assert analysis.tables["multilingual_vs_english"]  # multilingual beside English: answered
    q2 = answer(2, analysis.tables, analysis.scored)
    assert q2.startswith("Not on XQuAD") and "Flagged, not a clean contrast: " in q2


# --------------------------------------------------------------------------- plans


def test_plans_count_every_language_a_stage_trains_on():
    assert trained_languages({"task": "xnli", "train_languages": "en"}) == (1, 1)
    assert trained_languages({"task": "squad_tt", "train_languages": "de+en+zh"}) == (3, 1)
    assert trained_languages({"task": "xnli", "train_languages": "all"}) == (15, 1)
    langs = ("en", "de", "zh")
    assert trained_languages(
        {"task": "panx", "train_languages": "in-language", "eval_languages": langs}
    ) == (1, 3)
    assert trained_languages({"task": "panx", "train_languages": "in-language"}) == (1, 40)


def test_an_in_language_stage_costs_a_model_per_language(tmp_path):
    from xscale.graph.expand import expand

    raw = {
        "name": "c",
        "output_dir": str(tmp_path / "out"),
        "models": ["xlmr-base"],
        "intermediate_tasks": ["none"],
        "target_tasks": ["panx"],
        "train_languages": ["en", "in-language"],
        "eval_languages": {"panx": ["en", "de", "zh"]},
        "data": {"root": "hub"},
    }
    graph = expand(build_sweep(raw, "c.yaml"))
    steps = {g.base["train_languages"]: g.steps for g in graph.groups.values()}
    assert steps["in-language"] == 3 * steps["en"] > 0
