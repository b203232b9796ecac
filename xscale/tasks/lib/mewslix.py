"""Mewsli-X: entity-mention retrieval against 1M entity descriptions."""

from __future__ import annotations

from xscale.tasks.base import Files, HubSource, Task

MEWSLIX_LANGUAGES = ("en", "ar", "de", "es", "fa", "ja", "pl", "ro", "ta", "tr", "uk")

DOWNLOAD = (
    "XTREME's download script (bash scripts/download_data.sh; mewslix, which runs"
    " Mewsli-X's get-mewsli-x.sh to fill in the WikiNews text) puts them at"
    " <root>/xtreme/mewslix/"
)


TASK = Task(
    name="mewslix",
    train_size=167_719,
    format="dual_encoder",
    metric="map_at_20",
    languages=MEWSLIX_LANGUAGES,
    roles=("target",),
    # the hub copy's files, assembled into the release layout (data/mewslix_hub.py)
    hub=HubSource("izhx/mewsli-x", splits={"train": "train", "dev": "dev", "test": "test"}),
    description="Mewsli-X: entity-mention retrieval (WikiNews, 11 languages) against 1M"
    " entity descriptions; trained on English Wikipedia mention-entity pairs",
    test_rows=1000,
    files=Files("mewslix_release", folder="xtreme/mewslix", missing=DOWNLOAD),
    benchmarks={"xtreme_r": "retrieval"},
)
