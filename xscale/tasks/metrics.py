"""Evaluation metrics, computed exactly as XTREME's official evaluation computes them.

Conventions
-----------
- Every score is on a 0-100 scale, as in the XTREME tables (accuracy 87.5, not 0.875).
- Every metric function returns ``dict[str, float]`` keyed by metric name (``"f1"``,
  ``"exact_match"``, ``"accuracy"``, ...), so a caller can log ``<task>.<lang>.<metric>``.
- Pure functions: no files, no model code. Mismatched inputs raise ``ValueError``.

Sources (XTREME's ``evaluate.py`` maps each task to one of these):
- XQuAD, TyDiQA-GoldP: ``third_party/evaluate_squad.py``, which XTREME's ``install_tools.sh``
  downloads as the official SQuAD v1.1 script -> :func:`squad_em_f1`.
- MLQA: ``third_party/evaluate_mlqa.py`` = MLQA's ``mlqa_evaluation_v1.py`` -> :func:`mlqa_em_f1`.
- PAN-X and UD-POS: ``f1`` in ``evaluate.py``, i.e. ``seqeval.metrics.f1_score`` on the tag
  sequences (yes, for POS too) -> :func:`seqeval_f1`, :func:`pos_accuracy_f1`.
- XNLI, PAWS-X, Tatoeba: ``accuracy`` -> :func:`accuracy`, :func:`tatoeba_accuracy`.
- BUCC: ``third_party/utils_retrieve.py`` (``mine_bitext``, ``bucc_optimize``, ``bucc_eval``,
  from LASER) -> :func:`mine_bucc`, :func:`bucc_f1`.
"""

from __future__ import annotations

import functools
import re
import string
import sys
import unicodedata
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence, Set

import numpy as np

from xscale.errors import XScaleError

# --------------------------------------------------------------------------- SQuAD v1.1


