"""Tasks: a registry from name to `Task` (registry.py), and the one table of task formats below.

A format turns a task's examples into features and batches, builds its head, and scores (and
exports) predictions; `TaskFormat` (tasks/base.py) is the interface. Adding a format is one
module beside this file (examples -> features -> batch -> head -> loss -> predictions -> score)
and one row in `FORMATS`; a task then names it in the registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from xscale.tasks.base import Example, Task, TaskFormat


def _classification():
    from xscale.tasks.classification import ClassificationFormat

    return ClassificationFormat


def _span_qa():
    from xscale.tasks.span_qa import SpanQAFormat

    return SpanQAFormat


def _tagging():
    from xscale.tasks.tagging import TaggingFormat

    return TaggingFormat


def _multiple_choice():
    from xscale.tasks.multiple_choice import MultipleChoiceFormat

    return MultipleChoiceFormat


def _retrieval():
    from xscale.tasks.retrieval import RetrievalFormat

    return RetrievalFormat


def _dual_encoder():
    from xscale.tasks.dual_encoder import DualEncoderFormat

    return DualEncoderFormat


@dataclass(frozen=True)
class FormatInfo:
    """One row of the format table. `load` imports the module lazily (format modules import
    torch; `plan` and `status` must not). `trains`: False for formats evaluated without
    fine-tuning (retrieval). `text_fields`: the example fields text perturbations rewrite
    (tagging perturbs its tokens one by one instead). `pooled`: the test split is one retrieval
    pool for every language (`data.load_pool`), scored by the format's `evaluate_pool`.
    `gold_prob`: the head's logits are scores over labels (or choices) whose softmax gives the
    gold label's probability at `batch["labels"]`: dataset cartography and the linear probe of
    task difficulty apply (stage/cartography.py)."""

    load: Callable[[], type]
    trains: bool = True
    text_fields: tuple[str, ...] = ()
    token_level: bool = False  # perturbations apply to `tokens`, keeping each token's tag
    pooled: bool = False
    gold_prob: bool = False
    # the loss couples the examples of a batch (in-batch negatives): a batch is never split
    # into micro batches for gradient accumulation
    whole_batch: bool = False


FORMATS: dict[str, FormatInfo] = {
    "pair_classification": FormatInfo(
        _classification, text_fields=("text_a", "text_b"), gold_prob=True
    ),
    "single_classification": FormatInfo(_classification, text_fields=("text",), gold_prob=True),
    "span_qa": FormatInfo(_span_qa, text_fields=("question",)),
    "tagging": FormatInfo(_tagging, token_level=True),
    "multiple_choice": FormatInfo(
        _multiple_choice, text_fields=("context", "question", "choices"), gold_prob=True
    ),
    "retrieval": FormatInfo(_retrieval, trains=False),
    "dual_encoder": FormatInfo(_dual_encoder, pooled=True, whole_batch=True),
}


def format_info(task: Task) -> FormatInfo:
    try:
        return FORMATS[task.format]
    except KeyError:
        raise NotImplementedError(
            f"task {task.name!r}: format {task.format!r} is not implemented"
        ) from None


def get_format(task: Task) -> TaskFormat:
    """A new format object for `task`. Use one object per stage: the tagging format keeps an
    open label set (CCG) between calls."""
    return format_info(task).load()()


def whole_batch(tasks) -> bool:
    """Whether a stage training `tasks` must take each worker's share of the batch at once
    (any of them with in-batch negatives)."""
    return any(format_info(t).whole_batch for t in tasks)


def trains(task: Task) -> bool:
    """False for tasks evaluated without fine-tuning (retrieval: BUCC, Tatoeba)."""
    return format_info(task).trains


__all__ = ["FORMATS", "Example", "FormatInfo", "Task", "TaskFormat", "get_format", "trains"]
