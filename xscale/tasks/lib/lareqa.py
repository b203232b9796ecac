"""LAReQA (XQuAD-R): answer-sentence retrieval from one multilingual pool."""

from __future__ import annotations

from xscale.tasks.base import Files, Task
from xscale.tasks.lib import xquad

DOWNLOAD = (
    "XTREME's download script (bash scripts/download_data.sh; lareqa) puts the XQuAD-R"
    " files at <root>/xtreme/lareqa/xquad-r/<lang>.json"
)


TASK = Task(
    name="lareqa",
    train_size=87_599,
    format="dual_encoder",
    metric="map_at_20",
    languages=xquad.XQUAD_LANGUAGES,
    roles=("target",),
    description="LAReQA (XQuAD-R): language-agnostic answer-sentence retrieval from one"
    " multilingual pool; trained on English SQuAD v1.1 question/answer-sentence pairs",
    test_rows=1190,
    files=Files(
        "per_language",
        paths={"test": ("xtreme/lareqa/xquad-r/{lang}.json",)},
        reader="xquad_r_json",
        missing=DOWNLOAD,
    ),
    hub_missing="task lareqa: its evaluation files are not on the Hugging Face hub in release"
    f" form; {DOWNLOAD}; give that folder as data.tasks.lareqa (or data.root)",
    trained_on="squad",
    select_on_held_out=True,
    benchmarks={"xtreme_r": "retrieval"},
)
