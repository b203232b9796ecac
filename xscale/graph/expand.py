"""expand(): a sweep -> a graph of stage groups. Pure: no I/O, no Ray, no MLflow.

    pretrain (tiny sizes) -> intermediate -> target
                          -> cartography -> intermediate subset (weights: pretrain) -> target

A *group* is one node of the study: (kind, size, task, seed, training-language mode, parent
group) with the phase's hyperparameters, fixed or as a search space. A group with fixed
hyperparameters is exactly one stage; a grid group is one stage per grid point; an Optuna group
gets its stages from the sampler when it runs. After a group runs, the stage with the best English
dev metric is *selected*, and the group's children start from that stage's model.

Keys: a group's key hashes its canonical template, its search space and its parent's group key;
a stage's key hashes its concrete spec, which includes the parent *stage* key (see stages.py).
Because an intermediate group does not depend on the target task, every target task that needs
it shares it: it exists once in the graph and trains once.

A cartography group (sweep/difficulty.py) maps one task for one size, with seed 0 and fixed
hyperparameters, so every seed's subset groups share it. A subset group's parent is its map
(it is released when the map is complete, and its stages' `parent` is the map's stage), but its
stages start from the pretrained weights: `weights` names the pretrain stage (whose key is known
here: a pretrain group is one fixed stage) or `pretrained` (a real size's own weights).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from xscale import data as xdata
from xscale.catalog.sizes import get_size
from xscale.errors import XScaleError
from xscale.graph.stage import PRETRAINED, StageSpec, key_hash, stage_label
from xscale.sweep.difficulty import MAP_SEED, alignment_spec
from xscale.sweep.perturbations import stage_entries
from xscale.sweep.phases import PhaseConfig, PretrainConfig
from xscale.sweep.schema import StageResources, SweepConfig
from xscale.sweep.spaces import SearchSpace
from xscale.sweep.trial import TrialConfig, trial_sweep
from xscale.tasks import format_info, trains
from xscale.tasks.registry import TASKS
from xscale.train.steps import steps_per_epoch, total_steps

PRETRAIN_NOMINAL = 15_000


def nominal_train_size(task: str, root: str) -> int:
    """The full dataset's English training rows (the registry's `train_size`), for plans."""
    return TASKS[task].train_size if task in TASKS else 10_000


@dataclass(frozen=True)
class Group:
    key: str
    kind: str
    depth: int
    parent: str | None  # parent group key
    base: dict[str, Any]  # StageSpec fields except hparams/parent
    fixed: dict[str, Any]  # fixed hyperparameters (only those the sweep sets)
    space: dict[str, SearchSpace]  # searched hyperparameters (empty: nothing searched)
    samples: tuple[dict[str, Any], ...]  # grid points; () for an Optuna group
    resources: StageResources  # what each of its stages runs with
    cost: float  # estimated compute of one stage (relative units), for ordering
    steps: int = 0  # optimizer steps of one stage (nominal data sizes for hub data)
    choices: int = 1  # sequences per training example (multiple choice), for memory plans

    @property
    def searched(self) -> bool:
        return bool(self.space)

    @property
    def optuna(self) -> bool:
        return self.searched and not self.samples

    @property
    def label(self) -> str:
        return stage_label(self.base)

    def to_json(self) -> dict[str, Any]:
        """The group as plain JSON values (the sweep manifest, Tune trial contexts)."""
        return {
            "key": self.key,
            "kind": self.kind,
            "depth": self.depth,
            "parent": self.parent,
            "base": json.loads(json.dumps(self.base)),
            "fixed": dict(self.fixed),
            "space": {k: {"kind": v.kind, "values": list(v.values)} for k, v in self.space.items()},
            "samples": [dict(s) for s in self.samples],
            "resources": self.resources.to_json(),
            "cost": self.cost,
            "steps": self.steps,
            "choices": self.choices,
            "label": self.label,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Group:
        return cls(
            key=d["key"],
            kind=d["kind"],
            depth=d["depth"],
            parent=d["parent"],
            base=dict(d["base"]),
            fixed=dict(d["fixed"]),
            space={k: SearchSpace(v["kind"], tuple(v["values"])) for k, v in d["space"].items()},
            samples=tuple(dict(s) for s in d["samples"]),
            resources=StageResources.from_json(d["resources"]),
            cost=float(d["cost"]),
            steps=int(d.get("steps", 0)),
            choices=int(d.get("choices", 1)),
        )

    def stage(self, sample: dict[str, Any], parent_stage: str | None) -> StageSpec:
        """The concrete stage of this group for one sample and the parent's selected stage."""
        cls = PretrainConfig if self.kind == "pretrain" else PhaseConfig
        hp = cls.model_validate({**self.fixed, **sample})
        return StageSpec(**self.base, hparams=hp, parent=parent_stage)


