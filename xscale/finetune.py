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
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from xscale import data as xdata
from xscale.dsconfig import zero_stage
from xscale.errors import XScaleError
from xscale.evaluate import format_scores, summarize
from xscale.perturb import applies_to, perturb_examples
from xscale.tasks import get_format, trains
from xscale.tasks.registry import get_task

MLM = "mlm"


@dataclass
class TaskData:
    task: object
    fmt: object
    train: list[dict]
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
            logits = self.lm_head(hidden)
            loss = nn.functional.cross_entropy(
                logits.float().view(-1, logits.size(-1)), batch["labels"].view(-1)
            )
            return loss, logits
        logits = self.heads[name](hidden, batch)
        loss = self.fmts[name].loss(logits, batch) if "labels" in batch else None
        return loss, logits


def train_languages(spec, task) -> list[str]:
    mode = spec.train_languages
    if mode == "en":
        return ["en"]
    have = xdata.available_languages(task, spec.data_root, "train")
    if mode in ("all", "in-language"):
        return have
    wanted = mode.split("+")
    missing = [lang for lang in wanted if lang not in have]
    if missing:
        raise XScaleError(
            f"{task.name}: no training data for {', '.join(missing)} under {spec.data_root}"
            f" (available: {', '.join(have) or 'none'})"
        )
    return wanted


def load_train(task, langs: list[str], root: str, limit: int | None, cap: int | None, seed: int):
    examples = []
    for lang in langs:
        examples.extend(xdata.load_examples(task, "train", lang, root, limit=limit))
    if cap is not None and len(examples) > cap:  # a seeded subset, not the file's first rows
        g = torch.Generator().manual_seed(seed)
        keep = torch.randperm(len(examples), generator=g)[:cap].tolist()
        examples = [examples[i] for i in sorted(keep)]
    return examples


def task_names(spec) -> list[str]:
    return list(spec.mixture) if spec.mixture else [spec.task]


