"""`Analysis`: every table of a sweep, built from its target-run records (`build_analysis`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from xscale.analyze.names import Record
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


@dataclass
class Analysis:
    scored: Scored
    cells: list[dict]
    languages: list[dict]
    gains: list[dict]
    benefit: list[dict]
    xtreme: list[dict]
    fits: list[dict]
    in_language: list[dict]
    robustness: list[dict]
    missing: list[dict]


def build_analysis(
    records: Sequence[Record],
    expected: Iterable[Sequence[str]] | None = None,
    main_metrics: Mapping[str, str] | None = None,
) -> Analysis:
    scored = score_records(records, expected, main_metrics)
    cells = cell_table(scored)
    gains = gain_table(scored)
    return Analysis(
        scored,
        cells,
        language_table(scored),
        gains,
        benefit_by_size(gains),
        xtreme_table(cells),
        fit_table(scored),
        in_language_table(scored),
        robustness_table(scored),
        missing_cells(scored),
    )
