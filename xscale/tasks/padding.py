"""Right padding of token-id lists into batch tensors: the one collate helper every format (and
the MLM pair batches) builds its batch with."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def pad_batch(
    seqs: Sequence[Sequence[int]], pad_id: int, width: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, attention mask), both (len(seqs), width) long tensors; width defaults to the
    longest sequence."""
    width = max((len(x) for x in seqs), default=0) if width is None else width
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, x in enumerate(seqs):
        ids[i, : len(x)] = torch.as_tensor(x, dtype=torch.long)
        mask[i, : len(x)] = 1
    return ids, mask


def pad_values(seqs: Sequence[Sequence[int]], value: int, width: int) -> torch.Tensor:
    """Per-token values (e.g. tag labels) right-padded with `value` to `width`."""
    out = torch.full((len(seqs), width), value, dtype=torch.long)
    for i, x in enumerate(seqs):
        out[i, : len(x)] = torch.as_tensor(x, dtype=torch.long)
    return out
