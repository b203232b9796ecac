"""The sweep file: axes (sizes x intermediate tasks x target tasks x languages x seeds), fixed
hyperparameters and search spaces, search/scheduler settings, resources and retries.

`load_sweep(path)` reads and validates one file; every error is one line naming the file and the
key path, e.g. ``sweeps/x.yaml: target_tasks.0: 'mnli' is not a target task``. A field of
`intermediate`/`target` is either a fixed value or a search space, a mapping with one key:

    choice: [a, b]          categorical (with `search.method: grid` it is searched as a grid)
    grid: [a, b]            every value (grid search only)
    uniform: [lo, hi]       float in [lo, hi] (optuna only)
    loguniform: [lo, hi]    float, log scale, 0 < lo < hi (optuna only)
    randint: [lo, hi]       integer in [lo, hi], both ends included (optuna only)

The sampled values are validated against `PhaseConfig`, so a bad option names its index
(``target.batch_size.choice.1: ...``). `fixed_phase(kind, sample)` builds the validated
`PhaseConfig` of one trial from the fixed values and a sampled dict.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    PrivateAttr,
    StrictInt,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from xscale.catalog.recipes import find_config
from xscale.catalog.sizes import SIZES, get_size
from xscale.errors import XScaleError
from xscale.sweep.difficulty import (
    AlignmentConfig,
    CartographyConfig,
    SubsetTask,
    check_difficulty,
)
from xscale.sweep.io import (
    absolute,
    default_tracking_uri,
    format_validation_error,
    normalize_tracking_uri,
    read_yaml,
    resolve_path,
    resolve_recipe,
)
from xscale.sweep.perturbations import PerturbationEntry, check_sets, parse_set
from xscale.sweep.phases import (
    ENTRY_NAME_PATTERN,
    DataConfig,
    PhaseConfig,
    PretrainConfig,
    Strict,
)
from xscale.sweep.spaces import (
    FieldError,
    SearchSpace,
    _parse_phase,
)
from xscale.tasks.registry import TASKS

PhaseKind = Literal["pretrain", "intermediate", "target", "cartography"]
NONE_TASK = "none"
NAME_PATTERN = r"^[A-Za-z0-9_.-]+$"


# --------------------------------------------------------------------------- search spaces


# --------------------------------------------------------------------------- sections


class Mixture(Strict):
    """A multi-task intermediate stage: the listed tasks trained together."""

    mixture: list[str]
    name: str | None = Field(None, pattern=ENTRY_NAME_PATTERN)
    cap: int | None = Field(None, ge=1)  # examples per task

    @property
    def canonical_name(self) -> str:
        return self.name or "mix:" + "+".join(sorted(self.mixture))


class MultilingualTask(Strict):
    """An intermediate task trained on several languages' data at once, e.g. XNLI's
    translate-train files: `{task: xnli, languages: [en, de, es, fr]}`."""

    task: str
    languages: list[str] = Field(min_length=1)
    name: str | None = Field(None, pattern=ENTRY_NAME_PATTERN)

    @property
    def canonical_name(self) -> str:
        return self.name or f"{self.task}@" + "+".join(sorted(self.languages))


class SearchConfig(Strict):
    method: Literal["grid", "optuna"] = "grid"
    num_samples: int | None = Field(None, ge=1)  # optuna only: trials per stage
    metric: str = Field("dev.score", min_length=1)  # = tracking.names.DEV_SCORE (a test checks)
    mode: Literal["max", "min"] = "max"
    seed: int = Field(0, ge=0, lt=2**32)


class SchedulerConfig(Strict):
    type: Literal["asha"] = "asha"
    max_t: int = Field(10, ge=1)  # in evaluation rounds
    grace_period: int = Field(1, ge=1)
    reduction_factor: float = Field(2, gt=1)


class ResourcesConfig(Strict):
    """Per-size overrides of the size table's resources for one stage."""

    cpus: int | None = Field(None, ge=1)  # per worker
    gpus: int | None = Field(None, ge=0)  # per worker
    workers: int | None = Field(None, ge=1)
    # a multi-worker stage's workers: all on one node (pack: Ray's STRICT_PACK) or one per
    # node where possible (spread: Ray's SPREAD, for stages with more GPUs than a node has)
    placement: Literal["pack", "spread"] | None = None
    # examples per forward pass on a worker (the rest of its share of the global batch is
    # gradient accumulation; default: the size table's), and activation recomputation
    micro_batch_size: int | None = Field(None, ge=1, le=65536)
    gradient_checkpointing: bool | None = None
    deepspeed_config: str | None = None

    @field_validator("deepspeed_config")
    @classmethod
    def _absolute_recipe(cls, v: str | None, info: ValidationInfo) -> str | None:
        return resolve_recipe(v, info)


