"""Run one stage: pretrain (tiny sizes), intermediate, or target (train + zero-shot evaluation).

    inputs ready?  ->  the stage's tracking journal (its MLflow run, found again by key on a
    retry, uploaded in the background)  ->  DeepSpeed phase  ->  export encoder to model/
    ->  evaluate  ->  result.json  ->  COMPLETE (last)  ->  the run FINISHED

Each stage reads its parent's `model/` folder (or a real size's hub id / local path), so a tiny
size enters intermediate training through the same `from_pretrained` path a real size takes.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import time
from pathlib import Path

from xscale.errors import XScaleError
from xscale.graph.lock import FolderLock
from xscale.graph.stage import (
    ATTEMPTS_FILE,
    ERROR_FILE,
    LOCK_FILE,
    MARKER,
    StageResult,
    StageSpec,
    check_outputs,
    invalidate,
    is_complete,
    mark_complete,
    read_result,
    stage_dir,
    stage_path,
)
from xscale.runtime import say
from xscale.stage.context import StageContext
from xscale.tracking.client import PARENT_UID, RUN_KIND, STAGE_KEY, STAGE_KIND, TrackingInfo
from xscale.tracking.journal import JOURNAL, RunRef
from xscale.tracking.upload import RunLog
from xscale.train.distributed import init_distributed, rank_world


def set_threads(spec: StageSpec) -> None:
    """torch's intra-op threads: OMP_NUM_THREADS when set (Ray sets it in every trial to the
    CPUs the trial holds, so stages side by side never oversubscribe the machine), else every
    core this process may use: a lone `xscale run` has the machine to itself. On a shared
    machine set OMP_NUM_THREADS (or OMP_WAIT_POLICY=PASSIVE): OpenMP threads that spin while
    other processes hold the cores made a 2-thread tiny-m step 5x slower (bench/RESULTS.md)."""
    if os.environ.get("OMP_NUM_THREADS"):
        n = int(os.environ["OMP_NUM_THREADS"])
    else:
        n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    import torch

    torch.set_num_threads(max(1, n or 1))


def run_stage(
    spec: StageSpec,
    output_dir: Path,
    tracking: TrackingInfo,
    report=None,
    eval_rounds: int = 1,
) -> StageResult:
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


def node_id() -> str:
    """The Ray node this process runs on (its hostname outside Ray)."""
    if "ray" in sys.modules:
        import ray

        if ray.is_initialized():
            try:
                return ray.get_runtime_context().get_node_id()
            except Exception:  # noqa: BLE001 - a driver without a node: fall through
                pass
    return socket.gethostname()


def rank_nodes() -> list[str]:
    """The node of every rank, in rank order (a collective: every rank must call it)."""
    import torch.distributed as dist

    mine = node_id()
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return [mine]
    nodes: list = [None] * dist.get_world_size()
    dist.all_gather_object(nodes, mine)
    return [str(n) for n in nodes]


def _verify_parent(spec: StageSpec, output_dir: Path) -> None:
    """A parent's outputs (and those of the stage whose weights it starts from, when that is
    another) are hashed against its marker before this stage builds on them; a mismatch sets
    that stage back to not complete, so the next run of the sweep re-runs it."""
    for key in dict.fromkeys(k for k in (spec.parent, spec.weights_stage) if k is not None):
        parent = stage_path(output_dir, key)
        reason = check_outputs(parent, full=True)
        if reason is not None:
            invalidate(parent, reason)
            raise XScaleError(
                f"{spec.label}: parent stage {key}: its outputs do not match their record"
                f" ({reason}); it is marked not complete and re-runs on the next run of the sweep"
            )


def _run_body(ctx: StageContext) -> StageResult:
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


def _run_locked(spec, output_dir: Path, out: Path, tracking, report, eval_rounds) -> StageResult:
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
    nodes = rank_nodes()  # every rank takes part
    runlog = None
    if rank == 0:
        (out / "spec.json").write_text(json.dumps(spec.model_dump(mode="json"), indent=2))
        attempt = {"time": time.time(), "pid": os.getpid(), "world": world, "nodes": nodes}
        with open(out / ATTEMPTS_FILE, "a") as f:  # one line per execution, for status/tests
            f.write(json.dumps(attempt) + "\n")
        runlog = stage_runlog(spec, out, tracking)
    ctx = StageContext(spec, output_dir, out, runlog, report, eval_rounds)
    try:
        result = _run_body(ctx)
        if spec.alignment is not None and rank == 0:
            from xscale.stage.alignment import measure_stage

            measure_stage(ctx, result)
    except BaseException as e:
        if rank == 0:
            (out / ERROR_FILE).write_text(f"{type(e).__name__}: {e}\n")
        if runlog is not None:
            runlog.finish("FAILED")
            runlog.close()
        raise
    if rank == 0:
        result.mlflow_run_id = runlog.wait_for_run()
        result.stage_seconds = time.perf_counter() - t0
        (out / ERROR_FILE).unlink(missing_ok=True)
        mark_complete(out, result)
        # a kill from here on leaves a complete stage whose run may still say RUNNING:
        # `Tracker.reconcile` finishes it on the next run
        for ckpt in out.glob("ckpt*"):  # ckpt/, or ckpt-<lang>/ per in-language model
            shutil.rmtree(ckpt, ignore_errors=True)
        runlog.artifact(out / "result.json")
        runlog.finish("FINISHED")
        runlog.close()
    return result


def stage_runlog(spec: StageSpec, out: Path, tracking: TrackingInfo) -> RunLog:
    """The stage's MLflow run, through its journal `<stage>/tracking.jsonl`: nested under the
    sweep's run, tagged with the stage's key and kind."""
    ref = RunRef(
        uri=tracking.uri,
        experiment=tracking.experiment,
        tag=STAGE_KEY,
        value=spec.key,
        name=spec.label,
        tags={STAGE_KIND: spec.kind, RUN_KIND: "stage"},
        artifact_root=tracking.artifact_root,
        parent_tag=PARENT_UID if tracking.parent_uid else None,
        parent_value=tracking.parent_uid,
    )
    return RunLog(out / JOURNAL, ref, say=lambda line: say(spec.label, line))
