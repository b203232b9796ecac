"""Metrics on hand-made cases; every expected value is worked out by hand from the official
definitions (SQuAD v1.1 / MLQA evaluate scripts, seqeval, XTREME's utils_retrieve.py)."""

import numpy as np
import pytest

from xscale.errors import XScaleError
from xscale.tasks.metrics import (
    accuracy,
    bucc_f1,
    lang_summary,
    mine_bucc,
    mlqa_em_f1,
    mlqa_normalize,
    pos_accuracy_f1,
    seqeval_f1,
    squad_em_f1,
    squad_normalize,
    tatoeba_accuracy,
)


def one(pred, golds, **kw):
    """Score a single question."""
    if "lang" in kw:
        return mlqa_em_f1({"q": pred}, {"q": golds}, kw["lang"])
    return squad_em_f1({"q": pred}, {"q": golds})


# ----------------------------------------------------------------------------- SQuAD v1.1


def test_squad_normalisation_rules():
    assert squad_normalize("The  Eiffel\tTower!") == "eiffel tower"
    assert squad_normalize("a cat, an apple, the end") == "cat apple end"
    # articles go only as whole words
    assert squad_normalize("Another theme") == "another theme"
    # only ASCII punctuation: guillemets and the em dash stay
    assert squad_normalize("«Paris» — France") == "«paris» — france"


@pytest.mark.parametrize(
    "pred, golds, em, f1",
    [
        ("The Eiffel Tower", ["Eiffel Tower"], 100.0, 100.0),  # article dropped
        ("Paris!", ["paris"], 100.0, 100.0),  # ASCII punctuation, case
        ("  new   york ", ["New York"], 100.0, 100.0),  # whitespace
        ("$5", ["5"], 100.0, 100.0),  # '$' is in string.punctuation
        ("«Paris»", ["Paris"], 0.0, 0.0),  # unicode punctuation is NOT removed in v1.1
        # 4 predicted tokens, 1 gold, 1 shared: P=1/4, R=1 -> F1 = 2*(1/4)/(5/4) = 0.4
        ("in 1990 and 1991", ["1990"], 0.0, 40.0),
        # two golds: max over them; "red car" alone would give F1 0.5
        ("the blue car", ["red car", "a blue car"], 100.0, 100.0),
        # F1 vs "red car": 1 shared, P=R=1/2 -> 0.5; vs "blue car today": P=1, R=2/3 -> 0.8
        ("blue car", ["red car", "blue car today"], 0.0, 80.0),
        ("", ["Paris"], 0.0, 0.0),  # empty prediction
        # both normalise to "": EM counts, F1 takes the num_same == 0 branch
        ("The", ["a"], 100.0, 0.0),
    ],
)
def test_squad_cases(pred, golds, em, f1):
    scores = one(pred, golds)
    assert scores["exact_match"] == pytest.approx(em)
    assert scores["f1"] == pytest.approx(f1)


def test_squad_averages_over_references_and_unanswered_score_zero():
    refs = {"q1": ["Paris"], "q2": ["1990"], "q3": ["x"]}
    preds = {"q1": "paris", "q2": "in 1990 and 1991", "extra": "ignored"}  # q3 unanswered
    scores = squad_em_f1(preds, refs)
    assert scores["exact_match"] == pytest.approx(100 / 3)
    assert scores["f1"] == pytest.approx(100 * (1 + 0.4 + 0) / 3)


def test_squad_rejects_missing_gold():
    with pytest.raises(ValueError, match="no gold answers"):
        squad_em_f1({"q": "x"}, {"q": []})
    with pytest.raises(ValueError, match="list of answer strings"):
        squad_em_f1({"q": "x"}, {"q": "x"})


# ----------------------------------------------------------------------------- MLQA


def test_mlqa_german_articles():
    assert mlqa_normalize("Dem Mann, des Hauses", "de") == "mann hauses"
    assert one("der Hund", ["Hund"], lang="de") == {"exact_match": 100.0, "f1": 100.0}
    # the same pair in English keeps "der": P=1/2, R=1 -> F1 2/3
    en = one("der Hund", ["Hund"], lang="en")
    assert en["exact_match"] == 0.0
    assert en["f1"] == pytest.approx(100 * 2 / 3)
    # whole words only: "derselbe" keeps its "der"
    assert mlqa_normalize("derselbe Tag", "de") == "derselbe tag"