class FailureSettings(Strict):
    max_failures: int = Field(2, ge=0)  # retries per stage (Ray's FailureConfig)


@dataclass(frozen=True)
class StageResources:
    """What one stage of a size runs with: per worker CPUs and GPUs, workers and their
    placement, the DeepSpeed recipe, the micro batch, recomputation (the size table's, with
    the sweep's `resources.<size>` overrides)."""

    cpus: int
    gpus: int
    workers: int
    deepspeed_config: str = ""
    placement: str = "pack"
    micro_batch_size: int | None = None  # None: the whole share of the batch at once
    gradient_checkpointing: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> StageResources:
        """From a manifest or trial context (older manifests have fewer fields)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


class SweepConfig(Strict):
    name: str = Field(pattern=NAME_PATTERN)  # MLflow experiment name
    output_dir: str
    tracking_uri: str | None = None
    max_concurrent_trials: int = Field(1, ge=1)
    models: list[str] = Field(min_length=1)
    model_paths: dict[str, str] = Field(default_factory=dict)  # size -> local weights (real sizes)
    intermediate_tasks: list[str | Mixture | MultilingualTask | SubsetTask] = Field(
        [NONE_TASK], min_length=1
    )
    target_tasks: list[str] = Field(min_length=1)
    train_languages: list[Literal["en", "in-language", "all"]] = Field(["en"], min_length=1)
    # a seed seeds torch, numpy and Python: numpy's take 0 .. 2**32 - 1
    seeds: list[Annotated[StrictInt, Field(ge=0, lt=2**32)]] = Field([0], min_length=1)
    eval_languages: dict[str, list[str]] = Field(default_factory=dict)
    data: DataConfig = Field(default_factory=DataConfig)
    pretrain: PretrainConfig = Field(default_factory=PretrainConfig)
    intermediate: dict[str, Any] = Field(default_factory=dict)
    target: dict[str, Any] = Field(default_factory=dict)
    search: SearchConfig = Field(default_factory=SearchConfig)
    scheduler: SchedulerConfig | None = None
    resources: dict[str, ResourcesConfig] = Field(default_factory=dict)
    failure: FailureSettings = Field(default_factory=FailureSettings)
    perturbations: list[PerturbationEntry] = Field(default_factory=list)  # sweep/perturbations.py
    cartography: CartographyConfig = Field(default_factory=CartographyConfig)  # map runs
    alignment: AlignmentConfig | None = None  # measured on every trained checkpoint

    _source: str = PrivateAttr("<sweep>")
    _spaces: dict[str, dict[str, Any]] = PrivateAttr(default_factory=dict)  # parsed phases

    @field_validator("output_dir")
    @classmethod
    def _absolute_output(cls, v: str, info: ValidationInfo) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        return resolve_path(v, info)

    @field_validator("model_paths")
    @classmethod
    def _absolute_weights(cls, v: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        return {size: resolve_path(path, info) for size, path in v.items()}

    @field_validator("tracking_uri")
    @classmethod
    def _absolute_store(cls, v: str | None, info: ValidationInfo) -> str | None:
        return normalize_tracking_uri(v, (info.context or {}).get("base"))

    # ----- derived values

    @property
    def output_path(self) -> Path:
        return Path(absolute(self.output_dir))

    @property
    def resolved_tracking_uri(self) -> str:
        return self.tracking_uri or default_tracking_uri(self.output_path)

    @property
    def intermediate_names(self) -> list[str]:
        """Canonical name of each intermediate entry: `none`, a task, or a mixture's name."""
        return [e if isinstance(e, str) else e.canonical_name for e in self.intermediate_tasks]

    @property
    def mixtures(self) -> dict[str, Mixture]:
        return {e.canonical_name: e for e in self.intermediate_tasks if isinstance(e, Mixture)}

    @property
    def multilingual(self) -> dict[str, MultilingualTask]:
        return {
            e.canonical_name: e for e in self.intermediate_tasks if isinstance(e, MultilingualTask)
        }

    @property
    def subsets(self) -> dict[str, SubsetTask]:
        """Intermediate entries trained on a region of a cartography map (sweep/difficulty.py)."""
        return {e.canonical_name: e for e in self.intermediate_tasks if isinstance(e, SubsetTask)}

    def resources_for(self, model: str) -> StageResources:
        """A size's resources per stage: the size table, with this sweep's overrides."""
        size, over = get_size(model), self.resources.get(model, ResourcesConfig())
        return StageResources(
            cpus=over.cpus if over.cpus is not None else size.cpus_per_worker,
            gpus=over.gpus if over.gpus is not None else size.gpus_per_worker,
            workers=over.workers if over.workers is not None else size.num_workers,
            deepspeed_config=over.deepspeed_config or size.deepspeed_config,
            placement=over.placement or "pack",
            micro_batch_size=over.micro_batch_size or size.micro_batch_size,
            gradient_checkpointing=bool(over.gradient_checkpointing),
        )

    # ----- hyperparameters and search

    def _phase_cls(self, kind: PhaseKind) -> type[PhaseConfig]:
        if kind not in ("pretrain", "intermediate", "target", "cartography"):
            raise ValueError(f"unknown phase kind {kind!r}")
        return PretrainConfig if kind == "pretrain" else PhaseConfig

    def phase_space(self, kind: PhaseKind) -> dict[str, Any]:
        """The phase's explicitly set fields: field -> fixed value | SearchSpace."""
        if kind == "pretrain":
            return self.pretrain.model_dump(exclude_unset=True, exclude={"per_seed"})
        if kind == "cartography":  # fixed values only (sweep/difficulty.py)
            return self.cartography.phase(self.fixed_values("intermediate"))
        if kind not in self._spaces:  # parsed once; the model is frozen
            raw = self.intermediate if kind == "intermediate" else self.target
            try:
                self._spaces[kind] = _parse_phase(
                    PhaseConfig, raw, kind, self.search.method, allow_search=True
                )
            except FieldError as e:
                raise XScaleError(f"{self._source}: {e.path}: {e.message}") from None
        return dict(self._spaces[kind])

    def fixed_values(self, kind: PhaseKind) -> dict[str, Any]:
        return {k: v for k, v in self.phase_space(kind).items() if not isinstance(v, SearchSpace)}

    def searched(self, kind: PhaseKind) -> dict[str, SearchSpace]:
        return {k: v for k, v in self.phase_space(kind).items() if isinstance(v, SearchSpace)}

    def searched_keys(self, kind: PhaseKind) -> list[str]:
        return list(self.searched(kind))

    def tune_space(self, kind: PhaseKind) -> dict[str, Any]:
        """Ray Tune param space of the searched keys (empty if nothing is searched)."""
        return {k: v.to_tune() for k, v in self.searched(kind).items()}

    def grid_points(self, kind: PhaseKind) -> list[dict[str, Any]]:
        """Cartesian product of the grid spaces (grid search); [{}] if there are none."""
        grids = {k: v for k, v in self.searched(kind).items() if v.is_grid}
        keys = list(grids)
        return [
            dict(zip(keys, combo))
            for combo in itertools.product(*(g.values for g in grids.values()))
        ] or [{}]

    def fixed_phase(self, kind: PhaseKind, sample: dict[str, Any] | None = None) -> PhaseConfig:
        """The validated config of one trial: fixed values overlaid with `sample`."""
        cls = self._phase_cls(kind)
        if kind == "pretrain":
            data = {**self.pretrain.model_dump(exclude_unset=True), **(sample or {})}
        else:
            data = {**self.fixed_values(kind), **(sample or {})}
        missing = (
            [k for k in self.searched_keys(kind) if k not in data] if kind != "pretrain" else []
        )
        if missing:
            raise XScaleError(f"{self._source}: {kind}: no sampled value for {', '.join(missing)}")
        try:
            return cls.model_validate(data)
        except ValidationError as e:
            first = e.errors()[0]
            loc = ".".join(str(p) for p in (kind, *first["loc"]))
            msg = "unknown key" if first["type"] == "extra_forbidden" else first["msg"]
            raise XScaleError(f"{self._source}: {loc}: {msg}") from None


