"""UD-POS: universal part-of-speech tagging in 33 languages."""

from __future__ import annotations

from xscale.tasks.base import Files, HubSource, Task

UDPOS_LANGUAGES = (
    "en", "af", "ar", "bg", "de", "el", "es", "et", "eu", "fa", "fi", "fr", "he", "hi", "hu",
    "id", "it", "ja", "kk", "ko", "mr", "nl", "pt", "ru", "ta", "te", "th", "tl", "tr", "ur",
    "vi", "yo", "zh",
)  # fmt: skip
UPOS_TAGS = (
    "ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM",
    "PART", "PRON", "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X",
)  # fmt: skip

# google/xtreme's UD-POS configs are named by language ("udpos.German").
LANGUAGE_NAMES = {
    "af": "Afrikaans", "ar": "Arabic", "bg": "Bulgarian", "de": "German", "el": "Greek",
    "en": "English", "es": "Spanish", "et": "Estonian", "eu": "Basque", "fa": "Persian",
    "fi": "Finnish", "fr": "French", "he": "Hebrew", "hi": "Hindi", "hu": "Hungarian",
    "id": "Indonesian", "it": "Italian", "ja": "Japanese", "kk": "Kazakh", "ko": "Korean",
    "mr": "Marathi", "nl": "Dutch", "pt": "Portuguese", "ru": "Russian", "ta": "Tamil",
    "te": "Telugu", "th": "Thai", "tl": "Tagalog", "tr": "Turkish", "ur": "Urdu",
    "vi": "Vietnamese", "yo": "Yoruba", "zh": "Chinese",
}  # fmt: skip


# XTREME-R scores more languages than XTREME (its evaluate.py's XTREME_R_TASK2LANGS); xscale
# evaluates XTREME's by default, so XTREME-R's aggregate of this task is partial without them
XTREME_R_LANGUAGES = (
    "af",
    "ar",
    "bg",
    "de",
    "el",
    "en",
    "es",
    "et",
    "eu",
    "fa",
    "fi",
    "fr",
    "he",
    "hi",
    "hu",
    "id",
    "it",
    "ja",
    "kk",
    "ko",
    "mr",
    "nl",
    "pt",
    "ru",
    "ta",
    "te",
    "th",
    "tl",
    "tr",
    "ur",
    "vi",
    "yo",
    "zh",
    "lt",
    "pl",
    "uk",
    "wo",
    "ro",
)

TASK = Task(
    name="udpos",
    train_size=21_253,
    format="tagging",
    metric="f1",
    labels=UPOS_TAGS,
    languages=UDPOS_LANGUAGES,
    roles=("intermediate", "target"),  # intermediate: multilingual training data
    hub=HubSource(
        "google/xtreme",
        config="udpos.{language}",
        columns={"tags": "pos_tags"},
        names=LANGUAGE_NAMES,
        splits={"train": "train", "dev": "validation", "test": "test"},
        label_names=UPOS_TAGS,
    ),
    description="UD-POS: universal part-of-speech tagging (17 UPOS tags), 33 languages",
    test_rows=1000,
    files=Files("split_folder", folder="xtreme/udpos", reader="tagging_tsv"),
    scoring="pos",
    benchmarks={"xtreme": "structured_prediction", "xtreme_r": "structured_prediction"},
    benchmark_languages={"xtreme_r": XTREME_R_LANGUAGES},
)
