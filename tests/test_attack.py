"""The greedy loss-guided attack against a model whose loss is known in closed form, and the
phrase alignment Bumblebee swaps phrases by."""

from __future__ import annotations

import random

from xscale.tasks.attack import greedy_attack, links, phrase_candidates, phrases
from xscale.tasks.base import Example
from xscale.tasks.codemix import random_codemix, word_candidates
from xscale.tasks.lexicon import Lexicon
from xscale.tasks.registry import get_task

SST2 = get_task("sst2")
WEIGHTS = {"Hunde": 0.5, "Katzen": 3.0, "kauft": 1.0, "malt": 0.2, "Laden": 2.0}
LEX = Lexicon(
    {("en", "de"): {"dogs": ["Hunde"], "cats": ["Katzen"], "buys": ["kauft"], "paints": ["malt"],
                    "shop": ["Laden"]}}
)  # fmt: skip


class Model:
    """Loss = 1 + the weights of the German words in the text; wrong once the loss passes
    `threshold`. Counts its calls and queries."""

    def __init__(self, threshold: float = 100.0):
        self.threshold, self.calls, self.queries = threshold, 0, 0

    def loss(self, ex: Example) -> float:
        return 1.0 + sum(WEIGHTS.get(w.strip(".,"), 0.0) for w in ex.fields["text"].split())

    def __call__(self, examples):
        self.calls += 1
        self.queries += len(examples)
        return [(self.loss(e), self.loss(e) <= self.threshold) for e in examples]


def ex(i: int, text: str = "Paul buys dogs and cats in the shop, Sofia paints.") -> Example:
    return Example(f"e{i}", "en", {"text": text, "label": "1"})


def candidates(examples):
    return [[e for site in word_candidates(SST2, x, LEX, ["de"]) for e in site] for x in examples]


def attack(examples, model, budget=3, max_queries=100, seed=0):
    rngs = [random.Random(seed * 1000 + i) for i in range(len(examples))]
    return greedy_attack(examples, candidates(examples), model, budget, max_queries, rngs)


def test_each_step_keeps_the_most_damaging_substitution():
    res = attack([ex(0)], Model(), budget=3)
    assert [e.text for e in res.edits[0]] == ["Katzen", "Laden", "kauft"]  # weights 3, 2, 1
    assert (
        res.examples[0].fields["text"] == "Paul kauft dogs and Katzen in the Laden, Sofia paints."
    )
    assert res.loss_after[0] == 7.0 and res.loss_before[0] == 1.0
    assert res.queries[0] == 1 + 5 + 4 + 3  # the clean query, then every free site each step


def test_budget_queries_and_success_stop_the_attack():
    res = attack([ex(0)], Model(), budget=1)
    assert len(res.edits[0]) == 1
    capped = attack([ex(0)], Model(), budget=3, max_queries=7)
    assert capped.queries[0] <= 7 and len(capped.edits[0]) >= 1
    fooled = attack([ex(0)], Model(threshold=4.5), budget=5)  # wrong after Katzen + Laden
    assert fooled.fooled == [True] and len(fooled.edits[0]) == 2
    right_already = attack([ex(0)], Model(threshold=0.5), budget=3)
    assert right_already.attacked == [False] and right_already.edits == [[]]
    assert right_already.queries == [1] and right_already.examples[0] == ex(0)


def test_queries_are_batched_across_examples_and_deterministic():
    model = Model()
    examples = [ex(i) for i in range(20)]
    res = attack(examples, model, budget=3, max_queries=8)
    assert model.calls == 4  # the clean batch, then one batch per step for all 20 examples
    assert model.queries == sum(res.queries) and max(res.queries) <= 8
    again = attack(examples, Model(), budget=3, max_queries=8)
    assert [e.fields for e in again.examples] == [e.fields for e in res.examples]


def test_loss_guided_beats_random_codemix_of_the_same_budget():
    model = Model()
    examples = [ex(i) for i in range(50)]
    guided = attack(examples, model, budget=2)
    sites = [word_candidates(SST2, x, LEX, ["de"]) for x in examples]
    rand = [random_codemix(s, random.Random(i), budget=2) for i, s in enumerate(sites)]
    from xscale.tasks.codemix import apply_edits

    random_loss = sum(model.loss(apply_edits(x, r)) for x, r in zip(examples, rand))
    assert sum(guided.loss_after) == 50 * 6.0 > random_loss


def test_phrase_pairs_follow_the_consistency_rule():
    lex = Lexicon(
        {("en", "fr"): {"draws": ["dessine"], "two": ["deux"], "blue": ["bleues"],
                        "pears": ["poires"]}}
    )  # fmt: skip
    src, tgt = "Lena draws two blue pears.", "Lena dessine deux poires bleues."
    assert (0, 0) in links(src, "en", tgt, "fr", lex)  # Lena = Lena (identity)
    found = {src[s:e]: rep for s, e, rep in phrases(src, "en", tgt, "fr", lex, 3)}
    assert found["blue pears"] == "poires bleues"
    assert found["two blue pears"] == "deux poires bleues"
    assert found["pears"] == "poires" and found["draws two"] == "dessine deux"
    assert "two blue" not in found  # its target span holds poires, linked outside it
    assert "Lena" not in found  # the same text: nothing to swap
    assert all(len(k.split()) <= 3 for k in found)


def test_phrases_into_a_language_without_spaces():
    lex = Lexicon({("en", "zh"): {"pears": ["梨"], "blue": ["蓝色的"], "two": ["两个"]}})
    src, tgt = "two blue pears", "莉娜描绘了两个蓝色的梨。"
    found = {src[s:e]: rep for s, e, rep in phrases(src, "en", tgt, "zh", lex, 3)}
    assert found["blue pears"] == "蓝色的梨" and found["two blue pears"] == "两个蓝色的梨"


def test_bumblebee_candidates_come_from_the_examples_translation():
    xnli = get_task("xnli")
    lex = Lexicon({("en", "de"): {"pears": ["Birnen"], "blue": ["blaue"], "shop": ["Laden"]}})
    en = Example("x-0", "en", {"text_a": "Two blue pears in the shop.", "text_b": "Blue pears.",
                               "label": "entailment"})  # fmt: skip
    de = Example("x-0", "de", {"text_a": "Zwei blaue Birnen im Laden.", "text_b": "Blaue Birnen.",
                               "label": "entailment"})  # fmt: skip
    cands = phrase_candidates(xnli, en, {"de": de, "en": en}, lex, 2)
    got = {(c.field, en.fields[c.field][c.start : c.end], c.text, c.lang) for c in cands}
    assert ("text_a", "blue pears", "blaue Birnen", "de") in got
    assert ("text_b", "Blue pears", "Blaue Birnen", "de") in got
    assert ("text_a", "shop", "Laden", "de") in got
    assert all(c.lang == "de" for c in cands)  # never the example's own language


def test_splice_spaces_words_of_spaced_scripts_apart():
    from xscale.tasks.codemix import Edit, splice

    zh = "莉娜星期一在商店里描绘了两个"
    two = [Edit("x", None, 6, 9, "magasin"), Edit("x", None, 9, 12, "dessine")]
    assert splice(zh, two)[0] == "莉娜星期一在 magasin dessine 两个"
    assert splice(zh, [Edit("x", None, 6, 9, "店")])[0] == "莉娜星期一在店描绘了两个"
    text, shifts = splice("two blue pears", [Edit("x", None, 4, 8, "蓝色的")])
    assert text == "two 蓝色的 pears" and shifts == [(8, -1)]
