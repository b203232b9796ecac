"""Intermediate-task difficulty and cross-lingual alignment against transfer (question 5).

Besides the target runs' scores (`Scored`), these tables read the sweep's other stage runs
(`Scored.stages`): cartography runs (the task's difficulty), intermediate runs (alignment after
intermediate training; the subset they trained on) and the `align_pretrained.*` metrics of the
stages that start from the pretrained model. Metric names: tracking/names.py.

Alignment is summarised per run as the mean over its non-English languages; the report's tables
use each size's last measured layer (the one the task head reads), `alignment_layers.csv` has
every layer. CKA and the cosines are shown x100 (two decimals then show their differences);
retrieval is already 0-100. `cos_gap` = cos_parallel - cos_random.

    alignment_phases  size x intermediate x target x metric: pretrained, after intermediate,
                      after target (mean ± CI over seeds) and the changes from pretrained
    difficulty        size x intermediate x target: the probe and map of the task, the mean
                      confidence of what the intermediate stage trained on, and its transfer
    correlations      per target: Pearson r (95% CI, p) across (size, intermediate) cells of
                      each difficulty or alignment measure against each transfer measure
    subsets           easy / ambiguous / hard subsets of one task side by side, with the paired
                      difference easy - hard
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from statistics import fmean

from xscale.analyze.names import BASELINE
from xscale.analyze.scores import Scored
from xscale.analyze.stats import (
    mean_only,
    paired_gain,
    pearson,
    summarize,
    within_size_correlation,
)
from xscale.analyze.tables import _by_seed, group_cells, with_adjusted
from xscale.sweep.difficulty import SUBSETS, parse_subset_name
from xscale.tasks.registry import TASKS
from xscale.tracking.names import difficulty_name

# debiased CKA beside linear CKA: the latter rises with width (~d/(n+d) for unrelated
# representations), so only the debiased one compares sizes (tasks/alignment.py)
SHOWN = ("cka", "cka_debiased", "retrieval", "cos_gap")
SCALE = {
    "cka": 100.0,
    "cka_debiased": 100.0,
    "cos_gap": 100.0,
    "cos_parallel": 100.0,
    "cos_random": 100.0,
}
MAP_MEASURES = (
    ("probe", "accuracy"),
    ("probe", "loss"),
    ("epoch1", "accuracy"),
    ("cartography", "confidence"),
    ("cartography", "variability"),
    ("cartography", "correctness"),
    ("cartography", "share_easy"),
    ("cartography", "share_ambiguous"),
    ("cartography", "share_hard"),
)


def alignment_means(metrics: dict, pretrained: bool = False) -> dict[tuple[str, int], float]:
    """{(metric, layer): mean over non-English languages} of one run (display scale)."""
    prefix = "align_pretrained" if pretrained else "align"
    values: dict[tuple[str, int], list[float]] = defaultdict(list)
    for name, v in metrics.items():
        parts = name.split(".")
        if len(parts) != 4 or parts[0] != prefix or not parts[3].startswith("layer"):
            continue
        try:
            layer = int(parts[3][len("layer") :])
        except ValueError:
            continue
        if parts[1] != "en":
            values[(parts[2], layer)].append(float(v))
    out = {key: fmean(vs) for key, vs in values.items()}
    for (metric, layer), v in list(out.items()):
        if metric == "cos_parallel" and ("cos_random", layer) in out:
            out[("cos_gap", layer)] = v - out[("cos_random", layer)]
    return {(m, k): v * SCALE.get(m, 1.0) for (m, k), v in out.items()}


def _pick(runs: Iterable[dict]) -> dict | None:
    """Among runs of one stage: FINISHED first, then more metrics, then the latest."""
    runs = sorted(
        runs,
        key=lambda r: (r.get("status") == "FINISHED", len(r["metrics"]), r.get("start_time") or 0),
    )
    return runs[-1] if runs else None


class Stages:
    """The sweep's non-target stage runs, by (kind, size, intermediate task, seed)."""

    def __init__(self, scored: Scored):
        groups: dict[tuple, list[dict]] = defaultdict(list)
        for r in scored.stages:
            p = r.get("params", {})
            key = (r.get("kind"), p.get("model_size"), p.get("intermediate_task"), p.get("seed"))
            groups[key].append({**r, "metrics": dict(r.get("metrics", {}))})
        self.runs = {k: _pick(v) for k, v in groups.items()}
        self.pretrained: dict[str, dict[tuple[str, int], float]] = {}
        by_size: dict[str, list[dict]] = defaultdict(list)
        every = [*scored.runs.items(), *((None, r) for r in scored.stages)]
        for key, r in every:
            size = key[0] if key else r.get("params", {}).get("model_size")
            means = alignment_means(r.get("metrics", {}), pretrained=True)
            if means:
                by_size[size].append(means)
        for size, found in by_size.items():  # every stage measured the same model: average
            keys = set().union(*found)
            self.pretrained[size] = {k: fmean(m[k] for m in found if k in m) for k in keys}

    def get(self, kind: str, size: str, inter: str, seed: str = "0") -> dict | None:
        return self.runs.get((kind, size, inter, str(seed)))


