"""BUCC 2018: mining parallel sentences from comparable corpora."""

from __future__ import annotations

from xscale.tasks.base import Files, Task

BUCC_LANGUAGES = ("de", "fr", "ru", "zh")

TASK = Task(
    name="bucc",
    train_size=0,
    format="retrieval",
    metric="f1",
    languages=BUCC_LANGUAGES,
    roles=("target",),
    description="BUCC 2018: mining parallel sentences from comparable corpora (x-en)",
    test_rows=10000,
    files=Files("bucc_corpora", folder="xtreme/bucc2018"),
    hub_missing="task bucc: BUCC mining needs the full corpora, which the hub does not have;"
    " download them with XTREME's download script into <root>/xtreme/bucc2018/",
    scoring="mining",
    benchmarks={"xtreme": "retrieval"},
)
