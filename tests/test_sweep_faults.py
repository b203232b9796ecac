"""Sweeps under faults, end to end: the driver killed with SIGKILL and the same command run
again, a crashed stage retried from its checkpoint, a second sweep on a busy folder, Ray that
does not start or a cluster that does not answer, resources no node has, and the network
surface of a local sweep (loopback only).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from sweep_helpers import (
    PHASE,
    REPO,
    SWEEP_TIMEOUT,
    _alive,
    _descendants,
    _group_processes,
    _kill_all,
    _names,
    attempts,
    check_one_run_per_stage,
    non_loopback_listeners,
    planned_stages,
    psutil_process,
    run_cli,
    stage_states,
    start_sweep,
    sweep_cmd,
    write_sweep,
)

from xscale.schedule.tune import _processes_of


@pytest.mark.slow
@pytest.mark.heavy
def test_sweep_resumes_after_the_driver_is_killed(tmp_path):
    out = tmp_path / "out"
    # mnli trains long enough to be caught mid-way, well after the first target stage is done
    # (600 steps took 3-6 s once training got faster: CI saw it finish between the check and
    # the kill); everything else is quick.
    inter = {**PHASE, "epochs": 100, "max_steps": 3000}
    path = write_sweep(
        tmp_path / "kill.yaml",
        out,
        name="killed",
        intermediate_tasks=["none", "mnli"],
        intermediate=inter,
    )
    n_stages = 1 + 1 + 2 * 2  # pretrain, mnli, {none, mnli} x {xnli, pawsx}
    proc, log = start_sweep(path, tmp_path / "first.log")  # log closed below
    descendants: list = []
    try:
        deadline = time.monotonic() + 240
        while True:
            done, running = stage_states(out)
            if len(done) >= 2 and any(k.startswith("int-") for k in running):
                break
            assert proc.poll() is None, "the sweep ended before it could be killed mid-way"
            assert time.monotonic() < deadline, "no stage completed in time"
            time.sleep(0.1)
        descendants = _descendants(proc.pid)
        # its private Ray folder, found while it runs (once it is killed, any other sweep
        # starting on this machine may remove the folder: its driver is gone)
        (ray_dir,) = {p.parents[1] for p in Path(tempfile.gettempdir()).glob(
            f"xscale-ray-*/r/session_*_{proc.pid}")}  # fmt: skip
        # a local sweep's Ray (GCS, raylet, trial workers, agents) listens on loopback only
        exposed = non_loopback_listeners([psutil_process(proc.pid), *descendants])
        os.kill(proc.pid, signal.SIGKILL)  # the driver only
        proc.wait(timeout=30)
        # Ray's processes should go away with the driver; the trial workers must, before the
        # folders are inspected (a live worker could still finish a stage). Its agents get 5 s.
        start = time.monotonic()
        while left := _alive(descendants) + _group_processes(proc.pid):
            workers = [n for n in _names(left) if not n.endswith("Agent")]
            waited = time.monotonic() - start
            if waited > 15 or (not workers and waited > 5):
                break
            time.sleep(0.5)
        lingering = _names(left)
    finally:
        log.close()
        if proc.poll() is None:
            _kill_all(proc, descendants or _descendants(proc.pid))
    assert not exposed, f"the sweep's processes listen beyond loopback: {exposed}"
    done_at_kill, in_progress = stage_states(out)
    assert set(done) <= done_at_kill
    # Trial workers outlive the driver by a second or two and may finish a stage meanwhile.
    assert 1 <= len(in_progress) <= 2, in_progress  # at most max_concurrent_trials
    assert any(k.startswith("int-") for k in in_progress), in_progress

    again = run_cli("sweep", str(path), timeout=SWEEP_TIMEOUT, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-4000:]
    # what the killed driver's Ray left (processes, its folder of logs; its exit handler never
    # ran) is gone once the next sweep has started: it stops any process still naming the
    # folder and removes it
    assert not ray_dir.exists(), ray_dir
    assert not _processes_of(str(ray_dir)), lingering

    planned = planned_stages(path)
    assert len(planned) == n_stages
    done_after, running_after = stage_states(out)
    assert done_after == set(planned) and not running_after
    counts = {k: attempts(out / "stages" / k) for k in planned}
    for key in done_at_kill:
        assert counts[key] == 1, f"{key} was complete before the kill but ran again"
    for key in in_progress:
        assert counts[key] == 2, f"{key} was running at the kill: {counts[key]} attempts"
    assert sum(counts.values()) == n_stages + len(in_progress)
    check_one_run_per_stage(out, "killed", set(planned))


@pytest.mark.slow
@pytest.mark.heavy
def test_a_crashed_stage_is_retried_from_its_checkpoint(tmp_path):
    """SIGKILL the trial process of a running stage: Ray's FailureConfig restarts the trial and
    the stage resumes from its last DeepSpeed checkpoint, logging into the same MLflow run."""
    out = tmp_path / "out"
    path = write_sweep(
        tmp_path / "retry.yaml",
        out,
        name="retry",
        intermediate_tasks=["mnli"],
        target_tasks=["xnli"],
        intermediate={**PHASE, "epochs": 50, "max_steps": 600, "checkpoint_every": 100},
        failure={"max_failures": 1},
    )
    proc, log = start_sweep(path, tmp_path / "sweep.log")  # log closed below
    try:
        deadline = time.monotonic() + 240
        while not list(out.glob("stages/int-*/ckpt/latest")):
            assert proc.poll() is None, (tmp_path / "sweep.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the intermediate stage never checkpointed"
            time.sleep(0.1)
        (stage,) = [p.parents[1] for p in out.glob("stages/int-*/ckpt/latest")]
        pid = json.loads((stage / "attempts.jsonl").read_text().splitlines()[0])["pid"]
        os.kill(pid, signal.SIGKILL)  # the trial's worker process, not the driver
        proc.wait(timeout=SWEEP_TIMEOUT)
    finally:
        log.close()
        if proc.poll() is None:
            _kill_all(proc, _descendants(proc.pid))
    assert proc.returncode == 0, (tmp_path / "sweep.log").read_text()[-4000:]
    lines = (stage / "attempts.jsonl").read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[1])["pid"] != pid
    result = json.loads((stage / "result.json").read_text())
    assert result["resumed_from_step"] >= 100 and result["steps"] == 600
    check_one_run_per_stage(out, "retry", set(planned_stages(path)))


def test_second_sweep_on_a_busy_folder_refuses_with_one_line(tmp_path):
    """A sweep's driver holds <output_dir>/SWEEP.lock; another sweep on the folder refuses at
    once, naming the holder, and writes nothing."""
    out = tmp_path / "out"
    out.mkdir()
    path = write_sweep(tmp_path / "s.yaml", out)
    hold = (
        "import sys, time; from xscale.graph.lock import FolderLock; "
        "FolderLock(sys.argv[1]).acquire(); print('held', flush=True); time.sleep(600)"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", hold, str(out / "SWEEP.lock")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        proc = run_cli("sweep", str(path), timeout=120)
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert proc.returncode == 2, proc.stderr
        assert len(lines) == 1 and f"is in use by pid {holder.pid}" in lines[0], proc.stderr
        assert "another --output-dir" in lines[0]
        assert sorted(p.name for p in out.iterdir()) == ["SWEEP.lock"]  # nothing written
    finally:
        holder.kill()


@pytest.mark.parametrize(
    "extra, env, needle",
    [
        # a Ray that does not come up in time (as on a loaded machine): a bounded wait
        ((), {"XSCALE_RAY_START_TIMEOUT": "0.5"}, "Ray did not start within 0 s"),
        # nothing listens there
        (("--address", "127.0.0.1:9"), {"XSCALE_RAY_START_TIMEOUT": "20"}, "--address 127.0.0.1:9"),
    ],
    ids=["start-timeout", "unreachable-address"],
)
def test_ray_start_failure_is_one_line_and_writes_nothing(tmp_path, extra, env, needle):
    out = tmp_path / "out"
    path = write_sweep(tmp_path / "s.yaml", out)
    proc = subprocess.run(
        sweep_cmd("sweep", str(path), *extra),
        capture_output=True,
        text=True,
        timeout=180,
        cwd=REPO,
        env={**os.environ, **env},
    )
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert len(lines) == 1 and needle in lines[0], proc.stderr[-3000:]
    assert not out.exists()  # no sweep.json, no MLflow store, no parent run


@pytest.mark.parametrize(
    "resources, needle",
    [
        ({"tiny-xs": {"gpus": 1}}, "resources.tiny-xs: a worker needs 1 CPUs and 1 GPUs"),
        ({"tiny-xs": {"cpus": 4096}}, "resources.tiny-xs: a worker needs 4096 CPUs"),
    ],
    ids=["gpus-where-there-are-none", "more-cpus-than-any-node"],
)
def test_resources_no_node_has_are_refused_on_a_local_ray(tmp_path, resources, needle):
    out = tmp_path / "out"
    path = write_sweep(tmp_path / "s.yaml", out, resources=resources)
    proc = run_cli("sweep", str(path), timeout=180)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert len(lines) == 1 and needle in lines[0] and str(path) in lines[0], proc.stderr[-3000:]
    assert not out.exists()


LOCAL_RAY_PROBE = """
import json, sys, time
import psutil, ray
from xscale.schedule.tune import start_ray
from xscale.sweep.schema import StageResources

