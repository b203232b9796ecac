"""A real `mlflow server` stops while a trial trains and starts again afterwards: the trial
finishes at its own pace with one line about it, nothing is lost, and the next run of the same
command uploads what was kept, each event once (issue 11, item 4).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(store: Path, port: int, log: Path) -> subprocess.Popen:
    store.mkdir(parents=True, exist_ok=True)
    cmd = [
        str(Path(sys.executable).with_name("mlflow")),
        "server",
        "--backend-store-uri", f"sqlite:///{store / 'mlflow.db'}",
        "--default-artifact-root", (store / "artifacts").as_uri(),
        "--host", "127.0.0.1",
        "--port", str(port),
        "--workers", "1",
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd, stdout=open(log, "a"), stderr=subprocess.STDOUT, start_new_session=True
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"mlflow server exited: {log.read_text()[-2000:]}"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.5)
    stop_server(proc)
    pytest.fail(f"mlflow server did not answer in 180 s: {log.read_text()[-2000:]}")


def stop_server(proc: subprocess.Popen) -> None:
    """As a crash or a lost host would: the whole process group, at once."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=60)


def sent(journal: Path) -> int:
    cursor = journal.with_name("tracking.sent.json")
    if not cursor.is_file():
        return 0
    return max((v["seq"] for v in json.loads(cursor.read_text()).values()), default=0)


