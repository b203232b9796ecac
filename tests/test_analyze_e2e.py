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
    assert {p.name.split("_")[1] for p in pngs} >= {"scaling", "gain", "languages", "alignment"}
    for png in pngs:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        image = matplotlib.image.imread(png)
        assert image.shape[0] > 100 and image.shape[1] > 100, png

    md = (report / "report.md").read_text()
    assert "All 24 cells have complete scores." in md
    with open(report / "cells.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 8  # 2 sizes x 2 intermediate x 2 targets, means over 3 seeds
    assert {r["model_size"] for r in rows} == {"tiny-xs", "tiny-s"}
    assert {r["intermediate_task"] for r in rows} == {"none", "mnli"}
    assert {r["seeds"] for r in rows} == {"3"}
    for r in rows:  # the gap column is en minus the non-English mean of the same cell
        if r["target_task"] == "tatoeba":  # retrieval from English: no English score, no gap
            assert r["en_mean"] == r["gap_mean"] == ""
            continue
        assert float(r["gap_mean"]) == pytest.approx(
            float(r["en_mean"]) - float(r["non_en_mean"]), abs=1e-6
        )
    # The demo learns: in every XNLI cell the English and the non-English means over seeds are
    # clearly above chance (33.3), and so is every language's mean.
    chance = {"xnli": 100 / 3, "tatoeba": 100 / 80}  # 3 classes; 1 of 80 candidates
    for r in rows:
        if r["target_task"] == "xnli":
            assert float(r["en_mean"]) > chance["xnli"] + 10, r
            assert float(r["non_en_mean"]) > chance["xnli"] + 5, r
    with open(report / "languages.csv") as f:
        langs = list(csv.DictReader(f))
    assert {r["language"] for r in langs if r["target_task"] == "xnli"} == {
        "en", "de", "es", "fr", "zh"
    }  # fmt: skip
    for r in langs:
        assert float(r["score_mean"]) > chance[r["target_task"]] + 3, r

    # alignment (the demo's `alignment`): each XNLI chain at each phase, last layer, 3 seeds
    with open(report / "alignment_phases.csv") as f:
        align = [r for r in csv.DictReader(f) if r["target_task"] == "xnli"]
    chains = {(r["model_size"], r["intermediate_task"]) for r in align}
    assert chains == {(s, i) for s in ("tiny-xs", "tiny-s") for i in ("none", "mnli")}
    assert {(r["model_size"], r["layer"]) for r in align} == {("tiny-xs", "1"), ("tiny-s", "3")}
    for r in align:
        assert r["pretrained_mean"] != "" and r["after_target_n"] == "3", r
        assert r["after_intermediate_n"] == ("3" if r["intermediate_task"] == "mnli" else "0")

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
    assert "1 of 24 cells" in md, md[:3000]
    with open(copy / "analysis" / "cells.csv") as f:
        rows = list(csv.DictReader(f))
    size = gone.data.params["model_size"]
    cell = (size, "mnli", "xnli")
    row = next(
        r for r in rows if (r["model_size"], r["intermediate_task"], r["target_task"]) == cell
    )
    # the deleted seed is counted as missing and left out of the mean, never averaged as 0
    kept = [
        r.data.metrics["xnli.en.accuracy"]
        for r in targets
        if r.info.run_id != gone.info.run_id
        and r.data.params["target_task"] == "xnli"
        and r.data.params["model_size"] == size
    ]
    assert len(kept) == 2
    assert (row["en_n"], row["en_n_missing"]) == ("2", "1")
    assert float(row["en_mean"]) == pytest.approx(sum(kept) / 2)


def test_analyze_bad_input_is_one_line(tmp_path: Path):
    proc = analyze(str(tmp_path / "nowhere"))
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("xscale: error:"), proc.stderr
