"""The process group DeepSpeed needs: join a launcher's (torchrun, deepspeed, Ray Train) or make
one for a lone process; rank and world size; a clean shutdown."""

from __future__ import annotations

import os
import socket

import torch
import torch.distributed as dist

from xscale.catalog.recipes import skip_shm_comm_build
from xscale.runtime import cpu_accelerator_if_no_gpu


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def device_type() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def init_distributed() -> None:
    """Join (or, for a single process, create) the process group DeepSpeed needs.

    Launchers (torchrun, deepspeed, Ray Train) set these variables; a lone process gets
    rank 0 of 1 on a free loopback port. Without them DeepSpeed goes looking for mpi4py.
    """

    cpu_accelerator_if_no_gpu()
    import deepspeed

    skip_shm_comm_build()  # a ~30 s JIT build of an op ZeRO training never uses
    if not dist.is_initialized():  # else a launcher (e.g. Ray Train) made the group already
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", str(_free_port()))
        os.environ.setdefault("RANK", "0")
        os.environ.setdefault("WORLD_SIZE", "1")
        os.environ.setdefault("LOCAL_RANK", "0")
    deepspeed.init_distributed(
        dist_backend="nccl" if device_type() == "cuda" else "gloo", verbose=False
    )


def shutdown_distributed() -> None:
    """Barrier then destroy: without it 1 run in 4 aborted at exit (STACK.md)."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def rank_world() -> tuple[int, int]:
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1
