"""Ray Tune scheduling: every stage whose parent is selected becomes a Tune trial.

    round:  one Tune run whose searcher (StageSearcher) hands out ready stages,
            longest-expected first; when all stages of a group have ended, the group's best
            stage (English dev metric) is selected -> groups/<key>.json, releasing its children
            -> one Tune run per ready Optuna group (OptunaSearch + optional ASHA)
            -> repeat while anything new became ready

Without Optuna groups the whole sweep is one Tune run: no barrier between depths (the waves of
the design run as a stage's parent finishes), and trial processes are reused across stages.

Every stage is one Tune trial with the resources of its size. A size with several workers runs
its stage as a Ray Train TorchTrainer inside the trial (gloo on CPU, NCCL on GPU). Ray's
FailureConfig retries a failed trial, and the stage resumes from its own last checkpoint. A stage
whose folder is complete is never run again, so re-running the sweep command is how a killed
sweep resumes.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from xscale.graph import Graph, Group
from xscale.runner import TrackingInfo
from xscale.stages import StageSpec, is_complete, read_result, stage_dir
from xscale.sweep_config import SweepConfig

RESERVED = ("stage", "group", "spec", "label")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] sweep: {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------- inside a trial


def _stage_in_workers(spec: StageSpec, ctx: dict[str, Any]) -> dict:
    """Run a stage on `workers` Ray Train workers (one DeepSpeed rank each)."""
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    res = ctx["resources"][spec.model]

    def worker(config):
        from xscale.cli import quiet_environment
        from xscale.runner import run_stage

        quiet_environment()
        run_stage(spec, Path(ctx["output_dir"]), TrackingInfo(**ctx["tracking"]))

    trainer = TorchTrainer(
        worker,
        torch_config=TorchConfig(backend="nccl" if res["gpus"] else "gloo"),
        scaling_config=ScalingConfig(
            num_workers=res["workers"],
            use_gpu=res["gpus"] > 0,
            resources_per_worker={"CPU": res["cpus"], "GPU": res["gpus"]},
        ),
        run_config=RunConfig(
            name=spec.key, storage_path=str(Path(ctx["output_dir"]).resolve() / "ray_train")
        ),
    )
    trainer.fit()
    where = stage_dir(Path(ctx["output_dir"]), spec)
    if not is_complete(where):
        raise RuntimeError(f"{spec.label}: workers finished but the stage is not complete")
    return read_result(where)


def stage_trainable(config: dict, ctx: dict[str, Any]) -> None:
    """One Tune trial = one stage. `config` names a stage key, or a group plus sampled values."""
    from ray import tune

    from xscale.cli import quiet_environment
    from xscale.graph import Group
    from xscale.runner import run_stage

    quiet_environment()
    if "spec" in config:
        spec = StageSpec.model_validate(config["spec"])
    else:
        group = Group(**ctx["groups"][config["group"]])
        sample = {k: v for k, v in config.items() if k not in RESERVED}
        spec = group.stage(sample, ctx["parent_stage"].get(group.key))
    if ctx["resources"][spec.model]["workers"] > 1:
        result = _stage_in_workers(spec, ctx)
    else:
        result = run_stage(
            spec,
            Path(ctx["output_dir"]),
            TrackingInfo(**ctx["tracking"]),
            report=lambda m: tune.report({**m, "stage_key": spec.key, "complete": 0}),
            eval_rounds=ctx["eval_rounds"] if spec.kind != "pretrain" else 1,
        )
    metrics = result.get("metrics", {})
    tune.report(
        {
            "dev.score": metrics.get("dev.score", 0.0),
            "stage_key": spec.key,
            "complete": 1,
            "stage_seconds": result.get("stage_seconds", 0.0),
        }
    )


# ----------------------------------------------------------------------- the driver


class Progress:
    """Counts stages done / running / failed / left and prints a line on every change."""

    def __init__(self, total: int, done: int):
        self.total, self.done, self.running, self.failed = total, done, 0, 0
        self.t0 = time.time()
        self.wave = ""

    def line(self, event: str = "") -> None:
        left = max(0, self.total - self.done - self.running - self.failed)
        mins, secs = divmod(int(time.time() - self.t0), 60)
        log(
            f"{self.wave} | done {self.done} | running {self.running} | failed {self.failed} "
            f"| left {left} | {mins:02d}:{secs:02d}" + (f" | {event}" if event else "")
        )


def _callback(progress: Progress, labels: dict[str, str]):
    from ray.tune import Callback

    def name(trial) -> str:
        cfg = trial.config
        key = cfg.get("stage") or cfg.get("group") or trial.trial_id
        label = cfg.get("label") or labels.get(key, key)
        sampled = {k: v for k, v in cfg.items() if k not in RESERVED}
        if sampled:
            label += " " + " ".join(
                f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in sampled.items()
            )
        return label

    class ProgressCallback(Callback):
        def on_trial_start(self, iteration, trials, trial, **info):
            progress.running += 1
            progress.line(f"started {name(trial)}")

        def on_trial_complete(self, iteration, trials, trial, **info):
            progress.running = max(0, progress.running - 1)
            progress.done += 1
            progress.line(f"finished {name(trial)}")

        def on_trial_error(self, iteration, trials, trial, **info):
            progress.running = max(0, progress.running - 1)
            progress.failed += 1
            progress.line(f"FAILED {name(trial)} (see {trial.local_path})")

    return ProgressCallback()


def _resources(ctx: dict[str, Any]):
    from ray.tune import PlacementGroupFactory

    def for_trial(config: dict):
        if "spec" in config:
            model = config["spec"]["model"]
        else:
            model = ctx["models"][config["group"]]
        res = ctx["resources"][model]
        if res["workers"] > 1:  # the trial only drives a TorchTrainer, whose workers hold the rest
            return PlacementGroupFactory([{"CPU": 0.01}])
        bundle = {"CPU": res["cpus"]}
        if res["gpus"]:
            bundle["GPU"] = res["gpus"]
        return PlacementGroupFactory([bundle])

    return for_trial


def _tune_run(name: str, param_space: dict, cfg: SweepConfig, ctx: dict, progress, extra=None):
    from ray import tune

    trainable = tune.with_resources(tune.with_parameters(stage_trainable, ctx=ctx), _resources(ctx))
    tune_config = tune.TuneConfig(
        max_concurrent_trials=cfg.max_concurrent_trials,
        reuse_actors=True,  # workers keep torch/deepspeed imported between stages
        **(extra or {}),
    )
    run_config = tune.RunConfig(
        name=name,
        storage_path=str(cfg.output_path.resolve() / "ray_results"),
        failure_config=tune.FailureConfig(max_failures=cfg.failure.max_failures),
        callbacks=[_callback(progress, ctx.get("labels", {}))],
        verbose=0,
    )
    tuner = tune.Tuner(
        trainable, param_space=param_space, tune_config=tune_config, run_config=run_config
    )
    return tuner.fit()


def _select(output_dir: Path, group: Group, specs: list[StageSpec], mode: str) -> str | None:
    """Pick the group's best complete stage; record it in groups/<key>.json."""
    done = [
        (s, read_result(stage_dir(output_dir, s)))
        for s in specs
        if is_complete(stage_dir(output_dir, s))
    ]
    if not done:
        return None

    def score(item):
        v = item[1].get("metrics", {}).get("dev.score")
        return float("-inf") if v is None else (v if mode == "max" else -v)

    best, _ = max(done, key=score)
    record = {
        "group": group.key,
        "selected": best.key,
        "candidates": [
            {"stage": s.key, "dev.score": r.get("metrics", {}).get("dev.score")} for s, r in done
        ],
    }
    path = output_dir / "groups" / f"{group.key}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2))
    tmp.replace(path)
    return best.key


