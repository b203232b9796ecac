"""Loading task examples from a *data root*: the Hugging Face hub, the shipped fixtures or a folder.

A data root is one of
- ``"hub"``: ``datasets.load_dataset(<task.hub.dataset_id>, <config>, split=...)``;
- ``"fixtures"``: the synthetic data shipped in ``xscale/fixtures/data`` (see its README);
- a folder in XTREME's download layout::

      <root>/xtreme/xnli/{train,dev,test}-<lang>.tsv      premise, hypothesis, label (no header)
      <root>/xtreme/pawsx/{train,dev,test}-<lang>.tsv     sentence1, sentence2, 0/1 (no header)
      <root>/intermediate/mnli/{train,dev_matched,dev_mismatched}.tsv   GLUE MNLI tsv
      <root>/intermediate/anli/R1/{train,dev,test}.jsonl  ANLI v1.0 jsonl (label e/n/c)
      <root>/intermediate/anli/ANLI_analysis_r1_dev.csv   dev split, when there is no R1 folder
      <root>/intermediate/sst2/{train,dev,test}.tsv       header `sentence` (or `text`) and `label`

  MNLI's dev split is dev_matched and its test split dev_mismatched (GLUE's test files have no
  labels); the hub task maps the same way. MNLI rows whose gold_label is "-" are skipped.

Row-index split (XNLI and PAWS-X). When a target task's folder holds only ``dev-<lang>.tsv`` files
(no ``train-*.tsv`` and no ``test-*.tsv``), as the real XTREME dev files in ``../shared/data`` do,
all three splits are cut from the dev files by row index. Row i of every ``dev-<lang>.tsv`` is the
same example in every language, and goes to bucket ``i % 10``: buckets 0-5 are ``train``,
bucket 6 is ``dev``, buckets 7-9 are ``test``. Training on English uses English rows of buckets
0-5; translate-train in another language uses that language's rows of the same buckets. So no
example whose English original is trained on is ever evaluated, in any language. When the folder
has ``train-*.tsv`` or ``test-*.tsv`` files, every split is read from its own files as they are.

Every error a user can fix (missing file, malformed row, unknown language) is an `XScaleError`
naming the task and the file (and line) at fault. Text files are split on "\\n" only: PAWS-X text
can contain U+2028, which `str.splitlines()` would wrongly treat as a row break.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

from xscale.errors import XScaleError
from xscale.tasks.base import SPLITS, Example, Task

FIXTURES = "fixtures"
HUB = "hub"
FIXTURES_DIR = Path(__file__).resolve().parent / "fixtures" / "data"

TRAIN_BUCKETS = range(0, 6)
BUCKETS = {"train": frozenset(TRAIN_BUCKETS), "dev": frozenset({6}), "test": frozenset({7, 8, 9})}
ANLI_LETTERS = {"e": "entailment", "n": "neutral", "c": "contradiction"}

# Where each task's files live under a data root, and how they are laid out.
PARALLEL_FOLDERS = {"xnli": "xtreme/xnli", "pawsx": "xtreme/pawsx"}
ENGLISH_FOLDERS = {
    "mnli": "intermediate/mnli",
    "anli": "intermediate/anli",
    "sst2": "intermediate/sst2",
}
MNLI_FILES = {"train": "train.tsv", "dev": "dev_matched.tsv", "test": "dev_mismatched.tsv"}
SST2_FILES = {"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"}
ANLI_CSV = "ANLI_analysis_r1_dev.csv"


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

    Fields: text_a, text_b, label (pair tasks) or text, label (single); label is always one of
    `task.labels`. `limit` keeps the first `limit` examples."""
    _check_split(task, split)
    _check_language(task, lang)
    where = resolve_root(root)
    if isinstance(where, str):
        examples = _load_hub(task, split, lang, limit)
    else:
        examples = _load_local(task, Path(where), split, lang)
    return examples if limit is None else examples[:limit]


def available_languages(task: Task, root: str | Path, split: str) -> list[str]:
    """The languages (in `task.languages` order) that `root` has `split` data for.

    For the hub this is every language of the task (it cannot be checked offline)."""
    _check_split(task, split)
    where = resolve_root(root)
    if isinstance(where, str):
        return list(task.languages)
    base = Path(where)
    if task.name in PARALLEL_FOLDERS:
        return _parallel_languages(task, base / PARALLEL_FOLDERS[task.name], split)
    return ["en"] if _english_file(task, base, split).is_file() else []


# ---------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------
def _check_split(task: Task, split: str) -> None:
    if split not in SPLITS:
        raise XScaleError(f"task {task.name}: unknown split {split!r}; splits: {', '.join(SPLITS)}")


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
    if task.name not in ENGLISH_FOLDERS:
        raise XScaleError(f"task {task.name}: no reader for local data folders")
    path = _english_file(task, base, split)
    if not path.is_file():
        raise _missing(task, path)
    reader = {"mnli": _read_mnli, "anli": _read_anli, "sst2": _read_sst2}[task.name]
    rows = reader(task, path)
    return [Example(f"{task.name}-{split}-en-{i}", "en", f) for i, f in rows]


