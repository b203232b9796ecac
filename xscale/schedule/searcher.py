"""One Ray Tune searcher for the whole sweep: every ready group of the graph at once.

    released group  --fixed / grid-->  its incomplete stages, queued
                    --Optuna-------->  `num_samples` slots, each asked of the group's own
                                       OptunaSearch (seeded) when it is handed out
    suggest()       the queued item with the longest expected path to the end of the sweep (its
                    own expected time, cost / devices, plus its longest chain of descendants)
                    among those whose resources fit the cluster now (schedule/packing.py), from
                    any group: fixed stages and the trials of every ready Optuna group share
                    one Tune run and its `max_concurrent_trials`
    trial ends      the group's study is told (Optuna), and when the group's last item has
                    ended its best complete stage is selected -> groups/<key>.json, and its
                    children are released at once

Each Optuna group keeps the sampling of a Tune run of its own: an OptunaSearch with the sweep's
seed, `num_samples` trials, told of each of its trials by id; ASHA's brackets are kept per group
by `schedule/asha.py`. On a re-run, a stage that is complete is never handed out again: a fixed
one is not queued, and an Optuna sample whose stage is complete is told to its study with the
recorded score instead of becoming a trial (a seeded search draws the same samples while they
come from the sampler's random start, TPE's first 10, so a resumed search finds its stages
again); a group with a selection record is not searched at all.
"""

from __future__ import annotations

import heapq
import itertools
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from xscale.graph.expand import Graph, Group
from xscale.graph.selection import select_best
from xscale.graph.stage import StageSpec, is_complete, read_result, stage_dir
from xscale.schedule.packing import Capacity, Demand, demand, free_after, place, units
from xscale.tracking.names import DEV_SCORE

META = "xscale"  # the one Tune config key xscale reserves; every other key is a sampled value
FINISHED = "FINISHED"  # ray.tune.search.Searcher.FINISHED


@dataclass(frozen=True)
class TrialMeta:
    """What a Tune trial's config says about its stage, under the single key `xscale`: the
    stage (key, spec, label, cost), the Optuna group it samples for (None for a fixed stage),
    and how many evaluation rounds it reports (ASHA's `max_t` for a searched stage)."""

    stage: str | None = None
    group: str | None = None
    spec: dict | None = None
    label: str | None = None
    cost: float | None = None
    rounds: int | None = None

    def config(self) -> dict[str, Any]:
        return {META: {k: v for k, v in asdict(self).items() if v is not None}}

    @classmethod
    def split(cls, config: dict[str, Any]) -> tuple[TrialMeta, dict[str, Any]]:
        """(meta, sampled hyperparameters) of a trial config."""
        meta = cls(**(config.get(META) or {}))
        return meta, {k: v for k, v in config.items() if k != META}


@dataclass(frozen=True)
class Search:
    """How Optuna groups are searched: samples per group, the sampler's seed, the metric, the
    evaluation rounds a searched stage reports, and the Tune search space per phase kind."""

    num_samples: int = 1
    seed: int = 0
    metric: str = DEV_SCORE
    mode: str = "max"
    rounds: int = 1
    spaces: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def of(cls, cfg) -> Search:
        """From a SweepConfig (builds Ray Tune domains: call where Ray is imported)."""
        return cls(
            num_samples=cfg.search.num_samples or 1,
            seed=cfg.search.seed,
            metric=cfg.search.metric,
            mode=cfg.search.mode,
            rounds=cfg.scheduler.max_t if cfg.scheduler else 1,
            spaces={k: cfg.tune_space(k) for k in ("intermediate", "target")},
        )


@dataclass
class _Open:
    """A released group that has not settled yet."""

    group: Group
    parent_stage: str | None
    specs: list[StageSpec] = field(default_factory=list)  # its stages (Optuna: as sampled)
    left: int = 0  # items queued or running
    study: Any = None  # an Optuna group's OptunaSearch
    asked: int = 0


