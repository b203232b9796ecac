"""The typed context a stage body runs in, and its DeepSpeed config for this world size.

runner.run_stage  --builds-->  StageContext(spec, folders, tracking, Tune reporting)
                  --passes-->  pretrain.run_pretrain(ctx) | finetune.run_finetune(ctx)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xscale.catalog.cluster import micro_and_accumulation
from xscale.catalog.recipes import load_ds_config
from xscale.catalog.sizes import get_size
from xscale.graph.stage import StageSpec, write_stage_progress
from xscale.runtime import say
from xscale.stage.inputs import model_source
from xscale.tasks import whole_batch
from xscale.tasks.registry import TASKS
from xscale.tracking.upload import RunLog
from xscale.train.distributed import device_type, rank_world
from xscale.train.loop import TrainResult, build_engine, train


@dataclass
class StageContext:
    """Everything a stage body needs besides torch: its spec, its folder and the sweep's, where
    it logs (None on ranks other than 0), and how it reports to Ray Tune's scheduler."""

    spec: StageSpec
    output_dir: Path  # the sweep's folder (parents' outputs are under its stages/)
    out: Path  # this stage's folder
    runlog: RunLog | None = None  # the stage's MLflow run (rank 0 only)
    report: Callable[[dict], None] | None = None  # English dev metrics, `eval_rounds` times
    eval_rounds: int = 1
    # Hooks into finetune.fit (stage/cartography.py): `train_examples(task, examples)` sees,
    # and may restrict, each task's training examples; `observe(step, total, engine, data,
    # collates)` runs after every training step.
    train_examples: Callable[[Any, list], list] | None = None
    observe: Callable[..., None] | None = None

    @property
    def hp(self):
        return self.spec.hparams

    @property
    def rank0(self) -> bool:
        return rank_world()[0] == 0

    @property
    def source(self) -> str:
        return model_source(self.spec, self.output_dir)

    def log_params(self, params: dict) -> None:
        if self.runlog is not None:
            self.runlog.params(params)

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        if self.runlog is not None:
            self.runlog.metrics(metrics, step)

    def log_artifact(self, path: Path) -> None:
        if self.runlog is not None:
            self.runlog.artifact(path)

    def progress(self, step: int, total: int, loss: float, phase: str = "") -> None:
        """The running phase's position in `<stage>/progress.json` (for `xscale status`)."""
        if self.rank0:
            write_stage_progress(self.out, step, total, loss, phase)

    def train(
        self,
        model,
        total: int,
        get_batch: Callable[[int], tuple[dict, int]],
        ds_config: dict,
        *,
        tag: str = "",
        what: str = "loss",
        on_step: Callable[[Any, int, int], None] | None = None,
    ) -> tuple[Any, TrainResult]:
        """The training every stage kind shares (pretraining, fit, a map run): the DeepSpeed
        engine, `total` steps of `get_batch` (resumed from `ckpt<tag>/`), the loss and speed
        on the terminal, in `progress.json` and in the stage's run (`train<tag>.loss`, ...).
        `on_step(engine, step, total)` runs after every step. Returns (engine, result)."""
        label = self.spec.label + tag
        engine = build_engine(model, self.hp, total, ds_config)

        def log(step, steps, loss, eps):
            say(label, f"step {step}/{steps} {what} {loss:.4f} {eps:.1f} ex/s")
            self.progress(step, steps, loss, tag)
            self.log_metrics({f"train{tag}.loss": loss, f"train{tag}.examples_per_s": eps}, step)

        hook = None if on_step is None else (lambda step, steps: on_step(engine, step, steps))
        ckpt = self.out / f"ckpt{tag.replace(' ', '-')}"
        return engine, train(engine, total, get_batch, self.hp, ckpt, log, hook)


def micro_batching(spec: StageSpec, world: int) -> tuple[int, int]:
    """(micro batch per worker, gradient accumulation steps) of the stage at this world size:
    the sweep's `resources.<size>.micro_batch_size`, else the size table's."""
    cap = spec.micro_batch_size or get_size(spec.model).micro_batch_size
    if whole_batch(TASKS[t] for t in spec.tasks if t in TASKS):
        cap = None  # in-batch negatives: a micro batch would change the loss, not split it
    return micro_and_accumulation(spec.hparams.batch_size, world, cap)


def ds_config_for(spec: StageSpec) -> dict:
    """The stage's DeepSpeed config for this world size (the global batch split over ranks, and
    each rank's share into micro batches with gradient accumulation)."""
    _, world = rank_world()
    micro, accumulation = micro_batching(spec, world)
    return load_ds_config(
        spec.deepspeed_config,
        micro_batch_size=micro,
        grad_accum=accumulation,
        grad_clip=spec.hparams.grad_clip,
        device=device_type(),
        world_size=world,
    )
