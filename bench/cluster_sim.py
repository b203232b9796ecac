"""A simulated cluster: a sweep's whole stage graph through the real scheduler, every stage a sleep.

    .venv/bin/python bench/cluster_sim.py                            # scaling.yaml, Ray, ~15 min
    .venv/bin/python bench/cluster_sim.py --engine model --scheduler both    # seconds, no Ray

`--engine ray` (the measurement): Ray starts locally with fake resources, by default
cluster.yaml at full size (4 x g5.xlarge: 4 CPUs, 1 GPU; 2 x p4d.24xlarge: 96 CPUs, 8 GPUs; the
head's 8 CPUs: 216 CPUs, 20 GPUs, on one logical node). The graph runs through `run_sweep` (one
Tune run, the sweep searcher, ASHA per group, Tune's trial processes) with
`XSCALE_BENCH_SIMULATE` set, so each trial holds its stage's resources and sleeps
cost / devices x s instead of running it (schedule/simulate.py). `s` is chosen so that the
planned work (every stage, every Optuna sample to its end) over the cluster's devices takes
`--ideal-s` seconds.

`--engine model`: the same searcher and per-group ASHA objects driven in virtual time by a small
event loop standing in for Tune and Ray (`Model`): no per-trial overhead, so it shows what the
scheduling policy itself gives, on the full graph, in seconds. It takes the cluster's nodes as
they are (`--nodes 4x1:4,2x8:96,1x0:8`: cluster.yaml's 4 g5.xlarge, 2 p4d.24xlarge and the
head, each stage placed whole on nodes that have room, so fragmentation shows) and, with
`--stage-time plan`, each stage's time from the cluster plan on `--gpu` (graph/plan.py's
`group_seconds`: loading the weights, training at `--mfu` of the peak, evaluating, writing
checkpoints) instead of cost / devices: makespan and ideal in real cluster seconds.

`--scheduler old` rebuilds the scheduling before issue 12 from today's pieces (rounds of one
Tune run of the ready fixed stages, then one Tune run per ready Optuna group, one after another;
no resource model) for a side-by-side figure; `both` runs old and new.

Per scheduler, one JSON object:

    makespan_s          run_sweep called -> returned (driver wall time; virtual in the model)
    work_device_s       sum over trials of devices x seconds of stage work (a trial ASHA stopped:
                        the rounds it finished); devices = GPUs (CPUs for a CPU-only size)
    critical_path_s     the longest chain of stage times in the graph (each group's stage at its
                        full length: a group is selected when its last trial ends)
    ideal_s             max(work_device_s / the cluster's devices, critical_path_s)
    ratio               makespan_s / ideal_s
    utilisation         busy devices / the cluster's devices, in 20 equal slices of the makespan
    trials, stopped     trials run, and how many ASHA stopped part-way

Nothing here asserts a number: it reports.
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from xscale.graph.expand import Graph, expand  # noqa: E402
from xscale.graph.selection import load_selection  # noqa: E402
from xscale.graph.stage import mark_complete  # noqa: E402
from xscale.schedule import tune as schedule  # noqa: E402
from xscale.schedule.packing import Capacity, assign, demand, units  # noqa: E402
from xscale.schedule.searcher import (  # noqa: E402
    FINISHED,
    Search,
    SweepSearcher,
    TrialMeta,
    path_to_end,
)
from xscale.schedule.simulate import SIM_FILE, SIMULATE_ENV, dev_score, duration  # noqa: E402
from xscale.sweep.schema import SweepConfig, load_sweep  # noqa: E402
from xscale.tracking.client import TrackingInfo  # noqa: E402

Span = tuple[float, float, float, bool, str]  # start, end, devices, complete, size


def planned_cost(cfg: SweepConfig, graph: Graph) -> float:
    """Device-time of the whole graph in cost units: every stage, every Optuna sample to the end
    (a stage's time x devices = its cost, by simulate.duration)."""
    n = cfg.search.num_samples or 1
    return sum(g.cost * (n if g.optuna else len(g.samples)) for g in graph.groups.values())


def critical_path(graph: Graph) -> float:
    """In cost / devices units (x s for seconds)."""
    children: dict[str, list] = {}
    for g in graph.groups.values():
        if g.parent is not None:
            children.setdefault(g.parent, []).append(g)
    rank = path_to_end(graph, children)
    return max(rank[g.key] for g in graph.groups.values() if g.parent is None)


def parse_nodes(text: str) -> list[dict]:
    """ "4x1:4,2x8:96" -> 4 nodes of 1 GPU and 4 CPUs, 2 of 8 GPUs and 96 CPUs."""
    nodes = []
    for part in text.split(","):
        count, _, shape = part.partition("x")
        gpus, _, cpus = shape.partition(":")
        nodes += [{"CPU": float(cpus), "GPU": float(gpus)} for _ in range(int(count))]
    return nodes


def _group_index(graph: Graph) -> dict[tuple, str]:
    """A stage's group by the fields a group fixes (kind, size, task, chain, seed, languages)."""
    fields = ("kind", "model", "task", "intermediate_task", "train_languages", "seed", "subset")
    return {tuple(g.base.get(f) for f in fields): g.key for g in graph.groups.values()}, fields


def plan_seconds(graph: Graph, per_group: dict[str, float]):
    """meta -> the seconds of its stage's group (`--stage-time plan`)."""
    index, fields = _group_index(graph)

    def seconds(meta) -> float:
        key = tuple(meta.spec.get(f) for f in fields)
        return per_group[index[key]]

    return seconds


def plan_critical_path(graph: Graph, per_group: dict[str, float]) -> float:
    """The longest chain of stage seconds through the graph."""
    children: dict[str, list] = {}
    for g in graph.groups.values():
        if g.parent is not None:
            children.setdefault(g.parent, []).append(g.key)
    memo: dict[str, float] = {}

    def rank(key: str) -> float:
        if key not in memo:
            memo[key] = per_group[key] + max((rank(c) for c in children.get(key, ())), default=0)
        return memo[key]

    return max(rank(g.key) for g in graph.groups.values() if g.parent is None)


def legacy_rounds(cfg: SweepConfig, graph: Graph, run) -> dict:
    """The scheduling before issue 12, rebuilt from today's pieces: rounds of one Tune run of
    every ready fixed stage (released as parents finish), then one Tune run per ready Optuna
    group, one after another, until nothing new is ready; no resource model.
    `run(name, core)` is one Tune run of a SweepSearcher."""
    out = cfg.output_path
    selected, failed, searched = load_selection(out), set(), set()
    search = Search.of(cfg)
    runs = 0
    for round_ in range(len(graph.groups) + 1):
        progressed = False
        core = SweepSearcher(graph, out, selected, failed, search, include=lambda g: not g.optuna)
        if core.has_work:
            run(f"stages-{round_}", core)
            progressed, runs = True, runs + 1
        for g in list(graph.groups.values()):
            ready = g.parent is None or g.parent in selected
            if not (g.optuna and ready) or g.key in selected or g.key in failed | searched:
                continue
            searched.add(g.key)
            core = SweepSearcher(
                graph, out, selected, failed, search, include=lambda h, k=g.key: h.key == k
            )
            run(f"search-{g.key}", core)
            progressed, runs = True, runs + 1
        if not progressed:
            break
    return {"tune_runs": runs, "failed_groups": len(failed)}


class Model:
    """Tune and Ray in virtual time (`--engine model`): the same searcher and per-group ASHA
    objects; trials admitted while fewer than `max_concurrent_trials` are live, each started
    when its bundles fit what is free (in arrival order, as placement groups are granted), a
    result after each round; no start-up or per-trial overhead at all. One node."""

    def __init__(self, cfg: SweepConfig, nodes: list[dict], s: float, seconds=None):
        self.cfg, self.nodes, self.s = cfg, nodes, s
        self.node = nodes[0]  # the old scheduling's single node
        self.seconds = seconds  # meta -> a stage's seconds (None: cost / devices x s)
        self.now = 0.0
        self.spans: list[Span] = []
        self.ids = itertools.count()
        self.res = {m: cfg.resources_for(m) for m in cfg.models}

    def run(self, name: str, core: SweepSearcher) -> None:
        """One Tune run of `core`, to its end."""
        from ray.tune.schedulers import TrialScheduler

        from xscale.schedule.asha import asha_factory, grouped_asha

        cfg = self.cfg
        asha = None
        if cfg.scheduler:
            asha = grouped_asha(asha_factory(cfg.scheduler, cfg.search.metric, cfg.search.mode))
        free = [dict(n) for n in self.nodes]
        pending: list = []
        running: dict[str, SimpleNamespace] = {}
        events: list = []  # (time, seq, trial id, round ending)
        seq = itertools.count()
        finished = False
        while True:
            while not finished and len(pending) + len(running) < cfg.max_concurrent_trials:
                config = core.suggest(tid := f"m{next(self.ids)}")
                if config is None or config == FINISHED:
                    finished = config == FINISHED
                    break
                meta, _ = TrialMeta.split(config)
                r = self.res[meta.spec["model"]]
                trial = SimpleNamespace(
                    trial_id=tid,
                    config=config,
                    meta=meta,
                    res=r,
                    demand=demand(r),
                    rounds=meta.rounds or 1,
                    seconds=self.seconds(meta)
                    if self.seconds
                    else duration(meta.cost or 0.0, r, self.s),
                )
                if asha is not None:
                    asha.on_trial_add(None, trial)
                pending.append(trial)
            waiting = []
            for trial in pending:
                placed = assign(free, trial.demand)
                if placed is None:
                    waiting.append(trial)
                    continue
                free, trial.where = placed
                trial.start = self.now
                running[trial.trial_id] = trial
                end = self.now + trial.seconds / trial.rounds
                heapq.heappush(events, (end, next(seq), trial.trial_id, 1))
            pending = waiting
            if not events:
                if pending:
                    raise RuntimeError(f"{name}: a trial fits no node of the cluster")
                return
            self.now, _, tid, i = heapq.heappop(events)
            trial = running[tid]
            score = dev_score(trial.meta.stage, i / trial.rounds)
            result = {"training_iteration": i, cfg.search.metric: score}
            last = i == trial.rounds
            stop = False
            if last:
                where = cfg.output_path / "stages" / trial.meta.stage
                where.mkdir(parents=True, exist_ok=True)
                mark_complete(where, {"metrics": {cfg.search.metric: score}})
            elif asha is not None:
                stop = asha.on_trial_result(None, trial, result) == TrialScheduler.STOP
                if not stop:
                    core.on_trial_result(tid, result)
            if not (last or stop):
                end = self.now + trial.seconds / trial.rounds
                heapq.heappush(events, (end, next(seq), tid, i + 1))
                continue
            if asha is not None:
                asha.on_trial_complete(None, trial, result)
            core.on_trial_complete(tid, result)
            for group, node in zip(trial.demand, trial.where, strict=True):
                for bundle in group:
                    for k, v in bundle:
                        free[node][k] = free[node].get(k, 0.0) + v
            del running[tid]
            dev = units(trial.res)
            self.spans.append((trial.start, self.now, dev, last, trial.meta.spec["model"]))


def ray_spans(out: Path) -> list[Span]:
    """Each trial's stage work from its sim.json: from getting its resources to its last round."""
    spans = []
    for d in (out / "stages").iterdir():
        sim_file = d / SIM_FILE
        if not sim_file.is_file():
            continue
        sim = json.loads(sim_file.read_text())
        if "acquired" not in sim:
            continue
        model = json.loads((d / "spec.json").read_text())["model"]
        end = sim["rounds"][-1] if sim["rounds"] else sim["acquired"]
        dev = sim["gpus"] or sim["cpus"]
        spans.append((sim["acquired"], end, dev, (d / "COMPLETE").is_file(), model))
    return spans


def measure(spans: list[Span], t0: float, t1: float, devices: float, path: float) -> dict:
    work = sum((e - a) * dev for a, e, dev, _, _ in spans)
    ideal = max(work / devices, path)
    makespan = t1 - t0
    slices = 20
    width = makespan / slices
    util = []
    for i in range(slices):
        lo, hi = t0 + i * width, t0 + (i + 1) * width
        busy = sum(max(0.0, min(e, hi) - max(a, lo)) * dev for a, e, dev, _, _ in spans)
        util.append(round(busy / (devices * width), 3))
    by_model: dict[str, float] = {}
    for a, e, dev, _, model in spans:
        by_model[model] = by_model.get(model, 0.0) + (e - a) * dev
    return {
        "makespan_s": round(makespan, 1),
        "ideal_s": round(ideal, 1),
        "ratio": round(makespan / ideal, 3),
        "work_device_s": round(work, 1),
        "work_over_devices_s": round(work / devices, 1),
        "critical_path_s": round(path, 1),
        "utilisation_mean": round(work / (devices * makespan), 3),
        "utilisation": util,
        "first_start_s": round(min(a for a, *_ in spans) - t0, 2),
        "after_last_end_s": round(t1 - max(e for _, e, *_ in spans), 2),
        "trials": len(spans),
        "stopped": sum(1 for *_, done, _ in spans if not done),
        "work_share_by_size": {m: round(w / work, 3) for m, w in sorted(by_model.items())},
    }


def cpu_seconds(children: bool = False) -> float:
    """CPU time of this process (the driver: Tune, the searcher, ASHA), or of its reaped
    children (Ray's processes)."""
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def start_ray(cpus: float, gpus: float) -> None:
    import ray

    schedule.tune_environment()
    schedule._loopback_only(ray)
    ray.init(
        address="local",
        num_cpus=cpus,  # logical: the sleeps use none
        num_gpus=gpus,  # fake: nothing touches a device
        include_dashboard=False,
        log_to_driver=False,
        logging_level="ERROR",
        _node_ip_address="127.0.0.1",
        # else Ray starts a worker process per logical CPU
        _system_config={"enable_worker_prestart": False, "prestart_worker_first_driver": False},
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sweep", default="sweeps/scaling.yaml")
    p.add_argument("--engine", choices=["ray", "model"], default="ray")
    p.add_argument("--scheduler", choices=["new", "old", "both"], default="new")
    p.add_argument("--ideal-s", type=float, default=900.0, help="planned work / devices, seconds")
    p.add_argument("--gpus", type=float, default=20, help="fake GPUs (cluster.yaml at full size)")
    p.add_argument("--cpus", type=float, default=216, help="fake CPUs (cluster.yaml at full size)")
    p.add_argument("--seeds", type=int, nargs="*", help="keep only these seeds")
    p.add_argument("--models", nargs="*", help="keep only these sizes")
    p.add_argument("--intermediate", nargs="*", help="keep only these intermediate entries")
    p.add_argument("--max-concurrent", type=int, help="override max_concurrent_trials")
    p.add_argument("--keep", help="output folder to keep (default: a temporary one, removed)")
    p.add_argument(
        "--nodes",
        help="model engine: the cluster's nodes, COUNTxGPUS:CPUS,... (e.g. 4x1:4,2x8:96,1x0:8);"
        " default one node of --gpus and --cpus",
    )
    p.add_argument("--stage-time", choices=["cost", "plan"], default="cost")
    p.add_argument("--gpu", default="a100-40gb", help="with --stage-time plan: the GPU type")
    p.add_argument("--mfu", type=float, default=0.4, help="with --stage-time plan")
    args = p.parse_args()
    nodes = parse_nodes(args.nodes) if args.nodes else [{"CPU": args.cpus, "GPU": args.gpus}]
    if args.nodes:
        args.gpus = sum(n["GPU"] for n in nodes)
        args.cpus = sum(n["CPU"] for n in nodes)
    if args.engine == "ray" and (args.nodes or args.stage_time == "plan"):
        p.error("--nodes and --stage-time plan are for --engine model (Ray here is one node)")

    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="xscale-sim-"))
    root.mkdir(parents=True, exist_ok=True)
    overrides: dict = {}
    if args.seeds:
        overrides["seeds"] = args.seeds
    if args.models:
        overrides["models"] = args.models
    if args.intermediate:
        overrides["intermediate_tasks"] = args.intermediate
    if args.max_concurrent:
        overrides["max_concurrent_trials"] = args.max_concurrent
    plan_cfg = load_sweep(args.sweep, {**overrides, "output_dir": str(root / "plan")})
    graph = expand(plan_cfg)
    gpu = any(g.resources.gpus for g in graph.groups.values())
    devices = args.gpus if gpu else args.cpus
    s = args.ideal_s * devices / planned_cost(plan_cfg, graph)
    durations = [g.cost / units(g.resources) * s for g in graph.groups.values()]
    report: dict = {
        "sweep": args.sweep,
        "engine": args.engine,
        "stages_planned": schedule.plan_counts(plan_cfg, graph)["total"],
        "groups": len(graph.groups),
        "optuna_groups": sum(1 for g in graph.groups.values() if g.optuna),
        "max_concurrent_trials": plan_cfg.max_concurrent_trials,
        "cluster": {"gpus": args.gpus, "cpus": args.cpus, "devices": devices},
        "seconds_per_cost": s,
        "planned_ideal_s": args.ideal_s,
        "stage_seconds_range": [round(min(durations), 4), round(max(durations), 2)],
        "load_avg_before": round(os.getloadavg()[0], 2),
        "cpus_of_this_machine": os.cpu_count(),
    }
    path = critical_path(graph) * s
    seconds = None
    if args.stage_time == "plan":
        from xscale.catalog.cluster import get_gpu
        from xscale.graph.plan import group_seconds

        gpu = get_gpu(args.gpu)
        per_group = {
            g.key: group_seconds(plan_cfg, g, gpu, args.mfu) for g in graph.groups.values()
        }
        seconds = plan_seconds(graph, per_group)
        path = plan_critical_path(graph, per_group)
        report["stage_time"] = {"gpu": gpu.name, "mfu": args.mfu, "terms": "load+train+eval+ckpt"}
        report["stage_seconds_range"] = [
            round(min(per_group.values()), 1),
            round(max(per_group.values()), 1),
        ]
    report["nodes"] = nodes
    if args.engine == "ray":
        os.environ[SIMULATE_ENV] = json.dumps({"seconds_per_cost": s})
        start_ray(args.cpus, args.gpus)
    runs = ["new", "old"] if args.scheduler == "both" else [args.scheduler]
    for which in runs:
        cfg = load_sweep(args.sweep, {**overrides, "output_dir": str(root / which)})
        if args.engine == "model":
            model = Model(cfg, nodes, s, seconds)
            if which == "new":
                capacity = Capacity(lambda nodes=[dict(n) for n in nodes]: nodes)
                core = SweepSearcher(
                    graph,
                    cfg.output_path,
                    {},
                    set(),
                    Search.of(cfg),
                    capacity,
                )
                model.run("sweep", core)
                extra = {"tune_runs": 1}
            else:
                extra = legacy_rounds(cfg, graph, model.run)
            t0, t1, spans = 0.0, model.now, model.spans
        else:
            tracking = TrackingInfo(uri=f"sqlite:///{root}/unused.db", experiment=cfg.name)
            progress = schedule.sweep_progress(cfg, graph)
            progress.verbosity = 0
            cpu0 = cpu_seconds()
            t0 = time.time()
            if which == "new":
                extra = schedule.run_sweep(cfg, graph, tracking, progress=progress)
            else:
                ctx = schedule.sweep_context(cfg, tracking)

                def tune_run(name, core, cfg=cfg, ctx=ctx, progress=progress):
                    schedule.tune_searcher_run(name, core, cfg, ctx, progress)

                extra = legacy_rounds(cfg, graph, tune_run)
            t1 = time.time()
            extra["driver_cpu_s"] = round(cpu_seconds() - cpu0, 1)
            spans = ray_spans(cfg.output_path)
        report[which] = {
            **measure(spans, t0, t1, devices, path),
            "groups_selected": len(load_selection(cfg.output_path)),
            "counts": extra,
            "load_avg_after": round(os.getloadavg()[0], 2),
        }
    if "new" in report and "old" in report:
        report["old_over_new_makespan"] = round(
            report["old"]["makespan_s"] / report["new"]["makespan_s"], 3
        )
    if args.engine == "ray":
        import ray

        ray.shutdown()
    # what the benchmark cost this machine: the driver, and Ray's processes once reaped
    report["cpu_s"] = {
        "driver": round(cpu_seconds(), 1),
        "ray_processes": round(cpu_seconds(children=True), 1),
    }
    print(json.dumps(report, indent=2))
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
