"""Fast tests of the pipeline's pure parts: metric summaries, mixtures, step schedules, stage
keys, trial expansion, MLflow run reuse, and the shipped top-level configs."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

from xscale.errors import XScaleError
from xscale.graph.expand import trial_stages
from xscale.stage.finetune import MLM, step_schedule
from xscale.sweep.phases import PhaseConfig
from xscale.sweep.trial import TrialConfig, load_trial, parse_mixture
from xscale.tracking.names import summarize

ROOT = Path(__file__).resolve().parents[1]


def test_summarize_aggregates_and_gap():
    per_lang = {
        "en": {"accuracy": 80.0},
        "de": {"accuracy": 70.0},
        "zh": {"accuracy": 60.0},
    }
    m = summarize("xnli", "accuracy", per_lang)
    assert m["xnli.de.accuracy"] == 70.0
    assert m["xnli.avg"] == pytest.approx(70.0)
    assert m["xnli.avg_non_en"] == pytest.approx(65.0)
    assert m["xnli.gap_en"] == pytest.approx(15.0)


def test_summarize_without_english_has_no_gap():
    m = summarize("xnli", "accuracy", {"de": {"accuracy": 50.0}, "fr": {"accuracy": 40.0}})
    assert "xnli.gap_en" not in m  # never reported as 0
    assert m["xnli.avg_non_en"] == pytest.approx(45.0)


def test_parse_mixture():
    assert parse_mixture("mnli") is None
    assert parse_mixture("sst2+mnli") == ("mnli", "sst2")
    assert parse_mixture("mix:sst2+mnli") == ("mnli", "sst2")
    with pytest.raises(XScaleError, match="two different tasks"):
        parse_mixture("mnli+mnli")


def test_step_schedule_is_proportional_deterministic_and_capped_by_max_steps():
    hp = PhaseConfig(batch_size=10, epochs=1.0)
    sizes = {"a": 900, "b": 100}
    s1 = step_schedule(sizes, hp, seed=3, mlm_share=0.0)
    s2 = step_schedule(sizes, hp, seed=3, mlm_share=0.0)
    assert s1 == s2
    assert len(s1) == 100  # 90 + 10 batches in one epoch
    counts = Counter(t for t, _ in s1)
    assert 75 <= counts["a"] <= 99 and counts["b"] >= 1
    # each task walks through its own data: no index out of range, batches of batch_size
    for t, idx in s1:
        assert len(idx) <= 10 and max(idx) < sizes[t]
    capped = step_schedule(sizes, PhaseConfig(batch_size=10, max_steps=7), 3, 0.0)
    assert len(capped) == 7


def test_step_schedule_mlm_share():
    hp = PhaseConfig(batch_size=8, max_steps=400, epochs=50)
    s = step_schedule({"a": 800}, hp, seed=0, mlm_share=0.25)
    share = sum(1 for t, _ in s if t == MLM) / len(s)
    assert 0.18 < share < 0.32


def test_trial_stages_chain_and_keys():
    cfg = TrialConfig(model="tiny-xs", intermediate_task="mnli", target_task="xnli")
    pre, inter, tgt = trial_stages(cfg)
    assert (pre.kind, inter.kind, tgt.kind) == ("pretrain", "intermediate", "target")
    assert inter.parent == pre.key and tgt.parent == inter.key
    assert tgt.intermediate_task == "mnli" and tgt.target_task == "xnli"
    # same spec -> same key; a changed hyperparameter -> a new key for it and its children
    again = trial_stages(cfg)
    assert [s.key for s in again] == [pre.key, inter.key, tgt.key]
    changed = trial_stages(cfg.model_copy(update={"intermediate": PhaseConfig(batch_size=8)}))
    assert changed[0].key == pre.key
    assert changed[1].key != inter.key and changed[2].key != tgt.key


def test_baseline_and_mixture_trials():
    none = trial_stages(TrialConfig(model="tiny-xs", target_task="xnli"))
    assert [s.kind for s in none] == ["pretrain", "target"]
    assert none[1].parent == none[0].key and none[1].intermediate_task == "none"
    mix = trial_stages(
        TrialConfig(model="tiny-xs", intermediate_task="sst2+mnli", target_task="xnli")
    )
    assert mix[1].mixture == ("mnli", "sst2") and mix[1].task == "mix:mnli+sst2"
    assert mix[2].intermediate_task == "mix:mnli+sst2"


def test_real_size_has_no_pretrain_stage():
    stages = trial_stages(
        TrialConfig(model="xlmr-large", intermediate_task="mnli", target_task="xnli")
    )
    assert [s.kind for s in stages] == ["intermediate", "target"]
    assert stages[0].parent is None and stages[0].deepspeed_config == "zero2_bf16.json"


def test_example_trial_file_loads():
    cfg = load_trial(ROOT / "examples" / "trial.yaml")
    assert cfg.model == "tiny-s" and cfg.data.root == "fixtures"
    first = (ROOT / "examples" / "trial.yaml").read_text().splitlines()[0]
    assert first.startswith("#") and "xscale run" in first + "\n".join(
        (ROOT / "examples" / "trial.yaml").read_text().splitlines()[:3]
    )


def test_cluster_yaml_validates_with_rays_schema():
    from ray.autoscaler._private.util import prepare_config, validate_config

    raw = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    validate_config(prepare_config(raw))
    gpus = {n: t["node_config"]["InstanceType"] for n, t in raw["available_node_types"].items()}
    assert "p4d.24xlarge" in gpus.values()  # the 8-GPU node xlmr-xxl's stages need
    assert (ROOT / "cluster.yaml").read_text().startswith("# A Ray cluster")


def test_readme_has_the_two_setup_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    makefile = (ROOT / "Makefile").read_text()
    assert "sweeps/smoke.yaml" in makefile


def _cluster_commands(key: str) -> list[str]:
    return yaml.safe_load((ROOT / "cluster.yaml").read_text())[key]


def test_cluster_setup_fails_when_the_shared_mount_fails(tmp_path):
    """Run the mount command in bash with `sudo`, `mount` and `mountpoint` stubbed: a mount
    that fails must fail the node's set-up (Ray stops on a failing setup command)."""
    (cmd,) = [c for c in _cluster_commands("setup_commands") if "mount" in c]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in {"sudo": 'exec "$@"', "mount": "exit 32", "mountpoint": "exit 1"}.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    cmd = cmd.replace("/shared", str(tmp_path / "shared"))
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin"}
    failed = subprocess.run(["bash", "-c", cmd], env=env, capture_output=True)
    assert failed.returncode != 0
    (bin_dir / "mount").write_text("#!/bin/sh\nexit 0\n")  # mounted: set-up goes on
    (bin_dir / "mountpoint").write_text("#!/bin/sh\nexit 0\n")
    assert subprocess.run(["bash", "-c", cmd], env=env, capture_output=True).returncode == 0


