"""PAN-X (WikiANN) named entities in 40 languages."""

from __future__ import annotations

from xscale.tasks.base import Files, HubSource, Task

PANX_LANGUAGES = (
    "en", "af", "ar", "bg", "bn", "de", "el", "es", "et", "eu", "fa", "fi", "fr", "he", "hi",
    "hu", "id", "it", "ja", "jv", "ka", "kk", "ko", "ml", "mr", "ms", "my", "nl", "pt", "ru",
    "sw", "ta", "te", "th", "tl", "tr", "ur", "vi", "yo", "zh",
)  # fmt: skip
PANX_TAGS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")

# XTREME-R scores more languages than XTREME (its evaluate.py's XTREME_R_TASK2LANGS); xscale
# evaluates XTREME's by default, so XTREME-R's aggregate of this task is partial without them
XTREME_R_LANGUAGES = (
    "ar",
    "he",
    "vi",
    "id",
    "jv",
    "ms",
    "tl",
    "eu",
    "ml",
    "ta",
    "te",
    "af",
    "nl",
    "en",
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
    "yo",
    "my",
    "zh",
    "kk",
    "tr",
    "et",
    "fi",
    "hu",
    "qu",
    "pl",
    "uk",
    "az",
    "lt",
    "pa",
    "gu",
    "ro",
)

TASK = Task(
    name="panx",
    train_size=20_000,
    format="tagging",
    metric="f1",
    labels=PANX_TAGS,
    languages=PANX_LANGUAGES,
    roles=("intermediate", "target"),  # intermediate: multilingual training data
    hub=HubSource(
        "unimelb-nlp/wikiann",
        config="{lang}",
        columns={"tags": "ner_tags"},
        splits={"train": "train", "dev": "validation", "test": "test"},
        label_names=PANX_TAGS,
    ),
    description="PAN-X (WikiANN): named entities PER/ORG/LOC in IOB2, 40 languages",
    test_rows=10000,
    files=Files("split_folder", folder="xtreme/panx", reader="tagging_tsv"),
    benchmarks={"xtreme": "structured_prediction", "xtreme_r": "structured_prediction"},
    benchmark_languages={"xtreme_r": XTREME_R_LANGUAGES},
)
