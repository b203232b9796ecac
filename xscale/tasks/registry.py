"""The task registry: task name -> `Task`. Add a task by adding one entry to `TASKS`.

Readers for each task's files live in `xscale.data` (which uses `xscale.data.readers`).
"""

from __future__ import annotations

from xscale.errors import XScaleError
from xscale.tasks.base import HubSource, Task

NLI_LABELS = ("entailment", "neutral", "contradiction")
BINARY_LABELS = ("0", "1")
# Universal POS tags (UD v2), in the order of the hub's ClassLabel (google/xtreme udpos.*).
UPOS_TAGS = (
    "ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM",
    "PART", "PRON", "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X",
)  # fmt: skip
# PAN-X / WikiANN tags, in the order of unimelb-nlp/wikiann's ner_tags ClassLabel.
PANX_TAGS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")

# Every language XTREME evaluates the task in (English first). A given data root may hold fewer:
# `xscale.data.available_languages` says which.
XNLI_LANGUAGES = (
    "en", "ar", "bg", "de", "el", "es", "fr", "hi", "ru", "sw", "th", "tr", "ur", "vi", "zh",
)  # fmt: skip
PAWSX_LANGUAGES = ("en", "de", "es", "fr", "ja", "ko", "zh")
XQUAD_LANGUAGES = ("en", "ar", "de", "el", "es", "hi", "ru", "th", "tr", "vi", "zh")
MLQA_LANGUAGES = ("en", "ar", "de", "es", "hi", "vi", "zh")
TYDIQA_LANGUAGES = ("en", "ar", "bn", "fi", "id", "ko", "ru", "sw", "te")
UDPOS_LANGUAGES = (
    "en", "af", "ar", "bg", "de", "el", "es", "et", "eu", "fa", "fi", "fr", "he", "hi", "hu",
    "id", "it", "ja", "kk", "ko", "mr", "nl", "pt", "ru", "ta", "te", "th", "tl", "tr", "ur",
    "vi", "yo", "zh",
)  # fmt: skip
PANX_LANGUAGES = (
    "en", "af", "ar", "bg", "bn", "de", "el", "es", "et", "eu", "fa", "fi", "fr", "he", "hi",
    "hu", "id", "it", "ja", "jv", "ka", "kk", "ko", "ml", "mr", "ms", "my", "nl", "pt", "ru",
    "sw", "ta", "te", "th", "tl", "tr", "ur", "vi", "yo", "zh",
)  # fmt: skip
# XCOPA (XTREME-R): no English test set; English training and dev data are COPA's.
XCOPA_LANGUAGES = ("et", "ht", "id", "it", "qu", "sw", "ta", "th", "tr", "vi", "zh")
# XQuAD-R (LAReQA): XQuAD's 11 languages; Mewsli-X: its 11 WikiNews languages.
LAREQA_LANGUAGES = XQUAD_LANGUAGES
MEWSLIX_LANGUAGES = ("en", "ar", "de", "es", "fa", "ja", "pl", "ro", "ta", "tr", "uk")
BUCC_LANGUAGES = ("de", "fr", "ru", "zh")
# XTREME's 36 Tatoeba languages (each paired with English); codes: data.readers.TATOEBA_CODES.
TATOEBA_LANGUAGES = (
    "af", "ar", "bg", "bn", "de", "el", "es", "et", "eu", "fa", "fi", "fr", "he", "hi", "hu",
    "id", "it", "ja", "jv", "ka", "kk", "ko", "ml", "mr", "nl", "pt", "ru", "sw", "ta", "te",
    "th", "tl", "tr", "ur", "vi", "zh",
)  # fmt: skip

_NLI_COLUMNS = {"text_a": "premise", "text_b": "hypothesis", "label": "label"}

