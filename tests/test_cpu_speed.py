"""The CPU dropout and attention of xscale/train/cpu_speed.py: the same distribution and the
same model function as torch's and transformers' own."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from xscale.train import cpu_speed
from xscale.train.cpu_speed import LANES, drop_threshold, fast_dropout, for_cpu, keep_mask

N = 1 << 22  # 4M draws: the standard error of a rate near 0.1 is 1.5e-4


def _encoder(dropout: float = 0.1):
    from transformers import XLMRobertaModel

    from xscale.catalog.sizes import get_size, model_config

    cfg = model_config(get_size("tiny-s"), vocab_size=200)
    cfg.hidden_dropout_prob = cfg.attention_probs_dropout_prob = dropout
    torch.manual_seed(0)
    return XLMRobertaModel(cfg, add_pooling_layer=False)


def _batch():
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, 200, (6, 17), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0  # padded rows: the attention mask must be applied the same way
    mask[4, 3:] = 0
    return ids, mask


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9, 0.013])
def test_mask_drops_each_element_with_the_declared_probability_and_keeps_the_mean(p):
    torch.manual_seed(0)
    m = keep_mask((N,), p)
    p_eff = drop_threshold(p) / LANES
    assert abs(p_eff - p) <= 1 / (2 * LANES)
    dropped = (m == 0).double()
    se = math.sqrt(p_eff * (1 - p_eff) / N)
    assert abs(dropped.mean().item() - p_eff) < 5 * se
    kept = m[m != 0]
    assert torch.allclose(kept, torch.full_like(kept, 1 / (1 - p_eff)))
    # expectation preserved: mean of the mask is 1 (its standard error: sqrt(p'/(1-p')/N))
    assert abs(m.double().mean().item() - 1) < 5 * math.sqrt(p_eff / (1 - p_eff) / N)
    # every lane of a 64-bit draw (the fourth has one bit fewer) drops at the same rate
    by_lane = dropped.view(-1, 4).mean(0)
    se_lane = math.sqrt(p_eff * (1 - p_eff) / (N // 4))
    assert (by_lane - p_eff).abs().max().item() < 5 * se_lane


def test_mask_elements_are_independent_within_and_across_draws():
    torch.manual_seed(0)
    p = 0.3
    d = (keep_mask((N,), p) == 0).double()
    p_eff = drop_threshold(p) / LANES
    se = math.sqrt(p_eff**2 * (1 - p_eff**2) / N)
    for lag in (1, 2, 3, 4, 5, 8):  # lanes of one draw, and of neighbouring draws
        both = (d[:-lag] * d[lag:]).mean().item()
        assert abs(both - p_eff**2) < 6 * se, lag


def test_masks_follow_the_default_generator_seed():
    torch.manual_seed(7)
    a = keep_mask((1000,), 0.1)
    torch.manual_seed(7)
    b = keep_mask((1000,), 0.1)
    c = keep_mask((1000,), 0.1)
    assert torch.equal(a, b) and not torch.equal(b, c)


def test_gradient_is_the_mask_and_eval_is_the_identity():
    x = torch.randn(64, 33, requires_grad=True)
    torch.manual_seed(3)
    y = fast_dropout(x, 0.2)
    torch.manual_seed(3)
    mask = keep_mask(x.shape, 0.2)
    assert torch.equal(y, x * mask)
    y.sum().backward()
    assert torch.equal(x.grad, mask)
    assert fast_dropout(x, 0.2, training=False) is x
    assert fast_dropout(x, 0.0) is x
    assert torch.equal(fast_dropout(x, 1.0), torch.zeros_like(x))
    with pytest.raises(ValueError):
        keep_mask((3,), 0.0)


def test_swapped_model_computes_the_same_function_without_dropout():
    ids, mask = _batch()
    ref = _encoder()
    fast = for_cpu(_encoder())
    assert fast.config._attn_implementation == cpu_speed.ATTENTION
    assert not any(type(m) is nn.Dropout for m in fast.modules())
    assert any(isinstance(m, cpu_speed.FastDropout) for m in fast.modules())
    ref.eval(), fast.eval()
    with torch.no_grad():
        a = ref(input_ids=ids, attention_mask=mask).last_hidden_state
        b = fast(input_ids=ids, attention_mask=mask).last_hidden_state
    real = mask.bool()
    assert torch.allclose(a[real], b[real], atol=1e-5)
    # training mode with every dropout at 0: the same output and the same gradients
    ref0, fast0 = _encoder(0.0), for_cpu(_encoder(0.0))
    ref0.train(), fast0.train()
    a = ref0(input_ids=ids, attention_mask=mask).last_hidden_state
    b = fast0(input_ids=ids, attention_mask=mask).last_hidden_state
    assert torch.allclose(a[real], b[real], atol=1e-5)
    a[real].sum().backward(), b[real].sum().backward()
    for (name, pa), (_, pb) in zip(ref0.named_parameters(), fast0.named_parameters(), strict=True):
        assert torch.allclose(pa.grad, pb.grad, atol=1e-4), name


def test_dropout_in_training_changes_the_output_and_is_seeded():
    ids, mask = _batch()
    model = for_cpu(_encoder(0.1)).train()
    torch.manual_seed(5)
    a = model(input_ids=ids, attention_mask=mask).last_hidden_state
    torch.manual_seed(5)
    b = model(input_ids=ids, attention_mask=mask).last_hidden_state
    c = model(input_ids=ids, attention_mask=mask).last_hidden_state
    assert torch.equal(a, b) and not torch.allclose(a, c)


def test_an_exported_model_does_not_need_xscale_to_load(tmp_path):
    from transformers import AutoModel

    model = for_cpu(_encoder())
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert cpu_speed.ATTENTION not in json.dumps(config)
    loaded = AutoModel.from_pretrained(str(tmp_path))
    assert loaded.config._attn_implementation != cpu_speed.ATTENTION
    assert not any(isinstance(m, cpu_speed.FastDropout) for m in loaded.modules())


def test_build_engine_on_cpu_swaps_dropout_and_attention():
    from xscale.catalog.recipes import load_ds_config
    from xscale.sweep.phases import PhaseConfig
    from xscale.train.distributed import init_distributed
    from xscale.train.loop import build_engine

    init_distributed()
    model = _encoder()
    hp = PhaseConfig(learning_rate=1e-4, batch_size=4, max_steps=2, epochs=1, max_length=16)
    engine = build_engine(model, hp, 2, load_ds_config("cpu_zero2.json", micro_batch_size=4))
    assert engine.module.config._attn_implementation == cpu_speed.ATTENTION
    dropouts = [m for m in engine.module.modules() if isinstance(m, nn.Dropout)]
    assert dropouts and all(isinstance(m, cpu_speed.FastDropout) for m in dropouts)
