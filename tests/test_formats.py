"""Task formats (span QA, tagging, multiple choice, retrieval) end to end on a tiny random model,
and loading every new fixture and the real files in ../shared/data."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from xscale import data
from xscale.data import FIXTURES, HUB, available_languages, load_examples
from xscale.data.rows import held_out_split
from xscale.errors import XScaleError
from xscale.stage.finetune import MultiTaskModel
from xscale.tasks import Example, get_format
from xscale.tasks.registry import PANX_TAGS, TASKS, UPOS_TAGS, get_task
from xscale.tasks.retrieval import default_layer, task_defaults
from xscale.tasks.span_qa import SpanQAFormat
from xscale.tasks.tagging import IGNORE
from xscale.train.model import load_tokenizer

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
shared_data = pytest.mark.skipif(
    not SHARED.is_dir(), reason="../shared/data not present (real XTREME files); CI always has it"
)
HIDDEN = 32


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    """A tiny size's XLM-R-style tokenizer trained on the fixture pretraining text (~2 s)."""
    from xscale.catalog.sizes import TINY_VOCAB_SIZE
    from xscale.stage.tokenizer import train_unigram_tokenizer

    files = [data.FIXTURES_DIR / "pretrain" / f"{lang}.txt" for lang in ("en", "de", "es", "fr")]
    files.append(data.FIXTURES_DIR / "pretrain" / "zh.txt")
    folder = tmp_path_factory.mktemp("tok")
    train_unigram_tokenizer(files, TINY_VOCAB_SIZE, folder)
    return load_tokenizer(folder)  # from disk, as every stage loads it


@pytest.fixture(scope="module")
def encoder():
    from transformers import XLMRobertaConfig, XLMRobertaModel

    torch.manual_seed(0)
    config = XLMRobertaConfig(
        vocab_size=2000,
        hidden_size=HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=130,
        type_vocab_size=1,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
    )
    return XLMRobertaModel(config, add_pooling_layer=False).eval()


def run_model(task, fmt, features, encoder, pad=1):
    """collate -> encoder + head forward (loss) -> predict, as the runner drives a format."""
    model = MultiTaskModel(encoder, {task.name: fmt.make_head(task, HIDDEN)}, {task.name: fmt})
    model.eval()
    batch = {**fmt.collate(features, pad), "task": task.name}
    with torch.no_grad():
        loss, logits = model(batch)
    assert loss is not None and torch.isfinite(loss)
    return batch, logits, fmt.predict(logits, batch)


def qa(qid, context, answer, question="Who?", lang="en", start=None):
    start = context.index(answer) if start is None else start
    fields = {"question": question, "context": context, "id": qid, "is_impossible": False}
    fields["answers"] = [{"text": answer, "answer_start": start}]
    return Example(qid, lang, fields)


def context_tokens(feature) -> list[int]:
    return [k for k, (start, _) in enumerate(feature["offsets"]) if start >= 0]


def forced(features):
    """QA 'predictions' whose logits peak at each feature's gold start/end (<s> when absent)."""
    out = []
    for f in features:
        n = len(f["input_ids"])
        start, end = np.full(n, -10.0, np.float32), np.full(n, -10.0, np.float32)
        start[f["start_position"]] = end[f["end_position"]] = 10.0
        out.append({"start": start, "end": end})
    return out


# --- span QA ----------------------------------------------------------------------------------
SQUAD = get_task("squad")


def test_qa_labels_point_at_the_answer_and_forced_logits_score_100(tokenizer, encoder):
    exs = [
        qa("a", "Anna buys three red apples in the garden.", "three red apples", "What?"),
        qa("b", "Tom sells pears at the market on Monday.", "Tom"),
        qa("c", "Maria sees two dogs in the park.", "in the park", "Where?"),
    ]
    fmt = get_format(SQUAD)
    feats = fmt.featurize(SQUAD, exs, tokenizer, 64)
    assert len(feats) == 3 and [f["example_index"] for f in feats] == [0, 1, 2]
    for f, ex in zip(feats, exs):
        s, e = f["start_position"], f["end_position"]
        assert 0 < s <= e and list(f["offsets"][0]) == [-1, -1]  # <s> is not context
        span = ex.fields["context"][f["offsets"][s][0] : f["offsets"][e][1]].strip()
        assert span == ex.fields["answers"][0]["text"]
    assert fmt.score(SQUAD, forced(feats), feats) == {"exact_match": 100.0, "f1": 100.0}
    batch, logits, preds = run_model(SQUAD, fmt, feats, encoder)
    assert logits.shape == (*batch["input_ids"].shape, 2)
    assert [len(p["start"]) for p in preds] == [len(f["input_ids"]) for f in feats]
    scores = fmt.score(SQUAD, preds, feats)
    assert set(scores) == {"exact_match", "f1"} and 0 <= scores["f1"] <= 100


