"""How fast the read-only commands answer, and which heavy libraries they import.

    .venv/bin/python bench/cli_startup.py [--repeat 3]

Runs each command in a fresh interpreter (as a user's shell does) `--repeat` times and prints
JSON: wall seconds (min and median), CPU seconds, and whether torch / transformers / deepspeed /
ray / mlflow were imported. `status` and `analyze` need a sweep folder: pass `--sweep-dir`
(e.g. runs/smoke after `make demo`); without it they are skipped. Never a timed test.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "deepspeed", "ray", "mlflow")
PROBE = (
    "import sys\n"
    f"HEAVY = {HEAVY!r}\n"
    "from xscale.cli import main\n"
    "import contextlib, io\n"
    "try:\n"
    "    with contextlib.redirect_stdout(io.StringIO()):\n"
    "        rc = main(sys.argv[1:])\n"
    "except SystemExit as e:\n"
    "    rc = e.code or 0\n"
    "heavy = sorted({m.split('.')[0] for m in sys.modules} & set(HEAVY))\n"
    "print('HEAVY=' + ','.join(heavy))\n"
    "sys.exit(rc)\n"
)


def run(args: list[str]) -> tuple[float, float, list[str], int]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, cwd=REPO
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    heavy = []
    for line in proc.stdout.splitlines():
        if line.startswith("HEAVY="):
            heavy = [m for m in line[len("HEAVY=") :].split(",") if m]
    return wall, cpu, heavy, proc.returncode


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--sweep-dir", help="a finished sweep folder for status/analyze")
    a = p.parse_args()
    commands = {
        "--help": ["--help"],
        "sizes": ["sizes"],
        "tasks": ["tasks"],
        "plan scaling.yaml": ["plan", "sweeps/scaling.yaml", "--output-dir", "/tmp/xscale-bench"],
        "plan --json scaling.yaml": [
            "plan",
            "sweeps/scaling.yaml",
            "--json",
            "--output-dir",
            "/tmp/xscale-bench",
        ],
    }
    if a.sweep_dir:
        commands["status"] = ["status", a.sweep_dir]
        commands["analyze --no-plots"] = [
            "analyze",
            a.sweep_dir,
            "--no-plots",
            "--no-log-artifacts",
            "--out",
            "/tmp/xscale-bench-analysis",
        ]
    results = {}
    for name, args in commands.items():
        walls, cpus, heavy, rc = [], [], [], 0
        for _ in range(a.repeat):
            w, c, heavy, rc = run(args)
            walls.append(w)
            cpus.append(c)
        results[name] = {
            "wall_s_min": round(min(walls), 3),
            "wall_s_median": round(statistics.median(walls), 3),
            "cpu_s_median": round(statistics.median(cpus), 3),
            "heavy_imports": heavy,
            "exit_code": rc,
        }
    print(
        json.dumps(
            {
                "bench": "cli_startup",
                "machine": {"cpus": os.cpu_count(), "load_1m": os.getloadavg()[0]},
                "repeat": a.repeat,
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
