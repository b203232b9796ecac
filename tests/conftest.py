"""Shared test setup: an offline environment, the real-data path, and tiny fast trial configs.

Everything here runs at import, before any test module imports transformers / datasets /
DeepSpeed, so those libraries never reach for the network and DeepSpeed picks the CPU
accelerator on machines without CUDA. Subprocesses started by tests inherit the environment.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
# One intra-op thread, as the size table gives a tiny stage (cpus_per_worker=1). On a shared 2-core
# machine torch's default (one thread per core) makes tiny-xs training 10x slower under load.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# Remembered recipe validations (catalog/recipes.py) go to a folder of this run, not ~/.cache.
os.environ.setdefault("XSCALE_CACHE_DIR", tempfile.mkdtemp(prefix="xscale-test-cache-"))
try:
    import torch

    if not torch.cuda.is_available():
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
except ImportError:  # pragma: no cover - torch is a hard dependency
    os.environ.setdefault("DS_ACCELERATOR", "cpu")

REPO_ROOT = Path(__file__).resolve().parents[1]
# The real XTREME / GLUE / ANLI files, next to the checkout (CI always has them).
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SHARED_DATA_REASON = "../shared/data not present (real XTREME files; CI always has it)"

XNLI_FIXTURE_LANGUAGES = ("en", "de", "es", "fr", "zh")
# Params every stage run carries (xscale.tracking.names.run_params), compared in the MLflow UI.
PHASE_PARAMS = (
    "model_size",
    "model_params",
    "intermediate_task",
    "target_task",
    "seed",
    "learning_rate",
    "batch_size",
    "epochs",
    "zero_stage",
)


# Parallel runs (`make test` uses pytest-xdist, `-n 2 --dist loadgroup`): each test file runs in
# one worker, so its module fixtures are built once; files that share a session fixture share a
# group (the finished demo sweep; the tiny-xs pretrain of the end-to-end trials).
XDIST_GROUPS = {
    "test_analyze_e2e.py": "demo",
    "test_mlflow_ui.py": "demo",
    "test_trial_e2e.py": "e2e",
    "test_formats_e2e.py": "e2e",
    "test_attack_e2e.py": "e2e",
}


@pytest.hookimpl(tryfirst=True)  # before xdist turns the marks into node-id suffixes
def pytest_collection_modifyitems(config, items):
    for item in items:
        name = Path(str(item.fspath)).name
        item.add_marker(pytest.mark.xdist_group(XDIST_GROUPS.get(name, name)))


def pytest_collection_finish(session):
    """Under `--dist loadgroup` every node id must carry its group (`...@demo`); if the installed
    pytest and xdist disagree on node ids, grouping silently stops and the demo sweep is built
    by both workers. Fail the run instead."""
    if getattr(session.config.option, "loadgroup", False) and session.items:
        ungrouped = [i.nodeid for i in session.items if "@" not in i.nodeid]
        if ungrouped:
            message = (
                f"xdist did not group {len(ungrouped)} tests (e.g. {ungrouped[0]}): this pytest"
                " and pytest-xdist do not work together; install pytest<9 (pyproject.toml)"
            )
            sys.stderr.write(f"\nconftest: {message}\n")  # the worker's error reaches the
            raise pytest.UsageError(message)  # controller only as an INTERNALERROR


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(SHARED_DATA_REASON)
    return SHARED_DATA


def _merge(base: dict, over: dict) -> dict:
    """Recursive dict merge: `over` wins; nested mappings are merged key by key."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def tiny_trial(**overrides: Any) -> dict:
    """A trial config (as a dict) that runs end to end in seconds on 2 CPU cores.

    tiny-xs pretrained on 400 lines per language (32 tokens), then a few fine-tuning steps per
    phase; evaluation capped to 60 examples per language. `overrides` are merged recursively,
    e.g. ``tiny_trial(intermediate_task="none", target={"max_steps": 4})``.
    """
    phase = {
        "epochs": 1,
        "max_steps": 8,
        "batch_size": 16,
        "max_length": 48,
        "learning_rate": 5.0e-4,
        "max_eval_examples": 60,
        "log_every": 4,
    }
    base = {
        "model": "tiny-xs",
        "intermediate_task": "mnli",
        "target_task": "xnli",
        "seed": 0,
        "data": {"root": "fixtures"},
        "pretrain": {
            "epochs": 1,
            "batch_size": 32,
            "max_length": 32,
            "learning_rate": 1.0e-3,
            "max_lines_per_language": 400,
            "log_every": 20,
        },
        "intermediate": dict(phase),
        "target": dict(phase),
    }
    return _merge(base, overrides)


def write_trial(path: Path, **overrides: Any) -> Path:
    """Write `tiny_trial(**overrides)` as YAML to `path`; returns `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(tiny_trial(**overrides), sort_keys=False))
    return path


def xscale_cmd(*args: str) -> list[str]:
    """The command line that runs the `xscale` CLI in this interpreter."""
    return [sys.executable, "-m", "xscale.cli", *args]


@pytest.fixture(scope="session")
def e2e_output_dir(tmp_path_factory) -> Path:
    """One output folder shared by the end-to-end tests, so tiny-xs is pretrained once (the
    pretrain stage has the same key in every tiny trial) and reused by the others."""
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="session")
def trial_yaml():
    """`trial_yaml(path, **overrides)` writes a tiny fast trial file (see `tiny_trial`)."""
    return write_trial


@pytest.fixture(scope="session")
def xscale_argv():
    """`xscale_argv(*args)`: the argv that runs the CLI (for tests that need a Popen)."""
    return xscale_cmd


@pytest.fixture(scope="session")
def xscale_cli():
    """`xscale_cli(*args, env=None, timeout=...)`: run the CLI in a subprocess, capture text."""

    def run(*args: str, env: dict | None = None, timeout: float = 900, cwd=None):
        full_env = dict(os.environ)
        full_env.update(env or {})
        return subprocess.run(
            xscale_cmd(*args),
            capture_output=True,
            text=True,
            env=full_env,
            timeout=timeout,
            cwd=cwd or REPO_ROOT,
        )

    return run


@dataclass
class Trial:
    """A finished `xscale run`: its config, output folder, stage specs and process."""

    config: Path
    out: Path
    specs: list
    proc: subprocess.CompletedProcess

    def stage(self, kind: str):
        (spec,) = [s for s in self.specs if s.kind == kind]
        return spec

    def dir(self, kind: str) -> Path:
        from xscale.graph.stage import stage_dir

        return stage_dir(self.out, self.stage(kind))

    def result(self, kind: str) -> dict:
        return json.loads((self.dir(kind) / "result.json").read_text())

    def attempts(self, kind: str) -> int:
        return len((self.dir(kind) / "attempts.jsonl").read_text().splitlines())


@pytest.fixture(scope="session")
def finished_smoke_sweep(tmp_path_factory) -> Path:
    """The README's demo as a user runs it: `xscale sweep sweeps/smoke.yaml`, no flags, from a
    fresh working directory holding the shipped sweep file, so the file's relative
    `output_dir: runs/smoke` is what decides where results land. Run once per session; returns
    that output folder."""
    work = tmp_path_factory.mktemp("demo")
    (work / "sweeps").mkdir()
    shutil.copy(REPO_ROOT / "sweeps" / "smoke.yaml", work / "sweeps" / "smoke.yaml")
    proc = subprocess.run(
        [sys.executable, "-m", "xscale.cli", "sweep", "sweeps/smoke.yaml"],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = work / "runs" / "smoke"
    assert (out / "mlflow.db").is_file() and (out / "sweep.json").is_file()
    return out
