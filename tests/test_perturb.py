"""Perturbation sets: deterministic, label-preserving, applied to the right fields."""

from __future__ import annotations

import pytest

from xscale.errors import XScaleError
from xscale.sweep.io import parse
from xscale.sweep.trial import TrialConfig
from xscale.tasks.base import Example
from xscale.tasks.perturb import PERTURBATIONS, perturb_examples
from xscale.tasks.registry import get_task
from xscale.tracking.names import summarize

PAIR = Example(
    "xnli-test-en-1",
    "en",
    {
        "text_a": "The young teacher is reading a wonderful book, quietly, in the garden.",
        "text_b": "Somebody reads something.",
        "label": "entailment",
    },
)


@pytest.mark.parametrize("name", sorted(PERTURBATIONS))
def test_deterministic_and_label_preserving(name):
    task = get_task("xnli")
    a = perturb_examples(task, [PAIR], name, seed=0)[0]
    b = perturb_examples(task, [PAIR], name, seed=0)[0]
    assert a.fields == b.fields
    assert a.fields["label"] == "entailment" and a.guid == PAIR.guid
    assert PAIR.fields["text_a"].startswith("The young")  # the input is not modified


def test_each_perturbation_changes_text_as_documented():
    task = get_task("xnli")
    words = " ".join(f"word{i}abc" for i in range(60))
    ex = Example("g", "en", {"text_a": words + ".", "text_b": "X, y!", "label": "neutral"})
    out = {n: perturb_examples(task, [ex], n, seed=1)[0].fields for n in PERTURBATIONS}
    assert out["nopunct"]["text_b"] == "X y"
    assert out["lower"]["text_b"] == "x, y!"
    typo_words = out["typo"]["text_a"].split(" ")
    assert len(typo_words) == 60 and typo_words != words.split(" ")
    assert sorted(out["swap"]["text_a"].split(" ")) == sorted((words + ".").split(" "))
    assert out["swap"]["text_a"] != words + "."


def test_span_qa_perturbs_the_question_only():
    task = get_task("xquad")
    ctx = "Paris is the capital of France."
    ex = Example(
        "q1",
        "en",
        {
            "question": "What is the capital of France?",
            "context": ctx,
            "answers": [{"text": "Paris", "answer_start": 0}],
            "id": "q1",
        },
    )
    out = perturb_examples(task, [ex], "lower", 0)[0].fields
    assert out["context"] == ctx and out["question"] == "what is the capital of france?"
    assert out["answers"] == ex.fields["answers"]


def test_tagging_swap_moves_tags_with_tokens():
    task = get_task("udpos")
    tokens = [f"tok{i}" for i in range(40)]
    tags = [f"T{i}" for i in range(40)]
    ex = Example("s", "en", {"tokens": tokens, "tags": tags})
    out = perturb_examples(task, [ex], "swap", 0)[0].fields
    assert out["tokens"] != tokens
    assert all(t[3:] == g[1:] for t, g in zip(out["tokens"], out["tags"]))


def test_perturbed_metric_names():
    m = summarize("xnli", "accuracy", {"en": {"accuracy": 60.0}, "de": {"accuracy": 50.0}}, "typo")
    assert m["xnli.de.typo.accuracy"] == 50.0
    assert m["xnli.typo.avg"] == 55.0 and m["xnli.typo.gap_en"] == 10.0


def test_unknown_perturbation_is_rejected():
    with pytest.raises(XScaleError, match="perturbations.*unknown perturbation 'typos'"):
        parse(
            TrialConfig,
            {"model": "tiny-xs", "target_task": "xnli", "perturbations": ["typos"]},
            "t.yaml",
        )


# --------------------------------------------------------------------------- declared sets

from collections import Counter  # noqa: E402

from xscale.stage.robustness import SetEval  # noqa: E402
from xscale.sweep.perturbations import parse_set  # noqa: E402
from xscale.tasks.lexicon import Lexicon  # noqa: E402
from xscale.tasks.perturb import NEIGHBOURS, apply_noise  # noqa: E402