def test_cluster_dashboard_listens_on_loopback_only():
    text = (ROOT / "cluster.yaml").read_text()
    starts = _cluster_commands("head_start_ray_commands")
    assert any("--dashboard-host=127.0.0.1" in c for c in starts)
    assert "0.0.0.0" not in "\n".join(starts) and "ray dashboard cluster.yaml" in text


def test_stage_threads_follow_omp_num_threads_else_every_core(monkeypatch):
    """Ray sets OMP_NUM_THREADS in each trial (the CPUs it holds); a lone run takes every core
    this process may use."""
    import os

    import torch

    from xscale.stage.runner import set_threads

    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        set_threads(None)
        assert torch.get_num_threads() == 1
        monkeypatch.delenv("OMP_NUM_THREADS")
        set_threads(None)
        assert torch.get_num_threads() == len(os.sched_getaffinity(0))
    finally:
        torch.set_num_threads(before)


def test_cluster_nodes_share_one_hub_cache_and_the_head_runs_mlflow():
    starts = _cluster_commands("head_start_ray_commands") + _cluster_commands(
        "worker_start_ray_commands"
    )
    ray_starts = [c for c in starts if "ray start" in c]
    assert len(ray_starts) == 2 and all("HF_HOME=/shared/huggingface" in c for c in ray_starts)
    assert any(
        "scripts/cluster_mlflow.sh" in c for c in _cluster_commands("head_start_ray_commands")
    )
    (setup,) = [c for c in _cluster_commands("setup_commands") if "setup.sh" in c]
    assert "XSCALE_CONSTRAINTS" not in setup  # the default: requirements/constraints.txt