def test_qa_doc_stride_windows_and_the_answer_from_the_right_window(tokenizer):
    filler = " ".join(f"Tom sees {n} cats in the park." for n in ("two", "four", "five", "six"))
    context = f"{filler} Anna buys seven red apples at the market. {filler}"
    ex = qa("long", context, "Anna")
    fmt = SpanQAFormat(doc_stride=128)
    feats = fmt.featurize(SQUAD, [ex], tokenizer, 48)
    assert len(feats) >= 4 and {f["example_index"] for f in feats} == {0}
    spans = [f["offsets"][context_tokens(f)] for f in feats]
    for a, b in zip(spans, spans[1:]):  # consecutive windows overlap and move forward
        assert a[0][0] < b[0][0] <= a[-1][0] < b[-1][0]
    holding = [i for i, f in enumerate(feats) if f["start_position"] > 0]
    assert holding and all(
        s[0][0] <= ex.fields["answers"][0]["answer_start"] and s[-1][1] >= context.index(" buys")
        for s in (spans[i] for i in holding)
    )
    assert all(f["start_position"] == f["end_position"] == 0 for i, f in enumerate(feats)
               if i not in holding)  # fmt: skip
    preds = forced(feats)
    for i, (f, p) in enumerate(zip(feats, preds)):  # a weaker wrong span in every other window
        if i not in holding:
            k = context_tokens(f)[0]
            p["start"][k] = p["end"][k] = 5.0
    assert fmt.answers(SQUAD, preds, feats) == {0: "Anna"}
    assert fmt.score(SQUAD, preds, feats)["exact_match"] == 100.0


def test_qa_answer_length_limit_and_long_questions(tokenizer):
    context = "Anna buys three red apples in the garden."
    feats = SpanQAFormat(max_answer_length=2).featurize(
        SQUAD, [qa("a", context, "Anna")], tokenizer, 64
    )
    f = feats[0]
    ctx = context_tokens(f)
    start, end = (
        np.zeros(len(f["input_ids"]), np.float32),
        np.zeros(len(f["input_ids"]), np.float32),
    )
    start[ctx[0]], end[ctx[-1]] = 9.0, 9.0  # the whole context: longer than 2 tokens
    start[ctx[1]], end[ctx[1]] = 1.0, 1.0
    got = SpanQAFormat(max_answer_length=2).answers(SQUAD, [{"start": start, "end": end}], feats)
    assert len(got[0]) < len(context) and got[0] in context
    long_q = "Who " + "really " * 80 + "buys apples?"
    (f,) = SpanQAFormat().featurize(SQUAD, [qa("q", context, "Anna", long_q)], tokenizer, 128)
    question_tokens = len(f["input_ids"]) - len(context_tokens(f)) - 4  # <s> </s></s> </s>
    assert question_tokens <= 64 and f["start_position"] > 0


def test_squad2_unanswerable_questions_predict_nothing(tokenizer):
    task = get_task("squad2")
    fmt = get_format(task)
    impossible = qa("n", "Anna buys apples.", "", start=0)
    impossible.fields.update(answers=[], is_impossible=True)
    feats = fmt.featurize(task, [qa("y", "Tom sells pears.", "Tom"), impossible], tokenizer, 48)
    assert (feats[1]["start_position"], feats[1]["end_position"]) == (0, 0)
    assert fmt.score(task, forced(feats), feats) == {"exact_match": 100.0, "f1": 100.0}
    wrong = forced(feats)
    first, *_, last = context_tokens(feats[1])
    wrong[1]["start"][first] = wrong[1]["end"][last] = 50  # a span instead of "no answer"
    assert fmt.score(task, wrong, feats)["exact_match"] == 50.0


def test_mlqa_scores_with_the_language_aware_metric(tokenizer):
    context = "Im Garten schläft die Katze."
    ex = qa("m", context, "die Katze", "Wer schläft?", lang="de")
    for name, em in (("mlqa", 100.0), ("xquad", 0.0)):  # MLQA drops German articles
        task = get_task(name)
        feats = get_format(task).featurize(task, [ex], tokenizer, 48)
        f = feats[0]
        at = context.index("Katze")
        k = next(k for k in context_tokens(f) if f["offsets"][k][0] <= at < f["offsets"][k][1])
        f["start_position"] = k
        assert get_format(task).score(task, forced(feats), feats)["exact_match"] == em


def test_qa_blank_gold_answers_are_refused(tokenizer):
    task = get_task("tydiqa")
    exs = [qa(f"t{i}", "Anna buys apples.", "", start=0) for i in range(3)]
    feats = get_format(task).featurize(task, exs, tokenizer, 48)
    with pytest.raises(XScaleError, match=r"all 3 questions have blank gold answers.*TyDiQA"):
        get_format(task).score(task, forced(feats), feats)


# --- tagging ----------------------------------------------------------------------------------
PANX = get_task("panx")


