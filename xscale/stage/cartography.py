"""Cartography stages (dataset cartography, tasks/cartography.py) and the subset stages that train
on their maps.

A cartography stage: one per (size, task, training languages), seed 0 (`MAP_SEED`), shared by
every seed's subset stages; for tiny sizes a child of pretrain, for real sizes a root.

    pretrained model -> linear probe (stage/probe.py)   <task>.<langs>.probe.{accuracy,loss}
    -> finetune.fit on the whole training set; at the end of every epoch, a pass over the
       training set in eval mode records each example's gold-label probability and whether
       the prediction is right, and a pass over English dev gives
                                                         <task>.<langs>.epoch<e>.{accuracy,loss}
    -> cartography.jsonl, map.png (confidence against variability, coloured by correctness)
                                                         <task>.<langs>.cartography.<q>
    No model/ is exported: nothing starts from a map run's weights.

The paper's code records the probabilities on the fly, from the training forward passes (with
dropout, under weights that change within the epoch); here every example of an epoch is
measured under the same weights, without dropout, at the cost of one forward pass over the
training set per epoch (about a third of an epoch's training compute). Each epoch's record is
written to `dynamics/epoch<e>.json` as it is taken, so a resumed stage keeps the epochs before
its checkpoint.

A subset stage: an intermediate stage with `subset` and `fraction`. Its parent is its map's
cartography stage (it waits for the map, and hashes it before use), but it starts from the
pretrained model (`StageSpec.weights`), not from the map run's weights. It loads its training
examples as any intermediate stage, keeps those of its subset (tasks/cartography.select:
`fraction` of each language's examples, ranked by the map), trains on them and writes their
guids to `subset.txt`.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import torch

from xscale import data as xdata
from xscale.catalog.recipes import zero_stage
from xscale.catalog.sizes import count_params, get_size
from xscale.errors import XScaleError
from xscale.graph.stage import StageResult, stage_path
from xscale.runtime import say
from xscale.stage.context import StageContext, ds_config_for
from xscale.stage.finetune import fit, run_finetune, source_vocab_size
from xscale.stage.inputs import train_languages
from xscale.stage.probe import PROBE_TRAIN, probe
from xscale.tasks import get_format
from xscale.tasks.cartography import build_map, read_map, select, summary, write_map
from xscale.tasks.registry import get_task
from xscale.tracking.names import DEV_SCORE, difficulty_name, run_params
from xscale.train.loop import predict
from xscale.train.model import load_encoder, load_tokenizer
from xscale.train.steps import steps_per_epoch

MAP_FILE = "cartography.jsonl"
PLOT_FILE = "map.png"
SUBSET_FILE = "subset.txt"


def gold_label(logits: torch.Tensor, batch: dict) -> list[tuple[float, bool]]:
    """`predict` function: (probability of the gold label, prediction right) per example."""
    labels = batch["labels"]
    probs = logits.float().softmax(dim=-1).gather(1, labels[:, None]).squeeze(1)
    right = logits.argmax(dim=-1) == labels
    return list(zip(probs.tolist(), right.tolist()))


class Recorder:
    """Training dynamics of one task, taken at every epoch's end (`observe`, a fit hook)."""

    def __init__(self, ctx: StageContext, task, tokenizer):
        self.ctx, self.task, self.fmt = ctx, task, get_format(task)
        self.tokenizer, self.pad = tokenizer, tokenizer.pad_token_id
        self.folder = ctx.out / "dynamics"
        self.examples: list = []
        self.feats: list[dict] = []
        self.dev: list[dict] = []

    def take_examples(self, task, examples: list) -> list:
        """fit's `train_examples` hook: the training set, unchanged, in its order."""
        hp = self.ctx.hp
        self.examples = list(examples)
        self.feats = self.fmt.featurize(task, self.examples, self.tokenizer, hp.max_length)
        dev = xdata.load_examples(task, "dev", "en", self.ctx.spec.data_root, hp.max_eval_examples)
        self.dev = self.fmt.featurize(task, dev, self.tokenizer, hp.max_length)
        return examples

    @property
    def per_epoch(self) -> int:
        return steps_per_epoch(len(self.feats), self.ctx.hp.batch_size)

    def _pass(self, engine, feats):
        def collate(batch):
            out = self.fmt.collate(batch, self.pad)
            out["task"] = self.task.name
            return out

        return predict(engine, feats, collate, gold_label, self.ctx.hp.batch_size * 2)

    def observe(self, step, total, engine, data, collates) -> None:
        if step % self.per_epoch:
            return
        epoch = step // self.per_epoch
        train, dev = self._pass(engine, self.feats), self._pass(engine, self.dev)
        record = {
            "epoch": epoch,
            "probs": [p for p, _ in train],
            "right": [bool(r) for _, r in train],
            "dev_accuracy": 100.0 * sum(r for _, r in dev) / max(1, len(dev)),
            "dev_loss": -sum(math.log(max(p, 1e-12)) for p, _ in dev) / max(1, len(dev)),
        }
        if self.ctx.rank0:
            self.folder.mkdir(exist_ok=True)
            tmp = self.folder / f"epoch{epoch}.json.tmp"
            tmp.write_text(json.dumps(record))
            tmp.replace(self.folder / f"epoch{epoch}.json")

    def epochs(self) -> list[dict]:
        records = [json.loads(f.read_text()) for f in self.folder.glob("epoch*.json")]
        return sorted(records, key=lambda r: r["epoch"])


