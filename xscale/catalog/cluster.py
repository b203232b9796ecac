"""What one stage needs from a GPU cluster, by the numbers: memory per GPU and per node, GPU-hours,
disk; which recipe fits a GPU type when the sweep's does not. Pure arithmetic, no DeepSpeed.

Memory per GPU = model states + activations + communication buffers + a fixed allowance:

- model states: DeepSpeed 0.19's own estimators (`catalog/memory.py`), with the loading xscale
  actually does: ZeRO-3 stages build their encoder partitioned (`train/model.partitioned_init`,
  DeepSpeed's `zero_init=True` figures); ZeRO 0-2 stages load a whole copy per process;
- activations (`activation_bytes`) per micro batch of `micro_batch x choices` sequences of
  `max_length` tokens, 16-bit, with memory-efficient attention (SDPA on a GPU: no s x s scores
  are kept) and, with gradient checkpointing, only each layer's input plus one layer recomputed.
  The coefficients are counted from what autograd saves for backward in XLM-R's layers and
  checked against torch's saved tensors on CPU (tests/test_cluster_plan.py);
- communication buffers of the recipe: ZeRO-1/2 reduce + all-gather buckets, ZeRO-3 the reduce
  bucket and the prefetch bucket, at 2 bytes per element, 4.5x with `overlap_comm` (DeepSpeed's
  and transformers' DeepSpeed guides: "overlap_comm uses 4.5x the allgather_bucket_size and
  reduce_bucket_size values");
- `FIXED_GIB` for the CUDA context and NCCL (an allowance, stated); a stage fits a GPU when all
  this is at most `HEADROOM` (90%) of its memory, the rest for allocator fragmentation.

GPU-hours = 6 x non-embedding parameters x training tokens / achieved FLOP/s (8x with gradient
checkpointing, which recomputes the forward), achieved = the GPU's dense 16-bit peak x `mfu`
(default 0.4, stated and overridable), times the stated slow-downs of offload and ZeRO-3 in
`SLOWDOWN`. Evaluation is not counted (a forward pass per test example: a few per cent of a
target stage).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from xscale.catalog.memory import GIB, estimate_memory_bytes
from xscale.catalog.sizes import ModelSize
from xscale.errors import XScaleError


@dataclass(frozen=True)
class GPU:
    """One GPU type: memory as nvidia-smi reports it, whether it computes in bf16, and its dense
    (no sparsity) 16-bit tensor peak from the vendor's data sheet."""

    name: str
    memory_gib: float
    bf16: bool
    peak_tflops: float  # dense bf16 (fp16 where there is no bf16), 1e12 FLOP/s
    gpus_per_node: int
    note: str


GPUS: dict[str, GPU] = {
    g.name: g
    for g in (
        GPU("l4-24gb", 22.5, True, 121.0, 8, "NVIDIA L4 24 GB (g6 instances)"),
        GPU("a10g-24gb", 22.5, True, 70.0, 8, "NVIDIA A10G 24 GB (g5; cluster.yaml's gpu_1x)"),
        GPU("v100-32gb", 32.0, False, 125.0, 8, "NVIDIA V100 SXM2 32 GB (no bf16)"),
        GPU("a100-40gb", 40.0, True, 312.0, 8, "NVIDIA A100 SXM 40 GB (p4d; cluster.yaml)"),
        GPU("a100-80gb", 80.0, True, 312.0, 8, "NVIDIA A100 SXM 80 GB (p4de)"),
        GPU("h100-80gb", 79.6, True, 989.0, 8, "NVIDIA H100 SXM 80 GB (p5)"),
        GPU("h200-141gb", 140.4, True, 989.0, 8, "NVIDIA H200 SXM 141 GB (p5e)"),
    )
}

