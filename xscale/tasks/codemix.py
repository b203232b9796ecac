"""Code-mixing: words (or phrases) of an example replaced by their translations, as `Edit`s.

An `Edit` replaces characters [start, end) of one text field of an example (a list field such
as `choices` or a tagging sentence's `tokens` by its element) with other text. Edits are made
against the original example and applied together (`apply_edits`), so the attacks can try an
edit on top of those they kept without re-reading the text. Inserting a word of a spaced script
into text written without spaces (or the reverse) adds the spaces that keep both words apart.

`word_candidates` lists, per word of the example that the lexicon can translate (a *site*),
every replacement by one of its `candidates` best translations into each embedded language (the
example's own language skipped): the one search space of random code-mixing (`codemix`: each
site with probability `rate`, or `budget` sites, chosen at random) and of the PolyGloss attack
(attack.py: the site and translation that raise the loss most). Span QA contexts (with the
set's `context`) never have a site inside a gold answer; the answers' offsets move with the
edits before them. A tagging token is a site only as a whole and takes only a one-word
translation that translates back to it (both directions of the lexicon), so every tag stays with
its token and fits it.
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass, replace

from xscale.tasks import format_info
from xscale.tasks.base import Example, Task
from xscale.tasks.lexicon import Lexicon
from xscale.tasks.perturb import Perturbed, _rng, locate_answers, relocated


@dataclass(frozen=True)
class Edit:
    field: str
    index: int | None  # the element of a list field (choices, tokens); None for a text field
    start: int
    end: int
    text: str
    lang: str = ""  # the language the replacement is in

    def overlaps(self, other: Edit) -> bool:
        return (
            self.field == other.field
            and self.index == other.index
            and self.start < other.end
            and other.start < self.end
        )


def fields_of(task: Task, ex: Example, context: bool = False) -> list[tuple[str, int | None, str]]:
    """(field, index, text) of every text an edit may rewrite."""
    info = format_info(task)
    if info.token_level:
        return [("tokens", i, t) for i, t in enumerate(ex.fields["tokens"])]
    keys = list(info.text_fields) + (["context"] if context and task.format == "span_qa" else [])
    out: list[tuple[str, int | None, str]] = []
    for key in keys:
        value = ex.fields.get(key)
        if isinstance(value, str):
            out.append((key, None, value))
        elif isinstance(value, list):
            out.extend((key, i, v) for i, v in enumerate(value))
    return out


def _cjk(ch: str) -> bool:
    return unicodedata.name(ch, "").startswith(("CJK", "HIRAGANA", "KATAKANA", "HANGUL", "THAI"))


def _needs_space(a: str, b: str) -> bool:
    """Two letters meeting at a replacement's edge are kept apart unless both are CJK-like."""
    return a.isalnum() and b.isalnum() and not (_cjk(a) and _cjk(b))


def splice(text: str, edits: list[Edit]) -> tuple[str, list[tuple[int, int]]]:
    """`text` with non-overlapping `edits` applied; also (old end offset, accumulated shift)
    after each edit. A space keeps a replacement apart from a letter beside it unless both are
    of a script written without spaces (once, also between two adjacent replacements)."""
    out: list[str] = []
    pos, shifts, delta = 0, [], 0
    ordered = sorted(edits, key=lambda e: e.start)
    for k, e in enumerate(ordered):
        out.append(text[pos : e.start])
        rep = e.text
        before = "".join(out)[-1:] if out else ""
        after = text[e.end] if e.end < len(text) else ""
        adjacent = k + 1 < len(ordered) and ordered[k + 1].start == e.end
        if rep and before and _needs_space(before, rep[0]):
            rep = " " + rep
        if rep and after and not adjacent and _needs_space(rep[-1], after):
            rep = rep + " "
        out.append(rep)
        pos = e.end
        delta += len(rep) - (e.end - e.start)
        shifts.append((e.end, delta))
    out.append(text[pos:])
    return "".join(out), shifts


