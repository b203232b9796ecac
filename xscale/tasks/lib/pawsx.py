"""PAWS-X paraphrase identification in 7 languages."""

from __future__ import annotations

from xscale.tasks.base import Files, HubSource, Task
from xscale.tasks.lib.common import BINARY_LABELS

PAWSX_LANGUAGES = ("en", "de", "es", "fr", "ja", "ko", "zh")

TASK = Task(
    name="pawsx",
    train_size=49_401,
    format="pair_classification",
    metric="accuracy",
    labels=BINARY_LABELS,
    languages=PAWSX_LANGUAGES,
    roles=("intermediate", "target"),  # intermediate: in several languages (translate-train),
    hub=HubSource(
        "google-research-datasets/paws-x",
        config="{lang}",
        splits={"train": "train", "dev": "validation", "test": "test"},
        columns={"text_a": "sentence1", "text_b": "sentence2", "label": "label"},
        label_names=BINARY_LABELS,
    ),
    description="PAWS-X: cross-lingual paraphrase identification (1 paraphrase), 7 languages",
    test_rows=2000,
    files=Files("split_folder", folder="xtreme/pawsx", reader="pairs_tsv"),
    parallel="rows",
    translated_train=True,  # train-<lang>.tsv: XTREME's translate-train files
    parallel_fields=("text_a", "text_b"),
    benchmarks={"xtreme": "classification"},
)
