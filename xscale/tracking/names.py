"""Zero-shot evaluation over languages, and the metric names everything shares.

Metric names (logged on every target stage run, read by `xscale analyze`):

    <task>.<lang>.<metric>                  clean score, e.g. xnli.de.accuracy
    <task>.<lang>.<perturbation>.<metric>   score on a perturbation set
    <task>.avg                              mean of the main metric over evaluated languages
    <task>.avg_non_en                       mean over languages other than English
    <task>.gap_en                           English minus avg_non_en (the transfer gap)
    dev.<metric>, dev.score                 English dev score used for model selection
    train.loss, train.examples_per_s        training progress

Scores are in 0-100, as XTREME reports them.
"""

from __future__ import annotations

from statistics import fmean
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from xscale.graph.stage import StageSpec


def metric_name(task: str, lang: str, metric: str, perturbation: str | None = None) -> str:
    if perturbation:
        return f"{task}.{lang}.{perturbation}.{metric}"
    return f"{task}.{lang}.{metric}"


def summarize(
    task: str,
    main_metric: str,
    per_lang: dict[str, dict[str, float]],
    perturbation: str | None = None,
) -> dict:
    """Flat metrics for one task: every language's metrics plus avg, avg_non_en and gap_en
    (for a perturbation set: `<task>.<lang>.<p>.<metric>` and `<task>.<p>.avg`, ...).

    `gap_en` needs English and at least one other language; otherwise it is left out (never
    reported as 0).
    """
    out: dict[str, float] = {}
    for lang, metrics in sorted(per_lang.items()):
        for m, v in metrics.items():
            out[metric_name(task, lang, m, perturbation)] = float(v)
    agg = f"{task}.{perturbation}" if perturbation else task
    main = {lang: m[main_metric] for lang, m in per_lang.items() if main_metric in m}
    if main:
        out[f"{agg}.avg"] = fmean(main.values())
    non_en = [v for lang, v in main.items() if lang != "en"]
    if non_en:
        out[f"{agg}.avg_non_en"] = fmean(non_en)
        if "en" in main:
            out[f"{agg}.gap_en"] = main["en"] - out[f"{agg}.avg_non_en"]
    return out


def format_scores(task: str, main_metric: str, metrics: dict[str, float]) -> str:
    """A small per-language table for the terminal."""
    prefix = f"{task}."
    suffix = f".{main_metric}"
    rows = [
        (k[len(prefix) : -len(suffix)], v)
        for k, v in sorted(metrics.items())
        if k.startswith(prefix) and k.endswith(suffix) and k.count(".") == 2
    ]
    lines = [f"  {lang:<6} {v:6.2f}" for lang, v in rows]
    for agg in ("avg", "avg_non_en", "gap_en"):
        if f"{task}.{agg}" in metrics:
            lines.append(f"  {agg:<6} {metrics[f'{task}.{agg}']:6.2f}")
    return f"{task} {main_metric}:\n" + "\n".join(lines)


def run_params(spec: StageSpec, model_params: int, zero_stage: int) -> dict:
    """The params every stage run carries, with the same names across stages."""
    hp = spec.hparams
    return {
        "model_size": spec.model,
        "model_params": model_params,
        "intermediate_task": spec.intermediate_task,
        "target_task": spec.target_task or "none",
        "train_languages": spec.train_languages,
        "seed": spec.seed,
        "learning_rate": hp.learning_rate,
        "batch_size": hp.batch_size,
        "epochs": hp.epochs,
        "max_steps": hp.max_steps,
        "zero_stage": zero_stage,
        "stage_kind": spec.kind,
        "stage_task": spec.task or "none",
        "deepspeed_config": spec.deepspeed_config,
    }
