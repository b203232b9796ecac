"""`load_examples`: a task's examples from the hub or a local folder (by task, where its files
are: target-task folders, per-language test files, BUCC, or an English task's file)."""

from __future__ import annotations

from pathlib import Path

from xscale.data.english import ENGLISH_READERS
from xscale.data.hub import _load_hub
from xscale.data.layout import _english_file, resolve_root, source_split
from xscale.data.pools import load_mewslix_pairs, pool_queries
from xscale.data.rows import _check_language, _check_split, _missing, held_out_split
from xscale.data.xtreme import _load_bucc_gold, _load_parallel, _load_tagging, _load_test_file
from xscale.errors import XScaleError
from xscale.tasks.base import Example, Task


def load_examples(
    task: Task, split: str, lang: str, root: str | Path, limit: int | None = None
) -> list[Example]:
    """The examples of `task`'s `split` (train/dev/test) in `lang`, from the data root `root`.

    Fields by format (see `xscale.tasks.base.Example`): text_a, text_b, label (pair tasks) or
    text, label (single), with label one of `task.labels`; question, context, answers, id,
    is_impossible (span QA); tokens, tags (tagging); context, question, choices, label (multiple
    choice); source, target (retrieval). `limit` keeps the first `limit` examples."""
    _check_split(task, split)
    target = task
    task, read = source_split(task, split)
    _check_language(task, lang)
    where = resolve_root(root)
    if task.format == "dual_encoder" and read == "test":
        return pool_queries(task, where, lang, limit)
    held_out = target.select_on_held_out and split in ("train", "dev")
    if task.files is not None and task.files.kind == "mewslix_release":
        examples = load_mewslix_pairs(task, where, read)
    elif isinstance(where, str):
        examples = _load_hub(task, read, lang, None if held_out else limit)
    else:
        examples = _load_local(task, Path(where), read, lang)
    if held_out:  # passages held out of the training file select the model (registry)
        examples = held_out_split(examples, split)
    return examples if limit is None else examples[:limit]


def _load_local(task: Task, base: Path, split: str, lang: str) -> list[Example]:
    files = task.files
    if files is None:
        raise XScaleError(f"task {task.name}: no reader for local data folders")
    if files.kind == "split_folder":
        load = _load_tagging if files.reader == "tagging_tsv" else _load_parallel
        return load(task, base / files.folder, split, lang)
    if files.kind == "per_language":
        return _load_test_file(task, base, split, lang)
    if files.kind == "bucc_corpora":
        return _load_bucc_gold(task, base, lang)
    path = _english_file(task, base, split)
    if path is None:
        raise XScaleError(f"task {task.name} has no {split} split in local data folders")
    if not path.is_file():
        if files.missing:
            hint = files.missing.replace("{path}", str(path))
            raise XScaleError(f"task {task.name}: no file {path}. {hint}")
        raise _missing(task, path)
    reader = ENGLISH_READERS[files.reader]
    rows = reader(task, path)
    if rows and isinstance(rows[0], Example):
        return rows
    return [Example(f"{task.name}-{split}-en-{i}", "en", f) for i, f in rows]
