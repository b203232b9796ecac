"""Local readers of the XTREME target tasks: XNLI / PAWS-X / UD-POS / PAN-X `<split>-<lang>.tsv`
folders (group split when only dev files are there), the per-language test files of XQuAD,
MLQA, TyDiQA-GoldP, XCOPA and Tatoeba, and BUCC's corpora and gold pairs."""

from __future__ import annotations

from pathlib import Path

from xscale.data import readers
from xscale.data.layout import (
    BUCC_FOLDER,
    BUCKETS,
    _folder_languages,
    _has_full_splits,
    _split_path,
    available_languages,
    bucc_splits,
    resolve_root,
)
from xscale.data.rows import (
    _cells,
    _check_language,
    _groups,
    _label,
    _missing,
    _pair,
    _read_rows,
    held_out_split,
)
from xscale.errors import XScaleError
from xscale.tasks.base import Example, Task


def _split_file(task: Task, folder: Path, split: str, lang: str) -> tuple[Path, bool]:
    """(file to read, whether it holds the split as it is); the group split otherwise."""
    full = _has_full_splits(folder)
    path = folder / f"{split if full else 'dev'}-{lang}.tsv"
    if not path.is_file():
        have = [
            lang
            for lang in _folder_languages(task, folder, split)
            if (folder / f"{split if full else 'dev'}-{lang}.tsv").is_file()
        ]
        if have:
            raise XScaleError(
                f"task {task.name}: no {split} data for language {lang!r} ({path} is missing);"
                f" available: {', '.join(have)}"
            )
        raise _missing(task, path)
    return path, full


# --------------------------------------------------------------------------- the group split
#
# A folder holding only dev files is cut into train / dev / test by *groups* of rows: rows that
# share a sentence (XNLI's premise triplets; PAWS-X pairs reusing a sentence; a tagging sentence
# given twice) form one group, and a group's bucket is that of its first row, `first % 10`
# (buckets 0-5 train, 6 dev, 7-9 test). Parallel tasks (XNLI, PAWS-X) take their groups from the
# English file, whose row i every other language translates, so a row and its translations always
# share a split: no test sentence, nor its translation, is trained on or used for selection.


_GROUP_CACHE: dict[tuple, list[int]] = {}


def _cached_groups(path: Path, read) -> list[int]:
    st = path.stat()
    key = (str(path), st.st_mtime_ns, st.st_size)
    if key not in _GROUP_CACHE:
        _GROUP_CACHE[key] = _groups(read(path))
    return _GROUP_CACHE[key]


def _pair_sentences(path: Path) -> list[tuple[str, ...]]:
    return [tuple(line.split("\t")[:2]) for _, line in _read_rows(path)]


def _tagging_sentences(path: Path) -> list[tuple[str, ...]]:
    return [(" ".join(ex.fields["tokens"]),) for ex in readers.read_tagging(path, "en")]


def _parallel_groups(folder: Path, own: Path, n_rows: int) -> list[int]:
    """Groups over every language's file of the folder that is row-parallel with `own` (the
    same number of rows): a row joins another when a sentence of either, in any language,
    is the other's (PAWS-X reuses sentences in its translations that its English file does not
    repeat), so no test sentence nor its translation reaches train or dev in any language."""
    files = sorted(f for f in folder.glob("dev-*.tsv"))
    key = tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files)
    if key not in _GROUP_CACHE:
        per_lang = [_pair_sentences(f) for f in files]
        parallel = [rows for rows in per_lang if len(rows) == n_rows] or [_pair_sentences(own)]
        rows = [tuple(t for lang_rows in parallel for t in lang_rows[i]) for i in range(n_rows)]
        _GROUP_CACHE[key] = _groups(rows)
    return _GROUP_CACHE[key]


def split_buckets(task: Task, folder: Path, lang: str, n_rows: int) -> list[int]:
    """The bucket (0-9) of each of the `n_rows` rows of `dev-<lang>.tsv` in `folder`."""
    own = folder / f"dev-{lang}.tsv"
    if task.format == "tagging":
        first = _cached_groups(own, _tagging_sentences)
    else:
        first = _parallel_groups(folder, own, n_rows)
    return [g % 10 for g in first]


