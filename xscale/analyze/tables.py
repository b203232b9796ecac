"""The analysis tables, each a list of row dicts computed from the scored cells (`Scored`)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from xscale.analyze.names import (
    AXES,
    BASELINE,
    CATEGORIES,
    IN_LANGUAGE,
    ZERO_SHOT,
    CellKey,
    _inter_order,
    _seed_order,
    category_of,
)
from xscale.analyze.scores import Scored
from xscale.analyze.stats import (
    PairedGain,
    Summary,
    adjust,
    mean_only,
    paired_gain,
    size_trend,
    summarize,
)


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


def xtreme_table(
    cells: Sequence[dict],
    categories: Mapping[str, Sequence[str]] = CATEGORIES,
    only: Iterable[str] | None = None,
) -> list[dict]:
    """Per size x intermediate x mode: per-task mean over languages (and seeds), the mean over
    tasks, and per-category means; means over the tasks present, the missing ones named.
    `categories` is the benchmark's grouping (XTREME's by default, or XTREME-R's); `only` keeps
    the benchmark's own tasks (None: every target task of the sweep)."""
    keep = None if only is None else set(only)
    cells = [c for c in cells if keep is None or c["target_task"] in keep]
    targets = sorted({c["target_task"] for c in cells})
    groups: dict[tuple, dict[str, float | None]] = defaultdict(dict)
    meta = {}
    for c in cells:
        g = (c["train_languages"], c["model_size"], c["intermediate_task"])
        groups[g][c["target_task"]] = c["avg"].mean
        meta[g] = c["model_params"]
    grouping = categories
    categories = [
        c for c in (*grouping, "other") if any(category_of(t, grouping) == c for t in targets)
    ]
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
                [per_task.get(t) for t in targets if category_of(t, grouping) == cat]
            )
        row["overall"] = mean_only([per_task.get(t) for t in targets])
        row["tasks_missing"] = ", ".join(t for t in targets if per_task.get(t) is None)
        rows.append(row)
    return rows


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


def with_adjusted(rows: list[dict], column: str) -> list[dict]:
    """Holm and Benjamini-Hochberg adjusted p-values of a table's tests, beside the raw ones
    (`p_holm`, `p_bh`); the table's count of tests is `tests_in_table`."""

    def p_of(v):
        if isinstance(v, PairedGain):
            return v.p_value
        return getattr(v, "p_value", None)

    ps = [p_of(r[column]) for r in rows]
    holm, bh = adjust(ps)
    k = sum(p is not None for p in ps)
    for r, h, b in zip(rows, holm, bh):
        r["p_holm"], r["p_bh"], r["tests_in_table"] = h, b, k
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
