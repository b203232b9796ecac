"""The sweep file schema: shipped sweeps load, malformed ones fail naming the file and key path."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from xscale.errors import XScaleError
from xscale.sweep.phases import PhaseConfig, PretrainConfig
from xscale.sweep.schema import Mixture, load_sweep
from xscale.sweep.spaces import SearchSpace
from xscale.tasks.registry import TASKS

REPO = Path(__file__).resolve().parents[1]

SWEEPS = Path(__file__).resolve().parents[1] / "sweeps"
SHIPPED = sorted(SWEEPS.glob("*.yaml"))

SCALING_INTERMEDIATE = [
    "none",
    "mnli",
    "anli",
    "qqp",
    "sst2",
    "squad",
    "hellaswag",
    "csqa",
    "cosmosqa",
    "ccg",
    "mix:all",
]
SCALING_TARGETS = ["xnli", "pawsx", "udpos", "panx", "xquad", "mlqa", "tydiqa", "bucc", "tatoeba"]

BASE = """\
name: t
output_dir: out
models: [tiny-xs, tiny-s]
intermediate_tasks: [none, mnli]
target_tasks: [xnli, pawsx]
seeds: [0]
"""


def write(tmp_path: Path, text: str, name: str = "sweep.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def _registered(names) -> bool:
    return all(n in TASKS for n in names)


# --------------------------------------------------------------------------- shipped sweeps


def test_sweeps_are_shipped():
    assert {p.name for p in SHIPPED} >= {"smoke.yaml", "scaling.yaml", "search_demo.yaml"}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_sweep_starts_with_its_command(path: Path):
    first = path.read_text().splitlines()[0]
    assert first == f"# xscale sweep sweeps/{path.name}"


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_sweep_loads(path: Path):
    cfg = load_sweep(path, check_registry=False)
    names = [n for n in cfg.intermediate_names if n != "none"]
    tasks = [t for e in cfg.intermediate_tasks if isinstance(e, Mixture) for t in e.mixture]
    if _registered([*names, *tasks, *cfg.target_tasks]) or path.name != "scaling.yaml":
        load_sweep(path)  # full check against the task registry
    for kind in ("pretrain", "intermediate", "target"):
        for point in cfg.grid_points(kind):
            sample = {k: s.values[0] for k, s in cfg.searched(kind).items() if not s.is_grid}
            assert isinstance(cfg.fixed_phase(kind, {**sample, **point}), PhaseConfig)


def test_smoke_is_small_and_offline():
    """The README's demo: offline data, two tiny sizes, 3 seeds (intervals in the report), and
    step budgets small enough for a few minutes on 2 cores."""
    cfg = load_sweep(SWEEPS / "smoke.yaml")
    assert cfg.models == ["tiny-xs", "tiny-s"]
    assert cfg.intermediate_names == ["none", "mnli"]
    assert cfg.target_tasks == ["xnli", "tatoeba"]
    assert cfg.seeds == [0, 1, 2] and cfg.max_concurrent_trials == 2
    assert cfg.data.root == "fixtures" and cfg.output_dir == str(Path.cwd() / "runs" / "smoke")
    pre = cfg.fixed_phase("pretrain")
    assert pre.alignment > 0 and pre.corpus == "text" and pre.epochs <= 3
    inter, target = cfg.fixed_phase("intermediate"), cfg.fixed_phase("target")
    assert inter.epochs * 800 / inter.batch_size <= 300  # the 800 MNLI fixture rows
    assert target.max_train_examples == 400  # a low-resource target, as STILTs studies it
    assert target.epochs * target.max_train_examples / target.batch_size <= 160
    for phase in (pre, inter, target):
        assert phase.max_length <= 64
    assert cfg.resolved_tracking_uri.startswith("sqlite:///")
    assert cfg.resolved_tracking_uri.endswith("runs/smoke/mlflow.db")
    # one noise set, random code-mixing and the attack with the same budget, on few examples
    sets = {(p if isinstance(p, str) else p.name): p for p in cfg.perturbations}
    assert sets["typo"] == "typo"
    cm, pg = sets["codemix"], sets["polygloss"]
    assert cm.family == "codemix" and pg.family == "polygloss" and cm.budget == pg.budget
    assert cm.languages == pg.languages and cm.max_examples == pg.max_examples <= 50
    assert pg.max_queries <= 32


def test_robustness_study():
    cfg = load_sweep(SWEEPS / "robustness.yaml")
    assert cfg.models == ["xlmr-base", "xlmr-large", "xlmr-xl", "xlmr-xxl"]
    assert cfg.intermediate_names == ["none", "squad", "squad-tt", "panx-en", "panx-all"]
    # no multilingual intermediate task is a target's own data (issue 26: the confound)
    assert not {e.task for e in cfg.multilingual.values()} & set(cfg.target_tasks)
    # each multilingual task beside its English version
    for e in cfg.multilingual.values():
        english = {"squad_tt": "squad"}.get(e.task, f"{e.task}-en")
        assert english in cfg.intermediate_names
    fams = [p if isinstance(p, str) else p.family for p in cfg.perturbations]
    assert fams == ["typo", "shuffle", "codemix", "polygloss", "bumblebee"]
    for p in cfg.perturbations[2:]:
        assert p.lexicon.muse == "/shared/muse/{src}-{tgt}.txt"


def test_scaling_axes():
    cfg = load_sweep(SWEEPS / "scaling.yaml", check_registry=False)
    assert cfg.models == ["xlmr-base", "xlmr-large", "xlmr-xl", "xlmr-xxl"]
    assert cfg.intermediate_names == SCALING_INTERMEDIATE
    assert cfg.target_tasks == SCALING_TARGETS
    assert set(cfg.mixtures["mix:all"].mixture) == set(SCALING_INTERMEDIATE[1:-1])
    assert cfg.seeds == [0, 1, 2] and cfg.data.root == "hub"
    assert cfg.search.method == "optuna" and cfg.search.num_samples == 4
    lr = cfg.searched("target")["learning_rate"]
    assert (lr.kind, lr.values) == ("loguniform", (5e-6, 3e-5))
    assert cfg.scheduler is not None and cfg.scheduler.type == "asha"
    assert cfg.max_concurrent_trials == 8


def test_xtreme_r_axes():
    """XTREME-R's ten targets over the scaling study's sizes, intermediate tasks and seeds;
    LAReQA, which has no hub copy, reads from a data folder."""
    cfg = load_sweep(SWEEPS / "xtreme_r.yaml")
    scaling = load_sweep(SWEEPS / "scaling.yaml", check_registry=False)
    assert cfg.models == scaling.models == ["xlmr-base", "xlmr-large", "xlmr-xl", "xlmr-xxl"]
    assert cfg.intermediate_names == SCALING_INTERMEDIATE and cfg.seeds == [0, 1, 2]
    assert cfg.target_tasks == [
        "xnli", "xcopa", "udpos", "panx", "xquad", "mlqa", "tydiqa", "mewslix", "lareqa", "tatoeba"
    ]  # fmt: skip
    from xscale.analyze.names import XTREME_R_CATEGORIES

    assert sorted(cfg.target_tasks) == sorted(t for ts in XTREME_R_CATEGORIES.values() for t in ts)
    assert cfg.data.root == "hub"
    assert cfg.data.root_for("lareqa") != "hub"  # XQuAD-R has no hub copy


def test_search_demo():
    cfg = load_sweep(SWEEPS / "search_demo.yaml")
    assert cfg.search.method == "optuna" and cfg.search.num_samples == 3
    assert cfg.searched_keys("target") == ["learning_rate"]
    assert cfg.searched_keys("intermediate") == []
    assert cfg.scheduler is not None


# --------------------------------------------------------------------------- malformed sweeps

# (id, yaml text, key path the message must name). BASE is valid; most cases append to it.
BAD = [
    ("unknown-top-level-key", BASE + "modles: [tiny-s]\n", "modles: unknown key"),
    (
        "unknown-nested-key",
        BASE + "target: {learnin_rate: 1.0e-4}\n",
        "target.learnin_rate: unknown key",
    ),
    ("unknown-search-key", BASE + "search: {metod: grid}\n", "search.metod: unknown key"),
    (
        "unknown-mixture-key",
        BASE.replace("[none, mnli]", "[none, {mixture: [mnli, sst2], nme: x}]"),
        "intermediate_tasks.1.nme: unknown key",
    ),
    ("wrong-type-seed", BASE.replace("seeds: [0]", "seeds: [0, one]"), "seeds.1:"),
    (
        "wrong-type-fixed-value",
        BASE + "target: {batch_size: many}\n",
        "target.batch_size:",
    ),
    ("wrong-type-models", BASE.replace("[tiny-xs, tiny-s]", "tiny-s"), "models:"),
    ("unknown-size", BASE.replace("[tiny-xs, tiny-s]", "[tiny-xs, tiny-q]"), "models.1: unknown"),
    (
        "unknown-task",
        BASE.replace("[xnli, pawsx]", "[xnli, pawz]"),
        "target_tasks.1: unknown task 'pawz'",
    ),
    (
        "wrong-role-target",
        BASE.replace("[xnli, pawsx]", "[mnli]"),
        "target_tasks.0: 'mnli' is not a target task",
    ),
    (
        "wrong-role-intermediate",
        BASE.replace("[none, mnli]", "[none, xquad]"),
        "intermediate_tasks.1: 'xquad' is not an intermediate task",
    ),
    (
        "wrong-role-in-mixture",
        BASE.replace("[none, mnli]", "[{mixture: [mnli, tatoeba]}]"),
        "intermediate_tasks.0.mixture.1: 'tatoeba' is not an intermediate task",
    ),
    ("empty-models", BASE.replace("[tiny-xs, tiny-s]", "[]"), "models:"),
    ("empty-targets", BASE.replace("[xnli, pawsx]", "[]"), "target_tasks:"),
    (
        "unknown-perturbation",
        BASE + "perturbations: [typo, typos]\n",
        "perturbations.1: unknown perturbation 'typos'",
    ),
    (
        "multilingual-task-bad-language",
        BASE.replace("[none, mnli]", "[none, {task: xnli, languages: [en, xx]}]"),
        "intermediate_tasks.1.languages.1: xnli has no language 'xx'",
    ),
    ("empty-seeds", BASE.replace("seeds: [0]", "seeds: []"), "seeds:"),
    ("duplicate-seed", BASE.replace("seeds: [0]", "seeds: [0, 1, 0]"), "seeds.2: duplicate"),
    (
        "duplicate-model",
        BASE.replace("[tiny-xs, tiny-s]", "[tiny-s, tiny-s]"),
        "models.1: duplicate",
    ),
    (
        "duplicate-intermediate",
        BASE.replace("[none, mnli]", "[none, mnli, {mixture: [mnli, sst2], name: mnli}]"),
        "intermediate_tasks.2",
    ),
    (
        "mixture-of-one",
        BASE.replace("[none, mnli]", "[none, {mixture: [mnli]}]"),
        "intermediate_tasks.1.mixture: a mixture needs at least 2",
    ),
    (
        "mixture-bad-cap",
        BASE.replace("[none, mnli]", "[{mixture: [mnli, sst2], cap: 0}]"),
        "intermediate_tasks.0.cap:",
    ),
    (
        "intermediate-not-a-name",
        BASE.replace("[none, mnli]", "[none, 3]"),
        "intermediate_tasks.1: expected a task name",
    ),
    (
        "bad-train-languages",
        BASE + "train_languages: [en, fr]\n",
        "train_languages.1:",
    ),
    (
        "choice-bad-option",
        BASE + "target: {batch_size: {choice: [16, x]}}\n",
        "target.batch_size.choice.1:",
    ),
    (
        "choice-option-violates-constraint",
        BASE + "intermediate: {warmup_ratio: {grid: [0.1, 1.5]}}\n",
        "intermediate.warmup_ratio.grid.1:",
    ),
    (
        "loguniform-zero-low",
        BASE
        + "target: {learning_rate: {loguniform: [0, 1]}}\n"
        + "search: {method: optuna, num_samples: 2}\n",
        "target.learning_rate.loguniform.0: loguniform needs low > 0",
    ),
    (
        "uniform-low-not-below-high",
        BASE
        + "target: {warmup_ratio: {uniform: [0.5, 0.1]}}\n"
        + "search: {method: optuna, num_samples: 2}\n",
        "target.warmup_ratio.uniform: low must be < high",
    ),
    (
        "uniform-on-int-field",
        BASE
        + "target: {batch_size: {uniform: [8, 32]}}\n"
        + "search: {method: optuna, num_samples: 2}\n",
        "target.batch_size.uniform: batch_size takes integers",
    ),
    (
        "randint-not-ints",
        BASE
        + "target: {batch_size: {randint: [8, 32.5]}}\n"
        + "search: {method: optuna, num_samples: 2}\n",
        "target.batch_size.randint.1: expected an integer",
    ),
    (
        "space-two-keys",
        BASE + "target: {batch_size: {choice: [8], grid: [16]}}\n",
        "target.batch_size: a search space is a mapping with exactly one",
    ),
    (
        "space-unknown-kind",
        BASE + "target: {batch_size: {normal: [8, 16]}}\n",
        "target.batch_size: a search space",
    ),
    (
        "space-in-pretrain",
        BASE + "pretrain: {epochs: {choice: [1, 2]}}\n",
        "pretrain.epochs: search spaces are only allowed in intermediate/target",
    ),
    (
        "loguniform-with-grid",
        BASE + "target: {learning_rate: {loguniform: [1.0e-5, 1.0e-4]}}\n",
        "target.learning_rate.loguniform: loguniform needs search.method optuna",
    ),
    (
        "grid-with-optuna",
        BASE
        + "target: {batch_size: {grid: [16, 32]}}\n"
        + "search: {method: optuna, num_samples: 2}\n",
        "target.batch_size.grid: grid is not allowed with search.method optuna; use choice",
    ),
    (
        "num-samples-with-grid",
        BASE + "search: {method: grid, num_samples: 4}\n",
        "search.num_samples: only used with search.method optuna",
    ),
    (
        "optuna-without-num-samples",
        BASE
        + "target: {learning_rate: {loguniform: [1.0e-5, 1.0e-4]}}\nsearch: {method: optuna}\n",
        "search.num_samples: required",
    ),
    ("bad-search-mode", BASE + "search: {mode: biggest}\n", "search.mode:"),
    ("bad-scheduler-field", BASE + "scheduler: {type: asha, max_t: 0}\n", "scheduler.max_t:"),
    ("bad-scheduler-type", BASE + "scheduler: {type: pbt}\n", "scheduler.type:"),
    (
        "scheduler-grace-above-max",
        BASE + "scheduler: {max_t: 2, grace_period: 3}\n",
        "scheduler.grace_period: must be <= scheduler.max_t",
    ),
    (
        "bad-resources-key",
        BASE + "resources: {tiny-q: {cpus: 1}}\n",
        "resources.tiny-q: unknown size",
    ),
    (
        "bad-resources-field",
        BASE + "resources: {tiny-s: {cpu: 1}}\n",
        "resources.tiny-s.cpu: unknown key",
    ),
    (
        "unknown-deepspeed-config",
        BASE + "resources: {tiny-s: {deepspeed_config: zero9.json}}\n",
        "resources.tiny-s.deepspeed_config: deepspeed config 'zero9.json' not found",
    ),
    (
        "eval-languages-key-not-target",
        BASE + "eval_languages: {xquad: [en]}\n",
        "eval_languages.xquad: 'xquad' is not in target_tasks",
    ),
    (
        "eval-languages-unknown-language",
        BASE + "eval_languages: {xnli: [en, xx]}\n",
        "eval_languages.xnli.1: xnli has no language 'xx'",
    ),
    (
        "zero-concurrent-trials",
        BASE + "max_concurrent_trials: 0\n",
        "max_concurrent_trials:",
    ),
    (
        "negative-concurrent-trials",
        BASE + "max_concurrent_trials: -2\n",
        "max_concurrent_trials:",
    ),
    ("bad-name", BASE.replace("name: t", "name: my sweep/1"), "name: String should match"),
    ("missing-output-dir", BASE.replace("output_dir: out\n", ""), "output_dir: Field required"),
    (
        "unknown-data-task",
        BASE + "data: {root: fixtures, tasks: {xnlii: /data}}\n",
        "data.tasks.xnlii: unknown task 'xnlii'",
    ),
    ("bad-data-key", BASE + "data: {roots: fixtures}\n", "data.roots: unknown key"),
    ("bad-failure", BASE + "failure: {max_failures: -1}\n", "failure.max_failures:"),
    (
        "duplicate-perturbation",
        BASE + "perturbations: [typo, typo]\n",
        "perturbations.1: duplicate",
    ),
    ("top-level-not-mapping", "- name: t\n- models: [tiny-s]\n", "expected a mapping"),
    ("invalid-yaml", BASE + "target: {batch_size: 32\n", "line "),
]


@pytest.mark.parametrize("text, expected", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_malformed_sweep_is_rejected(tmp_path, text, expected):
    path = write(tmp_path, text, "bad_sweep.yaml")
    with pytest.raises(XScaleError) as info:
        load_sweep(path)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(f"{path}:")
    assert expected in msg


def test_base_is_valid(tmp_path):
    cfg = load_sweep(write(tmp_path, BASE))
    assert cfg.intermediate_names == ["none", "mnli"]
    assert cfg.train_languages == ["en"] and cfg.search.method == "grid"
    assert cfg.failure.max_failures == 2 and cfg.scheduler is None


def test_invalid_yaml_names_the_line(tmp_path):
    path = write(tmp_path, BASE + "target: {batch_size: 32\n")
    with pytest.raises(XScaleError, match=r"sweep.yaml: line \d+"):
        load_sweep(path)


def test_missing_file(tmp_path):
    with pytest.raises(XScaleError, match="no such file"):
        load_sweep(tmp_path / "nope.yaml")


# --------------------------------------------------------------------------- spaces and phases


def test_mixture_names(tmp_path):
    text = BASE.replace(
        "[none, mnli]",
        "[none, {mixture: [sst2, mnli]}, {mixture: [mnli, anli], name: nli-mix, cap: 1000}]",
    )
    cfg = load_sweep(write(tmp_path, text))
    assert cfg.intermediate_names == ["none", "mix:mnli+sst2", "nli-mix"]
    assert cfg.mixtures["nli-mix"].cap == 1000


def test_grid_points_and_fixed_phase(tmp_path):
    text = BASE + textwrap.dedent("""\
        target:
          learning_rate: {grid: [1.0e-4, 1.0e-3]}
          batch_size: {choice: [16, 32, 64]}
          max_steps: 30
        intermediate:
          max_steps: 20
    """)
    cfg = load_sweep(write(tmp_path, text))
    assert cfg.searched_keys("target") == ["learning_rate", "batch_size"]
    assert cfg.fixed_values("target") == {"max_steps": 30}
    assert cfg.searched("target")["batch_size"].kind == "grid"  # choice is a grid under grid
    points = cfg.grid_points("target")
    assert len(points) == 6
    assert {"learning_rate": 1e-3, "batch_size": 64} in points
    assert cfg.grid_points("intermediate") == [{}]

    phase = cfg.fixed_phase("target", points[0])
    assert isinstance(phase, PhaseConfig)
    assert (phase.learning_rate, phase.batch_size, phase.max_steps) == (1e-4, 16, 30)
    assert phase.epochs == PhaseConfig().epochs  # unset fields keep their defaults
    assert cfg.fixed_phase("intermediate").max_steps == 20
    assert isinstance(cfg.fixed_phase("pretrain"), PretrainConfig)

    with pytest.raises(XScaleError, match="target: no sampled value for batch_size"):
        cfg.fixed_phase("target", {"learning_rate": 1e-4})
    with pytest.raises(XScaleError, match=r"target\.batch_size:"):
        cfg.fixed_phase("target", {"learning_rate": 1e-4, "batch_size": 0})
    with pytest.raises(XScaleError, match=r"target\.bogus: unknown key"):
        cfg.fixed_phase("target", {"learning_rate": 1e-4, "batch_size": 8, "bogus": 1})


def test_to_tune_types(tmp_path):
    from ray.tune.search.sample import Categorical, Float, Integer

    text = BASE + textwrap.dedent("""\
        target:
          learning_rate: {loguniform: [1.0e-5, 1.0e-3]}
          warmup_ratio: {uniform: [0.0, 0.2]}
          batch_size: {choice: [16, 32]}
          max_steps: {randint: [10, 20]}
        search: {method: optuna, num_samples: 3}
        scheduler: {type: asha, max_t: 4}
    """)
    cfg = load_sweep(write(tmp_path, text))
    assert cfg.grid_points("target") == [{}]
    space = cfg.tune_space("target")
    assert isinstance(space["learning_rate"], Float)
    assert isinstance(space["warmup_ratio"], Float)
    assert isinstance(space["batch_size"], Categorical)
    assert space["batch_size"].categories == [16, 32]
    assert isinstance(space["max_steps"], Integer)
    assert (space["max_steps"].lower, space["max_steps"].upper) == (10, 21)  # inclusive high
    for _ in range(20):
        lr = space["learning_rate"].sample()
        assert 1e-5 <= lr <= 1e-3
        steps = space["max_steps"].sample()
        assert 10 <= steps <= 20
        sample = {k: v.sample() for k, v in space.items()}
        assert isinstance(cfg.fixed_phase("target", sample), PhaseConfig)

    grid = SearchSpace("grid", (1, 2)).to_tune()
    assert grid == {"grid_search": [1, 2]}


def test_overrides_merge_deeply(tmp_path):
    text = BASE + "data: {root: fixtures, tasks: {xnli: /data}}\ntarget: {max_steps: 5}\n"
    path = write(tmp_path, text)
    cfg = load_sweep(
        path,
        overrides={"data": {"root": "hub"}, "target": {"batch_size": 8}, "output_dir": None},
    )
    assert cfg.data.root == "hub" and cfg.data.tasks == {"xnli": "/data"}
    assert cfg.fixed_values("target") == {"max_steps": 5, "batch_size": 8}
    assert cfg.output_dir == str(Path.cwd() / "out")  # the file's value (made absolute) is kept
    with pytest.raises(XScaleError, match=r"sweep.yaml: seeds.0:"):
        load_sweep(path, overrides={"seeds": ["x"]})


def test_resources_for(tmp_path):
    text = BASE + "resources: {tiny-s: {cpus: 2, deepspeed_config: zero2_bf16.json}}\n"
    cfg = load_sweep(write(tmp_path, text))
    res = cfg.resources_for("tiny-s")
    assert (res.cpus, res.gpus, res.workers, res.deepspeed_config) == (
        2,
        0,
        1,
        "zero2_bf16.json",
    )
    assert cfg.resources_for("tiny-xs").deepspeed_config == "cpu_zero2.json"


def test_tracking_uri_default_and_explicit(tmp_path):
    cfg = load_sweep(write(tmp_path, BASE.replace("output_dir: out", f"output_dir: {tmp_path}")))
    assert cfg.resolved_tracking_uri == f"sqlite:///{tmp_path}/mlflow.db"
    cfg = load_sweep(write(tmp_path, BASE + "tracking_uri: http://mlflow:5000\n"))
    assert cfg.resolved_tracking_uri == "http://mlflow:5000"


def test_the_search_metric_defaults_to_the_dev_score_stages_log():
    from xscale.sweep.schema import SearchConfig
    from xscale.tracking.names import DEV_SCORE

    assert SearchConfig().metric == DEV_SCORE


def test_plan_status_and_the_sweep_count_stages_by_one_rule(tmp_path):
    """A 3-point learning-rate grid on intermediate and target: 1 + 3 + 3 stages, and `plan`
    (summary, table, --json), `status` and the sweep's start line and progress total all say 7
    (plan said 7 in its summary and listed 5 rows, the sweep's count used a third rule)."""
    import json
    import subprocess
    import sys

    import yaml

    from xscale.graph.expand import expand
    from xscale.graph.manifest import write_manifest
    from xscale.graph.status import sweep_status
    from xscale.schedule.tune import plan_counts

    grid = {"grid": [1.0e-4, 3.0e-4, 1.0e-3]}
    raw = {
        "name": "grid",
        "output_dir": str(tmp_path / "out"),
        "models": ["tiny-xs"],
        "intermediate_tasks": ["mnli"],
        "target_tasks": ["xnli"],
        "data": {"root": "fixtures"},
        "intermediate": {"learning_rate": grid},
        "target": {"learning_rate": grid},
    }
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(raw))
    proc = subprocess.run(
        [sys.executable, "-m", "xscale.cli", "plan", str(path), "--json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert sum(c["stages"] for c in plan["counts"].values()) == len(plan["stages"]) == 7
    assert [r["kind"] for r in plan["stages"]].count("target") == 3
    cfg = load_sweep(path)
    graph = expand(cfg)
    assert plan_counts(cfg, graph)["total"] == 7
    (tmp_path / "out").mkdir()
    write_manifest(cfg, graph, str(path))
    assert sweep_status(tmp_path / "out")["stages_total"] == 7


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "sweeps").glob("*.yaml")))
def test_every_shipped_sweep_counts_its_stages_by_one_rule(tmp_path, name):
    from xscale.graph.expand import expand
    from xscale.graph.manifest import write_manifest
    from xscale.graph.plan import plan_rows
    from xscale.graph.status import sweep_status
    from xscale.schedule.tune import plan_counts

    cfg = load_sweep(REPO / "sweeps" / name, {"output_dir": str(tmp_path / "out")})
    graph = expand(cfg)
    total = plan_counts(cfg, graph)["total"]
    assert len(plan_rows(cfg, graph)) == total > 0
    write_manifest(cfg, graph, name)
    assert sweep_status(tmp_path / "out")["stages_total"] == total


def test_yaml_merge_keys_are_read_as_yaml_defines_them(tmp_path):
    # `<<: *anchor` merges a mapping; keys given beside it win (a merge is not a duplicate)
    path = write(
        tmp_path,
        BASE
        + "intermediate: &phase {learning_rate: 1.0e-4, epochs: 2}\n"
        + "target:\n  <<: *phase\n  epochs: 3\n",
    )
    cfg = load_sweep(path)
    assert cfg.fixed_values("target")["learning_rate"] == 1.0e-4
    assert cfg.fixed_values("target")["epochs"] == 3
    assert cfg.fixed_values("intermediate")["epochs"] == 2
