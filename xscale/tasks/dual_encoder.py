"""Dual-encoder retrieval, fine-tuned: XTREME-R's LAReQA and Mewsli-X.

One encoder embeds queries and candidates alike (shared weights, as XTREME-R's baselines):

- LAReQA: query = the question; candidate = its answer sentence with the paragraph as second
  segment (``<s> sentence </s></s> context </s>``). Trained on English SQuAD v1.1: each
  question's answer sentence is the sentence of its context holding the answer start (contexts
  cut into sentences at ``.!?`` followed by space, `split_sentences`); evaluated on XQuAD-R's
  multilingual pool (its own sentence breaks).
- Mewsli-X: query = the mention with its sentence as second segment; candidate = the entity's
  title with its description. Trained on English Wikipedia pairs; evaluated on WikiNews mentions
  against the candidate set.

Embedding: the mean of the last layer's states over non-padding tokens, L2-normalised
(`DualEncoderHead`); similarity is the dot product of unit vectors (cosine). Training: in-batch
softmax, the queries of a batch against its candidates (each query's own candidate is its
positive, every other candidate of the batch a negative; a candidate equal to the query's own,
e.g. two questions answered by one sentence, is masked out, not used as a negative), logits
scaled by `SCALE`. A batch stacks its queries and then its candidates in one (2B, L) tensor, so
the multi-task model runs them through the encoder in one forward.

Scoring (as XTREME-R): mean average precision at 20 (`metrics.map_at_k`), per language, every
query of a language searching the whole pool; candidates ranked by cosine, ties to the lower
index. English dev (model selection): the dev questions against the pool of their distinct
candidates. Export: ``<pred_dir>/test-<lang>.jsonl``, one line per query, ``{"id", "ranking"}``
with the ids of its 20 best candidates in order, from which `score_export` recomputes the
logged score.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from xscale.errors import XScaleError
from xscale.tasks import metrics
from xscale.tasks.base import Example, RetrievalPool, Task
from xscale.tasks.padding import pad_batch

K = 20
SCALE = 20.0  # logit scale of the in-batch softmax (cosine similarities lie in [-1, 1])
MASKED = -1e4
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def split_sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) character spans of the sentences of `text`: cut after ``.``, ``!`` or ``?``
    followed by white space; the space goes with no sentence."""
    spans, start = [], 0
    for m in _SENTENCE_END.finditer(text):
        spans.append((start, m.start()))
        start = m.end()
    if start < len(text) or not spans:
        spans.append((start, len(text)))
    return spans


def as_pair(ex: Example) -> dict:
    """`ex` as dual_encoder fields: as it is, or, for a SQuAD (span_qa) example, the question
    and its answer sentence with the context (the LAReQA pair)."""
    f = ex.fields
    if "query" in f:
        return f
    if "answers" not in f:
        raise XScaleError(f"example {ex.guid}: neither a dual_encoder nor a span_qa example")
    answers = f["answers"]
    if not answers:
        raise XScaleError(f"example {ex.guid}: a LAReQA training question needs an answer")
    context, start = f["context"], int(answers[0]["answer_start"])
    sentence = next((context[s:e] for s, e in split_sentences(context) if s <= start < e), context)
    return {"query": [f["question"]], "candidate": [sentence, context], "key": sentence}


class DualEncoderHead(nn.Module):
    """(N, L, H) -> (N, H) unit vectors: masked mean over the tokens, L2-normalised. No
    parameters: the encoder is the model."""

    def forward(self, hidden_states: torch.Tensor, batch: dict) -> torch.Tensor:
        m = batch["attention_mask"].unsqueeze(-1).to(hidden_states.dtype)
        pooled = (hidden_states * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)
        return F.normalize(pooled.float(), dim=-1)


def _encode(tokenizer, segments: list[list[str]], max_length: int) -> list[list[int]]:
    """Token ids of texts given as one or two segments (a pair truncated longest first)."""
    out: list[list[int]] = [[] for _ in segments]
    for n in (1, 2):
        idx = [i for i, s in enumerate(segments) if len(s) == n]
        if not idx:
            continue
        cols = [[segments[i][j] for i in idx] for j in range(n)]
        enc = tokenizer(*cols, truncation=True, max_length=max_length)
        for i, ids in zip(idx, enc["input_ids"]):
            out[i] = list(ids)
    bad = [i for i, s in enumerate(segments) if len(s) not in (1, 2)]
    if bad:
        raise XScaleError(f"dual_encoder: a text has {len(segments[bad[0]])} segments (1 or 2)")
    return out


