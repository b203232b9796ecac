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
"""

from __future__ import annotations

import base64
import csv
import datetime as _dt
import html
import itertools
import math
import re
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xscale.errors import XScaleError

MISSING = "—"
BASELINE = "none"
ZERO_SHOT = "en"
IN_LANGUAGE = "in-language"
ENGLISH = "en"
AXES = ("model_size", "intermediate_task", "target_task", "train_languages")
AGGREGATES = ("avg", "avg_non_en", "gap_en")
SPLIT_NAMES = ("dev", "train", "valid", "validation", "test")

MAIN_METRICS = {
    "xnli": "accuracy",
    "pawsx": "accuracy",
    "xcopa": "accuracy",
    "tatoeba": "accuracy",
    "xquad": "f1",
    "mlqa": "f1",
    "tydiqa": "f1",
    "udpos": "f1",
    "panx": "f1",
    "bucc": "f1",
}
CATEGORIES = {
    "classification": ("xnli", "pawsx", "xcopa"),
    "structured_prediction": ("udpos", "panx"),
    "question_answering": ("xquad", "mlqa", "tydiqa"),
    "retrieval": ("bucc", "tatoeba"),
}
REPORT_FILES = (
    "report.md",
    "report.html",
    "cells.csv",
    "languages.csv",
    "gains.csv",
    "benefit_by_size.csv",
    "xtreme.csv",
    "fits.csv",
    "in_language.csv",
    "robustness.csv",
    "missing.csv",
)

Record = Mapping[str, Any]
CellKey = tuple[str, str, str, str, str]  # size, intermediate, target, train_languages, seed


def main_metric(task: str, available: Iterable[str] = ()) -> str:
    """The task's main metric; for a task outside XTREME, `accuracy` or `f1` if logged, or the
    only metric logged."""
    if task in MAIN_METRICS:
        return MAIN_METRICS[task]
    avail = set(available)
    for name in ("accuracy", "f1"):
        if name in avail:
            return name
    if len(avail) == 1:
        return next(iter(avail))
    raise XScaleError(
        f"no main metric known for task {task!r} (logged: {sorted(avail) or 'none'}); "
        "pass main_metrics={task: metric}"
    )


def category_of(task: str) -> str:
    return next((c for c, tasks in CATEGORIES.items() if task in tasks), "other")


@dataclass(frozen=True)
class MetricName:
    task: str
    lang: str
    perturbation: str | None  # None = clean
    metric: str


def parse_metric_name(name: str) -> MetricName | None:
    """`xnli.de.accuracy` -> clean; `xnli.de.typos.accuracy` -> perturbed; aggregates -> None."""
    parts = name.split(".")
    if len(parts) == 3 and parts[2] not in AGGREGATES:
        return MetricName(parts[0], parts[1], None, parts[2])
    if len(parts) == 4 and parts[3] not in AGGREGATES and parts[2] not in SPLIT_NAMES:
        return MetricName(parts[0], parts[1], parts[2], parts[3])
    return None


# ---------------------------------------------------------------- statistics


@dataclass(frozen=True)
class Summary:
    """Mean over the present values and its t-interval; `n_missing` values were skipped."""

    n: int
    mean: float | None
    half_width: float | None  # None when n < 2: the interval is undefined
    n_missing: int = 0
    interval: bool = True  # False: a plain mean, no interval intended

    @property
    def ci(self) -> tuple[float, float] | None:
        if self.half_width is None or self.mean is None:
            return None
        return (self.mean - self.half_width, self.mean + self.half_width)


def _present(values: Iterable[float | None]) -> list[float]:
    return [float(v) for v in values if v is not None and not math.isnan(v)]


def t_quantile(df: int, confidence: float = 0.95) -> float:
    from scipy import stats

    return float(stats.t.ppf(0.5 + confidence / 2, df))


def summarize(values: Sequence[float | None], confidence: float = 0.95) -> Summary:
    present = _present(values)
    n, n_missing = len(present), len(values) - len(present)
    if n == 0:
        return Summary(0, None, None, n_missing)
    mean = math.fsum(present) / n
    if n == 1:
        return Summary(1, mean, None, n_missing)
    half = t_quantile(n - 1, confidence) * statistics.stdev(present) / math.sqrt(n)
    return Summary(n, mean, half, n_missing)


def mean_only(values: Sequence[float | None]) -> Summary:
    """Plain mean over the present values (no interval), counting the missing ones."""
    s = summarize(values)
    return Summary(s.n, s.mean, None, s.n_missing, interval=False)


@dataclass(frozen=True)
class PairedGain:
    """Mean of paired differences (treatment - baseline), its CI and the paired t-test p-value.
    `gain.n_missing` counts seeds where one side (or both) is missing."""

    gain: Summary
    p_value: float | None
    note: str = ""


def paired_gain(treat: Mapping[str, float | None], base: Mapping[str, float | None]) -> PairedGain:
    seeds = sorted(set(treat) | set(base), key=_seed_order)
    pairs = [
        (treat[s], base[s]) for s in seeds if _present([treat.get(s)]) and _present([base.get(s)])
    ]
    diffs = [t - b for t, b in pairs]
    gain = summarize(diffs)
    gain = Summary(gain.n, gain.mean, gain.half_width, len(seeds) - len(pairs))
    if gain.n < 2:
        return PairedGain(gain, None, f"p not computable: n={gain.n} pairs (<2)")
    if statistics.stdev(diffs) <= 1e-12 * max(1.0, abs(gain.mean)):
        return PairedGain(gain, None, "p not computable: zero variance")
    from scipy import stats

    p = float(stats.ttest_rel([t for t, _ in pairs], [b for _, b in pairs]).pvalue)
    return PairedGain(gain, p)


@dataclass(frozen=True)
class Fit:
    """OLS fit y = intercept + slope * log10(params)."""

    n: int
    n_sizes: int
    slope: float | None
    intercept: float | None
    slope_half_width: float | None
    r2: float | None
    note: str = ""

    @property
    def slope_ci(self) -> tuple[float, float] | None:
        if self.slope is None or self.slope_half_width is None:
            return None
        return (self.slope - self.slope_half_width, self.slope + self.slope_half_width)


def fit_log_params(points: Sequence[tuple[float | None, float | None]]) -> Fit:
    """Fit y on log10(x) over points (x = parameter count); points with a missing side skipped."""
    pts = [
        (math.log10(x), float(y)) for x, y in points if _present([x]) and x > 0 and _present([y])
    ]
    n, n_sizes = len(pts), len({x for x, _ in pts})
    if n_sizes < 2:
        return Fit(n, n_sizes, None, None, None, None, "not computable: fewer than 2 sizes")
    x_mean = math.fsum(x for x, _ in pts) / n
    y_mean = math.fsum(y for _, y in pts) / n
    sxx = math.fsum((x - x_mean) ** 2 for x, _ in pts)
    slope = math.fsum((x - x_mean) * (y - y_mean) for x, y in pts) / sxx
    intercept = y_mean - slope * x_mean
    sse = math.fsum((y - intercept - slope * x) ** 2 for x, y in pts)
    sst = math.fsum((y - y_mean) ** 2 for _, y in pts)
    r2 = 1.0 - sse / sst if sst > 0 else None
    note = "" if sst > 0 else "r² undefined: y constant"
    if n < 3:
        return Fit(n, n_sizes, slope, intercept, None, r2, "CI undefined: n<3")
    half = t_quantile(n - 2) * math.sqrt(sse / (n - 2) / sxx)
    return Fit(n, n_sizes, slope, intercept, half, r2, note)


# ---------------------------------------------------------------- records -> scores


def _seed_order(seed: str) -> tuple:
    try:
        return (0, float(seed), "")
    except (TypeError, ValueError):
        return (1, 0.0, str(seed))


def _int_or_none(value: Any) -> int | None:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


def cell_key(record: Record) -> CellKey | None:
    params = record.get("params", {})
    values = [params.get(a) for a in (*AXES, "seed")]
    return None if any(v in (None, "") for v in values) else tuple(str(v) for v in values)


def select_runs(records: Iterable[Record]) -> tuple[dict[CellKey, Record], list[str]]:
    """One run per cell: prefer FINISHED runs, then runs with more metrics, then the latest."""
    by_key: dict[CellKey, list[Record]] = defaultdict(list)
    notes = []
    for r in records:
        key = cell_key(r)
        if key is None:
            notes.append(f"run {r.get('run_id')} lacks one of the params {AXES + ('seed',)}")
        else:
            by_key[key].append(r)
    chosen = {}
    for key, runs in by_key.items():
        runs.sort(
            key=lambda r: (
                r.get("status") == "FINISHED",
                len(r.get("metrics", {})),
                r.get("start_time") or 0,
            )
        )
        chosen[key] = runs[-1]
        if len(runs) > 1:
            notes.append(
                f"{'/'.join(key[:4])} seed {key[4]}: {len(runs)} runs, "
                f"used {runs[-1].get('run_id')}"
            )
    return chosen, notes


def expected_cells(keys: Iterable[CellKey]) -> list[CellKey]:
    """Product of the observed sizes x intermediates x targets x seeds, per train-languages mode."""
    by_mode: dict[str, list[set]] = defaultdict(lambda: [set(), set(), set(), set()])
    for size, inter, target, mode, seed in keys:
        for axis, value in zip(by_mode[mode], (size, inter, target, seed)):
            axis.add(value)
    out = []
    for mode, (sizes, inters, targets, seeds) in by_mode.items():
        for s, i, t, seed in itertools.product(sizes, inters, targets, seeds):
            out.append((s, i, t, mode, seed))
    return out


def task_metric_values(record: Record, task: str, metric: str) -> dict[str | None, dict]:
    """{perturbation or None: {lang: value}} for `task`'s `metric` in one record."""
    out: dict[str | None, dict] = defaultdict(dict)
    for name, value in record.get("metrics", {}).items():
        m = parse_metric_name(name)
        if m and m.task == task and m.metric == metric:
            out[m.perturbation][m.lang] = float(value)
    return out


