"""Typed hyperparameters of the phases (pretrain, intermediate, target) and the data section.

A phase's fields are validated once, when a sweep or trial file is loaded; every stage carries its
phase as one of these frozen models."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from xscale.errors import XScaleError
from xscale.sweep.io import DATA_ROOT_NAMES, resolve_data_root

# the name a sweep may give an intermediate entry (a mixture, a multilingual task, a subset)
ENTRY_NAME_PATTERN = r"^[A-Za-z0-9_.:+-]+$"


# the largest magnitude any number of a sweep or trial file may have (fields with a meaning
# bound them tighter): past it a count, step or size is a typo, and some overflow C integers
MAX_NUMBER = 10**12


def _in_range(value):
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        if abs(value) > MAX_NUMBER:
            raise ValueError(f"{value!r} is out of range (at most {MAX_NUMBER:.0e} in magnitude)")
    elif isinstance(value, list | tuple):
        for v in value:
            _in_range(v)
    return value


class Strict(BaseModel):
    # every float of a sweep or trial file finite (`.inf` / `.nan` name their key), every
    # number within MAX_NUMBER
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _numbers_in_range(cls, value):
        return _in_range(value)


class PhaseConfig(Strict):
    """Hyperparameters of one training phase (intermediate or target)."""

    learning_rate: float = Field(2e-5, gt=0, le=10)
    batch_size: int = Field(32, ge=1)
    epochs: float = Field(3.0, gt=0, le=10_000)
    max_steps: int | None = Field(None, ge=1)  # caps the steps that `epochs` implies
    max_length: int = Field(128, ge=8)
    warmup_ratio: float = Field(0.1, ge=0, le=1)
    weight_decay: float = Field(0.01, ge=0, le=100)
    grad_clip: float = Field(1.0, ge=0)
    checkpoint_every: int = Field(0, ge=0)  # steps between resumable checkpoints; 0 = none
    max_train_examples: int | None = Field(None, ge=1)
    max_eval_examples: int | None = Field(None, ge=1)  # per language
    log_every: int = Field(10, ge=1)
    # Training batches of examples of similar length (shuffled within and across buckets; the
    # order is still a pure function of seed and epoch): far less padding computed. Off: a plain
    # seeded permutation, as HF Trainer samples without `group_by_length`.
    group_by_length: bool = True
    # Continued multilingual MLM during training (the paper's alternative to compare against):
    # the share of steps spent on MLM over <data root>/pretrain/<lang>.txt; 0 = off.
    continued_mlm: float = Field(0.0, ge=0, lt=1)
    mlm_probability: float = Field(0.15, gt=0, lt=1)  # share of tokens masked (pretrain, MLM steps)
    mlm_languages: tuple[str, ...] = ("en", "de", "es", "fr", "zh")
    # Retrieval targets (BUCC, Tatoeba) are not trained: sentence embeddings are hidden states
    # of one layer, pooled. Default (None): as XTREME's scripts run each task, BUCC the <s>
    # state of layer 7, Tatoeba the mean of layer 7 (13 for 24 layers); see tasks/retrieval.py.
    retrieval_layer: int | None = Field(None, ge=0)
    retrieval_pooling: Literal["mean", "cls"] | None = None


class PretrainConfig(PhaseConfig):
    """MLM pretraining of a tiny size: tokenizer training, then masked-LM steps."""

    learning_rate: float = Field(1e-3, gt=0, le=10)
    epochs: float = Field(1.0, gt=0, le=10_000)
    languages: tuple[str, ...] = ("en", "de", "es", "fr", "zh")  # the first is the pivot
    max_lines_per_language: int | None = Field(None, ge=1)
    # What to pretrain on: "text" = <data root>/pretrain/<lang>.txt; or a task with parallel
    # training rows (xnli, pawsx): the sentences of its training split in each language, e.g.
    # the training buckets of ../shared/data's real XNLI files (never its dev or test rows).
    corpus: str = Field("text", min_length=1)
    # Tokenizer pieces; default: the size table's (a fixed vocabulary keeps parameter counts
    # exact). Real text needs more: every distinct character takes a piece (zh: thousands).
    vocab_size: int | None = Field(None, ge=100, le=300_000)
    # Weight of the translation-ranking loss on line-parallel text (xscale/stage/pretrain.py);
    # 0 = MLM only. It gives tiny models the cross-lingual alignment real sizes get from scale.
    alignment: float = Field(0.0, ge=0, le=1000)
    alignment_temperature: float = Field(0.05, gt=0)
    # One pretraining run per seed (its seed), each seed's chain starting from its own: the
    # seeds then vary the checkpoint as well as fine-tuning, so intervals over seeds include
    # the pretraining variance a size effect is measured against. Default: one run (seed 0)
    # shared by every seed, as a released checkpoint is. Not part of a stage's hyperparameters.
    per_seed: bool = False


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
