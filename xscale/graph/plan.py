"""A sweep's plan on a GPU cluster: per (size, stage kind) the recipe the sweep gives, its memory
per GPU and per node, whether it fits a GPU type, the cheapest recipe that does when it does not,
GPU-hours and disk; totals for the sweep. Pure (reads the recipes' JSON, nothing else).

Stages are counted once however many children share them (the graph holds each once); an Optuna
group counts `search.num_samples` stages (ASHA may stop some early: an upper bound).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xscale import data as xdata
from xscale.catalog.cluster import (
    CHECKPOINT_BYTES_PER_PARAM,
    DEFAULT_MFU,
    EXPORT_BYTES_PER_PARAM,
    GPU,
    Estimate,
    Recipe,
    Work,
    estimate,
    micro_and_accumulation,
    stage_seconds,
    suggest,
)
from xscale.catalog.memory import estimate_memory
from xscale.catalog.recipes import available_configs, offload_mode, read_config, zero_stage
from xscale.catalog.sizes import get_size
from xscale.graph.expand import Graph, Group
from xscale.graph.selection import group_stage_count, planned
from xscale.graph.stage import stage_dir, stage_state
from xscale.sweep.phases import PhaseConfig, PretrainConfig
from xscale.sweep.schema import SweepConfig
from xscale.tasks import whole_batch
from xscale.tasks.registry import TASKS

GB = 1e9


def group_phase(g: Group) -> PhaseConfig:
    """The group's hyperparameters at its first sample (an Optuna group: the space's first
    values), as its cost was estimated."""
    probe = {**g.fixed, **(g.samples[0] if g.samples else {})}
    if not g.samples:
        probe.update({k: v.values[0] for k, v in g.space.items()})
    cls = PretrainConfig if g.kind == "pretrain" else PhaseConfig
    return cls.model_validate(probe)


@dataclass
class Row:
    """One (size, kind): its stages, the worst-case group's memory, the sum of their work."""

    model: str
    kind: str
    stages: int = 0
    gpu_hours: float = 0.0
    tokens: int = 0
    estimate: Estimate | None = None  # the sweep's recipe, on the group that needs the most
    suggestion: Estimate | None = None  # when the sweep's recipe does not fit
    suggested_hours: float = 0.0  # GPU-hours of these stages under the suggestion
    checkpoint_peak_gb: float = 0.0  # one running stage: two checkpoints during a rotation
    export_gb: float = 0.0  # model/ of every stage of the row, kept
    notes: list[str] = field(default_factory=list)


@dataclass
class ClusterPlan:
    gpu: GPU | None
    mfu: float
    price: float | None
    rows: list[Row]
    cpu_rows: list[Row]  # stages on CPUs only (tiny sizes): no GPU figures
    max_concurrent: int

    @property
    def gpu_hours(self) -> float:
        return sum(r.gpu_hours for r in self.rows)

    @property
    def export_gb(self) -> float:
        return sum(r.export_gb for r in self.rows + self.cpu_rows)

    @property
    def checkpoint_gb(self) -> float:
        """Checkpoints alive at once: the largest rotations of as many stages as may run."""
        peaks = sorted(
            (r.checkpoint_peak_gb for r in self.rows for _ in range(r.stages)), reverse=True
        )
        return sum(peaks[: self.max_concurrent])

    def to_json(self) -> dict:
        def est(e: Estimate | None) -> dict | None:
            if e is None:
                return None
            r = e.recipe
            return {
                "recipe": r.name,
                "workers": r.workers,
                "gpus_per_worker": r.gpus_per_worker,
                "placement": r.placement,
                "micro_batch_size": r.micro_batch,
                "gradient_accumulation_steps": e.accumulation,
                "gradient_checkpointing": r.checkpointing,
                "gpu_gib": round(e.gpu_gib, 2),
                "states_gib": round(e.states_gib, 2),
                "activations_gib": round(e.activations_gib, 2),
                "buffers_gib": round(e.buffers_gib, 2),
                "cpu_gib_per_node": round(e.cpu_gib_per_node, 2),
                "nodes": e.nodes,
                "fits": e.fits,
                "notes": list(e.notes),
            }

        return {
            "gpu": self.gpu.name if self.gpu else None,
            "mfu": self.mfu,
            "price_per_gpu_hour": self.price,
            "gpu_hours": round(self.gpu_hours, 1),
            "cost": round(self.gpu_hours * self.price, 2) if self.price is not None else None,
            "export_gb": round(self.export_gb, 1),
            "checkpoint_gb": round(self.checkpoint_gb, 1),
            "rows": [
                {
                    "model": r.model,
                    "kind": r.kind,
                    "stages": r.stages,
                    "tokens": r.tokens,
                    "gpu_hours": round(r.gpu_hours, 2),
                    "sweep_recipe": est(r.estimate),
                    "suggestion": est(r.suggestion),
                    "suggested_gpu_hours": round(r.suggested_hours, 2) if r.suggestion else None,
                    "checkpoint_peak_gb": round(r.checkpoint_peak_gb, 1),
                    "export_gb": round(r.export_gb, 1),
                    "notes": r.notes,
                }
                for r in self.rows + self.cpu_rows
            ],
        }


