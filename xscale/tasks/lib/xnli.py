"""XNLI: MNLI-style NLI in 15 languages; its translated training data make it a multilingual
intermediate task too."""

from __future__ import annotations

from xscale.tasks.base import Files, HubSource, Task
from xscale.tasks.lib.common import NLI_COLUMNS, NLI_LABELS

XNLI_LANGUAGES = (
    "en", "ar", "bg", "de", "el", "es", "fr", "hi", "ru", "sw", "th", "tr", "ur", "vi", "zh",
)  # fmt: skip

TASK = Task(
    name="xnli",
    train_size=392_702,
    format="pair_classification",
    metric="accuracy",
    labels=NLI_LABELS,
    languages=XNLI_LANGUAGES,
    roles=("intermediate", "target"),  # intermediate: in several languages (translate-train),
    hub=HubSource(
        "facebook/xnli",
        config="{lang}",
        splits={"train": "train", "dev": "validation", "test": "test"},
        columns=NLI_COLUMNS,
        label_names=NLI_LABELS,
    ),
    description="XNLI: cross-lingual NLI (MNLI-style), 15 languages",
    test_rows=5010,
    files=Files("split_folder", folder="xtreme/xnli", reader="pairs_tsv"),
    parallel="rows",
    translated_train=True,  # train-<lang>.tsv: XTREME's translate-train files
    training_data_of="mnli",  # XNLI's English training set is MNLI's
    parallel_fields=("text_a", "text_b"),
    benchmarks={"xtreme": "classification", "xtreme_r": "classification"},
)
