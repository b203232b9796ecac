"""Tokenized features cached on disk, shared by every stage of an output folder.

    examples --(format.featurize with a tokenizer, max_length)--> features
             `--> <output_dir>/cache/features/<task>-<split>-<lang>-<key>.arrow

The key hashes everything the features depend on: the tokenizer (its full serialised state),
the task and its format, the language, split and max_length, and the examples themselves (a
fingerprint of every guid and field, so a changed data file or limit is a new entry, never a
stale one). Three seeds of a target stage, or every target stage of a real size (one hub
tokenizer), tokenize a dataset once per folder instead of once per stage.

Entries are Arrow IPC files (the format HF `datasets` keeps its caches in; data only, nothing
is unpickled), written to a temporary name and renamed, so a reader never sees half of one and
two stages writing the same entry at once both leave a whole one. Numpy array fields (span QA's
ids and offsets) are restored with their dtype. A format object that learns state while it
featurizes (the open label set of CCG tagging) is never cached.
"""

from __future__ import annotations

import hashlib
import json
import os
import weakref
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from xscale.tasks import format_info
from xscale.tasks.base import Example, Task

CACHE_DIR = Path("cache") / "features"
VERSION = 1  # bump when a format's featurize changes what it returns
# Per tokenizer object, weakly held: an id() could be reused by another tokenizer once the
# first is freed (a trial process may run several stages), which would mix up their entries.
_TOKENIZER_KEYS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def tokenizer_key(tokenizer) -> str:
    """A hash of the tokenizer's whole state (vocabulary, normaliser, post-processor)."""
    if tokenizer not in _TOKENIZER_KEYS:
        state = tokenizer.backend_tokenizer.to_str() if tokenizer.is_fast else repr(tokenizer)
        h = hashlib.sha256(type(tokenizer).__name__.encode())
        h.update(state.encode())
        h.update(json.dumps(tokenizer.special_tokens_map, sort_keys=True).encode())
        _TOKENIZER_KEYS[tokenizer] = h.hexdigest()
    return _TOKENIZER_KEYS[tokenizer]


def examples_key(examples: Sequence[Example]) -> str:
    h = hashlib.sha256()
    for e in examples:
        h.update(json.dumps([e.guid, e.lang, e.fields], sort_keys=True, default=str).encode())
        h.update(b"\n")
    return h.hexdigest()


def cacheable(task: Task) -> bool:
    """Formats whose features depend only on the examples and the tokenizer (not an open
    label set learned while featurizing, as CCG's, nor a pooled retrieval format)."""
    info = format_info(task)
    return not (info.token_level and not task.labels) and not info.pooled


def _arrays(features: list[dict]) -> dict[str, str] | None:
    """{field: dtype} of the fields holding numpy arrays (None if a field mixes types)."""
    if not features:
        return {}
    kinds = {
        k: (v.dtype.str if isinstance(v, np.ndarray) else None) for k, v in features[0].items()
    }
    for f in features:
        if f.keys() != kinds.keys():
            return None
        for k, dtype in kinds.items():
            if (isinstance(f[k], np.ndarray) and f[k].dtype.str) != (dtype or False):
                return None
    return {k: d for k, d in kinds.items() if d}


def _write(path: Path, features: list[dict], arrays: dict[str, str]) -> None:
    import pyarrow as pa

    rows = [{k: (v.tolist() if k in arrays else v) for k, v in f.items()} for f in features]
    table = pa.Table.from_pylist(rows)
    table = table.replace_schema_metadata({"xscale.arrays": json.dumps(arrays)})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    os.replace(tmp, path)


def _read(path: Path) -> list[dict]:
    import pyarrow as pa

    with pa.memory_map(str(path), "r") as source:
        table = pa.ipc.open_file(source).read_all()
    arrays = json.loads((table.schema.metadata or {}).get(b"xscale.arrays", b"{}"))
    rows = table.to_pylist()
    for k, dtype in arrays.items():
        for r in rows:
            r[k] = np.asarray(r[k], dtype=np.dtype(dtype))
    return rows


def featurize(
    fmt,
    task: Task,
    examples: list[Example],
    tokenizer,
    max_length: int,
    *,
    split: str,
    lang: str,
    output_dir: Path | None,
) -> list[dict]:
    """`fmt.featurize(task, examples, tokenizer, max_length)`, from the folder's cache when an
    entry exists, else computed and stored (`output_dir` None: no cache)."""
    if output_dir is None or not examples or not cacheable(task):
        return fmt.featurize(task, examples, tokenizer, max_length)
    key = hashlib.sha256(
        json.dumps(
            [
                VERSION,
                tokenizer_key(tokenizer),
                task.name,
                task.format,
                task.labels,
                lang,
                split,
                max_length,
                examples_key(examples),
            ]  # fmt: skip
        ).encode()
    ).hexdigest()[:20]
    path = Path(output_dir) / CACHE_DIR / f"{task.name}-{split}-{lang}-{key}.arrow"
    if path.is_file():
        try:
            return _read(path)
        except Exception:  # noqa: BLE001 - a damaged entry is recomputed and replaced
            path.unlink(missing_ok=True)
    features = fmt.featurize(task, examples, tokenizer, max_length)
    arrays = _arrays(features)
    if arrays is not None:
        try:
            _write(path, features, arrays)
        except Exception:  # noqa: BLE001 - a type Arrow cannot hold: computed each time
            pass
    return features
