"""Micro batches with gradient accumulation (`resources.<size>.micro_batch_size`) and gradient
checkpointing give the update one whole batch gives (dropout off, so both compute the same)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from xscale.catalog.cluster import micro_and_accumulation
from xscale.train.loop import micro_batches


class _Model(nn.Module):
    """A tiny XLM-R encoder with a classification loss, as the stage's models are called."""

    def __init__(self, checkpointing: bool):
        super().__init__()
        from transformers import AutoModel

        from xscale.catalog.sizes import model_config

        cfg = model_config("tiny-xs")
        cfg.hidden_dropout_prob = cfg.attention_probs_dropout_prob = 0.0
        torch.manual_seed(0)
        self.encoder = AutoModel.from_config(cfg, add_pooling_layer=False)
        if checkpointing:
            from xscale.train.model import recompute_activations

            recompute_activations(self.encoder)
        self.head = nn.Linear(cfg.hidden_size, 3)

    def forward(self, batch):
        h = self.encoder(input_ids=batch["input_ids"]).last_hidden_state[:, 0]
        logits = self.head(h)
        return nn.functional.cross_entropy(logits, batch["labels"]), logits


def _one_step(micro: int, accumulation: int, checkpointing: bool):
    from xscale.catalog.recipes import load_ds_config
    from xscale.sweep.phases import PhaseConfig
    from xscale.train.distributed import init_distributed
    from xscale.train.loop import train

    init_distributed()
    from xscale.train.loop import build_engine

    hp = PhaseConfig(learning_rate=1e-2, batch_size=8, max_steps=1, max_length=16, log_every=1)
    cfg = load_ds_config("cpu_zero2.json", micro_batch_size=micro, grad_accum=accumulation)
    engine = build_engine(_Model(checkpointing), hp, 1, cfg)
    grads: dict[str, torch.Tensor] = {}  # summed over the micro batches' backward passes

    def keep(name):
        return lambda g: grads.__setitem__(name, grads.get(name, 0) + g.detach().clone())

    for name, p in engine.module.named_parameters():
        p.register_hook(keep(name))
    g = torch.Generator().manual_seed(1)
    batch = {
        "input_ids": torch.randint(5, 900, (8, 12), generator=g),
        "labels": torch.randint(0, 3, (8,), generator=g),
    }
    train(engine, 1, lambda step: (batch, 8), hp, None, lambda *a: None)
    state = {k: v.detach().clone() for k, v in engine.module.state_dict().items()}
    return state, grads


def test_four_micro_batches_of_two_update_as_one_batch_of_eight():
    (whole, grad), init = _one_step(8, 1, checkpointing=False), _init()
    assert any(not torch.equal(whole[k], init[k]) for k in whole), "the step changed nothing"
    for micro, accumulation, checkpointing in ((2, 4, False), (2, 4, True), (8, 1, True)):
        state, g = _one_step(micro, accumulation, checkpointing)
        # the gradient itself (Adam's update would hide a wrong scale): the batch mean's
        assert g.keys() == grad.keys()
        for k in grad:
            torch.testing.assert_close(g[k], grad[k], rtol=1e-4, atol=1e-7)
        for k in whole:  # and the update, to 1% of the learning rate (float summation order)
            torch.testing.assert_close(state[k], whole[k], rtol=0, atol=1e-4)


def _init() -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in _Model(False).state_dict().items()}


def test_micro_batches_split_every_per_example_tensor():
    batch = {"input_ids": torch.arange(10).view(5, 2), "labels": torch.arange(5), "task": "x"}
    parts = micro_batches(batch, 2)
    assert [w for _, w in parts] == [1.0, 1.0]
    assert torch.equal(torch.cat([p["input_ids"] for p, _ in parts]), batch["input_ids"])
    assert all(p["task"] == "x" for p, _ in parts)
    # fewer examples than micro batches: the count is kept with weight-0 copies
    short = micro_batches({"input_ids": torch.zeros(1, 3), "labels": torch.zeros(1)}, 3)
    assert [w for _, w in short] == [1.0, 0.0, 0.0]


@pytest.mark.parametrize(
    "global_batch,world,cap,expected",
    [(32, 1, 16, (16, 2)), (32, 4, 8, (8, 1)), (32, 8, 4, (4, 1)), (32, 1, None, (32, 1)),
     (24, 1, 16, (12, 2)), (2, 4, 8, (1, 1))],
)  # fmt: skip
def test_micro_batch_is_the_largest_divisor_under_the_cap(global_batch, world, cap, expected):
    assert micro_and_accumulation(global_batch, world, cap) == expected


def test_a_non_finite_training_loss_fails_the_phase_naming_the_step_and_the_key():
    # the model's weights blown up (as a too-large learning rate leaves them): the loss of the
    # first step is NaN, and the phase stops there with one line, instead of training on
    from xscale.catalog.recipes import load_ds_config
    from xscale.errors import XScaleError
    from xscale.sweep.phases import PhaseConfig
    from xscale.train.distributed import init_distributed
    from xscale.train.loop import build_engine, train

    init_distributed()
    hp = PhaseConfig(learning_rate=1e-3, batch_size=8, max_steps=3, max_length=16, log_every=1)
    cfg = load_ds_config("cpu_zero2.json", micro_batch_size=8, grad_accum=1)
    engine = build_engine(_Model(False), hp, 3, cfg)
    with torch.no_grad():
        engine.module.head.weight.fill_(float("inf"))
    g = torch.Generator().manual_seed(1)
    batch = {
        "input_ids": torch.randint(5, 900, (8, 12), generator=g),
        "labels": torch.randint(0, 3, (8,), generator=g),
    }
    logged = []
    with pytest.raises(XScaleError) as err:
        train(engine, 3, lambda step: (batch, 8), hp, None, lambda *a: logged.append(a))
    msg = str(err.value)
    assert "\n" not in msg and "nan at step 1 of 3" in msg and "learning_rate" in msg
    assert logged == []  # nothing logged as if it were a result
