"""SQuAD v2.0, with unanswerable questions."""

from __future__ import annotations

from xscale.tasks.base import Files, HubSource, Task

TASK = Task(
    name="squad2",
    train_size=130_319,
    format="span_qa",
    metric="f1",
    roles=("intermediate",),
    hub=HubSource("rajpurkar/squad_v2"),
    description="SQuAD v2.0: SQuAD v1.1 plus unanswerable questions (answer: <s>)",
    files=Files(
        "english",
        paths={s: (f"intermediate/squad2/{s}-v2.0.json",) for s in ("train", "dev")},
        reader="squad_json",
    ),
    scoring="squad_v2",
)
