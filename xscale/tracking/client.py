"""MLflow: one experiment per study, a parent run per sweep (or trial), a child run per stage.

Defaults to a sqlite store at `<output_dir>/mlflow.db` with artifacts in
`<output_dir>/mlartifacts`, so no server is needed; `--tracking-uri` points at a server.
Stage runs are found again by their `xscale.stage_key` tag, so a stage that is retried or resumed
logs into the run it already has: one MLflow run per stage, however often it starts.

Params logged on every stage run, with the same names (the MLflow UI compares on them):
model_size, model_params, intermediate_task, target_task, train_languages, seed, learning_rate,
batch_size, epochs, zero_stage.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

STAGE_KEY = "xscale.stage_key"
STAGE_KIND = "xscale.stage_kind"
RUN_KIND = "xscale.run_kind"
PARENT = "mlflow.parentRunId"


@dataclass(frozen=True)
class TrackingInfo:
    """Where a stage logs: the store, the experiment, and the sweep's (or trial's) parent run."""

    uri: str
    experiment: str
    parent_run_id: str | None = None
    artifact_root: str | None = None


def _quiet() -> None:
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)


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
        _quiet()
        from mlflow.tracking import MlflowClient

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

    def _find(self, tag: str, value: str):
        runs = self.client.search_runs(
            [self.experiment_id], filter_string=f"tags.`{tag}` = '{value}'", max_results=2
        )
        return runs[0] if runs else None

    def parent_run(self, uid: str, name: str, tags: dict[str, str] | None = None) -> str:
        """The parent run identified by `uid` (tag xscale.parent_uid), created if absent."""
        found = self._find("xscale.parent_uid", uid)
        if found is not None:
            if found.info.status != "RUNNING":
                self.client.update_run(found.info.run_id, status="RUNNING")
            return found.info.run_id
        run = self.client.create_run(
            self.experiment_id,
            run_name=name,
            tags={"xscale.parent_uid": uid, RUN_KIND: "sweep", **(tags or {})},
        )
        return run.info.run_id

    def stage_run(self, key: str, kind: str, name: str, parent_id: str | None) -> str:
        found = self._find(STAGE_KEY, key)
        if found is not None:
            self.client.update_run(found.info.run_id, status="RUNNING")
            return found.info.run_id
        tags = {STAGE_KEY: key, STAGE_KIND: kind, RUN_KIND: "stage"}
        if parent_id:
            tags[PARENT] = parent_id
        run = self.client.create_run(self.experiment_id, run_name=name, tags=tags)
        return run.info.run_id

    def log_params(self, run_id: str, params: dict) -> None:
        """Params are write-once in MLflow; on a retried run only the missing ones are logged."""
        from mlflow.entities import Param

        have = self.client.get_run(run_id).data.params
        new = [Param(k, str(v)) for k, v in params.items() if k not in have]
        if new:
            self.client.log_batch(run_id, params=new)

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int = 0) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, step) for k, v in metrics.items() if v is not None]
        for i in range(0, len(items), 900):
            self.client.log_batch(run_id, metrics=items[i : i + 900])

    def log_artifact(self, run_id: str, path: Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(run_id, str(path), artifact_path)

    def finish(self, run_id: str, status: str = "FINISHED") -> None:
        self.client.set_terminated(run_id, status=status)