def shipped_gpu_recipes() -> dict[str, dict]:
    """The shipped bf16 recipes, the candidates `suggest` tries."""
    out = {}
    for name in available_configs():
        _, cfg = read_config(name)
        if (cfg.get("bf16") or {}).get("enabled"):
            out[name.removesuffix(".json")] = cfg
    return out


def group_work(g: Group) -> Work:
    hp = group_phase(g)
    return Work(get_size(g.base["model"]), hp.batch_size, hp.max_length, g.steps, g.choices)


def sweep_recipe(cfg: SweepConfig, g: Group) -> Recipe:
    """The recipe the sweep gives `g`'s stages (micro batch resolved as the stage resolves it)."""
    model = g.base["model"]
    res = cfg.resources_for(model)
    _, ds = read_config(res.deepspeed_config)
    hp = group_phase(g)
    names = g.base.get("mixture") or [g.base.get("task")]
    cap = None if whole_batch(TASKS[t] for t in names if t in TASKS) else res.micro_batch_size
    micro, _ = micro_and_accumulation(hp.batch_size, res.workers, cap)
    return Recipe(
        name=res.deepspeed_config.rsplit("/", 1)[-1].removesuffix(".json"),
        ds_config=ds,
        workers=res.workers,
        gpus_per_worker=res.gpus,
        placement=res.placement,
        micro_batch=micro,
        checkpointing=res.gradient_checkpointing,
    )


