"""The vocabulary of target-run records: cell axes, metric names, each task's main metric, the
XTREME categories, and the display order of seeds, languages and intermediate tasks."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from xscale.errors import XScaleError
from xscale.tasks.registry import TASKS
from xscale.tracking.names import SET_AGGREGATES

MISSING = "—"
BASELINE = "none"
ZERO_SHOT = "en"
IN_LANGUAGE = "in-language"
ENGLISH = "en"
AXES = ("model_size", "intermediate_task", "target_task", "train_languages")
AGGREGATES = ("avg", "avg_non_en", "gap_en")
# last parts of `<task>.<x>.<y>` names that are aggregates (of the task or of a set), not a
# language's metric
THREE_PART_AGGREGATES = (*AGGREGATES, *SET_AGGREGATES)
SPLIT_NAMES = ("dev", "train", "valid", "validation", "test")

# each target task's main metric, as the task registry declares it
MAIN_METRICS = {t.name: t.metric for t in TASKS.values() if "target" in t.roles}
CATEGORY_ORDER = ("classification", "structured_prediction", "question_answering", "retrieval")


def benchmark_categories(benchmark: str) -> dict[str, tuple[str, ...]]:
    """A benchmark's categories and their tasks, as the task modules declare them
    (`Task.benchmarks`), in the registry's order."""
    cats: dict[str, tuple[str, ...]] = {c: () for c in CATEGORY_ORDER}
    for t in TASKS.values():
        if benchmark in t.benchmarks:
            cats[t.benchmarks[benchmark]] += (t.name,)
    return {c: names for c, names in cats.items() if names}


# XTREME (Hu et al. 2020): nine tasks in four categories
CATEGORIES = benchmark_categories("xtreme")
# XTREME-R (Ruder et al. 2021): ten tasks in four categories; PAWS-X and BUCC are dropped, XCOPA,
# Mewsli-X and LAReQA added. Its scores are means over the tasks of each category.
XTREME_R_CATEGORIES = benchmark_categories("xtreme_r")

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


def category_of(task: str, categories: Mapping[str, Iterable[str]] = CATEGORIES) -> str:
    return next((c for c, tasks in categories.items() if task in tasks), "other")


@dataclass(frozen=True)
class MetricName:
    task: str
    lang: str
    perturbation: str | None  # None = clean
    metric: str


def parse_metric_name(name: str) -> MetricName | None:
    """`xnli.de.accuracy` -> clean; `xnli.de.typos.accuracy` -> perturbed; aggregates -> None."""
    parts = name.split(".")
    if len(parts) == 3 and parts[2] not in THREE_PART_AGGREGATES:
        return MetricName(parts[0], parts[1], None, parts[2])
    if len(parts) == 4 and parts[3] not in AGGREGATES and parts[2] not in SPLIT_NAMES:
        return MetricName(parts[0], parts[1], parts[2], parts[3])
    return None


def _seed_order(seed: str) -> tuple:
    try:
        return (0, float(seed), "")
    except (TypeError, ValueError):
        return (1, 0.0, str(seed))


def _lang_order(langs: Iterable[str]) -> list[str]:
    return sorted(set(langs), key=lambda lang: (lang != ENGLISH, lang))


def _inter_order(name: str) -> tuple:
    return (name != BASELINE, name)
