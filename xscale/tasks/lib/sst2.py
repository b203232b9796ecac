"""SST-2 (GLUE) sentence sentiment."""

from __future__ import annotations

from xscale.tasks.base import SPLITS, Files, HubSource, Task
from xscale.tasks.lib.common import BINARY_LABELS

TASK = Task(
    name="sst2",
    train_size=67_349,
    format="single_classification",
    metric="accuracy",
    labels=BINARY_LABELS,
    roles=("intermediate",),
    hub=HubSource(
        "nyu-mll/glue",
        config="sst2",
        splits={"train": "train", "dev": "validation"},
        columns={"text": "sentence", "label": "label"},
        label_names=BINARY_LABELS,
    ),
    description="SST-2: English movie-review sentence sentiment (0 negative, 1 positive)",
    files=Files(
        "english", paths={s: (f"intermediate/sst2/{s}.tsv",) for s in SPLITS}, reader="sst2_tsv"
    ),
)
