"""Loading task examples from a *data root*: the Hugging Face hub, the shipped fixtures or a folder.

A data root is one of
- ``"hub"``: ``datasets.load_dataset(<task.hub.dataset_id>, <config>, split=...)``;
- ``"fixtures"``: the synthetic data shipped in ``xscale/fixtures/data`` (see its README);
- a folder in XTREME's download layout (files read by ``xscale.readers``)::

      <root>/xtreme/xnli/{train,dev,test}-<lang>.tsv      premise, hypothesis, label (no header)
      <root>/xtreme/pawsx/{train,dev,test}-<lang>.tsv     sentence1, sentence2, 0/1 (no header)
      <root>/xtreme/udpos/{train,dev,test}-<lang>.tsv     token TAB UPOS, blank line between
      <root>/xtreme/panx/{train,dev,test}-<lang>.tsv      token TAB B-PER/I-ORG/O...  sentences
      <root>/xtreme/xquad/xquad.<lang>.json               SQuAD v1.1 json (test)
      <root>/xtreme/mlqa/MLQA_V1/test/test-context-<l>-question-<l>.json   (test; MLQA_V1/dev/
                                                          dev-context-... when there is no test/)
      <root>/xtreme/tydiqa/tydiqa-goldp-v1.1-dev/tydiqa.goldp.<lang>.dev.json   (test; en: dev)
      <root>/xtreme/tydiqa/tydiqa-goldp-v1.1-train/tydiqa.goldp.en.train.json   (train)
      <root>/xtreme/xcopa/test-<lang>.jsonl               XCOPA jsonl (or <lang>/test.<lang>.jsonl)
      <root>/xtreme/tatoeba/v1/tatoeba.<xxx>-eng.{<xxx>,eng}   aligned lines (test)
      <root>/xtreme/bucc2018/<lang>-en.{dev,test}.{<lang>,en,gold}   id TAB sentence; gold pairs
      <root>/intermediate/mnli/{train,dev_matched,dev_mismatched}.tsv   GLUE MNLI tsv
      <root>/intermediate/anli/R1/{train,dev,test}.jsonl  ANLI v1.0 jsonl (label e/n/c)
      <root>/intermediate/anli/ANLI_analysis_r1_dev.csv   dev split, when there is no R1 folder
      <root>/intermediate/sst2/{train,dev,test}.tsv       header `sentence` (or `text`) and `label`
      <root>/intermediate/qqp/{train,dev}.tsv             GLUE QQP tsv (question1, question2,
                                                          is_duplicate)
      <root>/intermediate/squad/{train,dev}-v1.1.json     SQuAD v1.1 (also the QA targets' train
                                                          and dev data)
      <root>/intermediate/squad2/{train,dev}-v2.0.json    SQuAD v2.0
      <root>/intermediate/ccg/{train,dev}.tsv             token TAB supertag (CCGbank: licensed,
                                                          the user supplies it)
      <root>/intermediate/hellaswag/hellaswag_{train,val}.jsonl
      <root>/intermediate/csqa/{train_rand_split,dev_rand_split}.jsonl  (dev: or valid.jsonl)
      <root>/intermediate/cosmosqa/{train,valid}.jsonl    (+ {train,valid}-labels.lst)
      <root>/intermediate/siqa/{train,dev}.jsonl          (+ {train,dev}-labels.lst, labels 1-3)
      <root>/intermediate/copa/{train,val}.jsonl          SuperGLUE COPA (also XCOPA's train/dev)

  MNLI's dev split is dev_matched and its test split dev_mismatched (GLUE's test files have no
  labels); the hub task maps the same way. MNLI rows whose gold_label is "-" are skipped.

English training data of zero-shot targets. XQuAD and MLQA train (and select models) on SQuAD
v1.1 and XCOPA on COPA, as XTREME(-R) does: their train and dev splits *are* the `squad` /
`copa` task's (``registry.TRAINED_ON``); their own files give the test split. TyDiQA-GoldP
trains on its own English training set (as XTREME) and, having no other dev data, uses its
English evaluation file as the dev split.

Row-index split (XNLI, PAWS-X, UD-POS, PAN-X). When a target task's folder holds only
``dev-<lang>.tsv`` files (no ``train-*.tsv`` and no ``test-*.tsv``), as the real XTREME dev files
in ``../shared/data`` do, all three splits are cut from the dev files by row index (sentence index
for tagging). Row i of every ``dev-<lang>.tsv`` goes to bucket ``i % 10``: buckets 0-5 are
``train``, bucket 6 is ``dev``, buckets 7-9 are ``test``. For XNLI and PAWS-X row i is the same
example in every language, so no example whose English original is trained on is ever
evaluated, in any language. When the folder has ``train-*.tsv`` or ``test-*.tsv`` files, every
split is read from its own files as they are.

Retrieval tasks (BUCC, Tatoeba) are not trained: they have a test split only. ``load_examples``
gives Tatoeba's aligned pairs and BUCC's gold pairs; ``load_bucc`` gives a BUCC corpus to mine.
BUCC's test split is ``<lang>-en.test.*`` (XTREME renames the BUCC training set so); a folder
with only ``dev`` files (as ``../shared/data``) serves its dev files as the test split.

Every error a user can fix (missing file, malformed row, unknown language) is an `XScaleError`
naming the task and the file (and line) at fault. Text files are split on "\\n" only: PAWS-X text
can contain U+2028, which `str.splitlines()` would wrongly treat as a row break.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

from xscale import readers
from xscale.errors import XScaleError
from xscale.tasks.base import SPLITS, Example, Task

log = logging.getLogger(__name__)

FIXTURES = "fixtures"
HUB = "hub"
FIXTURES_DIR = Path(__file__).resolve().parent / "fixtures" / "data"

TRAIN_BUCKETS = range(0, 6)
BUCKETS = {"train": frozenset(TRAIN_BUCKETS), "dev": frozenset({6}), "test": frozenset({7, 8, 9})}
ANLI_LETTERS = {"e": "entailment", "n": "neutral", "c": "contradiction"}

# Where each task's files live under a data root, and how they are laid out.
# Folders of <split>-<lang>.tsv files (row-index split when only dev files are there).
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
CCG_LICENSE = (
    "CCGbank is licensed (LDC2005T13) and cannot be downloaded: convert it to 'token<TAB>supertag'"
    " lines, a blank line between sentences, and put them at {where}"
)


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------
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


def load_examples(
    task: Task, split: str, lang: str, root: str | Path, limit: int | None = None
) -> list[Example]:
    """The examples of `task`'s `split` (train/dev/test) in `lang`, from the data root `root`.

    Fields by format (see `xscale.tasks.base.Example`): text_a, text_b, label (pair tasks) or
    text, label (single), with label one of `task.labels`; question, context, answers, id,
    is_impossible (span QA); tokens, tags (tagging); context, question, choices, label (multiple
    choice); source, target (retrieval). `limit` keeps the first `limit` examples."""
    _check_split(task, split)
    task = source_task(task, split)
    _check_language(task, lang)
    where = resolve_root(root)
    if isinstance(where, str):
        examples = _load_hub(task, split, lang, limit)
    else:
        examples = _load_local(task, Path(where), split, lang)
    return examples if limit is None else examples[:limit]


def available_languages(task: Task, root: str | Path, split: str) -> list[str]:
    """The languages (in `task.languages` order) that `root` has `split` data for.

    For the hub this is every language of the task that has the split (it cannot be checked
    offline). Retrieval tasks have test data only: [] for their train and dev splits."""
    if task.format == "retrieval" and split in SPLITS and split != "test":
        return []
    _check_split(task, split)
    task = source_task(task, split)
    where = resolve_root(root)
    if isinstance(where, str):
        if task.hub is None or split not in task.hub.splits:
            return []
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
    path = _english_file(task, base, split)
    return ["en"] if path is not None and path.is_file() else []


def source_task(task: Task, split: str) -> Task:
    """The task whose data `task`'s `split` is: `squad` for the train/dev splits of XQuAD, MLQA
    and TyDiQA, `copa` for XCOPA's (see `registry.TRAINED_ON`); `task` itself otherwise."""
    from xscale.tasks.registry import TASKS, TRAINED_ON

    if split in ("train", "dev") and task.name in TRAINED_ON:
        return TASKS[TRAINED_ON[task.name]]
    return task


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


