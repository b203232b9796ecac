"""One training step at a fixed batch, by attention and dropout implementation.

    .venv/bin/python bench/step_probe.py [--size tiny-l] [--threads 2] [--length 64]
        [--modes sdpa,eager,xscale,nodrop] [--steps 10]

The model a stage trains (the size's XLMRobertaConfig, a classification head on <s>, a
6,000-piece vocabulary), 32 random rows of `--length` tokens (every other row half padding),
fused AdamW, each mode in a fresh process:

    sdpa     transformers' default: SDPA attention, torch's nn.Dropout
    eager    eager attention, torch's nn.Dropout
    xscale   what `build_engine` uses on CPU: `xscale.train.cpu_speed.for_cpu` (eager
             attention, masks drawn one 64-bit draw per four elements)
    nodrop   eager attention with every dropout probability set to 0: the floor

It prints one JSON object with ms per step (mean over `--steps` after 3 untimed steps) and the
1-minute load average before and after; it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def child(args) -> float:
    import torch
    from transformers import XLMRobertaModel

    from xscale.catalog.sizes import get_size, model_config
    from xscale.stage.finetune import MultiTaskModel
    from xscale.tasks.classification import ClassificationFormat, ClassificationHead
    from xscale.train import cpu_speed

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = model_config(get_size(args.size), vocab_size=6000)
    enc = XLMRobertaModel(cfg, add_pooling_layer=False)
    fmt = ClassificationFormat()
    model = MultiTaskModel(enc, {"xnli": ClassificationHead(cfg.hidden_size, 3)}, {"xnli": fmt})
    if args.mode == "xscale":
        cpu_speed.for_cpu(model)
    elif args.mode in ("eager", "nodrop"):
        enc.set_attn_implementation("eager")
    if args.mode == "nodrop":
        for m in model.modules():
            if isinstance(m, torch.nn.Dropout):
                m.p = 0.0
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    n = args.length
    ids = torch.randint(5, 6000, (32, n))
    mask = torch.ones(32, n, dtype=torch.long)
    mask[::2, n // 2 :] = 0
    batch = {"input_ids": ids, "attention_mask": mask, "labels": torch.randint(0, 3, (32,))}
    batch["task"] = "xnli"

    def step():
        loss, _ = model(batch)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(3):
        step()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    return (time.perf_counter() - t0) / args.steps * 1000


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", default="tiny-l")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--length", type=int, default=64)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--modes", default="sdpa,eager,xscale,nodrop")
    p.add_argument("--mode", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.mode:
        print(json.dumps({"ms_per_step": child(args)}))
        return
    load0 = os.getloadavg()[0]
    results = {}
    for mode in [m for m in args.modes.split(",") if m]:
        cmd = [sys.executable, __file__, "--mode", mode, "--size", args.size]
        cmd += ["--threads", str(args.threads), "--length", str(args.length)]
        cmd += ["--steps", str(args.steps)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode:
            results[mode] = {"error": proc.stderr.strip().splitlines()[-1:]}
        else:
            results[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
    out = {
        "size": args.size,
        "threads": args.threads,
        "batch": [32, args.length],
        "steps": args.steps,
        "modes": results,
        "load_avg_before_after": [load0, os.getloadavg()[0]],
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
