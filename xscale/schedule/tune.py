"""Ray Tune scheduling: the whole sweep is one Tune run, every ready stage a Tune trial.

    SweepSearcher (schedule/searcher.py): every group whose parent is selected is ready; its
        stages (fixed / grid) or its Optuna trials (one seeded study per group) are handed out
        longest-expected-first, to whatever fits the cluster now (schedule/packing.py), up to
        the sweep's `max_concurrent_trials` across all groups
    grouped ASHA (schedule/asha.py): each Optuna group's trials are stopped early by an
        ASHAScheduler of their own
    a group's last stage ends -> its best stage (English dev metric) -> groups/<key>.json ->
        its children are ready at once (no barrier between depths or groups)

Every stage is one Tune trial with the resources of its size. A size with several workers runs
its stage as a Ray Train TorchTrainer inside the trial (gloo on CPU, NCCL on GPU). Ray's
FailureConfig retries a failed trial, and the stage resumes from its own last checkpoint. A stage
whose folder is complete is never run again, so re-running the sweep command is how a killed
sweep resumes. Trial processes are reused from stage to stage (torch, DeepSpeed imported once).
The cluster benchmark replaces stages by sleeps through schedule/simulate.py (its own
environment variable, never set otherwise).
"""

from __future__ import annotations

import _thread
import atexit
import contextlib
import logging
import os
import re
import shutil
import socket
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from xscale.errors import XScaleError
from xscale.graph.expand import Graph
from xscale.graph.selection import load_selection, planned
from xscale.graph.stage import STAGES, StageResult, StageSpec, is_complete, read_result, stage_dir
from xscale.runtime import quiet_environment, verbosity
from xscale.schedule.asha import asha_factory, grouped_asha
from xscale.schedule.packing import TRIAL_CPU, Capacity, ray_strategy
from xscale.schedule.progress import SweepProgress
from xscale.schedule.searcher import META, Search, SweepSearcher, TrialMeta, searcher
from xscale.schedule.simulate import SIMULATE_ENV, simulate_stage
from xscale.schedule.simulate import from_env as simulation_from_env
from xscale.sweep.schema import StageResources, SweepConfig
from xscale.tracking.client import TrackingInfo
from xscale.tracking.names import DEV_SCORE

__all__ = ["META", "TrialMeta", "run_sweep", "start_ray", "check_resources", "plan_counts"]


