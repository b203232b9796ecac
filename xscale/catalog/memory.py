"""Memory estimates of model states (params, grads, optimizer states) per GPU and per node, for
`xscale plan`: ZeRO stage and offload counted as DeepSpeed's estimators count them, no DeepSpeed."""

from __future__ import annotations

from dataclasses import dataclass

from xscale.catalog.recipes import offload_mode, read_config, zero_stage
from xscale.catalog.sizes import ModelSize, get_size
from xscale.errors import XScaleError

GIB = 2**30


@dataclass(frozen=True)
class MemoryEstimate:
    """Model-state memory (params, grads, optimizer states; no activations) for one stage."""

    per_gpu_gib: float
    per_cpu_gib: float  # per node

    def __str__(self) -> str:
        return f"{self.per_gpu_gib:.2f} GiB/GPU, {self.per_cpu_gib:.2f} GiB CPU"


def estimate_memory_bytes(
    total_params: int,
    largest_layer_params: int,
    zero_stage: int,
    num_gpus: int,
    offload: bool | str = False,
    num_nodes: int = 1,
    buffer_factor: float = 1.5,
) -> tuple[int, int]:
    """(per-CPU bytes, per-GPU bytes) of model states with mixed-precision Adam.

    Stages 2 and 3 are DeepSpeed 0.19's formulas (`estimate_zero2_model_states_mem_needs`,
    `estimate_zero3_model_states_mem_needs` with zero_init=True), `num_gpus` per node. Stages 0
    and 1 (no estimator in DeepSpeed) follow the ZeRO paper: 2+2+12 bytes/param, with the 12
    bytes of fp32 master weights and Adam states sharded in stage 1. `offload`: False/"none",
    "optimizer", or True/"optimizer+param" (stage 3; stage 2 offloads only the optimizer).
    `num_gpus=0` means fp32 training on CPU: 16 bytes/param (weights, grads, 2 Adam states).
    """
    p = total_params
    if zero_stage not in (0, 1, 2, 3):
        raise XScaleError(f"ZeRO stage must be 0-3 (got {zero_stage!r})")
    mode = {False: "none", True: "optimizer+param"}.get(offload, offload)
    if mode not in ("none", "optimizer", "optimizer+param"):
        raise XScaleError(f"offload must be none, optimizer or optimizer+param (got {offload!r})")
    if num_gpus == 0:
        return int(16 * p), 0
    total_gpus = num_gpus * num_nodes
    if zero_stage in (0, 1):
        if mode != "none" and zero_stage == 0:
            raise XScaleError("ZeRO stage 0 cannot offload; use stage 1-3")
        if mode != "none":  # stage-1 offload: fp16 params and grads stay, the rest on CPU
            return int(p * max(4 * total_gpus, 16) * buffer_factor), 4 * p
        sharded = 12 * p if zero_stage == 0 else int(12 * p / total_gpus)
        return int(p * 4 * num_gpus * buffer_factor), 4 * p + sharded
    if zero_stage == 2:
        if mode != "none":
            return int(p * max(4 * total_gpus, 16) * buffer_factor), 2 * p
        return int(p * 4 * num_gpus * buffer_factor), 2 * p + int(18 * p / total_gpus)
    largest = 4 * largest_layer_params
    gpus_factor = 1 / num_nodes
    if mode == "optimizer+param":
        return int(p * 18 * gpus_factor * buffer_factor), largest
    if mode == "optimizer":
        return int(p * 16 * gpus_factor * buffer_factor), largest + int(2 * p / total_gpus)
    cpu = int(largest_layer_params * 4 * num_gpus * buffer_factor)
    return cpu, largest + int(18 * p / total_gpus)


def estimate_memory(
    size: ModelSize | str,
    zero_stage: int,
    num_gpus: int,
    offload: bool | str = False,
    num_nodes: int = 1,
) -> MemoryEstimate:
    """Per-GPU (and per-node CPU) GiB of model states for `size` under a ZeRO setup."""
    if isinstance(size, str):
        size = get_size(size)
    cpu, gpu = estimate_memory_bytes(
        size.params, size.largest_layer_params, zero_stage, num_gpus, offload, num_nodes
    )
    return MemoryEstimate(per_gpu_gib=gpu / GIB, per_cpu_gib=cpu / GIB)


def estimate_size_memory(size: ModelSize | str) -> MemoryEstimate:
    """`estimate_memory` for a size with its own recipe and resources from the size table."""
    if isinstance(size, str):
        size = get_size(size)
    _, cfg = read_config(size.deepspeed_config)
    return estimate_memory(size, zero_stage(cfg), size.total_gpus, offload_mode(cfg))
