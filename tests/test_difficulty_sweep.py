"""Difficulty and alignment in a sweep file (sweep/difficulty.py): one-line errors naming the key
path, and the stage graph they expand to (cartography stages shared by seeds; subset stages that
wait for their map but start from the pretrained model; alignment on trained checkpoints)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from xscale.errors import XScaleError
from xscale.graph.expand import expand
from xscale.graph.selection import resolve
from xscale.graph.stage import PRETRAINED
from xscale.stage.inputs import model_source
from xscale.sweep.difficulty import parse_subset_name, subset_name
from xscale.sweep.schema import load_sweep

BASE = """\
name: t
output_dir: out
models: [tiny-xs]
intermediate_tasks: [none, mnli]
target_tasks: [xnli]
seeds: [0]
"""
EASY = "{task: mnli, subset: easy, fraction: 0.33}"
HARD = "{task: mnli, subset: hard, fraction: 0.33}"
SUBSETS = BASE.replace("[none, mnli]", f"[none, {EASY}, {HARD}]")
ALIGN = "alignment: {languages: [de, zh], max_pairs: 50}\n"

BAD = [
    (
        "fraction-above-one",
        BASE.replace("[none, mnli]", "[{task: mnli, subset: easy, fraction: 1.5}]"),
        "intermediate_tasks.0.fraction: Input should be less than 1",
    ),
    (
        "fraction-zero",
        BASE.replace("[none, mnli]", "[{task: mnli, subset: easy, fraction: 0}]"),
        "intermediate_tasks.0.fraction: Input should be greater than 0",
    ),
    (
        "fraction-missing",
        BASE.replace("[none, mnli]", "[{task: mnli, subset: easy}]"),
        "intermediate_tasks.0.fraction: Field required",
    ),
    (
        "unknown-subset",
        BASE.replace("[none, mnli]", "[{task: mnli, subset: medium, fraction: 0.5}]"),
        "intermediate_tasks.0.subset: Input should be 'easy', 'ambiguous' or 'hard'",
    ),
    (
        "subset-of-span-qa",
        BASE.replace("[none, mnli]", "[{task: squad, subset: hard, fraction: 0.5}]"),
        "intermediate_tasks.0.task: squad is a span_qa task: a cartography map needs",
    ),
    (
        "subset-language-the-task-lacks",
        BASE.replace(
            "[none, mnli]", "[{task: mnli, subset: hard, fraction: 0.5, languages: [de]}]"
        ),
        "intermediate_tasks.0.languages.0: mnli has no language 'de'",
    ),
    (
        "subset-unknown-key",
        BASE.replace("[none, mnli]", "[{task: mnli, subset: hard, fraction: 0.5, cap: 3}]"),
        "intermediate_tasks.0.cap: unknown key",
    ),
    (
        "duplicate-subset",
        BASE.replace("[none, mnli]", f"[{HARD}, {HARD}]"),
        "intermediate_tasks.1: duplicate 'mnli:hard0.33'",
    ),
    (
        "map-of-one-epoch",
        SUBSETS + "cartography: {epochs: 1}\n",
        "cartography.epochs: a map needs at least 2 epochs (variability is a spread over epochs)",
    ),
    (
        "map-of-one-epoch-from-intermediate",
        SUBSETS + "intermediate: {epochs: 1}\n",
        "cartography.epochs: a map needs at least 2 epochs",
    ),
    (
        "map-with-its-own-examples",
        SUBSETS + "cartography: {max_train_examples: 100}\n",
        "cartography.max_train_examples: the map covers the examples its subset stages train on",
    ),
    (
        "map-search-space",
        SUBSETS + "cartography: {epochs: {choice: [2, 3]}}\n",
        "cartography.epochs: search spaces are only allowed in intermediate/target",
    ),
    ("map-unknown-key", SUBSETS + "cartography: {tasks: some}\n", "cartography.tasks:"),
    (
        "alignment-source-without-parallel-rows",
        BASE + "alignment: {languages: [de], source: mnli}\n",
        "alignment.source: 'mnli' has no parallel rows",
    ),
    (
        "alignment-english",
        BASE + "alignment: {languages: [en, de]}\n",
        "alignment.languages.0: English is the side every pair has",
    ),
    (
        "alignment-unknown-language",
        BASE + "alignment: {languages: [de, xx]}\n",
        "alignment.languages.1: xnli has no language 'xx'",
    ),
    (
        "alignment-duplicate-language",
        BASE + "alignment: {languages: [de, de]}\n",
        "alignment.languages.1: duplicate 'de'",
    ),
    (
        "alignment-layer-beyond-a-size",
        BASE.replace("[tiny-xs]", "[tiny-s, tiny-xs]")
        + "alignment: {languages: [de], layers: [3]}\n",
        "alignment.layers.0: layer 3 is beyond tiny-xs's 2 layers (0..1)",
    ),
    (
        "alignment-tatoeba-dev",
        BASE + "alignment: {languages: [de], source: tatoeba, split: dev}\n",
        "alignment.split: tatoeba has only a test split",
    ),
    (
        "alignment-few-pairs",
        BASE + "alignment: {languages: [de], max_pairs: 1}\n",
        "alignment.max_pairs: Input should be greater than or equal to 4",
    ),
    ("alignment-no-languages", BASE + "alignment: {languages: []}\n", "alignment.languages:"),
    (
        "alignment-unknown-key",
        BASE + "alignment: {languages: [de], langs: [de]}\n",
        "alignment.langs: unknown key",
    ),
]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(textwrap.dedent(text))
    return path


@pytest.mark.parametrize("text, expected", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_malformed_difficulty_is_one_line_naming_the_key(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(XScaleError) as info:
        load_sweep(path)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(f"{path}:")
    assert expected in msg, msg


def test_subset_names_round_trip():
    assert subset_name("mnli", "hard", 0.33) == "mnli:hard0.33"
    assert parse_subset_name("xnli@de+en:easy0.5") == ("xnli@de+en", "easy", 0.5)
    assert parse_subset_name("mnli") is None and parse_subset_name("mix:mnli+sst2") is None


def test_one_map_is_shared_by_every_seed_and_subset(tmp_path):
    cfg = load_sweep(write(tmp_path, SUBSETS.replace("seeds: [0]", "seeds: [0, 1, 2]")))
    graph = expand(cfg)
    (cart,) = [g for g in graph.groups.values() if g.kind == "cartography"]
    (pre,) = [g for g in graph.groups.values() if g.kind == "pretrain"]
    assert cart.parent == pre.key and cart.base["seed"] == 0 and not cart.space
    subsets = [g for g in graph.groups.values() if g.kind == "intermediate"]
    assert len(subsets) == 6  # 2 subsets x 3 seeds, all waiting on the one map
    assert {g.parent for g in subsets} == {cart.key}
    assert cfg.intermediate_names == ["none", "mnli:easy0.33", "mnli:hard0.33"]
    # the map run trains as the intermediate phase does, except where `cartography` says
    assert cart.fixed == {} and graph.count("target") == 9


def test_a_subset_stage_waits_for_its_map_but_starts_from_the_pretrained_model(tmp_path):
    cfg = load_sweep(write(tmp_path, SUBSETS + "cartography: {epochs: 4}\n"))
    graph = expand(cfg)
    specs = {s.kind + str(s.subset): s for v in resolve(graph, tmp_path).values() for s in v}
    pre, cart, hard = specs["pretrainNone"], specs["cartographyNone"], specs["intermediatehard"]
    assert cart.hparams.epochs == 4 and cart.parent == pre.key
    assert hard.parent == cart.key and hard.weights == pre.key and hard.weights_stage == pre.key
    assert model_source(hard, tmp_path) == str(tmp_path / "stages" / pre.key / "model")
    assert hard.subset == "hard" and hard.fraction == 0.33
    assert hard.label == "intermediate mnli:hard0.33 tiny-xs seed0"
    (target,) = [s for s in specs.values() if s.kind == "target" and s.parent == hard.key]
    assert model_source(target, tmp_path) == str(tmp_path / "stages" / hard.key / "model")


def test_a_real_size_maps_at_the_root_and_its_subsets_start_from_the_hub(tmp_path):
    text = SUBSETS.replace("[tiny-xs]", "[xlmr-base]")
    graph = expand(load_sweep(write(tmp_path, text)))
    specs = [s for v in resolve(graph, tmp_path).values() for s in v]
    (cart,) = [s for s in specs if s.kind == "cartography"]
    easy = next(s for s in specs if s.subset == "easy")
    assert cart.parent is None and easy.parent == cart.key and easy.weights == PRETRAINED
    assert easy.weights_stage is None
    assert model_source(easy, tmp_path) == "FacebookAI/xlm-roberta-base"


def test_maps_for_every_task_when_asked(tmp_path):
    text = BASE.replace("[none, mnli]", "[none, mnli, squad, {mixture: [mnli, sst2]}]")
    graph = expand(load_sweep(write(tmp_path, text + "cartography: {tasks: all}\n")))
    maps = [g for g in graph.groups.values() if g.kind == "cartography"]
    # squad has no gold-label probability and a mixture is no one task: only mnli is mapped
    assert [g.base["task"] for g in maps] == ["mnli"]
    assert graph.children(maps[0].key) == []  # a leaf: the difficulty of the task, nothing more


def test_alignment_is_measured_on_the_checkpoints_stages_train(tmp_path):
    text = BASE.replace("[xnli]", "[xnli, tatoeba]") + "train_languages: [en, in-language]\n"
    graph = expand(load_sweep(write(tmp_path, text + ALIGN)))
    by = {
        (g.kind, g.base.get("task"), g.base.get("train_languages")): g
        for g in graph.groups.values()
    }
    inter = by[("intermediate", "mnli", "en")]
    assert inter.base["alignment"]["languages"] == ["de", "zh"]
    assert inter.base["alignment"]["data_root"] == "hub"
    assert "alignment" not in by[("pretrain", None, None)].base  # measured by its children
    assert "alignment" in by[("target", "xnli", "en")].base
    assert "alignment" not in by[("target", "xnli", "in-language")].base  # no one model/
    assert "alignment" not in by[("target", "tatoeba", "en")].base  # not trained
    spec = inter.stage({}, "p")
    assert spec.alignment.layers == "all" and spec.alignment.max_pairs == 50


def test_difficulty_keys_leave_other_sweeps_keys_alone(tmp_path):
    """Adding subsets or alignment to a sweep adds stages; the stages it had keep their keys
    (pretrain always, the rest when alignment is not declared)."""
    plain = expand(load_sweep(write(tmp_path, BASE)))
    with_subsets = expand(load_sweep(write(tmp_path, SUBSETS.replace("[none, ", "[none, mnli, "))))
    assert set(plain.groups) <= set(with_subsets.groups)
    aligned = expand(load_sweep(write(tmp_path, BASE + ALIGN)))
    shared = set(plain.groups) & set(aligned.groups)
    assert {plain.groups[k].kind for k in shared} == {"pretrain"}
