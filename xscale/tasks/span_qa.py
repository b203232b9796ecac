"""Extractive (span) question answering: SQuAD v1.1/v2.0, XQuAD, MLQA, TyDiQA-GoldP.

example -> features: the question (stripped on the left and cut to `max_query_length` tokens,
as XTREME) and the context, encoded as XLM-R pairs ``<s> q </s></s> c </s>``; a context longer
than one window becomes several overlapping features (`doc_stride` tokens of overlap, as HF's
run_qa, reduced to half a window when `max_length` leaves less room). Each feature keeps what
scoring needs: the index and id of its example, the character offsets of its tokens in the
context (an (L, 2) int32 array; -1 for question and special tokens), the context, the gold
answers and the language. Token ids and offsets are numpy arrays: SQuAD's ~90k training
features would take gigabytes as Python lists.

Training labels: the start and end tokens of the first gold answer when it lies wholly inside
the window, else the <s> token (index 0) for both, as HF's run_qa (and SQuAD v2.0's
unanswerable questions). Head: Linear(hidden, 2) -> start/end logits.

Scoring (as XTREME's SQuAD post-processing): for each example, over all its features, the
`n_best` (20) highest start and end logits are paired; a pair is valid when both tokens are
context tokens, end >= start and the span has at most `max_answer_length` (30) tokens; the best
valid pair by start+end logit gives the answer text (context characters from the start token's
first to the end token's last). For SQuAD v2.0 the <s> pair's score (its minimum over features)
wins when higher: the answer is then "". Then EM/F1 (0-100): the official SQuAD v1.1 script's,
MLQA's language-aware ones for `mlqa`, and SQuAD v2.0's for `squad2`; main metric f1.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from xscale.errors import XScaleError
from xscale.tasks import metrics
from xscale.tasks.base import Example, Task
from xscale.tasks.padding import pad_batch

# Tasks whose questions may have no answer (SQuAD v2.0 style).
SPECIAL_TOKENS_IN_PAIR = 4  # <s> q </s></s> c </s>


class SpanHead(nn.Module):
    """Start and end logits for every token: (B, L, H) -> (B, L, 2)."""

    def __init__(self, hidden: int):
        super().__init__()
        self.qa_outputs = nn.Linear(hidden, 2)

    def forward(self, hidden_states: torch.Tensor, batch: dict) -> torch.Tensor:
        return self.qa_outputs(hidden_states)


class SpanQAFormat:
    name = "span_qa"
    trains = True

    def __init__(
        self,
        doc_stride: int = 128,
        max_query_length: int = 64,
        n_best: int = 20,
        max_answer_length: int = 30,
    ):
        self.doc_stride = doc_stride
        self.max_query_length = max_query_length
        self.n_best = n_best
        self.max_answer_length = max_answer_length

    # --- example -> features ----------------------------------------------------------------
    def featurize(self, task: Task, examples: list[Example], tokenizer, max_length: int):
        if not examples:
            return []
        query_max = min(self.max_query_length, max_length // 2)
        room = max_length - query_max - SPECIAL_TOKENS_IN_PAIR
        if room < 8:
            raise XScaleError(
                f"{task.name}: max_length {max_length} leaves no room for the context; span QA"
                " needs max_length >= 32 (XTREME uses 384)"
            )
        stride = min(self.doc_stride, room // 2)
        questions = self._cut_questions(
            [e.fields["question"].lstrip() for e in examples], tokenizer, query_max
        )
        contexts = [e.fields["context"] for e in examples]
        enc = tokenizer(
            questions,
            contexts,
            truncation="only_second",
            max_length=max_length,
            stride=stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
        )
        features = []
        for i, ex_index in enumerate(enc["overflow_to_sample_mapping"]):
            ex = examples[ex_index]
            offsets = np.asarray(enc["offset_mapping"][i], dtype=np.int32).reshape(-1, 2)
            offsets[[s != 1 for s in enc.sequence_ids(i)]] = -1
            start, end = self._label(ex, offsets)
            features.append(
                {
                    "input_ids": np.asarray(enc["input_ids"][i], dtype=np.int32),
                    "start_position": start,
                    "end_position": end,
                    "example_index": ex_index,
                    "example_id": ex.fields.get("id", ex.guid),
                    "offsets": offsets,
                    "context": ex.fields["context"],
                    "answers": [a["text"] for a in ex.fields["answers"]],
                    "is_impossible": bool(ex.fields.get("is_impossible", False)),
                    "lang": ex.lang,
                }
            )
        return features

    @staticmethod
    def _cut_questions(questions: list[str], tokenizer, query_max: int) -> list[str]:
        """Questions cut to `query_max` tokens (XTREME's max_query_length), at a token end."""
        enc = tokenizer(questions, add_special_tokens=False, return_offsets_mapping=True)
        out = []
        for q, ids, offs in zip(questions, enc["input_ids"], enc["offset_mapping"]):
            out.append(q if len(ids) <= query_max else q[: offs[query_max - 1][1]])
        return out

    @staticmethod
    def _label(ex: Example, offsets: np.ndarray) -> tuple[int, int]:
        """Start/end token of the first gold answer in this window, else (0, 0) (<s>)."""
        answers = ex.fields["answers"]
        if ex.fields.get("is_impossible") or not answers or not answers[0]["text"]:
            return 0, 0
        start_char = answers[0]["answer_start"]
        end_char = start_char + len(answers[0]["text"])
        ctx = np.flatnonzero(offsets[:, 0] >= 0)
        if len(ctx) == 0:
            return 0, 0
        first, last = int(ctx[0]), int(ctx[-1])
        if offsets[first][0] > start_char or offsets[last][1] < end_char:
            return 0, 0  # the answer is not wholly inside this window
        k = first
        while k <= last and offsets[k][0] <= start_char:
            k += 1
        start = k - 1
        k = last
        while k >= first and offsets[k][1] >= end_char:
            k -= 1
        return int(start), int(k + 1)

    # --- features -> batch ------------------------------------------------------------------
    def collate(self, features: list[dict], pad_id: int) -> dict:
        ids, mask = pad_batch([f["input_ids"] for f in features], pad_id)
        labels = torch.tensor(
            [[f["start_position"], f["end_position"]] for f in features], dtype=torch.long
        )
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}

    def make_head(self, task: Task, hidden_size: int):
        return SpanHead(hidden_size)

    @staticmethod
    def loss(logits: torch.Tensor, batch: dict) -> torch.Tensor:
        logits = logits.float()
        if "attention_mask" in batch:  # never pick a padding token
            pad = batch["attention_mask"].unsqueeze(-1) == 0
            logits = logits.masked_fill(pad, -1e4)
        start = F.cross_entropy(logits[..., 0], batch["labels"][:, 0])
        end = F.cross_entropy(logits[..., 1], batch["labels"][:, 1])
        return (start + end) / 2

    def predict(self, logits: torch.Tensor, batch: dict) -> list[dict]:
        """Per feature: its start and end logits (numpy float32, padding cut off)."""
        lengths = batch["attention_mask"].sum(dim=1).tolist()
        out = logits.detach().float().cpu().numpy()
        return [{"start": out[i, :n, 0], "end": out[i, :n, 1]} for i, n in enumerate(lengths)]

    # --- predictions -> scores --------------------------------------------------------------
    def answers(self, task: Task, predictions: list[dict], features: list[dict]) -> dict:
        """example_index -> predicted answer text."""
        by_example: dict[int, list[tuple[dict, dict]]] = defaultdict(list)
        for p, f in zip(predictions, features, strict=True):
            by_example[f["example_index"]].append((f, p))
        out = {}
        for index, pairs in by_example.items():
            best, best_text = -np.inf, ""
            null = np.inf
            for f, p in pairs:
                start, end, offsets = np.asarray(p["start"]), np.asarray(p["end"]), f["offsets"]
                null = min(null, float(start[0] + end[0]))
                starts = np.argsort(start, kind="stable")[::-1][: self.n_best]
                ends = np.argsort(end, kind="stable")[::-1][: self.n_best]
                for s in starts:
                    if s >= len(offsets) or offsets[s, 0] < 0:
                        continue
                    for e in ends:
                        if e >= len(offsets) or offsets[e, 0] < 0:
                            continue
                        if e < s or e - s + 1 > self.max_answer_length:
                            continue
                        score = float(start[s] + end[e])
                        if score > best:
                            best = score
                            best_text = f["context"][offsets[s, 0] : offsets[e, 1]].strip()
            if task.scoring == "squad_v2" and null > best:
                best_text = ""
            out[index] = best_text
        return out

    def export(self, task: Task, lang: str, predictions: list, features: list, out_dir) -> None:
        """XTREME's submission layout for QA (xquad, mlqa, tydiqa): ``<out>/test-<lang>.json``,
        one JSON object ``{question id: predicted answer text}`` with one entry per evaluated
        question (the answers `score` grades; "" for an unanswered SQuAD v2.0 question), in the
        order of the questions, UTF-8. XTREME's ``evaluate.py`` reads it with ``read_squad``."""

        texts = self.answers(task, predictions, features)
        ids: dict[int, str] = {}
        for f in features:
            ids.setdefault(f["example_index"], str(f["example_id"]))
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        body = {ids[i]: texts[i] for i in sorted(ids)}
        (out / f"test-{lang}.json").write_text(
            json.dumps(body, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
        )

    def score(self, task: Task, predictions: list[dict], features: list[dict]) -> dict[str, float]:
        if not features:
            return {}
        golds: dict[int, list[str]] = {}
        impossible: dict[int, bool] = {}
        ids: dict[int, str] = {}
        for f in features:
            golds[f["example_index"]] = f["answers"]
            impossible[f["example_index"]] = f["is_impossible"]
            ids[f["example_index"]] = f["example_id"]
        self._check_golds(task, golds, impossible, ids)
        preds = self.answers(task, predictions, features)
        if task.scoring == "squad_v2":  # unanswerable questions: "" is the right answer
            return _squad_v2(preds, golds, impossible)
        if task.scoring == "mlqa_norm":  # the answer's language is the context's
            return metrics.mlqa_em_f1(preds, golds, features[0]["lang"])
        return metrics.squad_em_f1(preds, golds)

    def check_examples(self, task: Task, examples: list, where: str) -> None:
        """Preflight: the gold answers of a test set, before anything trains (a file with
        blank answers was refused only when scored, after training)."""
        golds = {
            i: [a["text"] for a in e.fields.get("answers", [])] for i, e in enumerate(examples)
        }
        impossible = {i: bool(e.fields.get("is_impossible")) for i, e in enumerate(examples)}
        ids = {i: e.fields.get("id", e.guid) for i, e in enumerate(examples)}
        try:
            self._check_golds(task, golds, impossible, ids)
        except XScaleError as e:
            raise XScaleError(f"{where}: {e}") from None

    @staticmethod
    def _check_golds(task, golds, impossible, ids) -> None:
        blank = [k for k, v in golds.items() if not impossible[k] and not any(a.strip() for a in v)]
        if blank and len(blank) == len(golds):
            raise XScaleError(
                f"{task.name}: all {len(golds)} questions have blank gold answers (hidden labels,"
                " as in the TyDiQA-GoldP dev files XTREME distributes); their EM/F1 would be a"
                " meaningless 0. Use a file with gold answers (e.g. TyDiQA's own"
                " tydiqa-goldp-v1.1-dev release)"
            )
        if blank:
            raise XScaleError(
                f"{task.name}: question {ids[blank[0]]!r} (and {len(blank) - 1} more) has no gold"
                " answer text; SQuAD-style EM/F1 needs one"
            )


def _squad_v2(preds: dict, golds: dict, impossible: dict) -> dict[str, float]:
    """SQuAD v2.0's official EM/F1: an unanswerable question scores 1 exactly when the
    prediction is empty; answerable ones as SQuAD v1.1 (same normalisation)."""
    has = [k for k in golds if not impossible[k]]
    none = [k for k in golds if impossible[k]]
    total = {"exact_match": 0.0, "f1": 0.0}
    if has:
        part = metrics.squad_em_f1({k: preds.get(k, "") for k in has}, {k: golds[k] for k in has})
        for m in total:
            total[m] += part[m] * len(has)
    for k in none:
        right = 100.0 * (metrics.squad_normalize(preds.get(k, "")) == "")
        total["exact_match"] += right
        total["f1"] += right
    n = len(golds)
    return {m: v / n for m, v in total.items()}