# --- XNLI / PAWS-X --------------------------------------------------------------------------
def _pair(text_a: str, text_b: str, label: str) -> dict:
    return {"text_a": text_a.strip(), "text_b": text_b.strip(), "label": label}


def _has_full_splits(folder: Path) -> bool:
    return any(folder.glob("train-*.tsv")) or any(folder.glob("test-*.tsv"))


def _parallel_languages(task: Task, folder: Path, split: str) -> list[str]:
    prefix = f"{split}-" if _has_full_splits(folder) else "dev-"
    found = {p.name[len(prefix) : -len(".tsv")] for p in folder.glob(f"{prefix}*.tsv")}
    return [lang for lang in task.languages if lang in found]


def _load_parallel(task: Task, folder: Path, split: str, lang: str) -> list[Example]:
    full = _has_full_splits(folder)
    path = folder / f"{split if full else 'dev'}-{lang}.tsv"
    if not path.is_file():
        have = _parallel_languages(task, folder, split)
        if have:
            raise XScaleError(
                f"task {task.name}: no {split} data for language {lang!r} ({path} is missing);"
                f" available: {', '.join(have)}"
            )
        raise _missing(task, path)
    examples = []
    for i, (number, line) in enumerate(_read_rows(path)):
        a, b, label = _cells(path, number, line, 3)  # every row is checked, whatever the split
        fields = _pair(a, b, _label(task, label.strip(), f"{path}:{number}"))
        if not full and i % 10 not in BUCKETS[split]:
            continue
        examples.append(Example(f"{task.name}-{split}-{lang}-{i}", lang, fields))
    return examples


# --- English intermediate tasks ---------------------------------------------------------------
def _english_file(task: Task, base: Path, split: str) -> Path:
    folder = base / ENGLISH_FOLDERS[task.name]
    if task.name == "mnli":
        return folder / MNLI_FILES[split]
    if task.name == "sst2":
        return folder / SST2_FILES[split]
    # anli: the official R1 jsonl files; else the analysis csv serves as the dev split
    jsonl = folder / "R1" / f"{split}.jsonl"
    if split == "dev" and not (folder / "R1").is_dir() and (folder / ANLI_CSV).is_file():
        return folder / ANLI_CSV
    return jsonl


def _header_index(path: Path, header: list[str], wanted: tuple[str, ...]) -> list[int]:
    missing = [c for c in wanted if c not in header]
    if missing:
        raise XScaleError(f"{path}:1: header lacks column(s) {', '.join(missing)}")
    return [header.index(c) for c in wanted]


def _read_mnli(task: Task, path: Path) -> list[tuple[int, dict]]:
    """GLUE MNLI tsv; quotes are literal text (QUOTE_NONE), columns found by header name."""
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if header is None:
            raise XScaleError(f"{path}: empty file (task {task.name})")
        i1, i2, il = _header_index(path, header, ("sentence1", "sentence2", "gold_label"))
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
            if row[il] == "-":  # no annotator consensus
                continue
            label = _label(task, row[il], f"{path}:{number}")
            rows.append((len(rows), _pair(row[i1], row[i2], label)))
    return rows


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


# ---------------------------------------------------------------------------------------------
# Hugging Face hub
# ---------------------------------------------------------------------------------------------
def _load_hub(task: Task, split: str, lang: str, limit: int | None) -> list[Example]:
    hub = task.hub
    if hub is None:
        raise XScaleError(
            f"task {task.name} has no Hugging Face hub source; give a data root folder instead"
        )
    if split not in hub.splits:
        raise XScaleError(f"task {task.name}: {hub.dataset_id} has no {split} split with labels")
    config = hub.config.format(lang=lang) if hub.config else None
    hub_split = hub.splits[split] + (f"[:{limit}]" if limit is not None else "")
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
    examples = []
    for i, row in enumerate(rows):
        fields = {}
        for ours, theirs in hub.columns.items():
            if theirs not in row:
                raise XScaleError(f"task {task.name}: {name} rows have no column {theirs!r}")
            fields[ours] = row[theirs]
        fields["label"] = _hub_label(task, hub.label_names, fields["label"], f"{name} row {i}")
        examples.append(Example(f"{task.name}-{split}-{lang}-{i}", lang, fields))
    return examples


def _hub_label(task: Task, names: tuple[str, ...] | None, value, where: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and names is not None:
        if not 0 <= value < len(names):
            raise XScaleError(
                f"{where}: label {value} is not a gold label (hidden test labels are -1)"
            )
        value = names[value]
    return _label(task, str(value), where)
