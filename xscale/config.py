"""Typed configuration: a trial (one pretrain -> intermediate -> target chain) and its phases.

Unknown keys are rejected and every error names the file and the key path, e.g.
``trial.yaml: intermediate.learning_rat: extra inputs are not permitted``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from xscale.errors import XScaleError

# Path rule. Every path a sweep file, a trial file or a flag names (output_dir, data roots,
# model_path, a DeepSpeed recipe given as a path, the sqlite file of tracking_uri) is made
# absolute once, when the file is loaded, against the directory the command runs in (as shell
# paths are): `xscale sweep sweeps/smoke.yaml` run from the clone writes `./runs/smoke`. Trial
# processes never see a relative path, so Ray Tune's per-trial working directories do not matter.
DATA_ROOT_NAMES = ("hub", "fixtures")


def absolute(value: str | Path, base: str | Path | None = None) -> str:
    """`value` as an absolute path (`~` expanded), relative ones taken against `base` (default:
    the current directory)."""
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = Path(base or Path.cwd()) / path
    return str(Path(os.path.normpath(path)))


def check_output_dir(path: str | Path, what: str) -> Path:
    """Refuse an output folder that is a file, lies under a file, or cannot be written, before
    anything is written (`what` names the key or flag, e.g. `sweeps/x.yaml: output_dir`)."""
    path = Path(absolute(path))
    if path.exists() and not path.is_dir():
        raise XScaleError(f"{what}: {path} is a file, not a folder")
    probe = path
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise XScaleError(f"{what}: {path} cannot be created: {probe} is a file")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise XScaleError(f"{what}: {path} is not writable ({probe} does not allow writing)")
    return path


def check_data_roots(data: DataConfig, what: str) -> None:
    """Every data root that is a folder must exist (one line naming the key and the path)."""
    roots = [("data.root", data.root)] + [(f"data.tasks.{t}", r) for t, r in data.tasks.items()]
    for key, root in roots:
        if root not in DATA_ROOT_NAMES and not Path(root).is_dir():
            state = "is not a folder" if Path(root).exists() else "does not exist"
            raise XScaleError(
                f"{what}: {key}: {root} {state} (give hub, fixtures, or a folder in XTREME"
                " download layout)"
            )


def _base(info: ValidationInfo) -> str | None:
    """The directory relative paths resolve against; None when not loading user input."""
    return (info.context or {}).get("base")


def resolve_data_root(value: str, info: ValidationInfo) -> str:
    base = _base(info)
    if base is None or value in DATA_ROOT_NAMES:
        return value
    return absolute(value, base)


def resolve_path(value: str | None, info: ValidationInfo) -> str | None:
    base = _base(info)
    if base is None or value is None:
        return value
    return absolute(value, base)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PhaseConfig(Strict):
    """Hyperparameters of one training phase (intermediate or target)."""

    learning_rate: float = Field(2e-5, gt=0)
    batch_size: int = Field(32, ge=1)
    epochs: float = Field(3.0, gt=0)
    max_steps: int | None = Field(None, ge=1)  # caps the steps that `epochs` implies
    max_length: int = Field(128, ge=8)
    warmup_ratio: float = Field(0.1, ge=0, le=1)
    weight_decay: float = Field(0.01, ge=0)
    grad_clip: float = Field(1.0, ge=0)
    checkpoint_every: int = Field(0, ge=0)  # steps between resumable checkpoints; 0 = none
    max_train_examples: int | None = Field(None, ge=1)
    max_eval_examples: int | None = Field(None, ge=1)  # per language
    log_every: int = Field(10, ge=1)
    # Continued multilingual MLM during training (the paper's alternative to compare against):
    # the share of steps spent on MLM over <data root>/pretrain/<lang>.txt; 0 = off.
    continued_mlm: float = Field(0.0, ge=0, lt=1)
    mlm_languages: tuple[str, ...] = ("en", "de", "es", "fr", "zh")
    # Retrieval targets (BUCC, Tatoeba) are not trained: sentence embeddings are hidden states
    # of one layer (default as XTREME's scripts: layer 7 of 12, i.e. num_layers // 2 + 1),
    # mean-pooled over tokens (or the <s> token with `cls`).
    retrieval_layer: int | None = Field(None, ge=0)
    retrieval_pooling: Literal["mean", "cls"] = "mean"


class PretrainConfig(PhaseConfig):
    """MLM pretraining of a tiny size: tokenizer training, then masked-LM steps."""

    learning_rate: float = Field(1e-3, gt=0)
    epochs: float = Field(1.0, gt=0)
    mlm_probability: float = Field(0.15, gt=0, lt=1)
    languages: tuple[str, ...] = ("en", "de", "es", "fr", "zh")  # the first is the pivot
    max_lines_per_language: int | None = Field(None, ge=1)
    # What to pretrain on: "text" = <data root>/pretrain/<lang>.txt; or a task with parallel
    # training rows (xnli, pawsx): the sentences of its training split in each language, e.g.
    # the training buckets of ../shared/data's real XNLI files (never its dev or test rows).
    corpus: str = Field("text", min_length=1)
    # Tokenizer pieces; default: the size table's (a fixed vocabulary keeps parameter counts
    # exact). Real text needs more: every distinct character takes a piece (zh: thousands).
    vocab_size: int | None = Field(None, ge=100, le=300_000)
    # Weight of the translation-ranking loss on line-parallel text (xscale/pretrain.py); 0 = MLM
    # only. It gives tiny models the cross-lingual alignment real sizes get from scale.
    alignment: float = Field(0.0, ge=0)
    alignment_temperature: float = Field(0.05, gt=0)


class DataConfig(Strict):
    """Where task data comes from: `hub` (Hugging Face ids), `fixtures` (shipped with xscale),
    or a folder in XTREME's download layout (`<root>/xtreme/<task>`, `<root>/intermediate/<task>`,
    `<root>/pretrain/<lang>.txt`). `tasks` overrides the root per task name."""

    root: str = "hub"
    tasks: dict[str, str] = Field(default_factory=dict)

    @field_validator("root")
    @classmethod
    def _absolute_root(cls, v: str, info: ValidationInfo) -> str:
        return resolve_data_root(v, info)

    @field_validator("tasks")
    @classmethod
    def _absolute_task_roots(cls, v: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        return {task: resolve_data_root(root, info) for task, root in v.items()}

    def root_for(self, task: str) -> str:
        return self.tasks.get(task, self.root)


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
    perturbations: tuple[str, ...] = ()  # e.g. [typo, swap]: see xscale/perturb.py
    seed: int = 0
    deepspeed_config: str | None = None  # default: the size's config from the size table
    data: DataConfig = Field(default_factory=DataConfig)
    pretrain: PretrainConfig = Field(default_factory=PretrainConfig)
    intermediate: PhaseConfig = Field(default_factory=PhaseConfig)
    target: PhaseConfig = Field(default_factory=PhaseConfig)

    @field_validator("perturbations")
    @classmethod
    def _known_perturbations(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        from xscale.perturb import PERTURBATIONS

        for name in v:
            if name not in PERTURBATIONS:
                raise ValueError(
                    f"unknown perturbation {name!r} (known: {', '.join(PERTURBATIONS)})"
                )
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


def resolve_recipe(value: str | None, info: ValidationInfo) -> str | None:
    """A DeepSpeed recipe is a name from deepspeed_configs/ or a path; paths become absolute."""
    if value is None or _base(info) is None:
        return value
    if "/" in value or os.sep in value or Path(_base(info), value).is_file():
        return absolute(value, _base(info))
    return value


def format_validation_error(err: ValidationError, source: str) -> str:
    """First error of a pydantic ValidationError as `source: key.path: message`."""
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"]) or "<top level>"
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    extra = f" (and {len(err.errors()) - 1} more errors)" if len(err.errors()) > 1 else ""
    return f"{source}: {loc}: {msg}{extra}"


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML file's top-level mapping. Errors are one line naming the file (and line): a missing
    file, bytes that are not UTF-8, invalid YAML, or a key given twice in one mapping (YAML
    would silently keep the last one)."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise XScaleError(f"{p}: no such file" if not p.exists() else f"{p}: not a file")
    try:
        text = p.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        line = p.read_bytes()[: e.start].count(b"\n") + 1
        raise XScaleError(f"{p}: line {line}: not UTF-8 text ({e.reason})") from None
    except OSError as e:
        raise XScaleError(f"{p}: cannot read ({e.strerror})") from None
    try:
        data = yaml.load(text, Loader=_unique_key_loader())
    except _DuplicateKey as e:
        raise XScaleError(f"{p}: line {e.line}: duplicate key {e.key!r}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise XScaleError(f"{p}:{where} invalid YAML: {getattr(e, 'problem', e)}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise XScaleError(f"{p}: expected a mapping of keys at the top level")
    return data


class _DuplicateKey(Exception):
    def __init__(self, key: Any, line: int):
        super().__init__(f"duplicate key {key!r} at line {line}")
        self.key, self.line = key, line


def _unique_key_loader():
    """yaml.SafeLoader that refuses a key given twice in one mapping."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            seen: set = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                try:
                    new = key not in seen
                except TypeError:  # an unhashable key: SafeLoader reports it
                    break
                if not new:
                    raise _DuplicateKey(key, key_node.start_mark.line + 1)
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    return UniqueKeyLoader


def parse(model: type[Strict], data: dict[str, Any], source: str, base: str | Path | None = None):
    """Validate `data` as `model`; relative paths resolve against `base` (see the path rule)."""
    try:
        return model.model_validate(data, context={"base": str(base or Path.cwd())})
    except ValidationError as e:
        raise XScaleError(format_validation_error(e, source)) from None


def load_trial(path: str | Path, overrides: dict[str, Any] | None = None) -> TrialConfig:
    data = read_yaml(path)
    data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return parse(TrialConfig, data, str(path))