def log(msg: str, always: bool = False) -> None:
    """A driver line on stderr; `-q` keeps only the `always` ones (the final summary)."""
    if always or verbosity() > 0:
        print(f"[{time.strftime('%H:%M:%S')}] sweep: {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------- inside a trial


@dataclass(frozen=True)
class TrialContext:
    """What every trial of a sweep receives beside its config (Tune's `with_parameters`),
    built once by `sweep_context`: the output folder, where stages log, each size's
    resources, and the cluster benchmark's sleeps (never set otherwise)."""

    output_dir: str
    tracking: TrackingInfo
    resources: dict[str, StageResources]
    simulate: dict[str, float] | None = None

    @property
    def out(self) -> Path:
        return Path(self.output_dir)


def sweep_resources(cfg: SweepConfig) -> dict[str, StageResources]:
    """Every size's resources in the sweep (the size table with the sweep's overrides)."""
    return {m: cfg.resources_for(m) for m in cfg.models}


def _stage_in_workers(spec: StageSpec, ctx: TrialContext, rounds: int) -> StageResult:
    """Run a stage on `workers` Ray Train workers (one DeepSpeed rank each). Every rank
    evaluates its share of the dev set `rounds - 1` times and reports the (gathered, equal)
    scores through Ray Train; Tune gets rank 0's, so ASHA can stop a multi-worker stage."""
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer
    from ray.tune.integration.ray_train import TuneReportCallback

    res = ctx.resources[spec.model]

    def worker(config):
        import ray.train

        from xscale.stage.runner import run_stage

        def report(m):
            ray.train.report({**m, "stage_key": spec.key, "complete": 0})

        quiet_environment()
        run_stage(spec, ctx.out, ctx.tracking, report=report, eval_rounds=rounds)

    trainer = TorchTrainer(
        worker,
        torch_config=TorchConfig(backend="nccl" if res.gpus else "gloo"),
        scaling_config=ScalingConfig(
            num_workers=res.workers,
            use_gpu=res.gpus > 0,
            resources_per_worker={"CPU": res.cpus, "GPU": res.gpus},
            placement_strategy=ray_strategy(res),
        ),
        run_config=RunConfig(
            name=spec.key,
            storage_path=str(ctx.out.resolve() / "ray_train"),
            callbacks=[TuneReportCallback()],
        ),
    )
    trainer.fit()
    where = stage_dir(ctx.out, spec)
    if not is_complete(where):
        raise RuntimeError(f"{spec.label}: workers finished but the stage is not complete")
    return read_result(where)


def stage_trainable(config: dict, ctx: TrialContext) -> None:
    """One Tune trial = one stage: the spec in `config`'s TrialMeta (an Optuna trial's sampled
    values are in the spec already, and beside it for Tune's display)."""
    from ray import tune

    quiet_environment()
    meta, _ = TrialMeta.split(config)
    spec = StageSpec.model_validate(meta.spec)
    workers = ctx.resources[spec.model].workers
    rounds = meta.rounds or 1  # evaluation rounds reported to ASHA (Optuna groups)

    def report(m):
        tune.report({**m, "stage_key": spec.key, "complete": 0})

    if ctx.simulate:  # the cluster benchmark only (schedule/simulate.py)
        res = ctx.resources[spec.model]
        result = simulate_stage(spec, meta.cost or 0.0, rounds, res, ctx.out, ctx.simulate, report)
    elif workers > 1:
        result = _stage_in_workers(spec, ctx, rounds)
    else:
        from xscale.stage.runner import run_stage

        result = run_stage(spec, ctx.out, ctx.tracking, report=report, eval_rounds=rounds)
    tune.report(
        {
            DEV_SCORE: result.dev_score or 0.0,
            "stage_key": spec.key,
            "complete": 1,
            "stage_seconds": result.stage_seconds or 0.0,
        }
    )


# ----------------------------------------------------------------------- the driver


# Progress displays of this driver process, by id: Tune pickles its callbacks with the
# experiment state, so a callback holds only the id of the (unpicklable, thread-owning) display.
_PROGRESS: dict[int, SweepProgress] = {}


def _callback(progress: SweepProgress):
    from ray.tune import Callback

    class ProgressCallback(Callback):
        """Stage starts and ends -> the sweep's progress display (see `_PROGRESS`)."""

        def __init__(self, handle: int):
            self.handle = handle

        def _progress(self) -> SweepProgress | None:
            return sys.modules[__name__]._PROGRESS.get(self.handle)

        def on_trial_start(self, iteration, trials, trial, **info):
            if (p := self._progress()) is not None:
                meta = TrialMeta.split(trial.config)[0]
                p.started(trial.trial_id, _trial_label(trial), meta.stage, float(meta.cost or 0))

        def on_trial_complete(self, iteration, trials, trial, **info):
            if (p := self._progress()) is not None:
                p.ended(trial.trial_id, ok=True)

        def on_trial_error(self, iteration, trials, trial, **info):
            if (p := self._progress()) is not None:
                p.ended(trial.trial_id, ok=False, detail=_error_detail(trial))

    _PROGRESS[id(progress)] = progress
    return ProgressCallback(id(progress))


def _error_detail(trial) -> str:
    """A failed trial's reason (the last line of its error) and where its traceback is kept:
    the sweep's own ray_results folder (Ray's session folder is removed when the sweep ends)."""
    where = Path(getattr(trial, "path", None) or trial.local_path)
    try:
        lines = [line.strip() for line in str(trial.get_error()).splitlines() if line.strip()]
    except Exception:  # noqa: BLE001 - an error file that cannot be read (a full disk)
        lines = []
    reason = lines[-1].removeprefix("xscale.errors.")[:200] if lines else ""
    return f"{reason}; traceback in {where / 'error.txt'}" if reason else f"see {where}"


class _TrialFailureFilter(logging.Filter):
    """Drops Tune's per-failure traceback and its end-of-run list from the terminal: the
    progress line says each failure's reason and where its traceback is kept."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = str(record.msg)
        if msg.startswith(("Trial task failed", "Trials did not complete")):
            return False
        if record.exc_info and record.exc_info[1] is not None:  # Tune's state sync: one line
            e = record.exc_info[1]
            lines = str(e).strip().splitlines()
            record.msg = f"{msg.strip()} {type(e).__name__}: {lines[-1] if lines else ''}"
            record.args, record.exc_info, record.exc_text = None, None, None
        return True


def quiet_trial_failures() -> None:
    loggers = ("ray.tune.execution.tune_controller", "ray.tune.tune",
               "ray.tune.execution.experiment_state")  # fmt: skip
    for name in loggers:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _TrialFailureFilter) for f in logger.filters):
            logger.addFilter(_TrialFailureFilter())


def _trial_label(trial) -> str:
    meta, sampled = TrialMeta.split(trial.config)
    label = meta.label or meta.stage or trial.trial_id
    if sampled:
        label += " " + " ".join(
            f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in sampled.items()
        )
    return label


def _resources(ctx: TrialContext):
    from ray.tune import PlacementGroupFactory

    def for_trial(config: dict):
        meta, _ = TrialMeta.split(config)
        res = ctx.resources[meta.spec["model"]]
        if res.workers > 1:  # the trial only drives a TorchTrainer, whose workers hold the rest
            return PlacementGroupFactory([{"CPU": TRIAL_CPU}])
        bundle = {"CPU": res.cpus}
        if res.gpus:
            bundle["GPU"] = res.gpus
        return PlacementGroupFactory([bundle])

    return for_trial


def _tune_run(
    name: str, param_space: dict, cfg: SweepConfig, ctx: TrialContext, progress, extra=None
):
    from ray import tune

    trainable = tune.with_resources(tune.with_parameters(stage_trainable, ctx=ctx), _resources(ctx))
    tune_config = tune.TuneConfig(
        max_concurrent_trials=cfg.max_concurrent_trials,
        reuse_actors=reuse_actors(ctx.resources),
        **(extra or {}),
    )
    run_config = tune.RunConfig(
        name=name,
        storage_path=str(cfg.output_path.resolve() / "ray_results"),
        failure_config=tune.FailureConfig(max_failures=cfg.failure.max_failures),
        callbacks=[_callback(progress)],
        verbose=0,
    )
    tuner = tune.Tuner(
        trainable, param_space=param_space, tune_config=tune_config, run_config=run_config
    )
    return tuner.fit()


def reuse_actors(resources: dict[str, StageResources]) -> bool:
    """Tune's actor reuse (trial processes keep torch and DeepSpeed imported between stages),
    only when no size has several workers. Tune keeps one finished trial's process, and its
    resources, even with no trial of its shape pending (`_ObjectCache(may_keep_one=True)`), and
    a multi-worker stage's TorchTrainer asks Ray for its workers outside Tune: that held CPU
    once kept a 2-worker x 2-CPU stage PENDING for good with 3.99 of 5 CPUs free."""
    return all(r.workers == 1 for r in resources.values())


def tune_environment() -> None:
    """Tune and Ray settings of every sweep driver (set before Ray starts)."""
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # Ray's C++ core writes its retry warnings straight to stderr; errors are reported here
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "error")
    _no_secret_propagation()
    quiet_trial_failures()


# Ray Tune copies these from the driver's environment into every trial's runtime_env, which
# Ray's runtime-env agent writes to its log (ray/tune/execution/class_cache.py). A local Ray's
# workers inherit the driver's environment anyway; a cluster's nodes have their own (an
# instance role, cluster.yaml): xscale never ships the driver's secrets through Ray.
SECRET_PROPAGATION = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SECURITY_TOKEN",
                      "AWS_SESSION_TOKEN")  # fmt: skip


def _no_secret_propagation() -> None:
    try:
        from ray.tune.execution import class_cache
    except ImportError:  # pragma: no cover - another Ray layout: nothing of ours to undo
        return
    names = getattr(class_cache, "ENV_VARS_TO_PROPAGATE", None)
    if isinstance(names, set):
        names.difference_update(SECRET_PROPAGATION)


KEEP_RAY_DIR_ENV = "XSCALE_KEEP_RAY_DIR"


def private_ray_dir() -> str:
    """A fresh folder in the user's temp dir ($TMPDIR), readable by this user only (0700), for
    a local Ray's sessions and logs (Ray's default /tmp/ray is shared by every user of the
    machine). Removed when the driver exits, after Ray has shut down, unless
    XSCALE_KEEP_RAY_DIR=1 (to read Ray's logs; the path is printed at -v)."""
    # Ray's sockets live at <dir>/session_<date>_<pid>/sockets/plasma_store, and a socket's
    # path may hold 107 bytes: a long $TMPDIR falls back to /tmp (the folder is still 0700)
    base = tempfile.gettempdir()
    base = base if len(base) <= 32 else "/tmp"
    reap_stale_ray_dirs(base)
    private = tempfile.mkdtemp(prefix=RAY_DIR_PREFIX, dir=base)
    if os.environ.get(KEEP_RAY_DIR_ENV) != "1":
        atexit.register(_remove_ray_dir, private)
    path = os.path.join(private, "r")  # Ray makes its own folder 0777; the one above stays 0700
    if verbosity() >= 1:
        log(f"Ray's logs: {path}")
    return path


RAY_DIR_PREFIX = "xscale-ray-"
RAY_EXIT_WAIT = 15.0  # seconds Ray's processes get to end after shutdown before they are stopped


def _processes_of(folder: str) -> list:
    """Processes whose command line names `folder` (a local Ray's GCS server, raylet and
    monitors name their session folder; its workers end with the raylet)."""
    found = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if p.pid != os.getpid() and any(folder in a for a in p.info["cmdline"] or ()):
                found.append(p)
        except psutil.Error:
            continue
    return found


def _stop(processes: list, wait: float) -> None:
    """Wait up to `wait` s for `processes` to end; terminate, then kill, what is left."""
    _, alive = psutil.wait_procs(processes, timeout=wait)
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.terminate()
    _, alive = psutil.wait_procs(alive, timeout=3)
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()


def _remove_ray_dir(private: str) -> None:
    """At exit: Ray shut down first (its own exit handler would run after this one and write
    into the folder again), its processes given RAY_EXIT_WAIT s to end, then the folder removed."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        with contextlib.suppress(Exception):
            ray.shutdown()
    _stop(_processes_of(private), RAY_EXIT_WAIT)
    shutil.rmtree(private, ignore_errors=True)


def reap_stale_ray_dirs(base: str) -> int:
    """Remove the Ray folders of this user's sweeps whose driver is gone (killed: its exit
    handler never ran), stopping any of their processes still alive; returns how many. A folder
    is in use while the driver named by its session (`session_<date>_<pid>`) is alive."""
    removed = 0
    for d in Path(base).glob(RAY_DIR_PREFIX + "*"):
        try:
            st = d.stat()
        except OSError:
            continue
        if st.st_uid != os.getuid():
            continue
        pids = []
        for session in (d / "r").glob("session_*"):
            tail = session.name.rpartition("_")[2]
            if tail.isdigit():
                pids.append(int(tail))
        if any(psutil.pid_exists(pid) for pid in pids):
            continue
        if not pids and time.time() - st.st_mtime < 60:  # a Ray starting now: no session yet
            continue
        _stop(_processes_of(str(d)), 0)
        shutil.rmtree(d, ignore_errors=True)
        removed += 1
    return removed


def start_ray(address: str | None, resources: dict[str, StageResources]) -> None:
    """Connect to a cluster, or start a local Ray big enough for the largest stage.

    A multi-worker stage's trial holds 0.01 CPU while its TorchTrainer's workers hold the
    rest, so a local Ray gets at least workers x cpus + 1 logical CPUs (else it would wait
    forever for the last worker)."""
    import ray

    tune_environment()
    if ray.is_initialized():
        return
    limit = float(os.environ.get(RAY_START_TIMEOUT_ENV) or RAY_START_TIMEOUT)
    where = f"--address {address}" if address else "a local Ray"
    if address and ":" in address:  # host:port: a quick check that something listens there
        host, _, port = address.rpartition(":")
        try:
            answer = _grpc_probe(host, int(port), min(limit, 10.0))
        except (OSError, ValueError) as e:
            raise XScaleError(
                f"{where}: cannot connect to the Ray cluster (nothing answers at {address}:"
                f" {type(e).__name__}: {e}); is the head node up (ray up cluster.yaml)?"
            ) from None
        if answer is not None:  # ray.init would wait there for good, deaf to Ctrl-C
            raise XScaleError(
                f"{where}: {address} is not a Ray cluster's GCS (it answers {answer!r}, not"
                " gRPC); give the head's GCS address (ray status prints it; port 6379 by"
                " default) or auto"
            )
    try:
        with _interrupt_after(limit), _stderr_kept(verbosity() < 2):
            _ray_init(ray, address, resources)
    except KeyboardInterrupt:
        if not getattr(_interrupt_after, "fired", False):
            raise  # the user's Ctrl-C
    except Exception as e:  # noqa: BLE001 - any start-up failure becomes one line
        _shutdown_quietly(ray)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        hint = (
            "; on a cluster with token auth the driver needs RAY_AUTH_MODE=token and the"
            " cluster's token (~/.ray/auth_token)"
            if address
            else ""
        )
        verb = "cannot connect to the Ray cluster" if address else "Ray failed to start"
        raise XScaleError(f"{where}: {verb} ({type(e).__name__}: {first}){hint}") from None
    if getattr(_interrupt_after, "fired", False):  # also when Ray's own code swallowed it
        _shutdown_quietly(ray)
        raise XScaleError(
            f"{where}: Ray did not start within {limit:.0f} s (a loaded machine or an"
            f" unreachable cluster); set {RAY_START_TIMEOUT_ENV} to wait longer"
        )


HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes.fromhex("000000040000000000")


def _grpc_probe(host: str, port: int, timeout: float) -> str | None:
    """None when `host:port` speaks HTTP/2 as Ray's GCS (a gRPC server) does: it answers the
    client preface with a SETTINGS frame; else the first bytes it answered (or "nothing").
    Raises OSError when nothing listens there."""
    with socket.create_connection((host, port), timeout=timeout) as conn:
        conn.sendall(HTTP2_PREFACE)
        got = b""
        try:
            while len(got) < 9:
                chunk = conn.recv(9 - len(got))
                if not chunk:
                    break
                got += chunk
        except TimeoutError:
            pass
    if len(got) == 9 and got[3] == 0x04:  # frame type SETTINGS
        return None
    return got.split(b"\r\n")[0].decode("latin-1")[:40] or "nothing"


def check_resources(resources: dict[str, StageResources], source: str, autoscaling: bool) -> None:
    """Refuse (or, on a cluster that may still add nodes, warn about) a size whose worker
    needs more CPUs or GPUs than any node of the connected Ray has: its trials would wait for
    good. `resources`: {size: {"cpus", "gpus", "workers", ...}} per worker."""
    import ray

    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    best_cpu = max((r.get("CPU", 0) for r in nodes), default=0)
    best_gpu = max((r.get("GPU", 0) for r in nodes), default=0)
    for size, r in resources.items():
        fits = any(n.get("CPU", 0) >= r.cpus and n.get("GPU", 0) >= r.gpus for n in nodes)
        if fits:
            continue
        line = (
            f"{source}: resources.{size}: a worker needs {r.cpus} CPUs and {r.gpus} GPUs,"
            f" and no node of this Ray has that (the largest: {best_cpu:g} CPUs,"
            f" {best_gpu:g} GPUs)"
        )
        if autoscaling:
            log(f"warning: {line}; its stages wait until the autoscaler adds such a node")
        else:
            raise XScaleError(line + "; lower resources in the sweep file or add such a node")


RAY_START_TIMEOUT_ENV = "XSCALE_RAY_START_TIMEOUT"
RAY_START_TIMEOUT = 120.0  # seconds for ray.init, local start or connection


class _interrupt_after:
    """Interrupt the main thread (KeyboardInterrupt) if the block runs past `seconds`: Ray's
    own start-up retries run for minutes (its maintainers suggest this for a bounded wait)."""

    fired = False

    def __init__(self, seconds: float):
        self.seconds = seconds

    def __enter__(self):
        def fire():
            _interrupt_after.fired = True
            _thread.interrupt_main()

        _interrupt_after.fired = False
        self.timer = threading.Timer(self.seconds, fire)
        self.timer.daemon = True
        self.timer.start()
        return self

    def __exit__(self, *exc):
        self.timer.cancel()
        return False


@contextmanager
def _stderr_kept(redirect: bool):
    """Ray's C++ core writes retry warnings to file descriptor 2 while it starts; they go to a
    temporary file instead (failures are reported as one line by the caller)."""
    if not redirect:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _shutdown_quietly(ray) -> None:
    try:
        ray.shutdown()
    except Exception:  # noqa: BLE001 - cleaning up after a failed start
        pass


def _ray_init(ray, address: str | None, resources: dict[str, StageResources]) -> None:
    if address:
        extra = {}
        if address.split(":")[0] in ("127.0.0.1", "localhost"):
            extra["_node_ip_address"] = "127.0.0.1"  # else the driver binds the external address
        ray.init(address=address, log_to_driver=verbosity() >= 2, logging_level="ERROR", **extra)
        return
    need = max(
        (r.workers * r.cpus + 1 for r in resources.values() if r.workers > 1),
        default=0,
    )
    _loopback_only(ray)
    with _secrets_held_back():  # the processes Ray starts copy the environment now
        ray.init(
            address="local",  # a new local Ray, even if `ray start` left one running here
            _temp_dir=private_ray_dir(),
            num_cpus=max(os.cpu_count() or 1, need),
            include_dashboard=False,
            log_to_driver=verbosity() >= 2,
            logging_level="ERROR",
            _node_ip_address="127.0.0.1",
        )


# The secrets a stage may read: MLflow's credentials (its uploads), the artifact store's (S3,
# Azure, GCS), the hub's, a postgresql store's password. Any other variable named like a secret
# (a GitHub or W&B token, another service's API key) stays with the driver: a local Ray's
# processes, and so its trials, start without it.
TRIAL_SECRETS = frozenset({
    "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN",
    "PGPASSWORD", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
    "AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_ACCESS_KEY",
    "GOOGLE_APPLICATION_CREDENTIALS",
})  # fmt: skip
SECRET_NAME = re.compile(  # a whole part of the name: TOKENIZERS_PARALLELISM is no token
    r"(^|_)(TOKEN|SECRET|PASSWORD|PASSWD|APIKEY|API_KEY|ACCESS_KEY|CREDENTIALS?|PRIVATE_KEY)(_|$)",
    re.I,
)


@contextmanager
def _secrets_held_back():
    """Variables named like secrets, other than TRIAL_SECRETS, out of the environment while a
    local Ray starts (its GCS, raylet and workers inherit it), back in it afterwards."""
    held = {
        k: os.environ.pop(k) for k in list(os.environ) if SECRET_NAME.search(k)
        and k not in TRIAL_SECRETS
    }  # fmt: skip
    try:
        yield held
    finally:
        os.environ.update(held)


LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def _loopback_only(ray) -> None:
    """Keep a private local Ray on loopback. Ray 2.60 turns `_node_ip_address="127.0.0.1"`
    into the machine's external address (`services.resolve_ip_for_localhost`), and its GCS,
    raylet, workers and runtime-env agent then listen on every interface; with clusters
    disabled (`RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`, read into `ray_constants` when Ray is
    imported) the node's address is loopback and every server binds 127.0.0.1 only. Set for
    the processes Ray starts (the environment) and for this one (the constant, since Ray may
    be imported already). Never for `--address`: a cluster's nodes must reach each other."""
    os.environ[LOOPBACK_ENV] = "0"
    from ray._private import ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = False


