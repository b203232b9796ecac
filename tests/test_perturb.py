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
