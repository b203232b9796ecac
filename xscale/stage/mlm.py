"""Masked-LM pieces shared by the pretrain stage and continued MLM during fine-tuning.

text files (pretrain/<lang>.txt, or a parallel task's training rows)  -> lines
lines -> token ids -> `MaskingCollate` (BERT's 80/10/10 at `mlm_probability`) -> batch
encoder hidden states -> `masked_lm_loss` (the LM head on masked positions only)
"""

from __future__ import annotations

import torch
from torch import nn


class MaskingCollate:
    """Token id lists -> a padded MLM batch (input_ids, attention_mask, labels) with BERT's
    masking (of the chosen positions 80% <mask>, 10% random, 10% kept) at `probability`."""

    def __init__(self, tokenizer, probability: float):
        from transformers import DataCollatorForLanguageModeling

        self.masker = DataCollatorForLanguageModeling(tokenizer, mlm_probability=probability)

    def __call__(self, features: list[dict]) -> dict:
        batch = self.masker([{"input_ids": f["input_ids"]} for f in features])
        return {k: batch[k] for k in ("input_ids", "attention_mask", "labels")}


def masked_lm_loss(lm_head: nn.Module, hidden: torch.Tensor, labels: torch.Tensor):
    """(loss, logits of the masked positions). The LM head (a vocabulary-wide softmax) runs on
    the masked positions only: the loss is the full head's with ignore_index, at a fraction of
    its cost. A batch with nothing masked (very short lines) gives 0 loss, not NaN."""
    where = labels != -100
    logits = lm_head(hidden[where])
    if logits.shape[0]:
        return nn.functional.cross_entropy(logits.float(), labels[where]), logits
    return hidden.sum() * 0.0, logits