FIXED_GIB = 1.5  # CUDA context + NCCL, per GPU (an allowance)
HEADROOM = 0.9  # a stage fits when it needs at most this share of the GPU's memory: the
# caching allocator's fragmentation and the peaks between the terms above need the rest
DEFAULT_MFU = 0.4  # achieved share of the dense 16-bit peak, assumed (override: --mfu)
# Slow-downs assumed for the recipes beyond their FLOPs (stated in the plan's output):
SLOWDOWN = {
    "optimizer": 1.3,  # optimizer states and step on the CPU (ZeRO-Offload, CPU Adam)
    "optimizer+param": 2.0,  # parameters streamed from CPU memory every forward and backward
    "zero3": 1.1,  # parameter all-gathers in every forward and backward
}
CHECKPOINT_BYTES_PER_PARAM = 14  # 16-bit module weights (2) + fp32 master weights and Adam (12)
EXPORT_BYTES_PER_PARAM = 2  # model/ in 16 bits (bf16 recipes; fp32 on CPU: 4)


def get_gpu(name: str) -> GPU:
    try:
        return GPUS[name]
    except KeyError:
        raise XScaleError(f"unknown GPU type {name!r}; known: {', '.join(GPUS)}") from None


# --------------------------------------------------------------------------- activations


def activation_bytes(
    size: ModelSize, micro_batch: int, seq: int, checkpointing: bool, scores_kept: bool = False
) -> int:
    """Bytes of 16-bit activations kept for backward, per GPU, for one micro batch of
    `micro_batch` sequences of `seq` tokens (a multiple-choice batch passes batch x choices).

    Per layer, in units of s*b*h bytes: the attention block keeps its input (2), Q, K and V
    (6), the attention output and its projection's input (4), a dropout mask (1) and the
    residual sum before LayerNorm (2); the feed-forward block its input (2), the GELU's input
    and output at 4h (16), a dropout mask (1) and the LayerNorm input (2): 36. Eager attention
    (`scores_kept`) also keeps softmax output, dropout mask and dropout output per score:
    6 x a*s*s*b bytes. The embeddings keep about 6 s*b*h. With gradient checkpointing only
    each layer's input is kept (2 s*b*h) and one layer is recomputed at a time in backward."""
    s, b, h = seq, micro_batch, size.hidden_size
    sbh = s * b * h
    layer = 36 * sbh + (6 * size.num_heads * s * s * b if scores_kept else 0)
    embeddings = 6 * sbh
    if checkpointing:
        return size.num_layers * 2 * sbh + layer + embeddings
    return size.num_layers * layer + embeddings


def comm_buffer_bytes(ds_config: dict) -> int:
    """The recipe's communication buffers per GPU (16-bit elements)."""
    zero = ds_config.get("zero_optimization") or {}
    stage = int(zero.get("stage", 0))
    factor = 4.5 if zero.get("overlap_comm", stage == 3) else 1.0
    if stage in (1, 2):
        elements = float(zero.get("reduce_bucket_size", 5e8)) + float(
            zero.get("allgather_bucket_size", 5e8)
        )
        return int(elements * 2 * factor)
    if stage == 3:
        reduce = float(zero.get("reduce_bucket_size", 5e8)) * 2 * factor
        prefetch = float(zero.get("stage3_prefetch_bucket_size", 5e7)) * 2
        return int(reduce + prefetch)
    return 0


# --------------------------------------------------------------------------- one recipe


@dataclass(frozen=True)
class Recipe:
    """How one stage runs: a DeepSpeed recipe (its name and parsed JSON), workers and their
    placement, the micro batch per worker, gradient checkpointing."""

    name: str
    ds_config: dict = field(repr=False, compare=False)
    workers: int
    gpus_per_worker: int
    placement: str  # "pack" (one node) or "spread" (one worker per node)
    micro_batch: int
    checkpointing: bool

    @property
    def zero_stage(self) -> int:
        return int((self.ds_config.get("zero_optimization") or {}).get("stage", 0))

    @property
    def offload(self) -> str:
        zero = self.ds_config.get("zero_optimization") or {}

        def on(key: str) -> bool:
            return (zero.get(key) or {}).get("device", "none") in ("cpu", "nvme")

        if on("offload_optimizer") and on("offload_param"):
            return "optimizer+param"
        return "optimizer" if on("offload_optimizer") else "none"

    @property
    def gpus(self) -> int:
        return self.workers * self.gpus_per_worker

    def nodes(self, gpus_per_node: int) -> tuple[int, int]:
        """(nodes, GPUs on each) the stage's workers take."""
        if self.gpus > gpus_per_node:  # whole nodes (spread: Ray fills them as they come)
            return math.ceil(self.gpus / gpus_per_node), gpus_per_node
        if self.placement == "spread":  # one worker a node where the nodes are free
            return self.workers, self.gpus_per_worker
        return 1, self.gpus

    def describe(self) -> str:
        text = f"{self.name} x{self.workers}"
        if self.placement == "spread":
            text += " spread"
        text += f", micro {self.micro_batch}"
        return text + (", checkpointing" if self.checkpointing else "")


