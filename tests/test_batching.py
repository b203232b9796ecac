"""Training batch order (random / grouped by length), the prefetching thread, MLM masking as a
pure function of the step, and length-sorted evaluation that returns predictions in order."""

from __future__ import annotations

import math
import random

import pytest
import torch

from xscale.stage.mlm import MaskingCollate
from xscale.train.batching import (
    EpochOrder,
    Prefetcher,
    epoch_batches,
    feature_length,
    length_order,
)
from xscale.train.loop import predict


def skewed_lengths(n: int, seed: int = 0) -> list[int]:
    rng = random.Random(seed)  # most short, some long: like sentence pairs
    return [min(128, int(rng.lognormvariate(3.3, 0.6))) + 4 for _ in range(n)]


def test_random_order_is_the_seeded_permutation_cut_in_order():
    n, bs = 103, 10
    for epoch in (0, 1, 5):
        g = torch.Generator().manual_seed(7 * 100_003 + epoch)  # the order before grouping
        perm = torch.randperm(n, generator=g).tolist()
        want = [perm[i : i + bs] for i in range(0, n, bs)]
        assert epoch_batches(n, bs, 7, epoch) == want


@pytest.mark.parametrize("n, bs", [(1000, 32), (103, 10), (5, 8), (3200, 32)])
def test_grouped_epoch_sees_every_example_once(n, bs):
    lengths = skewed_lengths(n)
    batches = epoch_batches(n, bs, 3, 0, lengths)
    assert len(batches) == math.ceil(n / bs)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(n))
    assert sum(len(b) < bs for b in batches) <= 1  # only the last chunk's tail is partial


def test_grouped_order_is_a_pure_function_of_seed_and_epoch():
    lengths = skewed_lengths(2000)
    a = EpochOrder(2000, 32, 11, lengths)
    b = EpochOrder(2000, 32, 11, lengths)
    steps = [0, 5, 62, 63, 64, 130, 7]  # across epochs and back (63 steps per epoch)
    assert [a(s) for s in steps] == [b(s) for s in steps]
    assert a(0) != a(63)  # epoch 1 is a new order
    assert EpochOrder(2000, 32, 12, lengths)(0) != a(0)


def test_grouping_computes_far_fewer_pad_tokens():
    n, bs = 4000, 32
    lengths = skewed_lengths(n)

    def computed(batches):  # every row of a batch is padded to the batch's longest
        return sum(len(b) * max(lengths[i] for i in b) for b in batches)

    real = sum(lengths)
    random_order = computed(epoch_batches(n, bs, 0, 0))
    grouped = computed(epoch_batches(n, bs, 0, 0, lengths))
    assert real / random_order < 0.5  # random batches: most computed tokens are padding
    assert real / grouped > 0.9
    # batches are not sorted end to end: long and short batches alternate through the epoch
    maxima = [max(lengths[i] for i in b) for b in epoch_batches(n, bs, 0, 0, lengths)]
    assert maxima != sorted(maxima) and maxima != sorted(maxima, reverse=True)


def test_feature_length():
    assert feature_length({"input_ids": [1, 2, 3]}) == 3
    assert feature_length({"input_ids": [[1, 2], [1, 2, 3, 4]]}) == 4  # choices
    assert feature_length({"query_ids": [1, 2], "candidate_ids": [1]}) == 2
    assert length_order([{"input_ids": [1]}, {"input_ids": [1, 2, 3]}, {"input_ids": [1]}]) == [
        1,
        0,
        2,
    ]


# --------------------------------------------------------------------------- prefetching


def test_prefetcher_yields_every_step_in_order():
    made = []

    def get(step):
        made.append(step)
        return step * 10

    assert list(Prefetcher(get, range(3, 20))) == [(s, s * 10) for s in range(3, 20)]
    assert made == list(range(3, 20))