def test_mlqa_chinese_is_character_level():
    assert mlqa_normalize("北京是中国的首都。", "zh") == "北 京 是 中 国 的 首 都"
    assert mlqa_normalize("我在New York住", "zh") == "我 在 new york 住"
    # [北,京,市] vs [北,京]: 2 shared, P=2/3, R=1 -> F1 = 0.8
    zh = one("北京市", ["北京"], lang="zh")
    assert zh["exact_match"] == 0.0
    assert zh["f1"] == pytest.approx(80.0)
    # SQuAD sees one token each, so no overlap at all
    assert one("北京市", ["北京"])["f1"] == 0.0


def test_mlqa_unicode_punctuation():
    # guillemets, inverted question mark, em dash, Devanagari danda are all category P*
    assert mlqa_normalize("«Hola» — ¿Qué?", "es") == "hola qué"
    assert one("भारत।", ["भारत"], lang="hi")["exact_match"] == 100.0
    # '$' comes from string.punctuation; '€' is a currency symbol (Sc), not punctuation
    assert one("$5", ["5"], lang="en")["exact_match"] == 100.0
    assert one("€5", ["5"], lang="en")["exact_match"] == 0.0


def test_mlqa_other_languages_articles():
    assert one("los perros", ["perros"], lang="es")["exact_match"] == 100.0
    assert one("những con mèo", ["con mèo"], lang="vi")["exact_match"] == 100.0
    # hi: no article removal, but whitespace tokenisation
    assert mlqa_normalize("the  भारत", "hi") == "the भारत"
    # ar: the script replaces every "ال" with a space, word-initial or not
    assert mlqa_normalize("الكتاب", "ar") == "كتاب"
    assert mlqa_normalize("مال", "ar") == "م"


def test_mlqa_multiple_golds_and_empty_prediction():
    scores = mlqa_em_f1({"a": "", "b": "die Katze"}, {"a": ["x"], "b": ["Hund", "Katze"]}, "de")
    assert scores == {"exact_match": 50.0, "f1": 50.0}


def test_mlqa_unknown_language():
    with pytest.raises(XScaleError, match="unknown language 'fr'"):
        mlqa_em_f1({"q": "x"}, {"q": ["x"]}, "fr")


# ----------------------------------------------------------------------------- classification


def test_accuracy():
    assert accuracy([1, 0, 1, 1], [1, 1, 1, 0]) == {"accuracy": 50.0}
    assert accuracy(["a"], ["a"]) == {"accuracy": 100.0}
    with pytest.raises(ValueError):
        accuracy([1], [1, 2])
    with pytest.raises(ValueError):
        accuracy([], [])


# ----------------------------------------------------------------------------- tagging


def test_seqeval_entity_f1_hand_case():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "O"]]
    # gold: PER(0-1) LOC(3) ORG; pred: PER(0-1) ORG(3) ORG; 2 of 3 right on both sides
    scores = seqeval_f1(gold, pred)
    assert scores["precision"] == pytest.approx(200 / 3)
    assert scores["recall"] == pytest.approx(200 / 3)
    assert scores["f1"] == pytest.approx(200 / 3)


def test_seqeval_default_mode_is_lenient_and_boundaries_matter():
    # default (conlleval) mode: an entity may start with I-
    assert seqeval_f1([["B-PER", "I-PER"]], [["I-PER", "I-PER"]])["f1"] == 100.0
    # a wrong boundary makes the whole entity wrong
    assert seqeval_f1([["B-PER", "I-PER"]], [["B-PER", "O"]])["f1"] == 0.0


def test_pos_uses_seqeval_chunks_like_xtreme():
    # seqeval reads runs of one tag as one chunk: gold NOUN(0-1) VERB(2),
    # pred NOUN(0) VERB(1-2) -> no chunk matches, though 2 of 3 tokens are right
    scores = pos_accuracy_f1([["NOUN", "NOUN", "VERB"]], [["NOUN", "VERB", "VERB"]])
    assert scores["f1"] == 0.0
    assert scores["accuracy"] == pytest.approx(200 / 3)
    same = pos_accuracy_f1([["DET", "NOUN", "VERB"]], [["DET", "NOUN", "VERB"]])
    assert same["f1"] == 100.0 and same["accuracy"] == 100.0
    # seqeval>=1 types: SCONJ and CCONJ are both "CONJ" (documented quirk)
    quirk = pos_accuracy_f1([["SCONJ"]], [["CCONJ"]])
    assert quirk["f1"] == 100.0 and quirk["accuracy"] == 0.0


def test_tagging_length_mismatch():
    with pytest.raises(ValueError, match="sequence 0"):
        seqeval_f1([["O", "O"]], [["O"]])


