"""`Analysis`: every table of a sweep, built from its target-run records (`build_analysis`).

The tables are registered in one list, `TABLES`: its name (attribute and CSV file), how it is
built (from the scored records and the tables before it), and its section in the report. A new
table is one row here (and its builder in tables.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from xscale.analyze.difficulty import (
    alignment_rows,
    correlation_table,
    difficulty_table,
    subset_table,
)
from xscale.analyze.names import BASELINE, Record
from xscale.analyze.paper import PAPER_SIZE, SOURCE, paper_table
from xscale.analyze.questions import (
    data_flags,
    in_language_trend_table,
    multilingual_vs_english_table,
    robustness_kind_table,
)
from xscale.analyze.robustness import (
    robustness_fit_table,
    robustness_inter_table,
    robustness_size_table,
)
from xscale.analyze.scores import Scored, score_records
from xscale.analyze.tables import (
    benefit_by_size,
    cell_table,
    fit_table,
    gain_table,
    in_language_table,
    language_table,
    missing_cells,
    robustness_table,
    xtreme_table,
)

Rows = list[dict]


@dataclass(frozen=True)
class Table:
    name: str  # Analysis attribute; CSV file `<csv or name>.csv`
    build: Callable[[Scored, dict[str, Rows]], Rows]  # (scored records, tables built before)
    heading: str | None = None  # its report section; None: CSV only
    note: str = ""  # a paragraph under the heading
    optional: bool = False  # left out of the report when it has no rows
    csv: str | None = None
    question: int | None = None  # the question (analyze/questions.py) whose section shows it

    @property
    def csv_file(self) -> str:
        return f"{self.csv or self.name}.csv"


TABLES: tuple[Table, ...] = (
    Table(
        "cells",
        lambda s, t: cell_table(s),
        "Scores per cell (mean ± 95% CI half-width over seeds, t-distribution)",
        "en = English score; non_en = mean over non-English languages; gap = en - non_en; "
        "avg = mean over all languages. [n=k, m missing] = m seeds skipped.",
    ),
    Table("languages", lambda s, t: language_table(s)),
    Table(
        "gains",
        lambda s, t: gain_table(s),
        f"Gain of intermediate training over '{BASELINE}' (paired by seed)",
        "mean gain ± 95% CI, paired t-test p-value (scipy.stats.ttest_rel).",
        question=3,
    ),
    Table(
        "benefit",
        lambda s, t: benefit_by_size(s),
        "Benefit of intermediate training by size (non-English gain over 'none')",
        "gain@<size>: paired by seed, ± 95% CI, p (paired t-test); trend: the gain against "
        "model size (per-size means; two sizes: a comparison of two checkpoints), in points and "
        "as % of the baseline (trend_relative). Holm/BH-adjusted p of the trends beside.",
        csv="benefit_by_size",
        question=3,
    ),
    Table(
        "xtreme",
        lambda s, t: xtreme_table(s, "xtreme"),
        "XTREME aggregates, as XTREME's evaluate.py computes them",
        "Its nine tasks; a task's score is the mean over XTREME's languages for it (question "
        "answering: (EM + F1) / 2), averaged over seeds; a category and the overall score are "
        "means over tasks, given only when every one of their tasks is scored in every language "
        "(else: partial, k of n, the missing ones named).",
    ),
    Table(
        "xtreme_r",
        lambda s, t: xtreme_table(s, "xtreme_r"),
        "XTREME-R aggregates",
        "Its ten tasks and its longer language lists (XQuAD 12, PAN-X 48, UD-POS 38, Tatoeba "
        "41: xscale evaluates XTREME's by default, so those tasks are partial here); retrieval "
        "is Mewsli-X, LAReQA and Tatoeba as in the XTREME-R paper (its evaluate.py leaves "
        "LAReQA out of the group and lists it with no languages, so it never gives an overall "
        "score).",
        optional=True,
    ),
    Table(
        "paper",
        lambda s, t: paper_table(s),
        "The seed paper side by side (XLM-R large, XTREME test, English zero-shot)",
        f"Published: {SOURCE}. Study: the sweep's {PAPER_SIZE} cells, the task's mean over "
        "XTREME's languages for it (F1 for question answering, as published), mean ± 95% CI "
        "over seeds; study_intermediate: the one with the best mean dev score (the paper, too, "
        "picked its intermediate task per target); study_gain: paired by seed. UD-POS, BUCC "
        "and Tatoeba: no published row transcribed (see analyze/paper.py).",
        csv="paper_side_by_side",
    ),
    Table(
        "fits",
        lambda s, t: fit_table(s),
        "Gap and non-English score against model size",
        "trend: OLS of the per-size means on log10(model_params), sizes - 2 degrees of freedom"
        " (each size is one checkpoint: its seeds are not replicates of a size effect); two"
        " sizes: the larger minus the smaller, a comparison of two checkpoints.",
        question=3,
    ),
    Table(
        "in_language",
        lambda s, t: in_language_table(s),
        "In-language minus English zero-shot (paired by seed)",
        optional=True,
        question=1,
    ),
    Table(
        "robustness",
        lambda s, t: robustness_table(s),
        "Robustness: drop from clean to perturbed",
        "drop = clean minus perturbed mean over the perturbation's languages.",
        optional=True,
        question=4,
    ),
    Table(
        "robustness_size",
        lambda s, t: robustness_size_table(s),
        "Robustness by size: degradation under each perturbation set",
        "drop = clean minus perturbed score on the same examples (points; drop_rel: % of the"
        " clean score), in English (en) and averaged over the other languages (non_en); mean"
        " ± 95% CI over seeds.",
        optional=True,
        question=4,
    ),
    Table(
        "robustness_fits",
        lambda s, t: robustness_fit_table(s),
        "Degradation against model size",
        "Absolute drop, relative drop (% of the clean score: attacks only touch examples the"
        " model gets right, so the absolute drop grows with clean accuracy) and attack success"
        " rate, each against size on per-size means. A negative slope: larger models lose less.",
        optional=True,
        question=4,
    ),
    Table(
        "robustness_inter",
        lambda s, t: robustness_inter_table(s),
        "Robustness by intermediate task: English vs multilingual intermediate training",
        "Drops pooled over seeds and over the intermediate tasks of each kind: none, English"
        " (trained on English only), multilingual (trained on several languages).",
        optional=True,
        question=4,
    ),
    Table(
        "subsets",
        lambda s, t: subset_table(s),
        "Intermediate-task difficulty: cartography subsets side by side",
        "Each subset is a share (fraction) of the task's training examples, chosen on its "
        "cartography map: easy = highest confidence, hard = lowest, ambiguous = highest "
        "variability. easy_minus_hard: paired by seed, ± 95% CI, paired t-test p-value.",
        optional=True,
        question=5,
    ),
    Table(
        "difficulty",
        lambda s, t: difficulty_table(s, t["gains"]),
        "Intermediate-task difficulty and transfer",
        "probe_*: a linear probe of the pretrained encoder (English dev accuracy, loss); "
        "epoch1_accuracy: dev after the map run's first epoch; cartography_*: the map's means "
        "and the shares of examples right at every epoch (easy), some (ambiguous), none (hard); "
        "trained_confidence: mean confidence of the examples the intermediate stage trained on.",
        optional=True,
        question=5,
    ),
    Table(
        "alignment_phases",
        lambda s, t: alignment_rows(s, all_layers=False),
        "Cross-lingual alignment by phase (last layer; English vs each other language)",
        "Mean over the non-English languages, ± 95% CI over seeds: pretrained model, after "
        "intermediate training, after target training, and the changes from pretrained. cka "
        "and cos_gap (cosine of parallel minus random pairs) x100; retrieval in %, both "
        "directions. Every layer: alignment_layers.csv.",
        optional=True,
        question=5,
    ),
    Table("alignment_layers", lambda s, t: alignment_rows(s, all_layers=True)),
    Table(
        "correlations",
        lambda s, t: correlation_table(s, t),
        "Difficulty and alignment against transfer (Pearson r)",
        "points = runs: one per (size, intermediate, seed), alignment measured on that run "
        "(last layer, non-English mean); points = cells: one per (size, intermediate), seed "
        "means (difficulty is measured once per task and size). 95% CI by Fisher's z (n >= 4). "
        "Sizes are pooled: with several sizes, size drives both sides.",
        optional=True,
        question=5,
    ),
    Table(
        "in_language_trend",
        lambda s, t: in_language_trend_table(s),
        "In-language minus zero-shot by size",
        "diff@<size>: target-language training minus English zero-shot, non-English mean,"
        " paired by seed; trend: against size (per-size means; two sizes: a comparison of two"
        " checkpoints).",
        optional=True,
        question=1,
    ),
    Table(
        "multilingual_vs_english",
        lambda s, t: multilingual_vs_english_table(s),
        "Multilingual minus English intermediate training (clean scores)",
        "Per task, its multilingual version against its English one (a translation counts as"
        " its original: squad_tt is squad), paired by seed (several entries of a kind: their"
        " mean); trend: against size.",
        optional=True,
        question=2,
    ),
    Table(
        "intermediate_data_flags",
        lambda s, t: data_flags(s),
        "Intermediate data that are not a clean contrast",
        "relation: the intermediate task trained on the target's own data (its translate-train"
        " files) or on its training data (SQuAD or its translations before XQuAD, MNLI before"
        " XNLI, whose English training set is MNLI's); shared_test_examples: the most test"
        " examples, in the evaluated languages, holding a text (NFKC, case- and"
        " space-insensitive, 12+ characters) that the intermediate stage trained on, over the"
        " runs (blank: runs from before the count).",
        optional=True,
        question=2,
    ),
    Table(
        "robustness_kind",
        lambda s, t: robustness_kind_table(s),
        "Robustness: multilingual minus English intermediate training, by size",
        "Non-English drop under each set; negative: multilingual intermediate training loses"
        " less. trend: the difference against size (the size x kind interaction).",
        optional=True,
        question=4,
    ),
    Table("missing", lambda s, t: missing_cells(s)),  # reported in its own section, first
)


@dataclass
class Analysis:
    scored: Scored
    tables: dict[str, Rows]

    def __getattr__(self, name: str) -> Rows:
        tables = self.__dict__.get("tables", {})
        if name in tables:
            return tables[name]
        raise AttributeError(name)


def build_analysis(
    records: Sequence[Record],
    expected: Iterable[Sequence[str]] | None = None,
    main_metrics: Mapping[str, str] | None = None,
    stages: Sequence[Record] = (),
) -> Analysis:
    """`records`: the target runs; `stages`: the other stage runs (difficulty, alignment)."""
    scored = score_records(records, expected, main_metrics)
    scored.stages = list(stages)
    tables: dict[str, Rows] = {}
    for table in TABLES:
        tables[table.name] = table.build(scored, tables)
    return Analysis(scored, tables)
