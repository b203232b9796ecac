"""PAN-X (WikiANN) named entities in 40 languages."""

from __future__ import annotations

from xscale.tasks.base import Files, HubSource, Task

PANX_LANGUAGES = (
    "en", "af", "ar", "bg", "bn", "de", "el", "es", "et", "eu", "fa", "fi", "fr", "he", "hi",
    "hu", "id", "it", "ja", "jv", "ka", "kk", "ko", "ml", "mr", "ms", "my", "nl", "pt", "ru",
    "sw", "ta", "te", "th", "tl", "tr", "ur", "vi", "yo", "zh",
)  # fmt: skip
PANX_TAGS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")

TASK = Task(
    name="panx",
    train_size=20_000,
    format="tagging",
    metric="f1",
    labels=PANX_TAGS,
    languages=PANX_LANGUAGES,
    roles=("target",),
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
)