def _probe(ctx: StageContext, task, lang: str, tokenizer) -> dict[str, float]:
    """stage/probe.py on the first PROBE_TRAIN training examples in `lang`, English dev."""
    hp, root = ctx.hp, ctx.spec.data_root
    fmt = get_format(task)
    train = xdata.load_examples(task, "train", lang, root, limit=PROBE_TRAIN)
    dev = xdata.load_examples(task, "dev", "en", root, limit=hp.max_eval_examples)
    encoder = load_encoder(ctx.source)
    if torch.cuda.is_available():
        encoder = encoder.to(device="cuda", dtype=torch.bfloat16)
    return probe(
        encoder,
        task,
        fmt,
        fmt.featurize(task, train, tokenizer, hp.max_length),
        fmt.featurize(task, dev, tokenizer, hp.max_length),
        tokenizer.pad_token_id,
        2 * hp.batch_size,
    )


def _log_params(ctx: StageContext) -> None:
    spec, source = ctx.spec, ctx.source
    size_params = count_params(get_size(spec.model), vocab_size=source_vocab_size(source))
    params = run_params(spec, size_params, zero_stage(ds_config_for(spec)))
    ctx.log_params({**params, "model_source": source})


def run_cartography(ctx: StageContext) -> StageResult:
    """Probe, then train with dynamics recorded, then the map (module docstring)."""
    spec = ctx.spec
    _log_params(ctx)
    task = get_task(spec.task)
    langs = train_languages(spec, task)
    tag = spec.train_languages
    tokenizer = load_tokenizer(ctx.source)
    rec = Recorder(ctx, task, tokenizer)
    metrics: dict[str, float] = {}
    if ctx.rank0:  # the pretrained encoder's difficulty, before any fine-tuning
        scores = _probe(ctx, task, "en" if "en" in langs else langs[0], tokenizer)
        metrics.update({difficulty_name(task.name, tag, "probe", k): v for k, v in scores.items()})
        say(
            spec.label,
            f"linear probe of the pretrained encoder: dev accuracy {scores['accuracy']:.1f},"
            f" loss {scores['loss']:.3f}",
        )
    ctx.train_examples, ctx.observe = rec.take_examples, rec.observe
    fitted = fit(ctx, langs)
    if not ctx.rank0:
        return StageResult(metrics=metrics, steps=fitted.result.steps)
    epochs = rec.epochs()
    if len(epochs) < 2:
        raise XScaleError(
            f"{spec.label}: {len(epochs)} full epoch(s) of {len(rec.feats)} examples in"
            f" {fitted.result.steps} steps; a map needs at least 2 (raise cartography.epochs or"
            " max_steps)"
        )
    entries = build_map(
        [e.guid for e in rec.examples],
        [e.lang for e in rec.examples],
        [r["probs"] for r in epochs],
        [r["right"] for r in epochs],
    )
    write_map(ctx.out / MAP_FILE, entries)
    plot_map(entries, ctx.out / PLOT_FILE, f"{spec.label} ({len(epochs)} epochs)")
    shutil.rmtree(rec.folder, ignore_errors=True)
    for r in epochs:
        per_epoch = {
            difficulty_name(task.name, tag, f"epoch{r['epoch']}", "accuracy"): r["dev_accuracy"],
            difficulty_name(task.name, tag, f"epoch{r['epoch']}", "loss"): r["dev_loss"],
        }
        metrics.update(per_epoch)
    s = summary(entries)
    metrics.update({difficulty_name(task.name, tag, "cartography", k): v for k, v in s.items()})
    metrics[DEV_SCORE] = epochs[-1]["dev_accuracy"]
    ctx.log_metrics(metrics, fitted.result.steps)
    for name in (MAP_FILE, PLOT_FILE):
        ctx.log_artifact(ctx.out / name)
    say(
        spec.label,
        f"map of {len(entries)} examples over {len(epochs)} epochs: "
        + ", ".join(f"{k} {v:.3f}" for k, v in s.items()),
    )
    return StageResult(
        metrics=metrics,
        steps=fitted.result.steps,
        resumed_from_step=fitted.result.resumed_from,
        train_seconds=fitted.result.seconds,
        train_examples=len(entries),
        epochs=len(epochs),
        zero_stage=zero_stage(fitted.ds_config),
    )