# ----------------------------------------------------------------------------- BUCC


CANDS = [("s1", "t1", 0.9), ("s2", "t2", 0.8), ("s3", "t3", 0.7), ("s4", "t4", 0.6)]
GOLD = {("s1", "t1"), ("s3", "t3"), ("s5", "t5")}


def test_bucc_threshold_selection_hand_case():
    # walk by score: F1 after 1 = 0.5 (thr 0.85), after 2 = 0.4, after 3 = 2/3 (thr 0.65),
    # after 4 = 4/7 -> best threshold 0.65, keeping s1 s2 s3: 2 right of 3, 2 of 3 gold
    scores = bucc_f1(CANDS, GOLD)
    assert scores["threshold"] == pytest.approx(0.65)
    assert scores["precision"] == pytest.approx(200 / 3)
    assert scores["recall"] == pytest.approx(200 / 3)
    assert scores["f1"] == pytest.approx(200 / 3)


def test_bucc_duplicates_keep_their_max_score():
    assert bucc_f1([*CANDS, ("s2", "t2", 0.5)], GOLD) == bucc_f1(CANDS, GOLD)
    # s3-t3 raised to 0.95: order s3 s1 s2 s4; F1 0.5, 0.8 (thr (0.9+0.8)/2), 2/3, 4/7
    scores = bucc_f1([*CANDS, ("s3", "t3", 0.95)], GOLD)
    assert scores["threshold"] == pytest.approx(0.85)
    assert scores["precision"] == pytest.approx(100.0)
    assert scores["recall"] == pytest.approx(200 / 3)
    assert scores["f1"] == pytest.approx(80.0)


def test_bucc_given_threshold_and_edge_cases():
    fixed = bucc_f1(CANDS, GOLD, threshold=0.75)  # keeps s1, s2: 1 right
    assert fixed["precision"] == pytest.approx(50.0)
    assert fixed["recall"] == pytest.approx(100 / 3)
    assert fixed["f1"] == pytest.approx(40.0)
    last = bucc_f1([("a", "x", 0.5)], {("a", "x")})  # best at the last candidate
    assert last == {"f1": 100.0, "precision": 100.0, "recall": 100.0, "threshold": 0.5}
    none_right = bucc_f1([("a", "y", 0.5)], {("a", "x")})
    assert none_right == {"f1": 0.0, "precision": 0.0, "recall": 0.0, "threshold": 0.0}


def test_mine_bucc_ratio_margin_hand_case():
    # cos(src, trg): s0: t0 0.6, t1 1.0 | s1: t0 0.8, t1 0.0; k=2 means all neighbours
    # knn means: s0 0.8, s1 0.4, t0 0.7, t1 0.5
    # s0-t1: 1.0 / ((0.8+0.5)/2) = 1/0.65 ; s1-t0: 0.8 / ((0.4+0.7)/2) = 0.8/0.55
    src = np.array([[2.0, 0.0], [0.0, 3.0]])  # not unit length: mining normalises
    trg = np.array([[0.6, 0.8], [1.0, 0.0]])
    mined = mine_bucc(src, trg, ["s0", "s1"], ["t0", "t1"], k=2)
    assert [(s, t) for s, t, _ in mined] == [("s0", "t1"), ("s1", "t0")]
    assert mined[0][2] == pytest.approx(1 / 0.65, rel=1e-5)
    assert mined[1][2] == pytest.approx(0.8 / 0.55, rel=1e-5)


def test_mine_bucc_drops_repeated_sentences_like_xtreme():
    src = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    trg = np.array([[0.6, 0.8], [1.0, 0.0]])
    mined = mine_bucc(src, trg, ["s0", "s1", "s2"], ["t0", "t1"], k=2, src_texts=["a", "b", "a"])
    # "a" is mined once (same numbers as above) but cannot map back to one id
    assert [(s, t) for s, t, _ in mined] == [("s1", "t0")]
    assert mined[0][2] == pytest.approx(0.8 / 0.55, rel=1e-5)


def test_mine_then_score_recovers_a_permutation():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 16))
    perm = rng.permutation(50)
    y = x[perm] + 0.01 * rng.normal(size=(50, 16))
    src_ids = [f"s{i}" for i in range(50)]
    trg_ids = [f"t{j}" for j in range(50)]
    gold = {(f"s{perm[j]}", f"t{j}") for j in range(50)}
    mined = mine_bucc(x, y, src_ids, trg_ids)
    assert bucc_f1(mined, gold)["f1"] == pytest.approx(100.0)


