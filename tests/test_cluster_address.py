"""`xscale sweep --address` runs on an existing Ray cluster started with `ray start --head`."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import REPO_ROOT

pytestmark = pytest.mark.slow

RAY = Path(sys.executable).with_name("ray")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sweep_on_an_existing_cluster(tmp_path):
    port = _free_port()
    # Stay on loopback (this machine has no other network to form a cluster on): the head and
    # the driver both need Ray's single-machine mode, and the driver the cluster's auth token.
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "token"}
    head = [
        str(RAY),
        "start",
        "--head",
        f"--port={port}",
        "--node-ip-address=127.0.0.1",
        "--num-cpus=2",
        "--include-dashboard=false",
        "--disable-usage-stats",
        "--block",
    ]
    # The head runs in a process group of its own (gcs, raylet, workers all join it) and is
    # stopped by signalling that group: `ray stop --force` would kill every Ray process on the
    # machine, including a sweep another test runs at the same time (pytest -n 2).
    head_proc = subprocess.Popen(
        head, env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        _wait_for_port(port, head_proc)
        out = tmp_path / "out"
        sweep = {
            "name": "on-cluster",
            "output_dir": str(out),
            "models": ["tiny-xs"],
            "intermediate_tasks": ["none"],
            "target_tasks": ["xnli"],
            "data": {"root": "fixtures"},
            "pretrain": {"max_lines_per_language": 300, "max_length": 32},
            "target": {"max_steps": 4, "batch_size": 16, "max_length": 48, "max_eval_examples": 30},
        }
        path = tmp_path / "sweep.yaml"
        path.write_text("# xscale sweep sweep.yaml\n" + yaml.safe_dump(sweep))
        cmd = [
            sys.executable,
            "-m",
            "xscale.cli",
            "sweep",
            str(path),
            "--address",
            f"127.0.0.1:{port}",
        ]
        proc = subprocess.run(
            cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        done = sorted(p.parent.name for p in out.glob("stages/*/COMPLETE"))
        assert len(done) == 2 and done[0].startswith("pre-") and done[1].startswith("tar-")
    finally:
        _stop_group(head_proc)


def _wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"ray start exited: {proc.stdout.read().decode()[-2000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise AssertionError(f"the Ray head did not listen on port {port} within {timeout:.0f} s")


def _stop_group(proc: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 15)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.mark.heavy
def test_a_sweep_on_two_nodes(tmp_path):
    """Two Ray nodes (own raylets, own ports, on loopback): `xscale sweep --address` joins
    them, a 2-worker stage placed `spread` has a rank on each node, and a stage reads the
    model its parent wrote from a rank on the other node."""
    cluster = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("ray_two_nodes.py")), "2"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        address, seen, deadline = None, [], time.monotonic() + 180  # a bound, not a speed test
        while address is None and time.monotonic() < deadline:
            ready, _, _ = select.select([cluster.stdout], [], [], 5)
            line = cluster.stdout.readline() if ready else ""
            if ready and not line:
                break  # the cluster script ended
            seen.append(line)
            if line.startswith("ADDRESS "):
                address = line.split()[1]
        assert address and address.startswith("127.0.0.1:"), "".join(seen)[-2000:]
        out = tmp_path / "out"
        sweep = {
            "name": "two-nodes",
            "output_dir": str(out),
            "max_concurrent_trials": 1,
            "models": ["tiny-s"],
            "intermediate_tasks": ["none"],
            "target_tasks": ["xnli"],
            "eval_languages": {"xnli": ["en", "de"]},
            "data": {"root": "fixtures"},
            "pretrain": {"max_lines_per_language": 200, "max_length": 32, "batch_size": 32},
            "target": {"max_steps": 4, "batch_size": 16, "max_length": 48, "max_eval_examples": 30},
            "resources": {"tiny-s": {"workers": 2, "cpus": 1, "placement": "spread"}},
        }
        path = tmp_path / "sweep.yaml"
        path.write_text(yaml.safe_dump(sweep))
        env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
        cmd = [sys.executable, "-m", "xscale.cli", "sweep", str(path), "--address", address]
        proc = subprocess.run(
            cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        nodes = {}
        for stage in out.glob("stages/*"):
            assert (stage / "COMPLETE").is_file(), stage.name
            last = json.loads((stage / "attempts.jsonl").read_text().splitlines()[-1])
            nodes[stage.name] = last["nodes"]
        multi = nodes  # tiny-s's pretrain and target, each on 2 workers spread over the nodes
        assert len(multi) == 2 and all(len(v) == 2 for v in multi.values()), nodes
        target = next(v for k, v in multi.items() if k.startswith("tar-"))
        assert len(set(target)) == 2, nodes  # one rank on each node
        pretrain = next(v for k, v in multi.items() if k.startswith("pre-"))
        # the rank on the node where pretrain's rank 0 did not write the model read it
        assert any(n != pretrain[0] for n in target), nodes
        assert len({n for v in nodes.values() for n in v}) == 2, nodes
    finally:
        cluster.stdin.close()
        try:
            cluster.wait(60)
        except subprocess.TimeoutExpired:
            _stop_group(cluster)


def test_an_address_that_is_not_ray_is_refused_in_one_line(tmp_path):
    """`--address` at a plain HTTP server (issue 27, item 3): ray.init would block in Ray's C++
    client for good, deaf to Ctrl-C; the GCS probe answers first, in one line, and nothing is
    left behind (no SWEEP.lock)."""
    from sweep_helpers import write_sweep

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + 60
        while True:  # until it listens
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "http.server did not start"
                time.sleep(0.2)
        out = tmp_path / "out"
        sweep = write_sweep(tmp_path / "s.yaml", out, intermediate_tasks=["none"])
        proc = subprocess.run(
            [sys.executable, "-m", "xscale.cli", "sweep", str(sweep), "--address",
             f"127.0.0.1:{port}"],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    finally:
        server.kill()
        server.wait()
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(lines) == 1 and "is not a Ray cluster's GCS" in lines[0], lines
    assert not (out / "SWEEP.lock").exists()
