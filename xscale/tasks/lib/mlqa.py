"""MLQA: extractive QA with context and question in one language."""

from __future__ import annotations

from xscale.tasks.base import Files, HubSource, Task

MLQA_LANGUAGES = ("en", "ar", "de", "es", "hi", "vi", "zh")

TASK = Task(
    name="mlqa",
    train_size=87_599,
    format="span_qa",
    metric="f1",
    languages=MLQA_LANGUAGES,
    roles=("target",),
    hub=HubSource("facebook/mlqa", config="mlqa.{lang}.{lang}", splits={"test": "test"}),
    description="MLQA: extractive QA, context and question in the same language, 7 languages",
    test_rows=5000,
    # the test folder when there is one (only its files are read), else the dev files
    files=Files(
        "per_language",
        paths={
            "test": (
                "xtreme/mlqa/MLQA_V1/test/test-context-{lang}-question-{lang}.json",
                "xtreme/mlqa/MLQA_V1/dev/dev-context-{lang}-question-{lang}.json",
            )
        },
        reader="squad_json",
        switch="xtreme/mlqa/MLQA_V1/test",
    ),
    trained_on="squad",
    select_on_held_out=True,
    scoring="mlqa_norm",
    benchmarks={"xtreme": "question_answering", "xtreme_r": "question_answering"},
)
