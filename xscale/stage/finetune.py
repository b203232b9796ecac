"""Intermediate and target stages: train an encoder with task heads on DeepSpeed, then evaluate.

    parent model/ (or hub id) -> encoder (+ LM head if continued MLM)
    -> one head per task (a multi-task mixture has several; one shared encoder)
    -> a step schedule: each step one task, sampled in proportion to its (capped) size,
       or multilingual MLM with probability `continued_mlm`
    -> DeepSpeed training -> English dev (selection) -> zero-shot test per language
    -> export encoder to model/ (heads are dropped; the next stage starts a fresh head)

Training-language modes of a target stage (`train_languages`):
    en           train on English, evaluate every language (zero-shot)
    all          train on every language's training data at once (translate-train-all)
    in-language  one model per language, trained and evaluated on that language only
    a+b+c        train on the listed languages (e.g. a multilingual intermediate task)
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from xscale import data as xdata
from xscale.catalog.recipes import zero_stage
from xscale.catalog.sizes import count_params, get_size, hub_unavailable_message
from xscale.data import overlap
from xscale.errors import XScaleError
from xscale.graph.stage import StageResult, stage_path
from xscale.runtime import say
from xscale.stage import features
from xscale.stage.context import StageContext, ds_config_for
from xscale.stage.corpus import pretrain_files, read_lines
from xscale.stage.inputs import (
    eval_languages,
    intermediate_data,
    intermediate_languages,
    train_languages,
)
from xscale.stage.mlm import MaskingCollate, masked_lm_loss
from xscale.stage.robustness import export_head, stage_sets
from xscale.sweep.perturbations import set_name
from xscale.tasks import TaskFormat, format_info, get_format, trains
from xscale.tasks.base import Example, Task
from xscale.tasks.registry import get_task
from xscale.tracking.names import (
    DEV_SCORE,
    OVERLAP,
    format_scores,
    run_params,
    summarize,
    summarize_set,
    time_shares,
)
from xscale.train.batching import EpochOrder, feature_length, step_generator
from xscale.train.distributed import rank_world
from xscale.train.loop import TrainResult, predict
from xscale.train.model import (
    export_encoder,
    load_encoder,
    load_tokenizer,
    partitioned_init,
    recompute_activations,
)
from xscale.train.steps import steps_per_epoch, total_steps

MLM = "mlm"


@dataclass
class TaskData:
    task: Task
    fmt: TaskFormat
    train: list[dict]  # features
    dev: list[dict]


class MultiTaskModel(nn.Module):
    """One encoder, one head per task; `batch["task"]` picks the head and the loss."""

    def __init__(self, encoder, heads: dict[str, nn.Module], fmts: dict, lm_head=None):
        super().__init__()
        self.encoder = encoder
        self.heads = nn.ModuleDict(heads)
        self.fmts = fmts
        self.lm_head = lm_head

    def forward(self, batch: dict):
        name = batch["task"]
        inputs = {k: batch[k] for k in ("input_ids", "attention_mask")}
        hidden = self.encoder(**inputs).last_hidden_state
        if name == MLM:
            return masked_lm_loss(self.lm_head, hidden, batch["labels"])
        logits = self.heads[name](hidden, batch)
        loss = self.fmts[name].loss(logits, batch) if "labels" in batch else None
        return loss, logits


def load_train(task, langs: list[str], root: str, limit: int | None, cap: int | None, seed: int):
    examples = []
    for lang in langs:
        examples.extend(xdata.load_examples(task, "train", lang, root, limit=limit))
    if cap is not None and len(examples) > cap:  # a seeded subset, not the file's first rows
        g = torch.Generator().manual_seed(seed)
        keep = torch.randperm(len(examples), generator=g)[:cap].tolist()
        examples = [examples[i] for i in sorted(keep)]
    return examples


def step_schedule(
    sizes: dict[str, int],
    hp,
    seed: int,
    mlm_share: float,
    lengths: dict[str, list[int]] | None = None,
):
    """[(task, indices)] for every step: tasks drawn in proportion to their size (jiant's
    proportional sampling; sizes are already capped), each task walking through its own
    seeded epochs (grouped by length when `lengths` are given); MLM steps drawn with
    probability `mlm_share`."""
    per_epoch = {t: steps_per_epoch(n, hp.batch_size) for t, n in sizes.items()}
    total = total_steps(sum(per_epoch.values()), hp.epochs, hp.max_steps)
    names = list(sizes)
    orders = {
        t: EpochOrder(n, hp.batch_size, seed, (lengths or {}).get(t)) for t, n in sizes.items()
    }
    weights = torch.tensor([float(sizes[t]) for t in names])
    g = torch.Generator().manual_seed(seed)
    seen = dict.fromkeys(names, 0)
    schedule = []
    for _ in range(total):
        if mlm_share > 0 and torch.rand((), generator=g).item() < mlm_share:
            schedule.append((MLM, None))
            continue
        t = names[0] if len(names) == 1 else names[int(torch.multinomial(weights, 1, generator=g))]
        schedule.append((t, orders[t](seen[t])))
        seen[t] += 1
    return schedule


def mlm_source(spec, tokenizer, hp) -> tuple[list[dict], MaskingCollate]:
    """Features and a masking collate for continued multilingual MLM on pretrain/<lang>.txt."""
    files = pretrain_files(spec.mlm_root or spec.data_root, tuple(hp.mlm_languages))
    enc = tokenizer(read_lines(files, None), truncation=True, max_length=hp.max_length)
    return [{"input_ids": ids} for ids in enc["input_ids"]], MaskingCollate(
        tokenizer, hp.mlm_probability, spec.seed
    )


def load_model(source: str, with_lm_head: bool):
    if not with_lm_head:
        return load_encoder(source), None
    from transformers import AutoModelForMaskedLM

    try:
        mlm = AutoModelForMaskedLM.from_pretrained(source)
    except Exception as e:
        raise XScaleError(hub_unavailable_message(source, e)) from None
    return mlm.base_model, mlm.lm_head


def _collate(d: TaskData, pad: int):
    name = d.task.name

    def collate(feats):
        batch = d.fmt.collate(feats, pad)
        batch["task"] = name
        return batch

    return collate


# --------------------------------------------------------------------------- 1. train


@dataclass
class Fitted:
    """One trained model and what evaluating and exporting it need."""

    engine: object
    tokenizer: object
    data: dict[str, TaskData]
    collates: dict
    result: TrainResult
    ds_config: dict
    label: str


def dev_scores(engine, data: dict[str, TaskData], collates: dict, batch_size: int) -> dict:
    """English dev metrics per task (`dev.<task>.<metric>`) and their mean `dev.score`."""
    out = {}
    for name, d in data.items():
        pred = predict(engine, d.dev, collates[name], d.fmt.predict, batch_size)
        scores = d.fmt.score(d.task, pred, d.dev)
        out.update({f"dev.{name}.{k}": v for k, v in scores.items()})
        out[f"dev.{name}.score"] = scores[d.task.metric]
    out[DEV_SCORE] = sum(out[f"dev.{n}.score"] for n in data) / len(data)
    return out


def fit(ctx: StageContext, langs: list[str], tag: str = "") -> Fitted:
    """Train one model (encoder + a head per task, + LM head for continued MLM) on `langs`."""
    spec, hp, label = ctx.spec, ctx.hp, ctx.spec.label + tag
    torch.manual_seed(spec.seed)
    source = ctx.source
    tokenizer = load_tokenizer(source)
    ds_config = ds_config_for(spec)
    with partitioned_init(ds_config):  # ZeRO-3: built partitioned, rank 0 reads the weights
        encoder, lm_head = load_model(source, hp.continued_mlm > 0)
    if spec.gradient_checkpointing:
        recompute_activations(encoder)
    pad = tokenizer.pad_token_id
    data: dict[str, TaskData] = {}
    trained_texts: set[int] = set()
    for name in spec.tasks:
        task = get_task(name)
        fmt = get_format(task)
        ex = load_train(
            task, langs, spec.root_for(name), hp.max_train_examples, spec.mixture_cap, spec.seed
        )
        if ctx.train_examples is not None:  # a cartography map's subset (stage/cartography.py)
            ex = ctx.train_examples(task, ex)
        if spec.kind == "intermediate":  # what the targets below check their test sets against
            trained_texts |= overlap.text_keys(ex)
        # model selection on English dev, or on the training language's own dev set when one
        # model is trained per language (in-language mode)
        dev_lang = langs[0] if len(langs) == 1 else "en"
        dev = xdata.load_examples(
            task, "dev", dev_lang, spec.root_for(name), limit=hp.max_eval_examples
        )
        cache_root = ctx.output_dir  # tokenized once per output folder
        data[name] = TaskData(
            task,
            fmt,
            features.featurize(
                fmt,
                task,
                ex,
                tokenizer,
                hp.max_length,
                split="train",
                lang="+".join(langs),
                output_dir=cache_root,
            ),
            features.featurize(
                fmt,
                task,
                dev,
                tokenizer,
                hp.max_length,
                split="dev",
                lang=dev_lang,
                output_dir=cache_root,
            ),
        )
    if spec.kind == "intermediate" and rank_world()[0] == 0:
        overlap.write_keys(ctx.out / overlap.KEYS_FILE, trained_texts)
    hidden = encoder.config.hidden_size
    model = MultiTaskModel(
        encoder,
        {n: d.fmt.make_head(d.task, hidden) for n, d in data.items()},
        {n: d.fmt for n, d in data.items()},
        lm_head,
    )
    mlm_feats, mlm_collate = mlm_source(spec, tokenizer, hp) if lm_head is not None else ([], None)
    lengths = (
        {n: [feature_length(f) for f in d.train] for n, d in data.items()}
        if hp.group_by_length
        else None
    )
    schedule = step_schedule(
        {n: len(d.train) for n, d in data.items()}, hp, spec.seed, hp.continued_mlm, lengths
    )
    rank, world = rank_world()
    collates = {n: _collate(d, pad) for n, d in data.items()}

    def get_batch(step: int):  # a pure function of the step (batches are built ahead, in a thread)
        name, idx = schedule[step]
        if name == MLM:
            g = step_generator(spec.seed + 1, step)
            idx = torch.randint(len(mlm_feats), (hp.batch_size,), generator=g).tolist()
            batch = mlm_collate([mlm_feats[i] for i in idx[rank::world] or idx[:1]], step)
            batch["task"] = MLM
        else:
            batch = collates[name]([data[name].train[i] for i in idx[rank::world] or idx[:1]])
        return batch, len(idx)

    say(
        label,
        f"{', '.join(f'{n} {len(d.train)}' for n, d in data.items())} training examples"
        f" [{'+'.join(langs)}], {len(schedule)} steps, ZeRO-{zero_stage(ds_config)}"
        + (f", {hp.continued_mlm:.0%} MLM steps" if lm_head is not None else ""),
    )
    rounds = {
        round(len(schedule) * (i + 1) / ctx.eval_rounds) for i in range(max(1, ctx.eval_rounds) - 1)
    }

    def on_step(engine, step, total):
        if ctx.observe is not None:  # training dynamics (stage/cartography.py)
            ctx.observe(step, total, engine, data, collates)
        if ctx.report is not None and step in rounds:
            dev = dev_scores(engine, data, collates, hp.batch_size * 2)
            ctx.report({DEV_SCORE: dev[DEV_SCORE], "step": step})

    engine, res = ctx.train(model, len(schedule), get_batch, ds_config, tag=tag, on_step=on_step)
    return Fitted(engine, tokenizer, data, collates, res, ds_config, label)


# --------------------------------------------------------------------------- 2. evaluate


def evaluate_zero_shot(
    ctx: StageContext, fitted: Fitted, langs: list[str]
) -> dict[str, dict[str, float]]:
    """Test scores of the target task per language, `{lang: {metric: value}}`, plus those of each
    perturbation set under `{lang}/{perturbation}` keys; writes prediction files (rank 0)."""
    spec, hp = ctx.spec, ctx.hp
    ((name, d),) = fitted.data.items()
    pred_dir = ctx.out / "predictions" / name
    if format_info(d.task).pooled:
        return evaluate_pool(ctx, fitted, langs)
    scores: dict[str, dict[str, float]] = {}

    def run(examples, lang: str | None = None):  # clean test sets (a lang) come from the cache
        feats = features.featurize(
            d.fmt, d.task, examples, fitted.tokenizer, hp.max_length,
            split="test", lang=lang or "", output_dir=ctx.output_dir if lang else None,
        )  # fmt: skip
        preds = predict(
            fitted.engine, feats, fitted.collates[name], d.fmt.predict, hp.batch_size * 2
        )
        return feats, preds

    sets = stage_sets(ctx, fitted, run)  # perturbation sets, attacks querying the engine
    for lang in langs:
        ex = xdata.load_examples(d.task, "test", lang, spec.data_root, limit=hp.max_eval_examples)
        feats, preds = run(ex, lang)
        scores[lang] = d.fmt.score(d.task, preds, feats)
        if ctx.rank0:
            d.fmt.export(d.task, lang, preds, feats, pred_dir)
        scores.update(sets.evaluate(lang, ex, scores[lang], feats, preds))
    return scores


def evaluate_pool(ctx: StageContext, fitted: Fitted, langs: list[str]) -> dict:
    """A pooled retrieval test (LAReQA, Mewsli-X): the trained encoder embeds the candidates of
    every language once and each language's queries, `{lang: {metric: value}}`."""
    spec, hp = ctx.spec, ctx.hp
    ((name, d),) = fitted.data.items()
    pool = xdata.load_pool(d.task, spec.data_root, langs, limit=hp.max_eval_examples)
    for lang, n in pool.skipped.items():
        if n:
            say(fitted.label, f"{lang}: {n} queries left out (no answer sentence / entity)")
    say(
        fitted.label,
        f"retrieval pool: {len(pool.candidates)} candidates, "
        + ", ".join(f"{lang} {len(q)}" for lang, q in pool.queries.items())
        + " queries",
    )

    def embed(texts):
        feats = d.fmt.featurize_texts(texts, fitted.tokenizer, hp.max_length)
        vecs = predict(
            fitted.engine, feats, fitted.collates[name], d.fmt.predict, hp.batch_size * 2
        )
        return np.stack(vecs) if vecs else np.zeros((0, 1), dtype=np.float32)

    pred_dir = ctx.out / "predictions" / name if ctx.rank0 else None
    return d.fmt.evaluate_pool(d.task, pool, embed, pred_dir)