def test_tagging_labels_the_first_subword_of_each_word(tokenizer, encoder):
    fmt = get_format(PANX)
    ex = Example("s", "de", {"tokens": ["Anna", "kauft", "Äpfel", "."],
                             "tags": ["B-PER", "O", "O", "O"]})  # fmt: skip
    (f,) = fmt.featurize(PANX, [ex], tokenizer, 32)
    pieces = tokenizer.convert_ids_to_tokens(f["input_ids"])
    assert pieces == ["<s>", "▁Anna", "▁", "k", "auf", "t", "▁Äpfel", "▁", ".", "</s>"]
    per, o = PANX_TAGS.index("B-PER"), PANX_TAGS.index("O")
    assert f["labels"] == [IGNORE, per, o, IGNORE, IGNORE, IGNORE, o, o, IGNORE, IGNORE]
    assert f["word_starts"] == [1, 2, 6, 7] and f["tags"] == ex.fields["tags"]
    batch, logits, preds = run_model(PANX, fmt, [f], encoder)
    assert logits.shape == (1, 10, len(PANX_TAGS)) and len(preds[0]) == 4
    gold = [[PANX_TAGS.index(t) for t in f["tags"]]]
    assert fmt.score(PANX, gold, [f])["f1"] == 100.0
    wrong = [[PANX_TAGS.index("B-LOC"), o, o, o]]
    assert fmt.score(PANX, wrong, [f])["f1"] == 0.0


def test_tagging_long_sentence_is_cut_into_windows_covering_every_word(tokenizer, encoder):
    task = get_task("udpos")
    fmt = get_format(task)
    words = ["Anna", "buys", "apples", "."] * 20
    tags = ["PROPN", "VERB", "NOUN", "PUNCT"] * 20
    ex = Example("long", "en", {"tokens": words, "tags": tags})
    feats = fmt.featurize(task, [ex], tokenizer, 24)
    assert len(feats) > 1 and all(len(f["input_ids"]) <= 24 for f in feats)
    covered = [w for f in feats for w in f["word_index"]]
    assert covered == list(range(80))  # every word once, in order, windows back to back
    assert [t for f in feats for t in f["tags"]] == tags
    _, _, preds = run_model(task, fmt, feats, encoder)
    assert set(fmt.score(task, preds, feats)) == {"f1", "precision", "recall", "accuracy"}
    perfect = [[UPOS_TAGS.index(t) for t in f["tags"]] for f in feats]
    assert fmt.score(task, perfect, feats)["accuracy"] == 100.0
    # a wrong tag in the last window counts (truncation used to drop those words unscored):
    # 1 word of 80 wrong -> accuracy 79/80 = 98.75
    wrong = [list(p) for p in perfect]
    wrong[-1][-1] = UPOS_TAGS.index("NOUN")  # the final "." tagged NOUN
    assert fmt.score(task, wrong, feats)["accuracy"] == 100.0 * 79 / 80


def test_ccg_label_set_comes_from_the_training_file(tokenizer, encoder, tmp_path):
    task = get_task("ccg")
    assert task.labels == ()
    with pytest.raises(XScaleError, match=r"CCGbank is licensed.*intermediate/ccg/train\.tsv"):
        load_examples(task, "train", "en", tmp_path)
    with pytest.raises(XScaleError, match="CCGbank is licensed"):
        load_examples(task, "train", "en", HUB)
    folder = tmp_path / "intermediate" / "ccg"
    folder.mkdir(parents=True)
    (folder / "train.tsv").write_text("Anna\tN\nsleeps\tS\\NP\n.\t.\n\nTom\tN\nruns\tS\\NP\n")
    (folder / "dev.tsv").write_text("Anna\tN\nsees\t(S\\NP)/NP\nTom\tN\n")
    fmt = get_format(task)
    head = fmt.make_head(task, HIDDEN)  # before the labels are known (the runner's order)
    train = fmt.featurize(task, load_examples(task, "train", "en", tmp_path), tokenizer, 16)
    assert fmt.labels == (".", "N", "S\\NP") and head.classifier.out_features == 3
    dev = fmt.featurize(task, load_examples(task, "dev", "en", tmp_path), tokenizer, 16)
    assert dev[0]["tags"] == ["N", "(S\\NP)/NP", "N"] and dev[0]["labels"].count(IGNORE) >= 3
    model = MultiTaskModel(encoder, {task.name: head}, {task.name: fmt}).eval()
    loss, _ = model({**fmt.collate(train, 1), "task": task.name})
    assert torch.isfinite(loss)
    best = [[fmt.labels.index("N"), 0, fmt.labels.index("N")]]
    assert fmt.score(task, best, dev) == pytest.approx({"accuracy": 200 / 3})  # unseen tag: wrong