# --------------------------------------------------------------------------- semantic checks


def _no_duplicates(values: list, path: str) -> None:
    seen: set = set()
    for i, v in enumerate(values):
        if v in seen:
            raise FieldError(f"{path}.{i}", f"duplicate {v!r}")
        seen.add(v)


def _check_tasks(cfg: SweepConfig) -> None:
    known = ", ".join(sorted(TASKS))

    def check(name: str, role: str, path: str) -> None:
        if name not in TASKS:
            raise FieldError(path, f"unknown task {name!r} (known: {known})")
        if role not in TASKS[name].roles:
            raise FieldError(
                path,
                f"{name!r} is not an {role} task"
                if role[0] in "aeiou"
                else f"{name!r} is not a {role} task",
            )

    for i, entry in enumerate(cfg.intermediate_tasks):
        if isinstance(entry, str):
            if entry != NONE_TASK:
                check(entry, "intermediate", f"intermediate_tasks.{i}")
            continue
        if isinstance(entry, MultilingualTask | SubsetTask):
            check(entry.task, "intermediate", f"intermediate_tasks.{i}.task")
            for j, lang in enumerate(entry.languages):
                if lang not in TASKS[entry.task].languages:
                    raise FieldError(
                        f"intermediate_tasks.{i}.languages.{j}",
                        f"{entry.task} has no language {lang!r}",
                    )
        else:
            for j, task in enumerate(entry.mixture):
                check(task, "intermediate", f"intermediate_tasks.{i}.mixture.{j}")
        if entry.name in TASKS:
            raise FieldError(
                f"intermediate_tasks.{i}.name", f"{entry.name!r} is already a task name"
            )
    for i, task in enumerate(cfg.target_tasks):
        check(task, "target", f"target_tasks.{i}")
    for task, langs in cfg.eval_languages.items():
        have = TASKS[task].languages
        for j, lang in enumerate(langs):
            if lang not in have:
                raise FieldError(
                    f"eval_languages.{task}.{j}",
                    f"{task} has no language {lang!r} (known: {', '.join(have)})",
                )
    for task in cfg.data.tasks:
        if task != "pretrain" and task not in TASKS:
            raise FieldError(
                f"data.tasks.{task}", f"unknown task {task!r} (known: pretrain, {known})"
            )


