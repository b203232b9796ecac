"""COPA (SuperGLUE): the plausible cause or effect; XCOPA trains on it."""

from __future__ import annotations

from xscale.tasks.base import Files, HubSource, Task
from xscale.tasks.lib.common import choice_label, columns


def copa_rows(task: Task, row: dict, where: str) -> dict:
    """COPA's (and XCOPA's) hub rows: premise, question, choice1, choice2, label."""
    cols = ("premise", "question", "choice1", "choice2", "label")
    premise, question, c1, c2, label = columns(row, cols, where)
    return {
        "context": premise,
        "question": question,
        "choices": [c1, c2],
        "label": choice_label(label, 2, 0, where),
    }


TASK = Task(
    name="copa",
    format="multiple_choice",
    choices=2,
    metric="accuracy",
    roles=("intermediate",),
    hub=HubSource("aps/super_glue", config="copa"),
    description="COPA (SuperGLUE): choice of plausible alternatives, cause or effect (English)",
    files=Files(
        "english",
        paths={
            "train": ("intermediate/copa/train.jsonl",),
            "dev": ("intermediate/copa/val.jsonl",),
        },
        reader="copa_jsonl",
    ),
    hub_rows=copa_rows,
)