WORDS = " ".join(f"w{chr(97 + i % 26)}{chr(98 + i % 24)}xyz" for i in range(200))  # 6 letters


def declared(**kw):
    return parse_set(kw, "p")


def noisy(text: str, seed: int = 0, **kw) -> str:
    ex = Example("g", "en", {"text": text, "label": "0"})
    (out,) = apply_noise(get_task("sst2"), [ex], declared(**kw), seed).examples
    return out.fields["text"]


NOISE = [
    {"family": "typo", "rate": 0.5},
    {"family": "char", "rate": 0.5},
    {"family": "swap", "rate": 0.5},
    {"family": "shuffle", "window": 4},
    {"family": "dropout", "rate": 0.3},
]


@pytest.mark.parametrize("kw", NOISE, ids=[k["family"] for k in NOISE])
def test_noise_sets_are_deterministic_per_seed(kw):
    assert noisy(WORDS, 0, **kw) == noisy(WORDS, 0, **kw)
    assert noisy(WORDS, 0, **kw) != noisy(WORDS, 1, **kw)
    assert noisy(WORDS, 0, **kw) != WORDS


def test_declared_typo_at_the_default_rate_is_the_plain_name():
    task = get_task("xnli")
    plain = perturb_examples(task, [PAIR], "typo", 3)[0]
    (same,) = apply_noise(task, [PAIR], declared(name="typo", family="typo", rate=0.2), 3).examples
    assert same.fields == plain.fields


@pytest.mark.parametrize("op", ["swap", "delete", "insert", "key"])
def test_char_noise_edits_every_word_once_at_rate_1(op):
    out = noisy(WORDS, family="char", rate=1.0, ops=[op]).split(" ")
    src = WORDS.split(" ")
    assert len(out) == len(src)
    for a, b in zip(src, out):
        if op == "swap":  # two adjacent characters exchanged: same letters, 2 positions differ
            assert sorted(a) == sorted(b) and sum(x != y for x, y in zip(a, b)) in (0, 2)
        elif op == "delete":
            assert len(b) == len(a) - 1 and any(a[:i] + a[i + 1 :] == b for i in range(len(a)))
        elif op == "insert":  # a neighbouring key of the character it is put before
            assert len(b) == len(a) + 1
            assert any(b[:i] + b[i + 1 :] == a and b[i] in NEIGHBOURS[a[i]] for i in range(len(a)))
        else:
            (i,) = [i for i in range(len(a)) if a[i] != b[i]]
            assert b[i] in NEIGHBOURS[a[i]]


def test_char_rate_is_the_share_of_words_touched():
    changed = [a != b for a, b in zip(WORDS.split(), noisy(WORDS, family="char", ops=["delete"],
                                                            rate=0.25).split())]  # fmt: skip
    assert 0.15 <= sum(changed) / len(changed) <= 0.35


def test_dropout_rate_and_at_least_one_word():
    out = noisy(WORDS, family="dropout", rate=0.3).split(" ")
    assert 0.6 * 200 <= len(out) <= 0.8 * 200
    assert Counter(out) <= Counter(WORDS.split(" "))  # only drops, order kept
    assert noisy("alone", family="dropout", rate=0.99) == "alone"


def test_shuffle_permutes_within_windows_only():
    src = WORDS.split(" ")
    out = noisy(WORDS, family="shuffle", window=4, rate=1.0).split(" ")
    for i in range(0, len(src), 4):
        assert sorted(out[i : i + 4]) == sorted(src[i : i + 4])
    assert out != src


