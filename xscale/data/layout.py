"""Where each task's files live under a data root (see the package docstring for the layout),
which languages a root has data for, and the group split's buckets (xtreme.split_buckets)."""

from __future__ import annotations

from pathlib import Path

from xscale.data import readers
from xscale.data.rows import _check_split
from xscale.errors import XScaleError
from xscale.tasks.base import SPLITS, Task
from xscale.tasks.registry import SELECT_ON_HELD_OUT, TASKS, TRAINED_ON

FIXTURES = "fixtures"
HUB = "hub"
FIXTURES_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "data"

TRAIN_BUCKETS = range(0, 6)
BUCKETS = {"train": frozenset(TRAIN_BUCKETS), "dev": frozenset({6}), "test": frozenset({7, 8, 9})}

# Where each task's files live under a data root, and how they are laid out.
# Folders of <split>-<lang>.tsv files (group split when only dev files are there).
PARALLEL_FOLDERS = {"xnli": "xtreme/xnli", "pawsx": "xtreme/pawsx"}
TAGGING_FOLDERS = {"udpos": "xtreme/udpos", "panx": "xtreme/panx"}
# English tasks: split -> candidate files under the root (the first one present is read).
ENGLISH_FILES: dict[str, dict[str, tuple[str, ...]]] = {
    "mnli": {
        "train": ("intermediate/mnli/train.tsv",),
        "dev": ("intermediate/mnli/dev_matched.tsv",),
        "test": ("intermediate/mnli/dev_mismatched.tsv",),
    },
    "sst2": {s: (f"intermediate/sst2/{s}.tsv",) for s in SPLITS},
    "qqp": {s: (f"intermediate/qqp/{s}.tsv",) for s in ("train", "dev")},
    "squad": {s: (f"intermediate/squad/{s}-v1.1.json",) for s in ("train", "dev")},
    "squad2": {s: (f"intermediate/squad2/{s}-v2.0.json",) for s in ("train", "dev")},
    "ccg": {s: (f"intermediate/ccg/{s}.tsv",) for s in SPLITS},
    "hellaswag": {
        "train": ("intermediate/hellaswag/hellaswag_train.jsonl",),
        "dev": ("intermediate/hellaswag/hellaswag_val.jsonl",),
    },
    "csqa": {
        "train": ("intermediate/csqa/train_rand_split.jsonl", "intermediate/csqa/train.jsonl"),
        "dev": ("intermediate/csqa/dev_rand_split.jsonl", "intermediate/csqa/valid.jsonl"),
    },
    "cosmosqa": {
        "train": ("intermediate/cosmosqa/train.jsonl",),
        "dev": ("intermediate/cosmosqa/valid.jsonl",),
    },
    "siqa": {s: (f"intermediate/siqa/{s}.jsonl",) for s in ("train", "dev")},
    "copa": {"train": ("intermediate/copa/train.jsonl",), "dev": ("intermediate/copa/val.jsonl",)},
}
ANLI_FOLDER = "intermediate/anli"
ANLI_CSV = "ANLI_analysis_r1_dev.csv"
# Target tasks with one test file per language: candidate paths, "{lang}"/"{code}" filled in.
TEST_FILES: dict[str, tuple[str, ...]] = {
    "xquad": ("xtreme/xquad/xquad.{lang}.json",),
    "mlqa": (
        "xtreme/mlqa/MLQA_V1/test/test-context-{lang}-question-{lang}.json",
        "xtreme/mlqa/MLQA_V1/dev/dev-context-{lang}-question-{lang}.json",
    ),
    "tydiqa": ("xtreme/tydiqa/tydiqa-goldp-v1.1-dev/tydiqa.goldp.{lang}.dev.json",),
    "xcopa": ("xtreme/xcopa/test-{lang}.jsonl", "xtreme/xcopa/{lang}/test.{lang}.jsonl"),
    "lareqa": ("xtreme/lareqa/xquad-r/{lang}.json",),
    "tatoeba": (
        "xtreme/tatoeba/v1/tatoeba.{code}-eng.{code}",
        "xtreme/tatoeba/tatoeba.{code}-eng.{code}",
    ),
}
MLQA_TEST_FOLDER = "xtreme/mlqa/MLQA_V1/test"
TYDIQA_TRAIN = (
    "xtreme/tydiqa/tydiqa-goldp-v1.1-train/tydiqa.goldp.en.train.json",
    "xtreme/tydiqa/tydiqa-goldp-v1.1-train/tydiqa.en.train.json",
)
BUCC_FOLDER = "xtreme/bucc2018"
# Mewsli-X, as XTREME's download script leaves it (readers.py describes the files)
MEWSLIX_FOLDER = "xtreme/mewslix"
MEWSLIX_FILES = {
    "train": "wikipedia_pairs-train.jsonl",
    "dev": "wikipedia_pairs-dev.jsonl",
    "test": "wikinews_mentions-test.jsonl",
    "candidates": "candidate_set_entities.jsonl",
}
CCG_LICENSE = (
    "CCGbank is licensed (LDC2005T13) and cannot be downloaded: convert it to 'token<TAB>supertag'"
    " lines, a blank line between sentences, and put them at {where}"
)


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
    if isinstance(where, str):
        if task.hub is None or split not in task.hub.splits:
            return []
        if task.name == "mewslix" and split != "test":
            return ["en"]  # English Wikipedia pairs
        return list(task.languages)
    base = Path(where)
    if task.name in PARALLEL_FOLDERS:
        return _folder_languages(task, base / PARALLEL_FOLDERS[task.name], split)
    if task.name in TAGGING_FOLDERS:
        return _folder_languages(task, base / TAGGING_FOLDERS[task.name], split)
    if task.name in TEST_FILES:
        langs = task.languages if split == "test" else ("en",)
        found = [_split_path(task, base, split, lang) for lang in langs]
        return [lang for lang, path in zip(langs, found) if path is not None and path.is_file()]
    if task.name == "bucc":
        if split != "test":
            return []
        return [lang for lang in task.languages if bucc_splits(base, lang)]
    if task.name == "mewslix":
        return _mewslix_languages(task, base, split)
    path = _english_file(task, base, split)
    return ["en"] if path is not None and path.is_file() else []


