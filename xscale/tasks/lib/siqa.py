"""Social IQa: commonsense about social situations, 3 choices (1-based labels)."""

from __future__ import annotations

from xscale.tasks.base import Files, HubSource, Task
from xscale.tasks.lib.common import choice_label, columns


def _hub_rows(task: Task, row: dict, where: str) -> dict:
    cols = ("context", "question", "answerA", "answerB", "answerC", "label")
    context, question, *choices, label = columns(row, cols, where)
    return {
        "context": context,
        "question": question,
        "choices": choices,
        "label": choice_label(label, 3, 1, where),
    }


TASK = Task(
    name="siqa",
    format="multiple_choice",
    choices=3,
    metric="accuracy",
    roles=("intermediate",),
    hub=HubSource("allenai/social_i_qa"),
    description="Social IQa: commonsense about social situations (3 choices)",
    files=Files(
        "english",
        paths={s: (f"intermediate/siqa/{s}.jsonl",) for s in ("train", "dev")},
        reader="siqa_jsonl",
    ),
    hub_rows=_hub_rows,
)