def test_constraints_pin_every_dependency_at_the_tested_version():
    import re
    from importlib.metadata import version

    import tomllib

    pins = {}
    for line in (ROOT / "requirements" / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, v = line.partition("==")
            pins[re.sub(r"[-_.]+", "-", name.lower())] = v
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["test"]
    for req in wanted:
        name = re.sub(r"[-_.]+", "-", re.split(r"[\[<>=!~ ]", req, maxsplit=1)[0].lower())
        if name == "torch":  # installed first, CPU or CUDA build (scripts/setup.sh)
            continue
        assert name in pins, f"{name} is not pinned in requirements/constraints.txt"
        assert version(name) == pins[name], (
            f"{name}: installed {version(name)}, pinned {pins[name]}"
        )


def test_tracking_uri_from_the_environment_when_nothing_else_names_one(tmp_path, monkeypatch):
    from argparse import Namespace

    from xscale.cli.sweep import TRACKING_ENV, _load
    from xscale.errors import XScaleError

    sweep = tmp_path / "s.yaml"
    sweep.write_text(
        "name: t\noutput_dir: out\nmodels: [tiny-xs]\ntarget_tasks: [xnli]\n"
        "data: {root: fixtures}\n"
    )
    args = Namespace(file=str(sweep), output_dir=None, tracking_uri=None)
    monkeypatch.setenv(TRACKING_ENV, "http://10.0.0.5:5000")
    assert _load(args).resolved_tracking_uri == "http://10.0.0.5:5000"
    flag = Namespace(file=str(sweep), output_dir=None, tracking_uri="http://10.0.0.6:5000")
    assert _load(flag).resolved_tracking_uri == "http://10.0.0.6:5000"  # the flag wins
    monkeypatch.setenv(TRACKING_ENV, "ftp://nowhere")
    with pytest.raises(XScaleError, match=TRACKING_ENV):
        _load(args)


@pytest.mark.slow
def test_cluster_mlflow_server_binds_the_given_address_only(tmp_path):
    import socket

    import psutil

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "XSCALE_MLFLOW_HOST": "127.0.0.1",
        "XSCALE_MLFLOW_PORT": str(port),
        "XSCALE_MLFLOW_STORE": str(tmp_path / "store"),
        "XSCALE_MLFLOW_ARTIFACTS": str(tmp_path / "artifacts"),
        "MLFLOW": str(Path(sys.executable).with_name("mlflow")),
    }
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "cluster_mlflow.sh")],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    pid = int((tmp_path / "store" / "server.pid").read_text())
    try:
        assert proc.returncode == 0, proc.stderr + (tmp_path / "store" / "server.log").read_text()
        assert (tmp_path / "store" / "env").read_text().strip() == (
            f"export XSCALE_TRACKING_URI=http://127.0.0.1:{port}"
        )
        server = psutil.Process(pid)
        family = [server, *server.children(recursive=True)]
        listening = {
            (c.laddr.ip, c.laddr.port)
            for p in family
            for c in p.net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN
        }
        assert ("127.0.0.1", port) in listening
        assert all(ip == "127.0.0.1" for ip, _ in listening), listening
    finally:
        for p in psutil.Process(pid).children(recursive=True) + [psutil.Process(pid)]:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