def plot_map(entries, path: Path, title: str) -> None:
    """The data map: confidence against variability, coloured by correctness (as the paper)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 4.5), dpi=100, layout="constrained")
    ax = fig.subplots()
    points = ax.scatter(
        [e.variability for e in entries],
        [e.confidence for e in entries],
        c=[e.correctness for e in entries],
        cmap="viridis",
        vmin=0,
        vmax=1,
        s=8,
        alpha=0.7,
    )
    fig.colorbar(points, ax=ax, label="correctness")
    ax.set_xlabel("variability")
    ax.set_ylabel("confidence")
    ax.set_title(title, fontsize=9)
    ax.grid(True, alpha=0.3)
    fig.savefig(path)


def run_subset(ctx: StageContext) -> StageResult:
    """An intermediate stage on its map's subset (module docstring)."""
    spec = ctx.spec
    map_path = stage_path(ctx.output_dir, spec.parent) / MAP_FILE
    entries = {e.guid: e for e in read_map(map_path)}
    chosen: list = []
    loaded = [0]

    def keep(task, examples: list) -> list:
        missing = [x.guid for x in examples if x.guid not in entries]
        if missing:
            raise XScaleError(
                f"{spec.label}: {len(missing)} training examples (e.g. {missing[0]}) are not in"
                f" the map {map_path}; the map covers the training set it was built on"
            )
        wanted = set(select([entries[x.guid] for x in examples], spec.subset, spec.fraction))
        chosen[:] = [entries[x.guid] for x in examples if x.guid in wanted]
        loaded[0] = len(examples)
        say(spec.label, f"{spec.subset} subset: {len(chosen)} of {len(examples)} examples")
        return [x for x in examples if x.guid in wanted]

    ctx.train_examples = keep
    ctx.log_params({"cartography_stage": spec.parent})
    result = run_finetune(ctx)
    if ctx.rank0:  # what it trained on, for audits: one guid per line, in training-data order
        (ctx.out / SUBSET_FILE).write_text("".join(f"{e.guid}\n" for e in chosen))
    tag, n = spec.train_languages, len(chosen)
    metrics = {
        difficulty_name(spec.task, tag, "subset", "examples"): float(n),
        difficulty_name(spec.task, tag, "subset", "share"): n / max(1, loaded[0]),
    }
    for q in ("confidence", "variability", "correctness"):
        value = math.fsum(getattr(e, q) for e in chosen) / max(1, n)
        metrics[difficulty_name(spec.task, tag, "subset", q)] = value
    ctx.log_metrics(metrics, result.steps)
    result.metrics.update(metrics)
    return result
