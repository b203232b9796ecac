"""The difficulty and alignment tables (analyze/difficulty.py) on constructed run records, with
values worked out by hand; the probe and the gold-label pass on constructed inputs."""

from __future__ import annotations

import math

import pytest
import torch

from xscale.analyze import build_analysis
from xscale.analyze.stats import pearson
from xscale.stage.cartography import gold_label
from xscale.stage.probe import fit_probe

SIZE = {"model_size": "tiny-xs", "model_params": "62720", "train_languages": "en"}


def target(inter: str, seed: int, en: float, de: float, zh: float, cka: float) -> dict:
    metrics = {"xnli.en.accuracy": en, "xnli.de.accuracy": de, "xnli.zh.accuracy": zh}
    for lang, shift in (("de", 0.0), ("zh", -0.1)):  # zh is 0.1 less aligned than de
        metrics[f"align.{lang}.cka.layer1"] = cka + shift
        metrics[f"align.{lang}.cka.layer0"] = 0.5
        metrics[f"align.{lang}.retrieval.layer1"] = 100 * (cka + shift)
        metrics[f"align.{lang}.cos_parallel.layer1"] = 0.9
        metrics[f"align.{lang}.cos_random.layer1"] = 0.6
    metrics["align.en.cka.layer1"] = 1.0  # never part of a non-English mean
    if inter == "none":
        metrics.update(
            {"align_pretrained.de.cka.layer1": 0.8, "align_pretrained.zh.cka.layer1": 0.6}
        )
    params = {**SIZE, "intermediate_task": inter, "target_task": "xnli", "seed": str(seed)}
    return {
        "run_id": f"{inter}{seed}",
        "status": "FINISHED",
        "params": params,
        "metrics": _with_debiased(metrics),
    }


def _with_debiased(metrics: dict) -> dict:
    """Stages log debiased CKA beside linear CKA; here the two are given equal values."""
    out = dict(metrics)
    for k, v in metrics.items():
        if ".cka." in k:
            out[k.replace(".cka.", ".cka_debiased.")] = v
    return out


def intermediate(inter: str, seed: int, cka: float, confidence: float) -> dict:
    metrics = {
        "align.de.cka.layer1": cka,
        "align.zh.cka.layer1": cka,
        "align_pretrained.de.cka.layer1": 0.8,
        "align_pretrained.zh.cka.layer1": 0.6,
        "mnli.en.subset.confidence": confidence,
    }
    params = {**SIZE, "intermediate_task": inter, "target_task": "none", "seed": str(seed)}
    return {
        "kind": "intermediate",
        "status": "FINISHED",
        "params": params,
        "metrics": _with_debiased(metrics),
    }


CARTOGRAPHY = {
    "kind": "cartography",
    "status": "FINISHED",
    "params": {**SIZE, "intermediate_task": "mnli", "target_task": "none", "seed": "0"},
    "metrics": {
        "mnli.en.probe.accuracy": 54.0,
        "mnli.en.probe.loss": 0.9,
        "mnli.en.cartography.confidence": 0.58,
        "mnli.en.cartography.share_easy": 0.2,
    },
}
TARGETS = [
    target("none", 0, 70, 60, 50, 0.70),
    target("none", 1, 72, 62, 52, 0.72),
    target("mnli:easy0.5", 0, 80, 70, 60, 0.60),
    target("mnli:easy0.5", 1, 82, 74, 64, 0.62),
    target("mnli:hard0.5", 0, 75, 61, 51, 0.66),
    target("mnli:hard0.5", 1, 77, 63, 55, 0.68),
]
STAGES = [
    CARTOGRAPHY,
    intermediate("mnli:easy0.5", 0, 0.50, 0.9),
    intermediate("mnli:easy0.5", 1, 0.54, 0.9),
    intermediate("mnli:hard0.5", 0, 0.70, 0.3),
    intermediate("mnli:hard0.5", 1, 0.74, 0.3),
]


@pytest.fixture(scope="module")
def analysis():
    return build_analysis(TARGETS, stages=STAGES)


def test_alignment_by_phase_at_the_last_layer(analysis):
    rows = {(r["intermediate_task"], r["metric"]): r for r in analysis.alignment_phases}
    hard = rows[("mnli:hard0.5", "cka")]
    assert hard["layer"] == 1  # the last layer measured
    assert hard["pretrained"].mean == pytest.approx(100 * (0.8 + 0.6) / 2)  # 70, x100
    assert hard["after_intermediate"].mean == pytest.approx(100 * (0.70 + 0.74) / 2)
    # target: (0.66 + 0.56) / 2 and (0.68 + 0.58) / 2 per seed, then the mean over seeds
    assert hard["after_target"].mean == pytest.approx(100 * (0.61 + 0.63) / 2)
    assert hard["change_intermediate"].mean == pytest.approx(72 - 70)
    assert hard["after_intermediate"].n == 2 and hard["after_intermediate"].half_width > 0
    none = rows[("none", "cka")]
    assert none["after_intermediate"].mean is None  # no intermediate phase
    assert rows[("none", "cos_gap")]["after_target"].mean == pytest.approx(100 * (0.9 - 0.6))
    layers = {(r["intermediate_task"], r["layer"]) for r in analysis.alignment_layers}
    assert ("mnli:easy0.5", 0) in layers and ("mnli:easy0.5", 1) in layers


