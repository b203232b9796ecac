"""Which examples each training step sees, and how evaluation is batched.

Training: one order per (seed, epoch), computed once and kept for the epoch:

    random    a seeded permutation of the examples, cut into batches
    grouped   examples of similar length batched together: the seeded permutation is cut into
              chunks of `batch_size x GROUP_CHUNK` examples, each chunk sorted by length and
              cut into batches, and the epoch's batches are shuffled (HF's length-grouped
              sampler, with the batch order shuffled too). Every example is seen once per epoch,
              as with `random`; a batch is padded to its own longest example, so far fewer pad
              tokens are computed.

Both are pure functions of (seed, epoch), so a phase resumed from a checkpoint sees exactly
the batches it would have seen. `Prefetcher` builds the next batches (collation, masking) in
a thread while the current step computes; a batch must then be a pure function of its step,
drawing any randomness from a generator seeded by the step, never from torch's global one.

Evaluation: `length_order` sorts examples by length so each batch pads little; predictions are
put back in the original order by the caller (`train.loop.predict`).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence

import torch

from xscale.train.steps import steps_per_epoch

GROUP_CHUNK = 50  # batches per length-sorted chunk (HF's LengthGroupedSampler uses 50 too)


def feature_length(feature: dict) -> int:
    """Tokens a feature puts in a batch row: its `input_ids` (the longest, when a feature holds
    several sequences, e.g. the choices of a multiple-choice example)."""
    ids = feature.get("input_ids")
    if ids is None:
        return max((len(v) for k, v in feature.items() if k.endswith("_ids")), default=1)
    if len(ids) and isinstance(ids[0], list | tuple):
        return max(len(x) for x in ids)
    return len(ids)


def _generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 100_003 + epoch)


def epoch_batches(
    n: int, batch_size: int, seed: int, epoch: int, lengths: Sequence[int] | None = None
) -> list[list[int]]:
    """The batches (lists of example indices) of one epoch; grouped by length when `lengths`
    is given, else the plain seeded permutation cut in order."""
    g = _generator(seed, epoch)
    perm = torch.randperm(n, generator=g).tolist()
    if lengths is None:
        return [perm[i : i + batch_size] for i in range(0, n, batch_size)]
    chunk = batch_size * GROUP_CHUNK
    batches: list[list[int]] = []
    for start in range(0, n, chunk):
        part = sorted(perm[start : start + chunk], key=lambda i: -lengths[i])  # stable
        batches.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    order = torch.randperm(len(batches), generator=g).tolist()
    return [batches[i] for i in order]


class EpochOrder:
    """`order(step)`: the example indices of a global step, epoch after epoch. The order of an
    epoch is computed when the epoch is first reached and kept until the next one."""

    def __init__(
        self, n: int, batch_size: int, seed: int, lengths: Sequence[int] | None = None
    ) -> None:
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.lengths = list(lengths) if lengths is not None else None
        self.per_epoch = steps_per_epoch(n, batch_size)
        self._epoch, self._batches = -1, []
        self._lock = threading.Lock()

    def __call__(self, step: int) -> list[int]:
        epoch, j = divmod(step, self.per_epoch)
        with self._lock:
            if epoch != self._epoch:
                self._batches = epoch_batches(
                    self.n, self.batch_size, self.seed, epoch, self.lengths
                )
                self._epoch = epoch
            return self._batches[j]


def length_order(features: Sequence[dict]) -> list[int]:
    """Indices of `features`, longest first (ties in their original order)."""
    return sorted(range(len(features)), key=lambda i: -feature_length(features[i]))


class Prefetcher:
    """Iterate `get_batch(step)` for `steps`, `depth` steps ahead of the consumer, in a thread:
    collation overlaps the model's compute (torch releases the GIL while it computes). An
    exception in `get_batch` is raised in the consumer at that step. `close()` stops early."""

    _DONE = object()

    def __init__(self, get_batch: Callable[[int], object], steps: range, depth: int = 2):
        self._get, self._steps = get_batch, steps
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="xscale-batches", daemon=True)
        self._thread.start()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        for step in self._steps:
            if self._stop.is_set():
                return
            try:
                item = (step, self._get(step), None)
            except BaseException as e:  # noqa: BLE001 - handed to the consumer
                self._put((step, None, e))
                return
            if not self._put(item):
                return
        self._put(self._DONE)

    def __iter__(self) -> Iterator[tuple[int, object]]:
        while True:
            item = self._queue.get()
            if item is self._DONE:
                return
            step, batch, error = item
            if error is not None:
                raise error
            yield step, batch

    def close(self) -> None:
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._queue.get(timeout=0.1)
            except queue.Empty:
                pass
            self._thread.join(timeout=0.1)


STEP_STREAMS = 1_000_003  # a prime: (seed, step) -> seed * STEP_STREAMS + step never collide


def step_generator(seed: int, step: int):
    """The random stream of one training step: a pure function of (seed, step), so a batch
    built ahead in a thread, or again after a resume, is the same batch."""
    import torch

    return torch.Generator().manual_seed(seed * STEP_STREAMS + step)
