"""One module per task: everything a task is (tasks/base.Task); tasks/registry.TASKS is
their table."""