def cluster_plan(
    cfg: SweepConfig,
    graph: Graph,
    gpu: GPU | None,
    mfu: float = DEFAULT_MFU,
    price: float | None = None,
) -> ClusterPlan:
    """The sweep's plan on `gpu` (None: memory and GPU-hours at the A100's peak, no fit)."""
    rows: dict[tuple[str, str], Row] = {}
    cpu_rows: dict[tuple[str, str], Row] = {}
    candidates = shipped_gpu_recipes()
    worst: dict[tuple[str, str], tuple[float, Group]] = {}
    for g in graph.groups.values():
        model = g.base["model"]
        size = get_size(model)
        res = cfg.resources_for(model)
        n = group_stage_count(g, cfg.search.num_samples)
        key = (model, g.kind)
        hp = group_phase(g)
        exports = g.steps > 0 or g.kind == "pretrain"  # retrieval targets export nothing
        if res.gpus == 0:
            row = cpu_rows.setdefault(key, Row(model, g.kind))
            row.stages += n
            row.export_gb += n * size.params * 4 / GB if exports else 0.0  # fp32 on CPU
            continue
        row = rows.setdefault(key, Row(model, g.kind))
        row.stages += n
        if not g.steps:
            continue
        work = group_work(g)
        recipe = sweep_recipe(cfg, g)
        e = estimate(work, recipe, gpu, mfu)
        row.gpu_hours += n * e.gpu_hours
        row.tokens += n * work.tokens
        row.export_gb += n * size.params * EXPORT_BYTES_PER_PARAM / GB
        if hp.checkpoint_every and g.steps >= hp.checkpoint_every:
            peak = 2 * size.params * CHECKPOINT_BYTES_PER_PARAM / GB
            row.checkpoint_peak_gb = max(row.checkpoint_peak_gb, peak)
        if key not in worst or e.gpu_gib > worst[key][0]:
            worst[key] = (e.gpu_gib, g)
    for key, (_, g) in worst.items():
        row = rows[key]
        work, recipe = group_work(g), sweep_recipe(cfg, g)
        row.estimate = estimate(work, recipe, gpu, mfu)
        if gpu is not None:
            best = suggest(work, recipe, candidates, gpu, mfu)
            # shown when the sweep's recipe does not fit, or another that fits costs a tenth less
            if best is not None and (
                not row.estimate.fits or best.gpu_hours < 0.9 * row.estimate.gpu_hours
            ):
                row.suggestion = best
                row.suggested_hours = row.gpu_hours * best.gpu_hours / row.estimate.gpu_hours
            elif best is None and not row.estimate.fits:
                row.notes.append(f"no shipped recipe on up to 4 nodes of {gpu.name} fits")
        if recipe.zero_stage == 3 and recipe.offload != "none":
            row.notes.append(
                "optimizer offload with xscale's torch AdamW: the CPU step runs torch's Adam,"
                " not DeepSpeed's CPUAdam"
            )
    for key, row in cpu_rows.items():
        model = key[0]
        res = cfg.resources_for(model)
        _, ds = read_config(res.deepspeed_config)
        stage = int((ds.get("zero_optimization") or {}).get("stage", 0))
        if res.workers == 1 and stage in (1, 2):
            row.notes.append(
                f"ZeRO-{stage} on one CPU process runs as ZeRO-0 (nothing to shard): fp32 on CPU"
            )
    order = {k: i for i, k in enumerate(("pretrain", "cartography", "intermediate", "target"))}

    def sort(d):
        return sorted(d.values(), key=lambda r: (get_size(r.model).params, order[r.kind]))

    return ClusterPlan(gpu, mfu, price, sort(rows), sort(cpu_rows), cfg.max_concurrent_trials)


# What a stage writes beside its model export (logs, spec, tokenizer or corpus, results, its
# MLflow rows, Ray's records): the 32-stage demo wrote 25 MB, under 1 MB a stage; and room for
# the MLflow store's creation and migrations, which leave it half-built when they run out
STAGE_OVERHEAD = 2 * 2**20
DISK_FLOOR = 64 * 2**20


def disk_need(cfg: SweepConfig, graph: Graph) -> int:
    """Bytes the sweep's stages not complete yet will write to its output folder: their model
    exports (16-bit on GPUs, 32-bit on CPUs), the checkpoints of the stages running at once
    (as `plan` counts them), each stage's own records, and a floor for the MLflow store."""
    out = cfg.output_path
    need = DISK_FLOOR + cluster_plan(cfg, graph, None).checkpoint_gb * GB
    for p in planned(graph, out, cfg.search.num_samples):
        if p.spec is not None and stage_state(stage_dir(out, p.spec)) == "done":
            continue
        g = p.group
        model = g.base["model"]
        per_param = 4 if cfg.resources_for(model).gpus == 0 else EXPORT_BYTES_PER_PARAM
        exports = g.steps > 0 or g.kind == "pretrain"
        need += STAGE_OVERHEAD + (get_size(model).params * per_param if exports else 0)
    return int(need)


def applied(suggestion: Estimate) -> dict:
    """The sweep-file lines that would make a size use `suggestion`."""
    r = suggestion.recipe
    out = {"deepspeed_config": r.name, "workers": r.workers, "gpus": r.gpus_per_worker}
    if r.placement != "pack":
        out["placement"] = r.placement
    out["micro_batch_size"] = r.micro_batch
    if r.checkpointing:
        out["gradient_checkpointing"] = True
    return out


