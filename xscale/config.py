"""Typed configuration: a trial (one pretrain -> intermediate -> target chain) and its phases.

Unknown keys are rejected and every error names the file and the key path, e.g.
``trial.yaml: intermediate.learning_rat: extra inputs are not permitted``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from xscale.errors import XScaleError


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
    languages: tuple[str, ...] = ("en", "de", "es", "fr", "zh")
    max_lines_per_language: int | None = Field(None, ge=1)


class DataConfig(Strict):
    """Where task data comes from: `hub` (Hugging Face ids), `fixtures` (shipped with xscale),
    or a folder in XTREME's download layout (`<root>/xtreme/<task>`, `<root>/intermediate/<task>`,
    `<root>/pretrain/<lang>.txt`). `tasks` overrides the root per task name."""

    root: str = "hub"
    tasks: dict[str, str] = Field(default_factory=dict)

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
    p = Path(path)
    if not p.is_file():
        raise XScaleError(f"{p}: no such file")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise XScaleError(f"{p}:{where} invalid YAML: {getattr(e, 'problem', e)}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise XScaleError(f"{p}: expected a mapping of keys at the top level")
    return data


def parse(model: type[Strict], data: dict[str, Any], source: str):
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise XScaleError(format_validation_error(e, source)) from None


def load_trial(path: str | Path, overrides: dict[str, Any] | None = None) -> TrialConfig:
    data = read_yaml(path)
    data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return parse(TrialConfig, data, str(path))
