"""Multi-worker stages in a local sweep (issue 23), in one sweep: a size with 2 Ray Train workers
beside a size with one, its Optuna trials stopped by ASHA on the dev rounds its ranks report.

The old code hung on this sweep: after tiny-xs's stages, Tune kept tiny-xs's trial process
cached (holding 1 CPU of the local Ray's 5) and tiny-s's TorchTrainer waited for good for the 4
CPUs its two workers need beside its 0.01-CPU trial (reproduced: killed after 5 minutes with 2
of 4 stages done). And a multi-worker trial reported only at its end, so ASHA could never stop
XL or XXL trials."""

from __future__ import annotations

import json

import pytest
from sweep_helpers import PHASE, check_one_run_per_stage, run_cli, write_sweep

pytestmark = [pytest.mark.slow, pytest.mark.heavy]


def test_two_worker_stages_beside_one_worker_stages_report_to_asha(tmp_path):
    out = tmp_path / "out"
    path = write_sweep(
        tmp_path / "s.yaml",
        out,
        name="workers",
        models=["tiny-xs", "tiny-s"],
        intermediate_tasks=["none"],
        target_tasks=["xnli"],
        target={**PHASE, "max_steps": 9, "learning_rate": {"loguniform": [1.0e-4, 3.0e-3]}},
        search={"method": "optuna", "num_samples": 2},
        scheduler={"type": "asha", "max_t": 3, "grace_period": 3},
        resources={"tiny-s": {"workers": 2, "cpus": 2}},
    )
    proc = run_cli("sweep", str(path), timeout=900)  # a hang guard: the sweep takes ~2 minutes
    assert proc.returncode == 0, proc.stderr[-3000:]
    stages = sorted(out.glob("stages/*"))  # 2 pretrain + 2 x 2 Optuna target trials
    assert len(stages) == 6 and all((s / "COMPLETE").is_file() for s in stages)
    for s in stages:  # tiny-s ran as a 2-rank TorchTrainer, tiny-xs in its trial
        lines = (s / "attempts.jsonl").read_text().splitlines()
        assert [json.loads(x)["world"] for x in lines] == [2 if "-tiny-s-" in s.name else 1]
    check_one_run_per_stage(out, "workers", {s.name for s in stages})
    records = {p.name: json.loads(p.read_text()) for p in out.glob("groups/tar-*.json")}
    assert len(records) == 2
    for name, record in records.items():
        # max_t 3 rounds: two reports before the stage's end from every trial (grace period 3),
        # the 2-worker size's through Ray Train as the one-worker size's through Tune
        assert [c["reports"] for c in record["candidates"]] == [2, 2], (name, record)
