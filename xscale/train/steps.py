"""How many optimizer steps a phase takes: the one formula, shared by training, the multi-task
step schedule and the cost estimates in plans (pure arithmetic: no torch, so `plan` stays fast).

    steps per epoch = ceil(examples / global batch)        (the last, partial batch counts)
    total steps     = ceil(steps per epoch x epochs), capped by max_steps, at least 1
"""

from __future__ import annotations

import math


def steps_per_epoch(n_examples: int, batch_size: int) -> int:
    return max(1, math.ceil(n_examples / batch_size))


def total_steps(per_epoch: int, epochs: float, max_steps: int | None = None) -> int:
    # rounded first so that e.g. 10 x 0.3 (= 3.0000000000000004) is 3 steps, not 4
    total = max(1, math.ceil(round(per_epoch * epochs, 9)))
    return min(total, max_steps) if max_steps is not None else total
