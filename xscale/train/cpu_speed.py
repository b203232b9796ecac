"""Dropout and attention for training on CPU, where torch's own dropout is the bottleneck.

torch draws a CPU dropout mask with one Mersenne-Twister call per element (`bernoulli_`), one
sequential stream that a second thread does not speed up: a quarter of tiny-l's training step
(`bench/step_probe.py`: 419 ms with it, 317 without dropout). Here a mask takes one 64-bit draw
per four elements: `random_()` on int64 gives 63 uniform bits, split into four 16-bit lanes
whose low 15 bits (uniform on 0..32767) decide one element each, kept when the lane is
>= round(p * 2^15).
So each element is dropped independently with probability p' = round(p * 2^15) / 2^15
(|p' - p| <= 2^-16: 0.100006 for p = 0.1) and kept ones are scaled by 1 / (1 - p'), which
keeps the expectation exact. The mask is drawn from torch's default generator, so a seeded
stage draws the same masks again. It is kept for backward as the activation's dtype (4 bytes
an element in fp32, where torch keeps a bool): more memory, fewer conversions.

`for_cpu(model)` swaps every `nn.Dropout` of a model for `FastDropout` (a subclass: `.p` and
isinstance checks still hold) and points its transformers encoders at `xscale_cpu`, the eager
attention (matmul, softmax, dropout, matmul; faster than SDPA at the tiny sizes' head sizes on
CPU) with this dropout on the attention probabilities. Weights, state dicts and exported
models are unchanged; nothing of it is used on GPU, where torch's fused dropout is fast.
"""

from __future__ import annotations

import math

import torch
from torch import nn

LANE_BITS = 15
LANES = 1 << LANE_BITS
ATTENTION = "xscale_cpu"


def drop_threshold(p: float) -> int:
    """Lanes below this value are dropped: p' = threshold / 2^15."""
    return round(p * LANES)


def keep_mask(shape, p: float, dtype=torch.float32, generator=None) -> torch.Tensor:
    """A mask of `shape` whose elements are 1 / (1 - p') with probability 1 - p', else 0,
    independently; p' = drop_threshold(p) / 2^15, which must be > 0."""
    threshold = drop_threshold(p)
    if not 0 < threshold < LANES:
        raise ValueError(f"dropout probability {p} rounds to {threshold}/{LANES}")
    n = math.prod(shape)
    words = torch.empty((n + 3) // 4, dtype=torch.int64).random_(generator=generator)
    lanes = words.view(torch.int16)[:n].bitwise_and_(LANES - 1)  # uniform on 0..2^15-1
    # lane - (threshold - 1) is >= 1 exactly when lane >= threshold (no int16 overflow: the
    # threshold is >= 1); clamped to {0, 1} it is the keep mask, without a bool tensor
    keep = lanes.sub_(threshold - 1).clamp_(0, 1).view(shape)
    return keep.to(dtype).mul_(LANES / (LANES - threshold))


def fast_dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    if not training:
        return x
    if x.is_cuda:  # torch's fused CUDA dropout is fast already
        return nn.functional.dropout(x, p, training)
    threshold = drop_threshold(p)
    if threshold == 0:
        return x
    if threshold >= LANES:
        return x * 0.0
    # the mask needs no gradient, so autograd keeps only it for backward (grad * mask)
    return x * keep_mask(x.shape, p, x.dtype)


class FastDropout(nn.Dropout):
    """nn.Dropout with the mask drawn four elements per random draw (see the module)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fast_dropout(x, self.p, self.training)


def attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """transformers' eager attention, with `fast_dropout` on the probabilities."""
    if scaling is None:
        scaling = query.size(-1) ** -0.5
    weights = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        weights = weights + attention_mask
    weights = nn.functional.softmax(weights, dim=-1)
    weights = fast_dropout(weights, dropout, module.training)
    out = torch.matmul(weights, value).transpose(1, 2).contiguous()
    return out, weights


def _register() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface

    AttentionInterface.register(ATTENTION, attention)  # a dict update: again is harmless
    AttentionMaskInterface.register(ATTENTION, ALL_MASK_ATTENTION_FUNCTIONS["eager"])


def for_cpu(model: nn.Module) -> nn.Module:
    """Swap dropout and attention for their CPU versions, in place; returns the model."""
    from transformers import PreTrainedModel

    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Dropout:
                setattr(parent, name, FastDropout(child.p, child.inplace))
    encoders = [m for m in model.modules() if isinstance(m, PreTrainedModel)]
    if encoders:
        _register()
    for m in encoders:
        if m._can_set_attn_implementation():
            m.set_attn_implementation(ATTENTION)
    return model