# --- multiple choice --------------------------------------------------------------------------
def test_multiple_choice_shapes_and_accuracy(tokenizer, encoder):
    task = get_task("csqa")
    fmt = get_format(task)
    exs = [
        Example("a", "en", {"context": "", "question": "Where do cats sleep?",
                            "choices": ["bed", "sky", "sea"], "label": 0}),
        Example("b", "en", {"context": "Anna buys apples.", "question": "",
                            "choices": ["She eats them.", "She flies."], "label": 1}),
    ]  # fmt: skip
    feats = fmt.featurize(task, exs, tokenizer, 32)
    first = tokenizer.decode(feats[0]["input_ids"][0])
    # no context: (question, choice); "?" is <unk> in the tiny vocabulary
    assert first.startswith("<s> Where do cats sleep<unk></s></s> bed</s>")
    batch, logits, preds = run_model(task, fmt, feats, encoder)
    assert batch["input_ids"].shape[0] == 6 and batch["num_choices"] == 3
    assert logits.shape == (2, 3) and logits[1, 2] < -1000  # padding choice never wins
    assert preds[1] in (0, 1)
    assert fmt.score(task, [0, 1], feats) == {"accuracy": 100.0}
    assert fmt.score(task, [0, 0], feats) == {"accuracy": 50.0}


def test_copa_questions_become_prompts(tokenizer):
    task = get_task("xcopa")
    ex = Example("c", "zh", {"context": "Anna fell.", "question": "cause",
                             "choices": ["She slipped.", "She won."], "label": 0})  # fmt: skip
    (f,) = get_format(task).featurize(task, [ex], tokenizer, 48)
    text = tokenizer.decode(f["input_ids"][0])
    assert text == "<s> Anna fell.</s></s> What was the cause<unk> She slipped.</s>"


# --- retrieval --------------------------------------------------------------------------------
def test_retrieval_is_not_trained_and_other_formats_are():
    assert default_layer(12) == 7 and default_layer(24) == 13 and default_layer(2) == 1
    for task in TASKS.values():
        fmt = get_format(task)
        assert getattr(fmt, "trains", True) is (task.format != "retrieval")
    fmt = get_format(get_task("tatoeba"))
    with pytest.raises(XScaleError, match="not fine-tuned"):
        fmt.featurize(get_task("tatoeba"), [], None, 8)
    with pytest.raises(XScaleError, match="only a test split"):
        load_examples(get_task("bucc"), "train", "de", FIXTURES)
    assert available_languages(get_task("tatoeba"), FIXTURES, "train") == []


def test_retrieval_defaults_are_xtremes_scripts():
    """run_bucc2018.sh: --pool_type cls --specific_layer 7 for every model; run_tatoeba.sh:
    mean pooling, LAYER=7, 13 for XLM-R large."""
    bucc, tatoeba = get_task("bucc"), get_task("tatoeba")
    assert task_defaults(bucc, 12) == ("cls", 7) and task_defaults(bucc, 24) == ("cls", 7)
    assert task_defaults(tatoeba, 12) == ("mean", 7) and task_defaults(tatoeba, 24) == ("mean", 13)
    assert task_defaults(bucc, 2) == ("cls", 1)  # a tiny model: its last layer


def test_retrieval_uses_the_task_default_unless_told_otherwise(tokenizer, encoder, monkeypatch):
    fmt = get_format(get_task("bucc"))
    seen = []
    original = fmt.embed

    def embed(encoder, tokenizer, texts, **kw):
        seen.append((kw["layer"], kw["pooling"]))
        return original(encoder, tokenizer, texts, **kw)

    monkeypatch.setattr(fmt, "embed", embed)
    fmt.evaluate(encoder, tokenizer, get_task("bucc"), FIXTURES, ["fr"], limit=30)
    assert set(seen) == {(1, "cls")}  # the tiny encoder has 2 layers: layer 7 -> its last
    seen.clear()
    fmt.evaluate(
        encoder, tokenizer, get_task("bucc"), FIXTURES, ["fr"], limit=30, layer=0, pooling="mean"
    )
    assert set(seen) == {(0, "mean")}


def test_tatoeba_and_bucc_evaluate_on_fixtures(tokenizer, encoder):
    fmt = get_format(get_task("tatoeba"))
    got = fmt.evaluate(encoder, tokenizer, get_task("tatoeba"), FIXTURES, ["de", "zh"], limit=40)
    assert set(got) == {"de", "zh"} and all(0 <= s["accuracy"] <= 100 for s in got.values())
    cls = fmt.evaluate(encoder, tokenizer, get_task("tatoeba"), FIXTURES, ["de"], pooling="cls")
    assert set(cls["de"]) == {"accuracy"}
    bucc = fmt.evaluate(encoder, tokenizer, get_task("bucc"), FIXTURES, ["fr"], layer=0)
    assert set(bucc["fr"]) == {"f1", "precision", "recall", "threshold"}
    with pytest.raises(XScaleError, match="layer 2 is not in 0..1"):
        fmt.evaluate(encoder, tokenizer, get_task("tatoeba"), FIXTURES, ["de"], layer=2)