def summarize_scores(task: Task, scores: dict[str, dict[str, float]], perturbations) -> dict:
    """Flat metric names (tracking.names) for clean and perturbed per-language scores."""
    clean = {k: v for k, v in scores.items() if "/" not in k}
    metrics = summarize(task.name, task.metric, clean)
    for p in map(set_name, perturbations):
        per = {k.split("/")[0]: v for k, v in scores.items() if k.endswith(f"/{p}")}
        if per:
            metrics.update(summarize_set(task.name, task.metric, per, p))
    return metrics


# --------------------------------------------------------------------------- 3. one model


def train_and_evaluate(
    ctx: StageContext, langs: list[str], eval_langs: list[str], tag: str = "", export: bool = True
) -> tuple[StageResult, dict[str, dict[str, float]]]:
    """Train one model on `langs`, select on dev, evaluate (target stages), export model/:
    (its result, its per-language scores, clean and perturbed)."""
    spec = ctx.spec
    fitted = fit(ctx, langs, tag)
    metrics = dev_scores(fitted.engine, fitted.data, fitted.collates, ctx.hp.batch_size * 2)
    if len(fitted.data) == 1:  # the single task's dev metrics also under plain dev.<metric>
        (name,) = fitted.data
        prefix = f"dev.{name}."
        metrics.update(
            {f"dev.{k[len(prefix) :]}": v for k, v in metrics.items() if k.startswith(prefix)}
        )
    metrics["train.examples_per_s"] = fitted.result.examples_per_s
    say(fitted.label, f"English dev score {metrics[DEV_SCORE]:.2f}")
    scores: dict[str, dict[str, float]] = {}
    if spec.kind == "target":
        ((name, d),) = fitted.data.items()
        scores = evaluate_zero_shot(ctx, fitted, eval_langs)
        metrics.update(summarize_scores(d.task, scores, spec.perturbations))
        say(fitted.label, "zero-shot\n" + format_scores(name, d.task.metric, metrics))
    if export:
        export_encoder(fitted.engine, ctx.out / "model", fitted.tokenizer)
        if spec.kind == "target":  # the head too: `xscale perturb --model` attacks the model
            ((name, d),) = fitted.data.items()
            export_head(fitted.engine, name, d.task, ctx.out / "model")
    result = StageResult(
        metrics=metrics,
        steps=fitted.result.steps,
        resumed_from_step=fitted.result.resumed_from,
        train_seconds=fitted.result.seconds,
        train_examples=sum(len(d.train) for d in fitted.data.values()),
        zero_stage=zero_stage(fitted.ds_config),
        micro_batch_size=fitted.ds_config["train_micro_batch_size_per_gpu"],
        gradient_accumulation_steps=fitted.ds_config["gradient_accumulation_steps"],
    )
    return result, scores