def source_task(task: Task, split: str) -> Task:
    """The task whose data `task`'s `split` is: `squad` for the train/dev splits of XQuAD, MLQA
    and TyDiQA, `copa` for XCOPA's (see `registry.TRAINED_ON`); `task` itself otherwise."""

    if split in ("train", "dev") and task.name in TRAINED_ON:
        return TASKS[TRAINED_ON[task.name]]
    return task


def source_split(task: Task, split: str) -> tuple[Task, str]:
    """(task, split) holding `task`'s `split`: `source_task`, and for the targets that select
    on held-out training passages (`registry.SELECT_ON_HELD_OUT`) the source's train split for
    their dev split (`load_examples` then keeps the held-out passages)."""
    if split == "dev" and task.name in SELECT_ON_HELD_OUT:
        return TASKS[TRAINED_ON[task.name]], "train"
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
    candidates = [base / c.format(lang=lang, code=code) for c in TEST_FILES[task.name]]
    if task.name == "mlqa":  # the test folder when there is one, else the dev files
        candidates = candidates[:1] if (base / MLQA_TEST_FOLDER).is_dir() else candidates[1:]
    return next((c for c in candidates if c.is_file()), candidates[0])


def _split_path(task: Task, base: Path, split: str, lang: str) -> Path | None:
    """The test file of `lang`; for TyDiQA-GoldP also its English train and dev files."""
    if split == "test":
        return _test_file(task, base, lang)
    if task.name != "tydiqa" or lang != "en":
        return None  # (the train/dev splits of XQuAD, MLQA and XCOPA are delegated)
    # train and dev are both cut from the English training file (rows.held_out_split)
    paths = [base / c for c in TYDIQA_TRAIN]
    return next((c for c in paths if c.is_file()), paths[0])


def _english_file(task: Task, base: Path, split: str) -> Path | None:
    """The file holding `split` of an English task (the first candidate present, else the first
    candidate); None when the task has no such split."""
    if task.name == "anli":
        folder = base / ANLI_FOLDER
        # the official R1 jsonl files; else the analysis csv serves as the dev split
        jsonl = folder / "R1" / f"{split}.jsonl"
        if split == "dev" and not (folder / "R1").is_dir() and (folder / ANLI_CSV).is_file():
            return folder / ANLI_CSV
        return jsonl
    if task.name not in ENGLISH_FILES:
        return None
    names = ENGLISH_FILES[task.name].get(split)
    if not names:
        return None
    paths = [base / n for n in names]
    return next((p for p in paths if p.is_file()), paths[0])