def test_identical_sentences_are_retrieved(tokenizer, encoder, tmp_path, caplog):
    lines = [line for line in (data.FIXTURES_DIR / "xtreme/tatoeba/v1/tatoeba.deu-eng.eng")
             .read_text().split("\n") if line][:30]  # fmt: skip
    folder = tmp_path / "xtreme" / "tatoeba" / "v1"
    folder.mkdir(parents=True)
    for name in ("tatoeba.fra-eng.fra", "tatoeba.fra-eng.eng"):
        (folder / name).write_text("\n".join(lines) + "\n")
    fmt = get_format(get_task("tatoeba"))
    got = fmt.evaluate(encoder, tokenizer, get_task("tatoeba"), tmp_path, ["fr"])
    assert got == {"fr": {"accuracy": 100.0}}
    bucc = tmp_path / "xtreme" / "bucc2018"
    bucc.mkdir(parents=True)
    (bucc / "de-en.dev.de").write_text("".join(f"de-{i}\t{s}\n" for i, s in enumerate(lines[:10])))
    (bucc / "de-en.dev.en").write_text("".join(f"en-{i}\t{s}\n" for i, s in enumerate(lines)))
    (bucc / "de-en.dev.gold").write_text("".join(f"de-{i}\ten-{i}\n" for i in range(10)))
    assert available_languages(get_task("bucc"), tmp_path, "test") == ["de"]
    got = fmt.evaluate(encoder, tokenizer, get_task("bucc"), tmp_path, ["de"])
    assert got["de"]["f1"] == 100.0
    assert "threshold is chosen on the split it scores" in caplog.text


# --- fixtures ---------------------------------------------------------------------------------
def answers_point_at_text(examples) -> None:
    for ex in examples:
        for ans in ex.fields["answers"]:
            start = ans["answer_start"]
            assert ex.fields["context"][start : start + len(ans["text"])] == ans["text"]


def test_fixture_qa():
    xquad = get_task("xquad")
    assert available_languages(xquad, FIXTURES, "test") == ["en", "de", "es", "zh"]
    assert available_languages(xquad, FIXTURES, "train") == ["en"]
    train = load_examples(SQUAD, "train", "en", FIXTURES)
    assert len(train) == 240
    # XQuAD trains on SQuAD and selects on passages held out of its training file (SQuAD's dev
    # set holds XQuAD's English test questions): the two are SQuAD train's passage split
    xtrain, xdev = (load_examples(xquad, s, "en", FIXTURES) for s in ("train", "dev"))
    assert xtrain == held_out_split(train, "train") and xdev == held_out_split(train, "dev")
    assert (len(xtrain), len(xdev)) == (192, 48)
    assert not {e.fields["context"] for e in xtrain} & {e.fields["context"] for e in xdev}
    by_lang = {lang: load_examples(xquad, "test", lang, FIXTURES) for lang in ("en", "de", "zh")}
    assert [len(v) for v in by_lang.values()] == [60, 60, 60]
    assert [e.guid for e in by_lang["de"]] == [e.guid for e in by_lang["en"]]
    for exs in [train, *by_lang.values()]:
        answers_point_at_text(exs)
    assert not {e.fields["context"] for e in train} & {e.fields["context"] for e in by_lang["en"]}
    with pytest.raises(XScaleError, match="no language 'fr'"):
        load_examples(xquad, "test", "fr", FIXTURES)


@pytest.mark.parametrize("name, tags", [("udpos", UPOS_TAGS), ("panx", PANX_TAGS)])
def test_fixture_tagging(name, tags):
    task = get_task(name)
    # every split in every fixture language (the other languages' train and dev files are the
    # in-language / multilingual-intermediate data of questions 1 and 2)
    assert available_languages(task, FIXTURES, "train") == ["en", "de", "es", "fr", "zh"]
    langs = available_languages(task, FIXTURES, "test")
    assert sorted(langs) == ["de", "en", "es", "fr", "zh"]
    for split, n in {"train": 250, "dev": 50}.items():
        for lang in langs:
            assert len(load_examples(task, split, lang, FIXTURES)) == n
    test = {lang: load_examples(task, "test", lang, FIXTURES) for lang in langs}
    for exs in test.values():
        assert len(exs) == 60
        assert all(len(e.fields["tokens"]) == len(e.fields["tags"]) for e in exs)
        assert {t for e in exs for t in e.fields["tags"]} <= set(tags)
    if name == "panx":  # the same entities in every language

        def entities(exs):
            return [Counter(t for t in e.fields["tags"] if t.startswith("B-")) for e in exs]

        assert all(entities(test[lang]) == entities(test["en"]) for lang in langs)
        assert {"B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC"} <= {
            t for e in test["en"] for t in e.fields["tags"]
        }


def test_fixture_ccg_and_multiple_choice():
    ccg = load_examples(get_task("ccg"), "train", "en", FIXTURES)
    assert len(ccg) == 150 and {"N", "N/N", "."} <= {t for e in ccg for t in e.fields["tags"]}
    copa, xcopa = get_task("copa"), get_task("xcopa")
    assert len(load_examples(copa, "train", "en", FIXTURES)) == 200
    assert load_examples(xcopa, "dev", "en", FIXTURES) == load_examples(copa, "dev", "en", FIXTURES)
    assert available_languages(xcopa, FIXTURES, "test") == ["zh"]
    test = load_examples(xcopa, "test", "zh", FIXTURES)
    assert len(test) == 100 and {e.fields["label"] for e in test} == {0, 1}
    assert all(e.fields["question"] in ("cause", "effect") for e in test)
    hs = load_examples(get_task("hellaswag"), "dev", "en", FIXTURES)
    assert len(hs) == 40 and all(len(e.fields["choices"]) == 4 for e in hs)
    assert len({e.fields["label"] for e in hs}) > 1


