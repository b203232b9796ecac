"""Multi-worker stages in a local sweep: a size with several Ray Train workers beside sizes
with one (issue 23: such a stage once stayed PENDING for good with 3.99 of 5 CPUs free)."""

from __future__ import annotations

import json

import pytest
from sweep_helpers import run_cli, write_sweep

pytestmark = pytest.mark.slow


def test_a_two_worker_stage_runs_beside_one_worker_stages(tmp_path):
    """tiny-xs (1 worker x 1 CPU) and tiny-s (2 workers x 2 CPUs) side by side on a local Ray
    of 5 CPUs. With Tune's actor reuse, the tiny-xs trial's process stayed cached after its
    stages, holding 1 CPU, and tiny-s's workers (4 CPUs beside its 0.01-CPU trial) never got
    placed: the old code hung here (reproduced: killed after 5 minutes, 2 of 4 stages)."""
    out = tmp_path / "out"
    path = write_sweep(
        tmp_path / "s.yaml",
        out,
        models=["tiny-xs", "tiny-s"],
        intermediate_tasks=["none"],
        target_tasks=["xnli"],
        resources={"tiny-s": {"workers": 2, "cpus": 2}},
    )
    proc = run_cli("sweep", str(path), timeout=900)  # a hang guard: the sweep takes ~1 minute
    assert proc.returncode == 0, proc.stderr[-3000:]
    stages = sorted(out.glob("stages/*"))
    assert len(stages) == 4 and all((s / "COMPLETE").is_file() for s in stages)
    for s in stages:
        attempt = json.loads((s / "attempts.jsonl").read_text().splitlines()[-1])
        assert attempt["world"] == (2 if "-tiny-s-" in s.name else 1), s.name


def test_asha_gets_a_multi_worker_stages_rounds(tmp_path):
    """A 2-worker size's Optuna trials report their dev rounds through Ray Train to Tune, as a
    one-worker trial does (they reported only at the end: ASHA could never stop XL or XXL)."""
    from sweep_helpers import PHASE

    out = tmp_path / "out"
    path = write_sweep(
        tmp_path / "s.yaml",
        out,
        intermediate_tasks=["none"],
        target_tasks=["xnli"],
        target={**PHASE, "max_steps": 9, "learning_rate": {"loguniform": [1.0e-4, 3.0e-3]}},
        search={"method": "optuna", "num_samples": 2},
        scheduler={"type": "asha", "max_t": 3, "grace_period": 3},
        resources={"tiny-xs": {"workers": 2, "cpus": 1}},
    )
    proc = run_cli("sweep", str(path), timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (record,) = [json.loads(p.read_text()) for p in out.glob("groups/*.json") if "tar-" in p.name]
    assert len(record["candidates"]) == 2
    # max_t 3 rounds: two reports before the stage's end, from every trial (grace period 3)
    assert [c["reports"] for c in record["candidates"]] == [2, 2], record