_TASKS = [
    Task(
        name="mnli",
        train_size=392_702,
        format="pair_classification",
        metric="accuracy",
        labels=NLI_LABELS,
        roles=("intermediate",),
        hub=HubSource(
            "nyu-mll/glue",
            config="mnli",
            splits={"train": "train", "dev": "validation_matched", "test": "validation_mismatched"},
            columns=_NLI_COLUMNS,
            label_names=NLI_LABELS,
        ),
        description="MultiNLI: English sentence-pair entailment (3 classes)",
    ),
    Task(
        name="anli",
        train_size=16_946,
        format="pair_classification",
        metric="accuracy",
        labels=NLI_LABELS,
        roles=("intermediate",),
        hub=HubSource(
            "facebook/anli",
            splits={"train": "train_r1", "dev": "dev_r1", "test": "test_r1"},
            columns=_NLI_COLUMNS,
            label_names=NLI_LABELS,
        ),
        description="Adversarial NLI, round 1: English entailment written to fool models",
    ),
    Task(
        name="sst2",
        train_size=67_349,
        format="single_classification",
        metric="accuracy",
        labels=BINARY_LABELS,
        roles=("intermediate",),
        hub=HubSource(
            "nyu-mll/glue",
            config="sst2",
            splits={"train": "train", "dev": "validation"},
            columns={"text": "sentence", "label": "label"},
            label_names=BINARY_LABELS,
        ),
        description="SST-2: English movie-review sentence sentiment (0 negative, 1 positive)",
    ),
    Task(
        name="xnli",
        train_size=392_702,
        format="pair_classification",
        metric="accuracy",
        labels=NLI_LABELS,
        languages=XNLI_LANGUAGES,
        roles=("intermediate", "target"),  # intermediate: in several languages (translate-train),
        hub=HubSource(
            "facebook/xnli",
            config="{lang}",
            splits={"train": "train", "dev": "validation", "test": "test"},
            columns=_NLI_COLUMNS,
            label_names=NLI_LABELS,
        ),
        description="XNLI: cross-lingual NLI (MNLI-style), 15 languages",
        test_rows=5010,
    ),
    Task(
        name="pawsx",
        train_size=49_401,
        format="pair_classification",
        metric="accuracy",
        labels=BINARY_LABELS,
        languages=PAWSX_LANGUAGES,
        roles=("intermediate", "target"),  # intermediate: in several languages (translate-train),
        hub=HubSource(
            "google-research-datasets/paws-x",
            config="{lang}",
            splits={"train": "train", "dev": "validation", "test": "test"},
            columns={"text_a": "sentence1", "text_b": "sentence2", "label": "label"},
            label_names=BINARY_LABELS,
        ),
        description="PAWS-X: cross-lingual paraphrase identification (1 paraphrase), 7 languages",
        test_rows=2000,
    ),
    Task(
        name="qqp",
        train_size=363_846,
        format="pair_classification",
        metric="accuracy",
        labels=BINARY_LABELS,
        roles=("intermediate",),
        hub=HubSource(
            "nyu-mll/glue",
            config="qqp",
            splits={"train": "train", "dev": "validation"},
            columns={"text_a": "question1", "text_b": "question2", "label": "label"},
            label_names=BINARY_LABELS,
        ),
        description="Quora Question Pairs (GLUE): English duplicate-question detection (1 same)",
    ),
    # --- span QA: XQuAD and MLQA train on SQuAD v1.1 (TRAINED_ON), TyDiQA on its English train
    Task(
        name="squad",
        train_size=87_599,
        format="span_qa",
        metric="f1",
        roles=("intermediate",),
        hub=HubSource("rajpurkar/squad"),
        description="SQuAD v1.1: English extractive QA (Wikipedia)",
    ),
    Task(
        name="squad2",
        train_size=130_319,
        format="span_qa",
        metric="f1",
        roles=("intermediate",),
        hub=HubSource("rajpurkar/squad_v2"),
        description="SQuAD v2.0: SQuAD v1.1 plus unanswerable questions (answer: <s>)",
    ),
    Task(
        name="xquad",
        train_size=87_599,
        format="span_qa",
        metric="f1",
        languages=XQUAD_LANGUAGES,
        roles=("target",),
        hub=HubSource("google/xquad", config="xquad.{lang}", splits={"test": "validation"}),
        description="XQuAD: SQuAD v1.1 dev questions translated into 10 languages (+ en)",
        test_rows=1190,
    ),
    Task(
        name="mlqa",
        train_size=87_599,
        format="span_qa",
        metric="f1",
        languages=MLQA_LANGUAGES,
        roles=("target",),
        hub=HubSource("facebook/mlqa", config="mlqa.{lang}.{lang}", splits={"test": "test"}),
        description="MLQA: extractive QA, context and question in the same language, 7 languages",
        test_rows=5000,
    ),
    Task(
        name="tydiqa",
        train_size=3_696,
        format="span_qa",
        metric="f1",
        languages=TYDIQA_LANGUAGES,
        roles=("target",),
        hub=HubSource(
            "google-research-datasets/tydiqa",
            config="secondary_task",
            # dev: passages held out of the train split (never the scored validation split)
            splits={"train": "train", "dev": "train", "test": "validation"},
        ),
        description="TyDiQA-GoldP: typologically diverse extractive QA (gold passage), 9 languages;"
        " trained on its English training set",
        test_rows=600,
    ),
    # --- tagging
    Task(
        name="udpos",
        train_size=21_253,
        format="tagging",
        metric="f1",
        labels=UPOS_TAGS,
        languages=UDPOS_LANGUAGES,
        roles=("target",),
        hub=HubSource(
            "google/xtreme",
            config="udpos.{language}",
            splits={"train": "train", "dev": "validation", "test": "test"},
            label_names=UPOS_TAGS,
        ),
        description="UD-POS: universal part-of-speech tagging (17 UPOS tags), 33 languages",
        test_rows=1000,
    ),
    Task(
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
            splits={"train": "train", "dev": "validation", "test": "test"},
            label_names=PANX_TAGS,
        ),
        description="PAN-X (WikiANN): named entities PER/ORG/LOC in IOB2, 40 languages",
        test_rows=10000,
    ),
    Task(
        name="ccg",
        train_size=38_015,
        format="tagging",
        metric="accuracy",
        labels=(),  # open-ended: the supertags seen in the training file
        roles=("intermediate",),
        description="CCGbank supertagging (licensed, LDC2005T13): <root>/intermediate/ccg/",
    ),
    # --- multiple choice
    Task(
        name="hellaswag",
        train_size=39_905,
        format="multiple_choice",
        choices=4,
        metric="accuracy",
        roles=("intermediate",),
        hub=HubSource("Rowan/hellaswag"),
        description="HellaSwag: pick the plausible continuation of a scene (4 endings)",
    ),
    Task(
        name="csqa",
        train_size=9_741,
        format="multiple_choice",
        choices=5,
        metric="accuracy",
        roles=("intermediate",),
        hub=HubSource("tau/commonsense_qa"),
        description="CommonsenseQA: commonsense questions with 5 answer choices",
    ),
    Task(
        name="cosmosqa",
        train_size=25_262,
        format="multiple_choice",
        choices=4,
        metric="accuracy",
        roles=("intermediate",),
        hub=HubSource("allenai/cosmos_qa"),
        description="Cosmos QA: commonsense reading comprehension over narratives (4 choices)",
    ),
    Task(
        name="siqa",
        format="multiple_choice",
        choices=3,
        metric="accuracy",
        roles=("intermediate",),
        hub=HubSource("allenai/social_i_qa"),
        description="Social IQa: commonsense about social situations (3 choices)",
    ),
    Task(
        name="copa",
        format="multiple_choice",
        choices=2,
        metric="accuracy",
        roles=("intermediate",),
        hub=HubSource("aps/super_glue", config="copa"),
        description="COPA (SuperGLUE): choice of plausible alternatives, cause or effect (English)",
    ),
    Task(
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
    ),
    # --- retrieval with a fine-tuned dual encoder (XTREME-R): one pool for every language
    Task(
        name="lareqa",
        train_size=87_599,
        format="dual_encoder",
        metric="map_at_20",
        languages=LAREQA_LANGUAGES,
        roles=("target",),
        description="LAReQA (XQuAD-R): language-agnostic answer-sentence retrieval from one"
        " multilingual pool; trained on English SQuAD v1.1 question/answer-sentence pairs",
        test_rows=1190,
    ),
    Task(
        name="mewslix",
        train_size=167_719,
        format="dual_encoder",
        metric="map_at_20",
        languages=MEWSLIX_LANGUAGES,
        roles=("target",),
        # the hub copy's files, assembled into the release layout (data/mewslix_hub.py)
        hub=HubSource("izhx/mewsli-x", splits={"train": "train", "dev": "dev", "test": "test"}),
        description="Mewsli-X: entity-mention retrieval (WikiNews, 11 languages) against 1M"
        " entity descriptions; trained on English Wikipedia mention-entity pairs",
        test_rows=1000,
    ),
    # --- retrieval: no fine-tuning, sentence embeddings from a middle layer
    Task(
        name="bucc",
        train_size=0,
        format="retrieval",
        metric="f1",
        languages=BUCC_LANGUAGES,
        roles=("target",),
        description="BUCC 2018: mining parallel sentences from comparable corpora (x-en)",
        test_rows=10000,
    ),
    Task(
        name="tatoeba",
        train_size=0,
        format="retrieval",
        metric="accuracy",
        languages=TATOEBA_LANGUAGES,
        roles=("target",),
        hub=HubSource("google/xtreme", config="tatoeba.{code}", splits={"test": "validation"}),
        description="Tatoeba: find the English translation of each sentence, 36 languages",
        test_rows=1000,
    ),
]

TASKS: dict[str, Task] = {t.name: t for t in _TASKS}

# Target tasks whose (English) train and dev splits are another task's, as XTREME(-R) trains
# them: XQuAD, MLQA and LAReQA on SQuAD v1.1, XCOPA on COPA. Their own files supply only the
# test split. (TyDiQA-GoldP trains on its own English training set, as in XTREME.)
TRAINED_ON: dict[str, str] = {"xquad": "squad", "mlqa": "squad", "lareqa": "squad", "xcopa": "copa"}
# Of those, the targets that select models on passages held out of the source's *training* file
# (`data.rows.held_out_split`): SQuAD v1.1's dev set holds XQuAD's (and so XQuAD-R's) English
# test questions, so it is never their selection set.
SELECT_ON_HELD_OUT = frozenset({"xquad", "mlqa", "lareqa"})


def get_task(name: str) -> Task:
    """The registered task called `name`; XScaleError naming it and the known tasks otherwise."""
    try:
        return TASKS[name]
    except KeyError:
        known = ", ".join(sorted(TASKS))
        raise XScaleError(f"unknown task {name!r}; known tasks: {known}") from None