def test_fixture_retrieval():
    tatoeba, bucc = get_task("tatoeba"), get_task("bucc")
    assert available_languages(tatoeba, FIXTURES, "test") == ["de", "es", "fr", "zh"]
    pairs = load_examples(tatoeba, "test", "zh", FIXTURES)
    assert len(pairs) == 80 and all(e.fields["source"] != e.fields["target"] for e in pairs)
    assert available_languages(bucc, FIXTURES, "test") == ["de", "fr", "zh"]
    gold = load_examples(bucc, "test", "de", FIXTURES)
    assert len(gold) == 25 and all(e.fields["source"] and e.fields["target"] for e in gold)
    dev = data.load_bucc(bucc, "dev", "de", FIXTURES)
    assert (len(dev.gold), len(dev.src_ids), len(dev.trg_ids)) == (15, 40, 55)


def test_fixture_formats_run_on_a_tiny_model(tokenizer, encoder):
    for name in ("xquad", "udpos", "panx", "ccg", "xcopa", "hellaswag"):
        task = get_task(name)
        fmt = get_format(task)
        lang = "zh" if name in ("xcopa", "xquad") else "de"
        lang = "en" if name in ("ccg", "hellaswag") else lang
        split = "dev" if name in ("ccg", "hellaswag") else "test"
        exs = load_examples(task, split, lang, FIXTURES, limit=8)
        if not task.labels and task.format == "tagging":
            fmt.featurize(task, load_examples(task, "train", "en", FIXTURES), tokenizer, 64)
        feats = fmt.featurize(task, exs, tokenizer, 64)
        _, _, preds = run_model(task, fmt, feats, encoder)
        scores = fmt.score(task, preds, feats)
        assert 0 <= scores[task.metric] <= 100, (name, scores)


# --- hub rows ---------------------------------------------------------------------------------
def test_hub_rows_are_converted(monkeypatch):
    import datasets

    calls = []
    rows = {
        "rajpurkar/squad": [{"id": "q", "context": "In Paris.", "question": "Where?",
                             "answers": {"text": ["Paris"], "answer_start": [3]}}],
        "unimelb-nlp/wikiann": [{"tokens": ["Anna", "sleeps"], "ner_tags": [1, 0]}],
        "tau/commonsense_qa": [{"question": "Q?", "answerKey": "B",
                                "choices": {"label": ["A", "B"], "text": ["x", "y"]}}],
        "allenai/social_i_qa": [{"context": "C", "question": "Q", "answerA": "a",
                                 "answerB": "b", "answerC": "c", "label": "3"}],
        "google/xtreme": [{"source_sentence": "Hallo ", "target_sentence": "Hello"}],
        "google-research-datasets/tydiqa": [
            {"id": "finnish-1", "context": "Oulu.", "question": "?",
             "answers": {"text": ["Oulu"], "answer_start": [0]}},
            {"id": "english-2", "context": "Oslo.", "question": "?",
             "answers": {"text": ["Oslo"], "answer_start": [0]}},
        ],
    }  # fmt: skip

    def fake(path, name=None, split=None):
        calls.append((path, name, split))
        return rows[path]

    monkeypatch.setattr(datasets, "load_dataset", fake)
    (q,) = load_examples(get_task("xquad"), "train", "en", HUB)
    assert q.fields["answers"] == [{"text": "Paris", "answer_start": 3}] and q.guid == "q"
    assert calls[-1] == ("rajpurkar/squad", None, "train")
    (t,) = load_examples(PANX, "test", "sw", HUB)
    assert t.fields == {"tokens": ["Anna", "sleeps"], "tags": ["B-PER", "O"]}
    assert calls[-1] == ("unimelb-nlp/wikiann", "sw", "test")
    assert load_examples(get_task("csqa"), "dev", "en", HUB)[0].fields["label"] == 1
    assert load_examples(get_task("siqa"), "train", "en", HUB)[0].fields["label"] == 2
    (p,) = load_examples(get_task("tatoeba"), "test", "zh", HUB)
    assert p.fields == {"source": "Hallo", "target": "Hello"}
    assert calls[-1] == ("google/xtreme", "tatoeba.cmn", "validation")
    (fi,) = load_examples(get_task("tydiqa"), "test", "fi", HUB, limit=5)
    assert fi.fields["answers"][0]["text"] == "Oulu"
    assert calls[-1] == ("google-research-datasets/tydiqa", "secondary_task", "validation")
    (en,) = load_examples(get_task("tydiqa"), "train", "en", HUB)
    assert en.fields["context"] == "Oslo." and calls[-1][2] == "train"
    assert available_languages(get_task("xcopa"), HUB, "train") == ["en"]
    assert available_languages(get_task("bucc"), HUB, "test") == []