class DualEncoderFormat:
    name = "dual_encoder"
    trains = True

    # --- example -> features ----------------------------------------------------------------
    def featurize(self, task: Task, examples: list[Example], tokenizer, max_length: int):
        """One feature per (query, candidate) pair: ``q`` and ``c`` token ids, ``key``."""
        pairs = [as_pair(ex) for ex in examples]
        q = _encode(tokenizer, [p["query"] for p in pairs], max_length)
        c = _encode(tokenizer, [p["candidate"] for p in pairs], max_length)
        return [{"q": a, "c": b, "key": p["key"]} for a, b, p in zip(q, c, pairs)]

    def featurize_texts(self, texts: list[tuple[str, ...]], tokenizer, max_length: int):
        """One query-side feature per text (embedding only: pool queries and candidates)."""
        return [{"q": ids} for ids in _encode(tokenizer, [list(t) for t in texts], max_length)]

    def collate(self, features: list[dict], pad_id: int) -> dict:
        qs = [f["q"] for f in features]
        cs = [f["c"] for f in features if "c" in f]
        if cs and len(cs) != len(qs):
            raise XScaleError("dual_encoder: a batch mixes pairs and single texts")
        ids, mask = pad_batch(qs + cs, pad_id)
        batch = {"input_ids": ids, "attention_mask": mask, "n_queries": len(qs)}
        if cs:
            keys = [f["key"] for f in features]
            same = torch.tensor([[a == b for b in keys] for a in keys])
            batch["negative_mask"] = same & ~torch.eye(len(keys), dtype=torch.bool)
            batch["labels"] = torch.arange(len(qs))
        return batch

    def make_head(self, task: Task, hidden_size: int):
        return DualEncoderHead()

    def loss(self, logits, batch: dict):
        n = int(batch["n_queries"])
        q, c = logits[:n], logits[n:]
        scores = SCALE * q @ c.T
        scores = scores.masked_fill(batch["negative_mask"], MASKED)
        return F.cross_entropy(scores, batch["labels"])

    def predict(self, logits, batch: dict) -> list:
        """Unit embeddings: (query, candidate) per pair feature, one vector per text feature."""
        n = int(batch["n_queries"])
        emb = logits.detach().float().cpu().numpy()
        if emb.shape[0] == n:
            return list(emb)
        return list(zip(emb[:n], emb[n:]))

    # --- scoring ----------------------------------------------------------------------------
    def score(self, task: Task, predictions: list, features: list[dict]) -> dict[str, float]:
        """English dev: each query against the pool of the distinct candidates of the set."""
        if not predictions:
            return {task.metric: 0.0}
        index: dict[str, int] = {}
        pool = []
        for (_, c), f in zip(predictions, features):
            if f["key"] not in index:
                index[f["key"]] = len(pool)
                pool.append(c)
        q = np.stack([p[0] for p in predictions])
        relevant = [frozenset({index[f["key"]]}) for f in features]
        ranked = top_k(q, np.stack(pool), K)
        return {task.metric: map_of_rankings(ranked, relevant, K)}

    def evaluate_pool(
        self, task: Task, pool: RetrievalPool, embed, pred_dir=None
    ) -> dict[str, dict[str, float]]:
        """mAP@20 per language of the pool's queries; `embed(texts)` -> (n, H) unit vectors.
        With `pred_dir`, each language's rankings are written there (module docstring)."""
        cand = embed([text for _, text in pool.candidates])
        out = {}
        for lang, queries in pool.queries.items():
            if not queries:
                raise XScaleError(f"task {task.name}: no queries in {lang!r} to score")
            q = embed([text for _, text, _ in queries])
            ranked = top_k(q, cand, K)
            relevant = [rel for _, _, rel in queries]
            out[lang] = {task.metric: map_of_rankings(ranked, relevant, K)}
            if pred_dir is not None:
                export_rankings(
                    lang, [qid for qid, _, _ in queries], ranked, pool.candidates, pred_dir
                )
        return out

    def export(self, task: Task, lang: str, predictions: list, features: list, out_dir) -> None:
        raise XScaleError("dual_encoder: test predictions are written by evaluate_pool")


def top_k(queries: np.ndarray, candidates: np.ndarray, k: int, chunk: int = 1024) -> np.ndarray:
    """(n_queries, min(k, pool)) candidate indices by descending dot product, ties to the lower
    index (the order of a stable sort), computed a chunk of queries at a time."""
    candidates = np.asarray(candidates, dtype=np.float32)
    k = min(k, candidates.shape[0])
    out = np.zeros((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), chunk):
        s = np.asarray(queries[start : start + chunk], dtype=np.float32) @ candidates.T
        if k < s.shape[1]:  # keep every candidate scoring at least the k-th best, then sort
            kth = np.partition(s, s.shape[1] - k, axis=1)[:, s.shape[1] - k]
            for i, row in enumerate(s):
                idx = np.flatnonzero(row >= kth[i])
                out[start + i] = idx[np.lexsort((idx, -row[idx]))][:k]
        else:
            out[start : start + len(s)] = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return out


def map_of_rankings(ranked, relevant, k: int = K) -> float:
    """mAP@k (0-100) of rankings (candidate indices, best first) against relevant sets."""
    if len(ranked) != len(relevant):
        raise XScaleError(f"map: {len(ranked)} rankings for {len(relevant)} queries")
    aps = [metrics.average_precision_at_k(list(r), rel, k) for r, rel in zip(ranked, relevant)]
    return 100.0 * float(np.mean(aps)) if aps else 0.0


def export_rankings(lang: str, query_ids, ranked, candidates, out_dir) -> None:
    """``<out>/test-<lang>.jsonl``: {"id": query id, "ranking": [candidate id, ...]}."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lines = [
        json.dumps({"id": qid, "ranking": [candidates[j][0] for j in row]}, ensure_ascii=False)
        for qid, row in zip(query_ids, ranked)
    ]
    tmp = out / f".test-{lang}.jsonl.tmp"
    tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    tmp.replace(out / f"test-{lang}.jsonl")


def score_export(path, gold: dict[str, set[str]], k: int = K) -> float:
    """mAP@k (0-100) of an exported rankings file against {query id: relevant candidate ids}."""
    aps = []
    seen = set()
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        row = json.loads(line)
        if row["id"] not in gold:
            raise XScaleError(f"{path}:{n}: query {row['id']!r} is not in the gold set")
        seen.add(row["id"])
        ranking = row["ranking"]
        aps.append(metrics.average_precision_at_k(ranking, gold[row["id"]], k))
    if seen != set(gold):
        raise XScaleError(f"{path}: {len(set(gold) - seen)} gold queries have no ranking")
    return 100.0 * float(np.mean(aps)) if aps else 0.0
