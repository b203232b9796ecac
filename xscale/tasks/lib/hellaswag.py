"""HellaSwag: the plausible continuation of a scene, 4 endings."""

from __future__ import annotations

from xscale.tasks.base import Files, HubSource, Task
from xscale.tasks.lib.common import choice_label, columns


def _hub_rows(task: Task, row: dict, where: str) -> dict:
    ctx, endings, label = columns(row, ("ctx", "endings", "label"), where)
    return {
        "context": ctx,
        "question": "",
        "choices": list(endings),
        "label": choice_label(label, len(endings), 0, where),
    }


TASK = Task(
    name="hellaswag",
    train_size=39_905,
    format="multiple_choice",
    choices=4,
    metric="accuracy",
    roles=("intermediate",),
    hub=HubSource("Rowan/hellaswag"),
    description="HellaSwag: pick the plausible continuation of a scene (4 endings)",
    files=Files(
        "english",
        paths={
            "train": ("intermediate/hellaswag/hellaswag_train.jsonl",),
            "dev": ("intermediate/hellaswag/hellaswag_val.jsonl",),
        },
        reader="hellaswag_jsonl",
    ),
    hub_rows=_hub_rows,
)