def metric_names_of(records: Iterable[Record], task: str) -> set[str]:
    names = (parse_metric_name(n) for r in records for n in r.get("metrics", {}))
    return {m.metric for m in names if m and m.task == task and m.perturbation is None}


def _lang_order(langs: Iterable[str]) -> list[str]:
    return sorted(set(langs), key=lambda lang: (lang != ENGLISH, lang))


@dataclass
class RunScores:
    """One target run's clean scores over the expected languages (None = missing)."""

    langs: dict[str, float | None]
    perturbed: dict[str, dict[str, float | None]] = field(default_factory=dict)

    @property
    def missing(self) -> list[str]:
        return [lang for lang, v in self.langs.items() if v is None]

    @property
    def en(self) -> float | None:
        return self.langs.get(ENGLISH)

    @property
    def non_en(self) -> float | None:
        vals = [v for lang, v in self.langs.items() if lang != ENGLISH]
        return None if not vals or None in vals else math.fsum(vals) / len(vals)

    @property
    def avg(self) -> float | None:
        vals = list(self.langs.values())
        return None if not vals or None in vals else math.fsum(vals) / len(vals)

    @property
    def gap(self) -> float | None:
        en, non_en = self.en, self.non_en
        return None if en is None or non_en is None else en - non_en

    def drop(self, perturbation: str) -> tuple[float | None, float | None]:
        """(clean mean, perturbed mean) over the perturbation's languages."""
        pert = self.perturbed.get(perturbation, {})
        if not pert or None in pert.values():
            return None, None
        clean = [self.langs.get(lang) for lang in pert]
        if None in clean:
            return None, None
        return math.fsum(clean) / len(clean), math.fsum(pert.values()) / len(pert)