def test_prefetcher_raises_at_the_failing_step_and_stops_when_closed():
    def get(step):
        if step == 5:
            raise ValueError("bad row")
        return step

    seen = []
    with pytest.raises(ValueError, match="bad row"):
        for step, _ in Prefetcher(get, range(10)):
            seen.append(step)
    assert seen == [0, 1, 2, 3, 4]

    made = []
    p = Prefetcher(lambda s: made.append(s) or s, range(10_000), depth=2)
    next(iter(p))
    p.close()
    assert len(made) < 10  # it stopped instead of building every batch


# --------------------------------------------------------------------------- masking


class Tok:
    pad_token_id, mask_token_id = 1, 4
    all_special_ids = [0, 1, 2, 3, 4]

    def __len__(self):
        return 1000


def test_masking_is_a_pure_function_of_the_step():
    feats = [{"input_ids": [0] + list(range(5, 5 + k)) + [2]} for k in (30, 50, 64, 10)]
    collate = MaskingCollate(Tok(), 0.15, seed=3)
    a, b = collate(feats, 8), collate(feats, 8)
    assert all(torch.equal(a[k], b[k]) for k in a)
    torch.manual_seed(0)  # the global generator plays no part
    c = collate(feats, 8)
    assert torch.equal(a["input_ids"], c["input_ids"])
    assert not torch.equal(collate(feats, 9)["labels"], a["labels"])
    assert not torch.equal(MaskingCollate(Tok(), 0.15, seed=4)(feats, 8)["labels"], a["labels"])


def test_masking_follows_bert():
    rows = [[0] + [5 + (i * 7 + j) % 900 for j in range(126)] + [2] for i in range(400)]
    feats = [{"input_ids": r} for r in rows]
    batch = MaskingCollate(Tok(), 0.15, seed=0)(feats, 0)
    original = torch.tensor(rows)
    chosen = batch["labels"] != -100
    assert not chosen[:, 0].any() and not chosen[:, -1].any()  # specials never chosen
    assert torch.equal(batch["labels"][chosen], original[chosen])
    share = chosen.float().mean().item() * 128 / 126
    assert 0.14 < share < 0.16
    masked = (batch["input_ids"] == 4) & chosen
    kept = (batch["input_ids"] == original) & chosen
    assert 0.78 < masked.sum() / chosen.sum() < 0.82
    assert 0.08 < kept.sum() / chosen.sum() < 0.12  # (a random token equal to the original too)
    assert torch.equal(batch["input_ids"][~chosen], original[~chosen])
    assert batch["attention_mask"].all()


# --------------------------------------------------------------------------- evaluation order


class LengthEngine:
    """A stand-in engine: each row's 'logit' is its real length; records batch widths."""

    device = "cpu"

    def __init__(self):
        self.widths = []

    def eval(self):
        pass

    def train(self):
        pass

    def __call__(self, batch):
        assert not torch.is_grad_enabled()
        self.widths.append(batch["input_ids"].shape[1])
        return None, batch["attention_mask"].sum(dim=1)


def test_predict_batches_by_length_and_returns_input_order():
    lengths = skewed_lengths(300, seed=4)
    feats = [{"input_ids": [5] * n} for n in lengths]

    def collate(fs):
        width = max(len(f["input_ids"]) for f in fs)
        ids = torch.ones((len(fs), width), dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, f in enumerate(fs):
            mask[i, : len(f["input_ids"])] = 1
        return {"input_ids": ids, "attention_mask": mask}

    engine = LengthEngine()
    preds = predict(engine, feats, collate, lambda logits, b: logits.tolist(), batch_size=32)
    assert preds == lengths
    assert engine.widths == sorted(engine.widths, reverse=True)
    computed = sum(engine.widths[i] * min(32, 300 - 32 * i) for i in range(len(engine.widths)))
    in_file_order = sum(
        len(lengths[i : i + 32]) * max(lengths[i : i + 32]) for i in range(0, 300, 32)
    )
    assert computed < 0.6 * in_file_order
