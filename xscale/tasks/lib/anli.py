"""Adversarial NLI, round 1."""

from __future__ import annotations

from xscale.tasks.base import Files, HubSource, Task
from xscale.tasks.lib.common import NLI_COLUMNS, NLI_LABELS

TASK = Task(
    name="anli",
    train_size=16_946,
    format="pair_classification",
    metric="accuracy",
    labels=NLI_LABELS,
    roles=("intermediate",),
    hub=HubSource(
        "facebook/anli",
        splits={"train": "train_r1", "dev": "dev_r1", "test": "test_r1"},
        columns=NLI_COLUMNS,
        label_names=NLI_LABELS,
    ),
    description="Adversarial NLI, round 1: English entailment written to fool models",
    # the official R1 jsonl files; else the analysis csv serves as the dev split
    files=Files(
        "english",
        paths={
            "train": ("intermediate/anli/R1/train.jsonl",),
            "dev": ("intermediate/anli/R1/dev.jsonl", "intermediate/anli/ANLI_analysis_r1_dev.csv"),
            "test": ("intermediate/anli/R1/test.jsonl",),
        },
        reader="anli_jsonl_csv",
    ),
)