def _cluster_nodes() -> list[dict[str, float]]:
    """CPUs and GPUs of every alive node of the connected Ray."""
    import ray

    return [
        {"CPU": float(r.get("CPU", 0.0)), "GPU": float(r.get("GPU", 0.0))}
        for n in ray.nodes()
        if n.get("Alive") and (r := n.get("Resources", {}))
    ]


def plan_counts(cfg: SweepConfig, graph: Graph) -> dict[str, float]:
    """Stages and estimated cost of the whole sweep, and how much of it is complete already."""
    stages = planned(graph, cfg.output_path, cfg.search.num_samples)
    done = [
        p for p in stages if p.spec is not None and is_complete(stage_dir(cfg.output_path, p.spec))
    ]
    return {
        "total": len(stages),
        "done": len(done),
        "total_cost": sum(p.group.cost for p in stages),
        "done_cost": sum(p.group.cost for p in done),
    }


def sweep_context(cfg: SweepConfig, tracking: TrackingInfo) -> TrialContext:
    """The one place a sweep's trial context is built."""
    sim = simulation_from_env()
    if sim is not None:
        log(f"{SIMULATE_ENV} is set: every stage is a sleep (cluster benchmark)", always=True)
    return TrialContext(str(cfg.output_path), tracking, sweep_resources(cfg), sim)


