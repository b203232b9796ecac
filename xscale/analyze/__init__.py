"""Analysis of a finished (or half-finished) sweep: scale-vs-gap tables, fits, plots, report.

MLflow data model (the contract with `xscale.tracking`)
-------------------------------------------------------
- One MLflow experiment per sweep. Default store of a sweep folder: `sqlite:///<output_dir>/mlflow.db`,
  artifacts under `<output_dir>/mlartifacts`.
- The sweep is a parent run tagged `xscale.run_kind=sweep`. Each stage is a child run with tags
  `mlflow.parentRunId=<parent id>`, `xscale.run_kind=stage`, `xscale.stage_kind` in
  {pretrain, intermediate, target} and `xscale.stage_key`.
- Params on every stage run: `model_size`, `model_params` (int as string), `intermediate_task`
  (`none` for the baseline; mixtures like `mix:mnli+sst2`), `target_task`, `train_languages`
  (`en` = English zero-shot, `in-language`, `all`), `seed`, `learning_rate`, `batch_size`,
  `epochs`, `zero_stage`.
- Metrics on target runs: `<task>.<lang>.<metric>` (clean, e.g. `xnli.de.accuracy`) and
  `<task>.<lang>.<perturbation>.<metric>` (perturbed); aggregates `<task>.avg`,
  `<task>.avg_non_en`, `<task>.gap_en`, `<task>.<perturbation>.avg` are logged too but this module
  recomputes everything from the per-language values of the task's main metric (`main_metric`).
  A perturbation may not be named like a split (`dev`, `train`, ...): those names are skipped.

Only target runs (`tags.xscale.stage_kind = 'target'`) are read. A *cell* is one
(model size, intermediate task, target task, train languages, seed). The expected cells are the
product of the values seen in the runs (per train-languages mode) unless given explicitly. A cell is
missing when it has no run or its run lacks a clean main-metric score for an expected language
(still running, failed); missing values are shown as "—" (empty in CSV), counted in the report and
never averaged as zero. When a mean skips missing items the report says how many.

Everything below `analyze` is a small pure function over *records*: dicts
`{"run_id", "run_name", "status", "start_time", "params": {...}, "metrics": {...}}`.

Modules: `names` (axes, metric names, main metrics, categories), `stats` (intervals, paired
tests, fits), `scores` (records -> per-cell scores), `tables` and `analysis` (the tables),
`robustness` (degradation by size and by intermediate task), `formatting` (display and CSV
values), `plots`, `report` (the report folder) and `store`
(MLflow reading and `analyze`). Every name is importable from `xscale.analyze`.
"""

from __future__ import annotations

from xscale.analyze.analysis import Analysis, build_analysis
from xscale.analyze.formatting import flatten, fmt, safe_name, write_csv
from xscale.analyze.names import (
    AGGREGATES,
    AXES,
    BASELINE,
    CATEGORIES,
    ENGLISH,
    IN_LANGUAGE,
    MAIN_METRICS,
    MISSING,
    SPLIT_NAMES,
    ZERO_SHOT,
    CellKey,
    MetricName,
    Record,
    category_of,
    main_metric,
    parse_metric_name,
)
from xscale.analyze.plots import (
    make_plots,
    plot_gain_heatmaps,
    plot_languages,
    plot_robustness,
    plot_scaling,
)
from xscale.analyze.report import (
    REPORT_FILES,
    Block,
    missing_summary,
    render_html,
    render_markdown,
    report_blocks,
    table_block,
    write_report,
)
from xscale.analyze.robustness import (
    intermediate_kind,
    robustness_fit_table,
    robustness_inter_table,
    robustness_size_table,
)
from xscale.analyze.scores import (
    RunScores,
    Scored,
    cell_key,
    expected_cells,
    metric_names_of,
    score_records,
    select_runs,
    task_metric_values,
)
from xscale.analyze.stats import (
    Fit,
    PairedGain,
    Summary,
    fit_log_params,
    mean_only,
    paired_gain,
    summarize,
    t_quantile,
)
from xscale.analyze.store import (
    analyze,
    find_sweep_run,
    load_target_records,
    resolve_store,
    run_to_record,
)
from xscale.analyze.tables import (
    GAIN_QUANTITIES,
    Partial,
    benefit_by_size,
    cell_table,
    fit_table,
    gain_table,
    group_cells,
    in_language_table,
    language_table,
    missing_cells,
    robustness_table,
    xtreme_table,
)

__all__ = [
    "Partial",
    "AGGREGATES",
    "AXES",
    "Analysis",
    "BASELINE",
    "Block",
    "CATEGORIES",
    "CellKey",
    "ENGLISH",
    "Fit",
    "GAIN_QUANTITIES",
    "IN_LANGUAGE",
    "MAIN_METRICS",
    "MISSING",
    "MetricName",
    "PairedGain",
    "REPORT_FILES",
    "Record",
    "RunScores",
    "SPLIT_NAMES",
    "Scored",
    "Summary",
    "ZERO_SHOT",
    "analyze",
    "benefit_by_size",
    "build_analysis",
    "category_of",
    "cell_key",
    "cell_table",
    "expected_cells",
    "find_sweep_run",
    "fit_log_params",
    "fit_table",
    "flatten",
    "fmt",
    "gain_table",
    "group_cells",
    "in_language_table",
    "intermediate_kind",
    "language_table",
    "load_target_records",
    "main_metric",
    "make_plots",
    "mean_only",
    "metric_names_of",
    "missing_cells",
    "missing_summary",
    "paired_gain",
    "parse_metric_name",
    "plot_gain_heatmaps",
    "plot_languages",
    "plot_robustness",
    "plot_scaling",
    "render_html",
    "render_markdown",
    "report_blocks",
    "resolve_store",
    "robustness_fit_table",
    "robustness_inter_table",
    "robustness_size_table",
    "robustness_table",
    "run_to_record",
    "safe_name",
    "score_records",
    "select_runs",
    "summarize",
    "t_quantile",
    "table_block",
    "task_metric_values",
    "write_csv",
    "write_report",
    "xtreme_table",
]