def load_selection(output_dir: Path) -> dict[str, str]:
    out = {}
    for f in (Path(output_dir) / "groups").glob("*.json"):
        out[f.stem] = json.loads(f.read_text())["selected"]
    return out


def resolve(graph: Graph, output_dir: Path) -> dict[str, list[StageSpec] | None]:
    """Concrete stages per group where they are known now (None: waits on a parent's search)."""
    selected = load_selection(output_dir)
    known: dict[str, list[StageSpec] | None] = {}
    chosen: dict[str, str | None] = {}
    for wave in graph.by_depth():
        for g in wave:
            parent_stage = None
            if g.parent is not None:
                parent_stage = chosen.get(g.parent)
                if parent_stage is None:
                    known[g.key] = None
                    chosen[g.key] = None
                    continue
            if g.optuna:
                known[g.key] = None
                chosen[g.key] = selected.get(g.key)
                continue
            specs = [g.stage(s, parent_stage) for s in g.samples]
            known[g.key] = specs
            chosen[g.key] = specs[0].key if len(specs) == 1 else selected.get(g.key)
    return known


def start_ray(address: str | None, resources: dict[str, dict]) -> None:
    """Connect to a cluster, or start a local Ray big enough for the largest stage.

    A multi-worker stage's trial holds 0.01 CPU while its TorchTrainer's workers hold the
    rest, so a local Ray gets at least workers x cpus + 1 logical CPUs (else it would wait
    forever for the last worker)."""
    import ray

    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    if ray.is_initialized():
        return
    if address:
        extra = {}
        if address.split(":")[0] in ("127.0.0.1", "localhost"):
            extra["_node_ip_address"] = "127.0.0.1"  # else the driver binds the external address
        try:
            ray.init(address=address, log_to_driver=False, logging_level="ERROR", **extra)
        except (ConnectionError, RuntimeError, ValueError) as e:
            from xscale.errors import XScaleError

            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise XScaleError(
                f"--address {address}: cannot connect to the Ray cluster ({first}); on a"
                " cluster with token auth the driver needs RAY_AUTH_MODE=token and the"
                " cluster's token (~/.ray/auth_token)"
            ) from None
    else:
        need = max(
            (r["workers"] * r["cpus"] + 1 for r in resources.values() if r["workers"] > 1),
            default=0,
        )
        ray.init(
            address="local",  # a new local Ray, even if `ray start` left one running here
            num_cpus=max(os.cpu_count() or 1, need),
            include_dashboard=False,
            log_to_driver=False,
            logging_level="ERROR",
            _node_ip_address="127.0.0.1",
        )