# --- the real files in ../shared/data ---------------------------------------------------------
@shared_data
def test_real_qa_files(tokenizer):
    xquad, mlqa, tydiqa = get_task("xquad"), get_task("mlqa"), get_task("tydiqa")
    assert available_languages(xquad, SHARED, "test") == ["en", "de", "es"]
    assert available_languages(xquad, SHARED, "train") == []  # no SQuAD train file there
    de = load_examples(xquad, "test", "de", SHARED)
    assert len(de) == 1190
    answers_point_at_text(de)
    assert available_languages(mlqa, SHARED, "test") == ["de", "es"]  # dev files stand in
    es = load_examples(mlqa, "test", "es", SHARED)
    assert 400 < len(es) < 600
    answers_point_at_text(es)
    assert available_languages(tydiqa, SHARED, "test") == ["en", "fi"]
    assert len(load_examples(tydiqa, "test", "fi", SHARED)) == 782
    # TyDiQA-GoldP trains, and selects models, on its own English train file (absent here):
    # en's dev file is scored (tydiqa.en), so it is never the selection set
    assert available_languages(tydiqa, SHARED, "train") == []
    assert available_languages(tydiqa, SHARED, "dev") == []
    for split in ("train", "dev"):
        with pytest.raises(XScaleError, match=r"tydiqa: missing data file .*goldp\.en\.train"):
            load_examples(tydiqa, split, "en", SHARED)
    fmt = get_format(xquad)
    feats = fmt.featurize(xquad, de[:40], tokenizer, 128)
    assert len(feats) > 40  # XQuAD contexts are longer than one 128-token window
    exact = 0
    for f in feats:
        if f["start_position"]:
            span = f["context"][
                f["offsets"][f["start_position"]][0] : f["offsets"][f["end_position"]][1]
            ]
            assert f["answers"][0] in span
            exact += span.strip() == f["answers"][0]
    assert exact >= 0.9 * sum(1 for f in feats if f["start_position"])
    assert fmt.score(xquad, forced(feats), feats)["f1"] > 90
    blank = load_examples(tydiqa, "test", "en", SHARED, limit=20)
    tfeats = fmt.featurize(tydiqa, blank, tokenizer, 128)
    with pytest.raises(XScaleError, match="blank gold answers"):
        fmt.score(tydiqa, forced(tfeats), tfeats)


@shared_data
def test_real_udpos_group_split():
    task = get_task("udpos")
    assert available_languages(task, SHARED, "train") == ["en", "el", "fr"]
    by_split = {split: load_examples(task, split, "en", SHARED) for split in data.SPLITS}
    sizes = {split: len(exs) for split, exs in by_split.items()}
    # 3974 sentences; a sentence given twice is one group (the row-index split had 2386/397/1191)
    assert sizes == {"train": 2394, "dev": 395, "test": 1185}
    seen = {tuple(e.fields["tokens"]) for s in ("train", "dev") for e in by_split[s]}
    assert not [e for e in by_split["test"] if tuple(e.fields["tokens"]) in seen]
    first = load_examples(task, "train", "en", SHARED)[0]
    assert first.fields["tokens"][:3] == ["From", "the", "AP"]
    assert first.fields["tags"][:3] == ["ADP", "DET", "PROPN"]


@shared_data
def test_real_multiple_choice_dev_files(tokenizer):
    csqa = load_examples(get_task("csqa"), "dev", "en", SHARED)
    assert len(csqa) == 1221 and csqa[0].fields["choices"][csqa[0].fields["label"]] == "bank"
    with pytest.raises(XScaleError, match=r"csqa: missing data file .*train_rand_split"):
        load_examples(get_task("csqa"), "train", "en", SHARED)
    cosmos = load_examples(get_task("cosmosqa"), "dev", "en", SHARED)
    assert len(cosmos) == 2985 and set(Counter(e.fields["label"] for e in cosmos)) == {0, 1, 2, 3}
    fmt = get_format(get_task("cosmosqa"))
    feats = fmt.featurize(get_task("cosmosqa"), cosmos[:4], tokenizer, 64)
    assert all(len(f["input_ids"]) == 4 and max(map(len, f["input_ids"])) <= 64 for f in feats)


@shared_data
def test_real_retrieval_files():
    tatoeba, bucc = get_task("tatoeba"), get_task("bucc")
    langs = available_languages(tatoeba, SHARED, "test")
    assert len(langs) == 18 and {"de", "zh", "ar"} <= set(langs)
    assert len(load_examples(tatoeba, "test", "de", SHARED)) == 1000
    assert available_languages(bucc, SHARED, "test") == ["zh"]  # dev files serve as test
    gold = load_examples(bucc, "test", "zh", SHARED)
    assert len(gold) == 257 and gold[0].guid.startswith("zh-")
    with pytest.raises(XScaleError, match=r"missing data file .*de-en\.test\.de"):
        load_examples(bucc, "test", "de", SHARED)


