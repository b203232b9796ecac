"""SQuAD v1.1: XQuAD, MLQA and LAReQA train on it."""

from __future__ import annotations

from xscale.tasks.base import Files, HubSource, Task

TASK = Task(
    name="squad",
    train_size=87_599,
    format="span_qa",
    metric="f1",
    roles=("intermediate",),
    hub=HubSource("rajpurkar/squad"),
    description="SQuAD v1.1: English extractive QA (Wikipedia)",
    files=Files(
        "english",
        paths={s: (f"intermediate/squad/{s}-v1.1.json",) for s in ("train", "dev")},
        reader="squad_json",
    ),
)