start_ray(None, {"tiny-xs": StageResources(1, 0, 1)})
ray.get(ray.remote(lambda: 1).remote())  # a worker process, as a trial starts one
procs = [psutil.Process(), *psutil.Process().children(recursive=True)]
print(json.dumps([[p.pid, p.name()] for p in procs]))
sys.stdout.flush()
sys.stdin.readline()  # the test inspects the sockets, then lets Ray shut down
ray.shutdown()
"""


def test_local_ray_listens_on_loopback_only(tmp_path):
    """`start_ray` without --address (every local sweep): its GCS, raylet, workers and agents
    accept connections on loopback only (Ray 2.60 binds every interface unless told
    otherwise, although xscale passes 127.0.0.1 as the node address)."""
    import psutil

    env = {k: v for k, v in os.environ.items() if k != "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"}
    proc = subprocess.Popen(
        [sys.executable, "-c", LOCAL_RAY_PROBE],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
        cwd=tmp_path,
        start_new_session=True,
    )
    try:
        listed = json.loads(proc.stdout.readline() or "[]")
        assert listed, "the probe did not start Ray"
        procs = [psutil.Process(pid) for pid, _ in listed if psutil.pid_exists(pid)]
        names = {name for _, name in listed}
        assert {"gcs_server", "raylet"} <= names, names
        listening = [p for p in procs if _listens(p)]
        assert len(listening) >= 3, "expected the GCS, raylet and workers to listen"
        exposed = non_loopback_listeners(procs)
        assert not exposed, f"local Ray listens beyond loopback: {exposed}"
    finally:
        if proc.poll() is None:
            proc.stdin.write("\n")
            proc.stdin.flush()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def _listens(p) -> bool:
    import psutil

    try:
        return any(c.status == psutil.CONN_LISTEN for c in p.net_connections(kind="inet"))
    except psutil.Error:
        return False


LONE_RANK_PROBE = """
import json, torch, psutil
import torch.distributed as dist
from xscale.train.distributed import init_distributed, rank_world
init_distributed()
t = torch.ones(1)
dist.all_reduce(t)  # the group works (DeepSpeed's ZeRO calls collectives on a world of one)
conns = psutil.Process().net_connections(kind="inet")
listening = [[c.laddr.ip, c.laddr.port] for c in conns if c.status == "LISTEN"]
print(json.dumps([rank_world(), listening]))
"""


def test_a_lone_stage_process_group_listens_on_loopback_only():
    """Every single-worker stage is rank 0 of 1: its process group needs no TCP rendezvous
    (torch's TCPStore listens on every interface), so nothing it opens is reachable from
    outside."""
    import ipaddress

    env = {k: v for k, v in os.environ.items() if k not in ("MASTER_ADDR", "WORLD_SIZE", "RANK")}
    proc = subprocess.run(
        [sys.executable, "-c", LONE_RANK_PROBE],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (rank_world, listening) = json.loads(proc.stdout.strip().splitlines()[-1])
    assert rank_world == [0, 1]
    for ip, port in listening:
        assert ipaddress.ip_address(ip).is_loopback, f"listens on {ip}:{port}"


@pytest.mark.slow
@pytest.mark.heavy
@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_sweep_says_so_and_resumes(tmp_path, sig, code):
    """Ctrl-C or SIGTERM while a stage trains (issue 27, item 4): one line saying it was
    interrupted, how many stages are complete and how many left, exit 128 + the signal, no
    "failed" and no stack dump; the same command then finishes the sweep."""
    out = tmp_path / "out"
    inter = {**PHASE, "epochs": 100, "max_steps": 1500}  # long enough to be caught mid-way
    path = write_sweep(
        tmp_path / "s.yaml", out, name="stopped", target_tasks=["xnli"], intermediate=inter
    )
    proc, log = start_sweep(path, tmp_path / "first.log")
    try:
        deadline = time.monotonic() + 300
        while True:  # the pretrain stage done, the intermediate one training
            done, running = stage_states(out)
            if len(done) >= 1 and any(k.startswith("int-") for k in running):
                break
            assert proc.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the intermediate stage never started"
            time.sleep(0.2)
        os.kill(proc.pid, sig)
        proc.wait(timeout=300)
    finally:
        log.close()
        if proc.poll() is None:
            _kill_all(proc, _descendants(proc.pid))
    text = (tmp_path / "first.log").read_text()
    assert proc.returncode == code, text[-3000:]
    line = f"stopped: interrupted ({sig.name})"
    assert line in text and "1 of 3 stages complete, 2 left; re-run the same command" in text
    assert "failed 0, blocked" not in text and "Traceback" not in text
    assert "*** SIG" not in text and "StackTrace" not in text  # Ray's C++ signal dump
    again = run_cli("sweep", str(path), timeout=SWEEP_TIMEOUT)
    assert again.returncode == 0, again.stderr[-3000:]
    done, running = stage_states(out)
    assert len(done) == 3 and not running


SECRETS_PROBE = """
import json, os, psutil, ray
from xscale.schedule.tune import start_ray
from xscale.sweep.schema import StageResources

start_ray(None, {"tiny-xs": StageResources(1, 0, 1)})
trial = ray.get(ray.remote(lambda: dict(os.environ)).remote(), timeout=300)  # as a trial
raylet = [p for p in psutil.Process().children(recursive=True) if p.name() == "raylet"]
print(json.dumps({"trial": trial, "raylet": raylet[0].environ(), "driver": dict(os.environ)}))
ray.shutdown()
"""


def test_a_local_rays_processes_start_without_secrets_trials_do_not_need(tmp_path):
    """Issue 27, item 2: a variable named like a secret that no stage reads (a GitHub token, a
    W&B key) is not in the environment of a local Ray's raylet or its trials; the ones a stage
    does read (MLflow's credentials, the artifact store's, the hub's) are; the driver keeps all."""
    secrets = {"GITHUB_TOKEN": "ghp_NOTforTRIALS1", "WANDB_API_KEY": "wandbNOTforTRIALS2"}
    needed = {"MLFLOW_TRACKING_PASSWORD": "mlflowPW3", "AWS_SECRET_ACCESS_KEY": "awsKEY4"}
    proc = subprocess.run(
        [sys.executable, "-c", SECRETS_PROBE],
        capture_output=True,
        text=True,
        env={**os.environ, **secrets, **needed},
        cwd=tmp_path,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    for where in ("trial", "raylet"):
        assert not set(secrets) & set(seen[where]), (where, set(secrets) & set(seen[where]))
        for k, v in needed.items():
            assert seen[where].get(k) == v, (where, k)
    assert all(seen["driver"].get(k) == v for k, v in {**secrets, **needed}.items())
