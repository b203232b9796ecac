"""Run one stage: pretrain (tiny sizes), intermediate, or target (train + zero-shot evaluation).

    inputs ready?  ->  MLflow stage run (found again by key on a retry)  ->  DeepSpeed phase
    ->  export encoder to model/  ->  evaluate  ->  result.json  ->  COMPLETE (last)

Each stage reads its parent's `model/` folder (or a real size's hub id / local path), so a tiny
size enters intermediate training through the same `from_pretrained` path a real size takes.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from xscale import data as xdata
from xscale.evaluate import format_scores, summarize
from xscale.model import TaskModel, export_encoder, load_encoder, load_tokenizer
from xscale.sizes import count_params, get_size
from xscale.stages import StageSpec, is_complete, mark_complete, run_params, stage_dir
from xscale.tasks import get_format
from xscale.tasks.registry import get_task
from xscale.tracking import Tracker
from xscale.train import build_engine, init_distributed, predict, rank_world, train


@dataclass(frozen=True)
class TrackingInfo:
    uri: str
    experiment: str
    parent_run_id: str | None = None
    artifact_root: str | None = None


def say(label: str, msg: str) -> None:
    if rank_world()[0] == 0:
        print(f"[{time.strftime('%H:%M:%S')}] {label}: {msg}", file=sys.stderr, flush=True)


def model_source(spec: StageSpec, output_dir: Path) -> str:
    """Where this stage's starting weights come from."""
    if spec.parent is not None:
        return str(Path(output_dir) / "stages" / spec.parent / "model")
    size = get_size(spec.model)
    if spec.model_path:
        return spec.model_path
    if size.hub_id is None:
        raise ValueError(f"{spec.label}: tiny size {spec.model} needs a pretrain parent stage")
    return size.hub_id


def _zero_stage(ds_config: dict) -> int:
    return int(ds_config.get("zero_optimization", {}).get("stage", 0))


