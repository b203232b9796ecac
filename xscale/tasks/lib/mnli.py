"""MultiNLI, the English intermediate task of Phang et al. (2020)."""

from __future__ import annotations

from xscale.tasks.base import Files, HubSource, Task
from xscale.tasks.lib.common import NLI_COLUMNS, NLI_LABELS

TASK = Task(
    name="mnli",
    train_size=392_702,
    format="pair_classification",
    metric="accuracy",
    labels=NLI_LABELS,
    roles=("intermediate",),
    hub=HubSource(
        "nyu-mll/glue",
        config="mnli",
        splits={"train": "train", "dev": "validation_matched", "test": "validation_mismatched"},
        columns=NLI_COLUMNS,
        label_names=NLI_LABELS,
    ),
    description="MultiNLI: English sentence-pair entailment (3 classes)",
    files=Files(
        "english",
        paths={
            "train": ("intermediate/mnli/train.tsv",),
            "dev": ("intermediate/mnli/dev_matched.tsv",),
            "test": ("intermediate/mnli/dev_mismatched.tsv",),
        },
        reader="mnli_tsv",
    ),
)