@dataclass
class Scored:
    """Scores of every expected cell, plus what the report needs to say about them."""

    scores: dict[CellKey, RunScores | None]
    runs: dict[CellKey, Record]
    languages: dict[tuple[str, str], list[str]]  # (target, mode) -> languages
    perturbations: dict[tuple[str, str], list[str]]  # (target, mode) -> perturbation names
    size_params: dict[str, int | None]
    notes: list[str]


def score_records(
    records: Sequence[Record],
    expected: Iterable[Sequence[str]] | None = None,
    main_metrics: Mapping[str, str] | None = None,
) -> Scored:
    runs, notes = select_runs(records)
    if expected is None:
        cells = sorted(set(expected_cells(runs)))
    else:
        cells = sorted({tuple(map(str, c)) for c in expected})
        extra = [k for k in runs if k not in set(cells)]
        if extra:
            notes.append(f"{len(extra)} target runs outside the expected cells were ignored")
        runs = {k: r for k, r in runs.items() if k in set(cells)}
    main_metrics = dict(main_metrics or {})
    metric_of = {}
    for target in sorted({c[2] for c in cells}):
        recs = [r for k, r in runs.items() if k[2] == target]
        metric_of[target] = main_metrics.get(target) or main_metric(
            target, metric_names_of(recs, target)
        )
    values = {k: task_metric_values(r, k[2], metric_of[k[2]]) for k, r in runs.items()}
    langs: dict[tuple[str, str], set] = defaultdict(set)
    perts: dict[tuple[str, str, str], set] = defaultdict(set)
    for k, v in values.items():
        langs[(k[2], k[3])].update(v.get(None, {}))
        for p, per_lang in v.items():
            if p is not None:
                perts[(k[2], k[3], p)].update(per_lang)
    languages = {g: _lang_order(ls) for g, ls in langs.items()}
    scores: dict[CellKey, RunScores | None] = {}
    for k in cells:
        if k not in runs:
            scores[k] = None
            continue
        clean = values[k].get(None, {})
        perturbed = {
            p: {lang: values[k].get(p, {}).get(lang) for lang in _lang_order(ls)}
            for (t, m, p), ls in perts.items()
            if (t, m) == (k[2], k[3])
        }
        group = languages.get((k[2], k[3]), [])
        scores[k] = RunScores({lang: clean.get(lang) for lang in group}, perturbed)
    size_params: dict[str, int | None] = {}
    for k, r in sorted(runs.items()):
        p = _int_or_none(r.get("params", {}).get("model_params"))
        if size_params.get(k[0]) is None:
            size_params[k[0]] = p
    for k in cells:
        size_params.setdefault(k[0], None)
    perturbations = defaultdict(list)
    for t, m, p in sorted(perts):
        perturbations[(t, m)].append(p)
    return Scored(scores, runs, languages, dict(perturbations), size_params, notes)


# ---------------------------------------------------------------- tables


def _size_order(scored: Scored):
    def order(size: str) -> tuple:
        p = scored.size_params.get(size)
        return (p is None, p or 0, size)

    return order


def _inter_order(name: str) -> tuple:
    return (name != BASELINE, name)


def group_cells(scored: Scored) -> dict[tuple[str, str, str, str], dict[str, CellKey]]:
    """(size, intermediate, target, mode) -> {seed: cell key}, sorted for display."""
    groups: dict[tuple, dict[str, CellKey]] = defaultdict(dict)
    for k in scored.scores:
        groups[k[:4]][k[4]] = k
    so = _size_order(scored)
    keys = sorted(groups, key=lambda g: (g[3], g[2], so(g[0]), _inter_order(g[1])))
    return {g: dict(sorted(groups[g].items(), key=lambda kv: _seed_order(kv[0]))) for g in keys}


def _by_seed(scored: Scored, seeds: Mapping[str, CellKey], quantity: str) -> dict[str, Any]:
    out = {}
    for seed, key in seeds.items():
        s = scored.scores.get(key)
        out[seed] = None if s is None else getattr(s, quantity)
    return out


def missing_cells(scored: Scored) -> list[dict]:
    rows = []
    for seeds in group_cells(scored).values():
        for key in seeds.values():
            s, run = scored.scores[key], scored.runs.get(key)
            if run is None:
                reason = "no run"
            elif not s.langs or len(s.missing) == len(s.langs):
                reason = f"{run.get('status', '?')}, no scores"
            elif s.missing:
                reason = (
                    f"{run.get('status', '?')}, missing {len(s.missing)} of {len(s.langs)} "
                    f"languages ({', '.join(s.missing)})"
                )
            else:
                continue
            rows.append(
                dict(zip((*AXES, "seed"), key), reason=reason, run_id=(run or {}).get("run_id"))
            )
    return rows