# ---------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------
def _check_split(task: Task, split: str) -> None:
    if split not in SPLITS:
        raise XScaleError(f"task {task.name}: unknown split {split!r}; splits: {', '.join(SPLITS)}")
    if task.format == "retrieval" and split != "test":
        raise XScaleError(
            f"task {task.name} is a retrieval task: it is not fine-tuned and has only a test split"
            f" (asked for {split!r})"
        )


def _check_language(task: Task, lang: str) -> None:
    if lang not in task.languages:
        raise XScaleError(
            f"task {task.name} has no language {lang!r}; its languages: {', '.join(task.languages)}"
        )


def _label(task: Task, value: str, where: str) -> str:
    if value not in task.labels:
        raise XScaleError(
            f"{where}: unknown label {value!r} for task {task.name} "
            f"(expected one of {', '.join(task.labels)})"
        )
    return value


def _missing(task: Task, path: Path) -> XScaleError:
    return XScaleError(f"task {task.name}: missing data file {path}")


# ---------------------------------------------------------------------------------------------
# Local folders
# ---------------------------------------------------------------------------------------------
def _read_rows(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, line) for each non-empty line; split on '\\n' only."""
    text = path.read_text(encoding="utf-8")
    if text.startswith("\ufeff"):
        text = text[1:]
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if line.strip():
            yield number, line


def _cells(path: Path, number: int, line: str, n: int) -> list[str]:
    cells = line.split("\t")
    if len(cells) != n:
        raise XScaleError(
            f"{path}:{number}: expected {n} tab-separated columns, found {len(cells)}"
        )
    return cells


def _load_local(task: Task, base: Path, split: str, lang: str) -> list[Example]:
    if task.name in PARALLEL_FOLDERS:
        return _load_parallel(task, base / PARALLEL_FOLDERS[task.name], split, lang)
    if task.name in TAGGING_FOLDERS:
        return _load_tagging(task, base / TAGGING_FOLDERS[task.name], split, lang)
    if task.name in TEST_FILES:
        return _load_test_file(task, base, split, lang)
    if task.name == "bucc":
        return _load_bucc_gold(task, base, lang)
    if task.name not in ENGLISH_FILES and task.name != "anli":
        raise XScaleError(f"task {task.name}: no reader for local data folders")
    path = _english_file(task, base, split)
    if path is None:
        raise XScaleError(f"task {task.name} has no {split} split in local data folders")
    if not path.is_file():
        if task.name == "ccg":
            raise XScaleError(f"task ccg: no file {path}. " + CCG_LICENSE.format(where=path))
        raise _missing(task, path)
    reader = ENGLISH_READERS[task.name]
    rows = reader(task, path)
    if rows and isinstance(rows[0], Example):
        return rows
    return [Example(f"{task.name}-{split}-en-{i}", "en", f) for i, f in rows]


# --- XNLI / PAWS-X / UD-POS / PAN-X: <split>-<lang>.tsv folders -----------------------------
def _pair(text_a: str, text_b: str, label: str) -> dict:
    return {"text_a": text_a.strip(), "text_b": text_b.strip(), "label": label}


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


def _split_file(task: Task, folder: Path, split: str, lang: str) -> tuple[Path, bool]:
    """(file to read, whether it holds the split as it is); row-index split otherwise."""
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


def _load_parallel(task: Task, folder: Path, split: str, lang: str) -> list[Example]:
    path, full = _split_file(task, folder, split, lang)
    examples = []
    for i, (number, line) in enumerate(_read_rows(path)):
        a, b, label = _cells(path, number, line, 3)  # every row is checked, whatever the split
        fields = _pair(a, b, _label(task, label.strip(), f"{path}:{number}"))
        if not full and i % 10 not in BUCKETS[split]:
            continue
        examples.append(Example(f"{task.name}-{split}-{lang}-{i}", lang, fields))
    return examples


def _load_tagging(task: Task, folder: Path, split: str, lang: str) -> list[Example]:
    path, full = _split_file(task, folder, split, lang)
    examples = []
    for i, ex in enumerate(readers.read_tagging(path, lang)):
        for tag in ex.fields["tags"]:
            _label(task, tag, f"{path} (sentence {i + 1})")
        if not full and i % 10 not in BUCKETS[split]:
            continue
        examples.append(Example(f"{task.name}-{split}-{lang}-{i}", lang, ex.fields))
    return examples


# --- per-language test files: XQuAD, MLQA, TyDiQA-GoldP, XCOPA, Tatoeba ---------------------
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
    if split == "dev":
        return _test_file(task, base, lang)
    paths = [base / c for c in TYDIQA_TRAIN]
    return next((c for c in paths if c.is_file()), paths[0])


def _load_test_file(task: Task, base: Path, split: str, lang: str) -> list[Example]:
    path = _split_path(task, base, split, lang)
    if path is None:
        raise XScaleError(f"task {task.name} has no {split} split in {lang!r}")
    if not path.is_file():
        have = available_languages(task, base, split)
        extra = f"; available: {', '.join(have)}" if have else ""
        raise XScaleError(f"task {task.name}: missing data file {path}{extra}")
    if task.format == "span_qa":
        return readers.read_squad(path, lang)
    if task.name == "xcopa":
        return readers.read_copa(path, lang)
    return readers.read_tatoeba(path.parent, lang)


# --- BUCC ------------------------------------------------------------------------------------
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


# --- English tasks ---------------------------------------------------------------------------
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


def _header_index(path: Path, header: list[str], wanted: tuple[str, ...]) -> list[int]:
    missing = [c for c in wanted if c not in header]
    if missing:
        raise XScaleError(f"{path}:1: header lacks column(s) {', '.join(missing)}")
    return [header.index(c) for c in wanted]


def _read_glue_pairs(
    task: Task, path: Path, columns: tuple[str, str, str], skip: str | None = None
) -> list[tuple[int, dict]]:
    """A GLUE pair tsv; quotes are literal text (QUOTE_NONE), columns found by header name."""
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if header is None:
            raise XScaleError(f"{path}: empty file (task {task.name})")
        i1, i2, il = _header_index(path, header, columns)
        rows = []
        for row in reader:
            number = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise XScaleError(
                    f"{path}:{number}: expected {len(header)} tab-separated columns,"
                    f" found {len(row)}"
                )
            if skip is not None and row[il] == skip:
                continue
            label = _label(task, row[il].strip(), f"{path}:{number}")
            rows.append((len(rows), _pair(row[i1], row[i2], label)))
    return rows


def _read_mnli(task: Task, path: Path) -> list[tuple[int, dict]]:
    """GLUE MNLI tsv; rows whose gold_label is "-" (no annotator consensus) are skipped."""
    return _read_glue_pairs(task, path, ("sentence1", "sentence2", "gold_label"), skip="-")


def _read_qqp(task: Task, path: Path) -> list[tuple[int, dict]]:
    """GLUE QQP tsv: id, qid1, qid2, question1, question2, is_duplicate (0/1)."""
    return _read_glue_pairs(task, path, ("question1", "question2", "is_duplicate"))


def _read_anli(task: Task, path: Path) -> list[tuple[int, dict]]:
    if path.suffix == ".csv":
        return _read_anli_csv(task, path)
    rows = []
    for number, line in _read_rows(path):
        try:
            item = json.loads(line)
            context, hypothesis, letter = item["context"], item["hypothesis"], item["label"]
        except (json.JSONDecodeError, TypeError) as e:
            raise XScaleError(f"{path}:{number}: not a JSON object ({e})") from None
        except KeyError as e:
            raise XScaleError(f"{path}:{number}: missing key {e}") from None
        label = _anli_label(task, letter, f"{path}:{number}")
        rows.append((len(rows), _pair(context, hypothesis, label)))
    return rows


def _anli_label(task: Task, letter, where: str) -> str:
    if letter not in ANLI_LETTERS:
        raise XScaleError(
            f"{where}: unknown label {letter!r} for task {task.name} (expected e/n/c)"
        )
    return ANLI_LETTERS[letter]


def _read_anli_csv(task: Task, path: Path) -> list[tuple[int, dict]]:
    """The ANLI analysis csv: fields may hold quoted newlines, so read it with the csv module."""
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            raise XScaleError(f"{path}: empty file (task {task.name})")
        ic, is_, il = _header_index(path, header, ("context", "statement", "gold_label"))
        rows = []
        start = reader.line_num + 1
        for row in reader:
            if row:
                if len(row) != len(header):
                    raise XScaleError(
                        f"{path}:{start}: expected {len(header)} comma-separated columns,"
                        f" found {len(row)}"
                    )
                label = _anli_label(task, row[il], f"{path}:{start}")
                rows.append((len(rows), _pair(row[ic], row[is_], label)))
            start = reader.line_num + 1
    return rows


def _read_sst2(task: Task, path: Path) -> list[tuple[int, dict]]:
    lines = _read_rows(path)
    first = next(lines, None)
    if first is None:
        raise XScaleError(f"{path}: empty file (task {task.name})")
    header = first[1].split("\t")
    text_col = "sentence" if "sentence" in header else "text"
    it, il = _header_index(path, header, (text_col, "label"))
    rows = []
    for number, line in lines:
        cells = _cells(path, number, line, len(header))
        label = _label(task, cells[il].strip(), f"{path}:{number}")
        rows.append((len(rows), {"text": cells[it].strip(), "label": label}))
    return rows


def _read_siqa(task: Task, path: Path) -> list[Example]:
    """Social IQa jsonl (context, question, answerA-C) and `<stem>-labels.lst` (1-3) beside it."""
    labels_path = path.with_name(f"{path.stem}-labels.lst")
    rows = list(readers._jsonl(path))
    labels: list[str] | None = None
    if labels_path.is_file():
        labels = [ln.strip() for ln in readers._lines(labels_path) if ln.strip()]
        if len(labels) != len(rows):
            raise XScaleError(
                f"{labels_path}: {len(labels)} labels but {path} has {len(rows)} rows"
            )
    examples = []
    for i, (n, row) in enumerate(rows):
        where = f"{path}:{n}"
        value = labels[i] if labels is not None else row.get("label")
        if value is None:
            raise XScaleError(f"{where}: no label in the row and no file {labels_path}")
        label = readers._int_label(str(value), 4, where) - 1  # 1-3 in the files
        if label < 0:
            raise XScaleError(f"{where}: label must be 1, 2 or 3, got {value!r}")
        fields = {
            "context": readers._get(row, "context", str, where),
            "question": readers._get(row, "question", str, where),
            "choices": [readers._get(row, f"answer{c}", str, where) for c in "ABC"],
            "label": label,
        }
        examples.append(Example(f"siqa-{i}", "en", fields))
    return examples


def _read_ccg(task: Task, path: Path) -> list[Example]:
    return [
        Example(f"ccg-{i}", "en", e.fields) for i, e in enumerate(readers.read_tagging(path, "en"))
    ]


ENGLISH_READERS: dict[str, Callable[[Task, Path], list]] = {
    "mnli": _read_mnli,
    "anli": _read_anli,
    "sst2": _read_sst2,
    "qqp": _read_qqp,
    "squad": lambda task, path: readers.read_squad(path, "en"),
    "squad2": lambda task, path: readers.read_squad(path, "en"),
    "ccg": _read_ccg,
    "hellaswag": lambda task, path: readers.read_hellaswag(path),
    "csqa": lambda task, path: readers.read_csqa(path),
    "cosmosqa": lambda task, path: readers.read_cosmosqa(path),
    "siqa": _read_siqa,
    "copa": lambda task, path: readers.read_copa(path, "en"),
}


# ---------------------------------------------------------------------------------------------
# Hugging Face hub
# ---------------------------------------------------------------------------------------------
# google/xtreme names its UD-POS configs by language name.
UD_LANGUAGE_NAMES = {
    "af": "Afrikaans", "ar": "Arabic", "bg": "Bulgarian", "de": "German", "el": "Greek",
    "en": "English", "es": "Spanish", "et": "Estonian", "eu": "Basque", "fa": "Persian",
    "fi": "Finnish", "fr": "French", "he": "Hebrew", "hi": "Hindi", "hu": "Hungarian",
    "id": "Indonesian", "it": "Italian", "ja": "Japanese", "kk": "Kazakh", "ko": "Korean",
    "mr": "Marathi", "nl": "Dutch", "pt": "Portuguese", "ru": "Russian", "ta": "Tamil",
    "te": "Telugu", "th": "Thai", "tl": "Tagalog", "tr": "Turkish", "ur": "Urdu",
    "vi": "Vietnamese", "yo": "Yoruba", "zh": "Chinese",
}  # fmt: skip
# TyDiQA question ids start with the language's name ("english--3215621880858840488-2").
TYDIQA_NAMES = {
    "en": "english", "ar": "arabic", "bn": "bengali", "fi": "finnish", "id": "indonesian",
    "ko": "korean", "ru": "russian", "sw": "swahili", "te": "telugu",
}  # fmt: skip


def _hub_config(task: Task, lang: str) -> str | None:
    """The hub config; placeholders: {lang}, {code} (Tatoeba's 3-letter code) and {language}
    (google/xtreme's UD-POS language name)."""
    if not task.hub.config:
        return None
    code = readers.TATOEBA_CODES.get(lang, lang)
    return task.hub.config.format(lang=lang, code=code, language=UD_LANGUAGE_NAMES.get(lang, lang))


def _load_hub(task: Task, split: str, lang: str, limit: int | None) -> list[Example]:
    hub = task.hub
    if hub is None:
        if task.name == "ccg":
            raise XScaleError(
                "task ccg has no Hugging Face hub source. "
                + CCG_LICENSE.format(where="<root>/intermediate/ccg/{train,dev}.tsv")
                + " and set data.tasks.ccg to <root> in the sweep config"
            )
        raise XScaleError(
            f"task {task.name} has no Hugging Face hub source; give a data root folder instead"
        )
    if split not in hub.splits:
        raise XScaleError(f"task {task.name}: {hub.dataset_id} has no {split} split with labels")
    config = _hub_config(task, lang)
    filtered = task.name == "tydiqa"  # one config for all languages: filter rows, then limit
    hub_split = hub.splits[split] + (f"[:{limit}]" if limit is not None and not filtered else "")
    name = hub.dataset_id + (f" ({config})" if config else "")
    try:
        import datasets

        rows = datasets.load_dataset(hub.dataset_id, config, split=hub_split)
    except Exception as e:  # offline, unknown id, network: one line, with the way out
        reason = " ".join(f"{type(e).__name__}: {e}".split())[:300]
        raise XScaleError(
            f"task {task.name}: could not load {name} split {hub_split} from the Hugging Face hub"
            f" ({reason}). Provide the data as a local folder in XTREME download layout"
            " (<root>/xtreme/<task>/..., <root>/intermediate/<task>/...) and use it as the data"
            " root (data.root in the sweep config)"
        ) from None
    convert = HUB_ROWS.get(task.format, _hub_classification)
    examples = []
    for i, row in enumerate(rows):
        where = f"{name} row {i}"
        if filtered and not str(row.get("id", "")).startswith(TYDIQA_NAMES[lang] + "-"):
            continue
        fields = convert(task, row, where)
        guid = str(row["id"]) if "id" in row and task.format == "span_qa" else None
        examples.append(Example(guid or f"{task.name}-{split}-{lang}-{i}", lang, fields))
    return examples


def _columns(row, names: tuple[str, ...], where: str) -> list:
    missing = [c for c in names if c not in row]
    if missing:
        raise XScaleError(f"{where}: no column(s) {', '.join(map(repr, missing))}")
    return [row[c] for c in names]


def _hub_classification(task: Task, row, where: str) -> dict:
    fields = {}
    for ours, theirs in task.hub.columns.items():
        if theirs not in row:
            raise XScaleError(f"task {task.name}: {where}: no column {theirs!r}")
        fields[ours] = row[theirs]
    fields["label"] = _hub_label(task, task.hub.label_names, fields["label"], where)
    return fields


def _hub_label(task: Task, names: tuple[str, ...] | None, value, where: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and names is not None:
        if not 0 <= value < len(names):
            raise XScaleError(
                f"{where}: label {value} is not a gold label (hidden test labels are -1)"
            )
        value = names[value]
    return _label(task, str(value), where)


def _hub_span_qa(task: Task, row, where: str) -> dict:
    qid, context, question, answers = _columns(row, ("id", "context", "question", "answers"), where)
    texts, starts = answers["text"], answers["answer_start"]
    return {
        "question": question,
        "context": context,
        "answers": [{"text": t, "answer_start": int(s)} for t, s in zip(texts, starts)],
        "id": str(qid),
        "is_impossible": len(texts) == 0,
    }


def _hub_tagging(task: Task, row, where: str) -> dict:
    column = "pos_tags" if task.name == "udpos" else "ner_tags"
    tokens, tags = _columns(row, ("tokens", column), where)
    return {
        "tokens": list(tokens),
        "tags": [_hub_label(task, task.hub.label_names, t, where) for t in tags],
    }


def _mc_label(value, n: int, offset: int, where: str) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if not isinstance(value, int) or not 0 <= value - offset < n:
        raise XScaleError(f"{where}: label {value!r} is not a gold label (hidden test labels)")
    return value - offset


def _hub_multiple_choice(task: Task, row, where: str) -> dict:
    if task.name == "hellaswag":
        ctx, endings, label = _columns(row, ("ctx", "endings", "label"), where)
        return {
            "context": ctx,
            "question": "",
            "choices": list(endings),
            "label": _mc_label(label, len(endings), 0, where),
        }
    if task.name == "csqa":
        question, choices, key = _columns(row, ("question", "choices", "answerKey"), where)
        keys = list(choices["label"])
        if key not in keys:
            raise XScaleError(
                f"{where}: answerKey {key!r} is not a gold label (hidden test labels)"
            )
        return {
            "context": "",
            "question": question,
            "choices": list(choices["text"]),
            "label": keys.index(key),
        }
    if task.name == "cosmosqa":
        cols = ("context", "question", "answer0", "answer1", "answer2", "answer3", "label")
        context, question, *choices, label = _columns(row, cols, where)
        return {
            "context": context,
            "question": question,
            "choices": choices,
            "label": _mc_label(label, 4, 0, where),
        }
    if task.name == "siqa":
        cols = ("context", "question", "answerA", "answerB", "answerC", "label")
        context, question, *choices, label = _columns(row, cols, where)
        return {
            "context": context,
            "question": question,
            "choices": choices,
            "label": _mc_label(label, 3, 1, where),
        }
    # copa, xcopa
    cols = ("premise", "question", "choice1", "choice2", "label")
    premise, question, c1, c2, label = _columns(row, cols, where)
    return {
        "context": premise,
        "question": question,
        "choices": [c1, c2],
        "label": _mc_label(label, 2, 0, where),
    }


def _hub_retrieval(task: Task, row, where: str) -> dict:
    source, target = _columns(row, ("source_sentence", "target_sentence"), where)
    return {"source": source.strip(), "target": target.strip()}


HUB_ROWS: dict[str, Callable[[Task, dict, str], dict]] = {
    "span_qa": _hub_span_qa,
    "tagging": _hub_tagging,
    "multiple_choice": _hub_multiple_choice,
    "retrieval": _hub_retrieval,
}
