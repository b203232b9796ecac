"""One phase's training loop on a DeepSpeed engine, readable top to bottom.

    model + AdamW + linear warm-up/decay  --deepspeed.initialize-->  engine
    for step in steps:   batch -> engine(batch) -> engine.backward(loss) -> engine.step()
                         (the next batches are built meanwhile, in a thread: batching.Prefetcher)
    every `checkpoint_every` steps: engine.save_checkpoint (resume starts from the last one)

The batch order is a pure function of (seed, epoch), grouped by length by default
(`train/batching.py`), so a phase resumed from a checkpoint sees exactly the batches it would
have seen. Under several workers each rank takes its slice of the global batch. `predict` runs
evaluation batches sorted by length, without autograd, and returns predictions in input order.
"""

from __future__ import annotations

import math
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch
import torch.distributed as dist

from xscale.errors import XScaleError
from xscale.train import cpu_speed
from xscale.train.batching import EpochOrder, Prefetcher, feature_length, length_order
from xscale.train.distributed import rank_world
from xscale.train.steps import steps_per_epoch, total_steps


@dataclass
class TrainResult:
    steps: int
    resumed_from: int
    final_loss: float
    seconds: float
    examples_per_s: float


class TrainHparams(Protocol):
    """What the loop reads of a phase's hyperparameters (`sweep.phases.TrainHparams` has them)."""

    learning_rate: float
    batch_size: int
    epochs: float
    max_steps: int | None
    warmup_ratio: float
    weight_decay: float
    log_every: int
    checkpoint_every: int
    group_by_length: bool


def plan_steps(n_examples: int, hp: TrainHparams) -> tuple[int, int]:
    """(steps per epoch, total steps) for a global batch of hp.batch_size."""
    per_epoch = steps_per_epoch(n_examples, hp.batch_size)
    return per_epoch, total_steps(per_epoch, hp.epochs, hp.max_steps)


def build_engine(model, hp: TrainHparams, total_steps: int, ds_config: dict):
    import deepspeed

    if not torch.cuda.is_available():
        # torch's CPU dropout draws one random number per element, sequentially: up to a sixth
        # of a tiny model's step; cpu_speed draws one per four elements (bench/RESULTS.md)
        cpu_speed.for_cpu(model)
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim < 2 or "LayerNorm" in name or "layer_norm" in name else decay).append(p)
    # On CPU the fused AdamW kernel steps a tiny model's parameters 5x faster than the default
    # (bench/RESULTS.md); on GPU DeepSpeed's ZeRO wrappers get torch's default implementation.
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": hp.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=hp.learning_rate,
        fused=not torch.cuda.is_available() or None,
    )
    warmup = int(total_steps * hp.warmup_ratio)

    def schedule(step: int) -> float:  # linear warm-up, then linear decay to 0
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    engine, _, _, _ = deepspeed.initialize(
        model=model, optimizer=optimizer, lr_scheduler=scheduler, config=ds_config
    )
    return engine


def micro_batches(batch: dict, parts: int) -> list[tuple[dict, float]]:
    """`batch` split along its first dimension into `parts` micro batches (a rank's share of a
    global batch, for gradient accumulation), each with its loss weight: 1, or 0 for a copy
    that only pads the count when the batch has fewer examples than parts."""
    if parts == 1:
        return [(batch, 1.0)]
    n = next(v.shape[0] for v in batch.values() if torch.is_tensor(v) and v.dim() > 0)
    chunks = []
    for idx in torch.arange(n).tensor_split(min(parts, n)):
        lo, hi = int(idx[0]), int(idx[-1]) + 1
        chunks.append(
            {
                k: v[lo:hi] if torch.is_tensor(v) and v.dim() > 0 and v.shape[0] == n else v
                for k, v in batch.items()
            }
        )
    out = [(c, 1.0) for c in chunks]
    out += [(chunks[-1], 0.0)] * (parts - len(chunks))
    return out