@pytest.mark.parametrize(
    "kw, path, message",
    [
        ({"family": "typo", "rate": 1.5}, "p.rate", "less than or equal to 1"),
        ({"family": "typo", "rate": 0}, "p.rate", "greater than 0"),
        ({"family": "dropout", "rate": 1.0}, "p.rate", "less than 1"),
        ({"family": "shuffle", "window": 1}, "p.window", "greater than or equal to 2"),
        ({"family": "char", "ops": ["smudge"]}, "p.ops.0", "'swap', 'delete', 'insert' or 'key'"),
        ({"family": "codemix", "languages": ["de"], "rate": 0.5, "budget": 2}, "p", "not both"),
        ({"family": "codemix"}, "p.languages", "Field required"),
        ({"family": "polygloss", "languages": ["de"], "budget": 0}, "p.budget", "greater than"),
        ({"family": "polygloss", "languages": ["de"], "max_queries": 0}, "p.max_queries", ">"),
        ({"family": "typo", "strength": 2}, "p.strength", "unknown key"),
        ({"family": "typos"}, "p.family", "unknown family 'typos'"),
        ({"family": "typo", "name": "avg"}, "p.name", "reserved"),
        ({"family": "typo", "name": "a.b"}, "p.name", "should match pattern"),
    ],
)
def test_out_of_range_strength_is_refused(kw, path, message):
    from xscale.sweep.spaces import FieldError

    with pytest.raises(FieldError) as e:
        declared(**kw)
    assert e.value.path == path
    assert message in e.value.message or (message == ">" and "greater" in e.value.message)


QA = Example(
    "q1",
    "en",
    {
        "question": "Who buys five dogs in the shop?",
        "context": "Yesterday Paul buys five dogs in the shop. Sofia paints four cats.",
        "answers": [
            {"text": "Paul", "answer_start": 10},
            {"text": "four cats", "answer_start": 56},
        ],
        "id": "q1",
    },
)


@pytest.mark.parametrize("kw", NOISE, ids=[k["family"] for k in NOISE])
def test_span_qa_context_answers_are_relocated(kw):
    task = get_task("xquad")
    strong = {**kw, "rate": 0.9 if kw["family"] == "dropout" else 1.0}
    p = apply_noise(task, [QA], declared(context=True, **strong), 0)
    (out,) = p.examples
    assert p.excluded == 0 and out.fields["context"] != QA.fields["context"]
    for a in out.fields["answers"]:
        assert out.fields["context"][a["answer_start"] :].startswith(a["text"])


def test_span_qa_answer_found_elsewhere_or_excluded():
    task = get_task("xquad")
    moved = Example("q2", "en", {**QA.fields, "answers": [{"text": "Paul", "answer_start": 3}]})
    lost = Example("q3", "en", {**QA.fields, "answers": [{"text": "Maria", "answer_start": 0}]})
    p = apply_noise(task, [moved, lost, QA], declared(family="char", rate=1.0, context=True), 0)
    assert p.kept == [0, 2] and p.excluded == 1
    a = p.examples[0].fields["answers"][0]
    assert p.examples[0].fields["context"][a["answer_start"] :].startswith("Paul")
    # without `context` the context is never touched (as the plain names always did)
    q = apply_noise(task, [lost], declared(family="char", rate=1.0), 0)
    assert q.excluded == 0 and q.examples[0].fields["context"] == QA.fields["context"]


@pytest.mark.parametrize("family", ["shuffle", "dropout", "swap"])
def test_tagging_word_order_keeps_tags_with_tokens(family):
    task = get_task("udpos")
    tokens, tags = [f"tok{i}" for i in range(40)], [f"T{i}" for i in range(40)]
    ex = Example("s", "en", {"tokens": tokens, "tags": tags})
    (out,) = apply_noise(task, [ex], declared(family=family, rate=0.5), 0).examples
    assert out.fields["tokens"] != tokens and len(out.fields["tokens"]) == len(out.fields["tags"])
    assert all(t[3:] == g[1:] for t, g in zip(out.fields["tokens"], out.fields["tags"]))


LEX = Lexicon(
    {
        ("en", "de"): {"dogs": ["Hunde"], "shop": ["Laden"], "cats": ["Katzen"], "buys": ["kauft"],
                       "five": ["fünf"], "paints": ["malt"]},
        ("de", "en"): {"hunde": ["dogs"], "laden": ["shop"], "katzen": ["cats"], "kauft": ["buys"],
                       "fünf": ["five"], "malt": ["paints"]},
    }
)  # fmt: skip


