"""Prediction exports in XTREME's submission layout: hand-made predictions -> exact file content.

XTREME's `evaluate.py --prediction_folder P --label_folder L` reads `P/<task>/test-<lang>.tsv`
with `read_label` (one line per example: classification, Tatoeba, BUCC pairs) or `read_tag`
(one tag per line, a blank line between sentences), and `P/<task>/test-<lang>.json` (QA,
`{id: answer}`). `read_tag` / `read_label` below are copies of its readers.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from xscale import data
from xscale.data import FIXTURES
from xscale.errors import XScaleError
from xscale.tasks import Example, get_format, metrics
from xscale.tasks.registry import PANX_TAGS, UPOS_TAGS, get_task
from xscale.tasks.retrieval import export_bucc, export_tatoeba, tatoeba_predictions
from xscale.tasks.tagging import TaggingFormat


def read_tag(path) -> list[list[str]]:
    """XTREME evaluate.py's `read_tag`."""
    labels, example = [], []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                example.append(line)
            else:
                labels.append(example)
                example = []
    if example:
        labels.append(example)
    return labels


def read_label(path) -> list[str]:
    """XTREME evaluate.py's `read_label`."""
    with open(path) as f:
        return [line.strip() for line in f]


def xtreme_bucc_f1(labels: list[str], predictions: list[str]) -> float:
    """XTREME evaluate.py's `bucc_f1` (F1 only, 0-100)."""
    gold = {tuple(x.split("\t")) for x in labels}
    pred = {tuple(x.split("\t")) for x in predictions}
    n = len(gold & pred)
    if not n:
        return 0.0
    p, r = n / len(pred), n / len(gold)
    return 100 * 2 * p * r / (p + r)


# --------------------------------------------------------------------------- classification


def test_classification_export_one_label_per_line(tmp_path):
    task = get_task("xnli")
    get_format(task).export(task, "de", [0, 2, 1, 0], [{}] * 4, tmp_path / "xnli")
    want = "".join(f"{task.labels[i]}\n" for i in (0, 2, 1, 0))
    assert (tmp_path / "xnli" / "test-de.tsv").read_text() == want


# --------------------------------------------------------------------------- span QA


def qa_feature(index: int, qid: str, context: str, spans: list[tuple[int, int]]) -> dict:
    """A hand-made span-QA feature: <s> q </s></s> <context tokens at `spans`> </s>."""
    offsets = np.array([[-1, -1]] * 4 + [list(s) for s in spans] + [[-1, -1]], dtype=np.int32)
    return {
        "example_index": index,
        "example_id": qid,
        "offsets": offsets,
        "context": context,
        "answers": ["x"],
        "is_impossible": False,
        "lang": "de",
    }


def logits(n: int, start: int, end: int) -> dict:
    s, e = np.zeros(n, dtype=np.float32), np.zeros(n, dtype=np.float32)
    s[start], e[end] = 5.0, 5.0
    return {"start": s, "end": e}


def test_span_qa_export_writes_id_to_answer_json(tmp_path):
    task = get_task("xquad")
    c1 = "Anna wohnt in Paris."
    c2 = "Tom fährt nach Berlin und Rom."
    feats = [
        qa_feature(0, "q-1", c1, [(0, 4), (5, 10), (11, 13), (14, 19), (19, 20)]),
        # question 2 has two windows; its answer lies in the second
        qa_feature(1, "q-2", c2, [(0, 3), (4, 9), (10, 14)]),
        qa_feature(1, "q-2", c2, [(10, 14), (15, 21), (22, 25), (26, 29)]),
    ]
    preds = [logits(10, 7, 7), logits(8, 4, 4), logits(9, 5, 7)]
    preds[2]["start"][5] = preds[2]["end"][7] = 9.0  # window 2 beats window 1
    get_format(task).export(task, "de", preds, feats, tmp_path)
    text = (tmp_path / "test-de.json").read_text(encoding="utf-8")
    assert text == '{\n "q-1": "Paris",\n "q-2": "Berlin und Rom"\n}\n'
    assert json.loads(text) == {"q-1": "Paris", "q-2": "Berlin und Rom"}


