"""Multiple choice: HellaSwag, CommonsenseQA, Cosmos QA, Social IQa, COPA and XCOPA.

example -> feature: one XLM-R pair per choice, ``<s> context </s></s> question choice </s>``
(``<s> question </s></s> choice </s>`` when there is no context, as in CommonsenseQA), truncated
longest-first to max_length. COPA's question is the word "cause" or "effect"; it is asked as
"What was the cause?" / "What happened as a result?" (jiant's and SuperGLUE baselines' prompts),
in English for XCOPA's languages too. feature -> batch: the B x C sequences flattened to
(B*C, L), with ``num_choices`` = C and a (B, C) ``choice_mask`` (examples with fewer choices
are padded with empty choices that can never win). Head: dropout -> Linear(hidden, 1) on <s>,
reshaped to (B, C) logits. Score: accuracy (0-100).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from xscale.errors import XScaleError
from xscale.tasks import metrics
from xscale.tasks.base import Example, Task
from xscale.tasks.padding import pad_batch

QUESTION_PROMPTS = {"cause": "What was the cause?", "effect": "What happened as a result?"}
MASKED = -1e4


class ChoiceHead(nn.Module):
    """(B*C, L, H) -> (B, C): one score per choice from its <s> token."""

    def __init__(self, hidden: int, dropout: float = 0.1):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.scorer = nn.Linear(hidden, 1)

    def forward(self, hidden_states: torch.Tensor, batch: dict) -> torch.Tensor:
        scores = self.scorer(self.dropout(hidden_states[:, 0])).squeeze(-1)
        scores = scores.view(-1, int(batch["num_choices"]))
        if "choice_mask" in batch:
            scores = scores.masked_fill(~batch["choice_mask"], MASKED)
        return scores


class MultipleChoiceFormat:
    name = "multiple_choice"
    trains = True

    def featurize(self, task: Task, examples: list[Example], tokenizer, max_length: int):
        firsts, seconds, owners = [], [], []
        for n, ex in enumerate(examples):
            context = ex.fields["context"].strip()
            question = ex.fields["question"].strip()
            question = QUESTION_PROMPTS.get(question, question)
            choices = ex.fields["choices"]
            label = ex.fields["label"]
            if not isinstance(label, int) or not 0 <= label < len(choices):
                raise XScaleError(
                    f"{task.name}: example {ex.guid} has label {label!r} for {len(choices)} choices"
                )
            for choice in choices:
                if context:
                    firsts.append(context)
                    seconds.append(f"{question} {choice.strip()}".strip())
                else:
                    firsts.append(question)
                    seconds.append(choice.strip())
                owners.append(n)
        if not examples:
            return []
        enc = tokenizer(firsts, seconds, truncation=True, max_length=max_length)
        features = [{"input_ids": [], "label": ex.fields["label"]} for ex in examples]
        for ids, n in zip(enc["input_ids"], owners):
            features[n]["input_ids"].append(ids)
        return features

    def collate(self, features: list[dict], pad_id: int) -> dict:
        c = max(len(f["input_ids"]) for f in features)
        b = len(features)
        # every example as c rows (its choices, then empty padding choices)
        rows: list = []
        for f in features:
            rows += list(f["input_ids"]) + [[]] * (c - len(f["input_ids"]))
        ids, mask = pad_batch(rows, pad_id)
        choice_mask = torch.zeros((b, c), dtype=torch.bool)
        for i, f in enumerate(features):
            choice_mask[i, : len(f["input_ids"])] = True
            for j in range(len(f["input_ids"]), c):  # padding choice: one token, never wins
                mask[i * c + j, 0] = 1
        labels = torch.tensor([f["label"] for f in features], dtype=torch.long)
        return {
            "input_ids": ids,
            "attention_mask": mask,
            "labels": labels,
            "num_choices": c,
            "choice_mask": choice_mask,
        }

    def make_head(self, task: Task, hidden_size: int):
        return ChoiceHead(hidden_size)

    @staticmethod
    def loss(logits: torch.Tensor, batch: dict) -> torch.Tensor:
        return F.cross_entropy(logits.float(), batch["labels"])

    def predict(self, logits: torch.Tensor, batch: dict) -> list[int]:
        return logits.argmax(dim=-1).tolist()

    def export(self, task: Task, lang: str, predictions: list, features: list, out_dir) -> None:
        """XTREME-R's submission layout for multiple choice (XCOPA: its evaluate.py reads
        ``test-<lang>.jsonl`` with ``read_xcopa``): ``<out>/test-<lang>.jsonl``, one JSON object
        ``{"label": n}`` per evaluated example, in order, n the 0-based index of the predicted
        choice (XCOPA: 0 = choice1, 1 = choice2)."""

        if len(predictions) != len(features):
            raise XScaleError(
                f"{task.name}: {len(predictions)} predictions for {len(features)} examples"
            )
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        lines = (json.dumps({"label": int(p)}) + "\n" for p in predictions)
        (out / f"test-{lang}.jsonl").write_text("".join(lines))

    def score(self, task: Task, predictions: list[int], features: list[dict]) -> dict[str, float]:
        if not features:
            return {}
        return metrics.accuracy(predictions, [f["label"] for f in features])
