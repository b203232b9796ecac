"""Training throughput: xscale's engine path against what a user would otherwise run.

    .venv/bin/python bench/train_throughput.py [--size tiny-m] [--steps 100] [--threads 2]
        [--modes xscale,xscale_zero0,xscale_random,trainer,trainer_grouped,plain]

Same model architecture (the size's XLMRobertaConfig; a classification head on <s>), same
tokenizer (a 6,000-piece Unigram trained here on the data's text, as examples/real_xnli.yaml
does), same data (every row of ../shared/data's XNLI English file, or the fixtures' XNLI
training rows without it), batch 32, max_length 128, the same number of optimizer steps, the
same thread count. Each mode runs in a fresh process:

    xscale           xscale's path as a stage runs it: `build_engine` (DeepSpeed, the size's
                     recipe resolved for one CPU process) + `train` with length-grouped batches
    xscale_random    the same, batches in plain random order (group_by_length: false)
    xscale_zero2     the same as xscale_random, on `cpu_zero2.json` as it was before (ZeRO-2
                     machinery on a world of one)
    xscale_zero0     xscale_random with the recipe forced to ZeRO-0
    trainer          transformers' Trainer, random sampling, dynamic padding (its default)
    trainer_grouped  Trainer with `group_by_length=True`
    plain            a plain PyTorch loop: AdamW, random batches, dynamic padding

It prints one JSON object: per mode examples/s and s/step over the timed steps (the first
`--warmup` steps are not timed), the share of computed tokens that are real (not padding),
and achieved GFLOP/s = 6 x non-embedding parameters x real tokens / second; beside them the
fp32 matmul peak measured in the same run (2048 x 2048, same threads), ratios against
Trainer, and the 1-minute load average before and after. It asserts nothing.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
SHARED_XNLI = REPO.parent / "shared" / "data" / "xtreme" / "xnli"
MODES = (
    "xscale",
    "xscale_random",
    "xscale_zero2",
    "xscale_zero0",
    "trainer",
    "trainer_grouped",
    "plain",
)
LABELS = ("contradiction", "entailment", "neutral")


# --------------------------------------------------------------------------- set-up (parent)


def read_rows(lang: str) -> list[tuple[str, str, str]]:
    """XNLI (premise, hypothesis, label) rows: the real English file, else the fixtures'."""
    path = SHARED_XNLI / f"dev-{lang}.tsv"
    if not path.is_file():
        from xscale.data import FIXTURES_DIR

        path = FIXTURES_DIR / "xtreme" / "xnli" / f"train-{lang}.tsv"
    with open(path, encoding="utf-8", newline="") as f:
        return [(r[0], r[1], r[2]) for r in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)]


def prepare(work: Path, max_length: int) -> dict:
    """Train the tokenizer, tokenize the data once; every mode reads the same features."""
    from transformers import AutoTokenizer

    from xscale.stage.tokenizer import train_unigram_tokenizer

    text = work / "text"
    text.mkdir(parents=True, exist_ok=True)
    files = []
    for lang in ("en", "de", "es", "fr"):
        rows = read_rows(lang)
        path = text / f"{lang}.txt"
        path.write_text("".join(f"{a}\n{b}\n" for a, b, _ in rows), encoding="utf-8")
        files.append(path)
    train_unigram_tokenizer(files, 6000, work / "tokenizer")
    tok = AutoTokenizer.from_pretrained(str(work / "tokenizer"))
    rows = read_rows("en")
    enc = tok(
        [a for a, _, _ in rows], [b for _, b, _ in rows], truncation=True, max_length=max_length
    )
    feats = [
        {"input_ids": ids, "label": LABELS.index(label)}
        for ids, (_, _, label) in zip(enc["input_ids"], rows)
    ]
    (work / "features.json").write_text(json.dumps(feats))
    return {"rows": len(feats), "source": str(SHARED_XNLI if SHARED_XNLI.is_dir() else "fixtures")}


# --------------------------------------------------------------------------- one mode (child)


def build_config(size_name: str, vocab: int):
    from xscale.catalog.sizes import get_size, model_config

    return model_config(get_size(size_name), vocab_size=vocab)


def non_embedding_params(model) -> int:
    return sum(
        p.numel()
        for n, p in model.named_parameters()
        if "embeddings" not in n and "lm_head" not in n and "pooler" not in n
    )


