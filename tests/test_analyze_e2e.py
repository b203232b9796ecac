"""`xscale analyze` on a real finished smoke sweep (the README's demo), and on the same sweep
with one stage's run gone, as a half-finished sweep looks."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO_ROOT

pytestmark = pytest.mark.slow

EXPECTED_FILES = (
    "report.md",
    "report.html",
    "cells.csv",
    "gains.csv",
    "xtreme.csv",
    "fits.csv",
    "languages.csv",
    "missing.csv",
)


def analyze(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "xscale.cli", "analyze", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_analyze_finished_smoke_sweep(finished_smoke_sweep: Path):
    import matplotlib.image
    from mlflow import MlflowClient

    proc = analyze(str(finished_smoke_sweep))
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = finished_smoke_sweep / "analysis"
    for name in EXPECTED_FILES:
        assert (report / name).stat().st_size > 0, name
    pngs = sorted(report.glob("*.png"))
    assert {p.name.split("_")[1] for p in pngs} >= {"scaling", "gain", "languages"}
    for png in pngs:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        image = matplotlib.image.imread(png)
        assert image.shape[0] > 100 and image.shape[1] > 100, png

    md = (report / "report.md").read_text()
    assert "All 12 cells have complete scores." in md
    with open(report / "cells.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 12  # 2 sizes x 3 intermediate x 2 targets, 1 seed
    assert {r["model_size"] for r in rows} == {"tiny-xs", "tiny-s"}
    assert {r["intermediate_task"] for r in rows} == {"none", "mnli", "sst2"}
    for r in rows:  # the gap column is en minus the non-English mean of the same cell
        assert float(r["gap_mean"]) == pytest.approx(
            float(r["en_mean"]) - float(r["non_en_mean"]), abs=1e-6
        )

    # the report is logged on the sweep's parent run
    client = MlflowClient(f"sqlite:///{finished_smoke_sweep / 'mlflow.db'}")
    exp = client.get_experiment_by_name("smoke")
    (parent,) = client.search_runs(
        [exp.experiment_id], filter_string="tags.`xscale.run_kind` = 'sweep'"
    )
    logged = {a.path for a in client.list_artifacts(parent.info.run_id, "analysis")}
    assert "analysis/report.md" in logged and "analysis/report.html" in logged


def test_analyze_counts_missing_cells(finished_smoke_sweep: Path, tmp_path: Path):
    from mlflow import MlflowClient

    copy = tmp_path / "half"
    shutil.copytree(finished_smoke_sweep, copy, ignore=shutil.ignore_patterns("analysis"))
    client = MlflowClient(f"sqlite:///{copy / 'mlflow.db'}")
    exp = client.get_experiment_by_name("smoke")
    targets = client.search_runs(
        [exp.experiment_id],
        filter_string="tags.`xscale.stage_kind` = 'target' and params.intermediate_task = 'mnli'",
    )
    gone = [r for r in targets if r.data.params["target_task"] == "xnli"][0]
    client.delete_run(gone.info.run_id)  # as if that stage never ran

    proc = analyze(str(copy), "--no-plots", "--no-log-artifacts")
    assert proc.returncode == 0, proc.stderr[-3000:]
    md = (copy / "analysis" / "report.md").read_text()
    assert "1 of 12 cells" in md, md[:3000]
    with open(copy / "analysis" / "cells.csv") as f:
        rows = list(csv.DictReader(f))
    row = next(
        r
        for r in rows
        if r["model_size"] == gone.data.params["model_size"]
        and r["intermediate_task"] == "mnli"
        and r["target_task"] == "xnli"
    )
    assert row["en_mean"] == ""  # missing, never 0


def test_analyze_bad_input_is_one_line(tmp_path: Path):
    proc = analyze(str(tmp_path / "nowhere"))
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("xscale: error:"), proc.stderr
