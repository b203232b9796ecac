"""SQuAD v1.1 translate-train: XTREME's machine translations of SQuAD's English training set,
as a multilingual intermediate task for the QA targets (XQuAD, MLQA):
`{task: squad_tt, languages: [en, de, es, zh]}`. English is SQuAD's own training file; each
other language is XTREME's translation of it (the `xtreme_translations` bucket's
`SQuAD/translate-train/squad.translate.train.en-<lang>.json`, copied to
`<root>/xtreme/squad/translate-train/`). The data are translations, not native text: a study
names this translate-train. Dev: passages held out of each language's training file (SQuAD's
dev set holds XQuAD's English test questions)."""

from __future__ import annotations

from xscale.tasks.base import Files, Task

# the languages XTREME translated SQuAD's training set into (XQuAD's and MLQA's)
SQUAD_TT_LANGUAGES = ("en", "ar", "de", "el", "es", "hi", "ru", "th", "tr", "vi", "zh")

TASK = Task(
    name="squad_tt",
    train_size=87_599,  # per language
    format="span_qa",
    metric="f1",
    languages=SQUAD_TT_LANGUAGES,
    roles=("intermediate",),
    description="SQuAD v1.1 translate-train (XTREME's translations), 11 languages",
    files=Files(
        "per_language",
        paths={
            "test": (),
            "train": ("xtreme/squad/translate-train/squad.translate.train.en-{lang}.json",),
            # English: SQuAD's own training file (xscale's layout, then XTREME's)
            "train@en": ("intermediate/squad/train-v1.1.json", "xtreme/squad/train-v1.1.json"),
        },
        reader="squad_json",
        missing=(
            "Copy XTREME's SQuAD translations (gs://xtreme_translations/SQuAD/translate-train/)"
            " to <root>/xtreme/squad/translate-train/"
        ),
    ),
    hub_missing=(
        "task squad_tt has no Hugging Face hub copy: XTREME's SQuAD translations are in the"
        " xtreme_translations bucket (SQuAD/translate-train/); copy them to"
        " <root>/xtreme/squad/translate-train/ and give data.root: <root>"
    ),
    held_out_dev=True,
    training_data_of="squad",
)
