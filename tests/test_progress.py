"""The sweep's live progress: counts, running stages' step and loss (from the files stages
write), an ETA from cost estimates, and the plain-text form used when stderr is not a terminal."""

from __future__ import annotations

import io
import time

import pytest

from xscale.graph.stage import read_stage_progress, write_stage_progress
from xscale.schedule.progress import SweepProgress, clock


def test_stage_progress_round_trips_and_tolerates_absence(tmp_path):
    assert read_stage_progress(tmp_path) is None
    write_stage_progress(tmp_path, 30, 120, 0.8123, " de")
    rec = read_stage_progress(tmp_path)
    assert (rec["step"], rec["total"], rec["loss"], rec["tag"]) == (30, 120, 0.8123, "de")
    (tmp_path / "progress.json").write_text("{half")
    assert read_stage_progress(tmp_path) is None
    write_stage_progress(tmp_path / "missing", 1, 2, 0.1)  # never raises


def test_counts_eta_and_running_lines(tmp_path):
    stream = io.StringIO()
    p = SweepProgress("demo", 4, 1, 10.0, 1.0, tmp_path, live=False, stream=stream)
    p.t0 -= 10  # ten seconds in
    assert p.eta_seconds() is None  # no work done in this run yet
    (tmp_path / "k1").mkdir()
    p.started("t1", "target xnli <- none tiny-s", "k1", cost=4.0)
    write_stage_progress(tmp_path / "k1", 50, 100, 0.5)
    # half of a 4-unit stage in 10 s -> 0.2 units/s; 10 - 1 - 2 = 7 units left -> 35 s
    assert p.eta_seconds() == pytest.approx(35.0, rel=0.05)
    assert p.running_lines()[0].startswith("target xnli <- none tiny-s step 50/100 loss 0.500")
    p.ended("t1", ok=True)
    assert (p.done, p.failed, p.left) == (2, 0, 2)
    p.started("t2", "target pawsx", None, cost=1.0)
    p.ended("t2", ok=False, detail="see /x")
    assert (p.done, p.failed, p.left) == (2, 1, 1)
    lines = stream.getvalue().splitlines()
    assert "started target xnli <- none tiny-s" in lines[0]
    assert "finished target xnli" in lines[1] and "done 2/4" in lines[1]
    assert "FAILED target pawsx (see /x)" in lines[-1]
    snap = p.snapshot()
    assert (snap["done"], snap["failed"], snap["left"], snap["running"]) == (2, 1, 1, 0)


def test_quiet_prints_nothing(tmp_path):
    stream = io.StringIO()
    with SweepProgress("q", 1, 0, 1.0, 0.0, tmp_path, verbosity=0, stream=stream) as p:
        p.started("t", "x", None, 1.0)
        p.ended("t", ok=True)
    assert stream.getvalue() == ""


def test_plain_mode_prints_running_stages_periodically(tmp_path):
    stream = io.StringIO()
    (tmp_path / "k").mkdir()
    write_stage_progress(tmp_path / "k", 7, 70, 1.25)
    with SweepProgress("p", 2, 0, 2.0, 0.0, tmp_path, live=False, plain_every=0.05, stream=stream):
        pass
    p = SweepProgress("p", 2, 0, 2.0, 0.0, tmp_path, live=False, plain_every=0.05, stream=stream)
    with p:
        p.started("t", "pretrain tiny-s", "k", 1.0)
        time.sleep(0.3)
    assert "pretrain tiny-s step 7/70 loss 1.250" in stream.getvalue()


def test_live_panel_renders(tmp_path):
    from rich.console import Console

    p = SweepProgress("live", 3, 0, 3.0, 0.0, tmp_path, live=False)
    (tmp_path / "k").mkdir()
    p.started("t", "intermediate mnli tiny-s seed0", "k", 1.0)
    write_stage_progress(tmp_path / "k", 3, 30, 0.9)
    console = Console(file=io.StringIO(), width=120)
    console.print(p._render())
    text = console.file.getvalue()
    assert "live: done 0/3" in text and "intermediate mnli tiny-s seed0" in text and "3/30" in text


def test_clock():
    assert clock(5) == "00:05" and clock(65) == "01:05" and clock(3725) == "1:02:05"