def cell_table(scored: Scored) -> list[dict]:
    rows = []
    for (size, inter, target, mode), seeds in group_cells(scored).items():
        row = {
            "model_size": size,
            "model_params": scored.size_params.get(size),
            "intermediate_task": inter,
            "target_task": target,
            "train_languages": mode,
            "seeds": len(seeds),
        }
        for q in ("en", "non_en", "gap", "avg"):
            row[q] = summarize(list(_by_seed(scored, seeds, q).values()))
        rows.append(row)
    return rows


def language_table(scored: Scored) -> list[dict]:
    rows = []
    for (size, inter, target, mode), seeds in group_cells(scored).items():
        for lang in scored.languages.get((target, mode), []):
            vals = [
                None if scored.scores[k] is None else scored.scores[k].langs[lang]
                for k in seeds.values()
            ]
            rows.append(
                {
                    "model_size": size,
                    "model_params": scored.size_params.get(size),
                    "intermediate_task": inter,
                    "target_task": target,
                    "train_languages": mode,
                    "language": lang,
                    "score": summarize(vals),
                }
            )
    return rows


GAIN_QUANTITIES = ("non_en", "en", "avg")


def gain_table(scored: Scored) -> list[dict]:
    """Gain of each intermediate task over `none`, same size/target/mode, paired by seed."""
    groups = group_cells(scored)
    rows = []
    for (size, inter, target, mode), seeds in groups.items():
        if inter == BASELINE:
            continue
        base = groups.get((size, BASELINE, target, mode))
        row = {
            "model_size": size,
            "model_params": scored.size_params.get(size),
            "intermediate_task": inter,
            "target_task": target,
            "train_languages": mode,
        }
        for q in GAIN_QUANTITIES:
            if base is None:
                row[f"gain_{q}"] = PairedGain(
                    Summary(0, None, None, len(seeds)), None, "no baseline"
                )
            else:
                row[f"gain_{q}"] = paired_gain(
                    _by_seed(scored, seeds, q), _by_seed(scored, base, q)
                )
        rows.append(row)
    return rows


