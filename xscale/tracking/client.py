"""MLflow: one experiment per study, a parent run per sweep (or trial), a child run per stage.

Defaults to a sqlite store at `<output_dir>/mlflow.db` with artifacts in
`<output_dir>/mlartifacts`, so no server is needed; `--tracking-uri` points at a server.
Stages and sweeps never call MLflow while they train: they log to a journal
(`tracking/journal.py`) that `tracking/upload.py` sends through the `Tracker` below. Runs are
found again by their tags (`xscale.stage_key` for a stage, `xscale.parent_uid` for a sweep or
trial), so a stage that is retried or resumed logs into the run it already has: one MLflow run
per stage, however often it starts.

Params logged on every stage run, with the same names (the MLflow UI compares on them):
model_size, model_params, intermediate_task, target_task, train_languages, seed, learning_rate,
batch_size, epochs, zero_stage.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

STAGE_KEY = "xscale.stage_key"
STAGE_KIND = "xscale.stage_kind"
RUN_KIND = "xscale.run_kind"
PARENT = "mlflow.parentRunId"
PARENT_UID = "xscale.parent_uid"


@dataclass(frozen=True)
class TrackingInfo:
    """Where a stage logs: the store, the experiment, the sweep's (or trial's) run by its
    `xscale.parent_uid` tag, and the artifact root of a new experiment."""

    uri: str
    experiment: str
    parent_uid: str | None = None
    artifact_root: str | None = None


def _quiet() -> None:
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)


_IMPORT: threading.Thread | None = None  # the background import, while one may be running


def import_in_background() -> threading.Thread:
    """Import MLflow's client and SQL store in a daemon thread: 1.5 s of a sweep's start on
    2 cores, spent while the driver waits for Ray instead of after it. Nothing is opened or
    written; an import that fails here fails again, and is reported, where it is used.

    MLflow is never imported on two threads at once: Python's import locks hand the second
    importer a partially initialised `mlflow` when the two meet in a circular import
    ("partially initialized module 'mlflow' has no attribute 'version'", seen when `ray.init`
    on an existing cluster returned before the thread was done). Every use of MLflow in this
    package goes through `mlflow_ready()`, which waits for this thread first."""

    global _IMPORT

    def run() -> None:
        try:
            import mlflow.store.tracking.sqlalchemy_store  # noqa: F401
            import mlflow.tracking  # noqa: F401
        except Exception:  # noqa: BLE001, S110 - the caller's own import reports it
            pass

    thread = threading.Thread(target=run, name="xscale-import-mlflow", daemon=True)
    _IMPORT = thread
    thread.start()
    return thread


def mlflow_ready() -> None:
    """Wait for `import_in_background`'s thread, if one is importing MLflow: call before the
    first `import mlflow...` on any other thread."""
    thread = _IMPORT
    if thread is not None and thread is not threading.current_thread():
        thread.join()


@contextmanager
def _sqlite_lock(uri: str):
    if not uri.startswith("sqlite:///"):
        yield
        return
    db = Path(uri[len("sqlite:///") :])
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.with_name(db.name + ".lock"), "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


class Tracker:
    """Thin wrapper over `MlflowClient`: no global active-run state, safe in worker processes."""

    def __init__(self, tracking_uri: str, experiment: str, artifact_root: Path | None = None):
        mlflow_ready()
        from mlflow.tracking import MlflowClient

        _quiet()  # after the import: importing mlflow sets its loggers to INFO

        self.uri = tracking_uri
        # Two processes opening a new sqlite store at once both run MLflow's schema migrations
        # ("duplicate column name"): opening the store is serialised by a file lock.
        with _sqlite_lock(tracking_uri):
            self.client = MlflowClient(tracking_uri)
            exp = self.client.get_experiment_by_name(experiment)
            if exp is None:
                location = Path(artifact_root).resolve().as_uri() if artifact_root else None
                self.experiment_id = self.client.create_experiment(
                    experiment, artifact_location=location
                )
            else:
                self.experiment_id = exp.experiment_id

    def reconcile(self, is_complete) -> int:
        """Finish the stage runs still RUNNING whose stage is complete (`is_complete(key)`): a
        process killed between a stage's COMPLETE marker and its run's end. Returns how many."""
        runs = self.client.search_runs(
            [self.experiment_id],
            filter_string=f"attributes.status = 'RUNNING' and tags.`{RUN_KIND}` = 'stage'",
            max_results=5000,
        )
        n = 0
        for run in runs:
            key = run.data.tags.get(STAGE_KEY)
            if key and is_complete(key):
                self.client.set_terminated(run.info.run_id, status="FINISHED")
                n += 1
        return n

    def find(self, tag: str, value: str):
        """The run tagged `tag` = `value` in this experiment, or None."""
        runs = self.client.search_runs(
            [self.experiment_id], filter_string=f"tags.`{tag}` = '{value}'", max_results=2
        )
        return runs[0] if runs else None

    def log_params(self, run_id: str, params: dict) -> None:
        """Params are write-once in MLflow; on a retried run only the missing ones are logged."""
        mlflow_ready()
        from mlflow.entities import Param

        have = self.client.get_run(run_id).data.params
        new = [Param(k, str(v)) for k, v in params.items() if k not in have]
        if new:
            self.client.log_batch(run_id, params=new)
