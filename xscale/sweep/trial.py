"""One trial (`xscale run --config t.yaml`): a size, an intermediate task (or `none`) and a target
task with one seed. A trial runs as a one-cell sweep: `trial_sweep` turns it into the sweep whose
graph has exactly this chain, so `run` and `sweep` build stages in one place and share them."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from xscale.errors import XScaleError
from xscale.sweep.difficulty import AlignmentConfig
from xscale.sweep.io import (
    format_validation_error,
    parse,
    read_yaml,
    resolve_path,
    resolve_recipe,
)
from xscale.sweep.perturbations import PerturbationEntry, check_sets, parse_set
from xscale.sweep.phases import DataConfig, PhaseConfig, PretrainConfig, Strict
from xscale.sweep.schema import NONE_TASK, SweepConfig
from xscale.sweep.spaces import FieldError
from xscale.tasks.registry import TASKS


class TrialConfig(Strict):
    """One trial: a size, an intermediate task (or `none`) and a target task, with one seed."""

    model: str
    model_path: str | None = None  # local weights for a real size (else its hub id)
    intermediate_task: str = "none"  # a task, `none`, or a mixture `mnli+sst2`
    mixture_cap: int | None = Field(None, ge=1)  # examples per task in a mixture
    target_task: str
    train_languages: Literal["en", "in-language", "all"] = "en"  # target training languages
    intermediate_languages: tuple[str, ...] = ("en",)  # several = a multilingual intermediate task
    eval_languages: tuple[str, ...] | None = None  # default: every language the data has
    perturbations: tuple[PerturbationEntry, ...] = ()  # e.g. [typo]: sweep/perturbations.py
    seed: int = Field(0, ge=0, lt=2**32)  # numpy's seeds: 0 .. 2**32 - 1
    deepspeed_config: str | None = None  # default: the size's config from the size table
    data: DataConfig = Field(default_factory=DataConfig)
    pretrain: PretrainConfig = Field(default_factory=PretrainConfig)
    intermediate: PhaseConfig = Field(default_factory=PhaseConfig)
    target: PhaseConfig = Field(default_factory=PhaseConfig)
    alignment: AlignmentConfig | None = None  # per-layer alignment of each trained checkpoint

    @field_validator("perturbations", mode="before")
    @classmethod
    def _sets(cls, v: Any) -> Any:
        try:
            for i, entry in enumerate(v if isinstance(v, list | tuple) else ()):
                parse_set(entry, str(i))
        except FieldError as e:
            raise PydanticCustomError(
                "perturbation", "entry {where}: {message}", {"where": e.path, "message": e.message}
            ) from None
        return v

    @field_validator("model", "intermediate_task", "target_task")
    @classmethod
    def _nonempty(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        return v

    @field_validator("model_path")
    @classmethod
    def _absolute_model_path(cls, v: str | None, info: ValidationInfo) -> str | None:
        return resolve_path(v, info)

    @field_validator("deepspeed_config")
    @classmethod
    def _absolute_recipe(cls, v: str | None, info: ValidationInfo) -> str | None:
        return resolve_recipe(v, info)


def load_trial(path: str | Path, overrides: dict[str, Any] | None = None) -> TrialConfig:
    data = read_yaml(path)
    data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    check_trial_sets(data, str(path))
    cfg = parse(TrialConfig, data, str(path))
    try:
        check_sets(cfg.perturbations, [cfg.target_task] if cfg.target_task in TASKS else None)
    except FieldError as e:
        raise XScaleError(f"{path}: {e.path}: {e.message}") from None
    return cfg


def check_trial_sets(data: dict[str, Any], source: str) -> None:
    """A trial's `perturbations`, checked entry by entry (errors name the entry's key path)."""
    sets = data.get("perturbations")
    if sets is None:
        return
    try:
        if not isinstance(sets, list):
            raise FieldError("perturbations", "expected a list of set names or mappings")
        for i, entry in enumerate(sets):
            parse_set(entry, f"perturbations.{i}")
    except FieldError as e:
        raise XScaleError(f"{source}: {e.path}: {e.message}") from None


def parse_mixture(name: str) -> tuple[str, ...] | None:
    """`mnli+sst2` (or `mix:mnli+sst2`) names a multi-task mixture; a plain name is one task."""
    body = name[4:] if name.startswith("mix:") else name
    if "+" not in body:
        return None
    tasks = tuple(sorted(t.strip() for t in body.split("+") if t.strip()))
    if len(set(tasks)) < 2:
        raise XScaleError(f"intermediate_task: a mixture needs two different tasks, got {name!r}")
    return tasks


def trial_sweep(cfg: TrialConfig, output_dir: str = ".", experiment: str = "xscale") -> SweepConfig:
    """The one-cell sweep whose graph is this trial's chain (see `graph.expand.trial_stages`).

    Built without the sweep file's checks: a trial's names, data and DeepSpeed config are checked
    by preflight with the trial's own key names. Paths are already absolute (the path rule)."""
    size_name = cfg.model
    mixture = parse_mixture(cfg.intermediate_task) if cfg.intermediate_task != NONE_TASK else None
    languages = sorted(set(cfg.intermediate_languages))
    if mixture:
        entry: Any = {"mixture": list(mixture), "cap": cfg.mixture_cap}
    elif cfg.intermediate_task != NONE_TASK and languages != ["en"]:
        entry = {"task": cfg.intermediate_task, "languages": languages}
    else:
        entry = cfg.intermediate_task
    resources = {size_name: {"deepspeed_config": cfg.deepspeed_config}}
    data = {
        "name": experiment,
        "output_dir": str(output_dir),
        "models": [size_name],
        "model_paths": {size_name: cfg.model_path} if cfg.model_path else {},
        "intermediate_tasks": [entry],
        "target_tasks": [cfg.target_task],
        "train_languages": [cfg.train_languages],
        "seeds": [cfg.seed],
        "eval_languages": {cfg.target_task: list(cfg.eval_languages)}
        if cfg.eval_languages is not None
        else {},
        "data": cfg.data,
        "pretrain": cfg.pretrain.model_dump(exclude_defaults=True),
        "intermediate": cfg.intermediate.model_dump(exclude_defaults=True),
        "target": cfg.target.model_dump(exclude_defaults=True),
        "resources": resources if cfg.deepspeed_config else {},
        "perturbations": list(cfg.perturbations),
        "alignment": cfg.alignment.model_dump() if cfg.alignment else None,
    }
    try:
        return SweepConfig.model_validate(data)
    except ValidationError as e:
        raise XScaleError(format_validation_error(e, "trial")) from None
