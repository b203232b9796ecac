"""Helpers for tests on the real XLM-R architectures with random weights (no hub here): a
local from_pretrained folder (weights + a tokenizer trained on the fixtures' text) and a
world of N processes on this machine (gloo), each running a script."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def random_model_dir(size: str, out: Path, dtype: str = "float32") -> Path:
    """`size`'s encoder with random weights (seed 0) and a fixture tokenizer, saved to `out`."""
    code = f"""
import torch
from pathlib import Path
from transformers import AutoModel
from xscale.catalog.sizes import model_config
from xscale.stage.tokenizer import train_unigram_tokenizer
torch.manual_seed(0)
model = AutoModel.from_config(model_config({size!r}), add_pooling_layer=False)
model.to(getattr(torch, {dtype!r})).save_pretrained({str(out)!r})
files = sorted(Path({str(REPO / "xscale/fixtures/data/pretrain")!r}).glob("*.txt"))
train_unigram_tokenizer(files, 1000, Path({str(out)!r}))
"""
    subprocess.run([sys.executable, "-c", code], check=True, timeout=600, cwd=REPO)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_world(code: str, world: int, timeout: float = 600) -> list[dict]:
    """Run `code` in `world` processes joined by a gloo group; each prints one JSON line last.
    Returns the parsed lines by rank."""
    port = free_port()
    procs = []
    for rank in range(world):
        env = {
            **os.environ,
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": str(world),
        }
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", code],
                env=env,
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    results = []
    try:
        for rank, p in enumerate(procs):
            out, err = p.communicate(timeout=timeout)
            assert p.returncode == 0, f"rank {rank}: {err[-3000:]}"
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    return results