def run_in_language(ctx: StageContext, task: Task, langs: list[str]) -> StageResult:
    """One model per language, trained and tested on that language; finished languages are kept
    (`lang-<lang>.json`) across a resume."""
    scores: dict[str, dict[str, float]] = {}  # clean and perturbed, as evaluate_zero_shot's
    metrics: dict[str, float] = {}
    steps = 0
    have_train = set(train_languages(ctx.spec, task))
    for lang in [lang for lang in langs if lang in have_train]:
        part = ctx.out / f"lang-{lang}.json"
        if part.is_file():  # {"result": ..., "scores": ...}; older versions: one dict
            saved = json.loads(part.read_text())
            r = StageResult.model_validate(saved.get("result", saved))
            lang_scores = saved["scores"]
        else:
            r, lang_scores = train_and_evaluate(ctx, [lang], [lang], f" {lang}", export=False)
            part.write_text(json.dumps({"result": r.model_dump(), "scores": lang_scores}))
        steps += r.steps
        scores.update(lang_scores)
        metrics[f"dev.{lang}.score"] = r.dev_score
    metrics.update(summarize_scores(task, scores, ctx.spec.perturbations))
    metrics[DEV_SCORE] = metrics.get("dev.en.score", 0.0)
    return StageResult(
        metrics=metrics,
        steps=steps,
        resumed_from_step=0,
        train_languages=sorted(k for k in scores if "/" not in k),
    )


