"""Alignment metrics of a stage's checkpoints, when the sweep declares `alignment`.

    a stage's own work done (its engine gone)
      -> its exported model/            -> align.<lang>.<metric>.layer<k>
      -> the pretrained model it started from, when it did (intermediate stages, subset ones
         included, and the targets of `none`)  -> align_pretrained.<lang>.<metric>.layer<k>

So each phase of a chain is measured once on its own stage run: pretrained (by the stages that
start from it, for tiny and real sizes alike: a real size's hub model has no stage of its own),
after intermediate training, after target training. Rank 0 loads each model from its folder (or
hub id; bf16 on a GPU), embeds the parallel sentences of every language once, every requested
layer from one forward pass (`RetrievalFormat.embed_layers`, under torch.inference_mode), and
scores each language and layer (tasks/alignment.py; names in tracking/names.py). The sentences
are the first `max_pairs` distinct pairs of the source's split (data/parallel.py), the same for
every checkpoint.
"""

from __future__ import annotations

import gc
import time
from pathlib import Path
from statistics import fmean

import torch

from xscale import data as xdata
from xscale.errors import XScaleError
from xscale.graph.stage import StageResult
from xscale.runtime import say
from xscale.stage.context import StageContext
from xscale.sweep.difficulty import AlignmentSpec
from xscale.tasks.alignment import alignment_scores
from xscale.tasks.registry import get_task
from xscale.tasks.retrieval import RetrievalFormat
from xscale.tracking.names import alignment_name
from xscale.train.model import load_encoder, load_tokenizer


def starts_pretrained(spec) -> bool:
    """Does the stage start from the size's pretrained model (not an intermediate one)?"""
    return spec.kind == "intermediate" or (
        spec.kind == "target" and spec.intermediate_task == "none"
    )


def measure(
    source: str | Path,
    a: AlignmentSpec,
    *,
    pretrained: bool = False,
    max_length: int = 128,
    batch_size: int = 64,
) -> dict[str, float]:
    """Every alignment metric of the model at `source`, per language and layer, by name."""
    task = get_task(a.source)
    pairs = {
        lang: xdata.parallel_pairs(task, lang, a.data_root, a.split, a.max_pairs)
        for lang in a.languages
    }
    tokenizer, encoder = load_tokenizer(source), load_encoder(source)
    device = "cpu"
    if torch.cuda.is_available():
        device = "cuda"
        encoder = encoder.to(device=device, dtype=torch.bfloat16)
    n_layers = encoder.config.num_hidden_layers
    layers = list(range(n_layers)) if a.layers == "all" else list(a.layers)
    beyond = [k for k in layers if k >= n_layers]
    if beyond:
        raise XScaleError(
            f"alignment.layers: {beyond[0]} is beyond the {n_layers} layers of {source}"
        )
    sentences = list(dict.fromkeys(s for ps in pairs.values() for pair in ps for s in pair))
    emb = RetrievalFormat().embed_layers(
        encoder,
        tokenizer,
        sentences,
        layers=layers,
        pooling=a.pooling,
        max_length=max_length,
        batch_size=batch_size,
        device=device,
    )
    del encoder
    index = {s: i for i, s in enumerate(sentences)}
    out: dict[str, float] = {}
    for lang, ps in pairs.items():
        en = [index[e] for e, _ in ps]
        other = [index[o] for _, o in ps]
        for k in layers:
            for metric, value in alignment_scores(emb[k][en], emb[k][other]).items():
                out[alignment_name(lang, metric, k, pretrained)] = value
    return out


def measure_stage(ctx: StageContext, result: StageResult) -> None:
    """Measure the stage's checkpoints (see the module docstring); the metrics are logged on
    its run and added to `result.metrics`, the time taken to `result.alignment_seconds`."""
    spec, a = ctx.spec, ctx.spec.alignment
    t0 = time.perf_counter()
    gc.collect()  # the stage's engine (and its GPU memory) is gone before a model is loaded
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    kw = {"max_length": ctx.hp.max_length, "batch_size": ctx.hp.batch_size * 2}
    metrics: dict[str, float] = {}
    if (ctx.out / "model").is_dir():
        metrics.update(measure(ctx.out / "model", a, **kw))
    if starts_pretrained(spec):
        metrics.update(measure(ctx.source, a, pretrained=True, **kw))
    seconds = time.perf_counter() - t0
    ctx.log_metrics(metrics, result.steps)
    result.metrics.update(metrics)
    result.alignment_seconds = seconds
    say(spec.label, f"alignment ({seconds:.1f} s)\n" + format_alignment(metrics))


def format_alignment(metrics: dict[str, float]) -> str:
    """Per layer, the mean over languages of CKA and retrieval, for the terminal."""
    rows: dict[tuple[str, int], dict[str, list[float]]] = {}
    for name, value in metrics.items():
        prefix, _, metric, layer = name.split(".")
        rows.setdefault((prefix, int(layer[len("layer") :])), {}).setdefault(metric, []).append(
            value
        )
    lines = [
        f"  {prefix:<16} layer {k:>2}: cka {fmean(m['cka']):.3f}"
        f"  retrieval {fmean(m['retrieval']):5.1f}"
        f"  cos {fmean(m['cos_parallel']):.3f} vs {fmean(m['cos_random']):.3f}"
        for (prefix, k), m in sorted(rows.items())
    ]
    return "\n".join(lines)
