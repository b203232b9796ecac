"""XCOPA: COPA in 11 languages (XTREME-R), trained on English COPA."""

from __future__ import annotations

from xscale.tasks.base import Files, HubSource, Task
from xscale.tasks.lib.copa import copa_rows

XCOPA_LANGUAGES = ("et", "ht", "id", "it", "qu", "sw", "ta", "th", "tr", "vi", "zh")

TASK = Task(
    name="xcopa",
    train_size=400,
    format="multiple_choice",
    choices=2,
    metric="accuracy",
    languages=XCOPA_LANGUAGES,
    roles=("target",),
    hub=HubSource("cambridgeltl/xcopa", config="{lang}", splits={"test": "test"}),
    description="XCOPA: COPA translated into 11 languages; trained on English COPA",
    test_rows=500,
    files=Files(
        "per_language",
        paths={"test": ("xtreme/xcopa/test-{lang}.jsonl", "xtreme/xcopa/{lang}/test.{lang}.jsonl")},
        reader="copa_jsonl",
    ),
    hub_rows=copa_rows,
    trained_on="copa",
    benchmarks={"xtreme_r": "classification"},
)
