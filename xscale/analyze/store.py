"""Reading a sweep's target runs from MLflow, and `analyze`: store -> report folder, logged as
artifacts on the sweep run."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from xscale.analyze.analysis import build_analysis
from xscale.analyze.formatting import safe_name
from xscale.analyze.report import write_report
from xscale.errors import XScaleError
from xscale.tracking.client import mlflow_ready
from xscale.tracking.upload import fail_fast_requests


def run_to_record(run: Any) -> dict:
    return {
        "run_id": run.info.run_id,
        "run_name": run.info.run_name,
        "status": run.info.status,
        "start_time": run.info.start_time,
        "params": dict(run.data.params),
        "metrics": dict(run.data.metrics),
        "kind": run.data.tags.get("xscale.stage_kind"),
    }


def _search_all(client: Any, experiment_id: str, filter_string: str, order_by=None) -> list:
    runs, token = [], None
    while True:
        page = client.search_runs(
            [experiment_id], filter_string, max_results=1000, order_by=order_by, page_token=token
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def load_target_records(
    client: Any, experiment_id: str, parent_run_id: str | None = None
) -> list[dict]:
    flt = "tags.`xscale.stage_kind` = 'target'"
    if parent_run_id:
        flt += f" and tags.`mlflow.parentRunId` = '{parent_run_id}'"
    return [run_to_record(r) for r in _search_all(client, experiment_id, flt)]


def load_stage_records(
    client: Any, experiment_id: str, parent_run_id: str | None = None
) -> list[dict]:
    """The stage runs other than targets (pretrain, cartography, intermediate)."""
    flt = "tags.`xscale.run_kind` = 'stage' and tags.`xscale.stage_kind` != 'target'"
    if parent_run_id:
        flt += f" and tags.`mlflow.parentRunId` = '{parent_run_id}'"
    return [run_to_record(r) for r in _search_all(client, experiment_id, flt)]


def find_sweep_run(client: Any, experiment_id: str) -> str | None:
    """The latest run tagged `xscale.run_kind=sweep`, if any."""
    runs = client.search_runs(
        [experiment_id],
        "tags.`xscale.run_kind` = 'sweep'",
        max_results=1,
        order_by=["attributes.start_time DESC"],
    )
    return runs[0].info.run_id if runs else None


def resolve_store(
    tracking_uri: str | None, experiment: str | None, sweep_dir: str | Path | None
) -> tuple[str, str | None]:
    """The tracking URI (a sweep folder's `mlflow.db` by default); refuses to create a store."""
    if tracking_uri is None:
        if sweep_dir is None:
            raise XScaleError("analyze: give a sweep output folder or a tracking URI")
        db = Path(sweep_dir) / "mlflow.db"
        if not db.is_file():
            raise XScaleError(f"no MLflow store at {db} (is {sweep_dir} a sweep output folder?)")
        tracking_uri = f"sqlite:///{db.resolve()}"
    elif tracking_uri.startswith("sqlite:///"):
        db = Path(tracking_uri[len("sqlite:///") :])
        if not db.is_file():
            raise XScaleError(f"no MLflow sqlite store at {db} (tracking URI {tracking_uri})")
    return tracking_uri, experiment


def analyze(
    tracking_uri: str | None = None,
    experiment: str | None = None,
    out_dir: str | Path | None = None,
    *,
    sweep_dir: str | Path | None = None,
    parent_run_id: str | None = None,
    expected: Iterable[Sequence[str]] | None = None,
    main_metrics: Mapping[str, str] | None = None,
    plots: bool = True,
    log_artifacts: bool = True,
) -> Path:
    """Read a sweep's target runs from MLflow, write the report folder, log it on the sweep run.

    `sweep_dir`: a sweep output folder (store `<dir>/mlflow.db`, report in `<dir>/analysis`).
    `experiment`: the sweep's experiment name (optional when the store holds only one).
    `parent_run_id`: read only that sweep run's children, and log the report there.
    `expected`: the cells (size, intermediate, target, train_languages, seed) the sweep planned;
    default: the product of the values seen. `main_metrics`: {task: metric} for tasks outside
    XTREME. Returns the report folder.
    """
    mlflow_ready()  # a caller may have started MLflow's import on another thread
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    tracking_uri, experiment = resolve_store(tracking_uri, experiment, sweep_dir)
    fail_fast_requests()  # a server that does not answer is one line now, not minutes of retries
    try:
        client = MlflowClient(tracking_uri=tracking_uri)
        if experiment is None:
            names = [e.name for e in client.search_experiments() if e.name != "Default"]
            if len(names) != 1:
                raise XScaleError(
                    f"{tracking_uri} holds {len(names)} experiments "
                    f"({', '.join(names) or 'none'}); name one with --experiment"
                )
            experiment = names[0]
        exp = client.get_experiment_by_name(experiment)
        if exp is None:
            names = [e.name for e in client.search_experiments()]
            raise XScaleError(
                f"no MLflow experiment {experiment!r} in {tracking_uri} (found: {', '.join(names)})"
            )
        records = load_target_records(client, exp.experiment_id, parent_run_id)
        stages = load_stage_records(client, exp.experiment_id, parent_run_id)
        if not records:
            raise XScaleError(
                f"experiment {experiment!r} has no target runs (tag xscale.stage_kind='target')"
            )
        parent = parent_run_id or find_sweep_run(client, exp.experiment_id)
    except MlflowException as e:
        first = (e.message.strip().splitlines() or [""])[0]
        if "Max retries exceeded" in first or "Failed to establish" in first:
            first = "the server does not answer"
        raise XScaleError(f"MLflow store {tracking_uri}: {first[:300]}") from None
    if out_dir is None:
        out_dir = (
            Path(sweep_dir) / "analysis" if sweep_dir else Path("analysis") / safe_name(experiment)
        )
    analysis = build_analysis(records, expected, main_metrics, stages)
    header = [
        f"experiment: {experiment} (id {exp.experiment_id})",
        f"tracking URI: {tracking_uri}",
        f"sweep run: {parent or 'none found'}",
        f"target runs read: {len(records)}",
        f"generated: {_dt.datetime.now(_dt.timezone.utc).isoformat(timespec='seconds')}",
    ]
    folder = write_report(analysis, Path(out_dir), header, plots)
    if log_artifacts and parent:
        client.log_artifacts(parent, str(folder), artifact_path="analysis")
    return folder
