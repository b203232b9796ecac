"""TyDiQA-GoldP's training set in its nine languages, as a (multilingual) intermediate task:
`{task: tydiqa_goldp, languages: [en, ar, ...]}`. Each language's training file gives its train
split and, from held-out passages, its dev split; its test set is the `tydiqa` target's."""

from __future__ import annotations

from xscale.tasks.base import Files, HubSource, Task
from xscale.tasks.lib.tydiqa import TYDIQA_LANGUAGES, _hub_keep

TASK = Task(
    name="tydiqa_goldp",
    train_size=49_881,  # every language's gold-passage training questions
    format="span_qa",
    metric="f1",
    languages=TYDIQA_LANGUAGES,
    roles=("intermediate",),
    hub=HubSource(
        "google-research-datasets/tydiqa",
        config="secondary_task",
        splits={"train": "train", "dev": "train"},  # dev: passages held out of train
    ),
    description="TyDiQA-GoldP training set, 9 languages (XTREME's per-language train files)",
    files=Files(
        "per_language",
        paths={
            "test": (),
            "train": (
                "xtreme/tydiqa/tydiqa-goldp-v1.1-train/tydiqa.goldp.{lang}.train.json",
                "xtreme/tydiqa/tydiqa-goldp-v1.1-train/tydiqa.{lang}.train.json",
            ),
        },
        reader="squad_json",
    ),
    hub_keep=_hub_keep,
    held_out_dev=True,
)
