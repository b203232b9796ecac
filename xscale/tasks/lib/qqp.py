"""Quora Question Pairs (GLUE)."""

from __future__ import annotations

from xscale.tasks.base import Files, HubSource, Task
from xscale.tasks.lib.common import BINARY_LABELS

TASK = Task(
    name="qqp",
    train_size=363_846,
    format="pair_classification",
    metric="accuracy",
    labels=BINARY_LABELS,
    roles=("intermediate",),
    hub=HubSource(
        "nyu-mll/glue",
        config="qqp",
        splits={"train": "train", "dev": "validation"},
        columns={"text_a": "question1", "text_b": "question2", "label": "label"},
        label_names=BINARY_LABELS,
    ),
    description="Quora Question Pairs (GLUE): English duplicate-question detection (1 same)",
    files=Files(
        "english",
        paths={s: (f"intermediate/qqp/{s}.tsv",) for s in ("train", "dev")},
        reader="qqp_tsv",
    ),
)