def test_span_qa_export_unanswerable_and_non_ascii(tmp_path):
    task = get_task("squad2")
    ctx = "北京是首都。"
    feats = [qa_feature(0, "z1", ctx, [(0, 2), (2, 3), (3, 5), (5, 6)])]
    null = logits(9, 0, 0)
    null["start"][0] = null["end"][0] = 50.0  # the <s> pair wins: no answer
    get_format(task).export(task, "zh", [null], feats, tmp_path)
    assert json.loads((tmp_path / "test-zh.json").read_text()) == {"z1": ""}
    task = get_task("xquad")
    get_format(task).export(task, "zh", [logits(9, 4, 5)], feats, tmp_path)
    text = (tmp_path / "test-zh.json").read_text(encoding="utf-8")
    assert text == '{\n "z1": "北京是"\n}\n'  # UTF-8, not \\u escapes


# --------------------------------------------------------------------------- tagging


def test_tagging_export_one_tag_per_word_blank_line_between_sentences(tmp_path):
    task = get_task("panx")
    fmt = get_format(task)
    idx = PANX_TAGS.index
    feats = [
        {"word_index": [0, 1, 2], "n_words": 3},
        {"word_index": [0, 1], "n_words": 4},  # two words cut off by truncation
    ]
    preds = [[idx("B-PER"), idx("I-PER"), idx("O")], [idx("B-LOC"), idx("O")]]
    fmt.export(task, "fr", preds, feats, tmp_path)
    text = (tmp_path / "test-fr.tsv").read_text()
    assert text == "B-PER\nI-PER\nO\n\nB-LOC\nO\nO\nO\n\n"
    assert read_tag(tmp_path / "test-fr.tsv") == [["B-PER", "I-PER", "O"], ["B-LOC", "O", "O", "O"]]


def test_tagging_default_tag():
    assert TaggingFormat.default_tag(PANX_TAGS) == "O"
    assert TaggingFormat.default_tag(UPOS_TAGS) == "X"
    assert TaggingFormat.default_tag(("N", "S/N")) == "N"


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from xscale.catalog.sizes import TINY_VOCAB_SIZE
    from xscale.stage.tokenizer import train_unigram_tokenizer
    from xscale.train.model import load_tokenizer

    folder = tmp_path_factory.mktemp("tok")
    langs = ("en", "de", "es", "fr", "zh")
    train_unigram_tokenizer(
        [data.FIXTURES_DIR / "pretrain" / f"{x}.txt" for x in langs], TINY_VOCAB_SIZE, folder
    )
    return load_tokenizer(folder)


def test_tagging_export_of_a_long_sentence_has_every_words_prediction(tokenizer, tmp_path):
    task = get_task("udpos")
    fmt = get_format(task)
    words = ["Anna", "buys", "apples", "."] * 20
    tags = ["PROPN", "VERB", "NOUN", "PUNCT"] * 20
    short = Example("s", "en", {"tokens": ["Anna", "sleeps"], "tags": ["PROPN", "VERB"]})
    long = Example("l", "en", {"tokens": words, "tags": tags})
    feats = fmt.featurize(task, [short, long], tokenizer, 24)
    assert len(feats) > 2  # the long sentence spans several windows
    perfect = [[UPOS_TAGS.index(t) for t in f["tags"]] for f in feats]
    fmt.export(task, "en", perfect, feats, tmp_path)
    assert read_tag(tmp_path / "test-en.tsv") == [["PROPN", "VERB"], tags]


@pytest.mark.parametrize("name", ["udpos", "panx"])
def test_tagging_logged_score_equals_the_official_score_of_the_export(name, tokenizer, tmp_path):
    """What xscale logs is what XTREME's evaluate.py computes from the exported file and the
    gold labels (seqeval f1 over every word): long sentences included."""
    task = get_task(name)
    fmt = get_format(task)
    labels = task.labels
    rng = np.random.default_rng(0)
    examples = []
    for i, n in enumerate([3, 7, 41, 90, 12]):
        tokens = [f"w{i}x{j}" for j in range(n)]
        gold = [labels[k] for k in rng.integers(0, len(labels), size=n)]
        examples.append(Example(f"e{i}", "en", {"tokens": tokens, "tags": gold}))
    feats = fmt.featurize(task, examples, tokenizer, 32)
    assert len(feats) > len(examples)  # some sentences are longer than 32 tokens
    preds = [rng.integers(0, len(labels), size=len(f["word_starts"])).tolist() for f in feats]
    logged = fmt.score(task, preds, feats)
    fmt.export(task, "en", preds, feats, tmp_path)
    predicted = read_tag(tmp_path / "test-en.tsv")
    gold = [list(e.fields["tags"]) for e in examples]
    assert [len(p) for p in predicted] == [len(g) for g in gold]
    official = metrics.seqeval_f1(gold, predicted)  # evaluate.py: f1 for udpos and panx
    assert logged["f1"] == pytest.approx(official["f1"], abs=1e-9)


