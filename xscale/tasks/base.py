"""What a task is: the registry entry that names its data, format, labels, languages and metric.

The chain is explicit, as in jiant: a *reader* turns files (or hub rows) into `Example`s, the
task's *format* module turns examples into tokenized features and batches, builds the head, and
scores predictions. One module per format lives beside this one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

SPLITS = ("train", "dev", "test")


@dataclass
class Example:
    """One raw example. `fields` is format specific:

    - pair_classification: text_a, text_b, label (str)
    - single_classification: text, label (str)
    - span_qa: question, context, answers [{"text", "answer_start"}], id
    - tagging: tokens [str], tags [str]
    - multiple_choice: context, question, choices [str], label (int)
    - retrieval: source (str), target (str)  (a parallel pair)
    - dual_encoder: query [str, ...], candidate [str, ...] (text segments), key (the
      candidate's identity); LAReQA trains on span_qa (SQuAD) examples, converted by the format
    """

    guid: str
    lang: str
    fields: dict[str, Any]


@dataclass
class RetrievalPool:
    """A retrieval test set (LAReQA, Mewsli-X): one pool of candidates searched by the queries
    of every language. ``candidates[j]`` = (id, text segments); ``queries[lang]`` = [(id, text
    segments, indices of the relevant candidates)]; ``skipped[lang]``: queries left out (an
    answer in no sentence, an entity outside the candidate set), counted, never silently."""

    candidates: list[tuple[str, tuple[str, ...]]]
    queries: dict[str, list[tuple[str, tuple[str, ...], frozenset[int]]]]
    skipped: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class HubSource:
    """Where the real data lives on the Hugging Face hub.

    `config` may contain "{lang}", formatted per language. `splits` maps our split names
    (train/dev/test) to the hub's. `columns` maps our field names to the hub's column names.
    `label_names` maps hub integer labels to our string labels, in order, when the hub stores ints.
    """

    dataset_id: str
    config: str | None = None
    splits: dict[str, str] = field(default_factory=lambda: {"train": "train", "dev": "validation"})
    columns: dict[str, str] = field(default_factory=dict)
    label_names: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Task:
    name: str
    format: str  # a row of tasks.FORMATS
    metric: str  # the task's main metric, e.g. "accuracy" or "f1"
    labels: tuple[str, ...] = ()
    languages: tuple[str, ...] = ("en",)  # languages with evaluation data
    roles: tuple[str, ...] = ("intermediate",)  # "intermediate" and/or "target"
    hub: HubSource | None = None
    description: str = ""
    # English training rows of the full dataset (the hub's train split), for cost estimates in
    # plans before any data is read; 0 for tasks evaluated without training
    train_size: int = 10_000
    # test rows per language (XTREME's test sets, roughly), for evaluation time in simulations
    test_rows: int = 1_000
    # sequences one example puts in a batch: 1, or one per answer choice (multiple choice),
    # for activation-memory plans
    choices: int = 1


class TaskFormat(Protocol):
    """What a format module provides (classification.py, span_qa.py, tagging.py, ...): the chain
    examples -> features -> batch -> head -> loss -> predictions -> scores and export files."""

    name: str

    def featurize(self, task: Task, examples: list[Example], tokenizer, max_length: int) -> list:
        """Tokenized features, one or more per example (with what scoring needs)."""

    def collate(self, features: list[dict], pad_id: int) -> dict:
        """A padded batch of tensors."""

    def make_head(self, task: Task, hidden_size: int):
        """The task head, an nn.Module called as head(hidden_states, batch) -> logits."""

    def loss(self, logits, batch: dict):
        """The training loss of a batch."""

    def predict(self, logits, batch: dict) -> list:
        """Predictions for the batch's features, in order."""

    def score(self, task: Task, predictions: list, features: list[dict]) -> dict[str, float]:
        """Metrics in 0-100, as XTREME's official scoring computes them."""

    def export(self, task: Task, lang: str, predictions: list, features: list, out_dir) -> None:
        """Prediction files in the layout XTREME's scoring scripts read."""