def _to_device(batch: dict, device) -> dict:
    return {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}


def single_task_batches(
    features: list[dict], collate: Callable[[list[dict], int], dict], hp: TrainHparams, seed: int
):
    """(get_batch, total steps) for one task: seeded epochs over `features` (grouped by length
    unless `hp.group_by_length` is off); `collate(features, step)` builds the batch."""
    rank, world = rank_world()
    lengths = [feature_length(f) for f in features] if hp.group_by_length else None
    order = EpochOrder(len(features), hp.batch_size, seed, lengths)
    _, total = plan_steps(len(features), hp)

    def get_batch(step: int):
        idx = order(step)
        return collate([features[i] for i in idx[rank::world] or idx[:1]], step), len(idx)

    return get_batch, total


def train(
    engine,
    total: int,
    get_batch: Callable[[int], tuple[dict, int]],
    hp: TrainHparams,
    ckpt_dir: Path | None,
    log: Callable[[int, int, float, float], None],
    on_step: Callable[[int, int], None] | None = None,
) -> TrainResult:
    """Run steps [start, total) on `engine`; resumes from `ckpt_dir` when it holds a checkpoint.

    `get_batch(step)` gives this rank's batch and the global batch's example count; it must be
    a pure function of `step`, so a resumed phase sees exactly the batches it would have seen.
    `log(step, total, loss, examples_per_s)` is called every `hp.log_every` steps and
    `on_step(step, total)` after every step (e.g. for intermediate evaluation and reports).
    """
    start = 0
    if ckpt_dir is not None and (ckpt_dir / "latest").is_file():
        check_checkpoint(ckpt_dir)  # DeepSpeed unpickles with weights_only=False
        _, client = engine.load_checkpoint(str(ckpt_dir))
        start = int((client or {}).get("step", 0))

    engine.train()
    t0, seen, loss_value = time.perf_counter(), 0, float("nan")
    window_loss, window_n = 0.0, 0
    batches = Prefetcher(get_batch, range(start, total))
    try:
        accumulation = int(engine.gradient_accumulation_steps())
        for step, (batch, n) in batches:
            step_loss = 0.0
            # DeepSpeed steps the optimizer (and the schedule) once per `accumulation` calls
            # and scales each backward by 1 / accumulation
            for micro, weight in micro_batches(batch, accumulation):
                loss, _ = engine(_to_device(micro, engine.device))
                engine.backward(loss * weight)
                engine.step()
                step_loss += loss.item() * weight / accumulation
            if not math.isfinite(step_loss):  # NaN or inf: nothing after it would be a result
                raise XScaleError(
                    f"the training loss became {step_loss} at step {step + 1} of {total}: lower"
                    " this phase's learning_rate (or set grad_clip) in the sweep file and re-run"
                )
            seen += n
            window_loss += step_loss
            window_n += 1
            done = step + 1
            if done % hp.log_every == 0 or done == total:
                loss_value = window_loss / window_n
                window_loss, window_n = 0.0, 0
                log(done, total, loss_value, seen / max(1e-9, time.perf_counter() - t0))
            if ckpt_dir is not None and hp.checkpoint_every and done % hp.checkpoint_every == 0:
                save_checkpoint(engine, ckpt_dir, done)
            if on_step is not None:
                on_step(done, total)
    finally:
        batches.close()
    seconds = time.perf_counter() - t0
    return TrainResult(total, start, loss_value, seconds, seen / max(1e-9, seconds))


# Classes DeepSpeed (0.18) pickles into its optimizer states, beyond what torch.load's
# weights_only unpickler allows: plain data holders, no code runs when they are rebuilt.
CHECKPOINT_GLOBALS = frozenset(
    {
        "deepspeed.runtime.fp16.loss_scaler.LossScaler",
        "deepspeed.runtime.fp16.loss_scaler.DynamicLossScaler",
        "deepspeed.runtime.zero.config.ZeroStageEnum",
        "deepspeed.utils.tensor_fragment.fragment_address",
    }
)


