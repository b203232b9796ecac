"""Cosmos QA: reading comprehension over narratives, 4 choices."""

from __future__ import annotations

from xscale.tasks.base import Files, HubSource, Task
from xscale.tasks.lib.common import choice_label, columns


def _hub_rows(task: Task, row: dict, where: str) -> dict:
    cols = ("context", "question", "answer0", "answer1", "answer2", "answer3", "label")
    context, question, *choices, label = columns(row, cols, where)
    return {
        "context": context,
        "question": question,
        "choices": choices,
        "label": choice_label(label, 4, 0, where),
    }


TASK = Task(
    name="cosmosqa",
    train_size=25_262,
    format="multiple_choice",
    choices=4,
    metric="accuracy",
    roles=("intermediate",),
    hub=HubSource("allenai/cosmos_qa"),
    description="Cosmos QA: commonsense reading comprehension over narratives (4 choices)",
    files=Files(
        "english",
        paths={
            "train": ("intermediate/cosmosqa/train.jsonl",),
            "dev": ("intermediate/cosmosqa/valid.jsonl",),
        },
        reader="cosmosqa_jsonl",
    ),
    hub_rows=_hub_rows,
)
