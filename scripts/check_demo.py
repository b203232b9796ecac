"""Check a finished demo sweep the way a user reads it (CI runs this after `make demo`).

    .venv/bin/python scripts/check_demo.py [runs/smoke]

1. `xscale status <dir> --json` says every planned stage is complete;
2. the MLflow store has exactly one FINISHED run for each stage key, under one sweep run;
3. every target stage's scores are above chance in every language (printed as a table);
4. with the report (`xscale analyze`) present, prints the README's table of XNLI means.
Exit 0 when all hold; otherwise one line per problem and exit 1.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

# chance level of each demo target's main metric (0-100)
CHANCE = {"xnli": 100 / 3, "pawsx": 50.0, "sst2": 50.0}


def main(argv: list[str]) -> int:
    out = Path(argv[0] if argv else "runs/smoke").resolve()
    xscale = Path(sys.executable).with_name("xscale")
    proc = subprocess.run(
        [str(xscale), "status", str(out), "--json"], capture_output=True, text=True
    )
    if proc.returncode != 0:
        print(f"check_demo: xscale status failed: {proc.stderr.strip()}")
        return 1
    status = json.loads(proc.stdout)
    problems = []
    print(f"check_demo: {status['stages_done']} of {status['stages_total']} stages complete")
    if not status["complete"]:
        problems.append(f"not complete: {status['kinds']}")

    from mlflow.tracking import MlflowClient

    client = MlflowClient(status["tracking_uri"])
    exp = client.get_experiment_by_name(status["name"])
    if exp is None:
        print(f"check_demo: no MLflow experiment {status['name']!r}")
        return 1
    runs = client.search_runs([exp.experiment_id], max_results=10000)
    by_key: dict[str, list] = {}
    parents = [r for r in runs if r.data.tags.get("xscale.run_kind") == "sweep"]
    for r in runs:
        key = r.data.tags.get("xscale.stage_key")
        if key:
            by_key.setdefault(key, []).append(r)
    if len(parents) != 1:
        problems.append(f"{len(parents)} sweep runs (expected 1)")
    rows = []
    for stage in status["stages"]:
        found = by_key.get(stage["key"], [])
        finished = [r for r in found if r.info.status == "FINISHED"]
        if len(found) != 1 or len(finished) != 1:
            problems.append(
                f"{stage['label']}: {len(found)} MLflow runs, {len(finished)} FINISHED (expected 1)"
            )
            continue
        run = finished[0]
        if stage["kind"] != "target":
            continue
        task = run.data.params.get("target_task")
        metric = "accuracy"
        scores = {
            k.split(".")[1]: v
            for k, v in run.data.metrics.items()
            if k.startswith(f"{task}.") and k.endswith(f".{metric}") and k.count(".") == 2
        }
        chance = CHANCE.get(task)
        low = [lang for lang, v in scores.items() if chance is not None and v <= chance]
        rows.append((stage["label"], scores, low))
        if low:
            problems.append(f"{stage['label']}: at or below chance in {', '.join(low)}")
    for label, scores, _ in rows:
        cells = "  ".join(f"{lang} {v:5.1f}" for lang, v in sorted(scores.items()))
        print(f"  {label:<48} {cells}")
    for p in problems:
        print(f"check_demo: {p}")
    if problems:
        return 1
    print(f"check_demo: ok ({len(by_key)} stage runs, one FINISHED run per stage)")
    readme_table(out / "analysis")
    return 0


def readme_table(report: Path) -> None:
    """XNLI means over seeds per (size, intermediate task) and language, with the gap's
    interval: the table the README records (from the report's CSV files)."""
    import csv

    if not (report / "languages.csv").is_file():
        return
    with open(report / "languages.csv") as f:
        langs = [r for r in csv.DictReader(f) if r["target_task"] == "xnli"]
    with open(report / "cells.csv") as f:
        cells = [r for r in csv.DictReader(f) if r["target_task"] == "xnli"]
    order = ["en", "de", "es", "fr", "zh"]
    print("| size | intermediate | " + " | ".join(order) + " | gap (en - non-en) |")
    print("|---|---|" + "---|" * (len(order) + 1))
    for c in cells:
        key = (c["model_size"], c["intermediate_task"])
        means = {
            r["language"]: float(r["score_mean"])
            for r in langs
            if (r["model_size"], r["intermediate_task"]) == key
        }
        gap = float(c["gap_mean"])
        half = float(c["gap_ci_high"]) - gap if c["gap_ci_high"] else float("nan")
        scores = " | ".join(f"{means[x]:.1f}" if x in means else "-" for x in order)
        print(f"| {key[0]} | {key[1]} | {scores} | {gap:.1f} ± {half:.1f} |")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
