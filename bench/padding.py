"""Length-grouped dynamic padding against padding every example to max_length, at equal accuracy.

    .venv/bin/python bench/padding.py [--tasks xnli,pawsx] [--size tiny-m] [--epochs 6]
        [--model DIR] [--threads 2]

For each task: its English training rows of ../shared/data (the group split xscale applies to
these dev-only folders: no test sentence in training), fine-tuned twice through xscale's own
path (`build_engine` + `train` + `predict`), with the same seed, model and steps:

    padded    every batch padded to max_length (128), random order: what a static-shape
              pipeline (`padding="max_length"`, no length grouping) computes
    grouped   xscale's default: length-grouped batches, each padded to its longest example

and evaluated on the English test rows (accuracy, 0-100, with its standard error). It prints
one JSON object: per task and mode the training seconds, examples/s, the share of computed
tokens that are real, and test accuracy; and the speed-up grouped / padded. `--model` starts
from a pretrained folder (e.g. a pretrain stage's `model/` from examples/real_xnli.yaml);
without it a tiny size is built from scratch with a tokenizer trained here on the task's text.
It asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("DS_ACCELERATOR", "cpu")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


def tokenizer_for(task, work: Path, root: str):
    from transformers import AutoTokenizer

    from xscale import data as xdata
    from xscale.stage.tokenizer import train_unigram_tokenizer

    texts = []
    for lang in ("en", "de", "es", "fr"):
        for e in xdata.load_examples(task, "train", lang, root):
            texts.extend(v for k, v in e.fields.items() if k.startswith("text"))
    work.mkdir(parents=True, exist_ok=True)
    path = work / "text.txt"
    path.write_text("\n".join(texts) + "\n", encoding="utf-8")
    train_unigram_tokenizer([path], 6000, work / "tok")
    return AutoTokenizer.from_pretrained(str(work / "tok"))


def run_mode(task, tokenizer, encoder_fn, train, test, mode: str, args) -> dict:
    import torch

    from xscale.catalog.recipes import load_ds_config
    from xscale.stage.finetune import MultiTaskModel
    from xscale.sweep.phases import PhaseConfig
    from xscale.tasks import get_format
    from xscale.tasks.padding import pad_batch
    from xscale.train.loop import build_engine, predict, single_task_batches
    from xscale.train.loop import train as run_train

    fmt = get_format(task)
    torch.manual_seed(0)
    encoder = encoder_fn()
    head = fmt.make_head(task, encoder.config.hidden_size)
    model = MultiTaskModel(encoder, {task.name: head}, {task.name: fmt})
    hp = PhaseConfig(
        learning_rate=args.lr, batch_size=32, epochs=args.epochs, max_length=128,
        log_every=10**9, group_by_length=mode == "grouped",
    )  # fmt: skip
    ds = load_ds_config("cpu_zero2.json", micro_batch_size=32)
    pad = tokenizer.pad_token_id
    seen = {"real": 0, "computed": 0}

    def collate(feats, step=0):
        batch = fmt.collate(feats, pad)
        if mode == "padded":  # every row to max_length, as a static-shape pipeline does
            batch["input_ids"], batch["attention_mask"] = pad_batch(
                [f["input_ids"] for f in feats], pad, width=hp.max_length
            )
        seen["real"] += int(batch["attention_mask"].sum())
        seen["computed"] += batch["attention_mask"].numel()
        batch["task"] = task.name
        return batch

    get_batch, total = single_task_batches(train, collate, hp, seed=0)
    engine = build_engine(model, hp, total, ds)
    t0 = time.perf_counter()
    run_train(engine, total, get_batch, hp, None, lambda *a: None)
    seconds = time.perf_counter() - t0
    real_share = seen["real"] / max(1, seen["computed"])
    preds = predict(engine, test, lambda f: collate(f), fmt.predict, 64)
    acc = fmt.score(task, preds, test)["accuracy"]
    gold = [f["label"] for f in test]
    return {
        "steps": total,
        "train_seconds": seconds,
        "examples_per_s": total * hp.batch_size / seconds,
        "real_token_share": real_share,
        "test_accuracy": acc,
        "test_accuracy_se": 100 * math.sqrt(acc / 100 * (1 - acc / 100) / len(test)),
        # a model that predicts one class scores the majority share: compare against it
        "majority_class_share": 100 * max(gold.count(g) for g in set(gold)) / len(gold),
        "distinct_predictions": len(set(preds)),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", default="xnli,pawsx")
    p.add_argument("--size", default="tiny-m")
    p.add_argument("--epochs", type=float, default=6)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--model", help="a pretrained model folder (from_pretrained) to start from")
    args = p.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from xscale import data as xdata
    from xscale.catalog.sizes import get_size, model_config
    from xscale.tasks import get_format
    from xscale.tasks.registry import get_task
    from xscale.train.distributed import init_distributed

    init_distributed()
    root = str(SHARED) if SHARED.is_dir() else "fixtures"
    load0 = os.getloadavg()[0]
    out: dict = {"size": args.model or args.size, "data": root, "threads": args.threads}
    with tempfile.TemporaryDirectory(prefix="xscale-padding-") as work:
        for name in args.tasks.split(","):
            task = get_task(name)
            fmt = get_format(task)
            if args.model:
                from transformers import AutoModel, AutoTokenizer

                tokenizer = AutoTokenizer.from_pretrained(args.model)

                def encoder_fn():
                    return AutoModel.from_pretrained(args.model)
            else:
                tokenizer = tokenizer_for(task, Path(work) / name, root)
                from transformers import XLMRobertaModel

                config = model_config(get_size(args.size), vocab_size=len(tokenizer))

                def encoder_fn(config=config):
                    return XLMRobertaModel(config, add_pooling_layer=False)

            train = fmt.featurize(
                task, xdata.load_examples(task, "train", "en", root), tokenizer, 128
            )
            test = fmt.featurize(
                task, xdata.load_examples(task, "test", "en", root), tokenizer, 128
            )
            modes = {m: run_mode(task, tokenizer, encoder_fn, train, test, m, args)
                     for m in ("padded", "grouped")}  # fmt: skip
            modes["speedup_grouped_over_padded"] = (
                modes["grouped"]["examples_per_s"] / modes["padded"]["examples_per_s"]
            )
            out[name] = {"train_rows": len(train), "test_rows": len(test), **modes}
    out["load_avg_before_after"] = [load0, os.getloadavg()[0]]
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
