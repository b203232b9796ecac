"""`xscale sweep` / `plan` / `status`: expansion into a stage graph, and whole sweeps on Ray Tune.

The expansion tests are pure (no Ray, no training). The end-to-end tests (marked slow; they still
run by default) run the real CLI in a subprocess on tiny sweeps over the shipped fixture data and
check what a user relies on: a shared intermediate stage trains once, a sweep whose driver is
killed with SIGKILL resumes by re-running the same command without re-running complete stages,
MLflow holds exactly one run per stage under one parent run, Optuna + ASHA selects the best
stage, and a size with several workers runs as a Ray Train TorchTrainer.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import yaml

from xscale.graph.expand import expand
from xscale.sweep.schema import build_sweep, load_sweep

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


# ============================================================== expansion (pure)


def big_sweep(**over):
    data = sweep_dict(
        "/nonexistent/out",
        models=["tiny-xs", "tiny-s"],
        intermediate_tasks=["none", "mnli", "sst2"],
        target_tasks=["xnli", "pawsx"],
        seeds=[0, 1],
    )
    for section, values in over.items():
        data[section] = {**data[section], **values}
    return build_sweep(data, "big.yaml")


def test_expand_group_counts_per_kind():
    graph = expand(big_sweep())
    assert graph.count("pretrain") == 2
    assert graph.count("intermediate") == 2 * 2 * 2  # sizes x {mnli, sst2} x seeds
    assert graph.count("target") == 2 * 3 * 2 * 2  # sizes x {none, mnli, sst2} x targets x seeds
    assert [len(w) for w in graph.by_depth()] == [2, 8 + 8, 16]  # none-targets sit at depth 1


def test_expand_shares_an_intermediate_group_between_target_tasks():
    graph = expand(big_sweep())
    inter = [
        g
        for g in graph.groups.values()
        if g.kind == "intermediate"
        and (g.base["task"], g.base["model"], g.base["seed"]) == ("mnli", "tiny-xs", 0)
    ]
    assert len(inter) == 1
    children = graph.children(inter[0].key)
    assert sorted(c.base["target_task"] for c in children) == ["pawsx", "xnli"]
    assert all(c.base["intermediate_task"] == "mnli" for c in children)
    # Its parent is the one tiny-xs pretrain group, also shared.
    pre = graph.groups[inter[0].parent]
    assert pre.kind == "pretrain" and pre.base["model"] == "tiny-xs"
    # {mnli, sst2} x seeds, and the "none" baselines: targets x seeds
    assert len(graph.children(pre.key)) == 2 * 2 + 2 * 2
    # Each intermediate group has one stage, and its key does not depend on the target task.
    stage = inter[0].stage({}, "pre-parent")
    assert stage.target_task is None


def test_expand_keys_are_deterministic_and_follow_hparams():
    a, b = expand(big_sweep()), expand(big_sweep())
    assert list(a.groups) == list(b.groups)
    stage_keys = [g.stage(g.samples[0], "p").key for g in a.groups.values()]
    assert stage_keys == [g.stage(g.samples[0], "p").key for g in b.groups.values()]
    assert len(set(a.groups)) == 2 + 8 + 24

    def keys(graph, kind):
        return {k for k, g in graph.groups.items() if g.kind == kind}

    # A target hyperparameter changes only the target keys.
    t = expand(big_sweep(target={"learning_rate": 1.0e-4}))
    assert keys(t, "pretrain") == keys(a, "pretrain")
    assert keys(t, "intermediate") == keys(a, "intermediate")
    assert keys(t, "target").isdisjoint(keys(a, "target"))
    # An intermediate hyperparameter changes the intermediate keys and those of their children,
    # but not the 'none' baselines (their parent is the pretrain group).
    i = expand(big_sweep(intermediate={"max_steps": 7}))
    assert keys(i, "pretrain") == keys(a, "pretrain")
    assert keys(i, "intermediate").isdisjoint(keys(a, "intermediate"))
    common = keys(i, "target") & keys(a, "target")
    assert {a.groups[k].base["intermediate_task"] for k in common} == {"none"}
    assert len(common) == 2 * 2 * 2
    # So does a pretrain setting, all the way down.
    p = expand(big_sweep(pretrain={"max_lines_per_language": 301}))
    assert set(p.groups).isdisjoint(a.groups)


def test_expand_grid_search_gives_one_stage_per_grid_point():
    cfg = big_sweep(
        target={
            "learning_rate": {"grid": [1.0e-4, 3.0e-4, 1.0e-3]},
            "batch_size": {"choice": [8, 16]},
        }
    )
    graph = expand(cfg)
    assert graph.count("target") == 24
    for g in graph.groups.values():
        if g.kind != "target":
            assert len(g.samples) == 1
            continue
        assert len(g.samples) == 6
        specs = [g.stage(s, "parent") for s in g.samples]
        assert len({s.key for s in specs}) == 6
        points = {(s.hparams.learning_rate, s.hparams.batch_size) for s in specs}
        assert points == {(lr, bs) for lr in (1.0e-4, 3.0e-4, 1.0e-3) for bs in (8, 16)}
        assert {s.hparams.max_steps for s in specs} == {6}  # fixed values kept


@pytest.mark.parametrize("mode", ["max", "min"])
def test_selection_takes_the_best_complete_stage_of_a_group(tmp_path, mode):
    from xscale.graph.selection import load_selection
    from xscale.graph.selection import select_best as _select
    from xscale.graph.stage import mark_complete

    cfg = big_sweep(target={"learning_rate": {"grid": [1e-4, 2e-4, 3e-4, 4e-4, 5e-4]}})
    group = next(g for g in expand(cfg).groups.values() if g.kind == "target")
    specs = [group.stage(s, "parent") for s in group.samples]
    scores = [50.0, 70.0, None, 20.0, 99.0]  # the 99 never completes; None has no dev score
    for spec, score in zip(specs, scores):
        d = tmp_path / "stages" / spec.key
        d.mkdir(parents=True)
        result = {"metrics": {} if score is None else {"dev.score": score}}
        if score == 99.0:
            (d / "attempts.jsonl").write_text("{}\n")  # started, never finished
        else:
            mark_complete(d, result)
    chosen = _select(tmp_path, group, specs, mode)
    assert chosen == specs[1 if mode == "max" else 3].key
    record = json.loads((tmp_path / "groups" / f"{group.key}.json").read_text())
    assert record["selected"] == chosen
    assert {c["stage"]: c["dev.score"] for c in record["candidates"]} == {
        specs[i].key: scores[i] for i in (0, 1, 2, 3)
    }
    assert load_selection(tmp_path) == {group.key: chosen}
    # Nothing complete: nothing selected, nothing written.
    assert _select(tmp_path / "empty", group, specs, mode) is None
    assert not (tmp_path / "empty" / "groups").exists()


# ============================================================== CLI: errors, plan, status


@pytest.mark.parametrize(
    "case, edit, needles",
    [
        (
            "unknown key",
            lambda d: d["target"].update(learnin_rate=1e-3),
            ["target.learnin_rate", "unknown key"],
        ),
        ("unknown size", lambda d: d.update(models=["tiny-xs", "tiny-xxxl"]), ["models.1"]),
        (
            "bad search space",
            lambda d: d["target"].update(learning_rate={"normal": [0, 1]}),
            ["target.learning_rate", "normal"],
        ),
        (
            "loguniform low <= 0",
            lambda d: (
                d["target"].update(learning_rate={"loguniform": [0, 1e-3]}),
                d.update(search={"method": "optuna", "num_samples": 2}),
            ),
            ["target.learning_rate.loguniform.0"],
        ),
        ("missing file", None, []),
    ],
)
def test_sweep_cli_errors_are_one_line_and_run_nothing(tmp_path, case, edit, needles):
    out = tmp_path / "out"
    path = tmp_path / "bad.yaml"
    if edit is not None:
        data = sweep_dict(out)
        edit(data)
        path.write_text(yaml.safe_dump(data, sort_keys=False))
    proc = run_cli("sweep", str(path), timeout=120, cwd=tmp_path)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("xscale: error: ") and str(path) in lines[0], lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert not out.exists()
    assert not list(tmp_path.rglob("mlflow.db")) and not (tmp_path / "runs").exists()


def plan_counts(stdout: str) -> dict[str, int]:
    return {
        m.group(1): int(m.group(2))
        for m in re.finditer(r"^\s+(pretrain|intermediate|target|all)\s+(\d+) stages", stdout, re.M)
    }


@pytest.mark.parametrize(
    "sweep, counts",
    [
        ("smoke.yaml", {"pretrain": 2, "intermediate": 6, "target": 24, "all": 32}),
        # one size, {none, mnli} x xnli; the 2 target groups are searched with 3 Optuna samples
        ("search_demo.yaml", {"pretrain": 1, "intermediate": 1, "target": 6, "all": 8}),
    ],
)
def test_plan_prints_counts_per_kind(tmp_path, sweep, counts):
    out = tmp_path / "out"
    proc = run_cli("plan", f"sweeps/{sweep}", "--output-dir", str(out), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert plan_counts(proc.stdout) == counts, proc.stdout
    assert not out.exists()  # planning writes nothing


def test_plan_scaling_sweep_offline(tmp_path):
    from xscale.tasks.registry import TASKS

    cfg = load_sweep(REPO / "sweeps" / "scaling.yaml", check_registry=False)
    needed = set(cfg.target_tasks) | {
        t for e in cfg.intermediate_tasks for t in ([e] if isinstance(e, str) else e.mixture)
    }
    missing = sorted(needed - set(TASKS) - {"none"})
    if missing:
        pytest.skip(f"tasks of sweeps/scaling.yaml not registered yet: {', '.join(missing)}")
    out = tmp_path / "out"
    proc = run_cli("plan", "sweeps/scaling.yaml", "--output-dir", str(out), timeout=120)
    assert proc.returncode == 0, proc.stderr
    from xscale.tasks import get_format

    n_inter = len(cfg.intermediate_tasks) - 1  # all but 'none'
    chains = len(cfg.models) * len(cfg.intermediate_tasks) * len(cfg.seeds)
    # Retrieval targets (BUCC, Tatoeba) are evaluated, not trained: one stage, no search.
    trained = [t for t in cfg.target_tasks if getattr(get_format(TASKS[t]), "trains", True)]
    untrained = len(cfg.target_tasks) - len(trained)
    assert untrained == 2  # bucc, tatoeba
    want = {
        "intermediate": len(cfg.models) * n_inter * len(cfg.seeds),
        "target": chains * (len(trained) * cfg.search.num_samples + untrained),
    }
    want["all"] = want["intermediate"] + want["target"]
    assert plan_counts(proc.stdout) == want, proc.stdout
    assert not out.exists()


def test_plan_xtreme_r_sweep_offline(tmp_path):
    """The XTREME-R sweep plans offline although its LAReQA / Mewsli-X folder is not here."""
    cfg = load_sweep(REPO / "sweeps" / "xtreme_r.yaml")
    out = tmp_path / "out"
    proc = run_cli("plan", "sweeps/xtreme_r.yaml", "--output-dir", str(out), timeout=120)
    assert proc.returncode == 0, proc.stderr
    chains = len(cfg.models) * len(cfg.intermediate_tasks) * len(cfg.seeds)  # 4 x 11 x 3
    # nine trained targets, searched with 4 Optuna samples each; Tatoeba is evaluated only
    want = {"intermediate": 4 * 10 * 3, "target": chains * (9 * cfg.search.num_samples + 1)}
    want["all"] = want["intermediate"] + want["target"]
    assert plan_counts(proc.stdout) == want, proc.stdout
    for task in ("lareqa", "mewslix", "xcopa"):
        assert f"target {task} <- mnli xlmr-xxl [en] seed2" in proc.stdout
    assert not out.exists()


def test_status_on_a_folder_that_is_not_a_sweep(tmp_path):
    proc = run_cli("status", str(tmp_path), timeout=60)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and str(tmp_path) in lines[0], proc.stderr


# ============================================================== end to end


@pytest.fixture(scope="module")
def shared_sweep(tmp_path_factory):
    """tiny-xs: pretrain -> mnli -> {xnli, pawsx}, run to completion once."""
    root = tmp_path_factory.mktemp("shared")
    path = write_sweep(root / "shared.yaml", "out", name="shared")  # a relative output_dir
    proc = run_cli("sweep", "shared.yaml", timeout=SWEEP_TIMEOUT, cwd=root, env=SECRETS)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return path, root / "out"


@pytest.mark.slow
def test_secrets_in_the_environment_reach_nothing_the_sweep_writes(shared_sweep):
    _, out = shared_sweep
    files = [p for p in out.rglob("*") if p.is_file()]
    assert any(p.name == "mlflow.db" for p in files) and any("ray_results" in str(p) for p in files)
    for p in files:
        data = p.read_bytes()
        for name, value in SECRETS.items():
            assert value.encode() not in data, (name, p)


@pytest.mark.slow
def test_shared_intermediate_trains_once(shared_sweep):
    path, out = shared_sweep
    planned = planned_stages(path)
    assert sorted(planned.values()) == ["intermediate", "pretrain", "target", "target"]
    done, running = stage_states(out)
    assert done == set(planned) and not running
    (mnli,) = [k for k, kind in planned.items() if kind == "intermediate"]
    assert attempts(out / "stages" / mnli) == 1
    targets = [k for k, kind in planned.items() if kind == "target"]
    specs = [json.loads((out / "stages" / k / "spec.json").read_text()) for k in targets]
    assert sorted(s["target_task"] for s in specs) == ["pawsx", "xnli"]
    assert all(s["parent"] == mnli for s in specs)
    stage_runs, _ = mlflow_runs(out, "shared")
    assert [r.data.tags["xscale.stage_key"] for r in stage_runs].count(mnli) == 1
    check_one_run_per_stage(out, "shared", set(planned))


@pytest.mark.slow
def test_status_of_a_finished_sweep(shared_sweep):
    _, out = shared_sweep
    proc = run_cli("status", str(out), timeout=60)
    assert proc.returncode == 0, proc.stderr
    rows = {
        m.group(1): m.groups()[1:]
        for m in re.finditer(
            r"^\s+(\w+)\s+done\s+(\d+)\s+running/stopped\s+(\d+)\s+failed\s+(\d+)"
            r"\s+not started\s+(\d+)",
            proc.stdout,
            re.M,
        )
    }
    assert rows == {
        "pretrain": ("1", "0", "0", "0"),
        "intermediate": ("1", "0", "0", "0"),
        "target": ("2", "0", "0", "0"),
    }, proc.stdout


@pytest.mark.slow
def test_relative_paths_from_a_temporary_working_directory(tmp_path):
    """The user's path: relative paths in the file and on the command line, resolved against
    the directory the command runs in (not Ray's per-trial working directories); a re-run of
    the same command adds nothing."""
    work = tmp_path / "work"
    (work / "sweeps").mkdir(parents=True)
    write_sweep(
        work / "sweeps" / "rel.yaml",
        "runs/rel",
        name="rel",
        intermediate_tasks=["none"],
        target_tasks=["xnli"],
    )
    proc = run_cli("sweep", "sweeps/rel.yaml", timeout=SWEEP_TIMEOUT, cwd=work)
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = work / "runs" / "rel"
    status = json.loads(run_cli("status", "runs/rel", "--json", cwd=work).stdout)
    assert status["complete"] and status["stages_total"] == 2, status
    assert {r["state"] for r in status["stages"]} == {"done"}
    done, running = stage_states(out)
    assert len(done) == 2 and not running
    before = {k: attempts(out / "stages" / k) for k in done}

    # a relative --output-dir resolves the same way (the one path rule, xscale/sweep/io.py):
    # the plan of the flagged folder is the same stages, not yet run, under work/other/o
    flagged = run_cli("plan", "sweeps/rel.yaml", "--output-dir", "other/o", "--json", cwd=work)
    assert flagged.returncode == 0, flagged.stderr[-4000:]
    plan = json.loads(flagged.stdout)
    assert plan["output_dir"] == str(work / "other" / "o"), plan["output_dir"]
    (pre,) = [r for r in plan["stages"] if r["kind"] == "pretrain"]
    assert pre["key"] in done and pre["state"] == "left"  # same stage, another folder
    assert len(plan["stages"]) == 2

    again = run_cli("sweep", "sweeps/rel.yaml", timeout=SWEEP_TIMEOUT, cwd=work)
    assert again.returncode == 0, again.stderr[-4000:]
    assert "ran 0," in again.stderr, again.stderr[-2000:]
    assert {k: attempts(out / "stages" / k) for k in done} == before
    check_one_run_per_stage(out, "rel", done)


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


@pytest.mark.slow
def test_sweep_resumes_after_the_driver_is_killed(tmp_path):
    out = tmp_path / "out"
    # mnli trains long enough (a few seconds) to be caught mid-way; everything else is quick.
    inter = {**PHASE, "epochs": 50, "max_steps": 600}
    path = write_sweep(
        tmp_path / "kill.yaml",
        out,
        name="killed",
        intermediate_tasks=["none", "mnli"],
        intermediate=inter,
    )
    n_stages = 1 + 1 + 2 * 2  # pretrain, mnli, {none, mnli} x {xnli, pawsx}
    proc, log = start_sweep(path, tmp_path / "first.log")  # log closed below
    descendants: list = []
    try:
        deadline = time.monotonic() + 240
        while True:
            done, running = stage_states(out)
            if len(done) >= 2 and any(k.startswith("int-") for k in running):
                break
            assert proc.poll() is None, "the sweep ended before it could be killed mid-way"
            assert time.monotonic() < deadline, "no stage completed in time"
            time.sleep(0.1)
        descendants = _descendants(proc.pid)
        # a local sweep's Ray (GCS, raylet, trial workers, agents) listens on loopback only
        exposed = non_loopback_listeners([psutil_process(proc.pid), *descendants])
        os.kill(proc.pid, signal.SIGKILL)  # the driver only
        proc.wait(timeout=30)
        # Ray's processes should go away with the driver; the trial workers must, before the
        # folders are inspected (a live worker could still finish a stage). Its agents get 5 s.
        start = time.monotonic()
        while left := _alive(descendants) + _group_processes(proc.pid):
            workers = [n for n in _names(left) if not n.endswith("Agent")]
            waited = time.monotonic() - start
            if waited > 15 or (not workers and waited > 5):
                break
            time.sleep(0.5)
        lingering = _names(left)
    finally:
        log.close()
        if proc.poll() is None:
            _kill_all(proc, descendants or _descendants(proc.pid))
    if lingering:
        warnings.warn(
            f"Ray processes still alive after the sweep driver was killed: {lingering}",
            stacklevel=1,
        )
        _kill_all(proc, descendants)
        time.sleep(1)
    assert not exposed, f"the sweep's processes listen beyond loopback: {exposed}"
    done_at_kill, in_progress = stage_states(out)
    assert set(done) <= done_at_kill
    # Trial workers outlive the driver by a second or two and may finish a stage meanwhile.
    assert 1 <= len(in_progress) <= 2, in_progress  # at most max_concurrent_trials
    assert any(k.startswith("int-") for k in in_progress), in_progress

    again = run_cli("sweep", str(path), timeout=SWEEP_TIMEOUT, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-4000:]

    planned = planned_stages(path)
    assert len(planned) == n_stages
    done_after, running_after = stage_states(out)
    assert done_after == set(planned) and not running_after
    counts = {k: attempts(out / "stages" / k) for k in planned}
    for key in done_at_kill:
        assert counts[key] == 1, f"{key} was complete before the kill but ran again"
    for key in in_progress:
        assert counts[key] == 2, f"{key} was running at the kill: {counts[key]} attempts"
    assert sum(counts.values()) == n_stages + len(in_progress)
    check_one_run_per_stage(out, "killed", set(planned))


@pytest.mark.slow
def test_optuna_search_with_asha_selects_the_best_stage(tmp_path):
    out = tmp_path / "out"
    target = {**PHASE, "learning_rate": {"loguniform": [1.0e-4, 3.0e-3]}}
    path = write_sweep(
        tmp_path / "search.yaml",
        out,
        name="search",
        intermediate_tasks=["none"],
        target_tasks=["xnli"],
        target=target,
        search={"method": "optuna", "num_samples": 3},
        scheduler={"type": "asha", "max_t": 3, "grace_period": 1},
    )
    proc = run_cli("sweep", str(path), timeout=SWEEP_TIMEOUT, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]

    graph = expand(load_sweep(path))
    (group,) = [g for g in graph.groups.values() if g.kind == "target"]
    record = json.loads((out / "groups" / f"{group.key}.json").read_text())
    assert record["group"] == group.key
    # Three Optuna trials, each its own stage (own learning rate, own folder).
    trials = [d for d in (out / "stages").iterdir() if d.name.startswith("tar-")]
    specs = [json.loads((d / "spec.json").read_text()) for d in trials]
    assert len(trials) == 3, [d.name for d in trials]
    assert len({s["hparams"]["learning_rate"] for s in specs}) == 3
    assert all(1.0e-4 <= s["hparams"]["learning_rate"] <= 3.0e-3 for s in specs)
    # The selected stage has the best English dev score of the complete ones.
    complete = {
        d.name: json.loads((d / "result.json").read_text())["metrics"]["dev.score"]
        for d in trials
        if (d / "COMPLETE").is_file()
    }
    assert complete, "no target trial completed"
    candidates = {c["stage"]: c["dev.score"] for c in record["candidates"]}
    assert candidates == complete
    assert record["selected"] in complete
    assert complete[record["selected"]] == max(complete.values())


@pytest.mark.slow
def test_multi_worker_size_runs_as_a_torch_trainer(tmp_path):
    out = tmp_path / "out"
    path = write_sweep(
        tmp_path / "workers.yaml",
        out,
        name="workers",
        intermediate_tasks=["none"],
        target_tasks=["xnli"],
        resources={"tiny-xs": {"workers": 2, "cpus": 1}},
    )
    proc, log = start_sweep(path, tmp_path / "sweep.log")  # log closed below
    try:
        # A TorchTrainer starts its workers in ~15 s on an idle machine; none in 240 s (room for
        # a loaded one) means it waits on resources that never come.
        start, first_attempt = time.monotonic(), None
        while proc.poll() is None:
            if first_attempt is None and list(out.glob("stages/*/attempts.jsonl")):
                first_attempt = time.monotonic()
            assert first_attempt or time.monotonic() - start < 240, "no worker started in 240 s"
            assert time.monotonic() - start < SWEEP_TIMEOUT, "sweep did not finish"
            time.sleep(0.5)
    finally:
        log.close()
        if proc.poll() is None:
            _kill_all(proc, _descendants(proc.pid))
    assert proc.returncode == 0, (tmp_path / "sweep.log").read_text()[-4000:]
    planned = planned_stages(path)
    done, _ = stage_states(out)
    assert done == set(planned) and len(planned) == 2
    for key in planned:
        lines = (out / "stages" / key / "attempts.jsonl").read_text().splitlines()
        assert [json.loads(line)["world"] for line in lines] == [2], key
    check_one_run_per_stage(out, "workers", set(planned))


@pytest.mark.slow
def test_a_crashed_stage_is_retried_from_its_checkpoint(tmp_path):
    """SIGKILL the trial process of a running stage: Ray's FailureConfig restarts the trial and
    the stage resumes from its last DeepSpeed checkpoint, logging into the same MLflow run."""
    out = tmp_path / "out"
    path = write_sweep(
        tmp_path / "retry.yaml",
        out,
        name="retry",
        intermediate_tasks=["mnli"],
        target_tasks=["xnli"],
        intermediate={**PHASE, "epochs": 50, "max_steps": 600, "checkpoint_every": 100},
        failure={"max_failures": 1},
    )
    proc, log = start_sweep(path, tmp_path / "sweep.log")  # log closed below
    try:
        deadline = time.monotonic() + 240
        while not list(out.glob("stages/int-*/ckpt/latest")):
            assert proc.poll() is None, (tmp_path / "sweep.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the intermediate stage never checkpointed"
            time.sleep(0.1)
        (stage,) = [p.parents[1] for p in out.glob("stages/int-*/ckpt/latest")]
        pid = json.loads((stage / "attempts.jsonl").read_text().splitlines()[0])["pid"]
        os.kill(pid, signal.SIGKILL)  # the trial's worker process, not the driver
        proc.wait(timeout=SWEEP_TIMEOUT)
    finally:
        log.close()
        if proc.poll() is None:
            _kill_all(proc, _descendants(proc.pid))
    assert proc.returncode == 0, (tmp_path / "sweep.log").read_text()[-4000:]
    lines = (stage / "attempts.jsonl").read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[1])["pid"] != pid
    result = json.loads((stage / "result.json").read_text())
    assert result["resumed_from_step"] >= 100 and result["steps"] == 600
    check_one_run_per_stage(out, "retry", set(planned_stages(path)))


def test_second_sweep_on_a_busy_folder_refuses_with_one_line(tmp_path):
    """A sweep's driver holds <output_dir>/SWEEP.lock; another sweep on the folder refuses at
    once, naming the holder, and writes nothing."""
    out = tmp_path / "out"
    out.mkdir()
    path = write_sweep(tmp_path / "s.yaml", out)
    hold = (
        "import sys, time; from xscale.graph.lock import FolderLock; "
        "FolderLock(sys.argv[1]).acquire(); print('held', flush=True); time.sleep(600)"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", hold, str(out / "SWEEP.lock")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        proc = run_cli("sweep", str(path), timeout=120)
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert proc.returncode == 2, proc.stderr
        assert len(lines) == 1 and f"is in use by pid {holder.pid}" in lines[0], proc.stderr
        assert "another --output-dir" in lines[0]
        assert sorted(p.name for p in out.iterdir()) == ["SWEEP.lock"]  # nothing written
    finally:
        holder.kill()


@pytest.mark.parametrize(
    "extra, env, needle",
    [
        # a Ray that does not come up in time (as on a loaded machine): a bounded wait
        ((), {"XSCALE_RAY_START_TIMEOUT": "0.5"}, "Ray did not start within 0 s"),
        # nothing listens there
        (("--address", "127.0.0.1:9"), {"XSCALE_RAY_START_TIMEOUT": "20"}, "--address 127.0.0.1:9"),
    ],
    ids=["start-timeout", "unreachable-address"],
)
def test_ray_start_failure_is_one_line_and_writes_nothing(tmp_path, extra, env, needle):
    out = tmp_path / "out"
    path = write_sweep(tmp_path / "s.yaml", out)
    proc = subprocess.run(
        sweep_cmd("sweep", str(path), *extra),
        capture_output=True,
        text=True,
        timeout=180,
        cwd=REPO,
        env={**os.environ, **env},
    )
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert len(lines) == 1 and needle in lines[0], proc.stderr[-3000:]
    assert not out.exists()  # no sweep.json, no MLflow store, no parent run


@pytest.mark.parametrize(
    "resources, needle",
    [
        ({"tiny-xs": {"gpus": 1}}, "resources.tiny-xs: a worker needs 1 CPUs and 1 GPUs"),
        ({"tiny-xs": {"cpus": 4096}}, "resources.tiny-xs: a worker needs 4096 CPUs"),
    ],
    ids=["gpus-where-there-are-none", "more-cpus-than-any-node"],
)
def test_resources_no_node_has_are_refused_on_a_local_ray(tmp_path, resources, needle):
    out = tmp_path / "out"
    path = write_sweep(tmp_path / "s.yaml", out, resources=resources)
    proc = run_cli("sweep", str(path), timeout=180)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert len(lines) == 1 and needle in lines[0] and str(path) in lines[0], proc.stderr[-3000:]
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.parametrize("command", ["status", "analyze"])
@pytest.mark.parametrize("which", ["sweep.json", "spec.json"])
def test_corrupt_records_under_status_and_analyze_are_one_line(
    shared_sweep, tmp_path, command, which
):
    import shutil

    _, out = shared_sweep
    copy = tmp_path / "out"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("ray_results", "ray_train"))
    if which == "sweep.json":
        bad = copy / "sweep.json"
    else:
        bad = sorted((copy / "stages").glob("tar-*/spec.json"))[0]
    bad.write_text(bad.read_text()[:40])  # cut short, as by a full disk
    before = sorted(p.relative_to(copy) for p in copy.rglob("*"))
    proc = run_cli(command, str(copy), timeout=SWEEP_TIMEOUT)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    if which == "spec.json":  # neither reads a complete stage's spec: the answer stands
        assert proc.returncode == 0, proc.stderr[-3000:]
        return
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert len(lines) == 1 and str(bad) in lines[0], proc.stderr[-3000:]
    assert sorted(p.relative_to(copy) for p in copy.rglob("*")) == before  # nothing written


LOCAL_RAY_PROBE = """
import json, sys, time
import psutil, ray
from xscale.schedule.tune import start_ray

start_ray(None, {"tiny-xs": {"cpus": 1, "gpus": 0, "workers": 1}})
ray.get(ray.remote(lambda: 1).remote())  # a worker process, as a trial starts one
procs = [psutil.Process(), *psutil.Process().children(recursive=True)]
print(json.dumps([[p.pid, p.name()] for p in procs]))
sys.stdout.flush()
sys.stdin.readline()  # the test inspects the sockets, then lets Ray shut down
ray.shutdown()
"""


def test_local_ray_listens_on_loopback_only(tmp_path):
    """`start_ray` without --address (every local sweep): its GCS, raylet, workers and agents
    accept connections on loopback only (Ray 2.60 binds every interface unless told
    otherwise, although xscale passes 127.0.0.1 as the node address)."""
    import psutil

    env = {k: v for k, v in os.environ.items() if k != "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"}
    proc = subprocess.Popen(
        [sys.executable, "-c", LOCAL_RAY_PROBE],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
        cwd=tmp_path,
        start_new_session=True,
    )
    try:
        listed = json.loads(proc.stdout.readline() or "[]")
        assert listed, "the probe did not start Ray"
        procs = [psutil.Process(pid) for pid, _ in listed if psutil.pid_exists(pid)]
        names = {name for _, name in listed}
        assert {"gcs_server", "raylet"} <= names, names
        listening = [p for p in procs if _listens(p)]
        assert len(listening) >= 3, "expected the GCS, raylet and workers to listen"
        exposed = non_loopback_listeners(procs)
        assert not exposed, f"local Ray listens beyond loopback: {exposed}"
    finally:
        if proc.poll() is None:
            proc.stdin.write("\n")
            proc.stdin.flush()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def _listens(p) -> bool:
    import psutil

    try:
        return any(c.status == psutil.CONN_LISTEN for c in p.net_connections(kind="inet"))
    except psutil.Error:
        return False


LONE_RANK_PROBE = """
import json, torch, psutil
import torch.distributed as dist
from xscale.train.distributed import init_distributed, rank_world
init_distributed()
t = torch.ones(1)
dist.all_reduce(t)  # the group works (DeepSpeed's ZeRO calls collectives on a world of one)
conns = psutil.Process().net_connections(kind="inet")
listening = [[c.laddr.ip, c.laddr.port] for c in conns if c.status == "LISTEN"]
print(json.dumps([rank_world(), listening]))
"""


def test_a_lone_stage_process_group_listens_on_loopback_only():
    """Every single-worker stage is rank 0 of 1: its process group needs no TCP rendezvous
    (torch's TCPStore listens on every interface), so nothing it opens is reachable from
    outside."""
    import ipaddress

    env = {k: v for k, v in os.environ.items() if k not in ("MASTER_ADDR", "WORLD_SIZE", "RANK")}
    proc = subprocess.run(
        [sys.executable, "-c", LONE_RANK_PROBE],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (rank_world, listening) = json.loads(proc.stdout.strip().splitlines()[-1])
    assert rank_world == [0, 1]
    for ip, port in listening:
        assert ipaddress.ip_address(ip).is_loopback, f"listens on {ip}:{port}"
