"""The MLflow UI shows a finished smoke sweep as xscale logs it: `mlflow ui` on loopback over
the sweep's sqlite store (a parent sweep run with 18 nested stage runs), rendered by headless
Chromium.

Needs /usr/bin/chromium (`apt-get install -y chromium`); skipped without it. Saves a screenshot to
test-artifacts/mlflow_ui.png under the repository root.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="/usr/bin/chromium absent (apt-get install -y chromium)"
    ),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sweep_runs(out: Path) -> tuple[str, str, list[str]]:
    """(experiment id, the sweep run's name, its stage runs' names) of a finished sweep."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{out / 'mlflow.db'}")
    exp = client.get_experiment_by_name("smoke").experiment_id
    runs = client.search_runs([exp], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("xscale.run_kind") == "sweep"]
    assert len(parents) == 1
    children = [
        r.info.run_name
        for r in runs
        if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id
    ]
    assert len(children) == 32  # 2 pretrain + 6 intermediate + 24 target stages
    return exp, parents[0].info.run_name, children


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"mlflow ui exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1)
    pytest.fail(f"mlflow ui did not answer in {timeout}s: {log.read_text()[-2000:]}")


def _chromium(profile: Path, url: str, *args: str) -> str:
    cmd = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--window-size=1400,900",
        "--virtual-time-budget=15000",
        *args,
        url,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _text(dom: str) -> str:
    dom = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", dom)).split())


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the server's whole process group (its workers take ~10 s), then SIGKILL."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.5)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)


def test_mlflow_ui_shows_sweep_runs(tmp_path, finished_smoke_sweep):
    store = finished_smoke_sweep
    exp, parent_name, child_names = _sweep_runs(store)
    port = _free_port()
    base = f"http://localhost:{port}"  # the server answers Host: localhost only
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    mlflow_cmd = [str(mlflow_bin)] if mlflow_bin.exists() else [shutil.which("mlflow")]
    log = tmp_path / "server.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                *mlflow_cmd,
                "ui",
                "--backend-store-uri",
                f"sqlite:///{store / 'mlflow.db'}",
                "--default-artifact-root",
                (store / "mlartifacts").as_uri(),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
            ],
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_healthy(f"http://127.0.0.1:{port}", proc, log)

        # Default (nested) view: the sweep run is a top-level row, stages are its children.
        nested = _text(
            _chromium(tmp_path / "chrome-1", f"{base}/#/experiments/{exp}/runs", "--dump-dom")
        )
        assert parent_name in nested, nested[:2000]
        assert f"{len(child_names) + 1} matching runs" in nested, nested[:2000]
        assert not [n for n in child_names if n in nested], "stage runs should nest under sweep"

        # Flat view (sorted by name): every stage run is listed by name.
        flat_url = f"{base}/#/experiments/{exp}/runs?orderByKey=attributes.run_name&orderByAsc=true"
        flat = _text(_chromium(tmp_path / "chrome-2", flat_url, "--dump-dom"))
        missing = [n for n in [parent_name, *child_names] if n not in flat]
        assert not missing, f"run names absent from the rendered page: {missing}"

        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / "mlflow_ui.png"
        shot.unlink(missing_ok=True)
        _chromium(tmp_path / "chrome-3", flat_url, f"--screenshot={shot}")
        data = shot.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000

        # Additional check through the REST API (the DOM checks above are the test).
        req = urllib.request.Request(
            f"{base}/api/2.0/mlflow/runs/search",
            data=json.dumps({"experiment_ids": [exp], "max_results": 100}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            runs = json.load(r)["runs"]
        assert {r["info"]["run_name"] for r in runs} == {parent_name, *child_names}
    finally:
        _stop(proc)