class Timer:
    """Wall time from the end of step `warmup` to the end of the last step, and real/computed
    tokens of the timed steps."""

    def __init__(self, warmup: int):
        self.warmup, self.t0, self.t1 = warmup, None, None
        self.real = self.computed = self.examples = 0

    def batch(self, step: int, mask) -> None:
        if step >= self.warmup:
            self.real += int(mask.sum())
            self.computed += mask.numel()
            self.examples += mask.shape[0]

    def step_done(self, done: int) -> None:
        if done == self.warmup:
            self.t0 = time.perf_counter()
        self.t1 = time.perf_counter()


def run_xscale(
    args, feats, tok, timer: Timer, grouped: bool, recipe: str | None, stage: int | None
):
    import torch
    from transformers import XLMRobertaModel

    from xscale.catalog.recipes import load_ds_config
    from xscale.catalog.sizes import get_size
    from xscale.stage.finetune import MultiTaskModel
    from xscale.sweep.phases import PhaseConfig
    from xscale.tasks.classification import ClassificationFormat, ClassificationHead
    from xscale.train.distributed import init_distributed
    from xscale.train.loop import build_engine, single_task_batches, train

    init_distributed()
    torch.manual_seed(0)
    config = build_config(args.size, len(tok))
    encoder = XLMRobertaModel(config, add_pooling_layer=False)
    fmt = ClassificationFormat()
    model = MultiTaskModel(
        encoder, {"xnli": ClassificationHead(config.hidden_size, 3)}, {"xnli": fmt}
    )
    hp = PhaseConfig(
        learning_rate=5e-4, batch_size=args.batch, max_steps=args.steps, epochs=100,
        max_length=args.max_length, log_every=args.steps, group_by_length=grouped,
    )  # fmt: skip
    ds = load_ds_config(recipe or get_size(args.size).deepspeed_config, micro_batch_size=args.batch)
    if stage is not None:
        ds["zero_optimization"] = {"stage": stage}
    engine = build_engine(model, hp, args.steps, ds)

    def collate(batch_feats, step):
        batch = fmt.collate(batch_feats, tok.pad_token_id)
        batch["task"] = "xnli"
        timer.batch(step, batch["attention_mask"])
        return batch

    get_batch, total = single_task_batches(feats, collate, hp, seed=0)
    train(
        engine, total, get_batch, hp, None, lambda *a: None, lambda done, _: timer.step_done(done)
    )
    return {
        "non_embedding_params": non_embedding_params(encoder),
        "zero_stage": ds["zero_optimization"]["stage"],
    }


def run_trainer(args, feats, tok, timer: Timer, grouped: bool):
    import torch
    from datasets import Dataset
    from transformers import (
        DataCollatorWithPadding,
        Trainer,
        TrainerCallback,
        TrainingArguments,
        XLMRobertaForSequenceClassification,
    )

    torch.manual_seed(0)
    config = build_config(args.size, len(tok))
    config.num_labels = 3
    model = XLMRobertaForSequenceClassification(config)
    data = Dataset.from_list([{"input_ids": f["input_ids"], "labels": f["label"]} for f in feats])
    pad = DataCollatorWithPadding(tok)

    def collate(rows):
        batch = pad(rows)
        timer.batch(timer_state["step"], batch["attention_mask"])
        timer_state["step"] += 1
        return batch

    timer_state = {"step": 0}

    class Clock(TrainerCallback):
        def on_step_end(self, targs, state, control, **kw):
            timer.step_done(state.global_step)

    targs = TrainingArguments(
        output_dir=str(Path(args.work) / "trainer"), per_device_train_batch_size=args.batch,
        max_steps=args.steps, learning_rate=5e-4, weight_decay=0.01, warmup_steps=args.steps // 10,
        logging_strategy="no", save_strategy="no", report_to=[], use_cpu=True,
        dataloader_num_workers=0, disable_tqdm=True, seed=0,
        train_sampling_strategy="group_by_length" if grouped else "random",
        average_tokens_across_devices=False,
    )  # fmt: skip
    trainer = Trainer(
        model=model, args=targs, train_dataset=data, data_collator=collate, callbacks=[Clock()]
    )
    trainer.train()
    return {"non_embedding_params": non_embedding_params(model.roberta)}