def map_of(inter: str) -> tuple[str, str, str, str | None]:
    """(map name, task, training languages, subset or None) of an intermediate entry's name."""
    parsed = parse_subset_name(inter)
    name = parsed[0] if parsed else inter
    task, _, langs = name.partition("@")
    return name, task, langs or "en", (parsed[1] if parsed else None)


def _metric(run: dict | None, name: str) -> float | None:
    return None if run is None else run["metrics"].get(name)


def _phase_values(scored: Scored, stages: Stages, group, seeds) -> dict:
    """{phase: [per-seed {(metric, layer): value}]} for one target cell group."""
    size, inter = group[0], group[1]
    pre = stages.pretrained.get(size, {})
    out = {"pretrained": [pre] if pre else [], "after_intermediate": [], "after_target": []}
    for seed, key in seeds.items():
        run = scored.runs.get(key)
        out["after_target"].append(alignment_means(run["metrics"]) if run else {})
        if inter != BASELINE:
            mid = stages.get("intermediate", size, inter, seed)
            out["after_intermediate"].append(alignment_means(mid["metrics"]) if mid else {})
    return out


def _layers(values: dict) -> list[int]:
    return sorted({k for per in values.values() for m in per for (_, k) in m})


def _phase_row(base: dict, values: dict, metric: str, layer: int) -> dict:
    pre = next((m.get((metric, layer)) for m in values["pretrained"]), None)
    mid = [m.get((metric, layer)) for m in values["after_intermediate"]]
    end = [m.get((metric, layer)) for m in values["after_target"]]

    def change(vals):
        return [None if v is None or pre is None else v - pre for v in vals]

    return {
        **base,
        "pretrained": mean_only([pre]),
        "after_intermediate": summarize(mid),
        "after_target": summarize(end),
        "change_intermediate": summarize(change(mid)),
        "change_target": summarize(change(end)),
    }


def alignment_rows(scored: Scored, all_layers: bool) -> list[dict]:
    """Alignment by phase per target cell group whose target trains (and so is measured);
    the last layer, or every layer."""
    stages = Stages(scored)
    rows = []
    for (size, inter, target, mode), seeds in group_cells(scored).items():
        values = _phase_values(scored, stages, (size, inter), seeds)
        layers = _layers(values)
        if not any(values["after_target"]):  # a target not trained (retrieval): no own model
            continue
        base = {
            "model_size": size,
            "model_params": scored.size_params.get(size),
            "intermediate_task": inter,
            "target_task": target,
            "train_languages": mode,
        }
        for layer in layers if all_layers else layers[-1:]:
            for metric in SHOWN:
                rows.append(
                    _phase_row({**base, "layer": layer, "metric": metric}, values, metric, layer)
                )
    return rows