def benefit_by_size(gains: Sequence[dict]) -> list[dict]:
    """Mean (over target tasks) of the mean non-English gain, per size x intermediate x mode."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for g in gains:
        groups[(g["train_languages"], g["model_size"], g["intermediate_task"])].append(g)
    rows = []
    for (mode, size, inter), gs in groups.items():
        means = mean_only([g["gain_non_en"].gain.mean for g in gs])
        missing = [g["target_task"] for g in gs if g["gain_non_en"].gain.mean is None]
        rows.append(
            {
                "train_languages": mode,
                "model_size": size,
                "model_params": gs[0]["model_params"],
                "intermediate_task": inter,
                "mean_gain_non_en": means,
                "targets_missing": ", ".join(missing),
            }
        )
    return rows


def xtreme_table(cells: Sequence[dict]) -> list[dict]:
    """Per size x intermediate x mode: per-task mean over languages (and seeds), the mean over
    tasks, and per-category means; means over the tasks present, the missing ones named."""
    targets = sorted({c["target_task"] for c in cells})
    groups: dict[tuple, dict[str, float | None]] = defaultdict(dict)
    meta = {}
    for c in cells:
        g = (c["train_languages"], c["model_size"], c["intermediate_task"])
        groups[g][c["target_task"]] = c["avg"].mean
        meta[g] = c["model_params"]
    categories = [c for c in (*CATEGORIES, "other") if any(category_of(t) == c for t in targets)]
    rows = []
    for g, per_task in groups.items():
        row = {
            "train_languages": g[0],
            "model_size": g[1],
            "model_params": meta[g],
            "intermediate_task": g[2],
        }
        for t in targets:
            row[t] = per_task.get(t)
        for cat in categories:
            row[f"cat:{cat}"] = mean_only(
                [per_task.get(t) for t in targets if category_of(t) == cat]
            )
        row["overall"] = mean_only([per_task.get(t) for t in targets])
        row["tasks_missing"] = ", ".join(t for t in targets if per_task.get(t) is None)
        rows.append(row)
    return rows


def fit_table(scored: Scored, quantities: Sequence[str] = ("gap", "non_en")) -> list[dict]:
    """OLS of each quantity on log10(model_params) over seed-level points, per intermediate x
    target x mode; target `(all)`: the per-seed mean over target tasks (missing if any is)."""
    points: dict[tuple, list] = defaultdict(list)
    pooled: dict[tuple, list] = defaultdict(list)
    for k, s in scored.scores.items():
        size, inter, target, mode, seed = k
        for q in quantities:
            value = None if s is None else getattr(s, q)
            points[(mode, inter, target, q)].append((scored.size_params.get(size), value))
            pooled[(mode, inter, q, size, seed)].append(value)
    for (mode, inter, q, size, _), values in pooled.items():
        if len(values) > 1:
            mean = None if None in values else math.fsum(values) / len(values)
            points[(mode, inter, "(all)", q)].append((scored.size_params.get(size), mean))
    rows = []
    for mode, inter, target, q in sorted(
        points, key=lambda g: (g[0], g[3], _inter_order(g[1]), g[2] == "(all)", g[2])
    ):
        pts = points[(mode, inter, target, q)]
        rows.append(
            {
                "train_languages": mode,
                "intermediate_task": inter,
                "target_task": target,
                "quantity": q,
                "fit": fit_log_params(pts),
                "points_missing": sum(1 for x, y in pts if x is None or y is None),
            }
        )
    return rows


def in_language_table(scored: Scored) -> list[dict]:
    """In-language minus English zero-shot, same size/intermediate/target, paired by seed."""
    groups = group_cells(scored)
    rows = []
    for (size, inter, target, mode), seeds in groups.items():
        zero = groups.get((size, inter, target, ZERO_SHOT))
        if mode != IN_LANGUAGE or zero is None:
            continue
        row = {
            "model_size": size,
            "model_params": scored.size_params.get(size),
            "intermediate_task": inter,
            "target_task": target,
        }
        for q in ("non_en", "avg"):
            row[f"diff_{q}"] = paired_gain(_by_seed(scored, seeds, q), _by_seed(scored, zero, q))
        rows.append(row)
    return rows


def robustness_table(scored: Scored) -> list[dict]:
    """Drop from clean to perturbed (clean minus perturbed mean over the perturbation's
    languages) per size x intermediate x target x mode x perturbation, over seeds."""
    rows = []
    for (size, inter, target, mode), seeds in group_cells(scored).items():
        for pert in scored.perturbations.get((target, mode), []):
            pairs = [
                (None, None) if scored.scores[k] is None else scored.scores[k].drop(pert)
                for k in seeds.values()
            ]
            rows.append(
                {
                    "model_size": size,
                    "model_params": scored.size_params.get(size),
                    "intermediate_task": inter,
                    "target_task": target,
                    "train_languages": mode,
                    "perturbation": pert,
                    "clean": summarize([c for c, _ in pairs]),
                    "perturbed": summarize([p for _, p in pairs]),
                    "drop": summarize([None if c is None else c - p for c, p in pairs]),
                }
            )
    return rows


# ---------------------------------------------------------------- formatting


def flatten(row: Mapping[str, Any]) -> dict[str, Any]:
    """A table row with Summary/PairedGain/Fit values spread into plain CSV columns."""
    out: dict[str, Any] = {}
    for k, v in row.items():
        if isinstance(v, PairedGain):
            out.update(flatten({k: v.gain}))
            out[f"{k}_p_value"], out[f"{k}_note"] = v.p_value, v.note
        elif isinstance(v, Summary):
            ci = v.ci or (None, None)
            out.update({f"{k}_n": v.n, f"{k}_n_missing": v.n_missing, f"{k}_mean": v.mean})
            if v.interval:
                out.update({f"{k}_ci_low": ci[0], f"{k}_ci_high": ci[1]})
        elif isinstance(v, Fit):
            ci = v.slope_ci or (None, None)
            out.update(
                {
                    "n": v.n,
                    "n_sizes": v.n_sizes,
                    "slope": v.slope,
                    "slope_ci_low": ci[0],
                    "slope_ci_high": ci[1],
                    "intercept": v.intercept,
                    "r2": v.r2,
                    "note": v.note,
                }
            )
        else:
            out[k] = v
    return out


def fmt(v: Any, digits: int = 2) -> str:
    """Display form of a table value; missing is always `—`."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return MISSING
    if isinstance(v, PairedGain):
        g = v.gain
        if g.mean is None:
            return f"{MISSING} ({v.note})" if v.note else MISSING
        text = f"{g.mean:+.{digits}f}"
        text += (
            f" ± {g.half_width:.{digits}f}" if g.half_width is not None else " (n=1, CI undefined)"
        )
        text += f", p={v.p_value:.3g}" if v.p_value is not None else f"; {v.note}"
        return text + (f" [{g.n_missing} unpaired]" if g.n_missing else "")
    if isinstance(v, Summary):
        if v.mean is None:
            return MISSING
        if v.half_width is None:
            undefined = v.interval and v.n == 1
            text = f"{v.mean:.{digits}f}" + (" (n=1, CI undefined)" if undefined else "")
        else:
            text = f"{v.mean:.{digits}f} ± {v.half_width:.{digits}f}"
        return text + (f" [n={v.n}, {v.n_missing} missing]" if v.n_missing else "")
    if isinstance(v, Fit):
        if v.slope is None:
            return f"{MISSING} ({v.note})"
        ci = v.slope_ci
        text = f"slope {v.slope:+.{digits}f}"
        text += f" [{ci[0]:+.{digits}f}, {ci[1]:+.{digits}f}]" if ci else " (CI undefined)"
        text += f", r²={v.r2:.3f}" if v.r2 is not None else ""
        return text + f", n={v.n}" + (f"; {v.note}" if v.note else "")
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def write_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    flat = [flatten(r) for r in rows]
    columns = list(dict.fromkeys(c for r in flat for c in r))
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns or ["empty"], restval="")
        w.writeheader()
        for r in flat:
            w.writerow({k: "" if v is None else v for k, v in r.items()})


# ---------------------------------------------------------------- report


@dataclass
class Block:
    kind: str  # "h1", "h2", "p", "list", "table", "img"
    text: str = ""
    rows: Sequence[Mapping[str, Any]] = ()
    items: Sequence[str] = ()


def table_block(rows: Sequence[Mapping[str, Any]]) -> Block:
    return Block("table", rows=[{k: fmt(v) for k, v in r.items()} for r in rows])


def render_markdown(blocks: Sequence[Block]) -> str:
    out = []
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            out.append("#" * int(b.kind[1]) + " " + b.text)
        elif b.kind == "p":
            out.append(b.text)
        elif b.kind == "list":
            out.append("\n".join(f"- {i}" for i in b.items))
        elif b.kind == "img":
            out.append(f"![{b.text}]({b.items[0]})")
        elif b.kind == "table" and b.rows:
            cols = list(b.rows[0])
            lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
            for r in b.rows:
                cells = (str(r.get(c, "")).replace("|", "\\|") for c in cols)
                lines.append("| " + " | ".join(cells) + " |")
            out.append("\n".join(lines))
    return "\n\n".join(out) + "\n"