def apply_edits(ex: Example, edits: list[Edit]) -> Example:
    """The example with `edits` applied; span QA answers move with the context."""
    if not edits:
        return ex
    fields = dict(ex.fields)
    groups: dict[tuple[str, int | None], list[Edit]] = {}
    for e in edits:
        groups.setdefault((e.field, e.index), []).append(e)
    for (key, index), es in groups.items():
        if index is None:
            fields[key], shifts = splice(fields[key], es)
            if key == "context" and "answers" in fields:
                fields["answers"] = [_moved(a, shifts) for a in fields["answers"]]
        else:
            values = list(fields[key])
            values[index], _ = splice(values[index], es)
            fields[key] = values
    return replace(ex, fields=fields)


def _moved(answer: dict, shifts: list[tuple[int, int]]) -> dict:
    """An answer's start after the edits (none of which touches it): the shift accumulated by
    the last edit ending at or before it."""
    start = answer.get("answer_start", -1)
    if not answer.get("text") or start < 0:
        return answer
    delta = 0
    for end, d in shifts:
        if end <= start:
            delta = d
    return {**answer, "answer_start": start + delta}


def word_candidates(
    task: Task,
    ex: Example,
    lexicon: Lexicon,
    languages,
    top: int = 2,
    context: bool = False,
) -> list[list[Edit]]:
    """Per site (in text order), its replacements by translations into `languages`."""
    token_level = format_info(task).token_level
    src = ex.lang
    targets = [t for t in languages if t != src and lexicon.has(src, t)]
    if not targets:
        return []
    keys = set().union(*(lexicon.keys(src, t) for t in targets))
    protected: list[tuple[int, int]] = []
    if context and task.format == "span_qa":
        protected = [s for s in (locate_answers(ex) or []) if s is not None]
    sites = []
    for key, index, text in fields_of(task, ex, context):
        for start, end, word in lexicon.words(text, src, keys):
            if token_level and text[start:end] != text.strip():
                continue  # a token is a site only as a whole
            if key == "context" and any(start < e and s < end for s, e in protected):
                continue
            edits = []
            first = index == 0 if token_level else not text[:start].strip()
            for tgt in targets:
                for t in lexicon.translations(word, src, tgt, top):
                    if t.lower() == word or (
                        token_level and not _faithful(lexicon, word, t, src, tgt)
                    ):
                        continue
                    edits.append(
                        Edit(key, index, start, end, _cased(text[start:end], t, first), tgt)
                    )
            if edits:
                sites.append(edits)
    return sites


def _cased(source: str, translation: str, first: bool) -> str:
    """The translation of a text's capitalised first word capitalised, else as it is."""
    if first and source[:1].isupper() and translation[:1].islower():
        return translation[:1].upper() + translation[1:]
    return translation


def _faithful(lexicon: Lexicon, word: str, t: str, src: str, tgt: str) -> bool:
    """A tagging token's translation keeps its tag only as one word that translates back to
    it (a noisy lexicon pairs function words with content words)."""
    back = lexicon.translations(t, tgt, src) if lexicon.has(tgt, src) else []
    return " " not in t and word in [b.lower() for b in back]


def random_codemix(
    sites: list[list[Edit]], rng: random.Random, rate: float = 0.3, budget: int | None = None
) -> list[Edit]:
    """Random code-mixing: `budget` sites (or each site with probability `rate`), each replaced
    by one of its translations, drawn with `rng`."""
    if budget is not None:
        chosen = sorted(rng.sample(range(len(sites)), min(budget, len(sites))))
    else:
        chosen = [i for i in range(len(sites)) if rng.random() < rate]
    return [sites[i][rng.randrange(len(sites[i]))] for i in chosen]


def apply_codemix(task: Task, examples: list[Example], pset, seed: int, lexicon) -> Perturbed:
    """A `codemix` set applied to `examples` (a span QA example whose answers cannot be found
    in its context is excluded when the set rewrites contexts)."""
    out, kept = [], []
    for i, ex in enumerate(examples):
        if pset.context and task.format == "span_qa":
            ex = relocated(ex)
            if ex is None:
                continue
        rng = _rng(seed, pset.name, ex.guid)
        sites = word_candidates(task, ex, lexicon, pset.languages, pset.candidates, pset.context)
        out.append(apply_edits(ex, random_codemix(sites, rng, pset.rate, pset.budget)))
        kept.append(i)
    return Perturbed(out, kept, len(examples) - len(out))