def difficulty_table(scored: Scored, gains: Sequence[dict]) -> list[dict]:
    """Per size x intermediate x target: the task's difficulty and the cell's transfer."""
    stages = Stages(scored)
    gain = {
        (g["model_size"], g["intermediate_task"], g["target_task"], g["train_languages"]): g
        for g in gains
    }
    rows = []
    for (size, inter, target, mode), seeds in group_cells(scored).items():
        if inter == BASELINE:
            continue
        name, task, langs, subset = map_of(inter)
        cart = stages.get("cartography", size, name)
        trained = [
            _metric(
                stages.get("intermediate", size, inter, s),
                difficulty_name(task, langs, "subset", "confidence"),
            )
            for s in seeds
        ]
        if cart is None and not any(v is not None for v in trained):
            continue
        if subset is None:  # a full task trains on its whole map
            trained = [_metric(cart, difficulty_name(task, langs, "cartography", "confidence"))]
        row = {
            "model_size": size,
            "model_params": scored.size_params.get(size),
            "intermediate_task": inter,
            "target_task": target,
            "train_languages": mode,
            "map": name,
        }
        for measure, q in MAP_MEASURES:
            row[f"{measure}_{q}"] = _metric(cart, difficulty_name(task, langs, measure, q))
        row["trained_confidence"] = mean_only(trained)
        row["non_en"] = summarize(list(_by_seed(scored, seeds, "non_en").values()))
        g = gain.get((size, inter, target, mode))
        row["gain_non_en"] = g["gain_non_en"] if g else None
        rows.append(row)
    return rows


DIFFICULTY_PREDICTORS = (
    "probe_accuracy",
    "probe_loss",
    "cartography_confidence",
    "trained_confidence",
)
ALIGNMENT_PREDICTORS = tuple(
    f"{phase}:{m}"
    for phase in ("after_intermediate", "change_intermediate", "after_target")
    for m in ("cka_debiased", "retrieval")
)
OUTCOMES = ("non_en", "gap", "gain_non_en")


def _mean(v) -> float | None:
    if v is None or isinstance(v, float | int):
        return v
    return getattr(getattr(v, "gain", v), "mean", None)


def correlation_points(scored: Scored, tables: dict[str, list[dict]]) -> dict[tuple, list]:
    """{(target, mode, predictor, outcome): [(x, y), ...]}. Alignment is measured on each run,
    so its points are runs (size, intermediate, seed; the last layer, non-English mean);
    difficulty is measured once per task and size, so its points are cells (seed means)."""
    stages = Stages(scored)
    groups = group_cells(scored)
    points: dict[tuple, list] = defaultdict(list)
    for (size, inter, target, mode), seeds in groups.items():
        base = groups.get((size, BASELINE, target, mode)) if inter != BASELINE else None
        pre = stages.pretrained.get(size, {})
        for seed, key in seeds.items():
            s, b = scored.scores.get(key), scored.scores.get((base or {}).get(seed))
            outcome = {"non_en": s and s.non_en, "gap": s and s.gap, "gain_non_en": None}
            if s and b and s.non_en is not None and b.non_en is not None:
                outcome["gain_non_en"] = s.non_en - b.non_en
            run = scored.runs.get(key)
            mid = stages.get("intermediate", size, inter, seed) if base is not None else None
            end = alignment_means(run["metrics"]) if run else {}
            after = alignment_means(mid["metrics"]) if mid else {}
            layers = [k for (_, k) in (*pre, *end, *after)]
            if not layers:
                continue
            last = max(layers)
            x: dict[str, float | None] = {}
            for m in ("cka_debiased", "retrieval"):
                v, p0 = after.get((m, last)), pre.get((m, last))
                x[f"after_intermediate:{m}"] = v
                x[f"change_intermediate:{m}"] = None if v is None or p0 is None else v - p0
                x[f"after_target:{m}"] = end.get((m, last))
            for p, value in x.items():
                for o, y in outcome.items():
                    points[(target, mode, p, o)].append((value, y, size))
    cells = {
        (c["model_size"], c["intermediate_task"], c["target_task"], c["train_languages"]): c
        for c in tables["cells"]
    }
    for d in tables["difficulty"]:
        c = cells.get(
            (d["model_size"], d["intermediate_task"], d["target_task"], d["train_languages"])
        )
        outcome = {
            "non_en": _mean(d["non_en"]),
            "gap": _mean(c["gap"]) if c else None,
            "gain_non_en": _mean(d["gain_non_en"]),
        }
        for p in DIFFICULTY_PREDICTORS:
            for o, y in outcome.items():
                points[(d["target_task"], d["train_languages"], p, o)].append(
                    (_mean(d[p]), y, d["model_size"])
                )
    return points


