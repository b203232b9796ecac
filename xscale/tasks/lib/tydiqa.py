"""TyDiQA-GoldP: typologically diverse extractive QA, trained on its English training set (or,
in-language, each language's own; as an intermediate task, several languages' at once)."""

from __future__ import annotations

from xscale.tasks.base import Files, HubSource, Task

TYDIQA_LANGUAGES = ("en", "ar", "bn", "fi", "id", "ko", "ru", "sw", "te")

# Its hub config holds every language; question ids start with the language's name
# ("english--3215621880858840488-2").
NAMES = {
    "en": "english", "ar": "arabic", "bn": "bengali", "fi": "finnish", "id": "indonesian",
    "ko": "korean", "ru": "russian", "sw": "swahili", "te": "telugu",
}  # fmt: skip


def _hub_keep(row: dict, lang: str) -> bool:
    return str(row.get("id", "")).startswith(NAMES[lang] + "-")


TASK = Task(
    name="tydiqa",
    train_size=3_696,
    format="span_qa",
    metric="f1",
    languages=TYDIQA_LANGUAGES,
    # intermediate: its training set in several languages (`{task: tydiqa, languages: [...]}`,
    # as `tydiqa_goldp`); a target trains on English, or per language (in-language: native)
    roles=("intermediate", "target"),
    hub=HubSource(
        "google-research-datasets/tydiqa",
        config="secondary_task",
        # dev: passages held out of the train split (never the scored validation split)
        splits={"train": "train", "dev": "train", "test": "validation"},
    ),
    description="TyDiQA-GoldP: typologically diverse extractive QA (gold passage), 9 languages;"
    " trained on its English training set",
    test_rows=600,
    # train and dev are both cut from the English training file (rows.held_out_split)
    files=Files(
        "per_language",
        paths={
            "test": ("xtreme/tydiqa/tydiqa-goldp-v1.1-dev/tydiqa.goldp.{lang}.dev.json",),
            "train": (
                "xtreme/tydiqa/tydiqa-goldp-v1.1-train/tydiqa.goldp.{lang}.train.json",
                "xtreme/tydiqa/tydiqa-goldp-v1.1-train/tydiqa.{lang}.train.json",
            ),
        },
        reader="squad_json",
    ),
    hub_keep=_hub_keep,
    held_out_dev=True,
    benchmarks={"xtreme": "question_answering", "xtreme_r": "question_answering"},
)