def codemixed(task_name, examples, **kw):
    sets = SetEval(get_task(task_name), None, "fixtures", 0, None, ())
    sets.lexicons._lex[declared(family="codemix", languages=["de"]).lexicon.model_dump_json()] = LEX
    return sets.perturb(declared(family="codemix", languages=["de"], **kw), examples)[0]


def test_codemix_budget_is_exact_and_rate_a_share():
    ex = Example("g", "en", {"text": "dogs buys five cats paints shop " * 5, "label": "0"})
    for k in (1, 3, 7):
        (out,) = codemixed("sst2", [ex], budget=k).examples
        changed = [a != b for a, b in zip(ex.fields["text"].split(), out.fields["text"].split())]
        assert sum(changed) == k
    (out,) = codemixed("sst2", [ex], rate=1.0).examples
    assert out.fields["text"].split() == ["Hunde", "kauft", "fünf", "Katzen", "malt", "Laden"] * 5


def test_codemix_span_qa_context_keeps_answers():
    (out,) = codemixed("xquad", [QA], rate=1.0, context=True).examples
    ctx = out.fields["context"]
    assert "Hunde" in ctx and "Laden" in ctx and "Paul" in ctx
    assert "four cats" in ctx  # inside an answer: never replaced
    for a in out.fields["answers"]:
        assert ctx[a["answer_start"] :].startswith(a["text"])


def test_codemix_tagging_replaces_whole_tokens_that_translate_back():
    ex = Example("s", "en", {"tokens": ["Paul", "buys", "dogs", "."], "tags": ["P", "V", "N", "."]})
    (out,) = codemixed("udpos", [ex], rate=1.0).examples
    assert out.fields["tokens"] == ["Paul", "kauft", "Hunde", "."]
    assert out.fields["tags"] == ["P", "V", "N", "."]


def test_set_metrics_by_hand():
    from xscale.tracking.names import summarize_set, time_shares

    per = {
        "en": {"accuracy": 60.0, "clean_accuracy": 80.0, "success_rate": 50.0,
               "mean_queries": 10.0, "seconds": 1.0},
        "de": {"accuracy": 40.0, "clean_accuracy": 50.0, "success_rate": 20.0,
               "mean_queries": 20.0, "seconds": 2.0},
        "fr": {"accuracy": 45.0, "clean_accuracy": 60.0, "success_rate": 30.0,
               "mean_queries": 30.0, "seconds": 3.0},
    }  # fmt: skip
    m = summarize_set("xnli", "accuracy", per, "pg")
    assert m["xnli.de.pg.drop"] == 10.0 and m["xnli.de.pg.drop_rel"] == 20.0
    assert m["xnli.pg.drop_en"] == 20.0 and m["xnli.pg.drop_non_en"] == 12.5  # (10 + 15) / 2
    assert m["xnli.pg.drop_rel_en"] == 25.0 and m["xnli.pg.drop_rel_non_en"] == 22.5
    assert m["xnli.pg.success_rate"] == pytest.approx(100 / 3) and m["xnli.pg.mean_queries"] == 20
    assert m["xnli.pg.avg"] == pytest.approx(145 / 3) and m["xnli.pg.gap_en"] == 17.5
    assert m["xnli.pg.seconds"] == 6.0 and m["xnli.fr.pg.clean_accuracy"] == 60.0
    assert time_shares(m, "xnli", ["pg", "typo"], 60.0) == {"xnli.pg.time_share": 10.0}
    noise = summarize_set(
        "xnli", "accuracy", {"en": {"accuracy": 70.0, "clean_accuracy": 0.0}}, "t"
    )
    assert noise["xnli.en.t.drop"] == -70.0 and "xnli.en.t.drop_rel" not in noise
    assert "xnli.t.success_rate" not in noise  # attacks only
