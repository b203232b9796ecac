"""The table of tasks: one row per task module of `tasks/lib/` (each module holds everything
its task is: `tasks/base.Task`). Adding a task is its module and its row below; nothing else in
xscale branches on a task's name (tests/test_architecture.py fails on such a branch).
"""

from __future__ import annotations

from xscale.errors import XScaleError
from xscale.tasks.base import Task
from xscale.tasks.lib import (
    anli,
    bucc,
    ccg,
    copa,
    cosmosqa,
    csqa,
    hellaswag,
    lareqa,
    mewslix,
    mlqa,
    mnli,
    panx,
    pawsx,
    qqp,
    siqa,
    squad,
    squad2,
    squad_tt,
    sst2,
    tatoeba,
    tydiqa,
    tydiqa_goldp,
    udpos,
    xcopa,
    xnli,
    xquad,
)
from xscale.tasks.lib.common import BINARY_LABELS, NLI_LABELS
from xscale.tasks.lib.panx import PANX_TAGS
from xscale.tasks.lib.udpos import UPOS_TAGS
from xscale.tasks.lib.xnli import XNLI_LANGUAGES

_MODULES = (
    # English intermediate tasks: classification, QA, tagging, multiple choice
    mnli, anli, sst2, qqp, squad, squad2, ccg, hellaswag, csqa, cosmosqa, siqa, copa,
    tydiqa_goldp,  # a multilingual intermediate task: TyDiQA-GoldP's nine training languages
    squad_tt,  # a multilingual intermediate task: SQuAD and XTREME's translations of it
    # XTREME / XTREME-R targets (XNLI, PAWS-X, PAN-X and UD-POS are multilingual intermediate
    # tasks too: their training data in several languages)
    xnli, pawsx, xquad, mlqa, tydiqa, udpos, panx, xcopa, lareqa, mewslix, bucc, tatoeba,
)  # fmt: skip

TASKS: dict[str, Task] = {m.TASK.name: m.TASK for m in _MODULES}

# Targets trained on another task's train and dev splits, and those of them that select on
# passages held out of its training file (each task module says so: Task.trained_on,
# Task.select_on_held_out)
TRAINED_ON: dict[str, str] = {t.name: t.trained_on for t in TASKS.values() if t.trained_on}
SELECT_ON_HELD_OUT = frozenset(t.name for t in TASKS.values() if t.select_on_held_out)

__all__ = [
    "BINARY_LABELS",
    "NLI_LABELS",
    "PANX_TAGS",
    "SELECT_ON_HELD_OUT",
    "TASKS",
    "TRAINED_ON",
    "UPOS_TAGS",
    "XNLI_LANGUAGES",
    "get_task",
]


def get_task(name: str) -> Task:
    """The registered task called `name`; XScaleError naming it and the known tasks otherwise."""
    try:
        return TASKS[name]
    except KeyError:
        known = ", ".join(sorted(TASKS))
        raise XScaleError(f"unknown task {name!r}; known tasks: {known}") from None