# --------------------------------------------------------------------------- multiple choice


def test_multiple_choice_export_one_label_object_per_line(tmp_path):
    # XTREME-R's evaluate.py reads XCOPA as test-<lang>.jsonl, one {"label": n} per line
    task = get_task("xcopa")
    fmt = get_format(task)
    fmt.export(task, "zh", [1, 0, 0, 1], [{"label": 0}] * 4, tmp_path / "xcopa")
    assert not (tmp_path / "xcopa" / "test-zh.tsv").exists()
    lines = (tmp_path / "xcopa" / "test-zh.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [{"label": n} for n in (1, 0, 0, 1)]
    with pytest.raises(XScaleError, match="3 predictions for 4 examples"):
        fmt.export(task, "zh", [1, 0, 0], [{"label": 0}] * 4, tmp_path)


# --------------------------------------------------------------------------- retrieval


def test_tatoeba_export_and_predictions_agree_with_the_metric(tmp_path):
    export_tatoeba("de", [0, 2, 1], tmp_path)
    assert (tmp_path / "test-de.tsv").read_text() == "0\n2\n1\n"
    rng = np.random.default_rng(0)
    src = rng.normal(size=(50, 8)).astype(np.float32)
    trg = src + rng.normal(scale=1.2, size=src.shape).astype(np.float32)
    pred = tatoeba_predictions(src, trg)
    want = metrics.tatoeba_accuracy(src, trg)["accuracy"]
    assert 0 < want < 100  # some right, some wrong
    assert 100 * np.mean([p == i for i, p in enumerate(pred)]) == pytest.approx(want)
    # exact duplicates tie: the lowest index wins, as in the metric
    assert tatoeba_predictions(np.ones((3, 4)), np.ones((2, 4))) == [0, 0]


def test_bucc_export_writes_the_pairs_the_f1_counts(tmp_path):
    cands = [("de-1", "en-1", 1.5), ("de-2", "en-9", 1.2), ("de-3", "en-3", 1.0),
             ("de-2", "en-9", 1.3), ("de-4", "en-4", 0.9)]  # fmt: skip
    export_bucc("de", "test", cands, 1.0, tmp_path)
    text = (tmp_path / "test-de.tsv").read_text()
    assert text == "de-1\ten-1\nde-2\ten-9\nde-3\ten-3\n"  # >= threshold, best first, once each
    gold = {("de-1", "en-1"), ("de-3", "en-3"), ("de-4", "en-4")}
    want = metrics.bucc_f1(cands, gold, threshold=1.0)["f1"]
    got = xtreme_bucc_f1([f"{s}\t{t}" for s, t in gold], read_label(tmp_path / "test-de.tsv"))
    assert got == pytest.approx(want)


@pytest.fixture(scope="module")
def encoder():
    from transformers import XLMRobertaConfig, XLMRobertaModel

    torch.manual_seed(0)
    config = XLMRobertaConfig(
        vocab_size=2000,
        hidden_size=32,
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


def test_retrieval_evaluate_writes_predictions(tokenizer, encoder, tmp_path):
    tatoeba, bucc = get_task("tatoeba"), get_task("bucc")
    fmt = get_format(tatoeba)
    out = tmp_path / "tatoeba"
    got = fmt.evaluate(encoder, tokenizer, tatoeba, FIXTURES, ["de", "zh"], limit=30, pred_dir=out)
    for lang in ("de", "zh"):
        lines = read_label(out / f"test-{lang}.tsv")
        assert len(lines) == 30 and all(0 <= int(x) < 30 for x in lines)
        acc = 100 * np.mean([int(x) == i for i, x in enumerate(lines)])
        assert acc == pytest.approx(got[lang]["accuracy"])
    out = tmp_path / "bucc"
    got = fmt.evaluate(encoder, tokenizer, bucc, FIXTURES, ["fr"], layer=0, pred_dir=out)
    pairs = read_label(out / "test-fr.tsv")
    assert pairs and all(len(p.split("\t")) == 2 for p in pairs)
    gold = sorted(data.load_bucc(bucc, "test", "fr", FIXTURES).gold)
    labels = [f"{s}\t{t}" for s, t in gold]
    assert xtreme_bucc_f1(labels, pairs) == pytest.approx(got["fr"]["f1"])
    # without pred_dir nothing is written
    fmt.evaluate(encoder, tokenizer, tatoeba, FIXTURES, ["de"], limit=5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bucc", "tatoeba"]
