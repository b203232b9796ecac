"""Stages replaced by sleeps: the hook of the cluster benchmark (bench/cluster_sim.py) only.

Set only by the benchmark: with `XSCALE_BENCH_SIMULATE` in the *driver's* environment (a JSON
object, `{"seconds_per_cost": s}`), `run_sweep` logs a warning and puts it in every trial's
context, and each trial, instead of running its stage:

    1. holds the stage's resources as the real stage would: a one-worker stage holds them in its
       Tune trial already; a multi-worker stage reserves one bundle per worker in a placement
       group and waits for it, as its Ray Train TorchTrainer would
    2. sleeps cost / units x s, units = workers x GPUs per worker (CPUs where there are no GPUs),
       in `rounds` equal parts, reporting a dev score after each but the last (so ASHA can stop it)
    3. writes a complete stage folder (spec.json, result.json with a dev score, COMPLETE) and
       `sim.json` (when it started, got its resources, ended each round, let them go)

The dev score is a pure function of the stage key and the share of the stage done, so ASHA and
selection have something to compare. A sweep run without the variable never reaches this module.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from pathlib import Path

from xscale.errors import XScaleError
from xscale.graph.stage import StageResult, StageSpec, mark_complete, stage_dir
from xscale.schedule.packing import ray_strategy, units
from xscale.sweep.schema import StageResources
from xscale.tracking.names import DEV_SCORE

SIMULATE_ENV = "XSCALE_BENCH_SIMULATE"
SIM_FILE = "sim.json"


def from_env() -> dict | None:
    """The benchmark's simulation settings, or None (a real sweep)."""
    raw = os.environ.get(SIMULATE_ENV)
    if not raw:
        return None
    try:
        sim = json.loads(raw)
        sim["seconds_per_cost"] = float(sim["seconds_per_cost"])
    except (ValueError, TypeError, KeyError):
        raise XScaleError(
            f'{SIMULATE_ENV}: expected {{"seconds_per_cost": <number>}}, got {raw!r}'
        ) from None
    return sim


def duration(cost: float, resources: StageResources, seconds_per_cost: float) -> float:
    return cost / units(resources) * seconds_per_cost


def dev_score(key: str, done: float) -> float:
    """A learning curve: a level in [40, 90) drawn from the stage key, approached as `done`
    (the share of the stage run) goes to 1."""
    level = 40 + 50 * int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 16**8
    return round(level * (1 - 0.5 * math.exp(-4 * done)), 4)


def _write(path: Path, record: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record))
    tmp.replace(path)


def simulate_stage(
    spec: StageSpec,
    cost: float,
    rounds: int,
    res: StageResources,
    output_dir: Path,
    simulate: dict,
    report,
) -> StageResult:
    """Hold the stage's resources, sleep its simulated time, write its folder complete."""
    out = stage_dir(output_dir, spec)
    out.mkdir(parents=True, exist_ok=True)
    (out / "spec.json").write_text(json.dumps(spec.model_dump(mode="json"), indent=2))
    record = {
        "trial_start": time.time(),
        "gpus": res.workers * res.gpus,
        "cpus": res.workers * res.cpus,
        "rounds": [],
    }
    pg = None
    if res.workers > 1:  # what the TorchTrainer would wait for: one bundle per worker
        from ray.util.placement_group import placement_group

        bundle = {k: float(v) for k, v in (("CPU", res.cpus), ("GPU", res.gpus)) if v}
        pg = placement_group([bundle] * res.workers, strategy=ray_strategy(res))
        while not pg.wait(60):  # asks the GCS; `ray.get(pg.ready())` would start a worker
            pass
    record["acquired"] = time.time()
    _write(out / SIM_FILE, record)
    try:
        seconds = duration(cost, res, simulate["seconds_per_cost"])
        rounds = max(1, rounds)
        score = 0.0
        for i in range(1, rounds + 1):
            time.sleep(seconds / rounds)
            score = dev_score(spec.key, i / rounds)
            record["rounds"].append(time.time())
            _write(out / SIM_FILE, record)
            if i < rounds:
                report({DEV_SCORE: score, "step": i})
        result = StageResult(
            metrics={DEV_SCORE: score},
            stage_seconds=time.time() - record["acquired"],
            simulated=True,
        )
        mark_complete(out, result)
        return result
    finally:
        record["released"] = time.time()
        _write(out / SIM_FILE, record)
        if pg is not None:
            from ray.util.placement_group import remove_placement_group

            remove_placement_group(pg)
