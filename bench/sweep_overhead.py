"""Scheduling overhead of `xscale sweep`: driver wall time against the ideal packing of its stages.

    .venv/bin/python bench/sweep_overhead.py [--steps 80] [--concurrency 2] [--keep DIR]

Runs a 12-stage tiny sweep on the shipped fixtures (tiny-xs, tiny-s x {none, mnli} x
{xnli, pawsx}: 2 pretrain + 2 intermediate + 8 target stages) through the real driver
(`xscale.cli.main(["sweep", ...])`, in this process, so its phases can be timed), then prints
one JSON object:

    wall_s              driver wall time, from main() called to main() returned
    stage_seconds_sum   sum over stages of result.json `stage_seconds` (run_stage's own wall time)
    ideal_s             stage_seconds_sum / concurrency (perfect packing, zero overhead)
    overhead_ratio      wall_s / ideal_s
    breakdown           where wall_s - ideal_s goes (seconds of driver wall time):
                        before_ray (imports, config, expand, preflight, MLflow parent run),
                        ray_start, tune_runs (per Tune run: set-up before the first stage starts,
                        the tail after the last stage ends, idle slot time in between), and
                        between_tune_runs (selection, the next Tuner)
    per_tune_run            per Tune run: stages, wall, stage_seconds sum, its own ideal and ratio

Stage start times come from each stage's attempts.jsonl (written when run_stage starts) and end
times from start + stage_seconds. Nothing here asserts a number: it reports.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import yaml  # noqa: E402


def sweep_yaml(out: Path, steps: int, concurrency: int) -> dict:
    phase = {
        "learning_rate": 5.0e-4,
        "batch_size": 32,
        "epochs": 50,  # max_steps decides
        "max_steps": steps,
        "max_length": 64,
        "max_eval_examples": 200,
        "log_every": 20,
    }
    return {
        "name": "bench_overhead",
        "output_dir": str(out),
        "max_concurrent_trials": concurrency,
        "models": ["tiny-xs", "tiny-s"],
        "intermediate_tasks": ["none", "mnli"],
        "target_tasks": ["xnli", "pawsx"],
        "seeds": [0],
        "data": {"root": "fixtures"},
        "pretrain": {
            "epochs": 1,
            "batch_size": 32,
            "learning_rate": 1.0e-3,
            "max_length": 64,
            "max_lines_per_language": 1500,
            "log_every": 50,
        },
        "intermediate": dict(phase),
        "target": dict(phase),
        "failure": {"max_failures": 0},
    }


class Timer:
    """Wraps functions of the driver's modules and records (name, start, end) per call."""

    def __init__(self):
        self.events: list[tuple[str, float, float, dict]] = []

    def wrap(self, module, attr: str, label=None):
        fn = getattr(module, attr)

        def wrapped(*args, **kwargs):
            t0 = time.time()
            try:
                return fn(*args, **kwargs)
            finally:
                extra = label(*args, **kwargs) if label else {}
                self.events.append((attr, t0, time.time(), extra))

        setattr(module, attr, wrapped)

    def of(self, name: str) -> list[tuple[float, float, dict]]:
        return [(a, b, x) for n, a, b, x in self.events if n == name]


def stage_intervals(out: Path) -> dict[str, tuple[float, float, str]]:
    """stage key -> (start, end, kind): end is result.json's write time (right after
    stage_seconds is taken), start = end - stage_seconds."""
    found = {}
    for d in sorted((out / "stages").iterdir()):
        if not (d / "COMPLETE").is_file():
            continue
        end = (d / "result.json").stat().st_mtime
        seconds = json.loads((d / "result.json").read_text())["stage_seconds"]
        kind = json.loads((d / "spec.json").read_text())["kind"]
        found[d.name] = (end - seconds, end, kind)
    return found


def hook_points() -> list:
    """(module, function) pairs of the driver that the benchmark times, in the order they run;
    a test checks that each exists, so a refactor cannot break the benchmark unnoticed."""
    from xscale.schedule import driver, searcher
    from xscale.schedule import tune as schedule

    return [
        (driver, "preflight_graph"),
        (driver, "start_ray"),  # `xscale sweep` starts Ray before it writes anything
        # MLflow: the store's catch-up (creates the db) and the sweep's run (journal, uploader)
        (driver, "catch_up"),
        (driver, "open_parent"),
        (schedule, "_tune_run"),
        (searcher, "select_best"),
    ]


def record_trial_starts(schedule, starts: dict[str, float]) -> None:
    """Record when Tune starts each trial (its `on_trial_start` callback), by stage key."""
    original = schedule._callback

    def patched(*args, **kwargs):
        cb = original(*args, **kwargs)
        on_start = cb.on_trial_start

        def on_trial_start(iteration, trials, trial, **info):
            meta = trial.config.get(schedule.META) or {}
            starts[meta.get("stage") or trial.trial_id] = time.time()
            return on_start(iteration, trials, trial, **info)

        cb.on_trial_start = on_trial_start
        return cb

    schedule._callback = patched