@pytest.mark.heavy
def test_trial_finishes_while_the_server_is_down_and_uploads_once_it_is_back(
    tmp_path, trial_yaml, xscale_argv, xscale_cli
):
    from mlflow import MlflowClient

    from xscale.graph.expand import trial_stages
    from xscale.graph.stage import stage_dir
    from xscale.sweep.trial import load_trial
    from xscale.tracking.journal import pending

    port, store, log = free_port(), tmp_path / "server", tmp_path / "server.log"
    uri = f"http://127.0.0.1:{port}"
    config = trial_yaml(
        tmp_path / "t.yaml",
        intermediate_task="none",
        target={"epochs": 20, "max_steps": 150, "log_every": 5, "max_eval_examples": 30},
    )
    out = tmp_path / "out"
    pretrain, target = trial_stages(load_trial(config))
    journal = stage_dir(out, target) / "tracking.jsonl"
    args = ("run", "--config", str(config), "--output-dir", str(out), "--tracking-uri", uri)

    server = start_server(store, port, log)
    trial = subprocess.Popen(
        xscale_argv(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 600
        while sent(journal) < 3:  # the target stage's run exists and has logged some steps
            assert trial.poll() is None, trial.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "the target stage never logged"
            time.sleep(0.2)
        stop_server(server)
        t_down = time.monotonic()
        stdout, stderr = trial.communicate(timeout=600)
        after_down = time.monotonic() - t_down
    finally:
        if trial.poll() is None:
            trial.kill()
        stop_server(server)
    assert trial.returncode == 0, stderr[-3000:]
    assert "Traceback" not in stderr
    # training did not wait on MLflow's retries (minutes): what was left of 150 tiny steps
    # plus evaluation, and one bounded last upload attempt per run
    assert after_down < 120, f"{after_down:.0f} s after the server stopped"
    assert "unreachable" in stderr and "xscale sync" in stderr
    kept = pending(journal)
    assert kept > 0, "nothing was kept for later"
    result = json.loads((stage_dir(out, target) / "result.json").read_text())
    assert result["metrics"]["xnli.en.accuracy"] >= 0  # the stage finished and scored

    server = start_server(store, port, log)  # back, same store
    try:
        again = xscale_cli(*args, timeout=600)  # the same command: uploads, then reuses
        assert again.returncode == 0, again.stderr[-3000:]
        assert pending(journal) == 0
        assert "nothing to send" in xscale_cli("sync", str(out), timeout=120).stdout

        client = MlflowClient(uri)
        exp = client.get_experiment_by_name("xscale")
        runs = client.search_runs([exp.experiment_id], max_results=100)
        stages = {r.data.tags.get("xscale.stage_key"): r for r in runs}
        parents = [r for r in runs if r.data.tags.get("xscale.run_kind") == "sweep"]
        assert len(runs) == 3 and len(parents) == 1  # one run per stage, one trial run
        for spec in (pretrain, target):
            run = stages[spec.key]
            assert run.info.status == "FINISHED", spec.label
            assert run.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        run = stages[target.key]
        assert run.data.metrics["xnli.en.accuracy"] == result["metrics"]["xnli.en.accuracy"]
        assert run.data.params["model_size"] == "tiny-xs"
        history = client.get_metric_history(run.info.run_id, "train.loss")
        steps = [m.step for m in history]
        assert len(steps) == len(set(steps)), f"a step logged twice: {sorted(steps)}"
        assert result["steps"] == 150
        assert sorted(steps) == list(range(5, 151, 5))  # every logged step, once
    finally:
        stop_server(server)


@pytest.fixture
def short_tmp():
    """A temp dir with a short path (Ray's socket paths under it must fit 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="xs-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_credentials_in_the_uri_and_environment_reach_no_file_or_line(
    tmp_path, short_tmp, xscale_cli
):
    """A password in `--tracking-uri` and AWS keys in the environment (issue 27, items 1-2):
    the sweep logs to the server, and neither secret is in anything xscale prints, any file of
    the output folder (manifest, journals, their cursors, Ray Tune's tuner.pkl) or any file of
    the local Ray's own session folder (its runtime-env agent's log included)."""
    from mlflow import MlflowClient
    from sweep_helpers import write_sweep

    port, store, log = free_port(), tmp_path / "server", tmp_path / "server.log"
    password, aws = "S3cretPW", "awsSECRETkeyVALUE456"
    out = tmp_path / "out"
    ray_tmp = short_tmp
    sweep = write_sweep(
        tmp_path / "s.yaml", out, intermediate_tasks=["none"], target_tasks=["xnli"]
    )
    uri = f"http://alice:{password}@127.0.0.1:{port}"
    env = {
        "TMPDIR": str(ray_tmp),
        "XSCALE_KEEP_RAY_DIR": "1",  # Ray's folder kept, to be searched below
        "AWS_SECRET_ACCESS_KEY": aws,
        "AWS_ACCESS_KEY_ID": "AKIASECRETVALUE789",
    }
    server = start_server(store, port, log)
    try:
        proc = xscale_cli("sweep", str(sweep), "--tracking-uri", uri, env=env, timeout=1200)
        assert proc.returncode == 0, proc.stderr[-3000:]
        client = MlflowClient(f"http://127.0.0.1:{port}")
        runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
        stage_runs = [r for r in runs if r.data.tags.get("xscale.stage_key")]
        assert len(stage_runs) == 2 and all(r.info.status == "FINISHED" for r in stage_runs)
    finally:
        stop_server(server)
    check_no_secret(proc, out, ray_tmp, [password, aws])
    assert f"http://127.0.0.1:{port}" in (out / "sweep.json").read_text()  # without alice


def check_no_secret(proc, out: Path, ray_tmp: Path, secrets: list[str]) -> None:
    for secret in secrets:
        assert secret not in proc.stdout + proc.stderr
    (ray_dir,) = ray_tmp.glob("xscale-ray-*")
    assert (ray_dir.stat().st_mode & 0o777) == 0o700  # this user's only
    files = [p for root in (out, ray_dir) for p in root.rglob("*") if p.is_file()]
    assert any(p.name == "sweep.json" for p in files) and any(p.name == "tuner.pkl" for p in files)
    assert any(p.name.startswith("runtime_env") for p in files)  # Ray's logs were searched
    for p in files:
        data = p.read_bytes()
        for secret in secrets:
            assert secret.encode() not in data, p
