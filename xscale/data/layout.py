"""Where each task's files live under a data root (see the package docstring for the layout),
which languages a root has data for, and the group split's buckets (xtreme.split_buckets)."""

from __future__ import annotations

from pathlib import Path

from xscale.data import readers
from xscale.data.rows import _check_split
from xscale.errors import XScaleError
from xscale.tasks.base import SPLITS, Task
from xscale.tasks.registry import TASKS

FIXTURES = "fixtures"
HUB = "hub"
FIXTURES_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "data"

TRAIN_BUCKETS = range(0, 6)
BUCKETS = {"train": frozenset(TRAIN_BUCKETS), "dev": frozenset({6}), "test": frozenset({7, 8, 9})}

# Where each task's files are is declared by its module (`Task.files`, tasks/lib/); the
# release layouts of BUCC and Mewsli-X are read here.
BUCC_FOLDER = "xtreme/bucc2018"
# Mewsli-X, as XTREME's download script leaves it (readers.py describes the files)
MEWSLIX_FOLDER = "xtreme/mewslix"
MEWSLIX_FILES = {
    "train": "wikipedia_pairs-train.jsonl",
    "dev": "wikipedia_pairs-dev.jsonl",
    "test": "wikinews_mentions-test.jsonl",
    "candidates": "candidate_set_entities.jsonl",
}


def resolve_root(root: str | Path) -> str | Path:
    """`fixtures` -> the shipped fixture folder; `hub` stays `hub`; anything else -> a folder."""
    if isinstance(root, str) and root == FIXTURES:
        return FIXTURES_DIR
    if isinstance(root, str) and root == HUB:
        return HUB
    path = Path(root).expanduser()
    if not path.is_dir():
        raise XScaleError(
            f"data root {str(root)!r} is not a folder; give 'hub', 'fixtures', or a folder in"
            " XTREME download layout (<root>/xtreme/<task>/..., <root>/intermediate/<task>/...)"
        )
    return path


def available_languages(task: Task, root: str | Path, split: str) -> list[str]:
    """The languages (in `task.languages` order) that `root` has `split` data for.

    For the hub this is every language of the task that has the split (it cannot be checked
    offline). Retrieval tasks have test data only: [] for their train and dev splits."""
    if task.format == "retrieval" and split in SPLITS and split != "test":
        return []
    _check_split(task, split)
    task, split = source_split(task, split)
    where = resolve_root(root)
    files = task.files
    if isinstance(where, str):
        if task.hub is None or split not in task.hub.splits:
            return []
        if files is not None and files.kind == "mewslix_release" and split != "test":
            return ["en"]  # English Wikipedia pairs
        return list(task.languages)
    base = Path(where)
    if files is None:
        return []
    if files.kind == "split_folder":
        return _folder_languages(task, base / files.folder, split)
    if files.kind == "per_language":
        per_lang = split == "test" or any("{lang}" in c for c in files.paths.get("train", ()))
        langs = task.languages if per_lang else ("en",)
        found = [_split_path(task, base, split, lang) for lang in langs]
        return [lang for lang, path in zip(langs, found) if path is not None and path.is_file()]
    if files.kind == "bucc_corpora":
        if split != "test":
            return []
        return [lang for lang in task.languages if bucc_splits(base, lang)]
    if files.kind == "mewslix_release":
        return _mewslix_languages(task, base, split)
    path = _english_file(task, base, split)
    return ["en"] if path is not None and path.is_file() else []


def source_task(task: Task, split: str) -> Task:
    """The task whose data `task`'s `split` is: `squad` for the train/dev splits of XQuAD, MLQA
    and LAReQA, `copa` for XCOPA's (`Task.trained_on`); `task` itself otherwise."""

    if split in ("train", "dev") and task.trained_on:
        return TASKS[task.trained_on]
    return task


