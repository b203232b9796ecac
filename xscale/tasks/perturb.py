"""Perturbation sets: seeded, label-preserving noise applied to test examples at evaluation.

Each target stage evaluates on the clean test set and on every perturbation the sweep names, in
every language, logging `<task>.<lang>.<perturbation>.<metric>` beside the clean score, so
robustness can be compared by model size (xscale analyze's robustness table).

    typo     in 20% of words of 4+ characters: swap two inner characters, drop one or double one
    swap     swap 20% of adjacent word pairs (word order noise)
    nopunct  remove every punctuation character (Unicode category P*)
    lower    lower-case everything

These are noise probes, not optimised attacks: the same example and seed always give the same
perturbed text, so every size is evaluated on identical inputs. What each format perturbs:
classification: its text(s); multiple choice: context, question and choices; span QA: the
question only (the context's answer offsets must stay valid); tagging: each token in place
(`swap` swaps tokens together with their tags). Retrieval tasks are evaluated clean only.
"""

from __future__ import annotations

import hashlib
import random
import unicodedata
from dataclasses import replace

from xscale.errors import XScaleError
from xscale.tasks import format_info
from xscale.tasks.base import Example, Task

RATE = 0.2


def _rng(seed: int, name: str, guid: str) -> random.Random:
    h = hashlib.sha256(f"{seed}:{name}:{guid}".encode()).hexdigest()
    return random.Random(int(h[:16], 16))


def _typo_word(w: str, rng: random.Random) -> str:
    if len(w) < 4 or rng.random() >= RATE:
        return w
    i = rng.randrange(1, len(w) - 2)
    op = rng.randrange(3)
    if op == 0:
        return w[:i] + w[i + 1] + w[i] + w[i + 2 :]
    if op == 1:
        return w[:i] + w[i + 1 :]
    return w[:i] + w[i] + w[i:]


def typo(text: str, rng: random.Random) -> str:
    return " ".join(_typo_word(w, rng) for w in text.split(" "))


def _swap_items(items: list, rng: random.Random) -> list:
    items = list(items)
    i = 0
    while i < len(items) - 1:
        if rng.random() < RATE:
            items[i], items[i + 1] = items[i + 1], items[i]
            i += 2
        else:
            i += 1
    return items


def swap(text: str, rng: random.Random) -> str:
    return " ".join(_swap_items(text.split(" "), rng))


def nopunct(text: str, rng: random.Random) -> str:
    kept = "".join(c for c in text if not unicodedata.category(c).startswith("P"))
    return " ".join(kept.split())


def lower(text: str, rng: random.Random) -> str:
    return text.lower()


PERTURBATIONS = {"typo": typo, "swap": swap, "nopunct": nopunct, "lower": lower}


def check_names(names, where: str = "perturbations") -> None:
    for i, name in enumerate(names):
        if name not in PERTURBATIONS:
            raise XScaleError(
                f"{where}.{i}: unknown perturbation {name!r} (known: {', '.join(PERTURBATIONS)})"
            )


def applies_to(task: Task) -> bool:
    info = format_info(task)
    return bool(info.text_fields) or info.token_level


def perturb_examples(task: Task, examples: list[Example], name: str, seed: int) -> list[Example]:
    """The examples with perturbation `name` applied (labels untouched)."""
    fn = PERTURBATIONS[name]
    out = []
    for ex in examples:
        rng = _rng(seed, name, ex.guid)
        fields = dict(ex.fields)
        if format_info(task).token_level:
            tokens, tags = list(fields["tokens"]), list(fields["tags"])
            if name == "swap":
                pairs = _swap_items(list(zip(tokens, tags)), rng)
                tokens, tags = [t for t, _ in pairs], [g for _, g in pairs]
            else:  # token by token; a token emptied by the perturbation is kept as it was
                tokens = [fn(t, rng) or t for t in tokens]
            fields["tokens"], fields["tags"] = tokens, tags
        else:
            for key in format_info(task).text_fields:
                value = fields.get(key)
                if isinstance(value, str):
                    fields[key] = fn(value, rng)
                elif isinstance(value, list):
                    fields[key] = [fn(v, rng) for v in value]
        out.append(replace(ex, fields=fields))
    return out
