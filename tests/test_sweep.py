"""`xscale sweep` / `plan` / `status`: expansion into a stage graph, and whole sweeps on Ray Tune.

The expansion tests are pure (no Ray, no training). The end-to-end tests (marked slow; they still
run by default) run the real CLI in a subprocess on tiny sweeps over the shipped fixture data and
check what a user relies on: a shared intermediate stage trains once, relative paths resolve
against the working directory, MLflow holds exactly one run per stage under one parent run, and
nothing a sweep writes holds a secret from its environment. Faults (a killed driver, a crashed
stage, Ray that does not start) are in test_sweep_faults.py, search and multi-worker stages in
test_sweep_search.py, so that test files, the unit `--dist loadgroup` spreads over workers,
split the slow sweeps between them.
"""

from __future__ import annotations

import json
import re

import pytest
import yaml
from sweep_helpers import (
    REPO,
    SECRETS,
    SWEEP_TIMEOUT,
    attempts,
    check_one_run_per_stage,
    mlflow_runs,
    planned_stages,
    run_cli,
    stage_states,
    sweep_dict,
    write_sweep,
)

from xscale.graph.expand import expand
from xscale.sweep.schema import build_sweep, load_sweep


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


def test_pretrain_per_seed_gives_each_seed_its_own_checkpoint():
    """`pretrain.per_seed`: one pretrain group per size and seed, each seed's chain below its
    own; seed 0's is the shared default's (same key), and the option is no hyperparameter."""
    one, per = expand(big_sweep()), expand(big_sweep(pretrain={"per_seed": True}))
    pre = {
        (g.base["model"], g.base["seed"]): g for g in per.groups.values() if g.kind == "pretrain"
    }
    assert sorted(pre) == [("tiny-s", 0), ("tiny-s", 1), ("tiny-xs", 0), ("tiny-xs", 1)]
    shared = {g.base["model"]: g.key for g in one.groups.values() if g.kind == "pretrain"}
    assert {m: pre[(m, 0)].key for m in shared} == shared
    for g in per.groups.values():
        if g.kind == "pretrain":
            assert "per_seed" not in g.stage({}, None).canonical()  # not in the stage key
            continue
        root = g
        while root.parent:
            root = per.groups[root.parent]
        assert root.base["seed"] == g.base["seed"]  # every chain starts at its seed's pretrain
    assert per.count("target") == one.count("target")
    assert per.count("intermediate") == one.count("intermediate")


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


@pytest.mark.slow
def test_a_damaged_stage_marker_or_selection_runs_again(shared_sweep, tmp_path):
    """Issue 27, items 9-10: a finished sweep's folder with a truncated target export, a marker
    that is not one xscale wrote and a garbage selection record: `status` names them in one line
    each, and the same `xscale sweep` re-runs exactly those stages and re-chooses the group."""
    import shutil

    from xscale.graph.stage import MARKER, check_outputs

    path, out = shared_sweep
    copy = tmp_path / "out"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("ray_results", "ray_train"))
    planned = planned_stages(path)
    xnli, pawsx = sorted(
        (k for k, kind in planned.items() if kind == "target"),
        key=lambda k: json.loads((copy / "stages" / k / "spec.json").read_text())["target_task"],
        reverse=True,
    )
    weights = copy / "stages" / xnli / "model" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    (copy / "stages" / pawsx / MARKER).write_text('{"files": []}')
    (mnli,) = [k for k, kind in planned.items() if kind == "intermediate"]
    (selection,) = [
        f for f in (copy / "groups").glob("*.json") if json.loads(f.read_text())["selected"] == mnli
    ]
    selection.write_text("{garbage")
    before = {k: attempts(copy / "stages" / k) for k in planned}

    status = run_cli("status", str(copy), timeout=120)
    assert status.returncode == 0 and "Traceback" not in status.stderr, status.stderr[-3000:]
    assert "damaged 2" in status.stdout, status.stdout
    assert "model/model.safetensors has 1000 bytes" in status.stdout, status.stdout
    assert "COMPLETE lists no outputs" in status.stdout, status.stdout

    again = run_cli("sweep", str(path), "--output-dir", str(copy), timeout=SWEEP_TIMEOUT)
    assert again.returncode == 0, again.stderr[-4000:]
    assert "Traceback" not in again.stderr, again.stderr[-4000:]
    assert "model/model.safetensors has 1000 bytes, " in again.stderr, again.stderr[-3000:]
    assert f"{selection}: unreadable" in again.stderr, again.stderr[-3000:]
    after = {k: attempts(copy / "stages" / k) for k in planned}
    assert after == {k: before[k] + (k in (xnli, pawsx)) for k in planned}, (before, after)
    for k in planned:
        assert check_outputs(copy / "stages" / k, full=True) is None, k
    assert json.loads(selection.read_text())["selected"] == mnli
    status = json.loads(run_cli("status", str(copy), "--json", timeout=120).stdout)
    assert status["complete"] and {r["state"] for r in status["stages"]} == {"done"}
