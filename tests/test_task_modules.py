"""A task is one module: `tydiqa_goldp` (TyDiQA-GoldP's nine training languages as a multilingual
intermediate task) was added as tasks/lib/tydiqa_goldp.py and its row in tasks.registry, and
nothing else (issue 24). Its files in their real schema (SQuAD v1.1 json, TyDiQA's ids)."""

from __future__ import annotations

import json

import pytest

from xscale import data as xdata
from xscale.errors import XScaleError
from xscale.sweep.schema import build_sweep
from xscale.tasks.registry import TASKS

TRAIN = "xtreme/tydiqa/tydiqa-goldp-v1.1-train/tydiqa.goldp.{lang}.train.json"
NAMES = {"en": "english", "ar": "arabic", "fi": "finnish"}


def _write_train(root, lang: str, passages: int = 20) -> None:
    paragraphs = []
    for p in range(passages):
        context = f"passage {p} in {lang}: the city of X{p} lies on the river Y{p}."
        qas = [
            {
                "id": f"{NAMES[lang]}-{1000 + p}-{q}",
                "question": f"where does X{p} lie ({q})?",
                "answers": [
                    {"text": f"the river Y{p}", "answer_start": context.index("the river")}
                ],
            }
            for q in range(2)
        ]
        paragraphs.append({"context": context, "qas": qas})
    path = root / TRAIN.format(lang=lang)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"data": [{"title": "t", "paragraphs": paragraphs}]}))


def test_tydiqa_goldp_trains_in_each_language_and_selects_on_held_out_passages(tmp_path):
    task = TASKS["tydiqa_goldp"]
    for lang in ("en", "ar"):
        _write_train(tmp_path, lang)
    assert xdata.available_languages(task, tmp_path, "train") == ["en", "ar"]
    train = xdata.load_examples(task, "train", "ar", tmp_path)
    dev = xdata.load_examples(task, "dev", "ar", tmp_path)
    assert train and dev and all(e.lang == "ar" for e in train + dev)
    # a passage's questions are all in train or all in dev: no dev passage was trained on
    assert not {e.fields["context"] for e in train} & {e.fields["context"] for e in dev}
    assert len(train) + len(dev) == 40
    with pytest.raises(XScaleError, match="fi"):
        xdata.load_examples(task, "train", "fi", tmp_path)


def test_tydiqa_goldp_is_a_multilingual_intermediate_task_in_a_sweep(tmp_path):
    raw = {
        "name": "ml",
        "output_dir": str(tmp_path / "out"),
        "models": ["tiny-xs"],
        "intermediate_tasks": [{"task": "tydiqa_goldp", "languages": ["en", "ar"]}],
        "target_tasks": ["xquad"],
        "data": {"root": str(tmp_path)},
    }
    cfg = build_sweep(raw, "ml.yaml")
    (entry,) = cfg.multilingual.values()
    assert entry.task == "tydiqa_goldp" and sorted(entry.languages) == ["ar", "en"]
    raw["intermediate_tasks"] = [{"task": "tydiqa_goldp", "languages": ["en", "xx"]}]
    with pytest.raises(XScaleError, match="languages.1"):
        build_sweep(raw, "ml.yaml")


def test_tydiqa_itself_is_a_multilingual_intermediate_task_and_trains_in_language(tmp_path):
    # issue 26: `{task: tydiqa, languages: [...]}` as written there; and the target's
    # in-language mode reads each language's own (native) training file
    for lang in ("en", "ar", "fi"):
        _write_train(tmp_path, lang)
    task = TASKS["tydiqa"]
    assert xdata.available_languages(task, tmp_path, "train") == ["en", "ar", "fi"]
    ar = xdata.load_examples(task, "train", "ar", tmp_path)
    assert ar and all(e.lang == "ar" and e.fields["id"].startswith("arabic-") for e in ar)
    raw = {
        "name": "ml",
        "output_dir": str(tmp_path / "out"),
        "models": ["tiny-xs"],
        "intermediate_tasks": [{"task": "tydiqa", "languages": ["en", "ar", "fi"]}],
        "target_tasks": ["xquad"],
        "data": {"root": str(tmp_path)},
    }
    (entry,) = build_sweep(raw, "ml.yaml").multilingual.values()
    assert entry.task == "tydiqa" and entry.canonical_name == "tydiqa@ar+en+fi"
    raw["intermediate_tasks"] = [{"task": "tydiqa", "languages": ["en", "de"]}]
    with pytest.raises(XScaleError, match="languages.1: tydiqa has no language 'de'"):
        build_sweep(raw, "ml.yaml")