@dataclass
class Graph:
    groups: dict[str, Group] = field(default_factory=dict)

    def by_depth(self) -> list[list[Group]]:
        depth = max((g.depth for g in self.groups.values()), default=-1)
        return [[g for g in self.groups.values() if g.depth == d] for d in range(depth + 1)]

    def children(self, key: str) -> list[Group]:
        return [g for g in self.groups.values() if g.parent == key]

    def count(self, kind: str) -> int:
        return sum(1 for g in self.groups.values() if g.kind == kind)


def stage_steps(kind: str, hp: dict[str, Any], n_train: int) -> int:
    """Optimizer steps of one stage on `n_train` examples (capped by `max_train_examples`)."""
    phase = (PretrainConfig if kind == "pretrain" else PhaseConfig).model_validate(hp)
    if phase.max_train_examples:
        n_train = min(n_train, phase.max_train_examples)
    return total_steps(steps_per_epoch(n_train, phase.batch_size), phase.epochs, phase.max_steps)


def stage_tokens(kind: str, hp: dict[str, Any], steps: int) -> int:
    """Padded tokens one stage trains on: steps x global batch x max_length."""
    phase = (PretrainConfig if kind == "pretrain" else PhaseConfig).model_validate(hp)
    return steps * phase.batch_size * phase.max_length


def estimate_cost(model: str, kind: str, hp: dict[str, Any], n_train: int) -> float:
    """~ parameters x tokens seen (6ND up to a constant), in units of 1e9."""
    tokens = stage_tokens(kind, hp, stage_steps(kind, hp, n_train))
    return get_size(model).params * tokens / 1e9


def _mixture_roots(cfg: SweepConfig, tasks) -> dict[str, Any]:
    """A mixture's tasks whose data.tasks root differs from data.root (absent when none, so
    the keys of mixtures without overrides stay)."""
    roots = {
        t: cfg.data.root_for(t) for t in sorted(tasks) if cfg.data.root_for(t) != cfg.data.root
    }
    return {"task_roots": roots} if roots else {}


def _recipe_overrides(cfg: SweepConfig, model: str) -> dict[str, Any]:
    """The sweep's own micro batch / checkpointing for `model` (absent: the size's defaults)."""
    over = cfg.resources.get(model)
    out: dict[str, Any] = {}
    if over is not None and over.micro_batch_size is not None:
        out["micro_batch_size"] = over.micro_batch_size
    if over is not None and over.gradient_checkpointing:
        out["gradient_checkpointing"] = True
    return out


def _choices(base: dict[str, Any]) -> int:
    """Sequences per example in a training batch (multiple choice: one per choice)."""
    names = base.get("mixture") or [base.get("task")]
    return max((TASKS[t].choices for t in names if t in TASKS), default=1)


def _trains(base: dict[str, Any]) -> bool:
    """Retrieval targets are evaluated without training: nothing to search for them."""
    task = TASKS.get(base.get("task") or "")
    return task is None or trains(task)


def trained_languages(base: dict) -> tuple[int, int]:
    """(languages whose training data one model sees, models trained) of a stage, from its
    `train_languages` mode, for plans: `en` (1, 1); `de+en+fr` (3, 1); `all` (the task's
    languages, 1); `in-language` (1, one per evaluated language). Nominal: a language without
    training data is counted (the hub has every language's for the tasks that train in them)."""
    mode = base.get("train_languages", "en")
    task = TASKS.get(base.get("task") or "")
    if mode == "all":
        return (len(task.languages) if task else 1), 1
    if mode == "in-language":
        return 1, len(base.get("eval_languages") or (task.languages if task else ("en",)))
    return len(mode.split("+")), 1


