"""Zero-shot evaluation over languages, and the metric names everything shares.

Metric names (logged on every target stage run, read by `xscale analyze`):

    <task>.<lang>.<metric>                  clean score, e.g. xnli.de.accuracy
    <task>.<lang>.<set>.<metric>            score on a perturbation set, e.g. xnli.de.typo.accuracy
    <task>.avg                              mean of the main metric over evaluated languages
    <task>.avg_non_en                       mean over languages other than English
    <task>.gap_en                           English minus avg_non_en (the transfer gap)
    dev.<metric>, dev.score                 English dev score used for model selection
    train.loss, train.examples_per_s        training progress

Alignment (any stage that trains and exports a model, when the sweep declares `alignment`):

    align.<lang>.<metric>.layer<k>             the stage's own model, English vs <lang>
    align_pretrained.<lang>.<metric>.layer<k>  the pretrained model it started from (stages that
                                               start from it: intermediate, and targets of `none`)

with <metric> one of retrieval (0-100, both directions), cos_parallel, cos_random, cka (0-1;
tasks/alignment.py) and k the 0-based transformer layer (XTREME's index).

Difficulty of an intermediate task (its cartography stage; <langs> its training languages,
e.g. `en` or `de+en`), and of the subset a subset stage trains on:

    <task>.<langs>.probe.accuracy, .probe.loss     linear probe on the pretrained encoder (dev)
    <task>.<langs>.epoch<e>.accuracy, .loss        dev after epoch e of the map run
    <task>.<langs>.cartography.<q>                 the map: confidence, variability, correctness
                                                   (means), share_easy / share_ambiguous /
                                                   share_hard (always / sometimes / never right)
    <task>.<langs>.subset.<q>                      a subset stage's examples: examples, share,
                                                   confidence, variability, correctness

Per perturbation set and language, beside its scores (`summarize_set`):

    <task>.<lang>.<set>.clean_<main>        the clean score of the same examples (a set may
                                            evaluate the first `max_examples` only, or exclude
                                            examples whose labels it cannot keep)
    <task>.<lang>.<set>.drop                degradation: clean_<main> minus <main>, in points
    <task>.<lang>.<set>.drop_rel            the drop as a share of the clean score, in %
    <task>.<lang>.<set>.examples, .excluded examples scored; examples left out (labels unsafe)
    <task>.<lang>.<set>.seconds             time spent on the set (perturbing, attacking, scoring)
    <task>.<lang>.<set>.success_rate        attacks: % of the examples the model got right
                                            that it gets wrong after the attack
    <task>.<lang>.<set>.mean_queries        attacks: model queries per attacked example

and per set, over languages (`SET_AGGREGATES`):

    <task>.<set>.avg, .avg_non_en, .gap_en  as for the clean scores
    <task>.<set>.drop_en, .drop_non_en      English's drop; mean drop over the other languages
    <task>.<set>.drop_rel_en, .drop_rel_non_en   the same for drop_rel
    <task>.<set>.success_rate, .mean_queries     attacks: means over languages
    <task>.<set>.seconds, .time_share       time on the set, and its % of the stage's time

Scores are in 0-100, as XTREME reports them.
"""

from __future__ import annotations

from statistics import fmean
from typing import TYPE_CHECKING

DEV_SCORE = "dev.score"  # the English dev metric a group's stages are compared on
TRAIN_LOSS = "train.loss"
# a target stage: its test examples (all evaluated languages) sharing a text with the chain's
# intermediate training data (data/overlap.py), and the count per language `overlap.<lang>`
OVERLAP = "overlap.test_examples"
TRAIN_EXAMPLES_PER_S = "train.examples_per_s"

if TYPE_CHECKING:
    from xscale.graph.stage import StageSpec


def metric_name(task: str, lang: str, metric: str, perturbation: str | None = None) -> str:
    if perturbation:
        return f"{task}.{lang}.{perturbation}.{metric}"
    return f"{task}.{lang}.{metric}"


def alignment_name(lang: str, metric: str, layer: int, pretrained: bool = False) -> str:
    return f"{'align_pretrained' if pretrained else 'align'}.{lang}.{metric}.layer{layer}"


def difficulty_name(task: str, langs: str, measure: str, quantity: str) -> str:
    """`<task>.<langs>.<measure>.<quantity>`, e.g. `mnli.en.cartography.confidence`."""
    return f"{task}.{langs}.{measure}.{quantity}"


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


SET_AGGREGATES = (
    "drop_en",
    "drop_non_en",
    "drop_rel_en",
    "drop_rel_non_en",
    "success_rate",
    "mean_queries",
    "seconds",
    "time_share",
)
ATTACK_METRICS = ("success_rate", "mean_queries")


def summarize_set(
    task: str, main_metric: str, per_lang: dict[str, dict[str, float]], name: str
) -> dict:
    """Flat metrics of one perturbation set: `summarize`'s, each language's drop and relative
    drop (from its `clean_<main>`), and the set aggregates over English / non-English."""
    out = summarize(task, main_metric, per_lang, perturbation=name)
    clean_key = f"clean_{main_metric}"
    drops: dict[str, float] = {}
    rels: dict[str, float] = {}
    for lang, m in sorted(per_lang.items()):
        if main_metric not in m or clean_key not in m:
            continue
        drops[lang] = m[clean_key] - m[main_metric]
        out[metric_name(task, lang, "drop", name)] = drops[lang]
        if m[clean_key] > 0:
            rels[lang] = 100.0 * drops[lang] / m[clean_key]
            out[metric_name(task, lang, "drop_rel", name)] = rels[lang]
    for key, values in (("drop", drops), ("drop_rel", rels)):
        if "en" in values:
            out[f"{task}.{name}.{key}_en"] = values["en"]
        non_en = [v for lang, v in values.items() if lang != "en"]
        if non_en:
            out[f"{task}.{name}.{key}_non_en"] = fmean(non_en)
    for m in ATTACK_METRICS:
        values = [v[m] for v in per_lang.values() if m in v]
        if values:
            out[f"{task}.{name}.{m}"] = fmean(values)
    seconds = [v["seconds"] for v in per_lang.values() if "seconds" in v]
    if seconds:
        out[f"{task}.{name}.seconds"] = sum(seconds)
    return out


def time_shares(metrics: dict[str, float], task: str, names, seconds: float) -> dict:
    """`<task>.<set>.time_share`: each set's seconds as a % of the stage's `seconds`."""
    return {
        f"{task}.{n}.time_share": 100.0 * metrics[f"{task}.{n}.seconds"] / seconds
        for n in names
        if f"{task}.{n}.seconds" in metrics and seconds > 0
    }


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
        **({"subset": spec.subset, "subset_fraction": spec.fraction} if spec.subset else {}),
    }
