"""Which ready stage fits the cluster now: the resources a stage holds while it runs, and a
first-fit model of the cluster's nodes. Pure: no Ray (the node list comes from a callable).

A stage of a one-worker size holds one bundle (its CPUs and GPUs) in its Tune trial; a stage of
a size with several workers holds a 0.01-CPU trial bundle while its Ray Train TorchTrainer holds
one bundle per worker. Tune admits a trial as soon as its own bundle fits, so without this model
a multi-worker stage could take a concurrency slot and then wait for its workers while smaller
stages that fit could run. The sweep searcher (schedule/searcher.py) asks `fits` before it hands
out a stage:

    free   = the nodes' resources minus the live stages placed first-fit in hand-out order
             (a live stage that does not fit is *waiting* for resources)
    choose = the first ready stage, in the searcher's order, that fits `free`; if none fits
             and no stage is waiting, the first one anyway: it waits for the next resources to
             free up and takes them at once, without the round trip through Tune that a stage
             handed out only then would cost (on an autoscaling cluster its demand is what adds
             a node). One waiting stage at most: more would take the resources that the
             smaller ready stages fill in between (measured in bench/RESULTS.md)

A multi-worker stage's workers are placed STRICT_PACK by default (all on one node; the model
places them as one node group) or SPREAD with `resources.<size>.placement: spread`.

Ray places bundles itself, so this is a model, not a reservation; with nodes of one shape it is
exact, with mixed nodes first-fit may differ from Ray's placement by a bundle. It counts only
stages: a sweep with multi-worker sizes runs without Tune's actor reuse (schedule/tune.py), since
a cached trial process holds its CPUs outside this model (a 2-worker stage once waited for good
beside one, with 3.99 of the 4.01 CPUs it needed free).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence

from xscale.sweep.schema import StageResources

Bundle = dict[str, float]
# What a stage holds, hashable: a tuple of *node groups*, each a tuple of bundles that Ray must
# put on one node, e.g. ((("CPU", 0.01),), ((("CPU", 4.0), ("GPU", 1.0)),) * 4) for a packed
# 4-worker stage (its trial anywhere, its four workers together).
Demand = tuple[tuple[tuple[tuple[str, float], ...], ...], ...]

TRIAL_CPU = 0.01  # what the trial of a multi-worker stage holds beside its workers
# a stage's workers on one node (Ray's STRICT_PACK: NCCL inside a node, one node's failure
# domain), or one worker per node where Ray can (SPREAD: a stage with more GPUs than a node)
PLACEMENTS = {"pack": "STRICT_PACK", "spread": "SPREAD"}
DEFAULT_PLACEMENT = "pack"


def ray_strategy(resources: StageResources) -> str:
    """Ray's placement strategy for a multi-worker stage's workers."""
    return PLACEMENTS[resources.placement or DEFAULT_PLACEMENT]


def demand(resources: StageResources) -> Demand:
    """The bundles a stage holds. A packed stage's workers form one node group; spread ones
    one group each."""

    def bundle(b: Bundle) -> tuple[tuple[str, float], ...]:
        return tuple(sorted((k, v) for k, v in b.items() if v))

    worker = bundle({"CPU": float(resources.cpus), "GPU": float(resources.gpus)})
    n = int(resources.workers)
    if n == 1:
        return ((worker,),)
    trial = ((("CPU", TRIAL_CPU),),)
    if ray_strategy(resources) == "STRICT_PACK":
        return (trial, (worker,) * n)
    return (trial, *(((worker,),) * n))


def units(resources: StageResources) -> int:
    """Devices a stage runs on: workers x GPUs per worker (CPUs on a CPU-only size); its
    expected time is its cost (compute) over these."""
    per_worker = resources.gpus or resources.cpus
    return max(1, int(resources.workers * per_worker))


def assign(free: list[Bundle], d: Demand) -> tuple[list[Bundle], list[int]] | None:
    """Place every node group of `d` first-fit (each group whole on one node; different groups
    may share a node or not): (the nodes' free resources after, the node of each group), or
    None when one does not fit."""
    nodes = [dict(n) for n in free]
    where = []
    for group in d:
        need: Bundle = {}
        for b in group:
            for k, v in b:
                need[k] = need.get(k, 0.0) + v
        for i, node in enumerate(nodes):
            if all(node.get(k, 0.0) >= v - 1e-9 for k, v in need.items()):
                for k, v in need.items():
                    node[k] = node.get(k, 0.0) - v
                where.append(i)
                break
        else:
            return None
    return nodes, where


def place(free: list[Bundle], d: Demand) -> list[Bundle] | None:
    """The nodes' free resources after placing `d` (see `assign`), or None when it does not
    fit."""
    placed = assign(free, d)
    return None if placed is None else placed[0]


def free_after(nodes: Sequence[Bundle], live: Iterable[Demand]) -> tuple[list[Bundle], set[Demand]]:
    """(free resources, shapes of the waiting stages) once the live stages are placed in
    hand-out order."""
    free = [dict(n) for n in nodes]
    waiting: set[Demand] = set()
    for d in live:
        placed = place(free, d)
        if placed is None:
            waiting.add(d)
        else:
            free = placed
    return free, waiting


class Capacity:
    """The cluster's nodes ({"CPU": n, "GPU": m} each), read from `source` at most every `ttl`
    seconds (Tune asks the searcher for a stage many times a second while nothing fits)."""

    def __init__(self, source: Callable[[], list[Bundle]], ttl: float = 5.0, clock=time.monotonic):
        self.source, self.ttl, self.clock = source, ttl, clock
        self._nodes: list[Bundle] | None = None
        self._read = float("-inf")

    def nodes(self) -> list[Bundle]:
        now = self.clock()
        if self._nodes is None or now - self._read >= self.ttl:
            self._nodes = [dict(n) for n in self.source()]
            self._read = now
        return self._nodes