@dataclass
class _Live:
    group: str
    spec: StageSpec
    ask_id: str | None  # the trial's id in its group's study (Optuna)
    demand: Demand


class SweepSearcher:
    """The searcher's logic, free of Ray's classes (`searcher()` wraps it for Tune).

    `selected` (group -> stage key) and `failed` (group keys) are updated in place. `capacity`
    (None: every stage fits) makes hand-outs resource-aware; `include` limits which groups
    are released (the benchmark's rebuilt pre-issue-12 scheduling uses it)."""

    def __init__(
        self,
        graph: Graph,
        out: Path,
        selected: dict[str, str],
        failed: set[str],
        search: Search,
        capacity: Capacity | None = None,
        include: Callable[[Group], bool] | None = None,
    ):
        self.graph, self.out, self.search = graph, Path(out), search
        self.selected, self.failed = selected, failed
        self.capacity, self.include = capacity, include
        self.children: dict[str, list[Group]] = {}
        for g in graph.groups.values():
            if g.parent is not None:
                self.children.setdefault(g.parent, []).append(g)
        self.rank = path_to_end(graph, self.children)
        self.queues: dict[Demand, list] = {}  # per resource shape: (-rank, seq, group, spec)
        self.open: dict[str, _Open] = {}
        self.live: dict[str, _Live] = {}  # Tune trial id -> its stage, in hand-out order
        self.seq = itertools.count()
        self.dispatched = 0
        self.reports: dict[str, int] = {}  # stage key -> intermediate results Tune passed on
        self.told = 0  # Optuna samples found complete (re-runs), told without a trial
        for g in graph.groups.values():
            if g.parent is None or g.parent in selected:
                self._release(g)

    # -- groups
    def _release(self, g: Group) -> None:
        if g.key in self.selected or g.key in self.failed or g.key in self.open:
            return
        if self.include is not None and not self.include(g):
            return
        o = _Open(g, self.selected.get(g.parent) if g.parent else None)
        self.open[g.key] = o
        if g.optuna:
            o.left = self.search.num_samples
            for _ in range(o.left):
                self._push(o, None)
        else:
            o.specs = [g.stage(s, o.parent_stage) for s in g.samples]
            todo = [s for s in o.specs if not self._complete(s)]
            o.left = len(todo)
            for s in todo:
                self._push(o, s)
        if o.left == 0:
            self._settle(o)

    def _settle(self, o: _Open) -> None:
        g = o.group
        del self.open[g.key]
        reports = self.reports if g.optuna else None
        chosen = select_best(self.out, g, o.specs, self.search.mode, reports)
        if chosen is None:  # kept: the next run of the sweep resumes them from checkpoints
            self.failed.add(g.key)
            return
        self.selected[g.key] = chosen
        for spec in o.specs:  # stopped by ASHA or failed: never resumed now the group chose
            if not self._complete(spec):
                for ckpt in stage_dir(self.out, spec).glob("ckpt*"):
                    shutil.rmtree(ckpt, ignore_errors=True)
        for child in self.children.get(g.key, ()):
            self._release(child)

    def _push(self, o: _Open, spec: StageSpec | None) -> None:
        queue = self.queues.setdefault(demand(o.group.resources), [])
        heapq.heappush(queue, (-self.rank[o.group.key], next(self.seq), o.group.key, spec))

    def _complete(self, spec: StageSpec) -> bool:
        return is_complete(stage_dir(self.out, spec))

    # -- choosing
    def _choose(self) -> Demand | None:
        """The resource shape whose head item goes next (see schedule/packing.py)."""
        heads = sorted((q[0][:2], d) for d, q in self.queues.items() if q)
        if not heads:
            return None
        if self.capacity is None:
            return heads[0][1]
        free, waiting = free_after(self.capacity.nodes(), (x.demand for x in self.live.values()))
        for _, d in heads:
            if place(free, d) is not None:
                return d
        return heads[0][1] if not waiting else None

    def _ask(self, o: _Open) -> tuple[StageSpec, dict[str, Any], str]:
        if o.study is None:
            o.study = self._study(o.group)
        ask_id = f"{o.group.key}#{o.asked}"
        o.asked += 1
        params = o.study.suggest(ask_id)
        spec = o.group.stage(params, o.parent_stage)
        o.specs.append(spec)
        return spec, params, ask_id

    def _study(self, g: Group):
        import optuna
        from ray.tune.search.optuna import OptunaSearch

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        space = OptunaSearch.convert_search_space(self.search.spaces[g.kind])
        return OptunaSearch(
            space=space, metric=self.search.metric, mode=self.search.mode, seed=self.search.seed
        )

    def _ended(self, o: _Open) -> None:
        o.left -= 1
        if o.left == 0:
            self._settle(o)

    # -- the Searcher interface
    @property
    def has_work(self) -> bool:
        return any(self.queues.values())

    def suggest(self, trial_id: str):
        while True:
            d = self._choose()
            if d is None:
                return None if self.live or self.has_work else FINISHED
            _, _, key, spec = heapq.heappop(self.queues[d])
            o = self.open[key]
            params: dict[str, Any] = {}
            ask_id = None
            if spec is None:  # an Optuna slot: the group's study samples it now
                spec, params, ask_id = self._ask(o)
                if self._complete(spec):  # a re-run: the stage exists, its score is the answer
                    metrics = read_result(stage_dir(self.out, spec)).metrics
                    score = metrics.get(self.search.metric)
                    o.study.on_trial_complete(
                        ask_id, None if score is None else {self.search.metric: score}
                    )
                    self.told += 1
                    self._ended(o)
                    continue
            self.live[trial_id] = _Live(key, spec, ask_id, d)
            self.dispatched += 1
            meta = TrialMeta(
                stage=spec.key,
                group=key if ask_id is not None else None,
                spec=spec.model_dump(mode="json"),
                label=spec.label,
                cost=o.group.cost,
                rounds=self.search.rounds if ask_id is not None else None,
            )
            return {**meta.config(), **params}

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        live = self.live.get(trial_id)
        if live is not None and not result.get("complete", 1):
            self.reports[live.spec.key] = self.reports.get(live.spec.key, 0) + 1
        if live is not None and live.ask_id is not None and self.search.metric in result:
            self.open[live.group].study.on_trial_result(live.ask_id, result)

    def on_trial_complete(self, trial_id: str, result=None, error: bool = False) -> None:
        """A stage ended (after Tune's retries, or stopped by ASHA); its group settles once all
        of its items have."""
        live = self.live.pop(trial_id, None)
        if live is None:
            return
        o = self.open[live.group]
        if live.ask_id is not None:
            o.study.on_trial_complete(live.ask_id, result, error)
        self._ended(o)


def path_to_end(graph: Graph, children: dict[str, list[Group]]) -> dict[str, float]:
    """Per group, its stages' expected time (cost / devices) plus the longest such chain of its
    descendants: list scheduling by this priority starts the critical path first and, among
    independent stages, the longest first."""
    rank: dict[str, float] = {}
    for level in reversed(graph.by_depth()):
        for g in level:
            below = max((rank[c.key] for c in children.get(g.key, ())), default=0.0)
            rank[g.key] = g.cost / units(g.resources) + below
    return rank


def searcher(core: SweepSearcher):
    """`core` as a Ray Tune Searcher."""
    from ray.tune.search import Searcher

    class _Searcher(Searcher):
        def suggest(self, trial_id):
            return core.suggest(trial_id)

        def on_trial_result(self, trial_id, result):
            core.on_trial_result(trial_id, result)

        def on_trial_complete(self, trial_id, result=None, error=False):
            core.on_trial_complete(trial_id, result, error)

    return _Searcher()