_CSS = (
    "body{font-family:sans-serif;margin:2em;max-width:1400px}"
    "table{border-collapse:collapse;font-size:13px;margin:1em 0}"
    "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}th{background:#eee}"
    "img{max-width:100%;border:1px solid #ddd;margin:.5em 0}"
)


def render_html(blocks: Sequence[Block], folder: Path, title: str) -> str:
    esc = html.escape
    out = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{esc(title)}</title>"]
    out.append(f"<style>{_CSS}</style></head><body>")
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            out.append(f"<{b.kind}>{esc(b.text)}</{b.kind}>")
        elif b.kind == "p":
            out.append(f"<p>{esc(b.text)}</p>")
        elif b.kind == "list":
            out.append("<ul>" + "".join(f"<li>{esc(i)}</li>" for i in b.items) + "</ul>")
        elif b.kind == "img":
            data = base64.b64encode((folder / b.items[0]).read_bytes()).decode()
            out.append(f"<figure><img alt='{esc(b.text)}' src='data:image/png;base64,{data}'>")
            out.append(f"<figcaption>{esc(b.text)}</figcaption></figure>")
        elif b.kind == "table" and b.rows:
            cols = list(b.rows[0])
            out.append("<table><tr>" + "".join(f"<th>{esc(c)}</th>" for c in cols) + "</tr>")
            for r in b.rows:
                out.append("<tr>" + "".join(f"<td>{esc(str(r.get(c, '')))}</td>" for c in cols))
            out.append("</table>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "x"


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


def missing_summary(analysis: Analysis) -> str:
    total = len(analysis.scored.scores)
    n = len(analysis.missing)
    if n == 0:
        return f"All {total} cells have complete scores."
    return f"{n} of {total} cells missing (shown as {MISSING}, never averaged as zero)."


def report_blocks(
    analysis: Analysis, plots: Sequence[tuple[str, str]], header: Sequence[str]
) -> list[Block]:
    a = analysis
    blocks = [Block("h1", "xscale sweep analysis"), Block("list", items=list(header))]
    blocks.append(Block("h2", "Missing cells"))
    blocks.append(Block("p", missing_summary(a)))
    if a.missing:
        items = [
            f"{m['model_size']} / {m['intermediate_task']} / {m['target_task']} / "
            f"{m['train_languages']} / seed {m['seed']}: {m['reason']}"
            for m in a.missing
        ]
        blocks.append(Block("list", items=items))
    if a.scored.notes:
        blocks += [Block("h3", "Run selection notes"), Block("list", items=a.scored.notes)]
    blocks += [
        Block("h2", "Scores per cell (mean ± 95% CI half-width over seeds, t-distribution)"),
        Block(
            "p",
            "en = English score; non_en = mean over non-English languages; gap = en - non_en; "
            "avg = mean over all languages. [n=k, m missing] = m seeds skipped.",
        ),
        table_block(a.cells),
        Block("h2", f"Gain of intermediate training over '{BASELINE}' (paired by seed)"),
        Block("p", "mean gain ± 95% CI, paired t-test p-value (scipy.stats.ttest_rel)."),
        table_block(a.gains),
        Block(
            "h2", "Benefit of intermediate training by size (mean non-English gain over targets)"
        ),
        table_block(a.benefit),
        Block("h2", "XTREME-style aggregates"),
        Block(
            "p",
            "Per task: mean over languages (and seeds); categories and overall: mean over "
            "the tasks present; [n=k, m missing] = m tasks missing, named in tasks_missing.",
        ),
        table_block(a.xtreme),
        Block("h2", "Gap and score vs model size: OLS on log10(model_params)"),
        table_block(a.fits),
    ]
    if a.in_language:
        blocks += [
            Block("h2", "In-language minus English zero-shot (paired by seed)"),
            table_block(a.in_language),
        ]
    if a.robustness:
        blocks += [
            Block("h2", "Robustness: drop from clean to perturbed"),
            Block("p", "drop = clean minus perturbed mean over the perturbation's languages."),
            table_block(a.robustness),
        ]
    blocks.append(Block("h2", "Plots"))
    for path, caption in plots:
        blocks.append(Block("img", caption, items=[path]))
    blocks.append(
        Block(
            "p",
            "CSV tables: "
            + ", ".join(f for f in REPORT_FILES if f.endswith(".csv"))
            + " (missing values are empty).",
        )
    )
    return blocks


def write_report(
    analysis: Analysis, out_dir: Path, header: Sequence[str] = (), plots: bool = True
) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in [*out_dir.glob("plot_*.png"), *(out_dir / f for f in REPORT_FILES)]:
        old.unlink(missing_ok=True)
    a = analysis
    tables = {
        "cells.csv": a.cells,
        "languages.csv": a.languages,
        "gains.csv": a.gains,
        "benefit_by_size.csv": a.benefit,
        "xtreme.csv": a.xtreme,
        "fits.csv": a.fits,
        "in_language.csv": a.in_language,
        "robustness.csv": a.robustness,
        "missing.csv": a.missing,
    }
    for name, rows in tables.items():
        write_csv(out_dir / name, rows)
    images = make_plots(a, out_dir) if plots else []
    blocks = report_blocks(a, images, header)
    (out_dir / "report.md").write_text(render_markdown(blocks))
    (out_dir / "report.html").write_text(render_html(blocks, out_dir, "xscale sweep analysis"))
    return out_dir


# ---------------------------------------------------------------- plots (matplotlib, no pyplot)


def _figure(width: float, height: float, rows: int = 1, cols: int = 1):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    return fig, fig.subplots(rows, cols, squeeze=False)


def plot_scaling(a: Analysis, out_dir: Path) -> list[tuple[str, str]]:
    """Non-English score and gap vs parameters (log x), one line per intermediate task."""
    images = []
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for c in a.cells:
        groups[(c["target_task"], c["train_languages"])].append(c)
    for (target, mode), cells in sorted(groups.items()):
        fig, axes = _figure(11, 4.2, 1, 2)
        drawn = False
        for inter in sorted({c["intermediate_task"] for c in cells}, key=_inter_order):
            for ax, q in zip(axes[0], ("non_en", "gap")):
                pts = sorted(
                    (
                        (c["model_params"], c[q])
                        for c in cells
                        if c["intermediate_task"] == inter
                        and c["model_params"]
                        and c[q].mean is not None
                    ),
                    key=lambda p: p[0],
                )
                if not pts:
                    continue
                drawn = True
                ax.errorbar(
                    [p for p, _ in pts],
                    [s.mean for _, s in pts],
                    yerr=[s.half_width or 0.0 for _, s in pts],
                    marker="o",
                    capsize=3,
                    label=inter,
                )
        if not drawn:
            continue
        for ax, label in zip(axes[0], ("non-English mean", "gap (en - non-en)")):
            ax.set_xscale("log")
            ax.set_xlabel("parameters")
            ax.set_ylabel(label)
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=8)
        fig.suptitle(f"{target} (train: {mode}) - mean ± 95% CI over seeds")
        name = f"plot_scaling_{safe_name(target)}_{safe_name(mode)}.png"
        fig.savefig(out_dir / name)
        images.append((name, f"{target}, train {mode}: score and gap vs parameters"))
    return images


