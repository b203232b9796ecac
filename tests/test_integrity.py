"""Nothing lost, nothing trusted blindly (issue 11, items 1-3): folder locks across processes,
outputs recorded in the COMPLETE marker and verified before reuse, MLflow runs reconciled with
complete stages. Real processes throughout (kill -9 included), no mocks."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
from conftest import REPO_ROOT

from xscale.errors import XScaleError
from xscale.graph import lock as lockmod
from xscale.graph.expand import trial_stages
from xscale.graph.lock import FolderLock
from xscale.graph.stage import (
    ATTEMPTS_FILE,
    MARKER,
    check_outputs,
    is_complete,
    mark_complete,
    stage_dir,
)
from xscale.sweep.trial import load_trial

HOLD = """
import sys, time
from xscale.graph.lock import FolderLock
lock = FolderLock(sys.argv[1])
lock.acquire()
print("held", flush=True)
time.sleep(600)
"""


def holder(path: Path) -> subprocess.Popen:
    """A real process that takes the lock at `path` and keeps it."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


# --------------------------------------------------------------------------- locks


def test_lock_is_exclusive_across_processes_and_recovered_after_kill_9(tmp_path):
    path = tmp_path / "LOCK"
    proc = holder(path)
    try:
        lock = FolderLock(path, "stage s")
        assert not lock.try_acquire()
        with pytest.raises(XScaleError, match=rf"stage s is in use by pid {proc.pid} on"):
            lock.acquire(wait=0)
        os.kill(proc.pid, signal.SIGKILL)  # the owner dies without releasing
        proc.wait()
        lock.acquire(wait=5)  # stale (its pid is gone): taken over
        assert json.loads(path.read_text())["pid"] == os.getpid()
        lock.release()
        assert not path.exists()
    finally:
        proc.kill()


def test_lock_of_another_host_is_stale_only_when_not_touched(tmp_path):
    path = tmp_path / "LOCK"
    path.write_text(json.dumps({"host": "elsewhere", "pid": 1, "time": time.time()}))
    assert not FolderLock(path).try_acquire()  # fresh: its owner may be alive over there
    old = time.time() - lockmod.STALE - 5
    os.utime(path, (old, old))  # no heartbeat for longer than STALE: that machine is gone
    lock = FolderLock(path)
    assert lock.try_acquire()
    assert json.loads(path.read_text())["host"] == socket.gethostname()
    lock.release()


def test_lock_left_by_this_process_is_taken_over(tmp_path):
    """A reused worker process (Ray) holding no lock of its own any more."""
    path = tmp_path / "LOCK"
    path.write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "token": "x"}))
    lock = FolderLock(path)
    assert lock.try_acquire()
    lock.release()


# --------------------------------------------------------------------------- markers


def test_marker_records_outputs_and_detects_truncation(tmp_path):
    (tmp_path / "model").mkdir()
    weights = tmp_path / "model" / "model.safetensors"
    weights.write_bytes(b"x" * 1000)
    mark_complete(tmp_path, {"metrics": {}})
    record = json.loads((tmp_path / MARKER).read_text())
    assert set(record["files"]) == {"model/model.safetensors", "result.json"}
    assert is_complete(tmp_path) and check_outputs(tmp_path, full=True) is None
    weights.write_bytes(b"y" * 1000)  # same size, other bytes: only the hash sees it
    assert is_complete(tmp_path)
    assert (
        check_outputs(tmp_path, full=True)
        == "model/model.safetensors does not match its recorded SHA-256"
    )
    weights.write_bytes(b"x" * 10)  # truncated
    assert not is_complete(tmp_path)
    assert check_outputs(tmp_path) == "model/model.safetensors has 10 bytes, 1000 recorded"


@pytest.mark.parametrize(
    "text, reason",
    [
        ("ok\n", "COMPLETE is not JSON"),  # an early xscale's bare marker: nothing to verify
        ("{}", "COMPLETE lists no outputs"),
        ('{"files": []}', "COMPLETE lists no outputs"),
        ('{"files": "x"}', "COMPLETE lists no outputs"),
        ('{"files": {"model/model.safetensors": 5}}', "is not a size and a SHA-256"),
        ('{"files": {"../x": {"size": 1, "sha256": "a"}}}', "outside the stage folder"),
        (b"\xff\xfe", "COMPLETE cannot be read"),
    ],
)
def test_a_marker_xscale_did_not_write_is_not_trusted(tmp_path, text, reason):
    """Issue 27, item 10: a damaged or edited marker makes the stage `damaged` (runs again),
    never complete and never a crash."""
    from xscale.graph.stage import stage_state

    marker = tmp_path / MARKER
    marker.write_bytes(text if isinstance(text, bytes) else text.encode())
    assert not is_complete(tmp_path)
    assert reason in check_outputs(tmp_path)
    assert stage_state(tmp_path) == "damaged"


def test_a_damaged_selection_is_no_selection(tmp_path):
    from xscale.graph.selection import load_selection, verify_reuse

    (tmp_path / "groups").mkdir()
    (tmp_path / "groups" / "a.json").write_text("{bad")
    (tmp_path / "groups" / "b.json").write_text('{"selected": "gone"}')
    (tmp_path / "groups" / "c.json").write_text('{"selected": 3}')
    assert load_selection(tmp_path) == {"b": "gone"}
    said: list[str] = []
    assert verify_reuse(tmp_path, said.append) == 3
    assert len(said) == 3 and not list((tmp_path / "groups").glob("*.json"))
    assert "a.json: unreadable (JSONDecodeError)" in said[0]
    assert "its selected stage gone is not complete" in said[1]
    assert "names no selected stage" in said[2]


