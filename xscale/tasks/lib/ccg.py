"""CCGbank supertagging (licensed: never on the hub)."""

from __future__ import annotations

from xscale.tasks.base import SPLITS, Files, Task

LICENSE = (
    "CCGbank is licensed (LDC2005T13) and cannot be downloaded: convert it to 'token<TAB>supertag'"
    " lines, a blank line between sentences, and put them at {where}"
)


TASK = Task(
    name="ccg",
    train_size=38_015,
    format="tagging",
    metric="accuracy",
    labels=(),  # open-ended: the supertags seen in the training file
    roles=("intermediate",),
    description="CCGbank supertagging (licensed, LDC2005T13): <root>/intermediate/ccg/",
    files=Files(
        "english",
        paths={s: (f"intermediate/ccg/{s}.tsv",) for s in SPLITS},
        reader="ccg_tsv",
        missing=LICENSE.format(where="{path}"),
    ),
    hub_missing="task ccg has no Hugging Face hub source. "
    + LICENSE.format(where="<root>/intermediate/ccg/{train,dev}.tsv")
    + " and set data.tasks.ccg to <root> in the sweep config",
)