def plot_gain_heatmaps(a: Analysis, out_dir: Path) -> list[tuple[str, str]]:
    """Intermediate x target heatmap of the mean non-English gain over `none`, one per size."""
    import numpy as np

    images = []
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for g in a.gains:
        groups[(g["model_size"], g["train_languages"])].append(g)
    order = _size_order(a.scored)
    for (size, mode), gains in sorted(groups.items(), key=lambda kv: (kv[0][1], order(kv[0][0]))):
        inters = sorted({g["intermediate_task"] for g in gains}, key=_inter_order)
        targets = sorted({g["target_task"] for g in gains})
        grid = np.full((len(inters), len(targets)), np.nan)
        for g in gains:
            mean = g["gain_non_en"].gain.mean
            if mean is not None:
                grid[inters.index(g["intermediate_task"]), targets.index(g["target_task"])] = mean
        fig, axes = _figure(max(4.5, 1.3 * len(targets) + 3), max(2.5, 0.6 * len(inters) + 1.5))
        ax = axes[0][0]
        vmax = float(np.nanmax(np.abs(grid))) if np.isfinite(grid).any() else 0.0
        vmax = vmax or 1.0
        from matplotlib import colormaps

        cmap = colormaps["RdBu"].with_extremes(bad="#cccccc")
        im = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=-vmax, vmax=vmax)
        ax.set_xticks(range(len(targets)), targets, rotation=30, ha="right")
        ax.set_yticks(range(len(inters)), inters)
        for i, j in itertools.product(range(len(inters)), range(len(targets))):
            v = grid[i, j]
            color = "white" if abs(v) > 0.6 * vmax else "black"  # NaN -> black on grey
            ax.text(
                j, i, MISSING if np.isnan(v) else f"{v:+.2f}", ha="center", va="center", color=color
            )
        fig.colorbar(im, ax=ax, label="non-English gain over none")
        ax.set_title(f"{size} (train: {mode})")
        name = f"plot_gain_heatmap_{safe_name(size)}_{safe_name(mode)}.png"
        fig.savefig(out_dir / name)
        images.append((name, f"{size}, train {mode}: intermediate x target gain (— = missing)"))
    return images


def plot_languages(a: Analysis, out_dir: Path) -> list[tuple[str, str]]:
    """Per-language bars (mean ± CI over seeds), one panel per size, one bar per intermediate."""
    images = []
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in a.languages:
        groups[(r["target_task"], r["train_languages"])].append(r)
    order = _size_order(a.scored)
    for (target, mode), rows in sorted(groups.items()):
        sizes = sorted({r["model_size"] for r in rows}, key=order)
        inters = sorted({r["intermediate_task"] for r in rows}, key=_inter_order)
        langs = _lang_order(r["language"] for r in rows)
        width = min(24.0, max(7.0, 0.3 * len(langs) * len(inters) + 2))
        fig, axes = _figure(width, 2.6 * len(sizes) + 0.6, len(sizes), 1)
        bar = 0.8 / len(inters)
        index = {(r["model_size"], r["intermediate_task"], r["language"]): r["score"] for r in rows}
        for ax, size in zip(axes[:, 0], sizes):
            for n, inter in enumerate(inters):
                stats_ = [index.get((size, inter, lang)) for lang in langs]
                ok = [(i, s) for i, s in enumerate(stats_) if s is not None and s.mean is not None]
                xs = [i + n * bar for i, _ in ok]
                ys = [s.mean for _, s in ok]
                err = [s.half_width or 0.0 for _, s in ok]
                ax.bar(xs, ys, bar, yerr=err, capsize=2, label=inter)
            ax.set_xticks([i + 0.4 - bar / 2 for i in range(len(langs))], langs)
            ax.set_title(f"{size}", fontsize=10)
            ax.grid(True, axis="y", alpha=0.3)
        axes[0][0].legend(fontsize=8, ncols=min(4, len(inters)))
        fig.suptitle(f"{target} (train: {mode}) per language; missing bars are missing scores")
        name = f"plot_languages_{safe_name(target)}_{safe_name(mode)}.png"
        fig.savefig(out_dir / name)
        images.append((name, f"{target}, train {mode}: per-language scores"))
    return images


