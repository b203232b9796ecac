"""The sweep's scheduling without training: the searcher that serves every ready group of the
graph in one Tune run (schedule/searcher.py), ASHA kept per group (schedule/asha.py), the
resource model (schedule/packing.py), and one small sweep through the real Ray path with every
stage replaced by a sleep (schedule/simulate.py)."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from pathlib import Path

import pytest

from xscale.graph.expand import expand
from xscale.graph.selection import load_selection
from xscale.graph.stage import mark_complete, stage_dir, stage_label
from xscale.schedule.packing import Capacity, demand, free_after, place, ray_strategy
from xscale.schedule.searcher import FINISHED, Search, SweepSearcher, TrialMeta
from xscale.schedule.tune import reuse_actors
from xscale.sweep.schema import StageResources, build_sweep

pytest.importorskip("optuna")
pytest.importorskip("ray")


def real_sizes_sweep(out: Path, **over) -> dict:
    """xlmr-base (1 GPU) and xlmr-xl (4 workers x 1 GPU): {none, mnli} x {xnli, pawsx}, one
    seed, the target's learning rate searched by Optuna (3 samples): 2 fixed intermediate groups
    and 8 Optuna target groups, 4 of them ready at once (`none` has no parent)."""
    data = {
        "name": "t",
        "output_dir": str(out),
        "max_concurrent_trials": 8,
        "models": ["xlmr-base", "xlmr-xl"],
        "intermediate_tasks": ["none", "mnli"],
        "target_tasks": ["xnli", "pawsx"],
        "seeds": [0],
        "data": {"root": "hub"},
        "intermediate": {"learning_rate": 1.0e-5, "epochs": 1},
        "target": {"learning_rate": {"loguniform": [1.0e-5, 1.0e-4]}, "epochs": 1},
        "search": {"method": "optuna", "num_samples": 3, "seed": 7},
        "scheduler": {"max_t": 4, "grace_period": 1},
    }
    data.update(over)
    return data


@pytest.fixture
def sweep(tmp_path):
    cfg = build_sweep(real_sizes_sweep(tmp_path / "out"), "t.yaml")
    return cfg, expand(cfg)


def score_of(spec_key: str) -> float:
    """A made-up dev score per stage (distinct, so the best is unambiguous)."""
    return int(spec_key[-6:], 16) % 1000 / 10


def finish(out: Path, config: dict, score: float | None = None) -> None:
    """Write the stage of a trial config as complete, with a dev score."""
    meta, _ = TrialMeta.split(config)
    where = out / "stages" / meta.stage
    where.mkdir(parents=True, exist_ok=True)
    dev = score_of(meta.stage) if score is None else score
    mark_complete(where, {"metrics": {"dev.score": dev}})


IDS = itertools.count()


def drain(core: SweepSearcher) -> dict[str, dict]:
    """Ask for trials until the searcher has none to give now: {trial id: config}."""
    got = {}
    while True:
        trial_id = f"t{next(IDS)}"
        config = core.suggest(trial_id)
        if config is None or config == FINISHED:
            return got
        got[trial_id] = config


def run_to_the_end(core: SweepSearcher, out: Path, live: dict[str, dict]) -> None:
    """End every live trial with its stage complete, taking what each end releases."""
    while live:
        trial_id, config = live.popitem()
        finish(out, config)
        core.on_trial_complete(trial_id, {"dev.score": 0.0})
        live.update(drain(core))


def group_of(graph, config: dict) -> str:
    meta, _ = TrialMeta.split(config)
    return meta.group or next(g.key for g in graph.groups.values() if g.label == meta.label)


def test_finished_is_tunes_marker():
    from ray.tune.search import Searcher

    assert FINISHED == Searcher.FINISHED


def test_every_ready_group_is_served_at_once_and_children_follow_selection(sweep):
    cfg, graph = sweep
    out = cfg.output_path
    selected, failed = {}, set()
    core = SweepSearcher(graph, out, selected, failed, Search.of(cfg))
    first = drain(core)
    # the 2 intermediate stages and 3 trials of each of the 4 `none` Optuna groups, before any
    # stage has ended: groups are not run one after another
    ready_optuna = [g for g in graph.groups.values() if g.optuna and g.parent is None]
    per_group = Counter(TrialMeta.split(c)[0].group for c in first.values())
    assert per_group.pop(None) == 2
    assert per_group == {g.key: 3 for g in ready_optuna}
    # longest expected path to the end first: an intermediate (its time + its target's) before
    # the `none` targets of its size
    ranks = [core.rank[group_of(graph, c)] for c in first.values()]
    assert ranks == sorted(ranks, reverse=True) and len(set(ranks)) > 2
    labels = [TrialMeta.split(c)[0].label for c in first.values()]
    assert labels[0] == "intermediate mnli xlmr-xl seed0"
    assert labels.index("intermediate mnli xlmr-base seed0") < min(
        i for i, lab in enumerate(labels) if "xlmr-base" in lab and lab.startswith("target")
    )
    assert core.suggest("t-more") is None  # nothing left to hand out until something ends
    # an Optuna trial carries its sample, its stage spec and ASHA's rounds
    one = next(c for c in first.values() if TrialMeta.split(c)[0].group)
    meta, sample = TrialMeta.split(one)
    assert set(sample) == {"learning_rate"}
    assert meta.spec["hparams"]["learning_rate"] == sample["learning_rate"]
    assert meta.rounds == 4

    # the mnli intermediate of xlmr-base ends: its two Optuna target groups are ready at once
    inter = next(t for t, c in first.items() if "mnli xlmr-base" in TrialMeta.split(c)[0].label)
    finish(out, first.pop(inter))
    core.on_trial_complete(inter, {"dev.score": 1.0})
    inter_group = next(g.key for g in graph.groups.values() if "mnli xlmr-base" in g.label)
    assert inter_group in selected
    second = drain(core)
    children = {g.key for g in graph.children(inter_group)}
    assert Counter(TrialMeta.split(c)[0].group for c in second.values()) == {k: 3 for k in children}
    for c in second.values():  # they start from the selected intermediate stage
        assert TrialMeta.split(c)[0].spec["parent"] == selected[inter_group]

    # everything else ends; each group selects its best complete stage
    run_to_the_end(core, out, {**first, **second})
    assert core.suggest("t-last") == FINISHED
    assert not failed and set(selected) == set(graph.groups)
    assert load_selection(out) == selected
    for g in graph.groups.values():
        if not g.optuna:
            continue
        record = json.loads((out / "groups" / f"{g.key}.json").read_text())
        scores = {c["stage"]: c["dev.score"] for c in record["candidates"]}
        assert len(scores) == 3
        assert scores[record["selected"]] == max(scores.values())


def test_each_optuna_group_samples_as_its_own_seeded_search(sweep):
    """A group's samples are those of an OptunaSearch with the sweep's seed on its space, as in
    the Tune run each group had to itself before; groups do not share a study."""
    from ray.tune.search.optuna import OptunaSearch

    cfg, graph = sweep
    core = SweepSearcher(graph, cfg.output_path, {}, set(), Search.of(cfg))
    got = drain(core)
    by_group: dict[str, list[float]] = {}
    for c in got.values():
        meta, sample = TrialMeta.split(c)
        if meta.group:
            by_group.setdefault(meta.group, []).append(sample["learning_rate"])
    alone = OptunaSearch(
        space=OptunaSearch.convert_search_space(cfg.tune_space("target")),
        metric="dev.score",
        mode="max",
        seed=7,
    )
    expected = [alone.suggest(f"x{i}")["learning_rate"] for i in range(3)]
    assert len(by_group) == 4
    for samples in by_group.values():
        assert samples == expected
        assert all(1.0e-5 <= lr <= 1.0e-4 for lr in samples)


def test_stopped_trials_are_not_selected_and_a_group_with_none_complete_fails(sweep):
    cfg, graph = sweep
    out = cfg.output_path
    selected, failed = {}, set()
    core = SweepSearcher(graph, out, selected, failed, Search.of(cfg))
    got = drain(core)
    (inter,) = [t for t, c in got.items() if "mnli xlmr-base" in TrialMeta.split(c)[0].label]
    core.on_trial_complete(inter, None, error=True)  # failed after Tune's retries
    key = group_of(graph, got[inter])
    assert key in failed and key not in selected
    assert drain(core) == {}  # its children are never released

    (gkey, trials) = next(
        (k, [t for t, c in got.items() if TrialMeta.split(c)[0].group == k])
        for k in {TrialMeta.split(c)[0].group for c in got.values()} - {None}
    )
    stopped, done1, done2 = trials
    finish(out, got[done1], 50.0)
    finish(out, got[done2], 40.0)
    for t in trials:  # ASHA stopped `stopped` part-way: its folder is not complete
        core.on_trial_complete(t, {"dev.score": 99.0 if t == stopped else 1.0})
    record = json.loads((out / "groups" / f"{gkey}.json").read_text())
    assert record["selected"] == TrialMeta.split(got[done1])[0].stage
    assert len(record["candidates"]) == 2


def test_a_rerun_skips_complete_stages_and_searched_groups(sweep):
    cfg, graph = sweep
    out = cfg.output_path
    first = drain(SweepSearcher(graph, out, {}, set(), Search.of(cfg)))
    optuna_keys = sorted({TrialMeta.split(c)[0].group for c in first.values()} - {None})
    whole, part, chosen = optuna_keys[:3]
    # `whole`: every sampled stage complete, but the driver died before its selection record;
    # `part`: one of three complete; `chosen`: selected (record written) in the first run
    for c in first.values():
        if TrialMeta.split(c)[0].group == whole:
            finish(out, c)
    finish(out, next(c for c in first.values() if TrialMeta.split(c)[0].group == part))
    inter = next(c for c in first.values() if TrialMeta.split(c)[0].group is None)
    finish(out, inter)
    from xscale.graph.selection import select_best

    g_chosen = graph.groups[chosen]
    specs = [
        g_chosen.stage(TrialMeta.split(c)[1], None)
        for c in first.values()
        if TrialMeta.split(c)[0].group == chosen
    ]
    stage_dir(out, specs[0]).mkdir(parents=True)
    mark_complete(stage_dir(out, specs[0]), {"metrics": {"dev.score": 1.0}})
    assert select_best(out, g_chosen, specs, "max") == specs[0].key

    selected, failed = load_selection(out), set()
    core = SweepSearcher(graph, out, selected, failed, Search.of(cfg))
    again = drain(core)
    per_group = Counter(TrialMeta.split(c)[0].group for c in again.values())
    assert whole not in per_group and whole in selected  # settled without a trial
    assert chosen not in per_group  # never searched again
    assert per_group[part] == 2  # only its two incomplete samples run
    assert core.told == 4  # whole's 3 + part's 1 were told to their studies from their folders
    inter_key = TrialMeta.split(inter)[0].stage
    assert all(TrialMeta.split(c)[0].stage != inter_key for c in again.values())


def test_packing_first_fit_and_waiting():
    xl = demand(StageResources(4, 1, 4))
    base = demand(StageResources(4, 1, 1))
    worker = (("CPU", 4.0), ("GPU", 1.0))
    assert xl == (((("CPU", 0.01),),), (worker,) * 4)  # the trial anywhere, the workers together
    assert base == ((worker,),)
    # packed (the default): the four workers need one node with 4 GPUs free
    assert place([{"CPU": 9, "GPU": 2}, {"CPU": 9, "GPU": 2}], xl) is None
    assert place([{"CPU": 17, "GPU": 4}], xl) is not None
    nodes = [{"CPU": 32, "GPU": 6}]
    free, waiting = free_after(nodes, [xl, xl, base])
    assert waiting == {xl} and free[0]["GPU"] == 1  # the second xl waits; base fits beside
    assert place(free, base) is not None and place(free, xl) is None


def test_spread_stages_may_cross_nodes_packed_ones_may_not():
    spread = demand(StageResources(4, 1, 4, placement="spread"))
    assert spread == ((((("CPU", 0.01),),),) + (((("CPU", 4.0), ("GPU", 1.0)),),) * 4)
    two = [{"CPU": 9, "GPU": 2}, {"CPU": 9, "GPU": 2}]
    assert place(two, spread) is not None  # 2 + 2 workers on two nodes
    assert place([{"CPU": 9, "GPU": 2}, {"CPU": 9, "GPU": 1}], spread) is None
    assert ray_strategy(StageResources(4, 1, 4)) == "STRICT_PACK"
    assert ray_strategy(StageResources(4, 1, 4, placement="spread")) == "SPREAD"


def test_actor_reuse_is_off_when_a_size_has_several_workers():
    one = StageResources(1, 0, 1)
    assert reuse_actors({"tiny-xs": one, "tiny-s": one})
    assert not reuse_actors({"tiny-xs": one, "tiny-s": StageResources(1, 0, 2)})


def test_hand_outs_fit_the_cluster_and_keep_one_stage_waiting(tmp_path):
    """6 GPUs, the Optuna trials of xl (4 GPUs each) and base (1 GPU): the longest stage first,
    then 1-GPU stages fill what is left; when nothing fits, the next stage goes out to wait for
    the next free GPUs, and no more until it has them."""
    cfg = build_sweep(
        real_sizes_sweep(tmp_path / "out", intermediate_tasks=["none"], target_tasks=["xnli"]),
        "t.yaml",
    )
    graph = expand(cfg)
    nodes = [{"CPU": 64.0, "GPU": 6.0}]
    core = SweepSearcher(graph, cfg.output_path, {}, set(), Search.of(cfg), Capacity(lambda: nodes))
    got = drain(core)
    model = {t: TrialMeta.split(c)[0].spec["model"] for t, c in got.items()}
    assert list(model.values()) == ["xlmr-xl", "xlmr-base", "xlmr-base", "xlmr-xl"]
    assert core.suggest("again") is None
    # the running xl ends: the waiting one takes its GPUs, and the third xl waits in turn
    first_xl = next(iter(got))
    finish(cfg.output_path, got[first_xl])
    core.on_trial_complete(first_xl, {})
    assert [TrialMeta.split(c)[0].spec["model"] for c in drain(core).values()] == ["xlmr-xl"]
    # without a capacity every ready stage goes out at once
    without = SweepSearcher(graph, tmp_path / "o2", {}, set(), Search.of(cfg))
    assert Counter(TrialMeta.split(c)[0].spec["model"] for c in drain(without).values()) == {
        "xlmr-xl": 3,
        "xlmr-base": 3,
    }


def fake_trial(trial_id: str, group: str | None):
    from types import SimpleNamespace

    return SimpleNamespace(trial_id=trial_id, config=TrialMeta(group=group).config())


def test_asha_is_kept_per_group():
    """A group's trials are compared only with each other: a weak trial of group B is not stopped
    by group A's strong ones (a single ASHAScheduler over both stops it), while within A the
    usual cutoff applies."""
    from ray.tune.schedulers import ASHAScheduler, TrialScheduler

    from xscale.schedule.asha import grouped_asha

    def make():
        return ASHAScheduler(
            time_attr="training_iteration",
            metric="dev.score",
            mode="max",
            max_t=4,
            grace_period=1,
            reduction_factor=2,
        )

    grouped, shared = grouped_asha(make), make()
    trials = [fake_trial(t, g) for t, g in [("a1", "A"), ("a2", "A"), ("a3", "A"), ("b1", "B")]]
    decisions = {}
    for sched, name in ((grouped, "grouped"), (shared, "shared")):
        for t in trials:
            sched.on_trial_add(None, t)
        for t, score in zip(trials, [80.0, 82.0, 60.0, 30.0]):
            result = {"training_iteration": 1, "dev.score": score}
            decisions[name, t.trial_id] = sched.on_trial_result(None, t, result)
    assert decisions["grouped", "a3"] == TrialScheduler.STOP  # below A's median
    assert decisions["grouped", "b1"] == TrialScheduler.CONTINUE  # alone in B
    assert decisions["shared", "b1"] == TrialScheduler.STOP
    assert set(grouped.groups) == {"A", "B"}
    fixed = fake_trial("f1", None)  # a fixed stage: never stopped
    grouped.on_trial_add(None, fixed)
    low = {"training_iteration": 1, "dev.score": 0.0}
    assert grouped.on_trial_result(None, fixed, low) == TrialScheduler.CONTINUE


def test_a_simulated_sweep_runs_optuna_groups_side_by_side(tmp_path, monkeypatch):
    """Through the real Ray path (Tune, the searcher, grouped ASHA, trial processes) with every
    stage a 2-second sleep (schedule/simulate.py): tiny-xs pretrain -> {none, mnli} ->
    {xnli, pawsx}, 2 Optuna trials per target group, 4 trial slots. Trials of different Optuna
    groups run at the same time, and every group is selected."""
    import ray

    from xscale.schedule import tune as schedule
    from xscale.schedule.simulate import SIM_FILE, SIMULATE_ENV
    from xscale.tracking.client import TrackingInfo

    phase = {"learning_rate": 5.0e-4, "batch_size": 16, "max_steps": 6, "max_length": 48}
    data = {
        "name": "sim",
        "output_dir": str(tmp_path / "out"),
        "max_concurrent_trials": 4,
        "models": ["tiny-xs"],
        "intermediate_tasks": ["none", "mnli"],
        "target_tasks": ["xnli", "pawsx"],
        "seeds": [0],
        "data": {"root": "fixtures"},
        "pretrain": {"batch_size": 16, "max_steps": 6, "max_length": 48},
        "intermediate": phase,
        "target": {**phase, "learning_rate": {"loguniform": [1.0e-4, 1.0e-3]}},
        "search": {"method": "optuna", "num_samples": 2},
        "scheduler": {"max_t": 2, "grace_period": 1},
        "failure": {"max_failures": 0},
    }
    cfg = build_sweep(data, "sim.yaml")
    graph = expand(cfg)
    longest = max(g.cost for g in graph.groups.values())
    monkeypatch.setenv(SIMULATE_ENV, json.dumps({"seconds_per_cost": 2.0 / longest}))
    schedule._loopback_only(ray)
    ray.init(
        address="local",
        num_cpus=4,  # logical: the sleeps use none
        include_dashboard=False,
        log_to_driver=False,
        logging_level="ERROR",
        _node_ip_address="127.0.0.1",
    )
    try:
        tracking = TrackingInfo(uri=f"sqlite:///{tmp_path}/unused.db", experiment="sim")
        progress = schedule.sweep_progress(cfg, graph)
        progress.verbosity = 0
        counts = schedule.run_sweep(cfg, graph, tracking, progress=progress)
    finally:
        ray.shutdown()
    out = cfg.output_path
    assert counts["failed"] == 0 and counts["blocked"] == 0
    assert set(load_selection(out)) == set(graph.groups)
    # every Optuna group ran its 2 trials; each trial's busy interval from its sim.json
    group_by_label = {g.label: g.key for g in graph.groups.values()}
    spans: dict[str, list[tuple[float, float]]] = {}
    for d in (out / "stages").iterdir():
        group = group_by_label[stage_label(json.loads((d / "spec.json").read_text()))]
        sim = json.loads((d / SIM_FILE).read_text())
        spans.setdefault(group, []).append((sim["acquired"], sim["rounds"][-1]))
    optuna = [k for k in spans if graph.groups[k].optuna]
    assert len(optuna) == 4 and all(len(spans[k]) == 2 for k in optuna), spans
    # (that groups are handed out side by side is the searcher's decision, asserted without
    # clocks in test_ready_optuna_groups_are_handed_out_together: on a loaded machine the
    # sleeps of two groups need not overlap, and once did not)
    # the mnli targets started only once their intermediate had ended (and was selected)
    (inter,) = [g.key for g in graph.groups.values() if g.kind == "intermediate"]
    (inter_span,) = spans[inter]
    for k in optuna:
        if graph.groups[k].parent == inter:
            assert min(start for start, _ in spans[k]) >= inter_span[1]


def test_ready_optuna_groups_are_handed_out_together(tmp_path):
    """While trial slots are free the searcher hands out the trials of every ready Optuna
    group, not one group's and then the next's (the decision the Ray test above relies on)."""
    data = {
        "name": "sim",
        "output_dir": str(tmp_path / "out"),
        "max_concurrent_trials": 4,
        "models": ["tiny-xs"],
        "intermediate_tasks": ["none"],
        "target_tasks": ["xnli", "pawsx"],
        "data": {"root": "fixtures"},
        "target": {"learning_rate": {"loguniform": [1.0e-4, 1.0e-3]}, "max_steps": 6},
        "search": {"method": "optuna", "num_samples": 2},
    }
    cfg = build_sweep(data, "sim.yaml")
    graph = expand(cfg)
    core = SweepSearcher(graph, cfg.output_path, {}, set(), Search.of(cfg))
    (pre,) = drain(core).items()  # the pretrain stage first: everything else waits on it
    finish(cfg.output_path, pre[1])
    core.on_trial_complete(pre[0], {})
    got = drain(core)
    groups = {TrialMeta.split(c)[0].group for c in got.values()}
    assert len(got) == 4 and len(groups) == 2  # both target groups' two trials, at once


def test_the_simulation_hook_is_off_unless_its_variable_is_set(monkeypatch):
    from xscale.errors import XScaleError
    from xscale.schedule.simulate import SIMULATE_ENV, duration, from_env

    monkeypatch.delenv(SIMULATE_ENV, raising=False)
    assert from_env() is None  # a real sweep: trials run their stages
    monkeypatch.setenv(SIMULATE_ENV, '{"seconds_per_cost": 0.5}')
    assert from_env() == {"seconds_per_cost": 0.5}
    monkeypatch.setenv(SIMULATE_ENV, "yes")
    with pytest.raises(XScaleError, match=SIMULATE_ENV):
        from_env()
    # a stage's sleep: cost over its devices (8 workers x 1 GPU), times the scale
    assert duration(80.0, StageResources(8, 1, 8), 0.5) == 5.0
    assert duration(80.0, StageResources(2, 0, 1), 0.5) == 20.0


def test_a_settled_groups_unfinished_stages_lose_their_checkpoints(tmp_path):
    """ASHA's stopped trials (and failed ones) of a group that has chosen its stage are never
    resumed: their DeepSpeed checkpoints (14 bytes a parameter: 150 GB for XXL) are removed
    when the group settles; a group with no complete stage keeps them for the next run."""
    over = {"models": ["xlmr-base"], "intermediate_tasks": ["none"], "target_tasks": ["xnli"]}
    cfg = build_sweep(real_sizes_sweep(tmp_path / "out", **over), "t.yaml")
    core = SweepSearcher(expand(cfg), cfg.output_path, {}, set(), Search.of(cfg))
    got = drain(core)
    assert len(got) == 3
    folders = {t: cfg.output_path / "stages" / TrialMeta.split(c)[0].stage for t, c in got.items()}
    for folder in folders.values():
        (folder / "ckpt" / "step10").mkdir(parents=True)
    done, *stopped = got
    finish(cfg.output_path, got[done])
    core.on_trial_complete(stopped[0], {})  # stopped early: no COMPLETE; the group is open
    assert (folders[stopped[0]] / "ckpt").is_dir()
    core.on_trial_complete(done, {})
    core.on_trial_complete(stopped[1], {})  # the group settles on `done`
    assert all(not list(folders[t].glob("ckpt*")) for t in stopped)

    # a group whose stages all failed keeps their checkpoints: the next run resumes them
    cfg2 = build_sweep(real_sizes_sweep(tmp_path / "out2", **over), "t.yaml")
    core2 = SweepSearcher(expand(cfg2), cfg2.output_path, {}, set(), Search.of(cfg2))
    got2 = drain(core2)
    for t, c in got2.items():
        (cfg2.output_path / "stages" / TrialMeta.split(c)[0].stage / "ckpt").mkdir(parents=True)
        core2.on_trial_complete(t, {}, error=True)
    assert len(list(cfg2.output_path.glob("stages/*/ckpt"))) == 3