def run_retrieval(ctx: StageContext, task: Task, langs: list[str]) -> StageResult:
    """Zero-shot retrieval from the encoder's hidden states: no training, no head."""
    spec, hp = ctx.spec, ctx.hp
    t0 = time.perf_counter()
    tokenizer = load_tokenizer(ctx.source)
    encoder = load_encoder(ctx.source)
    device = "cpu"
    if torch.cuda.is_available():
        device = "cuda"
        encoder = encoder.to(device=device, dtype=torch.bfloat16)
    per_lang = get_format(task).evaluate(
        encoder,
        tokenizer,
        task,
        spec.data_root,
        langs,
        layer=hp.retrieval_layer,
        pooling=hp.retrieval_pooling,
        max_length=hp.max_length,
        batch_size=hp.batch_size * 2,
        limit=hp.max_eval_examples,
        device=device,
        pred_dir=ctx.out / "predictions" / task.name,
    )
    metrics = summarize(task.name, task.metric, per_lang)
    say(spec.label, "zero-shot retrieval\n" + format_scores(task.name, task.metric, metrics))
    return StageResult(
        metrics=metrics, steps=0, resumed_from_step=0, eval_seconds=time.perf_counter() - t0
    )


def source_vocab_size(source: str) -> int | None:
    """The vocabulary of a local model folder (a tiny size's pretrained checkpoint may have its
    own); None for a hub id, whose vocabulary is the size table's."""
    config = Path(source) / "config.json"
    if not config.is_file():
        return None
    return json.loads(config.read_text()).get("vocab_size")