def make_plots(a: Analysis, out_dir: Path) -> list[tuple[str, str]]:
    return plot_scaling(a, out_dir) + plot_gain_heatmaps(a, out_dir) + plot_languages(a, out_dir)


# ---------------------------------------------------------------- MLflow


def run_to_record(run: Any) -> dict:
    return {
        "run_id": run.info.run_id,
        "run_name": run.info.run_name,
        "status": run.info.status,
        "start_time": run.info.start_time,
        "params": dict(run.data.params),
        "metrics": dict(run.data.metrics),
    }


def _search_all(client: Any, experiment_id: str, filter_string: str, order_by=None) -> list:
    runs, token = [], None
    while True:
        page = client.search_runs(
            [experiment_id], filter_string, max_results=1000, order_by=order_by, page_token=token
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def load_target_records(
    client: Any, experiment_id: str, parent_run_id: str | None = None
) -> list[dict]:
    flt = "tags.`xscale.stage_kind` = 'target'"
    if parent_run_id:
        flt += f" and tags.`mlflow.parentRunId` = '{parent_run_id}'"
    return [run_to_record(r) for r in _search_all(client, experiment_id, flt)]


def find_sweep_run(client: Any, experiment_id: str) -> str | None:
    """The latest run tagged `xscale.run_kind=sweep`, if any."""
    runs = client.search_runs(
        [experiment_id],
        "tags.`xscale.run_kind` = 'sweep'",
        max_results=1,
        order_by=["attributes.start_time DESC"],
    )
    return runs[0].info.run_id if runs else None


def resolve_store(
    tracking_uri: str | None, experiment: str | None, sweep_dir: str | Path | None
) -> tuple[str, str | None]:
    """The tracking URI (a sweep folder's `mlflow.db` by default); refuses to create a store."""
    if tracking_uri is None:
        if sweep_dir is None:
            raise XScaleError("analyze: give a sweep output folder or a tracking URI")
        db = Path(sweep_dir) / "mlflow.db"
        if not db.is_file():
            raise XScaleError(f"no MLflow store at {db} (is {sweep_dir} a sweep output folder?)")
        tracking_uri = f"sqlite:///{db.resolve()}"
    elif tracking_uri.startswith("sqlite:///"):
        db = Path(tracking_uri[len("sqlite:///") :])
        if not db.is_file():
            raise XScaleError(f"no MLflow sqlite store at {db} (tracking URI {tracking_uri})")
    return tracking_uri, experiment


def analyze(
    tracking_uri: str | None = None,
    experiment: str | None = None,
    out_dir: str | Path | None = None,
    *,
    sweep_dir: str | Path | None = None,
    parent_run_id: str | None = None,
    expected: Iterable[Sequence[str]] | None = None,
    main_metrics: Mapping[str, str] | None = None,
    plots: bool = True,
    log_artifacts: bool = True,
) -> Path:
    """Read a sweep's target runs from MLflow, write the report folder, log it on the sweep run.

    `sweep_dir`: a sweep output folder (store `<dir>/mlflow.db`, report in `<dir>/analysis`).
    `experiment`: the sweep's experiment name (optional when the store holds only one).
    `parent_run_id`: read only that sweep run's children, and log the report there.
    `expected`: the cells (size, intermediate, target, train_languages, seed) the sweep planned;
    default: the product of the values seen. `main_metrics`: {task: metric} for tasks outside
    XTREME. Returns the report folder.
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    tracking_uri, experiment = resolve_store(tracking_uri, experiment, sweep_dir)
    client = MlflowClient(tracking_uri=tracking_uri)
    try:
        if experiment is None:
            names = [e.name for e in client.search_experiments() if e.name != "Default"]
            if len(names) != 1:
                raise XScaleError(
                    f"{tracking_uri} holds {len(names)} experiments "
                    f"({', '.join(names) or 'none'}); name one with --experiment"
                )
            experiment = names[0]
        exp = client.get_experiment_by_name(experiment)
        if exp is None:
            names = [e.name for e in client.search_experiments()]
            raise XScaleError(
                f"no MLflow experiment {experiment!r} in {tracking_uri} (found: {', '.join(names)})"
            )
        records = load_target_records(client, exp.experiment_id, parent_run_id)
        if not records:
            raise XScaleError(
                f"experiment {experiment!r} has no target runs (tag xscale.stage_kind='target')"
            )
        parent = parent_run_id or find_sweep_run(client, exp.experiment_id)
    except MlflowException as e:
        raise XScaleError(f"MLflow store {tracking_uri}: {e.message.splitlines()[0]}") from e
    if out_dir is None:
        out_dir = (
            Path(sweep_dir) / "analysis" if sweep_dir else Path("analysis") / safe_name(experiment)
        )
    analysis = build_analysis(records, expected, main_metrics)
    header = [
        f"experiment: {experiment} (id {exp.experiment_id})",
        f"tracking URI: {tracking_uri}",
        f"sweep run: {parent or 'none found'}",
        f"target runs read: {len(records)}",
        f"generated: {_dt.datetime.now(_dt.timezone.utc).isoformat(timespec='seconds')}",
    ]
    folder = write_report(analysis, Path(out_dir), header, plots)
    if log_artifacts and parent:
        client.log_artifacts(parent, str(folder), artifact_path="analysis")
    return folder
