"""The analysis tables, each a list of row dicts computed from the scored cells (`Scored`)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from xscale.analyze.names import (
    AXES,
    BASELINE,
    IN_LANGUAGE,
    ZERO_SHOT,
    CellKey,
    _inter_order,
    _seed_order,
    benchmark_categories,
)
from xscale.analyze.scores import RunScores, Scored
from xscale.analyze.stats import (
    PairedGain,
    Summary,
    adjust,
    mean_only,
    paired_gain,
    size_trend,
    summarize,
)
from xscale.tasks.base import Task
from xscale.tasks.registry import TASKS


def _size_order(scored: Scored):
    def order(size: str) -> tuple:
        p = scored.size_params.get(size)
        return (p is None, p or 0, size)

    return order


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
    return with_adjusted(rows, *(f"gain_{q}" for q in GAIN_QUANTITIES))


def benefit_by_size(scored: Scored, quantity: str = "non_en") -> list[dict]:
    """Question 3 as an interaction: per target task x intermediate task x mode, the gain of
    intermediate training over `none` at each size (paired by seed) and the trend of that gain
    over sizes (`size_trend`: does scale amplify or diminish the benefit?), absolute and
    relative to the baseline. Target tasks are never averaged together (their metrics differ)."""
    groups = group_cells(scored)
    out: dict[tuple, dict] = {}
    gains: dict[tuple, dict[float, list]] = defaultdict(lambda: defaultdict(list))
    rel: dict[tuple, dict[float, list]] = defaultdict(lambda: defaultdict(list))
    names: dict[float, str] = {}
    for (size, inter, target, mode), seeds in groups.items():
        base = groups.get((size, BASELINE, target, mode))
        if inter == BASELINE or base is None:
            continue
        g = (mode, target, inter)
        row = out.setdefault(
            g, {"train_languages": mode, "target_task": target, "intermediate_task": inter}
        )
        treat, ref = _by_seed(scored, seeds, quantity), _by_seed(scored, base, quantity)
        row[f"gain@{size}"] = paired_gain(treat, ref)
        params = scored.size_params.get(size)
        if params is None:
            continue
        names[params] = size
        for seed, t in treat.items():
            b = ref.get(seed)
            if t is None or b is None:
                continue
            gains[g][params].append(t - b)
            if b:
                rel[g][params].append(100.0 * (t - b) / b)
    rows = []
    for g, row in out.items():
        row["trend"] = size_trend(gains[g], names)
        row["trend_relative"] = size_trend(rel[g], names)
        rows.append(row)
    return with_adjusted(rows, "trend")


@dataclass(frozen=True)
class Partial:
    """An aggregate a benchmark does not report yet: `have` of `total` parts (tasks of a
    category, or a task's languages) scored, the missing ones named."""

    have: int
    total: int
    what: str  # "tasks" or "languages"
    missing: tuple[str, ...] = ()


def benchmark_task_score(
    task: Task, s: RunScores | None, benchmark: str, qa_average: bool = True
) -> float | None:
    """One run's score on `task` as the benchmark's evaluate.py computes it: the mean over the
    benchmark's languages of the task's metric, (EM + F1) / 2 for question answering (F1 alone
    with `qa_average` False, as papers' F1 columns are); None unless every one of those
    languages is scored."""
    if s is None:
        return None
    langs = task.scored_languages(benchmark)
    qa = qa_average and task.benchmarks.get(benchmark) == "question_answering"
    values = []
    for lang in langs:
        v = s.langs.get(lang)
        if v is None:
            return None
        if qa:
            em = s.exact_match.get(lang)
            if em is None:
                return None
            v = (v + em) / 2
        values.append(v)
    return math.fsum(values) / len(values) if values else None


def xtreme_table(scored: Scored, benchmark: str = "xtreme") -> list[dict]:
    """A benchmark's aggregates as its evaluate.py computes them, per size x intermediate x mode:
    each of the benchmark's tasks (mean over the benchmark's languages, seeds averaged; QA
    (EM + F1) / 2), each category and the overall score only when every one of their tasks is
    complete, else `Partial` (k of n tasks, the missing named); a task whose languages the
    sweep did not all score is `Partial` too (k of n languages)."""
    cats = benchmark_categories(benchmark)
    tasks = [t for names in cats.values() for t in names]
    groups = group_cells(scored)
    rows: dict[tuple, dict] = {}
    scores: dict[tuple, dict[str, float | None]] = defaultdict(dict)
    for (size, inter, target, mode), seeds in groups.items():
        g = (mode, size, inter)
        rows.setdefault(
            g,
            {
                "train_languages": mode,
                "model_size": size,
                "model_params": scored.size_params.get(size),
                "intermediate_task": inter,
            },
        )
        if target not in tasks:
            continue
        task = TASKS[target]
        per_seed = [
            benchmark_task_score(task, scored.scores.get(k), benchmark) for k in seeds.values()
        ]
        if per_seed and None not in per_seed:
            summary = mean_only(per_seed)
            scores[g][target] = summary.mean
            rows[g][target] = summary
        else:
            langs = task.scored_languages(benchmark)
            have = set(scored.languages.get((target, mode), []))
            missing = tuple(lang for lang in langs if lang not in have)
            rows[g][target] = Partial(len(langs) - len(missing), len(langs), "languages", missing)
    out = []
    for g, row in rows.items():
        have = scores.get(g, {})
        for t in tasks:
            row.setdefault(t, Partial(0, 1, "languages", ("not in the sweep",)))
        for cat, names in cats.items():
            row[f"cat:{cat}"] = _aggregate([have.get(t) for t in names], names)
        row["overall"] = _aggregate([have.get(t) for t in tasks], tasks)
        out.append(row)
    return out


def _aggregate(values: list[float | None], names: Sequence[str]) -> Summary | Partial:
    if None in values:
        missing = tuple(n for n, v in zip(names, values) if v is None)
        return Partial(len(values) - len(missing), len(values), "tasks", missing)
    return mean_only(values)


def fit_table(scored: Scored, quantities: Sequence[str] = ("gap", "non_en")) -> list[dict]:
    """Each quantity against model size, per intermediate x target x mode, at the level where
    it varies (`stats.size_trend`: per-size means, sizes - 2 degrees of freedom; two sizes: a
    comparison of two checkpoints). Target tasks are never pooled: their metrics differ."""
    points: dict[tuple, dict[float, list]] = defaultdict(lambda: defaultdict(list))
    names: dict[float, str] = {}
    missing: dict[tuple, int] = defaultdict(int)
    for k, s in scored.scores.items():
        size, inter, target, mode, _ = k
        params = scored.size_params.get(size)
        for q in quantities:
            value = None if s is None else getattr(s, q)
            if params is None or value is None:
                missing[(mode, inter, target, q)] += 1
                points[(mode, inter, target, q)]  # noqa: B018 - the group exists
                continue
            names[params] = size
            points[(mode, inter, target, q)][params].append(value)
    rows = []
    for mode, inter, target, q in sorted(
        points, key=lambda g: (g[0], g[3], _inter_order(g[1]), g[2])
    ):
        rows.append(
            {
                "train_languages": mode,
                "intermediate_task": inter,
                "target_task": target,
                "quantity": q,
                "trend": size_trend(points[(mode, inter, target, q)], names),
                "points_missing": missing[(mode, inter, target, q)],
            }
        )
    return with_adjusted(rows, "trend")


def with_adjusted(rows: list[dict], *columns: str) -> list[dict]:
    """Holm and Benjamini-Hochberg adjusted p-values of a table's tests beside the raw ones:
    every p-value of `columns` in every row is one family (`<column>_p_holm`, `_p_bh`; with one
    column plain `p_holm`, `p_bh`), and the table says how many tests it ran
    (`tests_in_table`)."""

    def p_of(v):
        if isinstance(v, PairedGain):
            return v.p_value
        return getattr(v, "p_value", None)

    cells = [(i, c) for i in range(len(rows)) for c in columns if c in rows[i]]
    holm, bh = adjust([p_of(rows[i][c]) for i, c in cells])
    k = sum(h is not None for h in holm)
    for (i, c), h, b in zip(cells, holm, bh):
        prefix = "" if len(columns) == 1 else f"{c}_"
        rows[i][f"{prefix}p_holm"], rows[i][f"{prefix}p_bh"] = h, b
    for r in rows:
        r["tests_in_table"] = k
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
    return with_adjusted(rows, "diff_non_en", "diff_avg")


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
