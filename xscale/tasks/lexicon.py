"""Bilingual lexicons for code-mixing: read from MUSE dictionaries or induced from parallel text.

A `Lexicon` maps a word of one language to its translations in another, best first:
``lexicon.translations("pears", "en", "de") == ["Birnen", ...]``. Keys are lower-cased words
without the punctuation around them; translations keep their most frequent written form.

Sources (a set's `lexicon`, sweep/perturbations.LexiconSource):

    MUSE files   one ``word translation`` pair per line (space or tab), the format of MUSE's
                 ground-truth dictionaries (``de-en.txt``, ``en-de.0-5000.txt``); a path pattern
                 with ``{src}`` and ``{tgt}`` names one file per direction. A missing file or a
                 malformed line is one error naming the file and line.
    induced      from sentence pairs the study already has: the rows of XNLI and PAWS-X are
                 translations of each other in every language, Tatoeba's are X-English pairs.
                 Each word is linked to the target words (or, for languages written without
                 spaces, the character 1-3-grams) it co-occurs with, by the Dice coefficient
                 2 c(s,t) / (c(s) + c(t)) over sentence pairs; a word keeps the candidates with
                 c(s,t) >= 2 and Dice >= 0.3 and >= 0.6 x its best one's, at most `TOP`, and
                 (unspaced targets) none sharing a character with a better one.

A direction with no data of its own pivots through English (src -> en -> tgt), as MUSE files
usually come in en-X and X-en pairs and Tatoeba pairs everything with English.

Words (`words`): a maximal run of non-space characters, its leading and trailing punctuation
left out; in languages written without spaces (zh, ja, th, ...) a word is a dictionary entry
found by longest match (1-3 characters) in a run of letters.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from xscale.errors import XScaleError

UNSPACED = frozenset({"zh", "ja", "th", "my", "km", "lo", "yue", "wuu", "cmn"})
PIVOT = "en"
TOP = 3  # translations kept per word
MAX_NGRAM = 3  # longest character n-gram of an unspaced language taken as one word
MIN_COUNT = 2
MIN_DICE = 0.3
RELATIVE = 0.6  # a word's further candidates need this share of its best one's Dice

_TOKEN = re.compile(r"\S+")

# (src, tgt) -> parallel sentence pairs, or None when the data have none for that direction
Parallel = Callable[[str, str], Sequence[tuple[str, str]] | None]


def _is_punct(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "PS"


def _strip(start: int, end: int, text: str) -> tuple[int, int]:
    while start < end and _is_punct(text[start]):
        start += 1
    while end > start and _is_punct(text[end - 1]):
        end -= 1
    return start, end


def spaced_words(text: str) -> list[tuple[int, int]]:
    """(start, end) of each space-separated word, without its surrounding punctuation."""
    out = []
    for m in _TOKEN.finditer(text):
        start, end = _strip(m.start(), m.end(), text)
        if end > start:
            out.append((start, end))
    return out


def letter_runs(text: str) -> list[tuple[int, int]]:
    """(start, end) of each run of characters that are neither space nor punctuation."""
    out, start = [], None
    for i, ch in enumerate(text + " "):
        inside = not ch.isspace() and not _is_punct(ch)
        if inside and start is None:
            start = i
        elif not inside and start is not None:
            out.append((start, i))
            start = None
    return out


def units(text: str, lang: str) -> list[str]:
    """The lexicon units of a sentence: lower-cased words, or, in an unspaced language, every
    character 1..MAX_NGRAM-gram of its letter runs (induction's candidates)."""
    if lang not in UNSPACED:
        return [text[s:e].lower() for s, e in spaced_words(text)]
    out = []
    for s, e in letter_runs(text):
        run = text[s:e].lower()
        for n in range(1, MAX_NGRAM + 1):
            out.extend(run[i : i + n] for i in range(len(run) - n + 1))
    return out


@dataclass
class Lexicon:
    """Translations per direction: ``pairs[(src, tgt)][word] = [translation, ...]``, best first."""

    pairs: dict[tuple[str, str], dict[str, list[str]]] = field(default_factory=dict)

    def has(self, src: str, tgt: str) -> bool:
        return (src, tgt) in self.pairs or (
            (src, PIVOT) in self.pairs and (PIVOT, tgt) in self.pairs
        )

    def translations(self, word: str, src: str, tgt: str, top: int = TOP) -> list[str]:
        key = word.lower()
        direct = self.pairs.get((src, tgt))
        if direct is not None:
            return direct.get(key, [])[:top]
        first, second = self.pairs.get((src, PIVOT)), self.pairs.get((PIVOT, tgt))
        if first is None or second is None:
            return []
        out: list[str] = []
        for mid in first.get(key, [])[:2]:
            for t in second.get(mid.lower(), [])[:2]:
                if t not in out:
                    out.append(t)
        return out[:top]

    def keys(self, src: str, tgt: str) -> set[str]:
        """The words of `src` that have a translation into `tgt` (directly or by the pivot)."""
        if (src, tgt) in self.pairs:
            return set(self.pairs[(src, tgt)])
        if (src, PIVOT) in self.pairs and (PIVOT, tgt) in self.pairs:
            second = self.pairs[(PIVOT, tgt)]
            first = self.pairs[(src, PIVOT)]
            return {w for w, ts in first.items() if any(t.lower() in second for t in ts[:2])}
        return set()

    def words(self, text: str, lang: str, keys: set[str]) -> list[tuple[int, int, str]]:
        """(start, end, key) of the words of `text` found among `keys`, non-overlapping, in order;
        an unspaced language is matched longest first, left to right."""
        if lang not in UNSPACED:
            out = []
            for s, e in spaced_words(text):
                key = text[s:e].lower()
                if key in keys:
                    out.append((s, e, key))
            return out
        out = []
        for s, e in letter_runs(text):
            i = s
            while i < e:
                for n in range(min(MAX_NGRAM, e - i), 0, -1):
                    key = text[i : i + n].lower()
                    if key in keys:
                        out.append((i, i + n, key))
                        i += n
                        break
                else:
                    i += 1
        return out


# --------------------------------------------------------------------------- MUSE files


def read_muse(path: str | Path) -> dict[str, list[str]]:
    """A MUSE dictionary file: ``word translation`` per line -> {word: [translations, in file
    order]}. Blank lines are skipped; any other line without exactly two fields is an error
    naming the file and line."""
    p = Path(path)
    if not p.is_file():
        raise XScaleError(f"{p}: no such lexicon file" if not p.exists() else f"{p}: not a file")
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise XScaleError(f"{p}: cannot read ({e.strerror})") from None
    out: dict[str, list[str]] = {}
    for n, line in enumerate(raw.split(b"\n"), 1):
        try:
            text = line.decode("utf-8").strip()
        except UnicodeDecodeError as e:
            raise XScaleError(f"{p}: line {n}: not UTF-8 text ({e.reason})") from None
        if not text:
            continue
        parts = text.split()
        if len(parts) != 2:
            raise XScaleError(
                f"{p}: line {n}: expected 'word translation' (2 fields), got {len(parts)}:"
                f" {text[:60]!r}"
            )
        ts = out.setdefault(parts[0].lower(), [])
        if parts[1] not in ts:
            ts.append(parts[1])
    if not out:
        raise XScaleError(f"{p}: no 'word translation' lines")
    return out


def muse_path(pattern: str, src: str, tgt: str) -> Path:
    return Path(pattern.replace("{src}", src).replace("{tgt}", tgt))


# --------------------------------------------------------------------------- induction


def induce(
    sentence_pairs: Iterable[tuple[str, str]],
    src: str,
    tgt: str,
    min_count: int = MIN_COUNT,
    min_dice: float = MIN_DICE,
    top: int = TOP,
) -> dict[str, list[str]]:
    """{src word: [tgt words, best Dice first]} from parallel sentences (see the module doc)."""
    c_src: Counter = Counter()
    c_tgt: Counter = Counter()
    co: dict[str, Counter] = defaultdict(Counter)
    surface: dict[str, Counter] = defaultdict(Counter)
    for a, b in sentence_pairs:
        s_units = set(units(a, src))
        t_units = set(units(b, tgt))
        if tgt not in UNSPACED:
            for s, e in spaced_words(b):
                surface[b[s:e].lower()][b[s:e]] += 1
        c_src.update(s_units)
        c_tgt.update(t_units)
        for s in s_units:
            co[s].update(t_units)
    out: dict[str, list[str]] = {}
    for s, n_s in c_src.items():
        if n_s < min_count:
            continue
        scored = []
        for t, n_st in co[s].items():
            if n_st < min_count:
                continue
            dice = 2.0 * n_st / (n_s + c_tgt[t])
            if dice >= min_dice:
                scored.append((-round(dice, 12), -len(t), t))
        if scored:
            scored.sort()
            best = -scored[0][0]
            kept: list[str] = []
            for d, _, t in scored:
                if len(kept) == top or -d < RELATIVE * best:
                    break
                if tgt in UNSPACED and any(set(t) & set(k) for k in kept):
                    continue  # an n-gram overlapping a better one: the same word, cut worse
                kept.append(t)
            out[s] = [surface[t].most_common(1)[0][0] if surface.get(t) else t for t in kept]
    return out


def build_lexicon(
    needed: Iterable[tuple[str, str]],
    muse: str | None,
    parallel: Parallel | None = None,
) -> Lexicon:
    """A lexicon with every (src, tgt) direction of `needed`: from MUSE files (`muse`, a pattern
    with {src} and {tgt}) or induced from `parallel(src, tgt)` (sentence pairs, or None when
    the data have none for that direction); a direction with neither pivots through English."""
    lex = Lexicon()
    for src, tgt in sorted(set(needed)):
        for a, b in _route(src, tgt, muse, parallel):
            if (a, b) in lex.pairs:
                continue
            if muse is not None:
                lex.pairs[(a, b)] = read_muse(muse_path(muse, a, b))
            else:
                pairs = parallel(a, b)
                if pairs is None:
                    raise XScaleError(f"no parallel text for {a}-{b} to induce a lexicon from")
                lex.pairs[(a, b)] = induce(pairs, a, b)
    return lex


def _route(src: str, tgt: str, muse: str | None, parallel) -> list[tuple[str, str]]:
    """The directions that give src -> tgt: itself, or src -> en -> tgt."""
    if muse is not None:
        direct = muse_path(muse, src, tgt)
        if direct.is_file() or PIVOT in (src, tgt):
            return [(src, tgt)]
        via = [muse_path(muse, src, PIVOT), muse_path(muse, PIVOT, tgt)]
        if not all(p.is_file() for p in via):
            missing = " + ".join(p.name for p in via if not p.is_file())
            raise XScaleError(
                f"{direct}: no such lexicon file (nor {missing} to pivot through English)"
            )
        return [(src, PIVOT), (PIVOT, tgt)]
    if PIVOT in (src, tgt) or parallel(src, tgt) is not None:
        return [(src, tgt)]
    return [(src, PIVOT), (PIVOT, tgt)]
