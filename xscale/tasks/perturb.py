"""Noise perturbations: seeded, label-preserving character and word noise applied to test examples.

Each target stage evaluates on the clean test set and on every perturbation set the sweep names
(sweep/perturbations.py declares them, with their parameters), in every language, logging
`<task>.<lang>.<set>.<metric>` beside the clean score, so robustness can be compared by model
size (xscale analyze's robustness tables). The families here (code-mixing is in codemix.py, the
attacks in attack.py):

    typo     in `rate` (0.2) of words of 4+ characters: swap two inner characters, drop one or
             double one
    char     in `rate` of words of 3+ characters, one edit drawn from `ops`: swap two adjacent
             characters, delete one, insert a neighbouring key, replace one by a neighbouring
             key (QWERTY; letters without one, e.g. CJK, are left alone by key edits)
    swap     swap `rate` (0.2) of adjacent word pairs (word order noise)
    shuffle  shuffle the words of consecutive windows of `window` words, each window with
             probability `rate`
    dropout  drop each word with probability `rate` (one word is always kept)
    nopunct  remove every punctuation character (Unicode category P*)
    lower    lower-case everything

The same example, seed and set name always give the same perturbed text (one random stream per
(seed, set name, example id)), so every size is evaluated on identical inputs. What each format
perturbs: classification: its text(s); multiple choice: context, question and choices; span QA:
the question, and with `context` the context too, each gold answer kept verbatim and re-located
in the new context (an answer not found where its offset says, nor once elsewhere, excludes the
example, counted); tagging: each token in place, and word-order families move tags with their
tokens (dropout drops a token with its tag). Retrieval tasks are evaluated clean only.
"""

from __future__ import annotations

import hashlib
import random
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, replace

from xscale.tasks import format_info
from xscale.tasks.base import Example, Task

RATE = 0.2


def _rng(seed: int, name: str, guid: str) -> random.Random:
    h = hashlib.sha256(f"{seed}:{name}:{guid}".encode()).hexdigest()
    return random.Random(int(h[:16], 16))


# --------------------------------------------------------------------------- character noise


def _typo_word(w: str, rng: random.Random, rate: float = RATE) -> str:
    if len(w) < 4 or rng.random() >= rate:
        return w
    i = rng.randrange(1, len(w) - 2)
    op = rng.randrange(3)
    if op == 0:
        return w[:i] + w[i + 1] + w[i] + w[i + 2 :]
    if op == 1:
        return w[:i] + w[i + 1 :]
    return w[:i] + w[i] + w[i:]


def typo(text: str, rng: random.Random, rate: float = RATE) -> str:
    return " ".join(_typo_word(w, rng, rate) for w in text.split(" "))


_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")


def _neighbours() -> dict[str, str]:
    pos = {c: (r, i) for r, row in enumerate(_ROWS) for i, c in enumerate(row)}
    out = {}
    for c, (r, i) in pos.items():
        near = [
            d for d, (r2, i2) in pos.items() if d != c and abs(r2 - r) <= 1 and abs(i2 - i) <= 1
        ]
        out[c] = "".join(sorted(near))
    return out


NEIGHBOURS = _neighbours()


def _key(c: str, rng: random.Random) -> str | None:
    near = NEIGHBOURS.get(c.lower())
    if not near:
        return None
    k = near[rng.randrange(len(near))]
    return k.upper() if c.isupper() else k


def _char_word(w: str, rng: random.Random, rate: float, ops: tuple[str, ...]) -> str:
    if len(w) < 3 or rng.random() >= rate:
        return w
    op = ops[rng.randrange(len(ops))]
    if op == "swap":
        i = rng.randrange(len(w) - 1)
        return w[:i] + w[i + 1] + w[i] + w[i + 2 :]
    i = rng.randrange(len(w))
    if op == "delete":
        return w[:i] + w[i + 1 :]
    k = _key(w[i], rng)
    if k is None:
        return w
    return w[:i] + k + w[i:] if op == "insert" else w[:i] + k + w[i + 1 :]


