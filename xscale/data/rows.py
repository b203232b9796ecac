"""Reading and checking rows of local data files, and the split/language checks: every error is
an `XScaleError` naming the task and the file (and line) at fault. Text files are split on "\\n"
only: PAWS-X text can contain U+2028, which `str.splitlines()` would wrongly treat as a row break.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from xscale.errors import XScaleError
from xscale.tasks.base import SPLITS, Example, Task


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


def read_utf8(path: str | Path) -> str:
    """The file's text; one line naming the file and line when it is missing or not UTF-8."""
    path = Path(path)
    if not path.is_file():
        raise XScaleError(f"{path}: file not found")
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise XScaleError(f"{path}:{line}: not valid UTF-8 ({e.reason})") from None


def _missing(task: Task, path: Path) -> XScaleError:
    return XScaleError(f"task {task.name}: missing data file {path}")


def _read_rows(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, line) for each non-empty line; split on '\\n' only."""
    text = read_utf8(path)
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


def _header_index(path: Path, header: list[str], wanted: tuple[str, ...]) -> list[int]:
    missing = [c for c in wanted if c not in header]
    if missing:
        raise XScaleError(f"{path}:1: header lacks column(s) {', '.join(missing)}")
    return [header.index(c) for c in wanted]


def _pair(text_a: str, text_b: str, label: str) -> dict:
    return {"text_a": text_a.strip(), "text_b": text_b.strip(), "label": label}


def _key(text: str) -> str:
    return " ".join(text.split())


PLACEHOLDERS = frozenset({"", "NS"})  # PAWS-X's translations mark untranslated sentences "NS"


def _groups(sentences: list[tuple[str, ...]]) -> list[int]:
    """For each row, the first row of its group (rows connected by any shared sentence)."""
    parent = list(range(len(sentences)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    seen: dict[str, int] = {}
    for i, row in enumerate(sentences):
        for text in row:
            k = _key(text)
            if k in PLACEHOLDERS:  # an untranslated row's marker is no sentence: never groups
                continue
            if k in seen:
                a, b = find(seen[k]), find(i)
                if a != b:
                    parent[max(a, b)] = min(a, b)
            else:
                seen[k] = i
    return [find(i) for i in range(len(sentences))]


# TyDiQA-GoldP has no English dev set: XTREME evaluates on its dev files, so selecting on them
# would score the selection set. xscale holds out whole passages of the English training file
# instead: a passage's questions go to `dev` when the passage's first question's index is
# 6 mod 10 (about 10%), to `train` otherwise.
HELD_OUT_BUCKET = 6


def held_out_split(examples: list[Example], split: str) -> list[Example]:
    """`split` (train or dev) of a training file's span-QA examples, grouped by passage."""
    first = _groups([(e.fields["context"],) for e in examples])
    dev = [f % 10 == HELD_OUT_BUCKET for f in first]
    return [e for e, d in zip(examples, dev) if d == (split == "dev")]
