"""Alignment metrics on constructed representations whose scores are known (tasks/alignment.py),
worked by hand on tiny matrices, and the parallel sentences they are measured on."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xscale import data as xdata
from xscale.errors import XScaleError
from xscale.tasks.alignment import (
    alignment_scores,
    cosine_stats,
    linear_cka,
    retrieval_accuracy,
)
from xscale.tasks.registry import TASKS

# X and Y are column-centred; by hand: X'X = [[2, 1], [1, 2]] (||.||_F = sqrt 10),
# Y'Y = [[8, 2], [2, 2]] (sqrt 76), Y'X = [[4, 2], [1, 2]] (||.||_F^2 = 25)
X = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])
Y = np.array([[2.0, 0.0], [0.0, 1.0], [-2.0, -1.0]])
CKA_BY_HAND = 25 / math.sqrt(10 * 76)  # 0.906848...


def test_linear_cka_matches_the_formula_worked_by_hand():
    assert linear_cka(X, Y) == pytest.approx(CKA_BY_HAND, abs=1e-12)
    assert linear_cka(X, Y) == pytest.approx(linear_cka(Y, X), abs=1e-12)  # symmetric
    # more features than examples: the n x n Gram route gives the same value
    wide_x, wide_y = np.hstack([X, np.zeros((3, 3))]), np.hstack([Y, np.zeros((3, 5))])
    assert linear_cka(wide_x, wide_y) == pytest.approx(CKA_BY_HAND, abs=1e-12)
    # one dimension: CKA is the squared Pearson correlation ([1,2,3] vs [1,3,2]: r = 1/2)
    assert linear_cka([[1.0], [2.0], [3.0]], [[1.0], [3.0], [2.0]]) == pytest.approx(0.25)


def test_identical_representations_score_one_everywhere():
    x = np.random.default_rng(0).normal(size=(50, 16))
    scores = alignment_scores(x, x.copy())
    assert scores["cka"] == pytest.approx(1.0)
    assert scores["retrieval"] == 100.0
    assert scores["cos_parallel"] == pytest.approx(1.0)
    assert scores["cos_random"] < 0.2  # random rows are far from each other


def test_cka_is_one_under_rotation_scaling_and_translation_but_retrieval_is_not():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 12))
    q, _ = np.linalg.qr(rng.normal(size=(12, 12)))  # a random orthogonal matrix
    y = 3.0 * x @ q + 5.0
    assert linear_cka(x, y) == pytest.approx(1.0, abs=1e-9)
    # cosine search compares x_i with y_j directly: a rotation breaks it
    assert retrieval_accuracy(x, y) < 20.0


def test_unrelated_random_representations_are_near_chance():
    rng = np.random.default_rng(2)
    n, d = 500, 8
    x, y = rng.normal(size=(n, d)), rng.normal(size=(n, d))
    scores = alignment_scores(x, y)
    # linear CKA of independent Gaussians is about d / (n + d), not 0 (module docstring)
    assert scores["cka"] == pytest.approx(d / (n + d), abs=0.01)
    assert scores["retrieval"] < 5 * 100 / n  # chance: 100/n = 0.2
    assert abs(scores["cos_parallel"]) < 0.05 and abs(scores["cos_random"]) < 0.01


def test_retrieval_and_cosines_worked_by_hand():
    x = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.1]])
    y = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    # English rows query y: x0 -> y0 right; x1 -> y1 (ties y2, lowest index) right; x2 -> y0
    # wrong. y rows query x: y0 -> x0 right, y1 -> x1 right, y2 -> x1 wrong. 2/3 both ways.
    assert retrieval_accuracy(x, y) == pytest.approx(200 / 3)
    c2 = 1 / math.sqrt(1.01)  # cos((1, 0.1), (1, 0))
    parallel, random = cosine_stats(x, y)
    assert parallel == pytest.approx((1 + 1 + 0.1 * c2) / 3)
    # the six non-parallel pairs: (x0,y1) 0, (x0,y2) 0, (x1,y0) 0, (x1,y2) 1, (x2,y0) c2,
    # (x2,y1) 0.1 c2
    assert random == pytest.approx((1 + c2 + 0.1 * c2) / 6)


def test_shapes_are_checked():
    with pytest.raises(ValueError):
        alignment_scores(np.zeros((3, 2)), np.zeros((4, 2)))
    with pytest.raises(ValueError):
        linear_cka(np.zeros((1, 2)), np.zeros((1, 2)))


def test_parallel_pairs_are_translations_row_by_row_and_distinct():
    pairs = xdata.parallel_pairs(TASKS["xnli"], "de", "fixtures", "test", 40)
    en = xdata.load_examples(TASKS["xnli"], "test", "en", "fixtures")
    de = xdata.load_examples(TASKS["xnli"], "test", "de", "fixtures")
    assert len(pairs) == 40
    assert pairs[0] == (en[0].fields["text_a"], de[0].fields["text_a"])  # premise, then hypothesis
    assert pairs[1] == (en[0].fields["text_b"], de[0].fields["text_b"])
    assert len({a for a, _ in pairs}) == 40 and len({b for _, b in pairs}) == 40
    tatoeba = xdata.parallel_pairs(TASKS["tatoeba"], "fr", "fixtures", "test", 10)
    rows = xdata.load_examples(TASKS["tatoeba"], "test", "fr", "fixtures")
    assert tatoeba[0] == (rows[0].fields["target"], rows[0].fields["source"])  # (English, fr)
    with pytest.raises(XScaleError, match="no parallel rows"):
        xdata.parallel_pairs(TASKS["mnli"], "de", "fixtures")


@pytest.mark.parametrize("width", [64, 768, 2048])
def test_debiased_cka_is_near_zero_for_unrelated_features_of_any_width(width):
    """200 pairs of unrelated random features: plain linear CKA is ~d/(n+d) (0.24 at 64,
    0.79 at XLM-R base's 768, 0.91 at 2048), so across sizes it tracks width; the debiased
    estimator stays near 0 and gives 1 for the same features turned by a rotation."""
    from xscale.tasks.alignment import debiased_cka, linear_cka

    rng = np.random.default_rng(width)
    n = 200
    x, y = rng.normal(size=(n, width)), rng.normal(size=(n, width))
    assert linear_cka(x, y) == pytest.approx(width / (n + width), abs=0.06)
    assert abs(debiased_cka(x, y)) < 0.03
    q, _ = np.linalg.qr(rng.normal(size=(width, width)))
    assert debiased_cka(x, 3.0 * x @ q) == pytest.approx(1.0, abs=1e-9)
