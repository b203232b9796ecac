"""Robustness by scale: how a perturbation set's degradation changes with model size, for English
and for the other languages, and with English against multilingual intermediate training.

Degradation (`drop`) is a set's clean score minus its perturbed score on the same examples
(`clean_<main>` as the stage logged it; the clean score for runs from before it did), in
points of the task's main metric; `drop_rel` is the drop as a % of that clean score. `en` is
English's drop, `non_en` the mean drop over the set's other languages.

    robustness_size   per set x target x mode x intermediate x size: the drops, mean ± 95% CI
                      over seeds
    robustness_fits   per set x target x mode x intermediate: OLS of each drop on
                      log10(model_params) over seed-level points (does a larger model degrade
                      less?)
    robustness_inter  per set x target x mode x size: the drops pooled over the intermediate
                      tasks of each kind side by side: none, English (trained on English
                      only) and multilingual (trained on several languages)

An intermediate task's kind comes from the target run's `intermediate_languages` param (the
intermediate stage's training languages); runs that lack it are classed by name (`task@de+en`
is multilingual).
"""

from __future__ import annotations

from collections import defaultdict

from xscale.analyze.names import BASELINE, _inter_order
from xscale.analyze.scores import Scored
from xscale.analyze.stats import size_trend, summarize
from xscale.analyze.tables import _size_order, group_cells, with_adjusted

GROUPS = ("en", "non_en")
QUANTITIES = ("drop_en", "drop_non_en", "drop_rel_en", "drop_rel_non_en")
KINDS = ("none", "english", "multilingual")


def _value(scored: Scored, key, pert: str, quantity: str) -> float | None:
    """One cell's `quantity` (drop_en, drop_non_en, drop_rel_en, drop_rel_non_en) for `pert`."""
    s = scored.scores.get(key)
    if s is None:
        return None
    if quantity == "success_rate":
        return s.success_rate(pert)
    group = "non_en" if quantity.endswith("non_en") else "en"
    return s.set_drop(pert, group, relative=quantity.startswith("drop_rel_"))


def robustness_size_table(scored: Scored) -> list[dict]:
    rows = []
    for (size, inter, target, mode), seeds in group_cells(scored).items():
        for pert in scored.perturbations.get((target, mode), []):
            row = {
                "set": pert,
                "target_task": target,
                "train_languages": mode,
                "intermediate_task": inter,
                "model_size": size,
                "model_params": scored.size_params.get(size),
            }
            for q in QUANTITIES:
                row[q] = summarize([_value(scored, k, pert, q) for k in seeds.values()])
            rows.append(row)
    order = _size_order(scored)
    rows.sort(
        key=lambda r: (
            r["set"],
            r["target_task"],
            r["train_languages"],
            _inter_order(r["intermediate_task"]),
            order(r["model_size"]),
        )
    )
    return rows


FIT_QUANTITIES = ("drop_en", "drop_non_en", "drop_rel_en", "drop_rel_non_en", "success_rate")


def robustness_fit_table(scored: Scored) -> list[dict]:
    """Degradation against model size (`stats.size_trend`, per-size means): the absolute drop,
    the relative drop (attacks only touch examples the model gets right, so the absolute drop
    grows with clean accuracy) and, for attacks, the success rate."""
    points: dict[tuple, dict[float, list]] = defaultdict(lambda: defaultdict(list))
    names: dict[float, str] = {}
    missing: dict[tuple, int] = defaultdict(int)
    for key in scored.scores:
        size, inter, target, mode, _ = key
        params = scored.size_params.get(size)
        for pert in scored.perturbations.get((target, mode), []):
            for q in FIT_QUANTITIES:
                value = _value(scored, key, pert, q)
                g = (pert, target, mode, inter, q)
                if value is None or params is None:
                    missing[g] += 1
                    continue
                names[params] = size
                points[g][params].append(value)
    rows = []
    for pert, target, mode, inter, q in sorted(
        points, key=lambda g: (g[0], g[1], g[2], _inter_order(g[3]), FIT_QUANTITIES.index(g[4]))
    ):
        g = (pert, target, mode, inter, q)
        rows.append(
            {
                "set": pert,
                "target_task": target,
                "train_languages": mode,
                "intermediate_task": inter,
                "quantity": q,
                "trend": size_trend(points[g], names),
                "points_missing": missing[g],
            }
        )
    return with_adjusted(rows, "trend")


def intermediate_kind(scored: Scored, key) -> str:
    """none, english or multilingual: the chain's intermediate training languages."""
    inter = key[1]
    if inter == BASELINE:
        return "none"
    params = (scored.runs.get(key) or {}).get("params", {})
    langs = params.get("intermediate_languages")
    if langs in (None, "", "unknown"):
        return "multilingual" if "@" in inter else "english"
    if langs == "none":
        return "none"
    return "english" if langs == "en" else "multilingual"


def robustness_inter_table(scored: Scored) -> list[dict]:
    groups: dict[tuple, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    names: dict[tuple, dict[str, set]] = defaultdict(lambda: defaultdict(set))
    for key in scored.scores:
        size, inter, target, mode, _ = key
        kind = intermediate_kind(scored, key)
        for pert in scored.perturbations.get((target, mode), []):
            g = (pert, target, mode, size)
            names[g][kind].add(inter)
            for q in ("drop_en", "drop_non_en"):
                groups[g][(kind, q)].append(_value(scored, key, pert, q))
    order = _size_order(scored)
    rows = []
    for g in sorted(groups, key=lambda g: (g[0], g[1], g[2], order(g[3]))):
        pert, target, mode, size = g
        row = {
            "set": pert,
            "target_task": target,
            "train_languages": mode,
            "model_size": size,
            "model_params": scored.size_params.get(size),
        }
        for q in ("drop_non_en", "drop_en"):
            for kind in KINDS:
                row[f"{q}[{kind}]"] = summarize(groups[g].get((kind, q), []))
        row["english_tasks"] = ", ".join(sorted(names[g].get("english", ())))
        row["multilingual_tasks"] = ", ".join(sorted(names[g].get("multilingual", ())))
        rows.append(row)
    return rows
