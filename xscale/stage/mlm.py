"""Masked-LM pieces shared by the pretrain stage and continued MLM during fine-tuning.

text files (pretrain/<lang>.txt, or a parallel task's training rows)  -> lines
lines -> token ids -> `MaskingCollate` (BERT's 80/10/10 at `mlm_probability`) -> batch
encoder hidden states -> `masked_lm_loss` (the LM head on masked positions only)
"""

from __future__ import annotations

import torch
from torch import nn

from xscale.tasks.padding import pad_batch
from xscale.train.batching import step_generator


class MaskingCollate:
    """Token id lists -> a padded MLM batch (input_ids, attention_mask, labels) with BERT's
    masking: of the non-special positions, `probability` are chosen; of those 80% become
    <mask>, 10% a random token, 10% stay (labels -100 elsewhere). The random draws come from a
    generator seeded by (`seed`, step), so a batch is a pure function of its step: the same on
    a resume, and whatever thread builds it (`train.batching.Prefetcher`)."""

    def __init__(self, tokenizer, probability: float, seed: int = 0):
        self.pad_id = tokenizer.pad_token_id
        self.mask_id = tokenizer.mask_token_id
        self.vocab_size = len(tokenizer)
        self.special = torch.tensor(sorted(set(tokenizer.all_special_ids)), dtype=torch.long)
        self.probability, self.seed = probability, seed

    def __call__(self, features: list[dict], step: int = 0) -> dict:
        ids, mask = pad_batch([f["input_ids"] for f in features], self.pad_id)
        g = step_generator(self.seed, step)
        chosen = torch.bernoulli(torch.full(ids.shape, self.probability), generator=g).bool()
        chosen &= ~torch.isin(ids, self.special)
        labels = torch.where(chosen, ids, torch.full_like(ids, -100))
        to_mask = torch.bernoulli(torch.full(ids.shape, 0.8), generator=g).bool() & chosen
        to_random = torch.bernoulli(torch.full(ids.shape, 0.5), generator=g).bool()
        to_random &= chosen & ~to_mask
        noise = torch.randint(self.vocab_size, ids.shape, generator=g)
        ids = torch.where(to_mask, torch.full_like(ids, self.mask_id), ids)
        ids = torch.where(to_random, noise, ids)
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def masked_lm_loss(lm_head: nn.Module, hidden: torch.Tensor, labels: torch.Tensor):
    """(loss, logits of the masked positions). The LM head (a vocabulary-wide softmax) runs on
    the masked positions only: the loss is the full head's with ignore_index, at a fraction of
    its cost. A batch with nothing masked (very short lines) gives 0 loss, not NaN."""
    where = labels != -100
    logits = lm_head(hidden[where])
    if logits.shape[0]:
        return nn.functional.cross_entropy(logits.float(), labels[where]), logits
    return hidden.sum() * 0.0, logits