def source_split(task: Task, split: str) -> tuple[Task, str]:
    """(task, split) holding `task`'s `split`: `source_task`, and for the targets that select
    on held-out training passages (`Task.select_on_held_out`) the source's train split for
    their dev split (`load_examples` then keeps the held-out passages)."""
    if split == "dev" and task.select_on_held_out:
        return TASKS[task.trained_on], "train"
    return source_task(task, split), split


def mewslix_file(base: Path, split: str) -> Path:
    """The Mewsli-X file of `split` (train, dev, test or candidates) under a data folder."""
    return base / MEWSLIX_FOLDER / MEWSLIX_FILES[split]


_MEWSLIX_LANGS: dict[tuple[str, float], frozenset[str]] = {}


def _mewslix_languages(task: Task, base: Path, split: str) -> list[str]:
    path = mewslix_file(base, split)
    if not path.is_file():
        return []
    if split != "test":
        return ["en"]
    key = (str(path), path.stat().st_mtime)
    if key not in _MEWSLIX_LANGS:  # the languages of the mentions file, read once
        _MEWSLIX_LANGS[key] = frozenset(m.lang for m in readers.read_mewslix_mentions(path))
    return [lang for lang in task.languages if lang in _MEWSLIX_LANGS[key]]


def bucc_splits(root: str | Path, lang: str) -> list[str]:
    """BUCC splits ("dev", "test") whose corpus files for `lang` exist under the data root."""
    where = resolve_root(root)
    if isinstance(where, str):
        return []
    folder = Path(where) / BUCC_FOLDER
    return [
        s
        for s in ("dev", "test")
        if (folder / f"{lang}-en.{s}.{lang}").is_file() and (folder / f"{lang}-en.{s}.en").is_file()
    ]


def _has_full_splits(folder: Path) -> bool:
    return any(folder.glob("train-*.tsv")) or any(folder.glob("test-*.tsv"))


def _folder_languages(task: Task, folder: Path, split: str) -> list[str]:
    prefixes = [f"{split}-" if _has_full_splits(folder) else "dev-"]
    if prefixes[0] == "test-":
        # a language with dev data but no test file is a missing file, not a language to skip
        prefixes.append("dev-")
    found = {
        p.name[len(prefix) : -len(".tsv")]
        for prefix in prefixes
        for p in folder.glob(f"{prefix}*.tsv")
    }
    return [lang for lang in task.languages if lang in found]


def _test_file(task: Task, base: Path, lang: str) -> Path:
    code = readers.TATOEBA_CODES.get(lang, lang)
    files = task.files
    candidates = [base / c.format(lang=lang, code=code) for c in files.paths["test"]]
    if files.switch:  # the switch folder's files when it is there, else the others
        candidates = candidates[:1] if (base / files.switch).is_dir() else candidates[1:]
    return next((c for c in candidates if c.is_file()), candidates[0])


def _split_path(task: Task, base: Path, split: str, lang: str) -> Path | None:
    """The test file of `lang`; for a task whose training file gives its train and dev splits
    (`Task.held_out_dev`: TyDiQA-GoldP) that file, English or, with `{lang}` in its pattern,
    the language's own."""
    if split == "test":
        return _test_file(task, base, lang)
    # a language whose training file is named apart (`train@en`: translate-train SQuAD's
    # English file is SQuAD's own)
    train = task.files.paths.get(f"train@{lang}") or task.files.paths.get("train")
    if not train or (lang != "en" and not any("{lang}" in c for c in train)):
        return None  # (the train/dev splits of XQuAD, MLQA and XCOPA are another task's)
    paths = [base / c.format(lang=lang) for c in train]
    return next((c for c in paths if c.is_file()), paths[0])


def _english_file(task: Task, base: Path, split: str) -> Path | None:
    """The file holding `split` of an English task (the first candidate present, else the first
    candidate); None when the task has no such split."""
    if task.files is None or task.files.kind != "english":
        return None
    names = task.files.paths.get(split)
    if not names:
        return None
    paths = [base / n for n in names]
    return next((p for p in paths if p.is_file()), paths[0])