def _load_parallel(task: Task, folder: Path, split: str, lang: str) -> list[Example]:
    path, full = _split_file(task, folder, split, lang)
    rows = []
    for number, line in _read_rows(path):
        a, b, label = _cells(path, number, line, 3)  # every row is checked, whatever the split
        rows.append(_pair(a, b, _label(task, label.strip(), f"{path}:{number}")))
    buckets = None if full else split_buckets(task, folder, lang, len(rows))
    return [
        Example(f"{task.name}-{split}-{lang}-{i}", lang, fields)
        for i, fields in enumerate(rows)
        if buckets is None or buckets[i] in BUCKETS[split]
    ]


def _load_tagging(task: Task, folder: Path, split: str, lang: str) -> list[Example]:
    path, full = _split_file(task, folder, split, lang)
    sentences = readers.read_tagging(path, lang)
    for i, ex in enumerate(sentences):
        for tag in ex.fields["tags"]:
            _label(task, tag, f"{path} (sentence {i + 1})")
    buckets = None if full else split_buckets(task, folder, lang, len(sentences))
    return [
        Example(f"{task.name}-{split}-{lang}-{i}", lang, ex.fields)
        for i, ex in enumerate(sentences)
        if buckets is None or buckets[i] in BUCKETS[split]
    ]


def _load_test_file(task: Task, base: Path, split: str, lang: str) -> list[Example]:
    path = _split_path(task, base, split, lang)
    if path is None:
        raise XScaleError(f"task {task.name} has no {split} split in {lang!r}")
    if not path.is_file():
        have = available_languages(task, base, split)
        extra = f"; available: {', '.join(have)}" if have else ""
        if task.files.missing:
            extra += ". " + task.files.missing.replace("{path}", str(path))
        raise XScaleError(f"task {task.name}: missing data file {path}{extra}")
    reader = task.files.reader
    if reader == "squad_json":
        examples = readers.read_squad(path, lang)
        if task.held_out_dev and split in ("train", "dev"):  # both from the train file
            return held_out_split(examples, split)
        return examples
    if reader == "copa_jsonl":
        return readers.read_copa(path, lang)
    if reader == "aligned_lines":
        return readers.read_tatoeba(path.parent, lang)
    raise XScaleError(f"task {task.name}: its {reader!r} files are read as a pool (load_pool)")


def load_bucc(task: Task, split: str, lang: str, root: str | Path) -> readers.BuccCorpus:
    """The BUCC corpus pair (and gold pairs, when the split has them) for `lang`-en, `split`
    "dev" or "test", read as it is (no fallback between splits; see `bucc_splits`)."""
    _check_language(task, lang)
    where = resolve_root(root)
    if isinstance(where, str):
        raise XScaleError(
            f"task {task.name}: BUCC mining needs the full corpora, which the hub does not have;"
            f" download them with XTREME's download script into <root>/{BUCC_FOLDER}/"
        )
    if split not in ("dev", "test"):
        raise XScaleError(f"task {task.name}: BUCC has dev and test splits, not {split!r}")
    folder = Path(where) / BUCC_FOLDER
    path = folder / f"{lang}-en.{split}.{lang}"
    if not path.is_file():
        raise _missing(task, path)
    return readers.read_bucc(folder, lang, split)


def _load_bucc_gold(task: Task, base: Path, lang: str) -> list[Example]:
    """BUCC's gold pairs as retrieval examples (source = the `lang` sentence, target = English),
    from the test files, or the dev files in a folder without test files."""
    splits = bucc_splits(base, lang)
    if not splits:
        raise _missing(task, base / BUCC_FOLDER / f"{lang}-en.test.{lang}")
    corpus = load_bucc(task, "test" if "test" in splits else "dev", lang, base)
    if corpus.gold is None:
        raise XScaleError(
            f"task {task.name}: {base / BUCC_FOLDER}/{lang}-en.{corpus.split}.gold is missing;"
            " BUCC cannot be scored without gold pairs"
        )
    src = dict(zip(corpus.src_ids, corpus.src_texts))
    trg = dict(zip(corpus.trg_ids, corpus.trg_texts))
    return [
        Example(f"{s}|{t}", lang, {"source": src[s], "target": trg[t]})
        for s, t in sorted(corpus.gold)
    ]
