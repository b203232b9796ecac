"""Local readers of the English tasks (intermediate tasks, and the English train/dev data of the
QA and XCOPA targets): GLUE tsv, ANLI jsonl/csv, SST-2, Social IQa, CCG; `ENGLISH_READERS` maps
each task to its reader, which gives examples or (index, fields) rows."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path

from xscale.data import readers
from xscale.data.rows import _cells, _header_index, _label, _pair, _read_rows, read_utf8
from xscale.errors import XScaleError
from xscale.tasks.base import Example, Task

ANLI_LETTERS = {"e": "entailment", "n": "neutral", "c": "contradiction"}


def _read_glue_pairs(
    task: Task, path: Path, columns: tuple[str, str, str], skip: str | None = None
) -> list[tuple[int, dict]]:
    """A GLUE pair tsv; quotes are literal text (QUOTE_NONE), columns found by header name."""
    with io.StringIO(read_utf8(path), newline="") as f:
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
    with io.StringIO(read_utf8(path), newline="") as f:
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
    labels_path = readers.labels_beside(path)
    rows = list(readers._jsonl(path))
    labels: list[str] | None = None
    if labels_path.is_file():
        labels = readers.read_label_file(labels_path, len(rows), path)
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
    "mnli_tsv": _read_mnli,
    "anli_jsonl_csv": _read_anli,
    "sst2_tsv": _read_sst2,
    "qqp_tsv": _read_qqp,
    "squad_json": lambda task, path: readers.read_squad(path, "en"),
    "ccg_tsv": _read_ccg,
    "hellaswag_jsonl": lambda task, path: readers.read_hellaswag(path),
    "csqa_jsonl": lambda task, path: readers.read_csqa(path),
    "cosmosqa_jsonl": lambda task, path: readers.read_cosmosqa(path),
    "siqa_jsonl": _read_siqa,
    "copa_jsonl": lambda task, path: readers.read_copa(path, "en"),
}
