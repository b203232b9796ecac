"""Does an intermediate task's training data hold a target's test sentences (or their
translations)? An intermediate stage writes a key per text it trained on (`train_texts.keys`
in its stage folder); a target stage below it counts the test examples, in every language it
evaluates, that share a text with that set. A multilingual intermediate task built from the
target's own data (XNLI translate-train before XNLI) or from a translation of its test set is
then flagged in the report, with the count, instead of being compared as if it were clean.

Texts are compared after Unicode NFKC, case folding and whitespace collapsing; a text shorter
than `MIN_CHARS` characters (a label word, a one-word answer) never counts. The keys are 64-bit
BLAKE2b digests: two different texts collide with probability about n*m / 2**64.
"""

from __future__ import annotations

import hashlib
import unicodedata
from array import array
from collections.abc import Iterable, Iterator
from pathlib import Path

from xscale.tasks.base import Example

KEYS_FILE = "train_texts.keys"
MIN_CHARS = 12
# fields that are labels, ids or annotations, never text a model reads as a sentence
NOT_TEXT = frozenset({"label", "id", "key", "tags", "answers", "guid", "question_type"})


def normalize(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def texts(example: Example) -> Iterator[str]:
    """The sentences an example holds: its string fields, a token list joined by spaces, each
    string of a list (choices, text segments)."""
    for name, value in example.fields.items():
        if name in NOT_TEXT:
            continue
        if isinstance(value, str):
            yield value
        elif isinstance(value, list | tuple) and value and all(isinstance(v, str) for v in value):
            if name == "tokens":
                yield " ".join(value)
            else:
                yield from value


def _key(text: str) -> int | None:
    norm = normalize(text)
    if len(norm) < MIN_CHARS:
        return None
    return int.from_bytes(hashlib.blake2b(norm.encode("utf-8"), digest_size=8).digest(), "big")


def text_keys(examples: Iterable[Example]) -> set[int]:
    keys = (_key(t) for e in examples for t in texts(e))
    return {k for k in keys if k is not None}


def write_keys(path: Path, keys: set[int]) -> None:
    """`keys`, sorted, as unsigned 64-bit integers (written whole, then renamed in place)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        array("Q", sorted(keys)).tofile(f)
    tmp.replace(path)


def read_keys(path: Path) -> set[int] | None:
    """The keys of `path`; None when it is absent (a stage written before keys existed)."""
    path = Path(path)
    if not path.is_file():
        return None
    data = array("Q")
    data.frombytes(path.read_bytes())
    return set(data)


def overlapping(keys: set[int], examples: Iterable[Example]) -> int:
    """How many of `examples` hold at least one text whose key is in `keys`."""
    return sum(1 for e in examples if any(_key(t) in keys for t in texts(e)))
