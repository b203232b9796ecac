"""Dataset cartography (Swayamdipta et al. 2020): training dynamics -> a map -> subsets.

For each training example the map run records, at the end of every epoch, the model's
probability of the example's gold label and whether its prediction (argmax) is right
(stage/cartography.py). Over the E epochs:

    confidence  = mean of the gold-label probabilities
    variability = their standard deviation (population std, numpy's default, as the paper's code)
    correctness = the share of epochs whose prediction was right

Subsets, `fraction` of the examples of each training language (at least one), so a subset keeps
the language mix of the full set:

    easy       the highest confidence   (easy-to-learn)
    hard       the lowest confidence    (hard-to-learn)
    ambiguous  the highest variability

Ties are broken by the examples' order in the training data (a stable sort), so a subset is a
pure function of the map. The task-level summary: the three means, and the shares of examples
right at every epoch (`share_easy`), at none (`share_hard`) and at some (`share_ambiguous`).

`cartography.jsonl`: one JSON object per example, in training-data order:
``{"guid", "lang", "confidence", "variability", "correctness", "probs": [p_1, ..., p_E]}``.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from xscale.errors import XScaleError

SUBSET_KEYS = {  # subset -> (quantity ranked, highest first?)
    "easy": ("confidence", True),
    "hard": ("confidence", False),
    "ambiguous": ("variability", True),
}
SUMMARY = (
    "confidence",
    "variability",
    "correctness",
    "share_easy",
    "share_ambiguous",
    "share_hard",
)


@dataclass(frozen=True)
class MapEntry:
    guid: str
    lang: str
    confidence: float
    variability: float
    correctness: float
    probs: tuple[float, ...]


def build_map(
    guids: list[str], langs: list[str], probs: np.ndarray, correct: np.ndarray
) -> list[MapEntry]:
    """The map from per-epoch gold probabilities and correctness, each (epochs x examples)."""
    probs = np.asarray(probs, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    if probs.ndim != 2 or probs.shape != correct.shape or probs.shape[1] != len(guids):
        raise ValueError(f"dynamics of shape {probs.shape} / {correct.shape} for {len(guids)}")
    if probs.shape[0] < 2:
        raise ValueError(f"a map needs at least 2 epochs of dynamics, got {probs.shape[0]}")
    if len(set(guids)) != len(guids):
        raise ValueError("training examples must have distinct guids")
    conf, var, right = probs.mean(axis=0), probs.std(axis=0), correct.mean(axis=0)
    return [
        MapEntry(
            guids[i],
            langs[i],
            float(conf[i]),
            float(var[i]),
            float(right[i]),
            tuple(round(float(p), 6) for p in probs[:, i]),
        )
        for i in range(len(guids))
    ]


def subset_size(n: int, fraction: float) -> int:
    """round(n x fraction), halves up, at least 1 (of n >= 1)."""
    return max(1, min(n, math.floor(n * fraction + 0.5)))


def select(entries: list[MapEntry], subset: str, fraction: float) -> list[str]:
    """The guids of the `subset` region, `fraction` of each language's examples, in map order."""
    if subset not in SUBSET_KEYS:
        raise ValueError(f"unknown subset {subset!r} (known: {', '.join(SUBSET_KEYS)})")
    key, highest = SUBSET_KEYS[subset]
    keep: set[str] = set()
    for lang in dict.fromkeys(e.lang for e in entries):
        mine = [e for e in entries if e.lang == lang]
        sign = -1.0 if highest else 1.0
        ranked = sorted(range(len(mine)), key=lambda i: sign * getattr(mine[i], key))  # stable
        keep.update(mine[i].guid for i in ranked[: subset_size(len(mine), fraction)])
    return [e.guid for e in entries if e.guid in keep]


def summary(entries: list[MapEntry]) -> dict[str, float]:
    """The task-level difficulty of the map (`SUMMARY`, module docstring)."""
    if not entries:
        raise ValueError("an empty map has no summary")
    n = len(entries)
    always = sum(e.correctness >= 1.0 for e in entries)
    never = sum(e.correctness <= 0.0 for e in entries)
    return {
        "confidence": math.fsum(e.confidence for e in entries) / n,
        "variability": math.fsum(e.variability for e in entries) / n,
        "correctness": math.fsum(e.correctness for e in entries) / n,
        "share_easy": always / n,
        "share_ambiguous": (n - always - never) / n,
        "share_hard": never / n,
    }


def write_map(path: Path, entries: list[MapEntry]) -> None:
    """`cartography.jsonl` (written under a temporary name, then renamed)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for e in entries:
            f.write(json.dumps(asdict(e), ensure_ascii=False) + "\n")
    tmp.replace(path)


def read_map(path: Path) -> list[MapEntry]:
    """The entries of a `cartography.jsonl`; a malformed line is one error naming file:line."""
    path = Path(path)
    entries = []
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except (OSError, UnicodeDecodeError) as e:
        raise XScaleError(f"{path}: cannot read the cartography map ({type(e).__name__})") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            entries.append(
                MapEntry(
                    str(d["guid"]),
                    str(d["lang"]),
                    float(d["confidence"]),
                    float(d["variability"]),
                    float(d["correctness"]),
                    tuple(float(p) for p in d["probs"]),
                )
            )
        except (ValueError, KeyError, TypeError) as e:
            raise XScaleError(f"{path}:{n}: not a cartography map entry ({e})") from None
    return entries
