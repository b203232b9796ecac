"""What a task is: the registry entry that names its data, format, labels, languages and metric.

The chain is explicit, as in jiant: a *reader* turns files (or hub rows) into `Example`s, the
task's *format* module turns examples into tokenized features and batches, builds the head, and
scores predictions. One module per format lives beside this one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Formats a task can have; each maps to one module in xscale/tasks/.
FORMATS = (
    "pair_classification",
    "single_classification",
    "span_qa",
    "tagging",
    "multiple_choice",
    "retrieval",
)

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
    """

    guid: str
    lang: str
    fields: dict[str, Any]


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
    format: str
    metric: str  # the task's main metric, e.g. "accuracy" or "f1"
    labels: tuple[str, ...] = ()
    languages: tuple[str, ...] = ("en",)  # languages with evaluation data
    roles: tuple[str, ...] = ("intermediate",)  # "intermediate" and/or "target"
    hub: HubSource | None = None
    description: str = ""

    def __post_init__(self):
        if self.format not in FORMATS:
            raise ValueError(f"task {self.name!r}: unknown format {self.format!r}")
