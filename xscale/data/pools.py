"""Retrieval pools of the dual-encoder tasks (XTREME-R's LAReQA and Mewsli-X): one set of
candidates that the queries of every language search, with the relevant candidates of each
query (`tasks.base.RetrievalPool`), and Mewsli-X's English training pairs.

- LAReQA: the XQuAD-R files of the languages asked for (``<root>/xtreme/lareqa/xquad-r/
  <lang>.json``); the pool is every sentence of every paragraph of every one of them, and a
  question's relevant candidates are its answer sentence in *each* language (utils_lareqa).
  XTREME-R's pool has all 11 languages: a score is comparable to its numbers only when all 11
  files are evaluated together.
- Mewsli-X: the WikiNews mentions of ``wikinews_mentions-test.jsonl`` per language against the
  entity descriptions of ``candidate_set_entities.jsonl`` (one relevant entity each), under
  ``<root>/xtreme/mewslix/``.

XQuAD-R (its sentence breaks) has no hub copy: it is read from a data folder, while LAReQA's
training data (SQuAD v1.1) may come from the hub. Mewsli-X's release leaves the WikiNews text
out (its script fills it in); with ``hub`` as its root, its hub copy is fetched and assembled
into the release layout (`mewslix_hub`), then read like a download.
"""

from __future__ import annotations

from pathlib import Path

from xscale.data import mewslix_hub, readers
from xscale.data.layout import (
    available_languages,
    mewslix_file,
    resolve_root,
)
from xscale.data.rows import _missing
from xscale.errors import XScaleError
from xscale.tasks.base import Example, RetrievalPool, Task


def _folder(task: Task, root) -> Path:
    where = resolve_root(root)
    if isinstance(where, str) and task.files.kind == "mewslix_release":
        return mewslix_hub.hub_root(task.languages)
    if isinstance(where, str):
        raise XScaleError(task.hub_missing or f"task {task.name}: no hub copy of its pool")
    return Path(where)


def load_pool(task: Task, root, langs: list[str], limit: int | None = None) -> RetrievalPool:
    """The pool searched by the queries of `langs` (the first `limit` queries per language)."""
    base = _folder(task, root)
    files = task.files
    if files is not None and files.reader == "xquad_r_json":
        pool = _xquad_r(task, base, langs)
    elif files is not None and files.kind == "mewslix_release":
        pool = _mewslix(task, base, langs)
    else:
        raise XScaleError(f"task {task.name}: no retrieval pool (its files are not one)")
    if limit is not None:
        pool.queries = {lang: q[:limit] for lang, q in pool.queries.items()}
    return pool


def pool_queries(task: Task, root, lang: str, limit: int | None = None) -> list[Example]:
    """The test queries of `lang` as examples (fields ``query``, ``relevant`` candidate ids)."""
    pool = load_pool(task, root, [lang], limit)
    ids = [c for c, _ in pool.candidates]
    return [
        Example(qid, lang, {"query": list(text), "relevant": sorted(ids[j] for j in rel)})
        for qid, text, rel in pool.queries[lang]
    ]


def _xquad_r(task: Task, base: Path, langs: list[str]) -> RetrievalPool:
    files = {}
    for lang in langs:
        path = base / task.files.paths["test"][0].format(lang=lang)
        if not path.is_file():
            have = available_languages(task, base, "test")
            extra = f"; available: {', '.join(have)}" if have else f". {task.files.missing}"
            raise XScaleError(f"task {task.name}: missing data file {path}{extra}")
        files[lang] = path
    raw = readers.read_xquad_r(files)
    queries: dict[str, list] = {lang: [] for lang in langs}
    for (xid, lang, question), rel in zip(raw.questions, raw.relevant):
        queries[lang].append((xid, (question,), rel))
    candidates = [(uid, (sentence, context)) for uid, _, sentence, context in raw.candidates]
    return RetrievalPool(candidates, queries, dict(raw.skipped_by_lang))


def _mewslix(task: Task, base: Path, langs: list[str]) -> RetrievalPool:
    for split in ("test", "candidates"):
        if not mewslix_file(base, split).is_file():
            path = mewslix_file(base, split)
            raise XScaleError(f"task {task.name}: missing data file {path}. {task.files.missing}")
    entities = readers.read_mewslix_entities(mewslix_file(base, "candidates"))
    index = {eid: j for j, (eid, _, _) in enumerate(entities)}
    queries: dict[str, list] = {lang: [] for lang in langs}
    skipped = dict.fromkeys(langs, 0)
    for m in readers.read_mewslix_mentions(mewslix_file(base, "test")):
        if m.lang not in queries:
            continue
        if m.entity_id not in index:  # the release's candidate set holds every gold entity
            skipped[m.lang] += 1
            continue
        queries[m.lang].append(
            (m.example_id, (m.mention, m.sentence), frozenset({index[m.entity_id]}))
        )
    missing = [lang for lang in langs if not queries[lang] and not skipped[lang]]
    if missing:
        raise XScaleError(
            f"task mewslix: {mewslix_file(base, 'test')} has no mentions in {', '.join(missing)}"
        )
    candidates = [(eid, (title, description)) for eid, title, description in entities]
    return RetrievalPool(candidates, queries, skipped)


def load_mewslix_pairs(task: Task, root, split: str) -> list[Example]:
    """Mewsli-X's English Wikipedia (mention, entity) pairs of `split` (train or dev)."""
    if split not in ("train", "dev"):
        raise XScaleError(f"task mewslix: no {split} pairs (train and dev)")
    path = mewslix_file(_folder(task, root), split)
    if not path.is_file():
        raise _missing(task, path)
    return readers.read_mewslix_pairs(path)