def test_subsets_side_by_side_with_the_paired_difference(analysis):
    (row,) = analysis.subsets
    assert (row["task"], row["fraction"]) == ("mnli", 0.5)
    assert row["easy_non_en"].mean == pytest.approx((65 + 69) / 2)
    assert row["hard_non_en"].mean == pytest.approx((56 + 59) / 2)
    # easy - hard per seed: 65 - 56 = 9, 69 - 59 = 10
    assert row["easy_minus_hard_non_en"].gain.mean == pytest.approx(9.5)
    assert "ambiguous_non_en" not in row  # no ambiguous subset in this sweep


def test_difficulty_rows(analysis):
    rows = {r["intermediate_task"]: r for r in analysis.difficulty}
    assert set(rows) == {"mnli:easy0.5", "mnli:hard0.5"}
    easy = rows["mnli:easy0.5"]
    assert easy["map"] == "mnli" and easy["probe_accuracy"] == 54.0
    assert easy["cartography_share_easy"] == 0.2 and easy["cartography_share_hard"] is None
    assert easy["trained_confidence"].mean == pytest.approx(0.9)
    # non-English gain over none, paired by seed: 65 - 55 and 69 - 57
    assert easy["gain_non_en"].gain.mean == pytest.approx(11.0)


def test_correlations_use_runs_for_alignment_and_cells_for_difficulty(analysis):
    rows = {(r["predictor"], r["outcome"]): r for r in analysis.correlations}
    run_level = rows[("after_intermediate:cka_debiased", "gain_non_en")]
    assert run_level["points"] == "runs" and run_level["correlation"].n == 4
    # x: 50, 54, 70, 74 (x100); gain per run: 65 - 55, 69 - 57, 56 - 55, 59 - 57
    xs, ys = [50, 54, 70, 74], [10, 12, 1, 2]
    mx, my = sum(xs) / 4, sum(ys) / 4
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    sxx, syy = sum((x - mx) ** 2 for x in xs), sum((y - my) ** 2 for y in ys)
    assert run_level["correlation"].r == pytest.approx(sxy / math.sqrt(sxx * syy))
    cell = rows[("trained_confidence", "non_en")]
    assert cell["points"] == "cells" and cell["correlation"].n == 2  # two cells: not computable
    assert cell["correlation"].r is None


def test_pearson_with_fisher_interval_by_hand():
    # x mean 3, y mean 4.2; sum dx dy = 8, sxx = 10, syy = 8.8
    c = pearson([(1, 2), (2, 4), (3, 5), (4, 4), (5, 6), (None, 1)])
    r = 8 / math.sqrt(88)
    assert c.n == 5 and c.r == pytest.approx(r)
    half = 1.959964 / math.sqrt(5 - 3)
    assert c.ci_low == pytest.approx(math.tanh(math.atanh(r) - half), abs=1e-6)
    assert c.ci_high == pytest.approx(math.tanh(math.atanh(r) + half), abs=1e-6)
    assert 0 < c.p_value < 0.1
    assert pearson([(1, 1), (2, 2)]).r is None
    assert pearson([(1, 1), (1, 2), (1, 3)]).note == "not computable: a constant variable"


def test_gold_label_probability_and_correctness():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 3.0, 0.0]])
    out = gold_label(logits, {"labels": torch.tensor([0, 2, 0])})
    e2 = math.exp(2)
    assert out[0] == (pytest.approx(e2 / (e2 + 2)), True)
    assert out[1] == (pytest.approx(1 / 3), False)  # a three-way tie predicts label 0
    assert out[2][1] is False and out[2][0] == pytest.approx(1 / (math.exp(3) + 2))


def test_linear_probe_separates_what_is_separable_and_not_noise():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 8, generator=g)
    y = (x @ torch.randn(8, 3, generator=g)).argmax(dim=1)  # 3 linearly separable labels
    train, dev = (x[:200], None, y[:200]), (x[200:], None, y[200:])
    good = fit_probe(train, dev, 3)
    assert good["accuracy"] > 85 and good["loss"] < 0.5
    noise = torch.randint(0, 3, (300,), generator=g)
    bad = fit_probe((x[:200], None, noise[:200]), (x[200:], None, noise[200:]), 3)
    assert bad["accuracy"] < 50 and bad["loss"] > math.log(3) - 0.05
    # multiple choice: one score per choice, padding choices masked out
    choices = torch.randn(120, 3, 8, generator=g)
    gold = choices[:, :, 0].argmax(dim=1)
    mask = torch.ones(120, 3, dtype=torch.bool)
    mc = fit_probe((choices[:80], mask[:80], gold[:80]), (choices[80:], mask[80:], gold[80:]), None)
    assert mc["accuracy"] > 85