class StageSearcher:
    """A Ray Tune searcher that hands out stages as soon as their parent group is selected.

    One Tune run then covers every fixed and grid group of the graph, however deep: no wave
    barrier, and trial processes (torch, DeepSpeed already imported) are reused from stage to
    stage. Ready stages start longest-expected-first. Optuna groups run in Tune runs of their
    own once their parent is selected (see `run_sweep`).
    """

    def __init__(self, graph: Graph, out: Path, selected: dict, failed: set, mode: str):
        from ray.tune.search import Searcher

        self.FINISHED = Searcher.FINISHED
        self.graph, self.out, self.selected, self.failed, self.mode = (
            graph,
            out,
            selected,
            failed,
            mode,
        )
        self.queue: list[tuple[Group, StageSpec]] = []
        self.live: dict[str, tuple[Group, StageSpec]] = {}
        self.outstanding: dict[str, int] = {}
        self.specs: dict[str, list[StageSpec]] = {}
        self.dispatched = 0
        for g in graph.groups.values():
            if g.parent is None or g.parent in selected:
                self._release(g)

    def _release(self, g: Group) -> None:
        """Queue `g`'s incomplete stages; settle it at once when none are left to run."""
        if g.optuna or g.key in self.selected or g.key in self.specs or g.key in self.failed:
            return
        parent_stage = self.selected.get(g.parent) if g.parent else None
        specs = [g.stage(s, parent_stage) for s in g.samples]
        self.specs[g.key] = specs
        todo = [s for s in specs if not is_complete(stage_dir(self.out, s))]
        self.outstanding[g.key] = len(todo)
        self.queue.extend((g, s) for s in todo)
        self.queue.sort(key=lambda gs: gs[0].cost)  # pop() takes the longest expected
        if not todo:
            self._settle(g)

    def _settle(self, g: Group) -> None:
        chosen = _select(self.out, g, self.specs[g.key], self.mode)
        if chosen is None:
            self.failed.add(g.key)
            return
        self.selected[g.key] = chosen
        for child in self.graph.children(g.key):
            self._release(child)

    @property
    def has_work(self) -> bool:
        return bool(self.queue)

    # -- the Searcher interface (wrapped by `searcher()` below)
    def suggest(self, trial_id: str):
        if self.queue:
            g, spec = self.queue.pop()
            self.live[trial_id] = (g, spec)
            self.dispatched += 1
            return {"stage": spec.key, "spec": spec.model_dump(mode="json"), "label": spec.label}
        return None if self.live else self.FINISHED

    def on_trial_complete(self, trial_id: str, result=None, error: bool = False) -> None:
        """A stage ended (after Tune's retries); its group settles once all its stages have."""
        g, _ = self.live.pop(trial_id)
        self.outstanding[g.key] -= 1
        if self.outstanding[g.key] == 0:
            self._settle(g)


def searcher(core: StageSearcher):
    from ray.tune.search import Searcher

    class _Searcher(Searcher):
        def suggest(self, trial_id):
            return core.suggest(trial_id)

        def on_trial_complete(self, trial_id, result=None, error=False):
            core.on_trial_complete(trial_id, result, error)

    return _Searcher()


