"""Tasks: a registry from name to `Task` (registry.py) and one module per format."""

from __future__ import annotations

from xscale.tasks.base import Example, Task


def get_format(task: Task):
    """A new format object that featurizes, batches, heads and scores `task`.

    Every format has featurize / collate / make_head / loss / predict / score and `trains`
    (False for retrieval, which is evaluated with `evaluate(...)` instead of fine-tuned). Use one
    object per stage: the tagging format keeps an open label set (CCG) between calls."""
    if task.format in ("pair_classification", "single_classification"):
        from xscale.tasks.classification import ClassificationFormat

        return ClassificationFormat()
    if task.format == "span_qa":
        from xscale.tasks.span_qa import SpanQAFormat

        return SpanQAFormat()
    if task.format == "tagging":
        from xscale.tasks.tagging import TaggingFormat

        return TaggingFormat()
    if task.format == "multiple_choice":
        from xscale.tasks.multiple_choice import MultipleChoiceFormat

        return MultipleChoiceFormat()
    if task.format == "retrieval":
        from xscale.tasks.retrieval import RetrievalFormat

        return RetrievalFormat()
    raise NotImplementedError(f"task {task.name!r}: format {task.format!r} is not implemented yet")


# Formats evaluated without fine-tuning (no format module needs importing to know it).
UNTRAINED_FORMATS = frozenset({"retrieval"})


def trains(task: Task) -> bool:
    """False for tasks evaluated without fine-tuning (retrieval: BUCC, Tatoeba)."""
    return task.format not in UNTRAINED_FORMATS


__all__ = ["Example", "Task", "get_format", "trains"]
