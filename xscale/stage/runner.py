"""Run one stage: pretrain (tiny sizes), intermediate, or target (train + zero-shot evaluation).

    inputs ready?  ->  MLflow stage run (found again by key on a retry)  ->  DeepSpeed phase
    ->  export encoder to model/  ->  evaluate  ->  result.json  ->  COMPLETE (last)

Each stage reads its parent's `model/` folder (or a real size's hub id / local path), so a tiny
size enters intermediate training through the same `from_pretrained` path a real size takes.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from xscale.catalog.sizes import get_size
from xscale.errors import XScaleError
from xscale.graph.lock import FolderLock
from xscale.graph.stage import (
    ATTEMPTS_FILE,
    ERROR_FILE,
    LOCK_FILE,
    MARKER,
    StageSpec,
    check_outputs,
    invalidate,
    is_complete,
    mark_complete,
    read_result,
    stage_dir,
)
from xscale.runtime import say
from xscale.stage.context import StageContext
from xscale.tracking.client import Tracker, TrackingInfo
from xscale.train.distributed import init_distributed, rank_world


def set_threads(spec: StageSpec) -> None:
    """One worker uses the CPUs its size asks for (Ray sets OMP_NUM_THREADS for its trials).
    torch's default of every core oversubscribes the machine when stages run side by side."""
    if "OMP_NUM_THREADS" in os.environ:
        n = int(os.environ["OMP_NUM_THREADS"] or 1)
    else:
        n = get_size(spec.model).cpus_per_worker
    import torch

    torch.set_num_threads(max(1, n))


def run_stage(
    spec: StageSpec,
    output_dir: Path,
    tracking: TrackingInfo,
    report=None,
    eval_rounds: int = 1,
) -> dict:
    """Run `spec` unless its folder is already complete; returns its result.

    `report(metrics)`, when given, receives the English dev metrics `eval_rounds` times during
    training (Ray Tune's ASHA stops unpromising stages on them)."""

    if not Path(output_dir).is_absolute():  # trial processes run in working dirs of their own
        raise ValueError(f"{spec.label}: output_dir {output_dir} must be absolute here")
    out = stage_dir(output_dir, spec)
    if is_complete(out):
        return read_result(out)
    lock = None
    if _launch_rank() == 0:  # the process that writes the stage folder owns it while it runs
        out.mkdir(parents=True, exist_ok=True)
        lock = FolderLock(out / LOCK_FILE, f"stage {spec.label} ({out})")
        lock.acquire(say=lambda line: say(spec.label, line))
    try:
        return _run_locked(spec, Path(output_dir), out, tracking, report, eval_rounds)
    finally:
        if lock is not None:
            lock.release()


def _launch_rank() -> int:
    """This process's rank before `init_distributed` (a launcher's RANK; 0 for a lone run)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return int(os.environ.get("RANK", "0") or 0)


def _verify_parent(spec: StageSpec, output_dir: Path) -> None:
    """A parent's outputs (and those of the stage whose weights it starts from, when that is
    another) are hashed against its marker before this stage builds on them; a mismatch sets
    that stage back to not complete, so the next run of the sweep re-runs it."""
    for key in dict.fromkeys(k for k in (spec.parent, spec.weights_stage) if k is not None):
        parent = Path(output_dir) / "stages" / key
        reason = check_outputs(parent, full=True)
        if reason is not None:
            invalidate(parent, reason)
            raise XScaleError(
                f"{spec.label}: parent stage {key}: its outputs do not match their record"
                f" ({reason}); it is marked not complete and re-runs on the next run of the sweep"
            )


def _run_body(ctx: StageContext) -> dict:
    """The stage's own work, by kind (a subset stage is an intermediate stage on its map)."""
    spec = ctx.spec
    if spec.kind == "pretrain":
        from xscale.stage.pretrain import run_pretrain

        return run_pretrain(ctx)
    if spec.kind == "cartography" or spec.subset is not None:
        from xscale.stage.cartography import run_cartography, run_subset

        return run_cartography(ctx) if spec.kind == "cartography" else run_subset(ctx)
    from xscale.stage.finetune import run_finetune

    return run_finetune(ctx)


def _run_locked(spec, output_dir: Path, out: Path, tracking, report, eval_rounds) -> dict:
    if (out / MARKER).exists():
        reason = check_outputs(out)
        if reason is None:  # completed by another process while this one waited for the lock
            return read_result(out)
        say(spec.label, f"re-running: its outputs do not match their record ({reason})")
        invalidate(out, reason)
    t0 = time.perf_counter()
    if _launch_rank() == 0:
        _verify_parent(spec, output_dir)
    set_threads(spec)
    init_distributed()
    rank, world = rank_world()
    tracker = run_id = None
    if rank == 0:
        (out / "spec.json").write_text(json.dumps(spec.model_dump(mode="json"), indent=2))
        with open(out / ATTEMPTS_FILE, "a") as f:  # one line per execution, for status/tests
            f.write(json.dumps({"time": time.time(), "pid": os.getpid(), "world": world}) + "\n")
        tracker = Tracker(tracking.uri, tracking.experiment, tracking.artifact_root)
        run_id = tracker.stage_run(spec.key, spec.kind, spec.label, tracking.parent_run_id)
    ctx = StageContext(spec, output_dir, out, tracker, run_id, report, eval_rounds)
    try:
        result = _run_body(ctx)
        if spec.alignment is not None and rank == 0:
            from xscale.stage.alignment import measure_stage

            measure_stage(ctx, result)
    except BaseException as e:
        if rank == 0:
            (out / ERROR_FILE).write_text(f"{type(e).__name__}: {e}\n")
        if tracker is not None:
            tracker.finish(run_id, "FAILED")
        raise
    if rank == 0:
        result["mlflow_run_id"] = run_id
        result["stage_seconds"] = time.perf_counter() - t0
        (out / ERROR_FILE).unlink(missing_ok=True)
        mark_complete(out, result)
        # a kill from here on leaves a complete stage whose run may still say RUNNING:
        # `Tracker.reconcile` finishes it on the next run
        for ckpt in out.glob("ckpt*"):  # ckpt/, or ckpt-<lang>/ per in-language model
            shutil.rmtree(ckpt, ignore_errors=True)
        tracker.log_artifact(run_id, out / "result.json")
        tracker.finish(run_id, "FINISHED")
    return result
