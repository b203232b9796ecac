"""The task registry: task name -> `Task`. Add a task by adding one entry to `TASKS`.

Readers for each task's files live in `xscale.data`.
"""

from __future__ import annotations

from xscale.errors import XScaleError
from xscale.tasks.base import HubSource, Task

NLI_LABELS = ("entailment", "neutral", "contradiction")
BINARY_LABELS = ("0", "1")

# Every language XTREME evaluates the task in (English first). A given data root may hold fewer:
# `xscale.data.available_languages` says which.
XNLI_LANGUAGES = (
    "en", "ar", "bg", "de", "el", "es", "fr", "hi", "ru", "sw", "th", "tr", "ur", "vi", "zh",
)  # fmt: skip
PAWSX_LANGUAGES = ("en", "de", "es", "fr", "ja", "ko", "zh")

_NLI_COLUMNS = {"text_a": "premise", "text_b": "hypothesis", "label": "label"}

_TASKS = [
    Task(
        name="mnli",
        format="pair_classification",
        metric="accuracy",
        labels=NLI_LABELS,
        roles=("intermediate",),
        hub=HubSource(
            "nyu-mll/glue",
            config="mnli",
            splits={"train": "train", "dev": "validation_matched", "test": "validation_mismatched"},
            columns=_NLI_COLUMNS,
            label_names=NLI_LABELS,
        ),
        description="MultiNLI: English sentence-pair entailment (3 classes)",
    ),
    Task(
        name="anli",
        format="pair_classification",
        metric="accuracy",
        labels=NLI_LABELS,
        roles=("intermediate",),
        hub=HubSource(
            "facebook/anli",
            splits={"train": "train_r1", "dev": "dev_r1", "test": "test_r1"},
            columns=_NLI_COLUMNS,
            label_names=NLI_LABELS,
        ),
        description="Adversarial NLI, round 1: English entailment written to fool models",
    ),
    Task(
        name="sst2",
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
    ),
    Task(
        name="xnli",
        format="pair_classification",
        metric="accuracy",
        labels=NLI_LABELS,
        languages=XNLI_LANGUAGES,
        roles=("target",),
        hub=HubSource(
            "facebook/xnli",
            config="{lang}",
            splits={"train": "train", "dev": "validation", "test": "test"},
            columns=_NLI_COLUMNS,
            label_names=NLI_LABELS,
        ),
        description="XNLI: cross-lingual NLI (MNLI-style), 15 languages",
    ),
    Task(
        name="pawsx",
        format="pair_classification",
        metric="accuracy",
        labels=BINARY_LABELS,
        languages=PAWSX_LANGUAGES,
        roles=("target",),
        hub=HubSource(
            "google-research-datasets/paws-x",
            config="{lang}",
            splits={"train": "train", "dev": "validation", "test": "test"},
            columns={"text_a": "sentence1", "text_b": "sentence2", "label": "label"},
            label_names=BINARY_LABELS,
        ),
        description="PAWS-X: cross-lingual paraphrase identification (1 paraphrase), 7 languages",
    ),
]

TASKS: dict[str, Task] = {t.name: t for t in _TASKS}


def get_task(name: str) -> Task:
    """The registered task called `name`; XScaleError naming it and the known tasks otherwise."""
    try:
        return TASKS[name]
    except KeyError:
        known = ", ".join(sorted(TASKS))
        raise XScaleError(f"unknown task {name!r}; known tasks: {known}") from None