def char(text: str, rng: random.Random, rate: float = RATE, ops=("swap",)) -> str:
    return " ".join(_char_word(w, rng, rate, tuple(ops)) for w in text.split(" "))


def nopunct(text: str, rng: random.Random) -> str:
    kept = "".join(c for c in text if not unicodedata.category(c).startswith("P"))
    return " ".join(kept.split())


def lower(text: str, rng: random.Random) -> str:
    return text.lower()


# --------------------------------------------------------------------------- word order


def _swap_items(items: list, rng: random.Random, rate: float = RATE) -> list:
    items = list(items)
    i = 0
    while i < len(items) - 1:
        if rng.random() < rate:
            items[i], items[i + 1] = items[i + 1], items[i]
            i += 2
        else:
            i += 1
    return items


def swap(text: str, rng: random.Random, rate: float = RATE) -> str:
    return " ".join(_swap_items(text.split(" "), rng, rate))


def shuffle_items(items: list, rng: random.Random, window: int = 3, rate: float = 0.5) -> list:
    items = list(items)
    for i in range(0, len(items), window):
        if rng.random() < rate:
            part = items[i : i + window]
            rng.shuffle(part)
            items[i : i + window] = part
    return items


def dropout_items(items: list, rng: random.Random, rate: float = 0.1) -> list:
    kept = [x for x in items if rng.random() >= rate]
    return kept or list(items[:1])


PERTURBATIONS = {"typo": typo, "swap": swap, "nopunct": nopunct, "lower": lower}
TextOp = Callable[[str, random.Random], str]
ItemsOp = Callable[[list, random.Random], list]


def text_op(pset) -> TextOp | None:
    """The set's text -> text function, for the character families."""
    f = pset.family
    if f == "typo":
        return lambda t, rng: typo(t, rng, pset.rate)
    if f == "char":
        return lambda t, rng: char(t, rng, pset.rate, pset.ops)
    if f in ("nopunct", "lower"):
        return PERTURBATIONS[f]
    return None


def items_op(pset) -> ItemsOp | None:
    """The set's list -> list function, for the word-order families (words or tagged tokens)."""
    f = pset.family
    if f == "swap":
        return lambda items, rng: _swap_items(items, rng, pset.rate)
    if f == "shuffle":
        return lambda items, rng: shuffle_items(items, rng, pset.window, pset.rate)
    if f == "dropout":
        return lambda items, rng: dropout_items(items, rng, pset.rate)
    return None


# --------------------------------------------------------------------------- examples


def applies_to(task: Task) -> bool:
    info = format_info(task)
    return bool(info.text_fields) or info.token_level


@dataclass
class Perturbed:
    """A set applied to examples: the perturbed ones, the indices (into the input) they come
    from, and how many were excluded because their labels could not be kept."""

    examples: list[Example]
    kept: list[int]
    excluded: int = 0


def locate_answers(ex: Example) -> list[tuple[int, int] | None] | None:
    """Each gold answer's (start, end) in the context (None for an empty answer): at its offset,
    or else at its one occurrence; None when an answer is at neither (the example cannot be
    perturbed safely)."""
    ctx, spans = ex.fields["context"], []
    for a in ex.fields.get("answers", []):
        text, start = a["text"], a.get("answer_start", -1)
        if not text:
            spans.append(None)
            continue
        if start < 0 or ctx[start : start + len(text)] != text:
            if ctx.count(text) != 1:
                return None
            start = ctx.index(text)
        spans.append((start, start + len(text)))
    return spans


def relocated(ex: Example) -> Example | None:
    """A span QA example with every answer's start where `locate_answers` finds it (None when
    one cannot be found)."""
    spans = locate_answers(ex)
    if spans is None:
        return None
    answers = [
        a if span is None else {**a, "answer_start": span[0]}
        for a, span in zip(ex.fields["answers"], spans)
    ]
    return replace(ex, fields={**ex.fields, "answers": answers})