# ----------------------------------------------------------------------------- Tatoeba


def test_tatoeba_accuracy_hand_case():
    src = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    good = np.array([[2.0, 0.1], [0.1, 1.0], [1.0, 0.9]])
    assert tatoeba_accuracy(src, good) == {"accuracy": 100.0}
    bad = np.array([[2.0, 0.1], [0.1, 1.0], [1.0, 0.1]])  # t2 is closest to s0
    assert tatoeba_accuracy(src, bad)["accuracy"] == pytest.approx(200 / 3)


def test_tatoeba_direction_is_xtremes_target_queries_source():
    src = np.array([[1.0, 0.0], [0.0, 1.0]])
    trg = np.array([[1.0, 0.05], [1.0, 0.1]])
    # each target queries the sources: t0 -> s0 right, t1 -> s0 wrong
    assert tatoeba_accuracy(src, trg)["accuracy"] == 50.0
    # querying the other way round would give 100 (s0 -> t0, s1 -> t1)
    assert tatoeba_accuracy(trg, src)["accuracy"] == 100.0


def test_tatoeba_shape_mismatch():
    with pytest.raises(ValueError):
        tatoeba_accuracy(np.zeros((2, 3)), np.zeros((3, 3)))


# ----------------------------------------------------------------------------- summaries


def test_lang_summary():
    assert lang_summary({"en": 80.0, "de": 70.0, "zh": 60.0}) == {
        "avg": 70.0,
        "avg_non_en": 65.0,
        "gap_en": 15.0,
    }
    assert lang_summary({"de": 70.0, "zh": 60.0}) == {
        "avg": 65.0,
        "avg_non_en": 65.0,
        "gap_en": None,
    }
    assert lang_summary({"en": 80.0}) == {"avg": 80.0, "avg_non_en": None, "gap_en": None}
    assert lang_summary({}) == {"avg": None, "avg_non_en": None, "gap_en": None}
    assert lang_summary({"en": 90.0, "de": None, "fr": 70.0})["gap_en"] == 20.0


# ----------------------------------------------------------------------------- mAP@k (LAReQA)


def test_average_precision_at_k_by_hand():
    from xscale.tasks.metrics import average_precision_at_k

    # relevant {1, 0} found at ranks 2 and 4: (1/2 + 2/4) / 2 = 0.5
    assert average_precision_at_k([3, 1, 4, 0, 2], {0, 1}, 20) == 0.5
    # cut at rank 3: only the rank-2 hit counts, over min(2, 3) = 2 relevant: 0.25
    assert average_precision_at_k([3, 1, 4, 0, 2], {0, 1}, 3) == 0.25
    # more relevant than k: normalised by k (two hits in the top 2 of 3 relevant, k=2: 1.0)
    assert average_precision_at_k([5, 6, 7], {5, 6, 7}, 2) == 1.0
    with pytest.raises(XScaleError, match="at least one relevant"):
        average_precision_at_k([0, 1], set(), 20)


def test_map_at_k_ranks_by_score_by_hand():
    from xscale.tasks.metrics import map_at_k

    scores = np.array([[0.1, 0.9, 0.3, 0.8, 0.2], [0.5, 0.1, 0.4, 0.3, 0.2]])
    relevant = [frozenset({1, 3}), frozenset({1})]
    # query 0: order 1, 3, ... -> AP 1; query 1: its answer ranked 5th -> AP 1/5
    assert map_at_k(scores, relevant, 20) == {"map_at_20": pytest.approx(60.0)}
    assert map_at_k(scores, relevant, 3) == {"map_at_3": pytest.approx(50.0)}  # 5th is past k
    with pytest.raises(XScaleError, match="queries x pool"):
        map_at_k(scores, relevant[:1])


def test_map_at_k_equals_sklearn_average_precision_when_the_pool_is_within_k():
    """XTREME's utils_lareqa scores with sklearn's average_precision_score over the whole pool;
    with every candidate within k (and no ties) the two agree."""
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    from xscale.tasks.metrics import map_at_k

    rng = np.random.default_rng(0)
    scores = rng.normal(size=(30, 18))
    relevant = [
        frozenset(rng.choice(18, size=rng.integers(1, 6), replace=False).tolist())
        for _ in range(30)
    ]
    want = []
    for row, rel in zip(scores, relevant):
        y = np.zeros(18)
        y[list(rel)] = 1
        want.append(sklearn_metrics.average_precision_score(y, row))
    assert map_at_k(scores, relevant, 20)["map_at_20"] == pytest.approx(100 * np.mean(want))
