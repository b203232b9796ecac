"""What several task modules share: label sets and column maps, and the checks of a hub row."""

from __future__ import annotations

from xscale.errors import XScaleError

NLI_LABELS = ("entailment", "neutral", "contradiction")
BINARY_LABELS = ("0", "1")
NLI_COLUMNS = {"text_a": "premise", "text_b": "hypothesis", "label": "label"}


def columns(row, names: tuple[str, ...], where: str) -> list:
    """The values of `names` in a hub row; one line naming the missing ones otherwise."""
    missing = [c for c in names if c not in row]
    if missing:
        raise XScaleError(f"{where}: no column(s) {', '.join(map(repr, missing))}")
    return [row[c] for c in names]


def choice_label(value, n: int, offset: int, where: str) -> int:
    """A multiple-choice gold label (0-based; `offset` 1 for 1-based data) among `n` choices."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if not isinstance(value, int) or not 0 <= value - offset < n:
        raise XScaleError(f"{where}: label {value!r} is not a gold label (hidden test labels)")
    return value - offset
