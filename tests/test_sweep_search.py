"""Sweeps that search and scale out, end to end: Optuna with ASHA selecting the best stage of a
group (a size with several workers as a Ray Train TorchTrainer: tests/test_multiworker.py).
"""

from __future__ import annotations

import json

import pytest
from sweep_helpers import (
    PHASE,
    SWEEP_TIMEOUT,
    run_cli,
    write_sweep,
)

from xscale.graph.expand import expand
from xscale.sweep.schema import load_sweep


@pytest.mark.slow
def test_optuna_search_with_asha_selects_the_best_stage(tmp_path):
    out = tmp_path / "out"
    target = {**PHASE, "learning_rate": {"loguniform": [1.0e-4, 3.0e-3]}}
    path = write_sweep(
        tmp_path / "search.yaml",
        out,
        name="search",
        intermediate_tasks=["none"],
        target_tasks=["xnli"],
        target=target,
        search={"method": "optuna", "num_samples": 3},
        scheduler={"type": "asha", "max_t": 3, "grace_period": 1},
    )
    proc = run_cli("sweep", str(path), timeout=SWEEP_TIMEOUT, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]

    graph = expand(load_sweep(path))
    (group,) = [g for g in graph.groups.values() if g.kind == "target"]
    record = json.loads((out / "groups" / f"{group.key}.json").read_text())
    assert record["group"] == group.key
    # Three Optuna trials, each its own stage (own learning rate, own folder).
    trials = [d for d in (out / "stages").iterdir() if d.name.startswith("tar-")]
    specs = [json.loads((d / "spec.json").read_text()) for d in trials]
    assert len(trials) == 3, [d.name for d in trials]
    assert len({s["hparams"]["learning_rate"] for s in specs}) == 3
    assert all(1.0e-4 <= s["hparams"]["learning_rate"] <= 3.0e-3 for s in specs)
    # The selected stage has the best English dev score of the complete ones.
    complete = {
        d.name: json.loads((d / "result.json").read_text())["metrics"]["dev.score"]
        for d in trials
        if (d / "COMPLETE").is_file()
    }
    assert complete, "no target trial completed"
    candidates = {c["stage"]: c["dev.score"] for c in record["candidates"]}
    assert candidates == complete
    assert record["selected"] in complete
    assert complete[record["selected"]] == max(complete.values())
