"""What a sweep says about intermediate-task difficulty and cross-lingual alignment (question 5).

Three parts of a sweep file, typed here and checked by `check_difficulty` (schema.py calls it):

    intermediate_tasks:
      - {task: mnli, subset: hard, fraction: 0.33}     # a subset of a dataset-cartography map
      - {task: xnli, languages: [en, de], subset: easy, fraction: 0.5}
    cartography:        # the map runs: training hyperparameters (fixed values), over the
      epochs: 4         # sweep's fixed `intermediate:` values; `tasks: all` also maps every
      tasks: subsets    # other single-task intermediate entry (task-level difficulty for each)
    alignment:          # measured on every checkpoint a stage trains, per layer
      {languages: [de, es, fr, zh], source: xnli, max_pairs: 200, layers: all}

A subset entry's canonical name (the `intermediate_task` param of its stages) is
`<task>[@<langs>]:<subset><fraction>`, e.g. `mnli:hard0.33` (`subset_name`); the analysis reads
it back with `parse_subset_name`. The subset is chosen per language: `fraction` of each training
language's examples (at least one), ranked by the map (stage/cartography.py).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field

from xscale.catalog.sizes import SIZES
from xscale.sweep.phases import ENTRY_NAME_PATTERN, PhaseConfig, Strict
from xscale.sweep.spaces import FieldError
from xscale.tasks import format_info
from xscale.tasks.registry import TASKS

SUBSETS = ("easy", "ambiguous", "hard")
# tasks whose rows are translations of each other, row by row (or pairs with English)
# tasks with sentences parallel across languages (Task.parallel): alignment is measured on them
ALIGNMENT_SOURCES = tuple(n for n, t in TASKS.items() if t.parallel)
# the map's seed: one map per (size, task, languages), shared by every seed's subset stages
MAP_SEED = 0


class SubsetTask(Strict):
    """An intermediate task trained on one region of its cartography map: `fraction` of its
    training examples, the easiest (highest confidence), hardest (lowest confidence) or most
    ambiguous (highest variability)."""

    task: str
    subset: Literal["easy", "ambiguous", "hard"]
    fraction: float = Field(gt=0, lt=1)
    languages: list[str] = Field(["en"], min_length=1)
    name: str | None = Field(None, pattern=ENTRY_NAME_PATTERN)

    @property
    def map_name(self) -> str:
        """The task as its map (and a plain multilingual entry) names it: `mnli`, `xnli@de+en`."""
        langs = sorted(self.languages)
        return self.task if langs == ["en"] else f"{self.task}@" + "+".join(langs)

    @property
    def canonical_name(self) -> str:
        return self.name or subset_name(self.map_name, self.subset, self.fraction)


def subset_name(task: str, subset: str, fraction: float) -> str:
    return f"{task}:{subset}{fraction:g}"


_SUBSET_NAME = re.compile(r"^(?P<task>[^:]+):(?P<subset>easy|ambiguous|hard)(?P<fraction>[0-9.]+)$")


def parse_subset_name(name: str) -> tuple[str, str, float] | None:
    """(task, subset, fraction) of a canonical subset name; None for any other name."""
    m = _SUBSET_NAME.match(name)
    if m is None:
        return None
    try:
        return m["task"], m["subset"], float(m["fraction"])
    except ValueError:
        return None


class CartographyConfig(PhaseConfig):
    """The map runs' training: any phase field, as fixed values over the sweep's fixed
    `intermediate:` values (a map is a full training run of the task, as the paper's)."""

    tasks: Literal["subsets", "all"] = "subsets"

    def phase(self, intermediate: dict) -> dict:
        """The map run's fixed hyperparameters: `intermediate` overlaid with this section's
        explicit fields; continued MLM off (the map records the task alone)."""
        own = self.model_dump(exclude_unset=True, exclude={"tasks"})
        out = {**intermediate, **own}
        out.pop("continued_mlm", None)
        return out


class AlignmentConfig(Strict):
    """Alignment measured on a checkpoint: English against each of `languages` on the first
    `max_pairs` parallel sentence pairs of `source` (its `split`), per layer."""

    languages: list[str] = Field(min_length=1)
    source: str = "xnli"
    split: Literal["train", "dev", "test"] = "test"
    max_pairs: int = Field(200, ge=4)
    layers: Literal["all"] | list[int] = "all"  # 0-based transformer layers (XTREME's index)
    pooling: Literal["mean", "cls"] = "mean"


class AlignmentSpec(AlignmentConfig):
    """What one stage measures: the sweep's `alignment` with its source's data root."""

    languages: tuple[str, ...]
    layers: Literal["all"] | tuple[int, ...] = "all"
    data_root: str = "hub"


def alignment_spec(cfg: AlignmentConfig, data_root: str) -> AlignmentSpec:
    return AlignmentSpec(**{**cfg.model_dump(), "data_root": data_root})


def check_difficulty(cfg, check_registry: bool = True) -> None:
    """Semantic checks of subset entries, `cartography` and `alignment` (a `SweepConfig`);
    raises `FieldError` naming the key path."""
    subsets = [(i, e) for i, e in enumerate(cfg.intermediate_tasks) if isinstance(e, SubsetTask)]
    for i, entry in subsets:
        _unique(entry.languages, f"intermediate_tasks.{i}.languages")
        if check_registry and entry.task in TASKS and not format_info(TASKS[entry.task]).gold_prob:
            task = TASKS[entry.task]
            raise FieldError(
                f"intermediate_tasks.{i}.task",
                f"{task.name} is a {task.format} task: a cartography map needs the probability of"
                " a gold label (classification or multiple-choice tasks)",
            )
    if subsets or cfg.cartography.tasks == "all":
        phase = cfg.cartography.phase(cfg.fixed_values("intermediate"))
        if "max_train_examples" in cfg.cartography.model_fields_set:
            raise FieldError(
                "cartography.max_train_examples",
                "the map covers the examples its subset stages train on: set it under intermediate",
            )
        epochs = PhaseConfig.model_validate(phase).epochs
        if epochs < 2:
            where = "" if "epochs" in cfg.cartography.model_fields_set else " (intermediate's)"
            raise FieldError(
                "cartography.epochs",
                f"a map needs at least 2 epochs (variability is a spread over epochs), got"
                f" {epochs:g}{where}",
            )
    if cfg.alignment is not None:
        _check_alignment(cfg.alignment, cfg.models, check_registry)


def _unique(values: list, path: str) -> None:
    for j, v in enumerate(values):
        if v in values[:j]:
            raise FieldError(f"{path}.{j}", f"duplicate {v!r}")


def _check_alignment(a: AlignmentConfig, models: list[str], check_registry: bool) -> None:
    if a.source not in ALIGNMENT_SOURCES:
        raise FieldError(
            "alignment.source",
            f"{a.source!r} has no parallel rows to align (known: {', '.join(ALIGNMENT_SOURCES)})",
        )
    if TASKS[a.source].parallel == "pairs" and a.split != "test":  # Tatoeba
        raise FieldError("alignment.split", f"{a.source} has only a test split")
    _unique(a.languages, "alignment.languages")
    have = TASKS[a.source].languages
    for j, lang in enumerate(a.languages):
        if lang == "en":
            raise FieldError(f"alignment.languages.{j}", "English is the side every pair has")
        if check_registry and lang not in have:
            raise FieldError(
                f"alignment.languages.{j}",
                f"{a.source} has no language {lang!r} (known: {', '.join(have)})",
            )
    if a.layers == "all":
        return
    if not a.layers:
        raise FieldError("alignment.layers", "give `all` or at least one layer")
    _unique(a.layers, "alignment.layers")
    known = [m for m in models if m in SIZES]
    for j, k in enumerate(a.layers):
        if k < 0:
            raise FieldError(f"alignment.layers.{j}", f"{k} is not a layer (0-based)")
        for m in known:
            n = SIZES[m].num_layers
            if k >= n:
                raise FieldError(
                    f"alignment.layers.{j}", f"layer {k} is beyond {m}'s {n} layers (0..{n - 1})"
                )
