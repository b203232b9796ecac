"""Dataset cartography on constructed training dynamics (tasks/cartography.py): no training."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xscale.errors import XScaleError
from xscale.tasks.cartography import (
    build_map,
    read_map,
    select,
    subset_size,
    summary,
    write_map,
)

EPOCHS = 4


def dynamics(n_each: int = 10, lang: str = "en"):
    """3 x n_each examples over 4 epochs: always right with a high gold probability (easy),
    flipping between low and high (ambiguous), always wrong with a low one (hard)."""
    easy = [[0.90, 0.95, 0.97, 0.99]] * n_each
    ambiguous = [[0.20, 0.80, 0.30, 0.90]] * n_each
    hard = [[0.05, 0.04, 0.06, 0.05]] * n_each
    probs = np.array(easy + ambiguous + hard).T  # epochs x examples
    right = probs > 0.5
    guids = [f"{lang}-{i}" for i in range(3 * n_each)]
    return guids, [lang] * len(guids), probs, right


def test_map_quantities_worked_by_hand():
    entries = build_map(*dynamics())
    flip = entries[10]  # probabilities 0.2, 0.8, 0.3, 0.9; right at epochs 2 and 4
    assert flip.confidence == pytest.approx(0.55)
    # population std: deviations -0.35, 0.25, -0.25, 0.35 -> sqrt(0.37 / 4)
    assert flip.variability == pytest.approx(math.sqrt(0.37 / 4))
    assert flip.correctness == pytest.approx(0.5)
    assert entries[0].correctness == 1.0 and entries[20].correctness == 0.0
    assert entries[0].probs == (0.9, 0.95, 0.97, 0.99)


def test_examples_always_right_land_in_easy_and_subsets_have_the_declared_size():
    entries = build_map(*dynamics())
    n = len(entries)
    for fraction in (0.33, 0.1, 0.2):
        size = subset_size(n, fraction)
        assert size == round(n * fraction)
        for subset in ("easy", "ambiguous", "hard"):
            assert len(select(entries, subset, fraction)) == size
    # a third of 30 = 10: each region exactly
    assert select(entries, "easy", 0.33) == [f"en-{i}" for i in range(10)]
    assert select(entries, "ambiguous", 0.33) == [f"en-{i}" for i in range(10, 20)]
    assert select(entries, "hard", 0.33) == [f"en-{i}" for i in range(20, 30)]
    # a smaller easy share still comes only from the always-right examples
    assert all(
        entries[int(g.split("-")[1])].correctness == 1.0 for g in select(entries, "easy", 0.2)
    )


def test_subsets_are_chosen_per_language():
    en = dynamics(10, "en")
    de = dynamics(2, "de")
    merged = [a + b for a, b in zip(en[:2], de[:2])]
    probs = np.hstack([en[2], de[2]])
    right = np.hstack([en[3], de[3]])
    entries = build_map(merged[0], merged[1], probs, right)
    chosen = select(entries, "easy", 0.5)
    assert len([g for g in chosen if g.startswith("en")]) == 15  # half of 30
    assert len([g for g in chosen if g.startswith("de")]) == 3  # half of 6
    assert subset_size(5, 0.01) == 1  # never empty


def test_ties_keep_the_training_order():
    guids = ["a", "b", "c", "d"]
    probs = np.array([[0.5, 0.5, 0.5, 0.5], [0.5, 0.5, 0.5, 0.5]])
    entries = build_map(guids, ["en"] * 4, probs, probs > 0.6)
    assert select(entries, "easy", 0.5) == ["a", "b"]
    assert select(entries, "hard", 0.5) == ["a", "b"]


def test_summary_shares():
    s = summary(build_map(*dynamics()))
    assert s["share_easy"] == pytest.approx(1 / 3)
    assert s["share_ambiguous"] == pytest.approx(1 / 3)
    assert s["share_hard"] == pytest.approx(1 / 3)
    assert s["confidence"] == pytest.approx((0.9525 + 0.55 + 0.05) / 3)
    assert s["correctness"] == pytest.approx((1 + 0.5 + 0) / 3)


def test_a_map_needs_two_epochs_and_distinct_guids():
    guids, langs, probs, right = dynamics()
    with pytest.raises(ValueError, match="2 epochs"):
        build_map(guids, langs, probs[:1], right[:1])
    with pytest.raises(ValueError, match="distinct"):
        build_map(["x"] * len(guids), langs, probs, right)


def test_map_file_round_trip_and_malformed_lines(tmp_path):
    entries = build_map(*dynamics())
    path = tmp_path / "cartography.jsonl"
    write_map(path, entries)
    assert read_map(path) == entries
    lines = path.read_text().splitlines()
    lines[4] = '{"guid": "x"}'
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(XScaleError, match=r"cartography.jsonl:5: not a cartography map entry"):
        read_map(path)
