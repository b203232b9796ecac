"""XTREME-R's dual-encoder retrieval tasks (LAReQA, Mewsli-X): the format's pieces, their
scoring worked out by hand from XTREME-R's definition (mAP@20), the Mewsli-X readers, and the
real XQuAD-R pool (skipped when ../shared/data is absent)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SHARED_DATA, SHARED_DATA_REASON

from xscale import data as xdata
from xscale.data import FIXTURES, FIXTURES_DIR, mewslix_hub, readers
from xscale.errors import XScaleError
from xscale.tasks.base import Example, RetrievalPool
from xscale.tasks.dual_encoder import (
    DualEncoderFormat,
    DualEncoderHead,
    as_pair,
    map_of_rankings,
    score_export,
    split_sentences,
    top_k,
)
from xscale.tasks.registry import get_task

# --------------------------------------------------------------------------- pieces


def test_split_sentences_cuts_after_end_marks_followed_by_space():
    text = "One. Two! Three? Four 3.5 five.Six"
    spans = split_sentences(text)
    assert [text[s:e] for s, e in spans] == ["One.", "Two!", "Three?", "Four 3.5 five.Six"]
    assert split_sentences("") == [(0, 0)]


def test_as_pair_takes_the_sentence_holding_the_answer():
    context = "Paris is in France. The Seine flows through it. It is big."
    start = context.index("Seine")
    ex = Example(
        "q1",
        "en",
        {
            "question": "What river?",
            "context": context,
            "answers": [{"text": "Seine", "answer_start": start}],
        },
    )
    pair = as_pair(ex)
    assert pair == {
        "query": ["What river?"],
        "candidate": ["The Seine flows through it.", context],
        "key": "The Seine flows through it.",
    }
    with pytest.raises(XScaleError, match="needs an answer"):
        as_pair(Example("q2", "en", {"question": "?", "context": context, "answers": []}))


def test_head_is_a_masked_mean_of_unit_length():
    h = torch.tensor([[[1.0, 0.0], [3.0, 4.0], [100.0, 100.0]]])
    out = DualEncoderHead()(h, {"attention_mask": torch.tensor([[1, 1, 0]])})
    # mean of the first two tokens = (2, 2); unit length = (0.7071, 0.7071); the pad is ignored
    assert out.tolist()[0] == pytest.approx([2**-0.5, 2**-0.5])


def test_collate_masks_duplicate_candidates_and_loss_is_in_batch_softmax():
    fmt = DualEncoderFormat()
    feats = [
        {"q": [5, 6], "c": [7], "key": "a"},
        {"q": [5], "c": [8, 9, 10], "key": "b"},
        {"q": [6, 6, 6], "c": [7], "key": "a"},  # answered by the same sentence as query 0
    ]
    batch = fmt.collate(feats, pad_id=1)
    assert batch["input_ids"].shape == (6, 3) and batch["n_queries"] == 3
    assert batch["input_ids"][3].tolist() == [7, 1, 1]  # candidates follow the queries
    assert batch["negative_mask"].tolist() == [
        [False, False, True],
        [False, False, False],
        [True, False, False],
    ]
    # the loss by hand: query i's logits SCALE * q_i . c_j, its own candidate as the label,
    # the duplicate of its own candidate removed from the softmax
    q = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), dim=-1)
    c = torch.nn.functional.normalize(torch.tensor([[1.0, 0.2], [0.1, 1.0], [0.9, 0.0]]), dim=-1)
    s = 20.0 * q @ c.T
    expected = 0.0
    for i, allowed in enumerate([[0, 1], [0, 1, 2], [1, 2]]):
        expected += -(s[i, i] - torch.logsumexp(s[i, allowed], 0))
    loss = fmt.loss(torch.cat([q, c]), batch)
    assert loss.item() == pytest.approx(expected.item() / 3, rel=1e-5)
    with pytest.raises(XScaleError, match="mixes pairs"):
        fmt.collate([{"q": [1], "c": [2], "key": "a"}, {"q": [3]}], pad_id=1)


def test_top_k_matches_a_stable_argsort_with_ties():
    rng = np.random.default_rng(0)
    cand = rng.integers(0, 3, size=(50, 4)).astype(np.float32)  # many exact ties
    queries = rng.integers(0, 3, size=(13, 4)).astype(np.float32)
    want = np.argsort(-(queries @ cand.T), axis=1, kind="stable")[:, :20]
    assert (top_k(queries, cand, 20, chunk=4) == want).all()
    assert top_k(queries, cand[:5], 20).shape == (13, 5)  # a pool smaller than k


def test_map_of_rankings_by_hand():
    # query 0: relevant {2, 7}, ranked 2 first, 7 third: AP = (1/1 + 2/3) / 2 = 0.8333
    # query 1: relevant {4}, at rank 2: AP = 1/2; query 2: relevant {9}, not in the top k: 0
    ranked = [[2, 5, 7], [1, 4, 3], [0, 1, 2]]
    relevant = [frozenset({2, 7}), frozenset({4}), frozenset({9})]
    assert map_of_rankings(ranked, relevant, k=3) == pytest.approx(100 * (5 / 6 + 1 / 2 + 0) / 3)
    # cut at k=2, query 0 finds only 2 of its relevant: AP = 1 / min(2, 2) = 0.5
    assert map_of_rankings(ranked, relevant, k=2) == pytest.approx(100 * (0.5 + 0.5 + 0) / 3)


def test_evaluate_pool_scores_every_language_against_one_pool_and_exports_it(tmp_path):
    fmt, task = DualEncoderFormat(), get_task("lareqa")
    candidates = [("c0", ("a",)), ("c1", ("b",)), ("c2", ("c",)), ("c3", ("d",))]
    vectors = {
        "a": [1, 0],
        "b": [0, 1],
        "c": [0.8, 0.6],
        "d": [-1, 0],
        "qa": [1, 0.1],
        "qb": [0, 1],
    }
    queries = {
        "en": [("en-1", ("qa",), frozenset({0, 2})), ("en-2", ("qb",), frozenset({1}))],
        "de": [("de-1", ("qb",), frozenset({3}))],
    }
    pool = RetrievalPool(candidates, queries, {})

    def embed(texts):
        v = np.array([vectors[t[0]] for t in texts], dtype=np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    scores = fmt.evaluate_pool(task, pool, embed, tmp_path)
    # en-1 ranks a, c, b, d: relevant at 1 and 2 -> AP 1; en-2 ranks b first -> AP 1
    # de-1 ranks b, c, a, d: its relevant d is 4th -> AP 1/4
    assert scores == {"en": {"map_at_20": 100.0}, "de": {"map_at_20": pytest.approx(25.0)}}
    rows = [json.loads(x) for x in (tmp_path / "test-de.jsonl").read_text().splitlines()]
    assert rows == [{"id": "de-1", "ranking": ["c1", "c2", "c0", "c3"]}]
    for lang in ("en", "de"):
        gold = {qid: {candidates[j][0] for j in rel} for qid, _, rel in queries[lang]}
        assert score_export(tmp_path / f"test-{lang}.jsonl", gold) == pytest.approx(
            scores[lang]["map_at_20"]
        )
    with pytest.raises(XScaleError, match="no ranking"):
        score_export(tmp_path / "test-de.jsonl", {"de-1": {"c3"}, "de-2": {"c0"}})


def test_dev_score_uses_the_distinct_candidates_of_the_set():
    fmt, task = DualEncoderFormat(), get_task("mewslix")
    e = np.eye(3, dtype=np.float32)
    preds = [(e[0], e[0]), (e[1], e[1]), (e[0], e[0])]  # queries 0 and 2 share candidate "a"
    feats = [{"key": "a"}, {"key": "b"}, {"key": "a"}]
    assert fmt.score(task, preds, feats) == {"map_at_20": 100.0}
    swapped = [(e[1], e[0]), (e[0], e[1]), (e[0], e[0])]  # query 0 ranks b first: AP 1/2
    assert fmt.score(task, swapped, feats)["map_at_20"] == pytest.approx(100 * (0.5 + 0.5 + 1) / 3)


# --------------------------------------------------------------------------- Mewsli-X files


def test_mewslix_fixture_pool_and_pairs():
    task = get_task("mewslix")
    assert set(xdata.available_languages(task, FIXTURES, "test")) == {"en", "de", "es"}
    pool = xdata.load_pool(task, FIXTURES, ["en", "de", "es"])
    ids = [c for c, _ in pool.candidates]
    assert len(ids) == len(set(ids)) == 190
    for lang, queries in pool.queries.items():
        assert len(queries) == 40, lang
        for qid, (mention, sentence), rel in queries:
            assert len(rel) == 1 and mention in sentence, qid
    pairs = xdata.load_examples(task, "train", "en", FIXTURES)
    assert len(pairs) == 360
    f = pairs[0].fields
    assert len(f["query"]) == 2 and len(f["candidate"]) == 2 and f["key"].startswith("Q")
    # training entities are not the test entities' descriptions only: the pool holds them all
    assert {p.fields["key"] for p in pairs} <= set(ids)


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def context(text, lang="en"):
    return {"language": lang, "text": text, "sentence_spans": [[0, len(text)]]}


def mention(start, text, eid="Q1", xid="m1"):
    return {"example_id": xid, "entity_id": eid, "mention_span": {"text": text, "start": start}}


def test_mewslix_reader_errors_name_file_and_line(tmp_path):
    good = {"context": context("Hi Ann."), "mentions": [mention(3, "Ann")]}
    (m,) = readers.read_mewslix_mentions(write_jsonl(tmp_path / "ok.jsonl", [good]))
    assert (m.mention, m.sentence, m.entity_id, m.lang) == ("Ann", "Hi Ann.", "Q1", "en")
    cases = {
        "off.jsonl": (
            [good, {"context": context("Hi Ann."), "mentions": [mention(0, "Ann")]}],
            r"off.jsonl:2.mentions\[0\]: mention 'Ann' is not at 0",
        ),
        "empty.jsonl": (
            [{"context": context(""), "mentions": [mention(0, "Ann")]}],
            r"empty.jsonl:1.mentions\[0\]: the context has no text .*get-mewsli-x.sh",
        ),
        "nokey.jsonl": ([{"context": context("Hi Ann.")}], r"nokey.jsonl:1.*mentions"),
    }
    for name, (rows, message) in cases.items():
        with pytest.raises(XScaleError, match=message):
            readers.read_mewslix_mentions(write_jsonl(tmp_path / name, rows))
    twice = [{"entity_id": "Q1", "title": "A", "description": "a"}] * 2
    with pytest.raises(XScaleError, match=r"twice.jsonl:2: entity Q1 is listed twice"):
        readers.read_mewslix_entities(write_jsonl(tmp_path / "twice.jsonl", twice))


def test_lareqa_refuses_the_hub_with_download_instructions():
    with pytest.raises(XScaleError, match="not on the Hugging Face hub.*download.*data.tasks"):
        xdata.load_pool(get_task("lareqa"), "hub", ["en"])


# --------------------------------------------------------------------------- real XQuAD-R


@pytest.mark.skipif(not (SHARED_DATA / "xtreme" / "lareqa").is_dir(), reason=SHARED_DATA_REASON)
def test_real_xquad_r_pool():
    task = get_task("lareqa")
    langs = xdata.available_languages(task, SHARED_DATA, "test")
    # the shared copy holds 6 of XQuAD-R's 11 languages (its README); XTREME-R pools all 11
    assert sorted(langs) == ["de", "el", "en", "es", "hi", "ru"]
    pool = xdata.load_pool(task, SHARED_DATA, langs)
    # 1190 questions (XQuAD's) in each language; every sentence of every language in one pool
    assert {lang: len(q) for lang, q in pool.queries.items()} == dict.fromkeys(langs, 1190)
    assert sum(pool.skipped.values()) == 0
    assert len(pool.candidates) == 7368  # every sentence of the 6 files (all their sentences)
    ids = [c for c, _ in pool.candidates]
    assert len(set(ids)) == len(ids)
    # each question's relevant set: its answer sentence in every language of the pool
    for queries in pool.queries.values():
        assert all(len(rel) == len(langs) for _, _, rel in queries)


# --------------------------------------------------------------------------- Mewsli-X hub copy


def hub_mirror(tmp_path):
    """The fixture files laid out as the hub copy: per-language test files, tar.gz archives."""
    import tarfile

    src = FIXTURES_DIR / "xtreme" / "mewslix"
    mirror = tmp_path / "mirror"
    by_lang: dict[str, list[str]] = {}
    for line in (src / "wikinews_mentions-test.jsonl").read_text(encoding="utf-8").splitlines():
        by_lang.setdefault(json.loads(line)["context"]["language"], []).append(line)
    for lang, lines in by_lang.items():
        path = mirror / mewslix_hub.TEST_FILE.format(lang=lang)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(x + "\n" for x in lines), encoding="utf-8")
    release = {"train": "wikipedia_pairs-train.jsonl", "dev": "wikipedia_pairs-dev.jsonl",
               "candidates": "candidate_set_entities.jsonl"}  # fmt: skip
    for split, archive in mewslix_hub.ARCHIVES.items():
        path = mirror / archive
        path.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(path, "w:gz") as tar:
            tar.add(src / release[split], arcname=Path(archive).name.removesuffix(".tar.gz"))
    return mirror


def test_mewslix_from_the_hub_copy_reads_as_the_download(tmp_path):
    mirror = hub_mirror(tmp_path)
    fetched = []

    def download(filename):
        fetched.append(filename)
        if not (mirror / filename).is_file():
            raise FileNotFoundError(filename)
        return str(mirror / filename)

    langs = ("en", "de", "es")
    root = mewslix_hub.hub_root(langs, download, tmp_path / "cache")
    task = get_task("mewslix")
    got, want = (xdata.load_pool(task, r, list(langs)) for r in (root, FIXTURES))
    assert got.candidates == want.candidates and got.queries == want.queries
    for split in ("train", "dev"):
        assert xdata.load_examples(task, split, "en", root) == xdata.load_examples(
            task, split, "en", FIXTURES
        )
    n = len(fetched)
    assert mewslix_hub.hub_root(langs, download, tmp_path / "cache") == root
    assert len(fetched) == n  # assembled once, then read from the cache
    # a language the copy does not have: one line naming the file and the dataset
    with pytest.raises(XScaleError, match=r"wikinews_mentions/fa/test.jsonl of the hub dataset"):
        mewslix_hub.hub_root(("en", "fa"), download, tmp_path / "other")
    assert not list((tmp_path / "other").rglob("wikinews_mentions-test.jsonl"))


def test_mewslix_hub_offline_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(XScaleError, match=r"could not fetch .* izhx/mewsli-x.*data.tasks.mewslix"):
        mewslix_hub.hub_root(("en",), root=tmp_path)
