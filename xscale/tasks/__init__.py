"""Tasks: a registry from name to `Task` (registry.py) and one module per format."""

from __future__ import annotations

from xscale.tasks.base import Example, Task


def get_format(task: Task):
    """The format module object that featurizes, batches, heads and scores `task`."""
    if task.format in ("pair_classification", "single_classification"):
        from xscale.tasks.classification import ClassificationFormat

        return ClassificationFormat()
    raise NotImplementedError(f"task {task.name!r}: format {task.format!r} is not implemented yet")


__all__ = ["Example", "Task", "get_format"]