def run_plain(args, feats, tok, timer: Timer):
    import torch
    from transformers import XLMRobertaForSequenceClassification

    from xscale.tasks.padding import pad_batch

    torch.manual_seed(0)
    config = build_config(args.size, len(tok))
    config.num_labels = 3
    model = XLMRobertaForSequenceClassification(config)
    opt = torch.optim.AdamW(model.parameters(), lr=5e-4, weight_decay=0.01, fused=True)
    g = torch.Generator().manual_seed(0)
    model.train()
    perm = torch.randperm(len(feats), generator=g).tolist()
    for step in range(args.steps):
        start = (step * args.batch) % len(feats)
        rows = [feats[i] for i in perm[start : start + args.batch]]
        ids, mask = pad_batch([f["input_ids"] for f in rows], tok.pad_token_id)
        timer.batch(step, mask)
        labels = torch.tensor([f["label"] for f in rows])
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        timer.step_done(step + 1)
    return {"non_embedding_params": non_embedding_params(model.roberta)}


def matmul_peak(threads: int, n: int = 2048, reps: int = 10) -> float:
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm-up
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e9


def child(args) -> dict:
    import torch
    from transformers import AutoTokenizer

    torch.set_num_threads(args.threads)
    if args.mode == "peak":
        return {"gflops": matmul_peak(args.threads)}
    work = Path(args.work)
    feats = json.loads((work / "features.json").read_text())
    tok = AutoTokenizer.from_pretrained(str(work / "tokenizer"))
    timer = Timer(args.warmup)
    cpu0 = time.process_time()
    if args.mode == "xscale":
        info = run_xscale(args, feats, tok, timer, True, None, None)
    elif args.mode == "xscale_random":
        info = run_xscale(args, feats, tok, timer, False, None, None)
    elif args.mode == "xscale_zero2":
        info = run_xscale(args, feats, tok, timer, False, "cpu_zero2.json", 2)
    elif args.mode == "xscale_zero0":
        info = run_xscale(args, feats, tok, timer, False, None, 0)
    elif args.mode == "trainer":
        info = run_trainer(args, feats, tok, timer, False)
    elif args.mode == "trainer_grouped":
        info = run_trainer(args, feats, tok, timer, True)
    else:
        info = run_plain(args, feats, tok, timer)
    seconds = timer.t1 - timer.t0
    steps = args.steps - args.warmup
    flops = 6 * info["non_embedding_params"] * timer.real / seconds
    return {
        **info,
        "timed_steps": steps,
        "examples_per_s": timer.examples / seconds,
        "s_per_step": seconds / steps,
        "real_token_share": timer.real / max(1, timer.computed),
        "gflops": flops / 1e9,
        "cpu_s": time.process_time() - cpu0,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", default="tiny-m")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument("--mode", help=argparse.SUPPRESS)  # a child process's one mode
    p.add_argument("--work", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.mode:
        print(json.dumps(child(args)))
        return

    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="xscale-bench-") as work:
        data = prepare(Path(work), args.max_length)
        results = {}
        for mode in ["peak", *[m for m in args.modes.split(",") if m]]:
            env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "DS_ACCELERATOR": "cpu"}
            cmd = [sys.executable, __file__, "--mode", mode, "--work", work]
            for flag in ("size", "steps", "warmup", "batch", "max_length", "threads"):
                cmd += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if proc.returncode != 0:
                results[mode] = {"error": proc.stderr.strip().splitlines()[-1:]}
                continue
            results[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
    peak = results.pop("peak").get("gflops")
    for r in results.values():
        if "gflops" in r and peak:
            r["share_of_matmul_peak"] = r["gflops"] / peak
    trainer = results.get("trainer", {}).get("examples_per_s")
    ratios = {
        f"{m}/trainer": r["examples_per_s"] / trainer
        for m, r in results.items()
        if trainer and "examples_per_s" in r and m != "trainer"
    }
    print(
        json.dumps(
            {
                "size": args.size,
                "data": data,
                "batch": args.batch,
                "max_length": args.max_length,
                "steps": args.steps,
                "threads": args.threads,
                "matmul_peak_gflops": peak,
                "modes": results,
                "ratios": ratios,
                "load_avg_before_after": [load0, os.getloadavg()[0]],
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