def intermediate_overlap(ctx: StageContext, task: Task, langs: list[str]) -> dict[str, float]:
    """The target's test examples, per evaluated language and in all, that share a text with
    the chain's intermediate training data (`data/overlap.py`); {} without an intermediate
    stage or its keys (a stage trained before they were written)."""
    spec = ctx.spec
    if spec.intermediate_task == "none" or spec.parent is None:
        return {}
    keys = overlap.read_keys(stage_path(ctx.output_dir, spec.parent) / overlap.KEYS_FILE)
    if keys is None:
        return {}
    counts = {}
    for lang in langs:
        examples = xdata.load_examples(task, "test", lang, spec.data_root)
        counts[f"overlap.{lang}"] = float(
            overlap.overlapping(keys, [e for e in examples if isinstance(e, Example)])
        )
    total = sum(counts.values())
    if total:
        say(
            spec.label,
            f"{int(total)} test examples share a text with the intermediate task's training data"
            " (the report flags this pair)",
        )
    return {OVERLAP: total, **counts}


def run_finetune(ctx: StageContext) -> StageResult:
    """An intermediate or target stage: log its params, then train and evaluate in its mode."""
    t0 = time.perf_counter()
    spec = ctx.spec
    source = ctx.source
    size_params = count_params(get_size(spec.model), vocab_size=source_vocab_size(source))
    params = run_params(spec, size_params, zero_stage(ds_config_for(spec)))
    chain = {
        "intermediate_languages": intermediate_languages(spec, ctx.output_dir),
        "intermediate_data": intermediate_data(spec, ctx.output_dir),
    }
    ctx.log_params({**params, "model_source": source, **chain})
    task = get_task(spec.tasks[0])
    evals = eval_languages(spec, task) if spec.kind == "target" else []
    shared = intermediate_overlap(ctx, task, evals) if spec.kind == "target" else {}
    if spec.kind == "target" and not trains(task):
        result = run_retrieval(ctx, task, evals)
    elif spec.kind == "target" and spec.train_languages == "in-language":
        result = run_in_language(ctx, task, evals)
    else:
        result, _ = train_and_evaluate(ctx, train_languages(spec, task), evals)
    result.metrics.update(shared)
    names = [set_name(e) for e in spec.perturbations]
    seconds = time.perf_counter() - t0
    result.metrics.update(time_shares(result.metrics, task.name, names, seconds))
    ctx.log_metrics(result.metrics, result.steps)
    result.model_params = size_params
    return result