def step_schedule(sizes: dict[str, int], hp, seed: int, mlm_share: float):
    """[(task, indices)] for every step: tasks drawn in proportion to their size (jiant's
    proportional sampling; sizes are already capped), each task walking through its own
    seeded epochs; MLM steps drawn with probability `mlm_share`."""
    from xscale.train import batch_indices

    per_epoch = {t: max(1, -(-n // hp.batch_size)) for t, n in sizes.items()}
    total = max(1, round(sum(per_epoch.values()) * hp.epochs))
    if hp.max_steps is not None:
        total = min(total, hp.max_steps)
    names = list(sizes)
    weights = torch.tensor([float(sizes[t]) for t in names])
    g = torch.Generator().manual_seed(seed)
    seen = dict.fromkeys(names, 0)
    schedule = []
    for _ in range(total):
        if mlm_share > 0 and torch.rand((), generator=g).item() < mlm_share:
            schedule.append((MLM, None))
            continue
        t = names[0] if len(names) == 1 else names[int(torch.multinomial(weights, 1, generator=g))]
        idx = batch_indices(seen[t], sizes[t], hp.batch_size, per_epoch[t], seed)
        seen[t] += 1
        schedule.append((t, idx))
    return schedule


def mlm_source(spec, tokenizer, hp):
    """Features and a masking collate for continued multilingual MLM on pretrain/<lang>.txt."""
    from transformers import DataCollatorForLanguageModeling

    from xscale.pretrain import pretrain_files, read_lines

    files = pretrain_files(spec.mlm_root or spec.data_root, tuple(hp.mlm_languages))
    lines = read_lines(files, None)
    enc = tokenizer(lines, truncation=True, max_length=hp.max_length)
    masker = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15)
    feats = [{"input_ids": ids} for ids in enc["input_ids"]]

    def collate(batch_feats):
        b = masker([{"input_ids": f["input_ids"]} for f in batch_feats])
        return {
            "input_ids": b["input_ids"],
            "attention_mask": b["attention_mask"],
            "labels": b["labels"],
        }

    return feats, collate


def load_model(source: str, with_lm_head: bool):
    from xscale.model import load_encoder

    if not with_lm_head:
        return load_encoder(source), None
    from transformers import AutoModelForMaskedLM

    try:
        mlm = AutoModelForMaskedLM.from_pretrained(source)
    except Exception as e:
        from xscale.sizes import hub_unavailable_message

        raise XScaleError(hub_unavailable_message(source, e)) from None
    return mlm.base_model, mlm.lm_head


def train_and_evaluate(ctx, langs: list[str], eval_langs: list[str], tag: str = "") -> dict:
    """Train one model on `langs` and evaluate it; returns flat metrics for this model."""
    from xscale.model import export_encoder, load_tokenizer
    from xscale.progress import write_stage_progress
    from xscale.runtime import say
    from xscale.train import build_engine, predict, rank_world, train

    spec, hp, label = ctx["spec"], ctx["spec"].hparams, ctx["spec"].label + tag
    tracker, run_id = ctx["tracker"], ctx["run_id"]
    torch.manual_seed(spec.seed)
    source = ctx["source"]
    tokenizer = load_tokenizer(source)
    encoder, lm_head = load_model(source, hp.continued_mlm > 0)
    pad = tokenizer.pad_token_id
    data: dict[str, TaskData] = {}
    for name in task_names(spec):
        task = get_task(name)
        fmt = get_format(task)
        ex = load_train(
            task, langs, spec.data_root, hp.max_train_examples, spec.mixture_cap, spec.seed
        )
        # model selection on English dev, or on the training language's own dev set when one
        # model is trained per language (in-language mode)
        dev_lang = langs[0] if len(langs) == 1 else "en"
        dev = xdata.load_examples(task, "dev", dev_lang, spec.data_root, limit=hp.max_eval_examples)
        data[name] = TaskData(
            task,
            fmt,
            fmt.featurize(task, ex, tokenizer, hp.max_length),
            fmt.featurize(task, dev, tokenizer, hp.max_length),
        )
    hidden = encoder.config.hidden_size
    model = MultiTaskModel(
        encoder,
        {n: d.fmt.make_head(d.task, hidden) for n, d in data.items()},
        {n: d.fmt for n, d in data.items()},
        lm_head,
    )
    mlm_feats, mlm_collate = mlm_source(spec, tokenizer, hp) if lm_head is not None else ([], None)
    schedule = step_schedule(
        {n: len(d.train) for n, d in data.items()}, hp, spec.seed, hp.continued_mlm
    )
    g = torch.Generator().manual_seed(spec.seed + 1)
    rank, world = rank_world()
    collates = {n: _collate(d, pad) for n, d in data.items()}

    def get_batch(step: int):
        name, idx = schedule[step]
        if name == MLM:
            idx = torch.randint(len(mlm_feats), (hp.batch_size,), generator=g).tolist()
            batch = mlm_collate([mlm_feats[i] for i in idx[rank::world] or idx[:1]])
            batch["task"] = MLM
        else:
            batch = collates[name]([data[name].train[i] for i in idx[rank::world] or idx[:1]])
        return batch, len(idx)

    ds_config = ctx["ds_config"]
    engine = build_engine(model, hp, len(schedule), ds_config)
    say(
        label,
        f"{', '.join(f'{n} {len(d.train)}' for n, d in data.items())} training examples"
        f" [{'+'.join(langs)}], {len(schedule)} steps, ZeRO-{zero_stage(ds_config)}"
        + (f", {hp.continued_mlm:.0%} MLM steps" if lm_head is not None else ""),
    )

    def dev_eval() -> dict[str, float]:
        out = {}
        for name, d in data.items():
            pred = predict(engine, d.dev, collates[name], d.fmt.predict, hp.batch_size * 2)
            scores = d.fmt.score(d.task, pred, d.dev)
            out.update({f"dev.{name}.{k}": v for k, v in scores.items()})
            out[f"dev.{name}.score"] = scores[d.task.metric]
        out["dev.score"] = sum(out[f"dev.{n}.score"] for n in data) / len(data)
        return out

    rounds = {
        round(len(schedule) * (i + 1) / ctx["eval_rounds"])
        for i in range(max(1, ctx["eval_rounds"]) - 1)
    }

    def log(step, total, loss, eps):
        say(label, f"step {step}/{total} loss {loss:.4f} {eps:.1f} ex/s")
        if rank == 0:
            write_stage_progress(ctx["out"], step, total, loss, tag)
        if tracker is not None:
            tracker.log_metrics(
                run_id, {f"train{tag}.loss": loss, f"train{tag}.examples_per_s": eps}, step
            )

    def on_step(step, total):
        if ctx["report"] is not None and step in rounds:
            ctx["report"]({"dev.score": dev_eval()["dev.score"], "step": step})

    ckpt = ctx["out"] / f"ckpt{tag.replace(' ', '-')}"
    res = train(engine, len(schedule), get_batch, hp, ckpt, log, on_step)
    metrics = dev_eval()
    if len(data) == 1:  # the single task's dev metrics also under plain dev.<metric>
        (name,) = data
        metrics.update(
            {
                f"dev.{k[len(name) + 5 :]}": v
                for k, v in metrics.items()
                if k.startswith(f"dev.{name}.")
            }
        )
    metrics["train.examples_per_s"] = res.examples_per_s
    say(label, f"English dev score {metrics['dev.score']:.2f}")

    if spec.kind == "target":
        (name,) = data
        d = data[name]
        per_lang = {}
        perturbed: dict[str, dict[str, dict[str, float]]] = {p: {} for p in spec.perturbations}
        pred_dir = ctx["out"] / "predictions" / name
        for lang in eval_langs:
            ex = xdata.load_examples(
                d.task, "test", lang, spec.data_root, limit=hp.max_eval_examples
            )

            def run(examples):
                feats = d.fmt.featurize(d.task, examples, tokenizer, hp.max_length)
                preds = predict(engine, feats, collates[name], d.fmt.predict, hp.batch_size * 2)
                return feats, preds

            feats, preds = run(ex)
            per_lang[lang] = d.fmt.score(d.task, preds, feats)
            if rank == 0 and hasattr(d.fmt, "export"):
                d.fmt.export(d.task, lang, preds, feats, pred_dir)
            for p in spec.perturbations if applies_to(d.task) else ():
                p_feats, p_preds = run(perturb_examples(d.task, ex, p, spec.seed))
                perturbed[p][lang] = d.fmt.score(d.task, p_preds, p_feats)
        metrics.update(summarize(name, d.task.metric, per_lang))
        for p, scores in perturbed.items():
            metrics.update(summarize(name, d.task.metric, scores, perturbation=p))
        say(label, "zero-shot\n" + format_scores(name, d.task.metric, metrics))
    if ctx["export"]:
        export_encoder(engine, ctx["out"] / "model", tokenizer)
    return {
        "metrics": metrics,
        "steps": res.steps,
        "resumed_from_step": res.resumed_from,
        "train_seconds": res.seconds,
        "train_examples": sum(len(d.train) for d in data.values()),
        "zero_stage": zero_stage(ds_config),
    }


def _collate(d: TaskData, pad: int):
    name = d.task.name

    def collate(feats):
        batch = d.fmt.collate(feats, pad)
        batch["task"] = name
        return batch

    return collate


def run_retrieval(spec, source: str, task, langs: list[str], pred_dir: Path | None = None) -> dict:
    """Zero-shot retrieval from the encoder's hidden states: no training, no head."""
    import time

    from xscale.model import load_encoder, load_tokenizer
    from xscale.runtime import say

    hp = spec.hparams
    t0 = time.perf_counter()
    tokenizer = load_tokenizer(source)
    encoder = load_encoder(source)
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
        pred_dir=pred_dir,
    )
    metrics = summarize(task.name, task.metric, per_lang)
    say(spec.label, "zero-shot retrieval\n" + format_scores(task.name, task.metric, metrics))
    return {
        "metrics": metrics,
        "steps": 0,
        "resumed_from_step": 0,
        "eval_seconds": time.perf_counter() - t0,
    }


def source_vocab_size(source: str) -> int | None:
    """The vocabulary of a local model folder (a tiny size's pretrained checkpoint may have its
    own); None for a hub id, whose vocabulary is the size table's."""
    config = Path(source) / "config.json"
    if not config.is_file():
        return None
    return json.loads(config.read_text()).get("vocab_size")


def run_finetune(spec, output_dir: Path, out: Path, tracker, run_id, report=None, eval_rounds=1):
    from xscale.runner import _ds_config, eval_languages, model_source
    from xscale.sizes import count_params, get_size
    from xscale.stages import run_params

    hp = spec.hparams
    source = model_source(spec, output_dir)
    ds_config = _ds_config(spec, hp.batch_size)
    size_params = count_params(get_size(spec.model), vocab_size=source_vocab_size(source))
    if tracker is not None:
        tracker.log_params(
            run_id,
            {
                **run_params(spec, size_params, zero_stage(ds_config)),
                "model_source": source,
            },
        )
    ctx = {
        "spec": spec,
        "out": out,
        "tracker": tracker,
        "run_id": run_id,
        "source": source,
        "ds_config": ds_config,
        "report": report,
        "eval_rounds": eval_rounds,
        "export": True,
    }
    task = get_task(task_names(spec)[0])
    evals = eval_languages(spec, task) if spec.kind == "target" else []
    if spec.kind == "target" and not trains(task):
        result = run_retrieval(spec, source, task, evals, out / "predictions" / task.name)
    elif spec.train_languages != "in-language" or spec.kind != "target":
        result = train_and_evaluate(ctx, train_languages(spec, task), evals)
    else:  # one model per language; finished languages are kept across a resume
        metrics: dict[str, float] = {}
        per_lang: dict[str, dict[str, float]] = {}
        steps = 0
        have_train = set(train_languages(spec, task))
        for lang in [lang for lang in evals if lang in have_train]:
            part = out / f"lang-{lang}.json"
            if part.is_file():
                r = json.loads(part.read_text())
            else:
                r = train_and_evaluate({**ctx, "export": False}, [lang], [lang], f" {lang}")
                part.write_text(json.dumps(r))
            steps += r["steps"]
            key = f"{task.name}.{lang}.{task.metric}"
            per_lang[lang] = {
                k.split(".")[-1]: v
                for k, v in r["metrics"].items()
                if k.startswith(f"{task.name}.{lang}.")
            }
            metrics[f"dev.{lang}.score"] = r["metrics"]["dev.score"]
            assert key in r["metrics"], key
        metrics.update(summarize(task.name, task.metric, per_lang))
        metrics["dev.score"] = metrics.get("dev.en.score", 0.0)
        result = {
            "metrics": metrics,
            "steps": steps,
            "resumed_from_step": 0,
            "train_languages": sorted(per_lang),
        }
    if tracker is not None:
        tracker.log_metrics(run_id, result["metrics"], result["steps"])
    result["model_params"] = size_params
    return result