def squad_normalize(s: str) -> str:
    """SQuAD v1.1 ``normalize_answer``: lower, drop ASCII punctuation, drop a/an/the, fix spaces."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in _ASCII_PUNCT)
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


_ASCII_PUNCT = frozenset(string.punctuation)


def _token_f1(pred_tokens: list[str], gold_tokens: list[str]) -> float:
    """The shared SQuAD/MLQA token F1 (0-1): bag-of-tokens overlap; 0 when nothing overlaps."""
    common = Counter(pred_tokens) & Counter(gold_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(pred_tokens)
    recall = num_same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def _em_f1_over(
    predictions: Mapping[str, str],
    references: Mapping[str, Sequence[str]],
    normalize: Callable[[str], str],
) -> dict[str, float]:
    """The ``evaluate`` loop of both official scripts.

    The total runs over the *references*: a question without a prediction scores 0 (the
    scripts print "Unanswered question ... will receive score 0"); predictions for ids not
    in the references are ignored. Each question takes the max over its gold answers.
    """
    if not references:
        raise ValueError("no reference questions to score")
    em_sum = f1_sum = 0.0
    for qid, golds in references.items():
        if isinstance(golds, str):
            raise ValueError(f"references[{qid!r}] must be a list of answer strings, not a str")
        if len(golds) == 0:
            raise ValueError(
                f"question {qid!r} has no gold answers; the SQuAD v1.1 / MLQA metric needs one"
            )
        if qid not in predictions:
            continue
        pred = normalize(predictions[qid])
        pred_tokens = pred.split()
        em = f1 = 0.0
        for gold in golds:
            g = normalize(gold)
            em = max(em, float(pred == g))
            f1 = max(f1, _token_f1(pred_tokens, g.split()))
        em_sum += em
        f1_sum += f1
    n = len(references)
    return {"exact_match": 100.0 * em_sum / n, "f1": 100.0 * f1_sum / n}


def squad_em_f1(
    predictions: Mapping[str, str], references: Mapping[str, Sequence[str]]
) -> dict[str, float]:
    """Exact match and F1 (0-100) as the official SQuAD v1.1 ``evaluate-v1.1.py``.

    ``predictions``: question id -> predicted answer text; ``references``: question id -> gold
    answer texts. Normalisation: lower case, remove ``string.punctuation``, remove the words
    a/an/the, collapse whitespace. An empty prediction gets EM 1 only against a gold answer
    that normalises to "" and always gets F1 0 (the script's ``num_same == 0`` branch).
    """
    return _em_f1_over(predictions, references, squad_normalize)


# --------------------------------------------------------------------------- MLQA

# Languages as in mlqa_evaluation_v1.py: WHITESPACE_LANGS and MIXED_SEGMENTATION_LANGS.
MLQA_WHITESPACE_LANGS = ("en", "es", "hi", "vi", "de", "ar")
MLQA_MIXED_SEGMENTATION_LANGS = ("zh",)
MLQA_LANGS = MLQA_WHITESPACE_LANGS + MLQA_MIXED_SEGMENTATION_LANGS

# remove_articles() of mlqa_evaluation_v1.py, verbatim. hi and zh: no articles ("Hindi/Chinese
# does not have formal articles"). vi is the script's own list (của|là|cái|chiếc|những).
# ar: the script's pattern '\sال^|ال'; its first alternative can never match (a '^' after
# consumed characters), so in effect EVERY occurrence of "ال" -- word-initial or not -- becomes
# a space. Kept as is: that is what the published MLQA numbers use.
_MLQA_ARTICLES: dict[str, str | None] = {
    "en": r"\b(a|an|the)\b",
    "es": r"\b(un|una|unos|unas|el|la|los|las)\b",
    "hi": None,
    "vi": r"\b(của|là|cái|chiếc|những)\b",
    "de": r"\b(ein|eine|einen|einem|eines|einer|der|die|das|den|dem|des)\b",
    "ar": r"\sال^|ال",
    "zh": None,
}

_CJK = re.compile(r"[\u4e00-\u9fa5]")  # the script's test for a Chinese character


@functools.cache
def mlqa_punctuation() -> frozenset[str]:
    """The script's ``PUNCT``: every code point below ``sys.maxunicode`` whose unicodedata
    category starts with "P", plus ``string.punctuation`` (which adds ASCII symbols such as
    ``$+<=>^`|~``). Depends on Python's Unicode database version, as the script does."""
    uni = {chr(i) for i in range(sys.maxunicode) if unicodedata.category(chr(i)).startswith("P")}
    return frozenset(uni.union(string.punctuation))


def _mixed_segmentation(text: str, punct: frozenset[str]) -> list[str]:
    """``mixed_segmentation``: each Chinese character (and punctuation mark) is its own token;
    runs of other characters are split on whitespace."""
    out: list[str] = []
    buf = ""
    for ch in text:
        if _CJK.search(ch) or ch in punct:
            if buf:
                out.extend(buf.split())
                buf = ""
            out.append(ch)
        else:
            buf += ch
    if buf:
        out.extend(buf.split())
    return out


def mlqa_normalize(s: str, lang: str) -> str:
    """``normalize_answer(s, lang)`` of mlqa_evaluation_v1.py:
    white_space_fix(remove_articles(remove_punc(lower(s)), lang), lang)."""
    if lang not in _MLQA_ARTICLES:
        raise XScaleError(
            f"MLQA metric: unknown language {lang!r}; the official script knows "
            f"{', '.join(MLQA_LANGS)}"
        )
    punct = mlqa_punctuation()
    s = s.lower()
    s = "".join(ch for ch in s if ch not in punct)
    pattern = _MLQA_ARTICLES[lang]
    if pattern is not None:
        s = re.sub(pattern, " ", s)
    tokens = _mixed_segmentation(s, punct) if lang in MLQA_MIXED_SEGMENTATION_LANGS else s.split()
    return " ".join(t for t in tokens if t.strip() != "")


def mlqa_em_f1(
    predictions: Mapping[str, str], references: Mapping[str, Sequence[str]], lang: str
) -> dict[str, float]:
    """Exact match and F1 (0-100) as MLQA's official ``mlqa_evaluation_v1.py``.

    ``lang`` is the language of the *answer* (the context language). Differences from SQuAD:
    punctuation is all Unicode punctuation; articles are removed per language; for zh the
    tokens are single Chinese characters, so F1 is character-level. Unknown ``lang`` raises
    XScaleError (the script raises too).
    """
    mlqa_normalize("", lang)  # validate lang even when nothing is scored
    return _em_f1_over(predictions, references, lambda s: mlqa_normalize(s, lang))


# --------------------------------------------------------------------------- classification


def accuracy(preds: Sequence, labels: Sequence) -> dict[str, float]:
    """``{"accuracy": 0-100}``: share of positions where prediction equals label (XTREME's
    ``accuracy`` for XNLI, PAWS-X, Tatoeba; also used for multiple choice)."""
    if len(preds) != len(labels):
        raise ValueError(f"{len(preds)} predictions but {len(labels)} labels")
    if len(preds) == 0:
        raise ValueError("accuracy of zero examples is undefined")
    correct = sum(int(p == y) for p, y in zip(preds, labels))
    return {"accuracy": 100.0 * correct / len(preds)}


# --------------------------------------------------------------------------- tagging


def _check_seqs(true_seqs: Sequence[Sequence[str]], pred_seqs: Sequence[Sequence[str]]) -> None:
    if len(true_seqs) != len(pred_seqs):
        raise ValueError(f"{len(true_seqs)} gold sequences but {len(pred_seqs)} predicted")
    for i, (t, p) in enumerate(zip(true_seqs, pred_seqs)):
        if len(t) != len(p):
            raise ValueError(f"sequence {i}: {len(t)} gold tags but {len(p)} predicted")


def seqeval_f1(
    true_seqs: Sequence[Sequence[str]], pred_seqs: Sequence[Sequence[str]]
) -> dict[str, float]:
    """``{"f1", "precision", "recall"}`` (0-100): XTREME's ``f1`` for PAN-X, i.e.
    ``seqeval.metrics`` ``f1_score``/``precision_score``/``recall_score`` in default
    (conlleval-like, non-strict) mode: micro-averaged over entity chunks."""
    from seqeval.metrics import f1_score, precision_score, recall_score

    _check_seqs(true_seqs, pred_seqs)
    y_true = [list(s) for s in true_seqs]
    y_pred = [list(s) for s in pred_seqs]
    with warnings.catch_warnings():
        # seqeval>=1 warns "X seems not to be NE tag" for every non-BIO tag (all UPOS tags)
        # and warns on zero divisions; the scores themselves are unaffected.
        warnings.simplefilter("ignore")
        return {
            "f1": 100.0 * float(f1_score(y_true, y_pred)),
            "precision": 100.0 * float(precision_score(y_true, y_pred)),
            "recall": 100.0 * float(recall_score(y_true, y_pred)),
        }


def pos_accuracy_f1(
    true_seqs: Sequence[Sequence[str]], pred_seqs: Sequence[Sequence[str]]
) -> dict[str, float]:
    """UD-POS scores: ``{"f1", "precision", "recall", "accuracy"}`` (0-100).

    ``f1`` is what XTREME reports for UD-POS: ``evaluate.py`` maps udpos to the same seqeval
    ``f1`` as PAN-X, applied to bare UPOS tags. seqeval then reads the first letter of a tag
    as its chunk prefix and (seqeval>=1.0) the rest as its type, so runs of the same tag merge
    into one "chunk" and a chunk counts only if its whole extent matches; SCONJ and CCONJ both
    get type "CONJ". XTREME's scripts pin no seqeval version; its 2020 results used 0.0.12,
    whose type is the whole tag, so the two differ only where SCONJ/CCONJ meet. ``accuracy``
    is plain token accuracy, reported beside it for reference.
    """
    scores = seqeval_f1(true_seqs, pred_seqs)
    gold = [t for s in true_seqs for t in s]
    pred = [t for s in pred_seqs for t in s]
    scores["accuracy"] = accuracy(pred, gold)["accuracy"] if gold else 0.0
    return scores


# --------------------------------------------------------------------------- retrieval


def _l2_normalize(x: np.ndarray) -> np.ndarray:
    """``faiss.normalize_L2``: rows scaled to unit norm; all-zero rows stay zero."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be a 2-d array, got shape {x.shape}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.where(norms > 0, x / np.where(norms > 0, norms, 1), x)


def _knn_ip(query: np.ndarray, db: np.ndarray, k: int, block: int = 2048):
    """k nearest rows of ``db`` by inner product for each query row (``faiss.IndexFlatIP``),
    best first. Blocked so memory stays at ``block x len(db)`` floats."""
    n = query.shape[0]
    sims = np.empty((n, k), dtype=np.float32)
    inds = np.empty((n, k), dtype=np.int64)
    for start in range(0, n, block):
        s = query[start : start + block] @ db.T
        part = np.argpartition(-s, k - 1, axis=1)[:, :k]  # k <= len(db) always
        ps = np.take_along_axis(s, part, axis=1)
        order = np.argsort(-ps, axis=1, kind="stable")
        sims[start : start + block] = np.take_along_axis(ps, order, axis=1)
        inds[start : start + block] = np.take_along_axis(part, order, axis=1)
    return sims, inds


def _unify(texts: Sequence[str]) -> tuple[list[int], list[str]]:
    """``text_load_unify``: index of each line's text among the unique texts (first-seen order)."""
    sent2ind: dict[str, int] = {}
    inds = [sent2ind.setdefault(t, len(sent2ind)) for t in texts]
    return inds, list(sent2ind)


def mine_bucc(
    src_emb: np.ndarray,
    trg_emb: np.ndarray,
    src_ids: Sequence[str],
    trg_ids: Sequence[str],
    k: int = 4,
    src_texts: Sequence[str] | None = None,
    trg_texts: Sequence[str] | None = None,
    threshold: float = 0.0,
) -> list[tuple[str, str, float]]:
    """Candidate pairs ``(src_id, trg_id, score)`` by margin-based mining, as XTREME's
    ``mine_bitext(mode='mine', retrieval='max', margin='ratio', neighborhood=4, dist='cosine')``.

    Embeddings are L2-normalised; each sentence's k nearest neighbours in the other language
    are found both ways; a pair scores ``cos(x, y) / ((mean_knn(x) + mean_knn(y)) / 2)``; each
    source takes its best-scoring forward candidate and each target its best backward one; all
    of those are visited by decreasing score, and a pair is kept only when neither side was
    kept before and its score is above ``threshold`` (XTREME: 0). numpy only, exact search.

    With ``src_texts``/``trg_texts``, XTREME's text handling is reproduced too: identical
    sentences are mined once (``text_load_unify``), and a candidate whose sentence occurs more
    than once in its corpus is dropped, because XTREME's ``read_sent2id`` cannot map it back
    to one id. Without texts every row is its own sentence.
    """
    x = _l2_normalize(src_emb)
    y = _l2_normalize(trg_emb)
    if len(src_ids) != x.shape[0] or len(trg_ids) != y.shape[0]:
        raise ValueError("one id per embedding row is required on both sides")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"embedding sizes differ: {x.shape[1]} vs {y.shape[1]}")
    if k < 1:
        raise ValueError("k must be >= 1")

    def side(emb, ids, texts):
        if texts is None:
            return emb, list(ids)
        if len(texts) != len(ids):
            raise ValueError("one text per id is required")
        inds, uniq = _unify(texts)
        last = {u: i for i, u in enumerate(inds)}  # unique_embeddings keeps the last row
        counts = Counter(inds)
        uid = [ids[last[u]] if counts[u] == 1 else None for u in range(len(uniq))]
        return emb[[last[u] for u in range(len(uniq))]], uid

    x, x_ids = side(x, src_ids, src_texts)
    y, y_ids = side(y, trg_ids, trg_texts)
    if x.shape[0] == 0 or y.shape[0] == 0:
        return []

    x2y_sim, x2y_ind = _knn_ip(x, y, min(y.shape[0], k))
    y2x_sim, y2x_ind = _knn_ip(y, x, min(x.shape[0], k))
    x2y_mean = x2y_sim.mean(axis=1)
    y2x_mean = y2x_sim.mean(axis=1)
    # score_candidates with margin 'ratio': a / b, b = (fwd_mean + bwd_mean) / 2
    fwd = x2y_sim / ((x2y_mean[:, None] + y2x_mean[x2y_ind]) / 2)
    bwd = y2x_sim / ((y2x_mean[:, None] + x2y_mean[y2x_ind]) / 2)
    fwd_best = x2y_ind[np.arange(x.shape[0]), fwd.argmax(axis=1)]
    bwd_best = y2x_ind[np.arange(y.shape[0]), bwd.argmax(axis=1)]
    src_ind = np.concatenate((np.arange(x.shape[0]), bwd_best))
    trg_ind = np.concatenate((fwd_best, np.arange(y.shape[0])))
    scores = np.concatenate((fwd.max(axis=1), bwd.max(axis=1)))

    out: list[tuple[str, str, float]] = []
    seen_src: set[int] = set()
    seen_trg: set[int] = set()
    for i in np.argsort(-scores, kind="stable"):
        s, t = int(src_ind[i]), int(trg_ind[i])
        if s in seen_src or t in seen_trg:
            continue
        seen_src.add(s)
        seen_trg.add(t)
        if scores[i] > threshold and x_ids[s] is not None and y_ids[t] is not None:
            out.append((x_ids[s], y_ids[t], float(scores[i])))
    return out


def bucc_f1(
    candidates: Iterable[tuple[str, str, float]],
    gold: Iterable[tuple[str, str]],
    threshold: float | None = None,
) -> dict[str, float]:
    """``{"f1", "precision", "recall", "threshold"}`` for BUCC, as XTREME's ``bucc_eval``.

    Duplicate candidate pairs keep their highest score (``read_candidate2score``). Without a
    ``threshold``, ``bucc_optimize`` picks it: candidates are walked by decreasing score and,
    at each new best F1 after the i-th, the threshold becomes the midpoint of the i-th and
    (i+1)-th scores. (XTREME indexes past the end when the best F1 is reached at the very
    last candidate; there the threshold is that candidate's score, which keeps all of them.)
    Pairs scoring ``>= threshold`` are extracted and scored against ``gold``. Pass the dev
    threshold to score a test set with it. P/R/F1 are 0-100; the threshold is a raw score.
    """
    cand2score: dict[tuple[str, str], float] = {}
    for src, trg, score in candidates:
        key = (src, trg)
        cand2score[key] = max(float(score), cand2score.get(key, float(score)))
    gold_set = {(s, t) for s, t in gold}

    if threshold is None:
        items = sorted(cand2score.items(), key=lambda kv: -kv[1])
        nextract = ncorrect = 0
        best_f1 = 0.0
        threshold = 0.0
        for i, (pair, score) in enumerate(items):
            nextract += 1
            ncorrect += pair in gold_set
            if ncorrect > 0:
                p = ncorrect / nextract
                r = ncorrect / len(gold_set)
                f1 = 2 * p * r / (p + r)
                if f1 > best_f1:
                    best_f1 = f1
                    nxt = items[i + 1][1] if i + 1 < len(items) else score
                    threshold = (score + nxt) / 2

    extracted = {pair for pair, score in cand2score.items() if score >= threshold}
    ncorrect = len(gold_set & extracted)
    if ncorrect > 0:
        precision = ncorrect / len(extracted)
        recall = ncorrect / len(gold_set)
        f1 = 2 * precision * recall / (precision + recall)
    else:
        precision = recall = f1 = 0.0
    return {
        "f1": 100.0 * f1,
        "precision": 100.0 * precision,
        "recall": 100.0 * recall,
        "threshold": float(threshold),
    }


def tatoeba_accuracy(
    src_emb: np.ndarray, trg_emb: np.ndarray, block: int = 2048
) -> dict[str, float]:
    """``{"accuracy": 0-100}`` for Tatoeba, as XTREME's ``similarity_search(x=src, y=trg,
    normalize=True)`` followed by ``accuracy`` against ``0..n-1``.

    Row i of ``src_emb`` (the non-English side) translates row i of ``trg_emb`` (English).
    Both sides are L2-normalised; the source rows are the index and each *target* row queries
    its nearest source row by L2 distance (= highest cosine for non-zero rows); the query is
    right when it retrieves its own index. Ties go to the lowest index.
    """
    x = _l2_normalize(src_emb)
    y = _l2_normalize(trg_emb)
    if x.shape != y.shape:
        raise ValueError(f"Tatoeba needs aligned embeddings, got {x.shape} and {y.shape}")
    if x.shape[0] == 0:
        raise ValueError("accuracy of zero examples is undefined")
    x_sq = (x * x).sum(axis=1)
    pred = np.empty(y.shape[0], dtype=np.int64)
    for start in range(0, y.shape[0], block):
        q = y[start : start + block]
        d = (q * q).sum(axis=1)[:, None] + x_sq[None, :] - 2 * (q @ x.T)
        pred[start : start + block] = d.argmin(axis=1)
    return accuracy(pred.tolist(), list(range(y.shape[0])))


# --------------------------------------------------------------------------- summaries


def lang_summary(per_lang: Mapping[str, float | None]) -> dict[str, float | None]:
    """``{"avg", "avg_non_en", "gap_en"}`` over one metric's per-language scores.

    ``avg``: mean over all languages (XTREME's ``avg_<metric>``); ``avg_non_en``: mean over
    languages other than ``en``; ``gap_en`` = ``en - avg_non_en``, the cross-lingual transfer
    gap (positive when English is better). Languages whose score is None are left out. A value
    that cannot be computed (no languages, no non-English language, no ``en``) is None.
    """
    scores = {k: float(v) for k, v in per_lang.items() if v is not None}
    non_en = [v for k, v in scores.items() if k != "en"]
    avg = sum(scores.values()) / len(scores) if scores else None
    avg_non_en = sum(non_en) / len(non_en) if non_en else None
    gap = None
    if "en" in scores and avg_non_en is not None:
        gap = scores["en"] - avg_non_en
    return {"avg": avg, "avg_non_en": avg_non_en, "gap_en": gap}


# --------------------------------------------------------------------------- mAP@k (LAReQA)


def average_precision_at_k(ranked: Sequence[int], relevant: Set[int], k: int) -> float:
    """AP@k of one ranking: sum over ranks i <= k holding a relevant item of precision@i,
    divided by min(|relevant|, k). With at most k relevant items (LAReQA: one answer sentence per
    language, at most 11 <= 20) this is the average precision of sklearn's
    ``average_precision_score`` (what XTREME's utils_lareqa computes) cut at rank k."""
    if not relevant:
        raise XScaleError("average precision needs at least one relevant item")
    hits = 0
    total = 0.0
    for i, item in enumerate(ranked[:k], start=1):
        if item in relevant:
            hits += 1
            total += hits / i
    return total / min(len(relevant), k)


def map_at_k(scores: np.ndarray, relevant: Sequence[Set[int]], k: int = 20) -> dict[str, float]:
    """``{"map_at_<k>": ...}`` (0-100; MLflow metric names cannot hold "@"): mean over queries
    (rows of `scores`, one column per candidate) of AP@k, candidates ranked by descending score
    (ties: lower index first). XTREME-R reports LAReQA and Mewsli-X as mAP@20."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[0] != len(relevant):
        raise XScaleError(
            f"map_at_k: {scores.shape} scores for {len(relevant)} queries (want queries x pool)"
        )
    if not len(relevant):
        return {f"map_at_{k}": 0.0}
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    aps = [average_precision_at_k(order[i].tolist(), rel, k) for i, rel in enumerate(relevant)]
    return {f"map_at_{k}": 100.0 * float(np.mean(aps))}
