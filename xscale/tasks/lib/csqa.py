"""CommonsenseQA: commonsense questions, 5 answer choices."""

from __future__ import annotations

from xscale.errors import XScaleError
from xscale.tasks.base import Files, HubSource, Task
from xscale.tasks.lib.common import columns


def _hub_rows(task: Task, row: dict, where: str) -> dict:
    question, choices, key = columns(row, ("question", "choices", "answerKey"), where)
    keys = list(choices["label"])
    if key not in keys:
        raise XScaleError(f"{where}: answerKey {key!r} is not a gold label (hidden test labels)")
    return {
        "context": "",
        "question": question,
        "choices": list(choices["text"]),
        "label": keys.index(key),
    }


TASK = Task(
    name="csqa",
    train_size=9_741,
    format="multiple_choice",
    choices=5,
    metric="accuracy",
    roles=("intermediate",),
    hub=HubSource("tau/commonsense_qa"),
    description="CommonsenseQA: commonsense questions with 5 answer choices",
    files=Files(
        "english",
        paths={
            "train": ("intermediate/csqa/train_rand_split.jsonl", "intermediate/csqa/train.jsonl"),
            "dev": ("intermediate/csqa/dev_rand_split.jsonl", "intermediate/csqa/valid.jsonl"),
        },
        reader="csqa_jsonl",
    ),
    hub_rows=_hub_rows,
)