def idle_slot_seconds(intervals: list[tuple[float, float]], t0: float, t1: float, c: int) -> float:
    """Integral over [t0, t1] of max(0, c - running stages)."""
    points = sorted({t0, t1, *[a for a, _ in intervals], *[b for _, b in intervals]})
    idle = 0.0
    for a, b in zip(points, points[1:]):
        if b <= t0 or a >= t1:
            continue
        mid = (a + b) / 2
        running = sum(1 for s, e in intervals if s <= mid < e)
        idle += max(0, c - running) * (b - a)
    return idle


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=80, help="max_steps of intermediate/target")
    p.add_argument("--concurrency", type=int, default=2, help="max_concurrent_trials")
    p.add_argument("--keep", help="output folder to keep (default: a temporary one, removed)")
    args = p.parse_args()

    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="xscale-bench-"))
    out = root / "out"
    if out.exists():
        shutil.rmtree(out)
    root.mkdir(parents=True, exist_ok=True)
    sweep_file = root / "bench_overhead.yaml"
    sweep_file.write_text(yaml.safe_dump(sweep_yaml(out, args.steps, args.concurrency)))

    from xscale.schedule import tune as schedule

    timer = Timer()
    for module, attr in hook_points():
        label = (lambda name, *a, **k: {"name": name}) if attr == "_tune_run" else None
        timer.wrap(module, attr, label=label)
    trial_starts: dict[str, float] = {}
    record_trial_starts(schedule, trial_starts)

    from xscale.cli import main as xscale_main

    load_before = os.getloadavg()[0]
    t0 = time.time()
    rc = xscale_main(["sweep", str(sweep_file)])
    wall = time.time() - t0
    if rc != 0:
        print(f"bench: sweep failed (exit {rc}); see the log above", file=sys.stderr)
        return rc

    c = args.concurrency
    stages = stage_intervals(out)
    total = sum(e - s for s, e, _ in stages.values())
    ideal = total / c
    ((ray0, ray1, _),) = timer.of("start_ray")
    ((pre0, pre1, _),) = timer.of("preflight_graph")
    tune_runs = sorted(timer.of("_tune_run"))
    per_tune_run, run_idle = [], 0.0
    for w0, w1, extra in tune_runs:
        inside = [(s, e) for s, e, _ in stages.values() if w0 <= s <= w1]
        keys = [k for k, (s, _, _) in stages.items() if w0 <= s <= w1]
        tune_starts = [trial_starts[k] for k in keys if k in trial_starts]
        # Tune's on_trial_start -> run_stage starts: the trial process, its imports, set-up
        latency = [stages[k][0] - trial_starts[k] for k in keys if k in trial_starts]
        kinds = sorted({k for s, e, k in stages.values() if w0 <= s <= w1})
        busy = sum(e - s for s, e in inside)
        first = min(s for s, _ in inside)
        last = max(e for _, e in inside)
        idle = idle_slot_seconds(inside, w0, w1, c)
        head, tail = first - w0, w1 - last
        per_tune_run.append(
            {
                "tune_run": extra["name"],
                "kinds": kinds,
                "stages": len(inside),
                "wall_s": round(w1 - w0, 2),
                "stage_seconds_sum": round(busy, 2),
                "ideal_s": round(busy / c, 2),
                "ratio": round((w1 - w0) / (busy / c), 3),
                "head_s": round(head, 2),  # Tuner set-up + trial start before the first stage
                "tuner_to_first_trial_s": round(min(tune_starts) - w0, 2) if tune_starts else None,
                "trial_start_latency_s": [round(x, 2) for x in sorted(latency, reverse=True)],
                "tail_s": round(tail, 2),  # last stage end -> fit() returns
                # idle slot-seconds / c between the first start and the last end: barrier
                # (a slot waits for the run's longest stage) and per-trial switch gaps
                "packing_idle_s": round(idle / c - head - tail, 2),
            }
        )
        run_idle += (w1 - w0) - busy / c
    between = sum(b0 - a1 for (_, a1, _), (b0, _, _) in zip(tune_runs, tune_runs[1:]))
    after = t0 + wall - tune_runs[-1][1]
    report = {
        "wall_s": round(wall, 2),
        "stage_seconds_sum": round(total, 2),
        "concurrency": c,
        "ideal_s": round(ideal, 2),
        "overhead_ratio": round(wall / ideal, 3),
        "stages": len(stages),
        "stages_by_kind": {
            k: sum(1 for *_, kind in stages.values() if kind == k)
            for k in ("pretrain", "intermediate", "target")
        },
        "breakdown": {
            "before_ray_s": round(ray0 - t0, 2),
            "preflight_s": round(pre1 - pre0, 2),
            "mlflow_setup_s": round(
                sum(b - a for a, b, _ in timer.of("catch_up") + timer.of("open_parent")), 2
            ),
            "ray_start_s": round(ray1 - ray0, 2),
            "ray_start_to_first_tune_run_s": round(tune_runs[0][0] - ray1, 2),
            "tune_runs_over_ideal_s": round(run_idle, 2),
            "tune_runs_head_s": round(sum(w["head_s"] for w in per_tune_run), 2),
            "tune_runs_tail_s": round(sum(w["tail_s"] for w in per_tune_run), 2),
            "tune_runs_packing_idle_s": round(sum(w["packing_idle_s"] for w in per_tune_run), 2),
            "between_tune_runs_s": round(between, 2),
            "after_last_tune_run_s": round(after, 2),
        },
        "per_tune_run": per_tune_run,
        "per_stage_s": {k: round(e - s, 2) for k, (s, e, _) in sorted(stages.items())},
        "steps": args.steps,
        # other work on the machine skews every figure: 1-min load average before / after
        "load_avg": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "cpus": os.cpu_count(),
        "output_dir": str(out) if args.keep else None,
    }
    print(json.dumps(report, indent=2))
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