def protect(ctx: str, spans: list[tuple[int, int]], fn: Callable[[str], str]):
    """`fn` applied to the text between the answer spans, each span widened to the words it
    touches and kept verbatim; returns the new context and `where(old start) -> new start`."""
    blocks: list[list[int]] = []
    for s, e in sorted(spans):
        while s > 0 and not ctx[s - 1].isspace():
            s -= 1
        while e < len(ctx) and not ctx[e].isspace():
            e += 1
        if blocks and s <= blocks[-1][1]:
            blocks[-1][1] = max(blocks[-1][1], e)
        else:
            blocks.append([s, e])
    pieces: list[str] = []
    starts: dict[int, int] = {}
    pos = 0
    for bs, be in [*blocks, [len(ctx), len(ctx)]]:
        gap = ctx[pos:bs]
        core = gap.strip()
        if core:
            lead = gap[: len(gap) - len(gap.lstrip())]
            gap = lead + fn(core) + gap[len(gap.rstrip()) :]
        pieces.append(gap)
        starts[bs] = sum(len(p) for p in pieces)
        pieces.append(ctx[bs:be])
        pos = be

    def where(old: int) -> int:
        bs = max(b for b, _ in blocks if b <= old)
        return starts[bs] + (old - bs)

    return "".join(pieces), where


def perturb_example(task: Task, ex: Example, pset, rng: random.Random) -> Example | None:
    """One example under a noise set (None: excluded, its answers cannot be re-located)."""
    info = format_info(task)
    op, iop = text_op(pset), items_op(pset)
    fields = dict(ex.fields)

    def text(value: str) -> str:
        return op(value, rng) if op is not None else " ".join(iop(value.split(" "), rng))

    if info.token_level:
        tokens, tags = list(fields["tokens"]), list(fields["tags"])
        if iop is not None:
            pairs = iop(list(zip(tokens, tags)), rng)
            tokens, tags = [t for t, _ in pairs], [g for _, g in pairs]
        else:  # token by token; a token emptied by the perturbation is kept as it was
            tokens = [op(t, rng) or t for t in tokens]
        fields["tokens"], fields["tags"] = tokens, tags
        return replace(ex, fields=fields)
    for key in info.text_fields:
        value = fields.get(key)
        if isinstance(value, str):
            fields[key] = text(value)
        elif isinstance(value, list):
            fields[key] = [text(v) for v in value]
    if pset.context and task.format == "span_qa":
        spans = locate_answers(ex)
        if spans is None:
            return None
        fields["context"], where = protect(
            ex.fields["context"], [s for s in spans if s is not None], text
        )
        fields["answers"] = [
            a if span is None else {**a, "answer_start": where(span[0])}
            for a, span in zip(ex.fields["answers"], spans)
        ]
    return replace(ex, fields=fields)


def apply_noise(task: Task, examples: list[Example], pset, seed: int) -> Perturbed:
    """A noise set (character or word-order family) applied to `examples`."""
    if text_op(pset) is None and items_op(pset) is None:
        raise ValueError(f"{pset.family} is not a noise family")
    out, kept = [], []
    for i, ex in enumerate(examples):
        new = perturb_example(task, ex, pset, _rng(seed, pset.name, ex.guid))
        if new is not None:
            out.append(new)
            kept.append(i)
    return Perturbed(out, kept, len(examples) - len(out))


def perturb_examples(task: Task, examples: list[Example], name: str, seed: int) -> list[Example]:
    """The examples with the plain-named set `name` applied (labels untouched)."""
    return apply_noise(task, examples, PlainSet(name, name), seed).examples


@dataclass(frozen=True)
class PlainSet:
    """A plain name's set, as the sweep layer's models (sweep/perturbations.py) describe it."""

    name: str
    family: str
    rate: float = RATE
    context: bool = False