def check_checkpoint(ckpt_dir: Path) -> None:
    """Refuse a resume checkpoint that could run code when loaded.

    DeepSpeed loads ``ckpt/<tag>/*.pt`` with ``torch.load(weights_only=False)``, so a file
    planted in an output folder someone else can write would run as this process. Before it
    does, every file's pickle is scanned without being executed
    (``torch.serialization.get_unsafe_globals_in_checkpoint``): anything it references beyond
    torch's weights-only allowlist and `CHECKPOINT_GLOBALS` refuses the resume, as does a tag
    in ``latest`` that is not a step folder of `ckpt_dir`."""
    ckpt_dir = Path(ckpt_dir)
    tag = (ckpt_dir / "latest").read_text(encoding="utf-8", errors="replace").strip()
    if not re.fullmatch(r"step\d+", tag) or not (ckpt_dir / tag).is_dir():
        raise XScaleError(
            f"{ckpt_dir / 'latest'}: names {tag!r}, not a checkpoint of this stage (step<N>/);"
            f" delete {ckpt_dir} to start the stage over"
        )
    for f in sorted((ckpt_dir / tag).iterdir()):
        if f.suffix != ".pt":
            continue
        try:
            unsafe = set(torch.serialization.get_unsafe_globals_in_checkpoint(str(f)))
        except Exception as e:  # noqa: BLE001 - not a torch file at all
            raise XScaleError(f"{f}: not a readable checkpoint ({type(e).__name__})") from None
        if unsafe - CHECKPOINT_GLOBALS:
            raise XScaleError(
                f"{f}: the checkpoint references {', '.join(sorted(unsafe - CHECKPOINT_GLOBALS))},"
                f" which xscale does not unpickle (it could run code); delete {ckpt_dir} to"
                " start the stage over"
            )


def save_checkpoint(engine, ckpt_dir: Path, step: int) -> None:
    """A resumable checkpoint; only the newest is kept."""
    tag = f"step{step}"
    engine.save_checkpoint(str(ckpt_dir), tag=tag, client_state={"step": step})
    rank, _ = rank_world()
    if rank == 0:
        for old in ckpt_dir.glob("step*"):
            if old.is_dir() and old.name != tag:
                shutil.rmtree(old, ignore_errors=True)


def predict(engine, features: list[dict], collate, predict_fn, batch_size: int) -> list:
    """Predictions for every feature, in input order, without autograd. Batches are formed
    longest first, so each pads to similar lengths.

    Over several ranks each rank predicts every world-th feature of that order and the
    predictions are gathered (a stage of 8 workers evaluates each example once, not 8 times).
    Every rank runs the same number of forward passes (a rank out of examples repeats one
    and drops it): ZeRO-3 gathers parameters in each forward, a collective. Under ZeRO-3
    `no_grad` rather than `inference_mode`: its parameter gathering must not leave inference
    tensors behind for training."""
    engine.eval()
    zero3 = getattr(engine, "zero_optimization_stage", lambda: 0)() == 3
    rank, world = rank_world()
    order = length_order(features)
    mine = order[rank::world]
    most = -(-len(order) // world)  # the largest rank's share
    batches = -(-most // batch_size)
    got: list[tuple[int, object]] = []
    with torch.no_grad() if zero3 else torch.inference_mode():
        for i in range(batches):
            idx = mine[i * batch_size : (i + 1) * batch_size]
            run = idx or order[:1]  # keeps the ranks' forward passes in step
            batch = _to_device(collate([features[j] for j in run]), engine.device)
            _, logits = engine(batch)
            preds = predict_fn(logits, batch)
            if idx:
                got.extend(zip(idx, preds, strict=True))
    engine.train()
    if world > 1:
        parts: list = [None] * world
        dist.all_gather_object(parts, got)
        got = [item for part in parts for item in part]
    out: list = [None] * len(features)
    for j, p in got:
        out[j] = p
    return out