def sweep_progress(cfg: SweepConfig, graph: Graph) -> SweepProgress:
    c = plan_counts(cfg, graph)
    return SweepProgress(
        cfg.name, c["total"], c["done"], c["total_cost"], c["done_cost"], cfg.output_path / STAGES
    )


def tune_searcher_run(name: str, core: SweepSearcher, cfg: SweepConfig, ctx, progress):
    """One Tune run of everything `core` hands out; Optuna trials stopped by ASHA per group."""
    extra: dict[str, Any] = {"search_alg": searcher(core), "num_samples": -1}
    if cfg.scheduler:
        extra["scheduler"] = grouped_asha(
            asha_factory(cfg.scheduler, cfg.search.metric, cfg.search.mode)
        )
    return _tune_run(name, {}, cfg, ctx, progress, extra)


def run_sweep(
    cfg: SweepConfig,
    graph: Graph,
    tracking: TrackingInfo,
    address=None,
    progress: SweepProgress | None = None,
) -> dict:
    """Run the graph to the end in one Tune run; returns counts {ran, failed, blocked, ...}."""
    out = cfg.output_path
    if progress is None:
        progress = sweep_progress(cfg, graph)
    resources = sweep_resources(cfg)
    counts = {"ran": 0, "failed": 0, "blocked": 0}
    selected = load_selection(out)
    failed: set[str] = set()
    import ray

    if not ray.is_initialized():  # `xscale sweep` starts it earlier, beside MLflow's set-up
        start_ray(address, resources)
    ctx = sweep_context(cfg, tracking)
    core = SweepSearcher(
        graph,
        out,
        selected,
        failed,
        Search.of(cfg),
        capacity=Capacity(_cluster_nodes),
    )
    if core.has_work:
        results = tune_searcher_run("sweep", core, cfg, ctx, progress)
        counts["failed"] += sum(1 for r in results if r.error is not None)
    counts["ran"] = core.dispatched
    counts["blocked"] = sum(
        1 for g in graph.groups.values() if g.key not in selected and g.key not in failed
    )
    counts["failed_groups"] = len(failed)
    return counts