def test_every_registered_task_has_a_format_and_known_layout():
    for task in TASKS.values():
        fmt = get_format(task)
        for method in ("featurize", "collate", "make_head", "loss", "predict", "score"):
            assert callable(getattr(fmt, method)), (task.name, method)
        assert task.metric in ("accuracy", "f1", "map_at_20")
    json.dumps({t.name: t.languages for t in TASKS.values()})  # plain data


@shared_data
def test_real_xcopa_files_are_parallel_translations_of_copa():
    """XTREME-R's XCOPA download: test-<lang>.jsonl (500 rows) per language, row i the same COPA
    example translated, so its gold choice agrees in every language; models train on English
    COPA (its train/dev splits are COPA's, registry.TRAINED_ON)."""
    xcopa = get_task("xcopa")
    langs = available_languages(xcopa, SHARED, "test")
    assert langs == ["id", "it", "tr", "vi", "zh"]
    by_lang = {lang: load_examples(xcopa, "test", lang, SHARED) for lang in langs}
    first = by_lang["it"][0].fields
    assert first["context"] == "L'oggetto era incartato nella plastica bollata."
    assert first["question"] == "cause" and first["label"] == 0
    labels = [e.fields["label"] for e in by_lang["it"]]
    assert len(labels) == 500 and Counter(labels) == {0: 250, 1: 250}
    questions = Counter(e.fields["question"] for e in by_lang["it"])
    assert questions == {"cause": 246, "effect": 254}  # as in the file
    for lang, exs in by_lang.items():  # the gold choice is the same in every translation
        assert [e.fields["label"] for e in exs] == labels, lang
        assert all(len(e.fields["choices"]) == 2 for e in exs)
        assert {e.fields["question"] for e in exs} == {"cause", "effect"}
    # (the question type itself differs in a few translations: tr 53 rows, vi and zh 4)
    assert by_lang["zh"][0].fields["context"] != first["context"]
    from xscale.data.layout import source_task

    assert source_task(xcopa, "train").name == "copa"  # trained on English COPA


@pytest.mark.parametrize("task_name", ["xnli", "xcopa"])
def test_attack_scorer_batches_in_length_order_and_answers_in_input_order(
    tokenizer, encoder, task_name
):
    """The scorer an attack queries: per example, the format's own loss of that example alone
    and whether its prediction is right, whatever batch it was scored in."""
    from xscale.stage.robustness import label_scorer

    task = get_task(task_name)
    fmt = get_format(task)
    lang = "zh" if task_name == "xcopa" else "de"
    exs = data.load_examples(task, "test", lang, data.FIXTURES, limit=11)
    torch.manual_seed(1)
    head = fmt.make_head(task, HIDDEN).eval()
    module = torch.nn.ModuleDict({"e": encoder, "h": head})
    was_training = encoder.training  # the fixture is shared: leave it as it was

    def forward(batch):
        inputs = {k: batch[k] for k in ("input_ids", "attention_mask")}
        return head(encoder(**inputs).last_hidden_state, batch)

    def collate(feats):
        return fmt.collate(feats, tokenizer.pad_token_id)

    scores = label_scorer(module, forward, fmt, task, tokenizer, collate, 64, 4)(exs)
    assert len(scores) == len(exs) and module.training  # train mode restored
    for ex, (loss, right) in zip(exs, scores):
        batch = collate(fmt.featurize(task, [ex], tokenizer, 64))
        module.eval()
        with torch.no_grad():
            logits = forward(batch)
        module.train()
        assert loss == pytest.approx(float(fmt.loss(logits, batch)), abs=1e-5)
        assert right == bool(logits.argmax(-1).item() == batch["labels"].item())
    encoder.train(was_training)


@pytest.mark.shared_data
def test_blank_gold_answers_are_refused_in_preflight_before_anything_trains(tmp_path):
    """XTREME's TyDiQA-GoldP dev copies blank their answers: a sweep on them stops in preflight
    with one line naming the data (it was refused only at scoring, after 4.6 minutes of
    training and dev evaluation)."""
    if not SHARED.is_dir():
        pytest.skip("../shared/data not present (real XTREME files; CI always has it)")
    from xscale.graph.expand import expand
    from xscale.stage.preflight import preflight_graph
    from xscale.sweep.schema import build_sweep

    cfg = build_sweep(
        {
            "name": "blank",
            "output_dir": str(tmp_path / "out"),
            "models": ["tiny-xs"],
            "intermediate_tasks": ["none"],
            "target_tasks": ["tydiqa"],
            "eval_languages": {"tydiqa": ["en"]},
            "data": {"root": "fixtures", "tasks": {"tydiqa": str(SHARED)}},
        },
        "blank.yaml",
    )
    with pytest.raises(XScaleError, match=r"tydiqa test data in 'en' under .*blank gold answers"):
        preflight_graph(expand(cfg))
    assert not (tmp_path / "out").exists()
