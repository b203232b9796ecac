"""Statistics a reviewer would accept (issue 25): size effects estimated at the level where
they vary, deterministic cells said as such, many tests counted and adjusted."""

from __future__ import annotations

import numpy as np
import pytest

from xscale.analyze.stats import adjust, fit_log_params, size_trend, summarize

SIZES = (2.7e8, 5.6e8, 3.5e9, 1.07e10)  # XLM-R base .. XXL


def _simulate(rng, slope=7.0, checkpoint_sd=3.0, seed_sd=2.0, seeds=3):
    """One sweep: each size one checkpoint (its own offset), fine-tuned with `seeds` seeds."""
    out = {}
    for p in SIZES:
        offset = rng.normal(0, checkpoint_sd)  # the pretraining draw: one per size
        out[p] = list(50 + slope * np.log10(p) + offset + rng.normal(0, seed_sd, seeds))
    return out


def test_size_level_intervals_cover_the_true_slope():
    rng = np.random.default_rng(0)
    hits = old_hits = 0
    runs = 1000
    for _ in range(runs):
        sweep = _simulate(rng)
        t = size_trend(sweep)
        assert t.kind == "fit" and t.n_sizes == 4
        hits += t.ci_low <= 7.0 <= t.ci_high
        old = fit_log_params([(p, y) for p, ys in sweep.items() for y in ys])  # seed-level OLS
        old_hits += old.slope_ci[0] <= 7.0 <= old.slope_ci[1]
    assert hits / runs >= 0.93, hits / runs
    assert old_hits / runs < 0.85, old_hits / runs  # seeds as replicates: too narrow


def test_two_sizes_are_a_comparison_of_two_checkpoints_never_a_slope():
    t = size_trend({2.7e8: [60, 61, 59], 5.6e8: [66, 65, 67]}, {2.7e8: "base", 5.6e8: "large"})
    assert t.kind == "two_models" and t.sizes == ("base", "large")
    assert t.estimate == pytest.approx(6.0) and t.ci_low < 6.0 < t.ci_high
    assert "not a trend" in t.note
    assert size_trend({2.7e8: [60, 61]}).kind == "none"


def test_identical_replicates_are_deterministic_not_certain():
    s = summarize([98.75, 98.75, 98.75])
    assert s.deterministic and s.half_width is None and s.ci is None
    assert size_trend({1e5: [98.75] * 3, 3e5: [98.75] * 3}).kind == "deterministic"
    from xscale.analyze.formatting import fmt

    assert "± 0.00" not in fmt(s) and "deterministic" in fmt(s)
    t = size_trend({1e5: [98.75] * 3, 3e5: [93.12] * 3, 1e6: [90.0] * 3, 3e6: [85.0] * 3})
    assert "r²=1" not in fmt(t) and "±" not in fmt(t)


def test_holm_and_benjamini_hochberg_by_hand():
    # four tests; Holm: sorted p times (4, 3, 2, 1), running max; BH: p * 4 / rank, running min
    holm, bh = adjust([0.01, 0.04, None, 0.03, 0.005])
    assert holm[2] is None and bh[2] is None
    assert holm == pytest.approx([0.03, 0.06, None, 0.06, 0.02], nan_ok=True)
    assert bh == pytest.approx([0.02, 0.04, None, 0.04, 0.02], nan_ok=True)


def test_a_trend_by_hand_on_per_size_means():
    """Means 10, 13, 15, 19 at 10^6..10^9 parameters: slope 14.5 / 5 = 2.9, SSE 0.70, so the
    slope's SE is sqrt(0.35 / 5) and its interval t(0.975, df=2) = 4.302653 times that."""
    by_size = {
        10.0**6: [9, 10, 11],
        10.0**7: [12, 13, 14],
        10.0**8: [14, 15, 16],
        10.0**9: [18, 19, 20],
    }
    t = size_trend(by_size)
    assert t.kind == "fit" and t.n_sizes == 4 and t.n == 12
    assert t.estimate == pytest.approx(2.9)
    half = 4.302653 * (0.35 / 5) ** 0.5
    assert t.ci_low == pytest.approx(2.9 - half, abs=1e-5)
    assert t.ci_high == pytest.approx(2.9 + half, abs=1e-5)
    assert t.r2 == pytest.approx(1 - 0.70 / (4.25**2 + 1.25**2 + 0.75**2 + 4.75**2))


def test_correlation_within_sizes_is_not_driven_by_size():
    """Across two sizes x and y both rise (pooled r > 0.9); within each size they fall.
    Centred on each size's means: sum dx*dy = -3.5, sum dx^2 = 4, sum dy^2 = 10/3."""
    from xscale.analyze.stats import pearson, within_size_correlation

    pts = [(1, 10, "s"), (2, 9.5, "s"), (3, 8, "s"), (11, 30, "l"), (12, 29, "l"), (13, 28.5, "l")]
    within = within_size_correlation(pts)
    assert within.r == pytest.approx(-3.5 / (4 * 10 / 3) ** 0.5)
    assert "df=3" in within.note and within.p_value < 0.05
    assert pearson([(x, y) for x, y, _ in pts]).r > 0.9
    one_each = within_size_correlation([(1, 2, "a"), (2, 3, "b"), (3, 1, "c")])
    assert one_each.r is None and "within sizes" in one_each.note


def test_circular_pairs_are_left_out():
    from xscale.analyze.difficulty import circular

    assert circular("tatoeba", "after_target:retrieval")  # translation retrieval, twice
    assert circular("bucc", "change_intermediate:retrieval")
    assert not circular("xnli", "after_target:retrieval")
    assert not circular("tatoeba", "after_target:cka")


def _stage(size, seed):
    return {"kind": "pretrain", "params": {"model_size": size, "seed": str(seed)}, "metrics": {}}


def test_the_report_says_what_its_intervals_include():
    """One pretraining run per size: the ± is fine-tuning variance only, and two sizes are no
    trend; a pretraining run per seed: the ± includes the pretraining draw."""
    from test_analyze import grid

    from xscale import analyze as A
    from xscale.analyze.questions import reading_note

    two = [r for r in grid() if r["params"]["model_size"] != "tiny-l"]
    one_each = A.build_analysis(two, stages=[_stage("tiny-s", 0), _stage("tiny-m", 0)])
    note = reading_note(one_each.scored)
    assert "2 size(s) (tiny-s, tiny-m) and 3 seed(s)" in note
    assert "tiny-s, tiny-m: one checkpoint per size" in note and "fine-tuning variance" in note
    assert "needs at least 3 sizes" in note and "pretrain.per_seed" not in note
    per_seed = [_stage(s, seed) for s in ("tiny-s", "tiny-m", "tiny-l") for seed in (1, 2, 3)]
    every = reading_note(A.build_analysis(grid(), stages=per_seed).scored)
    assert "tiny-s, tiny-m, tiny-l: each seed pretrains its own checkpoint" in every
    assert "one checkpoint per size" not in every and "needs at least 3 sizes" not in every
