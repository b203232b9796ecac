"""The tiny twins of the question studies (sweeps/rq*_demo.yaml), cut down to one tiny size, one
seed and a few steps per stage, run end to end (`xscale sweep`, then `xscale analyze`): each
report has its question's section, opening with an answer or with what the sweep lacks. The
full twins (three tiny sizes) are timed in bench/RESULTS.md, not here.

Each has its own output folder: a folder holds one sweep (issue 27: another sweep's folder is
refused), so each pretrains tiny-xs itself."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from conftest import REPO_ROOT, tiny_trial

pytestmark = [pytest.mark.slow, pytest.mark.heavy]  # three sweeps, ~50 s each on 2 cores

SWEEPS = REPO_ROOT / "sweeps"
STEPS = {"epochs": 1, "max_steps": 8, "max_eval_examples": 40, "log_every": 4}


@pytest.fixture
def out_dir(tmp_path) -> Path:
    return tmp_path / "out"


def cut_down(name: str, out: Path, tmp: Path, **extra) -> Path:
    """`sweeps/<name>.yaml` at tiny-xs, seed 0, the trials' quick pretrain, 8 steps a stage."""
    raw = yaml.safe_load((SWEEPS / f"{name}.yaml").read_text())
    raw.update(models=["tiny-xs"], seeds=[0], output_dir=str(out), max_concurrent_trials=2)
    raw["pretrain"] = tiny_trial()["pretrain"]
    for phase in ("intermediate", "target"):
        if phase in raw:
            raw[phase] = {**(raw[phase] or {}), **STEPS}
    if "cartography" in raw:  # a map needs 2 epochs: of 64 examples, and subsets of them
        raw["intermediate"]["max_train_examples"] = 64
        raw["cartography"] = {**(raw["cartography"] or {}), **STEPS, "epochs": 2, "max_steps": None}
    raw.pop("tracking_uri", None)
    raw.update(extra)
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def run_study(xscale_cli, path: Path, out: Path) -> str:
    sweep = xscale_cli("sweep", str(path), timeout=900)
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    report = xscale_cli("analyze", str(out), "--no-plots", "--no-log-artifacts", timeout=600)
    assert report.returncode == 0, report.stderr[-3000:]
    return (out / "analysis" / "report.md").read_text()


def section(report: str, number: int) -> str:
    """The text of the report's section for question `number`, up to the next question."""
    m = re.search(rf"^## Q{number}\. .*?$(.*?)(?=^## )", report, re.S | re.M)
    assert m, f"no section for question {number}"
    return m.group(1).strip()


def test_question_1_study(xscale_cli, out_dir, tmp_path):
    report = run_study(xscale_cli, cut_down("rq1_in_language_demo", out_dir, tmp_path), out_dir)
    text = section(report, 1)
    assert not text.startswith("Not answered"), text
    # named for what the data are: XNLI's translations, PAN-X's native text
    assert "xnli after none: translate-train minus zero-shot" in text
    assert "panx after none: in-language minus zero-shot" in text
    assert "not estimable" in text  # one size: no trend claimed


def test_question_2_study(xscale_cli, out_dir, tmp_path):
    path = cut_down(
        "rq2_multilingual_demo",
        out_dir,
        tmp_path,
        intermediate_tasks=[
            {"task": "panx", "languages": ["en"], "name": "panx-en"},
            {"task": "panx", "languages": ["en", "de", "zh"], "name": "panx-all"},
            "squad",
            {"task": "squad_tt", "languages": ["en", "de"], "name": "squad-tt"},
        ],
    )
    text = section(run_study(xscale_cli, path, out_dir), 2)
    # task by task: each multilingual version against its own English version
    assert text.startswith("xquad, panx: multilingual (panx-all) minus English (panx-en)"), text
    assert "xquad, squad: multilingual (squad-tt) minus English (squad)" in text
    # SQuAD's translations are the task XQuAD trains on: said, not passed off as clean
    assert "squad-tt before xquad (the target's training data (squad))" in text


def test_question_5_study(xscale_cli, out_dir, tmp_path):
    report = run_study(xscale_cli, cut_down("rq5_difficulty_demo", out_dir, tmp_path), out_dir)
    text = section(report, 5)
    assert not text.startswith("Not answered"), text
    assert "mnli at tiny-xs" in text and "easy minus hard subset" in text
