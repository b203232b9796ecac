"""What a task is: the registry entry that names its data, format, labels, languages and metric.

The chain is explicit, as in jiant: a *reader* turns files (or hub rows) into `Example`s, the
task's *format* module turns examples into tokenized features and batches, builds the head, and
scores predictions. One module per format lives beside this one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

SPLITS = ("train", "dev", "test")


@dataclass
class Example:
    """One raw example. `fields` is format specific:

    - pair_classification: text_a, text_b, label (str)
    - single_classification: text, label (str)
    - span_qa: question, context, answers [{"text", "answer_start"}], id
    - tagging: tokens [str], tags [str]
    - multiple_choice: context, question, choices [str], label (int)
    - retrieval: source (str), target (str)  (a parallel pair)
    - dual_encoder: query [str, ...], candidate [str, ...] (text segments), key (the
      candidate's identity); LAReQA trains on span_qa (SQuAD) examples, converted by the format
    """

    guid: str
    lang: str
    fields: dict[str, Any]


@dataclass
class RetrievalPool:
    """A retrieval test set (LAReQA, Mewsli-X): one pool of candidates searched by the queries
    of every language. ``candidates[j]`` = (id, text segments); ``queries[lang]`` = [(id, text
    segments, indices of the relevant candidates)]; ``skipped[lang]``: queries left out (an
    answer in no sentence, an entity outside the candidate set), counted, never silently."""

    candidates: list[tuple[str, tuple[str, ...]]]
    queries: dict[str, list[tuple[str, tuple[str, ...], frozenset[int]]]]
    skipped: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class HubSource:
    """Where the real data lives on the Hugging Face hub.

    `config` may contain "{lang}", "{code}" (Tatoeba's three-letter code) or "{language}"
    (`names[lang]`), formatted per language. `splits` maps our split names
    (train/dev/test) to the hub's. `columns` maps our field names to the hub's column names.
    `label_names` maps hub integer labels to our string labels, in order, when the hub stores ints.
    """

    dataset_id: str
    config: str | None = None
    splits: dict[str, str] = field(default_factory=lambda: {"train": "train", "dev": "validation"})
    columns: dict[str, str] = field(default_factory=dict)
    label_names: tuple[str, ...] | None = None
    names: dict[str, str] = field(default_factory=dict)  # lang -> "{language}" in `config`


FileKind = Literal["split_folder", "english", "per_language", "bucc_corpora", "mewslix_release"]


@dataclass(frozen=True)
class Files:
    """Where a task's files are in a data folder of XTREME's download layout, and how they are
    read (`xscale.data` interprets this; a task module only declares it):

    - split_folder: `<folder>/<split>-<lang>.tsv` (reader "pairs_tsv" or "tagging_tsv"); a folder of
      dev files only is split into train/dev/test by groups (data/xtreme.py);
    - english: `paths[split]` candidate files (the first present is read) of an English task;
    - per_language: `paths["test"]` candidate patterns with `{lang}` / `{code}` (Tatoeba's
      three-letter code) per test language, `paths["train"]` training files (`{lang}`: one
      per language; `paths["train@<lang>"]`: a language's own, e.g. translate-train's English); when
      `switch` (a folder) exists only the first test candidate is used, else the rest (MLQA:
      its test folder, else the dev files);
    - bucc_corpora, mewslix_release: those releases' layouts under `folder` (data/xtreme.py,
      data/pools.py).

    `reader`: a reader of `xscale.data` by name. `missing`: what to do when a file is missing
    (CCGbank's licence, XQuAD-R's download; `{path}` is the missing file)."""

    kind: FileKind
    folder: str = ""
    paths: dict[str, tuple[str, ...]] = field(default_factory=dict)
    reader: str = ""
    switch: str = ""
    missing: str = ""


@dataclass(frozen=True)
class Task:
    """One task, everything it is: its format, metric, labels and languages; where its data
    live (`files` in a folder, `hub` on the Hugging Face hub) and how a hub row becomes an
    example; what it trains on and where it selects models; the scoring variant of its format;
    nominal sizes for plans. One module per task in `tasks/lib/`, one row each in
    `tasks/registry.TASKS`: nothing else in xscale branches on a task's name."""

    name: str
    format: str  # a row of tasks.FORMATS
    metric: str  # the task's main metric, e.g. "accuracy" or "f1"
    labels: tuple[str, ...] = ()
    languages: tuple[str, ...] = ("en",)  # languages with evaluation data
    roles: tuple[str, ...] = ("intermediate",)  # "intermediate" and/or "target"
    hub: HubSource | None = None
    description: str = ""
    # English training rows of the full dataset (the hub's train split), for cost estimates in
    # plans before any data is read; 0 for tasks evaluated without training
    train_size: int = 10_000
    files: Files | None = None  # its files in a folder of XTREME's download layout
    # a hub row -> the example's fields (None: the format's default converter); `hub_keep`
    # keeps a row for a language when one hub config holds every language (TyDiQA)
    hub_rows: Callable[[Task, dict, str], dict] | None = None
    hub_keep: Callable[[dict, str], bool] | None = None
    hub_missing: str = ""  # why there is no hub copy and what to do instead
    # targets trained on another task's train and dev splits (XQuAD on SQuAD, XCOPA on COPA),
    # and of those the ones selecting on passages held out of its training file (SQuAD's dev
    # set holds XQuAD's English test questions); `held_out_dev`: its own training file gives
    # train and dev (TyDiQA-GoldP)
    trained_on: str | None = None
    select_on_held_out: bool = False
    held_out_dev: bool = False
    # the format's scoring variant: span_qa "squad_v2" (unanswerable questions) or "mlqa_norm"
    # (the context language's normalisation); tagging "pos" (accuracy and F1 over tags);
    # retrieval "sentences" (Tatoeba: each sentence's translation) or "mining" (BUCC)
    scoring: str = ""
    # sentences parallel across languages: "rows" (row i of every language's file is one
    # example: XNLI, PAWS-X, in `parallel_fields`), "pairs" (each example holds an English
    # `target` and its `source` translation: Tatoeba)
    parallel: str = ""
    parallel_fields: tuple[str, ...] = ()
    # its non-English training files are machine translations of the English one (XNLI,
    # PAWS-X: XTREME's translate-train), not native text: a study names that mode so
    translated_train: bool = False
    # the task whose training set this task's training data are, or translate: SQuAD for its
    # translate-train files, MNLI for XNLI (XNLI's English training set is MNLI's); the report
    # flags an intermediate task trained on a target's own training data
    training_data_of: str | None = None
    # the benchmarks that score it, and its category in each: {"xtreme": "classification", ...};
    # the languages a benchmark averages over, where they are not `languages`
    benchmarks: dict[str, str] = field(default_factory=dict)
    benchmark_languages: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def scored_languages(self, benchmark: str) -> tuple[str, ...]:
        """The languages `benchmark` averages this task over (its evaluate.py's lists)."""
        return self.benchmark_languages.get(benchmark, self.languages)

    # test rows per language (XTREME's test sets, roughly), for evaluation time in simulations
    test_rows: int = 1_000
    # sequences one example puts in a batch: 1, or one per answer choice (multiple choice),
    # for activation-memory plans
    choices: int = 1


class TaskFormat(Protocol):
    """What a format module provides (classification.py, span_qa.py, tagging.py, ...): the chain
    examples -> features -> batch -> head -> loss -> predictions -> scores and export files."""

    name: str

    def featurize(self, task: Task, examples: list[Example], tokenizer, max_length: int) -> list:
        """Tokenized features, one or more per example (with what scoring needs)."""

    def collate(self, features: list[dict], pad_id: int) -> dict:
        """A padded batch of tensors."""

    def make_head(self, task: Task, hidden_size: int):
        """The task head, an nn.Module called as head(hidden_states, batch) -> logits."""

    def loss(self, logits, batch: dict):
        """The training loss of a batch."""

    def predict(self, logits, batch: dict) -> list:
        """Predictions for the batch's features, in order."""

    def score(self, task: Task, predictions: list, features: list[dict]) -> dict[str, float]:
        """Metrics in 0-100, as XTREME's official scoring computes them."""

    def export(self, task: Task, lang: str, predictions: list, features: list, out_dir) -> None:
        """Prediction files in the layout XTREME's scoring scripts read."""
