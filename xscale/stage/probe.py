"""How hard a task is for the pretrained encoder: a linear probe's dev accuracy and dev loss.

The pretrained encoder is frozen. Each example (each choice of a multiple-choice example) is
represented by the <s> state of its last layer, the state the task heads read (ClassificationHead,
ChoiceHead). A linear layer (K labels; one score per choice for multiple choice) is fitted on the
first `PROBE_TRAIN` training examples by full-batch L-BFGS on the cross-entropy plus an L2
penalty `L2` on the weights, features standardised with the training rows' mean and std. The
probe's English dev accuracy (0-100) and dev loss (mean cross-entropy in nats) are the task's
difficulty before any fine-tuning: chance is 100/K and ln K. A fixed, cheap procedure (one
forward pass over at most PROBE_TRAIN + dev examples), deterministic given the weights.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from xscale.tasks.base import Task, TaskFormat

PROBE_TRAIN = 4096
L2 = 1e-3
MASKED = -1e4


@torch.no_grad()
def cls_states(encoder, fmt: TaskFormat, features: list[dict], pad: int, batch_size: int):
    """(states, choice mask or None, labels): states (N, H), or (N, C, H) for multiple choice."""
    device = next(encoder.parameters()).device
    encoder.eval()
    states, masks, labels = [], [], []
    for i in range(0, len(features), batch_size):
        batch = fmt.collate(features[i : i + batch_size], pad)
        h = encoder(
            input_ids=batch["input_ids"].to(device),
            attention_mask=batch["attention_mask"].to(device),
        ).last_hidden_state[:, 0]
        h = h.float().cpu()
        if "num_choices" in batch:
            h = h.view(len(batch["labels"]), int(batch["num_choices"]), -1)
            masks.append(batch["choice_mask"])
        states.append(h)
        labels.append(batch["labels"])
    if not masks:
        return torch.cat(states), None, torch.cat(labels)
    width = max(s.shape[1] for s in states)  # batches may differ in their number of choices
    states = [F.pad(s, (0, 0, 0, width - s.shape[1])) for s in states]
    masks = [F.pad(m, (0, width - m.shape[1]), value=False) for m in masks]
    return torch.cat(states), torch.cat(masks), torch.cat(labels)


def _logits(layer, x, mask):
    if mask is None:
        return layer(x)
    return layer(x).squeeze(-1).masked_fill(~mask, MASKED)


def fit_probe(train, dev, num_labels: int | None) -> dict[str, float]:
    """Fit on `train` = (states, mask, labels), score `dev`: {"accuracy", "loss"}.
    `num_labels`: K for classification; None for multiple choice (one score per choice)."""
    x, mask, y = train
    rows = x if mask is None else x[mask]
    mean, std = rows.mean(dim=0), rows.std(dim=0).clamp(min=1e-6)
    hidden = x.shape[-1]
    torch.manual_seed(0)
    layer = torch.nn.Linear(hidden, num_labels or 1)
    torch.nn.init.zeros_(layer.weight)
    torch.nn.init.zeros_(layer.bias)
    opt = torch.optim.LBFGS(layer.parameters(), max_iter=100, line_search_fn="strong_wolfe")
    xs = (x - mean) / std

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(_logits(layer, xs, mask), y) + L2 * layer.weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    dx, dmask, dy = dev
    with torch.no_grad():
        logits = _logits(layer, (dx - mean) / std, dmask)
        loss = F.cross_entropy(logits, dy).item()
        accuracy = 100.0 * (logits.argmax(dim=-1) == dy).float().mean().item()
    return {"accuracy": accuracy, "loss": loss if math.isfinite(loss) else float("nan")}


def probe(
    encoder, task: Task, fmt: TaskFormat, train: list[dict], dev: list[dict], pad: int, batch_size
) -> dict[str, float]:
    """The linear probe of `task` on the frozen `encoder` (module docstring)."""
    tr = cls_states(encoder, fmt, train[:PROBE_TRAIN], pad, batch_size)
    dv = cls_states(encoder, fmt, dev, pad, batch_size)
    return fit_probe(tr, dv, None if tr[1] is not None else len(task.labels))
