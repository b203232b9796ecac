"""What the sweep tests share: tiny sweep files on the shipped fixtures, the CLI in a
subprocess, stage folder states, MLflow run checks, and the processes a sweep starts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from xscale.graph.expand import expand
from xscale.sweep.schema import load_sweep

REPO = Path(__file__).resolve().parents[1]
PHASE = {
    "learning_rate": 5.0e-4,
    "batch_size": 16,
    "max_steps": 6,
    "max_length": 48,
    "max_eval_examples": 40,
    "log_every": 3,
}


def sweep_dict(out: Path | str, **over) -> dict:
    """A tiny sweep on the shipped fixtures: one size, mnli -> {xnli, pawsx}, one seed."""
    data = {
        "name": "t",
        "output_dir": str(out),
        "max_concurrent_trials": 2,
        "models": ["tiny-xs"],
        "intermediate_tasks": ["mnli"],
        "target_tasks": ["xnli", "pawsx"],
        "seeds": [0],
        "eval_languages": {"xnli": ["en", "de"], "pawsx": ["en", "de"]},
        "data": {"root": "fixtures"},
        "pretrain": {
            "epochs": 1,
            "batch_size": 32,
            "learning_rate": 1.0e-3,
            "max_length": 32,
            "max_lines_per_language": 300,
            "log_every": 50,
        },
        "intermediate": dict(PHASE),
        "target": dict(PHASE),
        "failure": {"max_failures": 1},
    }
    data.update(over)
    if "eval_languages" not in over:  # keep only the targets the sweep has
        data["eval_languages"] = {
            t: v for t, v in data["eval_languages"].items() if t in data["target_tasks"]
        }
    return data


def write_sweep(path: Path, out: Path, **over) -> Path:
    path.write_text(yaml.safe_dump(sweep_dict(out, **over), sort_keys=False))
    return path


def sweep_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "xscale.cli", *args]


# Hang guards, not speed limits: a tiny sweep takes 1-2 minutes on an idle 2-core machine and
# several times that on a loaded one (issue 12: the suite must get slower, not red, under load).
SWEEP_TIMEOUT = 1200


def run_cli(
    *args: str, timeout: float = SWEEP_TIMEOUT, cwd: Path | None = None, env: dict | None = None
):
    return subprocess.run(
        sweep_cmd(*args),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd or REPO,
        env={**os.environ, **env} if env else None,
    )


# Secrets a cluster's environment holds; the shared sweep runs with them set, and nothing it
# writes may contain them (params, tags, artifacts, stage folders, Ray's result files).
SECRETS = {
    "HF_TOKEN": "hf_SECRETtokenVALUE123",
    "AWS_SECRET_ACCESS_KEY": "awsSECRETkeyVALUE456",
    "AWS_ACCESS_KEY_ID": "AKIASECRETVALUE789",
    "MLFLOW_TRACKING_PASSWORD": "mlflowSECRETpassword",
    "WANDB_API_KEY": "wandbSECRETapikey000",
}


def attempts(stage: Path) -> int:
    f = stage / "attempts.jsonl"
    return len(f.read_text().splitlines()) if f.is_file() else 0


def stage_states(out: Path) -> tuple[set[str], set[str]]:
    """(complete stage keys, started-but-not-complete stage keys)."""
    done, running = set(), set()
    for d in (out / "stages").glob("*") if (out / "stages").is_dir() else ():
        if (d / "COMPLETE").is_file():
            done.add(d.name)
        elif (d / "attempts.jsonl").is_file():
            running.add(d.name)
    return done, running


def planned_stages(sweep_file: Path) -> dict[str, str]:
    """Every concrete stage of a finished grid sweep: key -> kind (needs groups/ selections)."""
    from xscale.graph.selection import resolve

    cfg = load_sweep(sweep_file)
    known = resolve(expand(cfg), cfg.output_path)
    assert all(v is not None for v in known.values()), known
    return {s.key: s.kind for specs in known.values() for s in specs}


def mlflow_runs(out: Path, experiment: str):
    """(stage runs, sweep parent runs) of the sweep's experiment in <out>/mlflow.db."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{out.resolve() / 'mlflow.db'}")
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"no MLflow experiment {experiment!r}"

    def search(filt: str):
        return client.search_runs([exp.experiment_id], filter_string=filt, max_results=1000)

    return search("tags.`xscale.stage_kind` != ''"), search("tags.`xscale.run_kind` = 'sweep'")


def check_one_run_per_stage(out: Path, experiment: str, keys: set[str]) -> None:
    stage_runs, parents = mlflow_runs(out, experiment)
    assert len(parents) == 1, [p.info.run_name for p in parents]
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    by_key: dict[str, list] = {}
    for r in stage_runs:
        by_key.setdefault(r.data.tags["xscale.stage_key"], []).append(r)
    assert set(by_key) == keys
    for key, runs in by_key.items():
        assert len(runs) == 1, f"{key}: {len(runs)} MLflow runs"
        assert runs[0].info.status == "FINISHED", (key, runs[0].info.status)
        assert runs[0].data.tags.get("mlflow.parentRunId") == parent.info.run_id, key


# ============================================================== the processes a sweep starts


def _group_processes(pgid: int) -> list:
    import psutil

    found = []
    for p in psutil.process_iter(["name", "status"]):
        try:
            if os.getpgid(p.pid) == pgid and p.info["status"] != psutil.STATUS_ZOMBIE:
                found.append(p)
        except (ProcessLookupError, psutil.Error):
            pass
    return found


def _alive(procs: list) -> list:
    import psutil

    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.Error:
            pass
    return out


def _names(procs: list) -> list[str]:
    import psutil

    names = set()
    for p in procs:
        try:
            names.add(p.name())
        except psutil.Error:
            pass
    return sorted(names)


def non_loopback_listeners(procs: list) -> list[tuple[str, str, int]]:
    """(process, address, port) of every listening TCP socket of `procs` not bound to loopback
    (an IPv4-mapped 127.0.0.1 on a dual-stack socket is loopback)."""
    import ipaddress

    import psutil

    found = []
    for p in procs:
        try:
            conns, name = p.net_connections(kind="inet"), p.name()
        except psutil.Error:
            continue
        for c in conns:
            if c.status != psutil.CONN_LISTEN:
                continue
            ip = ipaddress.ip_address(c.laddr.ip.split("%")[0])
            mapped = getattr(ip, "ipv4_mapped", None)
            if not (ip.is_loopback or (mapped is not None and mapped.is_loopback)):
                found.append((name, c.laddr.ip, c.laddr.port))
    return found


def start_sweep(path: Path, log_path: Path) -> tuple[subprocess.Popen, object]:
    """`xscale sweep path` in the background, in its own process group (so a test can kill the
    driver alone), output to `log_path`; returns the process and the open log."""
    log = open(log_path, "w")
    proc = subprocess.Popen(
        sweep_cmd("sweep", str(path)),
        cwd=log_path.parent,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return proc, log


def _kill_all(proc: subprocess.Popen, descendants: list) -> None:
    """SIGKILL what a sweep started: its process group and the Ray workers (own sessions)."""
    import psutil

    for p in [*_group_processes(proc.pid), *_alive(descendants)]:
        try:
            p.kill()
        except psutil.Error:
            pass
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=30)


def psutil_process(pid: int):
    import psutil

    return psutil.Process(pid)


def _descendants(pid: int) -> list:
    import psutil

    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []
