"""Lexicons in a stage: induced from the parallel rows under the stage's data root (or read from
MUSE files), once per source and direction by direction as languages need them; and the
preflight check that every direction a set needs can be built.

    LexiconSource (sweep/perturbations.py) --parallel_text--> sentence pairs per direction
                  --tasks/lexicon.build_lexicon--> Lexicon (direct, or through English)
"""

from __future__ import annotations

from collections.abc import Sequence

from xscale import data as xdata
from xscale.errors import XScaleError
from xscale.sweep.perturbations import LexiconSource, SetBase
from xscale.tasks.lexicon import PIVOT, Lexicon, Parallel, build_lexicon
from xscale.tasks.registry import get_task


def parallel_text(source: LexiconSource, default_root: str) -> Parallel:
    """`pairs(a, b)`: sentence pairs from `source.induce_from` under its root (None: none)."""
    root = source.root or default_root
    cache: dict[tuple[str, str], list | None] = {}

    def pairs(a: str, b: str):
        if (a, b) in cache:
            return cache[(a, b)]
        out: list[tuple[str, str]] = []
        for name in source.induce_from:
            task = get_task(name)
            if task.parallel == "pairs":  # X-English pairs: source is X, target English
                other = b if a == PIVOT else a
                if PIVOT not in (a, b) or other not in xdata.available_languages(
                    task, root, "test"
                ):
                    continue
                rows = xdata.load_examples(task, "test", other, root, limit=source.max_rows)
                for r in rows:
                    x, en = r.fields["source"], r.fields["target"]
                    out.append((x, en) if a == other else (en, x))
                continue
            have = xdata.available_languages(task, root, "train")
            if a not in have or b not in have:
                continue
            xa = xdata.load_examples(task, "train", a, root, limit=source.max_rows)
            xb = xdata.load_examples(task, "train", b, root, limit=source.max_rows)
            if len(xa) != len(xb):
                raise XScaleError(
                    f"{name}: {len(xa)} {a} and {len(xb)} {b} training rows under {root}: not"
                    " parallel, so no lexicon can be induced from them"
                )
            for x, y in zip(xa, xb):
                out += [(x.fields[k], y.fields[k]) for k in ("text_a", "text_b") if k in x.fields]
        cache[(a, b)] = out or None
        return cache[(a, b)]

    return pairs


class Lexicons:
    """One lexicon per source in a stage, grown direction by direction."""

    def __init__(self, default_root: str):
        self.root = default_root
        self._lex: dict[str, Lexicon] = {}
        self._parallel: dict[str, Parallel] = {}

    def get(self, source: LexiconSource, directions) -> Lexicon:
        key = source.model_dump_json()
        lex = self._lex.setdefault(key, Lexicon())
        missing = sorted({d for d in directions if not lex.has(*d)})
        if missing:
            if key not in self._parallel:
                self._parallel[key] = parallel_text(source, self.root)
            lex.pairs.update(build_lexicon(missing, source.muse, self._parallel[key]).pairs)
        return lex


def check_lexicon(pset: SetBase, langs: Sequence[str], root: str) -> None:
    """Preflight: every direction a code-mixing set needs in `langs` has a MUSE file that reads
    (file and line named otherwise) or parallel rows to induce it from."""
    source: LexiconSource | None = getattr(pset, "lexicon", None)
    if source is None:
        return
    directions = {(a, b) for a in langs for b in pset.languages if a != b}
    if source.muse is not None:  # reads (and so checks) every file it needs
        build_lexicon(directions, source.muse)
        return
    parallel = parallel_text(source, root)
    for a, b in sorted(directions):
        if parallel(a, b) is None and (parallel(a, PIVOT) is None or parallel(PIVOT, b) is None):
            raise XScaleError(
                f"perturbation set {pset.name!r}: no parallel rows for {a}-{b} in"
                f" {'+'.join(source.induce_from)} under {source.root or root} to induce a"
                " lexicon from"
            )
