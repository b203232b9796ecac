"""Every shipped trial file (examples/*.yaml) loads, is headed by the command that runs it, and
builds its chain of stages; those whose data is here pass preflight (as torchtune tests its
recipe configs). The sweeps in sweeps/ have the same test in test_sweep_config.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import REPO_ROOT

from xscale.graph.expand import trial_stages
from xscale.stage.preflight import preflight
from xscale.sweep.phases import check_data_roots
from xscale.sweep.trial import load_trial

EXAMPLES = sorted((REPO_ROOT / "examples").glob("*.yaml"))


def test_there_are_examples():
    assert {p.name for p in EXAMPLES} >= {"trial.yaml", "real_xnli.yaml"}


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_is_headed_by_its_command(path: Path):
    first = path.read_text(encoding="utf-8").splitlines()[0]
    stem = path.stem
    assert first == f"# xscale run --config examples/{path.name} --output-dir runs/{stem}"


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_loads_and_builds_its_stages(path: Path, monkeypatch):
    monkeypatch.chdir(REPO_ROOT)  # the command runs from the clone's root
    cfg = load_trial(Path("examples") / path.name)
    stages = trial_stages(cfg)
    assert [s.kind for s in stages][-1] == "target"
    assert stages[-1].target_task == cfg.target_task
    for parent, child in zip(stages, stages[1:]):
        assert child.parent == parent.key
    roots = [cfg.data.root, *cfg.data.tasks.values()]
    if any(r not in ("hub", "fixtures") and not Path(r).is_dir() for r in roots):
        pytest.skip(f"{path.name}: its data ({', '.join(roots)}) is not on this machine")
    check_data_roots(cfg.data, str(path))
    preflight(stages, check_weights=False)
