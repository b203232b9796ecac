"""What a stage reads, decided from its spec alone (no torch: preflight uses these at plan time):
where its starting weights are, which languages it trains on and which it evaluates."""

from __future__ import annotations

import json
from pathlib import Path

from xscale import data as xdata
from xscale.catalog.sizes import get_size
from xscale.errors import XScaleError
from xscale.graph.stage import StageSpec, stage_path
from xscale.tasks.base import Task


def model_source(spec: StageSpec, output_dir: Path) -> str:
    """Where this stage's starting weights come from (a stage's model/, or the size's own)."""
    if spec.weights_stage is not None:
        return str(stage_path(output_dir, spec.weights_stage) / "model")
    size = get_size(spec.model)
    if spec.model_path:
        return spec.model_path
    if size.hub_id is None:
        raise ValueError(f"{spec.label}: tiny size {spec.model} needs a pretrain stage's weights")
    return size.hub_id


def _intermediate_spec(spec: StageSpec, output_dir: Path) -> dict | None:
    """The chain's intermediate stage's spec.json ({} without one; None when unreadable)."""
    if spec.intermediate_task == "none" or spec.parent is None:
        return {}
    try:
        parent = json.loads((stage_path(output_dir, spec.parent) / "spec.json").read_text())
    except (OSError, ValueError):
        return None
    return parent if parent.get("kind") == "intermediate" else {}


def intermediate_languages(spec: StageSpec, output_dir: Path) -> str:
    """The training languages of the chain's intermediate stage (`en`, or `de+en+fr` for a
    multilingual one; `none` without one), read from the parent stage's spec.json: target runs
    log it, so the analysis can set English intermediate tasks against multilingual ones."""
    parent = _intermediate_spec(spec, output_dir)
    if parent is None:
        return "unknown"
    return str(parent.get("train_languages", "en")) if parent else "none"


def intermediate_data(spec: StageSpec, output_dir: Path) -> str:
    """The tasks whose data the chain's intermediate stage trained on (`squad_tt`, `mnli+qqp`
    for a mixture; `none` without one): the analysis flags a target whose own data they are."""
    parent = _intermediate_spec(spec, output_dir)
    if parent is None:
        return "unknown"
    if not parent:
        return "none"
    return "+".join(parent.get("mixture") or [parent.get("task") or "none"])


def train_languages(spec: StageSpec, task: Task) -> list[str]:
    """The languages a stage trains on, from its `train_languages` mode (see finetune.py)."""
    mode = spec.train_languages
    if mode == "en":
        return ["en"]
    root = spec.root_for(task.name)
    have = xdata.available_languages(task, root, "train")
    if mode in ("all", "in-language"):
        return have
    wanted = mode.split("+")
    missing = [lang for lang in wanted if lang not in have]
    if missing:
        raise XScaleError(
            f"{task.name}: no training data for {', '.join(missing)} under {root}"
            f" (available: {', '.join(have) or 'none'})"
        )
    return wanted


def eval_languages(spec: StageSpec, task: Task) -> list[str]:
    have = xdata.available_languages(task, spec.data_root, "test")
    if spec.eval_languages is None:
        return have
    return [lang for lang in spec.eval_languages if lang in have]