def expand(cfg: SweepConfig, train_size=nominal_train_size) -> Graph:
    """The sweep's graph. `train_size(task, root)` gives data sizes for cost estimates."""
    graph = Graph()

    def add(kind: str, parent: Group | None, base: dict[str, Any], model: str) -> Group:
        fixed_only = kind in ("pretrain", "cartography") or not _trains(base)
        space = {} if fixed_only else cfg.searched(kind)
        fixed = cfg.phase_space(kind) if kind == "pretrain" else cfg.fixed_values(kind)
        samples: tuple[dict[str, Any], ...]
        if not space:
            samples = ({},)
        elif cfg.search.method == "grid":
            samples = tuple(cfg.grid_points(kind))
        else:
            samples = ()
        space_repr = {k: [v.kind, list(v.values)] for k, v in space.items()}
        key = f"{kind[:3]}-{model}-" + key_hash(
            {"base": base, "fixed": fixed, "space": space_repr, "parent": parent and parent.key}
        )
        if key in graph.groups:
            return graph.groups[key]
        res = cfg.resources_for(model)
        task = base.get("task") or "pretrain"
        if kind == "pretrain":
            n = PRETRAIN_NOMINAL
        elif base.get("mixture"):  # every task of the mixture, each capped (proportional)
            cap = base.get("mixture_cap")
            roots = base.get("task_roots") or {}
            sizes = (train_size(t, roots.get(t, base["data_root"])) for t in base["mixture"])
            n = sum(min(x, cap) if cap else x for x in sizes)
        else:
            n = train_size(task, base["data_root"])
        # several languages' training data: in one model (a multilingual intermediate task,
        # translate-train-all), or one model per language (in-language targets)
        together, models = trained_languages(base)
        n *= together
        if base.get("fraction"):  # a cartography subset trains on its share
            n = max(1, round(n * base["fraction"]))
        probe = {**fixed, **(samples[0] if samples else {})}
        if not samples:  # an Optuna group: cost at the space's first value
            probe.update({k: v.values[0] for k, v in space.items()})
        steps = stage_steps(kind, probe, n) * models
        group = Group(
            key=key,
            kind=kind,
            depth=0 if parent is None else parent.depth + 1,
            parent=parent.key if parent else None,
            base=base,
            fixed=fixed,
            space=space,
            samples=samples,
            resources=res,
            # a map run also passes over its training set at each epoch's end (a third more)
            cost=get_size(model).params
            * stage_tokens(kind, probe, steps)
            / 1e9
            * (4 / 3 if kind == "cartography" else 1),
            steps=steps if _trains(base) else 0,  # retrieval targets are evaluated only
            choices=_choices(base),
        )
        graph.groups[key] = group
        return group

    def add_map(pre: Group | None, model: str, task: str, langs: list[str], common: dict) -> Group:
        """The cartography stage of (size, task, languages): one map, shared by every seed."""
        base = {
            **common,
            "kind": "cartography",
            "seed": MAP_SEED,
            "task": task,
            "intermediate_task": task if langs == ["en"] else f"{task}@" + "+".join(langs),
            "train_languages": "+".join(langs),
            "data_root": cfg.data.root_for(task),
        }
        return add("cartography", pre, base, model)

    mixtures, multilingual, subsets = cfg.mixtures, cfg.multilingual, cfg.subsets
    # stages that export a model measure its alignment; the key is absent (not None) without
    # it, so the groups of sweeps without alignment keep their keys
    align = {}
    if cfg.alignment:
        spec = alignment_spec(cfg.alignment, cfg.data.root_for(cfg.alignment.source))
        align = {"alignment": spec.model_dump(mode="json")}
    for model in cfg.models:
        size = get_size(model)
        ds = cfg.resources_for(model).deepspeed_config

        def pretrain(seed: int, model: str = model, ds: str | None = ds) -> Group:
            base = {
                "kind": "pretrain",
                "model": model,
                "seed": seed,
                "data_root": cfg.data.root_for("pretrain"),
                "deepspeed_config": ds,
                **_recipe_overrides(cfg, model),
            }
            return add("pretrain", None, base, model)

        # tiny sizes are pretrained here: once (seed 0), or once per seed (`pretrain.per_seed`)
        per_seed = size.tiny and cfg.pretrain.per_seed
        pre = pretrain(cfg.seeds[0] if per_seed else 0) if size.tiny else None
        sized = {"model": model, "deepspeed_config": ds, **_recipe_overrides(cfg, model)}
        if not size.tiny and model in cfg.model_paths:  # local weights instead of the hub id
            sized["model_path"] = cfg.model_paths[model]
        if cfg.cartography.tasks == "all":  # task-level difficulty of every single task
            for inter in cfg.intermediate_names:
                entry = multilingual.get(inter) or subsets.get(inter)
                task = entry.task if entry else inter
                if inter in mixtures or task not in TASKS or not format_info(TASKS[task]).gold_prob:
                    continue
                add_map(pre, model, task, sorted(entry.languages) if entry else ["en"], sized)
        for seed in cfg.seeds:
            common = {**sized, "seed": seed}
            seed_pre = pretrain(seed) if per_seed else pre
            # a subset stage starts from these weights, not from its parent (the map)
            weights = seed_pre.stage({}, None).key if seed_pre else PRETRAINED
            for inter in cfg.intermediate_names:
                parent = seed_pre
                if inter != "none":
                    mix = mixtures.get(inter)
                    multi = multilingual.get(inter) or subsets.get(inter)
                    sub = subsets.get(inter)
                    task = multi.task if multi else inter
                    langs = sorted(multi.languages) if multi else ["en"]
                    base = {
                        **common,
                        "kind": "intermediate",
                        "task": task,
                        "intermediate_task": inter,
                        "train_languages": "+".join(langs),
                        "mixture": tuple(sorted(mix.mixture)) if mix else None,
                        "mixture_cap": mix.cap if mix else None,
                        "data_root": cfg.data.root if mix else cfg.data.root_for(task),
                        **_mixture_roots(cfg, mix.mixture if mix else ()),
                        **align,
                    }
                    if sub:  # trained on its map's subset, from the pretrained weights
                        cart = add_map(seed_pre, model, task, langs, sized)
                        extra = {"subset": sub.subset, "fraction": sub.fraction, "weights": weights}
                        parent = add("intermediate", cart, {**base, **extra}, model)
                    else:
                        parent = add("intermediate", seed_pre, base, model)
                for target in cfg.target_tasks:
                    langs = cfg.eval_languages.get(target)
                    # alignment of the checkpoints a target trains and exports
                    measured = align if _trains({"task": target}) else {}
                    for mode in cfg.train_languages:
                        add(
                            "target",
                            parent,
                            {
                                **common,
                                "kind": "target",
                                "task": target,
                                "intermediate_task": inter,
                                "target_task": target,
                                "train_languages": mode,
                                "eval_languages": tuple(langs) if langs else None,
                                "perturbations": stage_entries(cfg.perturbations, target),
                                "data_root": cfg.data.root_for(target),
                                **({} if mode == "in-language" else measured),
                            },
                            model,
                        )
    return graph


def trial_stages(cfg: TrialConfig) -> list[StageSpec]:
    """A trial's chain, pretrain (tiny sizes) -> intermediate (unless `none`) -> target: the
    stages of its one-cell sweep, so `xscale run` and `xscale sweep` build (and share) the same
    stages by one rule."""
    get_size(cfg.model)  # an unknown size is named as the trial's `model`, not a sweep's axis
    graph = expand(trial_sweep(cfg))
    specs: list[StageSpec] = []
    for (group,) in graph.by_depth():  # one cell: one group per depth
        specs.append(group.stage({}, specs[-1].key if specs else None))
    return specs


def data_train_size(cfg: SweepConfig):
    """Data sizes for cost estimates: counted for local data, nominal for hub data."""

    cache: dict = {}

    def size(task: str, root: str) -> int:
        if (task, root) in cache:
            return cache[(task, root)]
        n = nominal_train_size(task, root)
        if root != xdata.HUB and task in TASKS:
            try:
                n = len(xdata.load_examples(TASKS[task], "train", "en", root))
            except XScaleError:
                pass  # preflight reports it
        cache[(task, root)] = n
        return n

    return size
