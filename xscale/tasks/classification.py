"""Sentence-pair and single-sentence classification (MNLI, ANLI, SST-2, XNLI, PAWS-X, ...).

example -> feature: the text (or pair, encoded as XLM-R does: <s> a </s></s> b </s>) truncated to
max_length, and the label's index in `task.labels`; feature -> batch: right-padded tensors;
logits -> prediction: argmax; score: accuracy in 0-100 (XTREME's convention).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from xscale.errors import XScaleError
from xscale.tasks.base import Example, Task
from xscale.tasks.padding import pad_batch


class ClassificationFormat:
    name = "classification"

    def featurize(self, task: Task, examples: list[Example], tokenizer, max_length: int):
        label_index = {label: i for i, label in enumerate(task.labels)}
        pair = task.format == "pair_classification"
        if pair:
            texts = ([e.fields["text_a"] for e in examples], [e.fields["text_b"] for e in examples])
        else:
            texts = ([e.fields["text"] for e in examples],)
        enc = tokenizer(*texts, truncation=True, max_length=max_length)
        features = []
        for i, ex in enumerate(examples):
            label = ex.fields["label"]
            if label not in label_index:
                raise XScaleError(
                    f"{task.name}: example {ex.guid} has label {label!r}, not one of {task.labels}"
                )
            features.append({"input_ids": enc["input_ids"][i], "label": label_index[label]})
        return features

    def collate(self, features: list[dict], pad_id: int) -> dict:
        ids, mask = pad_batch([f["input_ids"] for f in features], pad_id)
        labels = torch.tensor([f["label"] for f in features], dtype=torch.long)
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}

    def make_head(self, task: Task, hidden_size: int):
        return ClassificationHead(hidden_size, len(task.labels))

    @staticmethod
    def loss(logits: torch.Tensor, batch: dict) -> torch.Tensor:
        return F.cross_entropy(logits.float(), batch["labels"])

    def predict(self, logits: torch.Tensor, batch: dict) -> list[int]:
        return logits.argmax(dim=-1).tolist()

    def export(self, task: Task, lang: str, predictions: list, features: list, out_dir) -> None:
        """XTREME's submission layout: `<out>/test-<lang>.tsv`, one predicted label per line."""

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        lines = [task.labels[p] for p in predictions]
        (out / f"test-{lang}.tsv").write_text("".join(f"{x}\n" for x in lines))

    def score(self, task: Task, predictions: list[int], features: list[dict]) -> dict[str, float]:
        if not features:
            return {}
        correct = sum(int(p == f["label"]) for p, f in zip(predictions, features, strict=True))
        return {"accuracy": 100.0 * correct / len(features)}


class ClassificationHead(nn.Module):
    """RoBERTa's head: dropout -> dense -> tanh -> dropout -> projection, on the <s> token."""

    def __init__(self, hidden: int, num_labels: int, dropout: float = 0.1):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.dense = nn.Linear(hidden, hidden)
        self.out_proj = nn.Linear(hidden, num_labels)

    def forward(self, hidden_states: torch.Tensor, batch: dict) -> torch.Tensor:
        x = self.dropout(hidden_states[:, 0])
        x = torch.tanh(self.dense(x))
        return self.out_proj(self.dropout(x))