def hub_gaps(graph: Graph) -> dict[str, list[str]]:
    """Tasks the sweep reads from the hub (`data.root: hub`) that have no hub copy there: task ->
    the sizes whose stages need it (`xscale sweep` refuses them in preflight)."""
    gaps: dict[str, list[str]] = {}
    for g in graph.groups.values():
        roots = g.base.get("task_roots") or {}
        for t in g.base.get("mixture") or [g.base.get("task")]:
            if roots.get(t, g.base.get("data_root")) != xdata.HUB:
                continue
            if t in TASKS and TASKS[t].hub is None:
                sizes = gaps.setdefault(t, [])
                if g.base["model"] not in sizes:
                    sizes.append(g.base["model"])
    return gaps


__all__ = [
    "ClusterPlan",
    "Row",
    "applied",
    "cluster_plan",
    "group_stage_count",
    "hub_gaps",
    "plan_rows",
]


DEV_ROWS = 2_000  # English dev rows an intermediate stage evaluates (nominal)


def group_seconds(cfg: SweepConfig, g: Group, gpu: GPU, mfu: float = DEFAULT_MFU) -> float:
    """One stage of `g` on its recipe's GPUs of type `gpu`, wall seconds (catalog/cluster's
    `stage_seconds`: load, train, evaluate, checkpoints); nominal data sizes."""
    hp = group_phase(g)
    work, recipe = group_work(g), sweep_recipe(cfg, g)
    task = TASKS.get(g.base.get("task") or "")
    if g.kind == "target" and task is not None:
        langs = g.base.get("eval_languages") or task.languages
        rows = (
            task.test_rows
            if not hp.max_eval_examples
            else min(task.test_rows, hp.max_eval_examples)
        )
        eval_rows = len(langs) * rows
    else:
        eval_rows = DEV_ROWS if g.kind != "pretrain" else 0
    eval_tokens = eval_rows * hp.max_length * g.choices
    checkpoints = g.steps // hp.checkpoint_every if hp.checkpoint_every else 0
    return stage_seconds(work, recipe, gpu, mfu, eval_tokens, checkpoints)["total"]


# --------------------------------------------------------------------------- the stage table


def _memory(cfg: SweepConfig):
    """Per group: memory per GPU (model states + activations + buffers) and CPU per node with
    the sweep's recipe and resources; model states only for CPU stages (cached per group)."""
    cache: dict[str, str] = {}

    def for_group(g: Group) -> str:
        if g.key in cache:
            return cache[g.key]
        res = cfg.resources_for(g.base["model"])
        try:
            if res.gpus and g.steps:
                e = estimate(group_work(g), sweep_recipe(cfg, g))
                text = f"{e.gpu_gib:.2f} GiB/GPU, {e.cpu_gib_per_node:.2f} GiB CPU"
            else:
                _, ds = read_config(res.deepspeed_config)
                text = str(
                    estimate_memory(
                        get_size(g.base["model"]),
                        zero_stage(ds),
                        res.gpus * res.workers,
                        offload_mode(ds),
                    )
                )
        except Exception:  # noqa: BLE001 - memory estimates are informative only
            text = "?"
        cache[g.key] = text
        return text

    return for_group


def plan_rows(cfg: SweepConfig, graph: Graph) -> list[dict]:
    """One row per planned stage (`selection.planned`: the rule status and the sweep count
    by); a stage not known yet has no key and says what it waits on."""
    memory = _memory(cfg)
    rows = []
    for p in planned(graph, cfg.output_path, cfg.search.num_samples):
        g = p.group
        row = {
            "kind": g.kind,
            "label": g.label,
            "group": g.key,
            "model": g.base["model"],
            "resources": g.resources.to_json(),
            "cost": g.cost,
            "memory": memory(g),
        }
        if p.spec is None:
            rows.append({**row, "key": None, "state": p.why})
            continue
        state = stage_state(stage_dir(cfg.output_path, p.spec))
        links = {"parent": p.spec.parent, "weights": p.spec.weights_stage}  # None: pretrained
        rows.append({**row, "key": p.spec.key, "state": state, **links})
    return rows
