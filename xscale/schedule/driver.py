"""The sweep's driver (`xscale sweep`): preflight, the output folder's lock, Ray, the MLflow
parent run and its catch-up, the one Tune run (schedule/tune.py), the summary line.

    run_study(cfg, file, address)
      check output folder + data roots -> expand -> preflight (nothing written yet)
      SWEEP.lock (one sweep per folder) -> Ray (local or --address; MLflow imported meanwhile)
      -> sweep.json -> journals of earlier runs uploaded -> the sweep's MLflow run
      -> run_sweep (progress display) -> the run FINISHED/FAILED -> summary, exit code
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

from xscale.errors import StorageError, XScaleError
from xscale.graph.expand import data_train_size, expand
from xscale.graph.lock import FolderLock
from xscale.graph.manifest import check_folder_owner, write_manifest
from xscale.graph.plan import disk_need
from xscale.graph.selection import verify_reuse
from xscale.graph.stage import KINDS, STAGES, is_complete, stage_path
from xscale.runtime import verbosity
from xscale.schedule.progress import SweepProgress
from xscale.schedule.tune import (
    check_resources,
    log,
    plan_counts,
    run_sweep,
    start_ray,
    sweep_resources,
)
from xscale.stage.preflight import preflight_graph
from xscale.sweep.io import check_output_dir, check_tracking_store, existing_ancestor
from xscale.sweep.phases import check_data_roots
from xscale.sweep.schema import SweepConfig
from xscale.tracking.client import TrackingInfo, import_in_background
from xscale.tracking.upload import catch_up, open_parent, pending_line, sync_folder

SWEEP_LOCK = "SWEEP.lock"  # held by the driver of the sweep running on the folder


class Interrupts:
    """SIGINT and SIGTERM while the sweep runs: the first stops the Tune run gracefully (as
    Tune's own Ctrl-C does, through its SIGUSR1 handler: running stages are stopped and resume
    from their checkpoints on the next run) and is remembered, so the driver says "interrupted"
    and exits 128 + the signal's number, not "failed"; a second one ends the process at once.
    Installed after Ray has started, so Ray's own SIGTERM handler (a C++ stack dump on the
    terminal) never sees the signal."""

    def __init__(self, name: str):
        self.name, self.signum, self._old = name, None, {}

    def __enter__(self):
        os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"  # ours stands in for Tune's
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)
        return False

    def _handle(self, signum, frame):
        if self.signum is not None:  # the second: now
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        self.signum = signum
        log(
            f"{self.name}: {signal.Signals(signum).name}: stopping the running stages (they"
            " resume on the next run); send it again to stop at once",
            always=True,
        )
        if signal.getsignal(signal.SIGUSR1) in (signal.SIG_DFL, signal.SIG_IGN, None):
            raise KeyboardInterrupt  # Tune's loop is not running: there is nothing to stop
        os.kill(os.getpid(), signal.SIGUSR1)  # Tune's graceful stop


RESUME = "free space (or make it writable) and re-run the same command: complete stages are kept"
FULL_BYTES = 16 * 2**20  # less free than this on the output folder's disk: full


def storage_problem(out: Path) -> str | None:
    """Why the output folder cannot take the sweep's writes now (a full disk, a read-only
    folder or stage folder), or None."""
    try:
        free = shutil.disk_usage(out).free
    except OSError:
        return None
    if not os.access(out, os.W_OK):
        return f"{out} is read-only"
    if free < FULL_BYTES:
        return f"the disk holding {out} is full ({free / 2**20:.1f} MiB free)"
    for folder in (out / STAGES).glob("*/"):
        if not os.access(folder, os.W_OK):
            return f"stage folder {folder} is read-only"
    return None


def check_free_space(out: Path, need: int, what: str) -> None:
    """Refuse a sweep whose output folder's disk cannot hold what it will write (`disk_need`):
    running out part-way leaves an MLflow store half-migrated and stages failed."""
    free = shutil.disk_usage(existing_ancestor(out)).free
    if free < need:
        raise StorageError(
            f"{what}: {out}: {free / 2**20:,.1f} MiB free on its disk, the sweep needs about"
            f" {need / 2**20:,.0f} MiB (model exports, checkpoints, its MLflow store and"
            " records); free space or give another output_dir"
        )


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:160]}" if text else type(e).__name__


def run_study(cfg: SweepConfig, file: str, address: str | None, uri_what: str | None = None) -> int:
    """`xscale sweep`: check everything, hold the output folder, run the graph; exit code.
    `uri_what` names where the tracking URI came from (a flag, the file's key, the environment)."""
    out = check_output_dir(cfg.output_path, f"{file}: output_dir")
    check_folder_owner(out, cfg.name, f"{file}: output_dir")
    check_tracking_store(cfg.resolved_tracking_uri, uri_what or f"{file}: tracking_uri")
    check_data_roots(cfg.data, file)
    graph = expand(cfg, train_size=data_train_size(cfg))
    preflight_graph(graph)
    check_free_space(out, disk_need(cfg, graph), f"{file}: output_dir")
    # One sweep per output folder: a second one refuses at once (its stages would be waited
    # for one by one, each stage being locked by the process that runs it).
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    lock = FolderLock(out / SWEEP_LOCK, f"{file}: output_dir {out}")
    try:
        lock.acquire(wait=0)
    except XScaleError as e:
        hint = "wait for that sweep to end, or give another --output-dir"
        raise XScaleError(f"{e}; {hint}") from None
    try:
        return _sweep_locked(cfg, file, address, out, graph)
    except Exception as e:
        why = storage_problem(out)
        if why is None:
            raise
        raise StorageError(f"{file}: {why} ({_first_line(e)}); {RESUME}") from None
    finally:
        lock.release()
        if created and not any(out.iterdir()):  # nothing was written: leave no folder behind
            out.rmdir()


def _sweep_locked(cfg: SweepConfig, file: str, address: str | None, out: Path, graph) -> int:
    # Ray first: a cluster that cannot be reached leaves nothing behind in the output folder
    resources = sweep_resources(cfg)
    import ray  # noqa: F401 - before MLflow's import starts beside it: only ray.init overlaps

    import_in_background()  # MLflow is needed right after Ray: import it while Ray starts
    start_ray(address, resources)
    # a local Ray is all there is; a cluster's autoscaler may still add a node that fits
    check_resources(resources, file, autoscaling=bool(address))
    # what earlier runs left is checked before anything is reused (a truncated or edited stage,
    # a damaged marker or selection runs again, one line each)
    verify_reuse(out, lambda line: log(f"{cfg.name}: {line}", always=True))
    write_manifest(cfg, graph, file)
    uri = cfg.resolved_tracking_uri
    report, finished = catch_up(out, uri, cfg.name, lambda key: is_complete(stage_path(out, key)))
    if report.sent:
        log(f"{cfg.name}: tracking: uploaded {report.sent} events that earlier runs had kept")
    if finished:
        log(f"{cfg.name}: {finished} complete stages' MLflow runs were still RUNNING: finished")
    uid = f"sweep-{cfg.name}-{out}"
    parent = open_parent(
        out,
        uri,
        cfg.name,
        uid,
        f"sweep {cfg.name}",
        {"xscale.output_dir": str(out), "xscale.sweep_file": str(Path(file).resolve())},
        say=lambda line: log(f"{cfg.name}: {line}", always=True),
    )
    parent.params(
        {
            "models": ",".join(cfg.models),
            "intermediate_tasks": ",".join(cfg.intermediate_names),
            "target_tasks": ",".join(cfg.target_tasks),
            "seeds": ",".join(map(str, cfg.seeds)),
            "train_languages": ",".join(cfg.train_languages),
        }
    )
    tracking = TrackingInfo(uri, cfg.name, uid, str(out / "mlartifacts"))
    t0 = time.time()
    c = plan_counts(cfg, graph)
    log(
        f"{cfg.name}: {c['total']} stages in {len(graph.groups)} groups ("
        + ", ".join(f"{k} {graph.count(k)}" for k in KINDS if k != "cartography" or graph.count(k))
        + f"), {c['done']} complete already -> {out}"
    )
    progress = SweepProgress(
        cfg.name,
        c["total"],
        c["done"],
        c["total_cost"],
        c["done_cost"],
        out / STAGES,
        verbosity=verbosity(),
    )
    status, counts = "FAILED", {"ran": 0, "failed": 0, "blocked": 0}
    try:
        with progress, Interrupts(cfg.name) as interrupts:
            try:
                counts = run_sweep(cfg, graph, tracking, address=address, progress=progress)
            except KeyboardInterrupt:  # a signal before (or after) Tune's loop: nothing to stop
                if interrupts.signum is None:
                    raise
        status = "FINISHED" if not counts["failed"] and not counts["blocked"] else "FAILED"
        if interrupts.signum is not None:
            status = "KILLED"
    finally:
        parent.finish(status)
        parent.close()
        line = pending_line(out, sync_folder(out))
        if line:
            log(line, always=True)
    if status == "KILLED":
        after = plan_counts(cfg, graph)
        log(
            f"{cfg.name}: interrupted ({signal.Signals(interrupts.signum).name}) after"
            f" {time.time() - t0:.0f}s: {after['done']} of {after['total']} stages complete,"
            f" {after['total'] - after['done']} left; re-run the same command to go on",
            always=True,
        )
        return 128 + interrupts.signum
    log(
        f"{cfg.name}: {status.lower()} in {time.time() - t0:.0f}s: ran {counts['ran']}, "
        f"failed {counts['failed']}, blocked by a failed parent {counts['blocked']}; "
        f"results in {uri}",
        always=True,
    )
    if status != "FINISHED":
        why = storage_problem(out)
        log(f"{why}; {RESUME}" if why else "re-run the same command to retry what is missing",
            always=True)  # fmt: skip
        return 1
    return 0
