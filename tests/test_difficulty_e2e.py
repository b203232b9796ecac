"""sweeps/difficulty_demo.yaml, cut to its cheapest (one seed, a few steps, tiny-xs), run end to
end through `xscale sweep` and analysed: the cartography stage maps the task, subset stages train
on its easy and hard regions from the pretrained model, every trained checkpoint is measured for
alignment, and `xscale analyze` puts it side by side."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
import yaml

from xscale.graph.stage import read_marker
from xscale.tasks.cartography import read_map, select, subset_size

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
TRAIN = 48  # MNLI-format training rows the map covers
PHASE = {"batch_size": 16, "max_length": 32, "max_eval_examples": 30, "log_every": 50}


def cut_demo(out: Path) -> dict:
    cfg = yaml.safe_load((REPO / "sweeps" / "difficulty_demo.yaml").read_text())
    cfg.update(
        output_dir=str(out),
        seeds=[0],
        eval_languages={"xnli": ["en", "de"]},
        pretrain={**cfg["pretrain"], "epochs": 1, "max_lines_per_language": 200},
        cartography={"epochs": 2},
        intermediate={**cfg["intermediate"], **PHASE, "epochs": 1, "max_train_examples": TRAIN},
        target={**cfg["target"], **PHASE, "max_steps": 3, "max_train_examples": 48},
        alignment={"languages": ["de", "zh"], "source": "xnli", "max_pairs": 24},
    )
    cfg["intermediate_tasks"] = [e for e in cfg["intermediate_tasks"] if e != "mnli"]
    return cfg


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "xscale.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=1200,  # a hang guard: ~1 minute on an idle 2-core machine
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("difficulty")
    sweep = work / "difficulty.yaml"
    sweep.write_text(yaml.safe_dump(cut_demo(work / "out"), sort_keys=False))
    proc = cli("sweep", str(sweep))
    assert proc.returncode == 0, proc.stderr[-4000:]
    return work / "out"


def stage_runs(out: Path) -> dict[str, list]:
    mlflow.set_tracking_uri(f"sqlite:///{out / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["difficulty_demo"], output_format="list")
    by: dict[str, list] = {}
    for r in runs:
        if r.data.tags.get("xscale.run_kind") == "stage":
            by.setdefault(r.data.tags["xscale.stage_kind"], []).append(r)
    return by


def align(run, lang: str, metric: str, layer: int, pretrained: bool = False) -> float:
    prefix = "align_pretrained" if pretrained else "align"
    return run.data.metrics[f"{prefix}.{lang}.{metric}.layer{layer}"]


def test_the_map_its_subsets_and_their_weights(demo: Path):
    runs = stage_runs(demo)
    assert {k: len(v) for k, v in runs.items()} == {
        "pretrain": 1,
        "cartography": 1,
        "intermediate": 2,
        "target": 3,
    }
    (pre,), (cart,) = runs["pretrain"], runs["cartography"]
    pre_dir = demo / "stages" / pre.data.tags["xscale.stage_key"]
    cart_dir = demo / "stages" / cart.data.tags["xscale.stage_key"]
    entries = read_map(cart_dir / "cartography.jsonl")
    assert len(entries) == TRAIN and all(len(e.probs) == 2 for e in entries)  # 2 epochs
    assert (cart_dir / "map.png").read_bytes()[:4] == b"\x89PNG"
    assert "cartography.jsonl" in read_marker(cart_dir)["files"]  # checksummed like a model
    assert not (cart_dir / "model").exists()  # nothing starts from a map run's weights
    m = cart.data.metrics
    shares = [m[f"mnli.en.cartography.share_{s}"] for s in ("easy", "ambiguous", "hard")]
    assert math.fsum(shares) == pytest.approx(1.0)
    assert m["mnli.en.cartography.confidence"] == pytest.approx(
        math.fsum(e.confidence for e in entries) / TRAIN, abs=1e-9
    )
    assert 0 <= m["mnli.en.probe.accuracy"] <= 100 and m["mnli.en.probe.loss"] > 0
    assert {"mnli.en.epoch1.accuracy", "mnli.en.epoch2.loss"} <= set(m)

    for run in runs["intermediate"]:
        subset = run.data.params["subset"]
        folder = demo / "stages" / run.data.tags["xscale.stage_key"]
        trained = (folder / "subset.txt").read_text().split()
        assert trained == select(entries, subset, 0.33)  # the map's region, in data order
        assert len(trained) == subset_size(TRAIN, 0.33) == 16
        assert run.data.metrics["mnli.en.subset.examples"] == 16
        spec = json.loads((folder / "spec.json").read_text())
        # waits on the map (its parent), starts from the pretrained model (its weights)
        assert spec["parent"] == cart.data.tags["xscale.stage_key"]
        assert run.data.params["model_source"] == str(pre_dir / "model")
        assert run.data.params["cartography_stage"] == spec["parent"]
    easy = next(r for r in runs["intermediate"] if r.data.params["subset"] == "easy")
    hard = next(r for r in runs["intermediate"] if r.data.params["subset"] == "hard")
    assert (
        easy.data.metrics["mnli.en.subset.confidence"]
        > hard.data.metrics["mnli.en.subset.confidence"]
    )

    status = cli("status", str(demo))
    assert status.returncode == 0 and "cartography   done    1" in status.stdout, status.stdout


def test_alignment_is_logged_at_each_phase(demo: Path):
    runs = stage_runs(demo)
    none_target = next(r for r in runs["target"] if r.data.params["intermediate_task"] == "none")
    for run in [*runs["intermediate"], *runs["target"]]:
        for lang in ("de", "zh"):
            for layer in (0, 1):  # tiny-xs: 2 layers, `all` measures both
                assert 0 <= align(run, lang, "cka", layer) <= 1 + 1e-9
                assert 0 <= align(run, lang, "retrieval", layer) <= 100
                assert -1 <= align(run, lang, "cos_random", layer) <= 1
        assert not any(k.startswith("align.en.") for k in run.data.metrics)
    # the pretrained model is measured by each stage that starts from it: the same numbers
    for run in [*runs["intermediate"], none_target]:
        assert align(run, "de", "cka", 1, True) == pytest.approx(
            align(none_target, "de", "cka", 1, True), abs=1e-5
        )
    assert not any(k.startswith("align") for r in runs["pretrain"] for k in r.data.metrics)
    assert not any(k.startswith("align") for r in runs["cartography"] for k in r.data.metrics)


def test_analyze_puts_easy_and_hard_side_by_side(demo: Path):
    proc = cli("analyze", str(demo), "--no-log-artifacts")
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = demo / "analysis"
    md = (report / "report.md").read_text()
    assert "## Intermediate-task difficulty: cartography subsets side by side" in md
    assert "## Cross-lingual alignment by phase" in md
    with open(report / "subsets.csv") as f:
        (row,) = list(csv.DictReader(f))
    assert row["task"] == "mnli" and row["fraction"] == "0.33"
    assert float(row["easy_minus_hard_non_en_mean"]) == pytest.approx(
        float(row["easy_non_en_mean"]) - float(row["hard_non_en_mean"]), abs=1e-6
    )
    runs = stage_runs(demo)
    with open(report / "alignment_phases.csv") as f:
        phases = [r for r in csv.DictReader(f) if r["metric"] == "cka"]
    assert {r["intermediate_task"] for r in phases} == {"none", "mnli:easy0.33", "mnli:hard0.33"}
    hard = next(r for r in phases if r["intermediate_task"] == "mnli:hard0.33")
    (inter,) = [r for r in runs["intermediate"] if r.data.params["subset"] == "hard"]
    # last layer, mean over de and zh, x100
    expected = 100 * (align(inter, "de", "cka", 1) + align(inter, "zh", "cka", 1)) / 2
    assert float(hard["after_intermediate_mean"]) == pytest.approx(expected, abs=1e-6)
    pre = 100 * (align(inter, "de", "cka", 1, True) + align(inter, "zh", "cka", 1, True)) / 2
    assert float(hard["pretrained_mean"]) == pytest.approx(pre, abs=1e-4)
    assert hard["layer"] == "1" and hard["after_target_mean"] != ""
    with open(report / "difficulty.csv") as f:
        rows = {r["intermediate_task"]: r for r in csv.DictReader(f)}
    assert float(rows["mnli:easy0.33"]["trained_confidence_mean"]) > float(
        rows["mnli:hard0.33"]["trained_confidence_mean"]
    )
    names = {p.name for p in report.glob("plot_*.png")}
    assert "plot_alignment_phases_xnli_en.png" in names
    assert "plot_difficulty_transfer_xnli_en.png" in names