def run_sweep(cfg: SweepConfig, graph: Graph, tracker, parent_run_id: str, address=None) -> dict:
    """Run the graph to the end; returns counts {ran, failed, blocked}."""
    out = cfg.output_path
    tracking = {
        "uri": tracker.uri,
        "experiment": cfg.name,
        "parent_run_id": parent_run_id,
        "artifact_root": str(out / "mlartifacts"),
    }
    known = resolve(graph, out)
    total = sum(
        len(v) if v else (cfg.search.num_samples or 1) if graph.groups[k].optuna else 1
        for k, v in known.items()
    )
    already = sum(1 for v in known.values() if v for s in v if is_complete(stage_dir(out, s)))
    progress = Progress(total, already)
    resources = {m: dict(vars(cfg.resources_for(m))) for m in cfg.models}
    counts = {"ran": 0, "failed": 0, "blocked": 0}
    selected = load_selection(out)
    failed: set[str] = set()
    searched: set[str] = set()
    import ray

    if not ray.is_initialized():  # `xscale sweep` starts it earlier, beside MLflow's set-up
        start_ray(address, resources)
    base_ctx = {
        "output_dir": str(out),
        "tracking": tracking,
        "groups": {},
        "parent_stage": {},
        "resources": resources,
        "models": {},
        "labels": {},
        "eval_rounds": 1,
    }
    for round_ in range(len(graph.groups) + 1):
        core = StageSearcher(graph, out, selected, failed, cfg.search.mode)
        progressed = False
        if core.has_work:
            progress.wave = f"round {round_ + 1}"
            results = _tune_run(
                f"stages-{round_}",
                {},
                cfg,
                base_ctx,
                progress,
                {"search_alg": searcher(core), "num_samples": -1},
            )
            counts["ran"] += core.dispatched
            counts["failed"] += sum(1 for r in results if r.error is not None)
            progressed = True
        for g in graph.groups.values():
            ready = g.parent is None or g.parent in selected
            if g.optuna and ready and g.key not in selected and g.key not in searched:
                searched.add(g.key)
                progress.wave = f"search {g.label}"
                ctx = {**base_ctx, "parent_stage": {g.key: selected.get(g.parent)}}
                chosen = _run_optuna_group(g, cfg, ctx, progress, selected.get(g.parent), counts)
                if chosen:
                    selected[g.key] = chosen
                else:
                    failed.add(g.key)
                progressed = True
        if not progressed:
            break
    counts["blocked"] = sum(
        1 for g in graph.groups.values() if g.key not in selected and g.key not in failed
    )
    counts["failed_groups"] = len(failed)
    return counts


def _run_optuna_group(g: Group, cfg: SweepConfig, base_ctx: dict, progress, parent_stage, counts):
    import optuna
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out = cfg.output_path
    ctx = {
        **base_ctx,
        "groups": {g.key: _group_dict(g)},
        "models": {g.key: g.base["model"]},
        "labels": {g.key: g.label},
        "eval_rounds": cfg.scheduler.max_t if cfg.scheduler else 1,
    }
    extra: dict[str, Any] = {
        "metric": cfg.search.metric,
        "mode": cfg.search.mode,
        "num_samples": cfg.search.num_samples or 1,
        "search_alg": OptunaSearch(seed=cfg.search.seed),
    }
    if cfg.scheduler:
        extra["scheduler"] = ASHAScheduler(
            time_attr="training_iteration",
            max_t=cfg.scheduler.max_t,
            grace_period=cfg.scheduler.grace_period,
            reduction_factor=cfg.scheduler.reduction_factor,
        )
    progress.line(f"search {g.label}: {extra['num_samples']} Optuna trials")
    results = _tune_run(
        f"search-{g.key}", {"group": g.key, **cfg.tune_space(g.kind)}, cfg, ctx, progress, extra
    )
    counts["ran"] += len(results)
    specs = []
    for r in results:
        sample = {k: v for k, v in (r.config or {}).items() if k not in RESERVED}
        specs.append(g.stage(sample, parent_stage))
    complete = [s for s in specs if is_complete(stage_dir(out, s))]
    return _select(out, g, complete, cfg.search.mode) if complete else None


def _group_dict(g: Group) -> dict:
    """The group's fields, to rebuild it inside a trial (`Group(**d)`)."""
    from dataclasses import fields

    return {f.name: getattr(g, f.name) for f in fields(g)}