def circular(target: str, predictor: str) -> bool:
    """A pair that measures one thing twice: translation retrieval on parallel sentences
    (alignment's `retrieval`) against a retrieval target (Tatoeba, BUCC) of the same encoder."""
    task = TASKS.get(target)
    return predictor.endswith(":retrieval") and task is not None and task.format == "retrieval"


def correlation_table(scored: Scored, tables: dict[str, list[dict]]) -> list[dict]:
    """Correlations within sizes (`within_size_correlation`: size cannot drive both sides) per
    target x mode x predictor x outcome (`correlation_points`), circular pairs left out; with
    every size pooled too (`pooled`, Pearson) for reference. Holm/BH-adjusted p beside."""
    points = correlation_points(scored, tables)
    order = {p: i for i, p in enumerate((*DIFFICULTY_PREDICTORS, *ALIGNMENT_PREDICTORS))}
    rows = []
    for target, mode, p, o in sorted(
        points, key=lambda k: (k[0], k[1], order[k[2]], OUTCOMES.index(k[3]))
    ):
        pts = points[(target, mode, p, o)]
        if not any(x is not None for x, _, _ in pts) or circular(target, p):
            continue
        rows.append(
            {
                "target_task": target,
                "train_languages": mode,
                "predictor": p,
                "outcome": o,
                "points": "runs" if p in ALIGNMENT_PREDICTORS else "cells",
                "correlation": within_size_correlation(pts),
                "pooled": pearson([(x, y) for x, y, _ in pts]),
            }
        )
    return with_adjusted(rows, "correlation")


def subset_table(scored: Scored) -> list[dict]:
    """The subsets of one task (size, map, fraction, target, mode) side by side over seeds."""
    groups: dict[tuple, dict[str, dict]] = defaultdict(dict)
    for (size, inter, target, mode), seeds in group_cells(scored).items():
        parsed = parse_subset_name(inter)
        if parsed:
            task, subset, fraction = parsed
            groups[(size, task, fraction, target, mode)][subset] = seeds
    present = [s for s in SUBSETS if any(s in by for by in groups.values())]
    rows = []
    for (size, task, fraction, target, mode), by_subset in sorted(
        groups.items(), key=lambda kv: (kv[0][3], kv[0][4], kv[0][0], kv[0][1], kv[0][2])
    ):
        row = {
            "model_size": size,
            "model_params": scored.size_params.get(size),
            "task": task,
            "fraction": fraction,
            "target_task": target,
            "train_languages": mode,
        }
        for subset in present:
            seeds = by_subset.get(subset)
            for q in ("en", "non_en", "gap"):
                values = list(_by_seed(scored, seeds, q).values()) if seeds else []
                row[f"{subset}_{q}"] = summarize(values) if seeds else None
        if "easy" in by_subset and "hard" in by_subset:
            for q in ("en", "non_en"):
                row[f"easy_minus_hard_{q}"] = paired_gain(
                    _by_seed(scored, by_subset["easy"], q), _by_seed(scored, by_subset["hard"], q)
                )
        rows.append(row)
    return with_adjusted(rows, "easy_minus_hard_en", "easy_minus_hard_non_en")
