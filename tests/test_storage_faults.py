"""A sweep on storage that runs out or turns read-only (issue 27, item 11), on real file systems:
a small tmpfs as the output folder (refused before anything runs when it cannot hold the
sweep), the same tmpfs filled while a stage trains, and a stage folder bind-mounted read-only
while it trains. Each ends in one line saying what to free or fix, exit 1, no traceback; the
same command then finishes the sweep. Mounting needs root (CI and the development machine run
as root); elsewhere these tests skip, saying so.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from sweep_helpers import (
    PHASE,
    SWEEP_TIMEOUT,
    _descendants,
    _kill_all,
    run_cli,
    stage_states,
    start_sweep,
    write_sweep,
)

pytestmark = pytest.mark.heavy


def _mount(*args: str) -> None:
    proc = subprocess.run(["mount", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount here ({proc.stderr.strip()[:120]}): needs root")


@pytest.fixture
def tmpfs(tmp_path):
    """A mount point; the test mounts a tmpfs of its size there; unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    point = tmp_path / "disk"
    point.mkdir()
    yield point
    for _ in range(3):  # bind mounts on top first
        if subprocess.run(["umount", "-l", str(point)], capture_output=True).returncode:
            break


def _long_target_sweep(path: Path, out: Path) -> Path:
    """pretrain -> target xnli, the target long enough to be caught while it trains."""
    target = {**PHASE, "epochs": 100, "max_steps": 3000}
    return write_sweep(
        path, out, name="disk", intermediate_tasks=["none"], target_tasks=["xnli"], target=target
    )


def _until_target_trains(proc, out: Path, log: Path) -> Path:
    deadline = time.monotonic() + 600
    while True:
        done, running = stage_states(out)
        started = [k for k in running if k.startswith("tar-")]
        if done and started and (out / "stages" / started[0] / "progress.json").is_file():
            return out / "stages" / started[0]
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, "the target stage never started training"
        time.sleep(0.2)


def _finish(proc, log_file) -> None:
    try:
        proc.wait(timeout=SWEEP_TIMEOUT)
    finally:
        log_file.close()
        if proc.poll() is None:
            _kill_all(proc, _descendants(proc.pid))


def _ended_in_one_line(proc, log: Path, needle: str) -> None:
    """Exit 1, no traceback, and a last line naming `needle` and how to go on."""
    text = log.read_text()
    assert proc.returncode == 1, text[-3000:]
    assert "Traceback" not in text, text[-4000:]
    last = [line for line in text.splitlines() if line.strip()][-1]
    assert needle in last and "re-run the same command" in last, last


def _resumes(path: Path, out: Path) -> None:
    """The same command, once the storage is fixed, finishes the sweep."""
    again = run_cli("sweep", str(path), timeout=SWEEP_TIMEOUT)
    assert again.returncode == 0, again.stderr[-3000:]
    done, running = stage_states(out)
    assert len(done) == 2 and not running


def test_a_disk_too_small_is_refused_before_anything_runs(tmpfs, tmp_path):
    _mount("-t", "tmpfs", "-o", "size=1m", "tmpfs", str(tmpfs))
    path = _long_target_sweep(tmp_path / "s.yaml", tmpfs / "out")
    proc = run_cli("sweep", str(path), timeout=SWEEP_TIMEOUT)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert len(lines) == 1 and "MiB free on its disk, the sweep needs about" in lines[0], lines
    assert not (tmpfs / "out").exists()


def test_a_disk_that_fills_mid_stage_ends_in_one_line_and_resumes(tmpfs, tmp_path):
    _mount("-t", "tmpfs", "-o", "size=96m", "tmpfs", str(tmpfs))
    out = tmpfs / "out"
    path = _long_target_sweep(tmp_path / "s.yaml", out)
    proc, log = start_sweep(path, tmp_path / "first.log")
    try:
        _until_target_trains(proc, out, tmp_path / "first.log")
        filler = tmpfs / "filler"
        with open(filler, "wb") as f:  # everything that is left
            try:
                while True:
                    f.write(b"\0" * (1 << 20))
                    f.flush()
            except OSError:
                pass
    finally:
        _finish(proc, log)
    _ended_in_one_line(proc, tmp_path / "first.log", f"the disk holding {out} is full")
    filler.unlink()
    _resumes(path, out)


def test_a_stage_folder_made_read_only_mid_stage_ends_in_one_line_and_resumes(tmpfs, tmp_path):
    _mount("-t", "tmpfs", "-o", "size=256m", "tmpfs", str(tmpfs))
    out = tmpfs / "out"
    path = _long_target_sweep(tmp_path / "s.yaml", out)
    proc, log = start_sweep(path, tmp_path / "first.log")
    try:
        stage = _until_target_trains(proc, out, tmp_path / "first.log")
        _mount("--bind", str(stage), str(stage))
        _mount("-o", "remount,bind,ro", str(stage))
    finally:
        _finish(proc, log)
    _ended_in_one_line(proc, tmp_path / "first.log", f"stage folder {stage} is read-only")
    subprocess.run(["umount", str(stage)], check=True)
    _resumes(path, out)
