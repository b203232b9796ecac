"""Tracking journals: a stage logs to a local journal first and uploads it in the background, so a
tracking server that is down costs training nothing and loses nothing; `xscale sync` (and the
next run) upload what was kept, each event once.

These tests use sqlite stores and a closed port; tests/test_tracking_outage.py stops and restarts
a real `mlflow server` under a running trial.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import mlflow
import pytest

from xscale.cli import main
from xscale.tracking.client import PARENT_UID, STAGE_KEY, Tracker
from xscale.tracking.journal import Journal, RunRef, pending, read_cursor, write_cursor
from xscale.tracking.upload import (
    RunLog,
    folder_journals,
    open_parent,
    parent_journal,
    sync_folder,
    upload_journal,
)

# A stage gives its last upload 15 s, then leaves the rest to `xscale sync`; these tests wait
# for the upload itself, which creating a sqlite store can make slow on a loaded machine.
LOADED = 300.0


def sqlite(tmp_path: Path, name: str = "mlflow.db") -> str:
    return f"sqlite:///{tmp_path / name}"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


def stage_ref(uri: str, key: str = "tar-key1", parent: str | None = "sweep-uid") -> RunRef:
    return RunRef(
        uri=uri,
        experiment="exp",
        tag=STAGE_KEY,
        value=key,
        name=f"target {key}",
        tags={"xscale.stage_kind": "target", "xscale.run_kind": "stage"},
        parent_tag=PARENT_UID if parent else None,
        parent_value=parent,
    )


def log_a_stage(log: RunLog) -> None:
    log.params({"seed": 0, "model_size": "tiny-xs"})
    for step in (10, 20, 30):
        log.metrics({"train.loss": 1.0 / step}, step)
    log.metrics({"xnli.en.accuracy": 61.5, "xnli.de.accuracy": 55.0}, 30)


def runs_of(uri: str) -> list:
    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name("exp")
    return client.search_runs([exp.experiment_id], max_results=100) if exp else []


# --------------------------------------------------------------------------- the journal


def test_journal_numbers_events_and_drops_a_torn_last_line(tmp_path):
    j = Journal(tmp_path / "tracking.jsonl")
    j.open(stage_ref("sqlite:///x.db"))
    j.params({"seed": 0})
    with open(j.path, "a") as f:
        f.write('{"seq": 3, "op": "metr')  # the writer was killed mid-line
    assert [e["seq"] for e in j.read()] == [1, 2]
    j2 = Journal(j.path)  # the next attempt of the stage
    j2.metrics({"a": 1.0}, 5)
    events = j2.read()
    assert [(e["seq"], e["op"]) for e in events] == [(1, "open"), (2, "params"), (3, "metrics")]
    assert events[2]["metrics"] == {"a": 1.0} and events[2]["step"] == 5
    assert j2.ref().value == "tar-key1"


def test_cursor_is_kept_per_store(tmp_path):
    path = tmp_path / "tracking.jsonl"
    assert read_cursor(path, "a") == (0, None)
    write_cursor(path, "a", 4, "run-a")
    write_cursor(path, "b", 2, "run-b")
    assert read_cursor(path, "a") == (4, "run-a") and read_cursor(path, "b") == (2, "run-b")
    (tmp_path / "tracking.sent.json").write_text("not json")
    assert read_cursor(path, "a") == (0, None)  # a corrupt cursor re-sends; MLflow dedupes


# --------------------------------------------------------------------------- uploads


def test_a_stage_and_its_sweep_upload_nested_with_everything_logged(tmp_path):
    uri = sqlite(tmp_path)
    parent = open_parent(tmp_path, uri, "exp", "sweep-uid", "sweep s", {"k": "v"})
    # A sweep's run is up before its stages start (the driver opens it before Tune starts), so
    # wait for it as a sweep does: a stage closed before it stays pending and goes up with the
    # sweep's closing sync (test_a_stage_uploaded_before_its_sweep_run_waits_for_it). Without
    # this wait the stage's last attempt raced the parent's first upload (CI: 'pending').
    assert parent.wait_for_run(LOADED) is not None
    stage = RunLog(tmp_path / "stages" / "tar-key1" / "tracking.jsonl", stage_ref(uri))
    log_a_stage(stage)
    artifact = tmp_path / "stages" / "tar-key1" / "result.json"
    artifact.write_text('{"metrics": {}}')
    stage.artifact(artifact)
    stage.finish("FINISHED")
    assert stage.close(wait=LOADED).state == "done"
    parent.finish("FINISHED")
    assert parent.close(wait=LOADED).state == "done"

    runs = {r.data.tags.get("xscale.run_kind"): r for r in runs_of(uri)}
    assert set(runs) == {"sweep", "stage"}
    sweep, run = runs["sweep"], runs["stage"]
    assert run.info.run_id == stage.run_id
    assert run.data.tags["mlflow.parentRunId"] == sweep.info.run_id
    assert sweep.data.tags[PARENT_UID] == "sweep-uid" and sweep.data.tags["k"] == "v"
    assert run.info.status == "FINISHED" and sweep.info.status == "FINISHED"
    assert run.data.params == {"seed": "0", "model_size": "tiny-xs"}
    assert run.data.metrics["xnli.en.accuracy"] == 61.5
    history = mlflow.MlflowClient(uri).get_metric_history(run.info.run_id, "train.loss")
    assert sorted(m.step for m in history) == [10, 20, 30]
    artifacts = [a.path for a in mlflow.MlflowClient(uri).list_artifacts(run.info.run_id)]
    assert artifacts == ["result.json"]
    assert pending(stage.journal.path) == 0 and pending(parent.journal.path) == 0


def test_a_lost_cursor_resends_without_duplicates(tmp_path):
    """A kill between an event reaching MLflow and its cursor write sends it again: same
    timestamps, so MLflow keeps one copy of every metric, param and status."""
    uri = sqlite(tmp_path)
    open_parent(tmp_path, uri, "exp", "sweep-uid", "sweep", {}).close(wait=LOADED)
    stage = RunLog(tmp_path / "j" / "tracking.jsonl", stage_ref(uri))
    log_a_stage(stage)
    stage.finish("FINISHED")
    stage.close(wait=LOADED)
    (run,) = [r for r in runs_of(uri) if r.data.tags.get(STAGE_KEY)]
    (tmp_path / "j" / "tracking.sent.json").unlink()  # every event is sent again
    again = upload_journal(stage.journal.path)
    assert again.state == "done" and again.sent == len(stage.journal.read())
    (same,) = [r for r in runs_of(uri) if r.data.tags.get(STAGE_KEY)]
    assert same.info.run_id == run.info.run_id  # found again by its key, not created twice
    history = mlflow.MlflowClient(uri).get_metric_history(run.info.run_id, "train.loss")
    assert sorted(m.step for m in history) == [10, 20, 30]
    assert same.data.params == run.data.params


def test_a_stage_uploaded_before_its_sweep_run_waits_for_it(tmp_path):
    uri = sqlite(tmp_path)
    stage = Journal(tmp_path / "stages" / "tar-key1" / "tracking.jsonl")
    stage.open(stage_ref(uri))
    stage.metrics({"m": 1.0}, 1)
    first = upload_journal(stage.path)
    assert first.state == "pending" and "ParentPending" in first.error
    assert runs_of(uri) == [] or not [r for r in runs_of(uri) if r.data.tags.get(STAGE_KEY)]
    parent = Journal(parent_journal(tmp_path, "sweep-uid"))
    parent.open(RunRef(uri, "exp", PARENT_UID, "sweep-uid", "sweep", {"xscale.run_kind": "sweep"}))
    assert folder_journals(tmp_path) == [parent.path, stage.path]  # parents first
    report = sync_folder(tmp_path)
    assert report.error is None and report.pending == 0 and report.sent == 3
    runs = {r.data.tags.get("xscale.run_kind"): r for r in runs_of(uri)}
    assert runs["stage"].data.tags["mlflow.parentRunId"] == runs["sweep"].info.run_id


def test_a_dead_server_costs_the_stage_nothing_and_sync_sends_it_later(tmp_path):
    dead = f"http://127.0.0.1:{closed_port()}"
    lines: list[str] = []
    t0 = time.perf_counter()
    parent = open_parent(tmp_path, dead, "exp", "sweep-uid", "sweep", {}, say=lines.append)
    stage = RunLog(tmp_path / "stages" / "s1" / "tracking.jsonl", stage_ref(dead), lines.append)
    for step in range(200):  # logging calls never wait on the network
        stage.metrics({"train.loss": 1.0}, step)
    assert time.perf_counter() - t0 < 2.0
    stage.finish("FINISHED")
    outcome = stage.close()
    parent.finish("FINISHED")
    parent.close()
    assert time.perf_counter() - t0 < 20.0, "closing waited on the dead server"
    assert outcome.state == "pending" and stage.run_id is None
    assert len(lines) == 2 and all("unreachable" in line for line in lines), lines
    assert pending(stage.journal.path) == 202  # open + 200 metrics + finish

    report = sync_folder(tmp_path)  # still down: stops at the first refusal, counts the rest
    assert report.error and report.pending_runs == 2 and report.sent == 0

    live = sqlite(tmp_path, "later.db")  # the store it is sent to once there is one
    report = sync_folder(tmp_path, live)
    assert report.error is None and report.pending == 0 and report.runs == 2
    (run,) = [r for r in runs_of(live) if r.data.tags.get(STAGE_KEY)]
    assert run.info.status == "FINISHED"
    history = mlflow.MlflowClient(live).get_metric_history(run.info.run_id, "train.loss")
    assert len(history) == 200
    assert sync_folder(tmp_path, live).sent == 0  # once only


def test_sync_command_refuses_a_folder_that_is_not_an_output_folder(tmp_path, capsys):
    assert main(["sync", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not the output folder of an xscale run or sweep" in err[0]


def test_sync_command_reports_what_is_left(tmp_path, capsys):
    dead = f"http://127.0.0.1:{closed_port()}"
    j = Journal(tmp_path / "stages" / "s1" / "tracking.jsonl")
    j.open(stage_ref(dead, parent=None))
    j.metrics({"m": 1.0}, 1)
    assert main(["sync", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "2 events of 1 runs are kept in their journals" in err[0]
    live = sqlite(tmp_path)
    assert main(["sync", str(tmp_path), "--tracking-uri", live]) == 0
    assert "sent 2 events of 1 runs" in capsys.readouterr().out
    (run,) = runs_of(live)
    assert run.data.metrics == {"m": 1.0}


def test_tracker_finds_runs_by_tag(tmp_path):
    uri = sqlite(tmp_path)
    t = Tracker(uri, "exp", tmp_path / "art")
    assert t.find(STAGE_KEY, "k") is None
    run = t.client.create_run(t.experiment_id, tags={STAGE_KEY: "k"})
    assert t.find(STAGE_KEY, "k").info.run_id == run.info.run_id


@pytest.fixture(autouse=True)
def _fast_uploads(monkeypatch):
    monkeypatch.setattr("xscale.tracking.upload.UPLOAD_INTERVAL", 0.2)


def test_mlflow_is_imported_in_the_background_without_opening_a_store(tmp_path):
    import subprocess
    import sys

    # a fresh interpreter: MLflow is not imported yet; the thread imports it, writes nothing
    code = (
        "import sys; from xscale.tracking.client import import_in_background\n"
        "assert 'mlflow' not in sys.modules\n"
        "t = import_in_background(); t.join(120)\n"
        "assert not t.is_alive() and t.daemon\n"
        "assert 'mlflow.tracking' in sys.modules\n"
        "assert 'mlflow.store.tracking.sqlalchemy_store' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True, timeout=180)
    assert list(tmp_path.iterdir()) == []


def test_mlflow_used_on_the_main_thread_while_the_background_import_runs(tmp_path):
    """`xscale sweep --address` on a running cluster: `ray.init` returns at once and the driver
    opens its tracking store while the background import is still going. MLflow must never be
    imported on two threads at once (it failed 3 of 3 with "partially initialized module
    'mlflow'" before `mlflow_ready`)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from xscale.tracking.client import Tracker, import_in_background\n"
        "assert 'mlflow' not in sys.modules\n"
        "import_in_background()\n"
        f"t = Tracker('sqlite:///{tmp_path}/mlflow.db', 'race')\n"
        "assert t.experiment_id\n"
    )
    for _ in range(3):
        proc = subprocess.run(
            [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=180
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