def _check(cfg: SweepConfig, check_registry: bool) -> None:
    sizes = ", ".join(SIZES)
    for i, model in enumerate(cfg.models):
        if model not in SIZES:
            raise FieldError(f"models.{i}", f"unknown size {model!r} (known: {sizes})")
    _no_duplicates(cfg.models, "models")
    for i, entry in enumerate(cfg.intermediate_tasks):
        if isinstance(entry, MultilingualTask):
            _no_duplicates(entry.languages, f"intermediate_tasks.{i}.languages")
        if isinstance(entry, Mixture):
            path = f"intermediate_tasks.{i}.mixture"
            for j, task in enumerate(entry.mixture):
                if task == NONE_TASK:
                    raise FieldError(f"{path}.{j}", "'none' cannot be part of a mixture")
            _no_duplicates(entry.mixture, path)
            if len(entry.mixture) < 2:
                raise FieldError(path, "a mixture needs at least 2 distinct tasks")
            if entry.name == NONE_TASK:
                raise FieldError(
                    f"intermediate_tasks.{i}.name", "'none' is reserved for no mixture"
                )
    _no_duplicates(cfg.intermediate_names, "intermediate_tasks")
    _no_duplicates(cfg.target_tasks, "target_tasks")
    _no_duplicates(cfg.train_languages, "train_languages")
    _no_duplicates(cfg.seeds, "seeds")
    for task, langs in cfg.eval_languages.items():
        if task not in cfg.target_tasks:
            raise FieldError(f"eval_languages.{task}", f"{task!r} is not in target_tasks")
        if not langs:
            raise FieldError(f"eval_languages.{task}", "must not be empty")
        _no_duplicates(langs, f"eval_languages.{task}")

    searched = 0
    for kind in ("intermediate", "target"):
        raw = cfg.intermediate if kind == "intermediate" else cfg.target
        space = _parse_phase(PhaseConfig, raw, kind, cfg.search.method, allow_search=True)
        searched += sum(isinstance(v, SearchSpace) for v in space.values())
    if cfg.search.method == "grid" and cfg.search.num_samples is not None:
        raise FieldError("search.num_samples", "only used with search.method optuna")
    if cfg.search.method == "optuna":
        if cfg.search.num_samples is None:
            raise FieldError("search.num_samples", "required with search.method optuna")
        if not searched:
            raise FieldError(
                "search.method", "optuna needs a search space in intermediate or target"
            )
    if cfg.scheduler is not None and cfg.scheduler.grace_period > cfg.scheduler.max_t:
        raise FieldError("scheduler.grace_period", "must be <= scheduler.max_t")

    for size in cfg.model_paths:
        if size not in cfg.models:
            raise FieldError(f"model_paths.{size}", f"{size!r} is not in models")
        if SIZES[size].tiny:
            raise FieldError(f"model_paths.{size}", "tiny sizes are pretrained by the sweep itself")
    for size, res in cfg.resources.items():
        if size not in SIZES:
            raise FieldError(f"resources.{size}", f"unknown size {size!r} (known: {sizes})")
        if res.deepspeed_config is not None:
            try:
                find_config(res.deepspeed_config)
            except XScaleError as e:
                raise FieldError(f"resources.{size}.deepspeed_config", str(e)) from None
    if check_registry:
        _check_tasks(cfg)
    check_difficulty(cfg, check_registry)
    check_sets(cfg.perturbations, cfg.target_tasks if check_registry else None)


