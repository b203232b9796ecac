"""Tatoeba: each sentence's English translation, 36 languages."""

from __future__ import annotations

from xscale.tasks.base import Files, HubSource, Task

TATOEBA_LANGUAGES = (
    "af", "ar", "bg", "bn", "de", "el", "es", "et", "eu", "fa", "fi", "fr", "he", "hi", "hu",
    "id", "it", "ja", "jv", "ka", "kk", "ko", "ml", "mr", "nl", "pt", "ru", "sw", "ta", "te",
    "th", "tl", "tr", "ur", "vi", "zh",
)  # fmt: skip

# XTREME-R scores more languages than XTREME (its evaluate.py's XTREME_R_TASK2LANGS); xscale
# evaluates XTREME's by default, so XTREME-R's aggregate of this task is partial without them
XTREME_R_LANGUAGES = (
    "ar",
    "he",
    "vi",
    "id",
    "jv",
    "tl",
    "eu",
    "ml",
    "ta",
    "te",
    "af",
    "nl",
    "de",
    "el",
    "bn",
    "hi",
    "mr",
    "ur",
    "fa",
    "fr",
    "it",
    "pt",
    "es",
    "bg",
    "ru",
    "ja",
    "ka",
    "ko",
    "th",
    "sw",
    "zh",
    "kk",
    "tr",
    "et",
    "fi",
    "hu",
    "az",
    "lt",
    "pl",
    "uk",
    "ro",
)

TASK = Task(
    name="tatoeba",
    train_size=0,
    format="retrieval",
    metric="accuracy",
    languages=TATOEBA_LANGUAGES,
    roles=("target",),
    hub=HubSource("google/xtreme", config="tatoeba.{code}", splits={"test": "validation"}),
    description="Tatoeba: find the English translation of each sentence, 36 languages",
    test_rows=1000,
    files=Files(
        "per_language",
        paths={
            "test": (
                "xtreme/tatoeba/v1/tatoeba.{code}-eng.{code}",
                "xtreme/tatoeba/tatoeba.{code}-eng.{code}",
            )
        },
        reader="aligned_lines",
    ),
    scoring="sentences",
    parallel="pairs",
    benchmarks={"xtreme": "retrieval", "xtreme_r": "retrieval"},
    benchmark_languages={"xtreme_r": XTREME_R_LANGUAGES},
)
