"""Adversarial code-mixing attacks on a trained model (Tan & Joty 2021, "Code-Mixing on Sesame
Street: Dawn of the Adversarial Polyglots"), without DeepSpeed or torch: the model is a `Scorer`.

    Scorer(examples) -> [(loss of the gold label, predicted correctly)], one per example

The stage gives a scorer over its engine (stage/robustness.py), `xscale perturb` one over an
exported model folder. Both attacks are one greedy search (`greedy_attack`) over candidate edits
(codemix.Edit), run for all attacked examples in lock step so that each step's candidates of
every example go to the scorer together, in large batches:

    1. query the clean examples; only those the model gets right are attacked (an example it
       already gets wrong counts as no success and costs 1 query)
    2. each step, every example still attacked tries its candidates that overlap no kept edit,
       at most (queries left) / (steps left) of them (drawn with the example's seeded random
       stream when there are more); the candidate with the highest loss is kept if it raises
       the loss, else the attack of that example stops
    3. an example stops when the model's prediction is wrong (a success), after `budget` edits,
       or when its `max_queries` are spent

    polygloss  candidates: every word's translations into the embedded languages (the same
               search space as random code-mixing, codemix.word_candidates)
    bumblebee  candidates: phrases of up to `max_phrase` words of the example, each replaced by
               the phrase aligned with it in one of the example's own translations (`phrases`)

Phrase alignment (`phrases`): the words of the example and of its translation are linked where
the lexicon translates one into the other (or they are the same word: names, numbers); a source
span of 1..max_phrase words and the target span covering its links form a pair when no link
leaves the pair (the consistency rule of phrase-based MT, Koehn et al. 2003). In a language
written without spaces a word is one character, and a phrase may be `MAX_NGRAM` times longer.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from xscale.tasks.base import Example, Task
from xscale.tasks.codemix import Edit, apply_edits, fields_of
from xscale.tasks.lexicon import MAX_NGRAM, UNSPACED, Lexicon, letter_runs, spaced_words

Scorer = Callable[[Sequence[Example]], list[tuple[float, bool]]]


@dataclass
class AttackResult:
    """Per input example: the attacked example, its queries and kept edits, whether the attack
    ran (the model got it right) and whether it ended with a wrong prediction (by the scorer)."""

    examples: list[Example]
    queries: list[int] = field(default_factory=list)
    edits: list[list[Edit]] = field(default_factory=list)
    attacked: list[bool] = field(default_factory=list)
    fooled: list[bool] = field(default_factory=list)
    loss_before: list[float] = field(default_factory=list)
    loss_after: list[float] = field(default_factory=list)


def greedy_attack(
    examples: list[Example],
    candidates: list[list[Edit]],
    scorer: Scorer,
    budget: int,
    max_queries: int,
    rngs: list[random.Random],
) -> AttackResult:
    """The greedy loss-guided search above, for every example at once."""
    n = len(examples)
    first = scorer(examples) if examples else []
    loss = [s[0] for s in first]
    res = AttackResult(
        list(examples),
        [1] * n,
        [[] for _ in range(n)],
        [s[1] for s in first],
        [False] * n,
        list(loss),
        list(loss),
    )
    active = [i for i in range(n) if res.attacked[i] and candidates[i]]
    for step in range(budget):
        batch: list[Example] = []
        owners: list[tuple[int, Edit]] = []
        for i in active:
            kept = res.edits[i]
            free = [c for c in candidates[i] if not any(c.overlaps(k) for k in kept)]
            allowance = (max_queries - res.queries[i]) // (budget - step)
            if allowance < len(free):
                free = sorted(rngs[i].sample(free, max(0, allowance)), key=candidates[i].index)
            res.queries[i] += len(free)
            for c in free:
                batch.append(apply_edits(examples[i], [*kept, c]))
                owners.append((i, c))
        scores = scorer(batch) if batch else []
        best: dict[int, tuple[float, bool, Edit]] = {}
        for (i, c), (value, correct) in zip(owners, scores):
            if i not in best or value > best[i][0]:
                best[i] = (value, correct, c)
        still = []
        for i in active:
            if i not in best or best[i][0] <= loss[i]:
                continue  # no candidate left, or none raises the loss: this example stops
            value, correct, c = best[i]
            res.edits[i].append(c)
            loss[i] = value
            if not correct:
                res.fooled[i] = True
            else:
                still.append(i)
        active = still
    for i in range(n):
        res.examples[i] = apply_edits(examples[i], res.edits[i])
    res.loss_after = loss
    return res


# --------------------------------------------------------------------------- phrase alignment


def _units(text: str, lang: str) -> list[tuple[int, int]]:
    """(start, end) of the words of `text`; in an unspaced language, of its letters."""
    if lang not in UNSPACED:
        return spaced_words(text)
    return [(i, i + 1) for s, e in letter_runs(text) for i in range(s, e)]


def links(src: str, s_lang: str, tgt: str, t_lang: str, lexicon: Lexicon) -> set[tuple[int, int]]:
    """(source unit, target unit) pairs: each source word linked to every occurrence of itself
    (names, numbers) or else of its best-ranked translation that the target holds."""
    su, tu = _units(src, s_lang), _units(tgt, t_lang)
    t_index = {start: j for j, (start, _) in enumerate(tu)}
    t_words: dict[str, list[int]] = {}
    for j, (s, e) in enumerate(tu):
        t_words.setdefault(tgt[s:e].lower(), []).append(j)
    lowered = tgt.lower()

    def find(word: str) -> list[list[int]]:
        """Target units spelling `word`: a word, or a run of letters in an unspaced language."""
        if t_lang not in UNSPACED:
            return [[j] for j in t_words.get(word.lower(), [])]
        out, at = [], lowered.find(word.lower())
        while at >= 0:
            if all(at + k in t_index for k in range(len(word))):
                out.append([t_index[at + k] for k in range(len(word))])
            at = lowered.find(word.lower(), at + 1)
        return out

    found: set[tuple[int, int]] = set()
    keys = lexicon.keys(s_lang, t_lang)
    spans = (
        lexicon.words(src, s_lang, keys)
        if s_lang in UNSPACED
        else [(s, e, src[s:e].lower()) for s, e in su]
    )
    s_index = {start: i for i, (start, _) in enumerate(su)}
    for s, e, word in spans:
        rows = [s_index[k] for k in range(s, e) if k in s_index]
        for t in [src[s:e], *lexicon.translations(word, s_lang, t_lang)]:
            spots = find(t)  # the best translation the target has is the link
            for cols in spots:
                found.update((i, j) for i in rows for j in cols)
            if spots:
                break
    return found


def phrases(
    src: str, s_lang: str, tgt: str, t_lang: str, lexicon: Lexicon, max_phrase: int
) -> list[tuple[int, int, str]]:
    """(start, end, replacement) for every consistent phrase pair: characters [start, end) of
    `src` and the aligned phrase of `tgt`."""
    su, tu = _units(src, s_lang), _units(tgt, t_lang)
    pairs = links(src, s_lang, tgt, t_lang, lexicon)
    by_src: dict[int, list[int]] = {}
    by_tgt: dict[int, list[int]] = {}
    for i, j in pairs:
        by_src.setdefault(i, []).append(j)
        by_tgt.setdefault(j, []).append(i)
    s_max = max_phrase * (MAX_NGRAM if s_lang in UNSPACED else 1)
    t_max = (max_phrase + 1) * (MAX_NGRAM if t_lang in UNSPACED else 1)
    out = []
    for i1 in range(len(su)):
        for i2 in range(i1, min(len(su), i1 + s_max)):
            cols = [j for i in range(i1, i2 + 1) for j in by_src.get(i, [])]
            if not cols or i1 not in by_src or i2 not in by_src:
                continue  # a phrase starts and ends on a linked word
            j1, j2 = min(cols), max(cols)
            if j2 - j1 >= t_max:
                continue
            if any(not i1 <= i <= i2 for j in range(j1, j2 + 1) for i in by_tgt.get(j, [])):
                continue  # a link leaves the pair
            start, end = su[i1][0], su[i2][1]
            rep = tgt[tu[j1][0] : tu[j2][1]]
            if rep.lower() != src[start:end].lower():
                out.append((start, end, rep))
    return out


def phrase_candidates(
    task: Task,
    ex: Example,
    translations: dict[str, Example],
    lexicon: Lexicon,
    max_phrase: int,
) -> list[Edit]:
    """Bumblebee's candidates: aligned phrases from each translation of `ex`, field by field."""
    out = []
    own = fields_of(task, ex)
    for lang, other in sorted(translations.items()):
        if lang == ex.lang:
            continue
        theirs = {(k, i): t for k, i, t in fields_of(task, other)}
        for key, index, text in own:
            tgt = theirs.get((key, index))
            if not tgt:
                continue
            for start, end, rep in phrases(text, ex.lang, tgt, lang, lexicon, max_phrase):
                out.append(Edit(key, index, start, end, rep, lang))
    return out
