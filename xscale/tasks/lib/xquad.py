"""XQuAD: SQuAD v1.1's dev questions in 11 languages; trained on SQuAD, selected on passages held
out of SQuAD's training file (its dev set holds XQuAD's English test questions)."""

from __future__ import annotations

from xscale.tasks.base import Files, HubSource, Task

XQUAD_LANGUAGES = ("en", "ar", "de", "el", "es", "hi", "ru", "th", "tr", "vi", "zh")

# XTREME-R scores more languages than XTREME (its evaluate.py's XTREME_R_TASK2LANGS); xscale
# evaluates XTREME's by default, so XTREME-R's aggregate of this task is partial without them
XTREME_R_LANGUAGES = (
    "en",
    "es",
    "de",
    "el",
    "ru",
    "tr",
    "ar",
    "vi",
    "th",
    "zh",
    "hi",
    "ro",
)

TASK = Task(
    name="xquad",
    train_size=87_599,
    format="span_qa",
    metric="f1",
    languages=XQUAD_LANGUAGES,
    roles=("target",),
    hub=HubSource("google/xquad", config="xquad.{lang}", splits={"test": "validation"}),
    description="XQuAD: SQuAD v1.1 dev questions translated into 10 languages (+ en)",
    test_rows=1190,
    files=Files(
        "per_language", paths={"test": ("xtreme/xquad/xquad.{lang}.json",)}, reader="squad_json"
    ),
    trained_on="squad",
    select_on_held_out=True,
    benchmarks={"xtreme": "question_answering", "xtreme_r": "question_answering"},
    benchmark_languages={"xtreme_r": XTREME_R_LANGUAGES},
)
