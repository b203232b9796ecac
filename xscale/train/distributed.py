"""The process group DeepSpeed needs: join a launcher's (torchrun, deepspeed, Ray Train) or make
one for a lone process; rank and world size; a clean shutdown."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

from xscale.catalog.recipes import skip_shm_comm_build
from xscale.runtime import cpu_accelerator_if_no_gpu


def device_type() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def init_distributed() -> None:
    """Join (or, for a single process, create) the process group DeepSpeed needs.

    Launchers (torchrun, deepspeed, Ray Train) set MASTER_ADDR, RANK and WORLD_SIZE, and the
    group rendezvous there. A lone process is rank 0 of 1 with an in-process store: torch's
    TCP rendezvous store would listen on every network interface for a group of one (DeepSpeed
    still reads RANK, WORLD_SIZE and LOCAL_RANK, so they are set; without them it goes looking
    for mpi4py).
    """

    cpu_accelerator_if_no_gpu()
    import deepspeed

    skip_shm_comm_build()  # a ~30 s JIT build of an op ZeRO training never uses
    backend = "nccl" if device_type() == "cuda" else "gloo"
    if not dist.is_initialized():  # else a launcher (e.g. Ray Train) made the group already
        lone = "MASTER_ADDR" not in os.environ and os.environ.get("WORLD_SIZE", "1") == "1"
        os.environ.setdefault("RANK", "0")
        os.environ.setdefault("WORLD_SIZE", "1")
        os.environ.setdefault("LOCAL_RANK", "0")
        if lone:
            dist.init_process_group(backend, store=dist.HashStore(), rank=0, world_size=1)
    deepspeed.init_distributed(dist_backend=backend, verbose=False)


def shutdown_distributed() -> None:
    """Barrier then destroy: without it 1 run in 4 aborted at exit (STACK.md)."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def rank_world() -> tuple[int, int]:
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1