# --------------------------------------------------------------------------- loading


def _pre_check(data: dict[str, Any]) -> None:
    """Checks whose key paths pydantic's union/dict handling would blur."""
    entries = data.get("intermediate_tasks")
    if isinstance(entries, list):
        for i, entry in enumerate(entries):
            if isinstance(entry, dict):
                if "subset" in entry or "fraction" in entry:
                    model: type[Strict] = SubsetTask
                else:
                    model = MultilingualTask if "task" in entry else Mixture
                try:
                    model.model_validate(entry)
                except ValidationError as e:
                    first = e.errors()[0]
                    loc = ".".join(str(p) for p in first["loc"])
                    msg = "unknown key" if first["type"] == "extra_forbidden" else first["msg"]
                    raise FieldError(f"intermediate_tasks.{i}.{loc}", msg) from None
            elif not isinstance(entry, str):
                raise FieldError(
                    f"intermediate_tasks.{i}",
                    "expected a task name, {mixture: [...]}, {task: ..., languages: [...]} or"
                    " {task: ..., subset: easy|ambiguous|hard, fraction: ...}",
                )
    for section in ("pretrain", "cartography"):
        fields = data.get(section)
        for field, value in fields.items() if isinstance(fields, dict) else ():
            if isinstance(value, dict):
                raise FieldError(
                    f"{section}.{field}", "search spaces are only allowed in intermediate/target"
                )
    sets = data.get("perturbations")
    if sets is not None and not isinstance(sets, list):
        raise FieldError("perturbations", "expected a list of set names or mappings")
    for i, entry in enumerate(sets or ()):
        parse_set(entry, f"perturbations.{i}")
    for key in ("intermediate", "target", "resources", "eval_languages"):
        if key in data and not isinstance(data[key], dict):
            raise FieldError(key, "expected a mapping")


def build_sweep(
    data: dict[str, Any], source: str, check_registry: bool = True, base: str | Path | None = None
) -> SweepConfig:
    """Validate a parsed sweep mapping; errors read `source: key.path: message`. Relative paths
    resolve against `base` (default: the current directory; the path rule in `xscale.sweep.io`)."""
    try:
        _pre_check(data)
        try:
            cfg = SweepConfig.model_validate(data, context={"base": str(base or Path.cwd())})
        except ValidationError as e:
            raise XScaleError(format_validation_error(e, source)) from None
        _check(cfg, check_registry)
    except FieldError as e:
        raise XScaleError(f"{source}: {e.path}: {e.message}") from None
    cfg._source = source
    return cfg


def _merge(base: dict[str, Any], over: dict[str, Any], depth: int = 0) -> dict[str, Any]:
    """Deep-merge `over` into `base` (None values skipped); phase fields are replaced whole."""
    out = dict(base)
    for key, value in over.items():
        if value is None:
            continue
        phase_section = depth == 0 and key in ("intermediate", "target", "pretrain")
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            if phase_section:
                out[key] = {**out[key], **{k: v for k, v in value.items() if v is not None}}
            else:
                out[key] = _merge(out[key], value, depth + 1)
        else:
            out[key] = value
    return out


def load_sweep(
    path: str | Path, overrides: dict[str, Any] | None = None, check_registry: bool = True
) -> SweepConfig:
    """Read and validate a sweep file; `overrides` (e.g. from the CLI) are deep-merged first.

    `check_registry=False` skips checking task names against the task registry.
    """
    data = _merge(read_yaml(path), overrides or {})
    return build_sweep(data, str(path), check_registry=check_registry)