@dataclass(frozen=True)
class Work:
    """What one stage computes: its size, sequences per example (multiple choice), the global
    batch, the sequence length and the optimizer steps."""

    size: ModelSize
    global_batch: int
    seq: int
    steps: int
    choices: int = 1

    @property
    def tokens(self) -> int:
        return self.steps * self.global_batch * self.seq * self.choices


def micro_and_accumulation(global_batch: int, world: int, micro_cap: int | None) -> tuple[int, int]:
    """(micro batch per worker, gradient accumulation steps) for a global batch over `world`
    workers: each worker takes global // world examples a step (at least 1), in the largest
    micro batch up to `micro_cap` that divides it."""
    per_rank = max(1, global_batch // world)
    cap = per_rank if micro_cap is None else max(1, min(micro_cap, per_rank))
    micro = next(m for m in range(cap, 0, -1) if per_rank % m == 0)
    return micro, per_rank // micro


@dataclass(frozen=True)
class Estimate:
    recipe: Recipe
    gpu_gib: float  # per GPU: states + activations + buffers + fixed
    states_gib: float
    activations_gib: float
    buffers_gib: float
    cpu_gib_per_node: float
    nodes: int
    gpu_hours: float
    fits: bool | None  # None: no GPU type given
    accumulation: int
    notes: tuple[str, ...] = ()


def estimate(
    work: Work, recipe: Recipe, gpu: GPU | None = None, mfu: float = DEFAULT_MFU
) -> Estimate:
    """Memory, time and fit of `work` under `recipe` (on `gpu` when given)."""
    per_node = gpu.gpus_per_node if gpu else max(recipe.gpus, 1)
    nodes, gpus_here = recipe.nodes(per_node)
    cpu, states = estimate_memory_bytes(
        work.size.params,
        work.size.largest_layer_params,
        recipe.zero_stage,
        gpus_here,
        recipe.offload,
        num_nodes=nodes,
    )
    acts = activation_bytes(
        work.size, recipe.micro_batch * work.choices, work.seq, recipe.checkpointing
    )
    buffers = comm_buffer_bytes(recipe.ds_config)
    total = states + acts + buffers + FIXED_GIB * GIB
    flops = (8 if recipe.checkpointing else 6) * work.size.non_embedding_params * work.tokens
    slow = SLOWDOWN.get(recipe.offload, 1.0) * (
        SLOWDOWN["zero3"] if recipe.zero_stage == 3 else 1.0
    )
    peak = (gpu.peak_tflops if gpu else GPUS["a100-40gb"].peak_tflops) * 1e12
    hours = flops / (peak * mfu) / 3600 * slow
    _, accum = micro_and_accumulation(work.global_batch, recipe.workers, recipe.micro_batch)
    notes = []
    fits = None
    if gpu is not None:
        fits = total <= HEADROOM * gpu.memory_gib * GIB and recipe.gpus_per_worker >= 1
        dtype = _dtype(recipe.ds_config)
        if dtype == "bf16" and not gpu.bf16:
            fits = False
            notes.append(f"{gpu.name} has no bf16: needs an fp16 recipe")
    return Estimate(
        recipe=recipe,
        gpu_gib=total / GIB,
        states_gib=states / GIB,
        activations_gib=acts / GIB,
        buffers_gib=(buffers + FIXED_GIB * GIB) / GIB,
        cpu_gib_per_node=cpu / GIB,
        nodes=nodes,
        gpu_hours=hours,
        fits=fits,
        accumulation=accum,
        notes=tuple(notes),
    )


def _dtype(ds_config: dict) -> str:
    for key in ("bf16", "bfloat16"):
        if (ds_config.get(key) or {}).get("enabled"):
            return "bf16"
    return "fp16" if (ds_config.get("fp16") or {}).get("enabled") else "fp32"


# --------------------------------------------------------------------------- suggestions


def candidates(base: Recipe, recipes: dict[str, dict], gpu: GPU, max_nodes: int = 4):
    """Recipes to try for a stage on `gpu`: each shipped bf16 recipe, 1 to `max_nodes` nodes of
    workers (1 GPU each), every micro batch that divides a worker's share of the global batch,
    with and without gradient checkpointing."""
    counts = [1, 2, 4, 8, 16, 32, 64]
    counts = [n for n in counts if n <= gpu.gpus_per_node * max_nodes]
    for name, cfg in recipes.items():
        for workers in counts:
            placement = "pack" if workers <= gpu.gpus_per_node else "spread"
            for ckpt in (False, True):
                yield replace(
                    base,
                    name=name,
                    ds_config=cfg,
                    workers=workers,
                    gpus_per_worker=1,
                    placement=placement,
                    micro_batch=0,  # filled per work by `suggest`
                    checkpointing=ckpt,
                )


def suggest(
    work: Work,
    base: Recipe,
    recipes: dict[str, dict],
    gpu: GPU,
    mfu: float = DEFAULT_MFU,
) -> Estimate | None:
    """The cheapest recipe (GPU-hours, then fewest GPUs, then the largest micro batch) under
    which `work` fits `gpu`; None when none of the candidates fits."""
    best = None
    for r in candidates(base, recipes, gpu):
        per_rank = max(1, work.global_batch // r.workers)
        if work.global_batch % r.workers:
            continue
        for micro in sorted({m for m in range(1, per_rank + 1) if per_rank % m == 0}, reverse=True):
            e = estimate(work, replace(r, micro_batch=micro), gpu, mfu)
            if not e.fits:
                continue
            key = (round(e.gpu_hours, 6), r.gpus, -micro)
            if best is None or key < best[0]:
                best = (key, e)
            break  # the largest micro batch that fits this recipe
    return best[1] if best else None


# --------------------------------------------------------------------------- stage time

LOAD_GB_PER_S = 1.0  # reading 16-bit weights from the shared file system, per stage (assumed)
CHECKPOINT_GB_PER_S = 1.0  # writing a checkpoint to it (assumed)


def stage_seconds(
    work: Work,
    recipe: Recipe,
    gpu: GPU,
    mfu: float = DEFAULT_MFU,
    eval_tokens: int = 0,
    checkpoints: int = 0,
) -> dict[str, float]:
    """Wall seconds of one stage on `recipe.gpus` GPUs of type `gpu`: loading its weights,
    training (`estimate`'s GPU-hours over its GPUs), evaluating `eval_tokens` tokens (a forward
    pass, 2 x non-embedding parameters per token, sharded over the ranks) and writing
    `checkpoints` checkpoints. For the scheduling simulation (bench/cluster_sim.py)."""
    size = work.size
    gpus = max(1, recipe.gpus)
    achieved = gpu.peak_tflops * 1e12 * mfu
    terms = {
        "load": size.params * EXPORT_BYTES_PER_PARAM / 1e9 / LOAD_GB_PER_S,
        "train": estimate(work, recipe, gpu, mfu).gpu_hours * 3600 / gpus,
        "evaluate": 2 * size.non_embedding_params * eval_tokens / achieved / gpus,
        "checkpoint": checkpoints
        * size.params
        * CHECKPOINT_BYTES_PER_PARAM
        / 1e9
        / CHECKPOINT_GB_PER_S,
    }
    terms["total"] = sum(terms.values())
    return terms