def _ds_config(spec: StageSpec, micro_batch: int) -> dict:
    from xscale.dsconfig import load_ds_config
    from xscale.train import device_type

    _, world = rank_world()
    return load_ds_config(
        spec.deepspeed_config,
        micro_batch_size=max(1, micro_batch // world),
        grad_clip=spec.hparams.grad_clip,
        device=device_type(),
        world_size=world,
    )


def run_stage(
    spec: StageSpec,
    output_dir: Path,
    tracking: TrackingInfo,
    report=None,
    eval_rounds: int = 1,
) -> dict:
    """Run `spec` unless its folder is already complete; returns its result.

    `report(metrics)`, when given, receives the English dev metrics `eval_rounds` times during
    training (Ray Tune's ASHA stops unpromising stages on them)."""
    from xscale.stages import read_result

    out = stage_dir(output_dir, spec)
    if is_complete(out):
        return read_result(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    init_distributed()
    rank, world = rank_world()
    if rank == 0:
        (out / "spec.json").write_text(json.dumps(spec.model_dump(mode="json"), indent=2))
        with open(out / "attempts.jsonl", "a") as f:  # one line per execution, for status/tests
            f.write(json.dumps({"time": time.time(), "pid": os.getpid(), "world": world}) + "\n")
    tracker = run_id = None
    if rank == 0:
        tracker = Tracker(tracking.uri, tracking.experiment, tracking.artifact_root)
        run_id = tracker.stage_run(spec.key, spec.kind, spec.label, tracking.parent_run_id)
    try:
        if spec.kind == "pretrain":
            from xscale.pretrain import run_pretrain

            result = run_pretrain(spec, out, tracker, run_id)
        else:
            result = run_finetune(spec, output_dir, out, tracker, run_id, report, eval_rounds)
    except BaseException as e:
        if rank == 0:
            (out / "error.txt").write_text(f"{type(e).__name__}: {e}\n")
        if tracker is not None:
            tracker.finish(run_id, "FAILED")
        raise
    if rank == 0:
        result["mlflow_run_id"] = run_id
        result["stage_seconds"] = time.perf_counter() - t0
        (out / "error.txt").unlink(missing_ok=True)
        shutil.rmtree(out / "ckpt", ignore_errors=True)
        mark_complete(out, result)
        tracker.log_artifact(run_id, out / "result.json")
        tracker.finish(run_id, "FINISHED")
    return result


def load_split(task, split: str, lang: str, root: str, limit: int | None):
    return xdata.load_examples(task, split, lang, root, limit=limit)


def eval_languages(spec: StageSpec, task) -> list[str]:
    have = xdata.available_languages(task, spec.root_for(task.name), "test")
    if spec.eval_languages is None:
        return have
    return [lang for lang in spec.eval_languages if lang in have]


def run_finetune(
    spec: StageSpec, output_dir: Path, out: Path, tracker, run_id, report=None, eval_rounds=1
) -> dict:
    hp = spec.hparams
    task = get_task(spec.task)
    fmt = get_format(task)
    root = spec.root_for(task.name)
    label = spec.label
    torch.manual_seed(spec.seed)

    source = model_source(spec, output_dir)
    say(label, f"loading encoder from {source}")
    tokenizer = load_tokenizer(source)
    encoder = load_encoder(source)
    model = TaskModel(
        encoder, fmt.make_head(task, encoder.config.hidden_size), lambda lg, b: fmt.loss(lg, b)
    )

    train_ex = load_split(task, "train", "en", root, hp.max_train_examples)
    train_feats = fmt.featurize(task, train_ex, tokenizer, hp.max_length)
    pad = tokenizer.pad_token_id

    def collate(f):
        return fmt.collate(f, pad)

    ds_config = _ds_config(spec, hp.batch_size)
    zero = _zero_stage(ds_config)
    from xscale.train import plan_steps

    _, total = plan_steps(len(train_feats), hp)
    engine = build_engine(model, hp, total, ds_config)
    size_params = count_params(get_size(spec.model))
    if tracker is not None:
        tracker.log_params(run_id, {**run_params(spec, size_params, zero), "model_source": source})
    say(label, f"{len(train_feats)} training examples, {total} steps, ZeRO-{zero}")

    def log(step, total_steps, loss, eps):
        say(label, f"step {step}/{total_steps} loss {loss:.4f} {eps:.1f} ex/s")
        if tracker is not None:
            tracker.log_metrics(run_id, {"train.loss": loss, "train.examples_per_s": eps}, step)

    dev_ex = load_split(task, "dev", "en", root, hp.max_eval_examples)
    dev_feats = fmt.featurize(task, dev_ex, tokenizer, hp.max_length)

    def dev_eval() -> dict[str, float]:
        pred = predict(engine, dev_feats, collate, fmt.predict, hp.batch_size * 2)
        return fmt.score(task, pred, dev_feats)

    rounds = {round(total * (i + 1) / eval_rounds) for i in range(max(1, eval_rounds) - 1)}

    def on_step(step: int, total_steps: int) -> None:
        if report is not None and step in rounds:
            scores = dev_eval()
            report({"dev.score": scores[task.metric], "step": step})
            if tracker is not None:
                tracker.log_metrics(run_id, {"dev.score": scores[task.metric]}, step)

    res = train(engine, train_feats, collate, hp, spec.seed, out / "ckpt", log, on_step)

    metrics: dict[str, float] = {"train.examples_per_s": res.examples_per_s}
    dev_scores = dev_eval()
    metrics.update({f"dev.{k}": v for k, v in dev_scores.items()})
    metrics["dev.score"] = dev_scores[task.metric]
    say(label, f"English dev {task.metric} {dev_scores[task.metric]:.2f}")

    if spec.kind == "target":
        per_lang = {}
        for lang in eval_languages(spec, task):
            ex = load_split(task, "test", lang, root, hp.max_eval_examples)
            feats = fmt.featurize(task, ex, tokenizer, hp.max_length)
            preds = predict(engine, feats, collate, fmt.predict, hp.batch_size * 2)
            per_lang[lang] = fmt.score(task, preds, feats)
        metrics.update(summarize(task.name, task.metric, per_lang))
        say(label, "zero-shot\n" + format_scores(task.name, task.metric, metrics))

    export_encoder(engine, out / "model", tokenizer)
    if spec.kind == "target" and rank_world()[0] == 0:
        torch.save(engine.module.head.state_dict(), out / "model" / "head.pt")
    if tracker is not None:
        tracker.log_metrics(run_id, metrics, res.steps)
    return {
        "metrics": metrics,
        "steps": res.steps,
        "resumed_from_step": res.resumed_from,
        "train_seconds": res.seconds,
        "train_examples": len(train_feats),
        "zero_stage": zero,
        "model_params": size_params,
    }