# --------------------------------------------------------------------------- end to end


def stage_runs(out: Path, experiment: str, key: str) -> list:
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{out / 'mlflow.db'}")
    try:
        runs = mlflow.search_runs(experiment_names=[experiment], output_format="list")
    finally:
        mlflow.set_tracking_uri(previous)
    return [r for r in runs if r.data.tags.get("xscale.stage_key") == key]


def attempts(where: Path) -> int:
    return len((where / ATTEMPTS_FILE).read_text().splitlines())


TRIAL = {"intermediate_task": "none", "target": {"max_steps": 4, "max_eval_examples": 20}}


@pytest.mark.slow
def test_two_runs_on_one_folder_run_each_stage_once(tmp_path, trial_yaml, xscale_argv):
    config = trial_yaml(tmp_path / "t.yaml", **TRIAL)
    out = tmp_path / "out"
    cmd = xscale_argv("run", "--config", str(config), "--output-dir", str(out))
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, results):
        assert p.returncode == 0, err[-3000:]
    assert any("waiting: stage" in err for _, err in results)  # one waited for the other
    for spec in trial_stages(load_trial(config)):
        where = stage_dir(out, spec)
        assert attempts(where) == 1, spec.label  # trained once, reused by the other process
        (run,) = stage_runs(out, "xscale", spec.key)
        assert run.info.status == "FINISHED"
        assert not (where / "LOCK").exists()


@pytest.mark.slow
def test_corrupt_parent_is_rerun_and_a_kill_before_finish_is_reconciled(
    tmp_path, trial_yaml, xscale_cli
):
    config = trial_yaml(tmp_path / "t.yaml", **TRIAL)
    out = tmp_path / "out"
    args = ("run", "--config", str(config), "--output-dir", str(out))
    first = xscale_cli(*args, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    pretrain, target = trial_stages(load_trial(config))
    parent = stage_dir(out, pretrain)
    weights = parent / "model" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # truncated, COMPLETE kept
    # and the target's MLflow run left RUNNING, as a kill after COMPLETE would leave it
    (run,) = stage_runs(out, "xscale", target.key)
    client = mlflow.MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    client.update_run(run.info.run_id, status="RUNNING")

    second = xscale_cli(*args, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "model/model.safetensors has 1000 bytes" in second.stderr
    assert "recorded: it runs again" in second.stderr  # checked before reuse, as a sweep does
    assert attempts(parent) == 2 and check_outputs(parent, full=True) is None
    assert attempts(stage_dir(out, target)) == 1  # complete, reused: not retrained
    (run,) = stage_runs(out, "xscale", target.key)
    assert run.info.status == "FINISHED"  # reconciled


# --------------------------------------------------------------------------- resume checkpoints

SAVE_ZERO2 = """
import os, sys, torch
os.environ.setdefault("DS_ACCELERATOR", "cpu")
from xscale.train.distributed import init_distributed
init_distributed()
import deepspeed
from pathlib import Path
from xscale.train.loop import save_checkpoint
model = torch.nn.Linear(8, 4)
cfg = {"train_micro_batch_size_per_gpu": 2, "zero_optimization": {"stage": 2},
       "optimizer": {"type": "AdamW", "params": {"lr": 1e-3}}}
engine, *_ = deepspeed.initialize(model=model, model_parameters=model.parameters(), config=cfg)
engine.backward(engine(torch.randn(2, 8)).sum())
engine.step()
save_checkpoint(engine, Path(sys.argv[1]), 3)
"""


class Planted:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


@pytest.fixture(scope="module")
def zero2_checkpoint(tmp_path_factory) -> Path:
    ckpt = tmp_path_factory.mktemp("resume") / "ckpt"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", SAVE_ZERO2, str(ckpt)],
        capture_output=True, text=True, cwd=REPO_ROOT, env=env, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return ckpt


def test_a_deepspeed_checkpoint_is_accepted_and_a_planted_pickle_refused(
    zero2_checkpoint, tmp_path, monkeypatch
):
    import shutil

    import torch

    from xscale.train.loop import check_checkpoint

    check_checkpoint(zero2_checkpoint)  # ZeRO-2's model and optimizer states: data only
    ckpt = tmp_path / "ckpt"
    shutil.copytree(zero2_checkpoint, ckpt)
    monkeypatch.chdir(tmp_path)
    (victim,) = list((ckpt / "step3").glob("*optim_states.pt"))
    torch.save({"optimizer_state_dict": Planted()}, victim)  # someone wrote the output folder
    with pytest.raises(XScaleError, match=rf"{victim}: the checkpoint references .*system"):
        check_checkpoint(ckpt)
    assert not (tmp_path / "PWNED").exists()  # scanned, never executed
    (ckpt / "latest").write_text("../../elsewhere")
    with pytest.raises(XScaleError, match="not a checkpoint of this stage"):
        check_checkpoint(ckpt)
