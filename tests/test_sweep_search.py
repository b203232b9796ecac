"""Sweeps that search and scale out, end to end: Optuna with ASHA selecting the best stage of a
group, and a size with several workers running its stage as a Ray Train TorchTrainer.
"""

from __future__ import annotations

import json
import time

import pytest
from sweep_helpers import (
    PHASE,
    SWEEP_TIMEOUT,
    _descendants,
    _kill_all,
    check_one_run_per_stage,
    planned_stages,
    run_cli,
    stage_states,
    start_sweep,
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


@pytest.mark.slow
def test_multi_worker_size_runs_as_a_torch_trainer(tmp_path):
    out = tmp_path / "out"
    path = write_sweep(
        tmp_path / "workers.yaml",
        out,
        name="workers",
        intermediate_tasks=["none"],
        target_tasks=["xnli"],
        resources={"tiny-xs": {"workers": 2, "cpus": 1}},
    )
    proc, log = start_sweep(path, tmp_path / "sweep.log")  # log closed below
    try:
        # A TorchTrainer starts its workers in ~15 s on an idle machine; none in 240 s (room for
        # a loaded one) means it waits on resources that never come.
        start, first_attempt = time.monotonic(), None
        while proc.poll() is None:
            if first_attempt is None and list(out.glob("stages/*/attempts.jsonl")):
                first_attempt = time.monotonic()
            assert first_attempt or time.monotonic() - start < 240, "no worker started in 240 s"
            assert time.monotonic() - start < SWEEP_TIMEOUT, "sweep did not finish"
            time.sleep(0.5)
    finally:
        log.close()
        if proc.poll() is None:
            _kill_all(proc, _descendants(proc.pid))
    assert proc.returncode == 0, (tmp_path / "sweep.log").read_text()[-4000:]
    planned = planned_stages(path)
    done, _ = stage_states(out)
    assert done == set(planned) and len(planned) == 2
    for key in planned:
        lines = (out / "stages" / key / "attempts.jsonl").read_text().splitlines()
        assert [json.loads(line)["world"] for line in lines] == [2], key
    check_one_run_per_stage(out, "workers", set(planned))
