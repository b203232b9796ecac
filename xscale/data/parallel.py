"""Parallel sentences for alignment metrics: English and another language, sentence by sentence.

Three sources the study already reads:

- XNLI and PAWS-X: row i of every language's file is the same example, translated (XNLI's test
  and dev rows; PAWS-X's human-translated dev and test rows). Each row gives two pairs: its first
  sentence (premise / sentence 1) in English and in the language, and its second.
- Tatoeba: its (non-English, English) pairs, as the retrieval task reads them.

A sentence is used once: a pair whose English (or other) side repeats an earlier pair's is
skipped (XNLI's three hypotheses share one premise; identical sentences would make retrieval
ambiguous). The first `max_pairs` distinct pairs are kept, in file order: a pure function of the
data, so every checkpoint is measured on the same sentences.
"""

from __future__ import annotations

from pathlib import Path

from xscale.data.load import load_examples
from xscale.errors import XScaleError
from xscale.tasks.base import Task


def parallel_pairs(
    task: Task, lang: str, root: str | Path, split: str = "test", max_pairs: int | None = None
) -> list[tuple[str, str]]:
    """Up to `max_pairs` distinct (English, `lang`) sentence pairs of `task`'s `split`."""
    if task.parallel == "pairs":  # each example: English `target`, its `source` translation
        rows = load_examples(task, split, lang, root)
        candidates = [(e.fields["target"], e.fields["source"]) for e in rows]
    elif task.parallel == "rows":  # row i of every language's file is one example
        en = load_examples(task, split, "en", root)
        other = load_examples(task, split, lang, root)
        if len(en) != len(other):
            raise XScaleError(
                f"{task.name}: the {split} rows of en ({len(en)}) and {lang} ({len(other)}) under"
                f" {root} are not parallel; alignment needs row i to be one example in both"
            )
        candidates = [
            (a.fields[f], b.fields[f]) for a, b in zip(en, other) for f in task.parallel_fields
        ]
    else:
        raise XScaleError(f"task {task.name}: no parallel rows (xnli, pawsx, tatoeba have them)")
    pairs: list[tuple[str, str]] = []
    seen_en: set[str] = set()
    seen_other: set[str] = set()
    for a, b in candidates:
        a, b = a.strip(), b.strip()
        if not a or not b or a in seen_en or b in seen_other:
            continue
        seen_en.add(a)
        seen_other.add(b)
        pairs.append((a, b))
        if max_pairs is not None and len(pairs) == max_pairs:
            break
    if len(pairs) < 2:
        raise XScaleError(
            f"{task.name}: {len(pairs)} distinct en-{lang} sentence pairs in its {split} split"
            f" under {root}; alignment needs at least 2"
        )
    return pairs
