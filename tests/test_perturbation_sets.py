"""Perturbation sets in sweep and trial files: parameters validated with key paths, stage keys
(plain names keep theirs; parameters change them), which targets a set applies to, label
safety refused at load, lexicon files checked before anything runs, and `xscale perturb`."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from xscale.errors import XScaleError
from xscale.graph.expand import expand, trial_stages
from xscale.graph.stage import StageSpec
from xscale.stage.preflight import preflight
from xscale.sweep.schema import load_sweep
from xscale.sweep.trial import load_trial

BASE = """\
name: t
output_dir: out
models: [tiny-xs]
intermediate_tasks: [none]
target_tasks: [xnli, udpos, tatoeba]
data: {root: fixtures}
"""
PG = "{name: pg, family: polygloss, languages: [de], tasks: [xnli]}"


def sweep(tmp_path: Path, sets: str, base: str = BASE) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(textwrap.dedent(base) + f"perturbations: {sets}\n")
    return path


def targets(cfg) -> dict[str, StageSpec]:
    out = {}
    for g in expand(cfg).groups.values():
        if g.kind == "target":
            spec = g.stage({}, "parent")
            out[spec.task] = spec
    return out


def test_plain_names_stay_plain_strings_in_the_stage_spec(tmp_path):
    """A sweep written before sets had parameters keeps its stage keys: the spec holds the same
    JSON (`"perturbations":["typo"]`) the older code hashed."""
    specs = targets(load_sweep(sweep(tmp_path, "[typo, lower]")))
    for spec in specs.values():  # on every target, as before (tatoeba evaluates none of them)
        assert '"perturbations":["typo","lower"]' in spec.canonical()
    same = targets(load_sweep(sweep(tmp_path, "[{name: typo, family: typo, rate: 0.2}, lower]")))
    assert same["xnli"].key == specs["xnli"].key  # a declared set equal to the defaults


def test_parameters_are_part_of_the_key(tmp_path):
    def key(sets):
        return targets(load_sweep(sweep(tmp_path, sets)))["xnli"].key

    base = key("[{name: t, family: typo}]")
    assert key("[{name: t, family: typo, rate: 0.3}]") != base
    assert key("[{name: t, family: typo, rate: 0.2}]") == base  # the default, spelled out
    assert key("[{name: t2, family: typo}]") != base  # the name seeds its random stream
    pg = "[{name: pg, family: polygloss, languages: [de], tasks: [xnli]%s}]"
    assert key(pg % "") != key(pg % ", budget: 4") != key(pg % ", max_queries: 10")
    spec = targets(load_sweep(sweep(tmp_path, pg % ", budget: 4")))["xnli"]
    (entry,) = spec.perturbations
    assert entry.budget == 4 and entry.max_queries == 64  # the spec is typed again on reload
    assert StageSpec.model_validate_json(spec.model_dump_json()).key == spec.key
    # a full dump (Tune's trial context, spec.json) reloads to the same key, budget and all
    cm = targets(
        load_sweep(sweep(tmp_path, "[{name: c, family: codemix, languages: [de], budget: 2}]"))
    )
    spec = cm["xnli"]
    assert StageSpec.model_validate(spec.model_dump(mode="json")).key == spec.key


def test_declared_sets_go_only_to_the_targets_they_apply_to(tmp_path):
    sets = f"[typo, {PG}, {{name: sh, family: shuffle}}]"
    specs = targets(load_sweep(sweep(tmp_path, sets)))
    names = {
        t: [e if isinstance(e, str) else e.name for e in s.perturbations] for t, s in specs.items()
    }
    assert names == {"xnli": ["typo", "pg", "sh"], "udpos": ["typo", "sh"], "tatoeba": ["typo"]}


CM = "family: codemix, languages: [de]"
BAD = [
    ("[typo, {family: typo, rate: 2}]", "perturbations.1.rate: Input should be less than or equal"),
    ("[{family: smudge}]", "perturbations.0.family: unknown family 'smudge'"),
    ("[{name: a, rate: 0.2}]", "perturbations.0.family: required"),
    ("[typo, {name: typo, family: char}]", "perturbations.1: duplicate 'typo'"),
    ("[{family: shuffle, window: 1}]", "perturbations.0.window: Input should be greater than"),
    (
        "[{family: polygloss, languages: [de]}]",
        "perturbations.0: polygloss set 'polygloss' cannot keep udpos's labels: the polygloss"
        " attack needs one gold label per example (classification or multiple choice); udpos is"
        " tagging (restrict it with tasks: [...])",
    ),
    ("[{family: bumblebee, languages: [de], tasks: [udpos]}]", "tasks.0: bumblebee cannot apply"),
    (f"[{{{CM}, tasks: [pawsx]}}]", "perturbations.0.tasks.0: 'pawsx' is not in target_tasks"),
    (f"[{{{CM}, tasks: [tatoeba]}}]", "tasks.0: codemix cannot apply: tatoeba is a retrieval"),
    ("[{family: codemix, languages: [de, xx]}]", "languages.1: no parallel rows in 'xx'"),
    (f"[{{{CM}, lexicon: {{muse: d/en-de.txt}}}}]", "lexicon.muse: must hold {src} and {tgt}"),
    (f"[{{{CM}, lexicon: {{induce_from: [xquad]}}}}]", "induce_from: 'xquad' has no parallel"),
    (f"[{{{CM}, colour: red}}]", "perturbations.0.colour: unknown key"),
    ("[{name: test, family: lower}]", "perturbations.0.name: 'test' is reserved"),
    ("typo", "perturbations: expected a list"),
    ("[[typo]]", "perturbations.0: expected a set name or a mapping"),
]


@pytest.mark.parametrize(
    "sets, expected", BAD, ids=[b[1].split(":")[0] + str(i) for i, b in enumerate(BAD)]
)
def test_bad_sets_are_one_line_naming_file_and_key(tmp_path, sets, expected):
    path = sweep(tmp_path, sets)
    with pytest.raises(XScaleError) as info:
        load_sweep(path)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(f"{path}: ")
    assert expected in msg


def test_bumblebee_needs_parallel_test_data(tmp_path):
    base = BASE.replace("[xnli, udpos, tatoeba]", "[xnli, xquad]")
    with pytest.raises(XScaleError, match=r"perturbations.0: bumblebee set 'bb' cannot keep xquad"):
        load_sweep(sweep(tmp_path, "[{name: bb, family: bumblebee, languages: [de]}]", base))
    cfg = load_sweep(
        sweep(tmp_path, "[{name: bb, family: bumblebee, languages: [de], tasks: [xnli]}]", base)
    )
    assert targets(cfg)["xquad"].perturbations == ()


def write_trial(tmp_path: Path, **over) -> Path:
    from conftest import tiny_trial

    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(tiny_trial(**over), sort_keys=False))
    return path


def test_trial_sets_errors_and_preflight(tmp_path):
    bad = write_trial(
        tmp_path, perturbations=["typo", {"family": "codemix", "languages": ["de"], "rate": 5}]
    )
    with pytest.raises(XScaleError, match=r"t.yaml: perturbations.1.rate: Input should be less"):
        load_trial(bad)
    unsafe = write_trial(
        tmp_path, target_task="udpos", perturbations=[{"family": "polygloss", "languages": ["de"]}]
    )
    with pytest.raises(
        XScaleError, match=r"t.yaml: perturbations.0: polygloss set .* cannot keep udpos"
    ):
        load_trial(unsafe)
    # lexicon files are read (and checked) by preflight, before anything trains or logs
    muse = str(tmp_path / "dicts" / "{src}-{tgt}.txt")
    (tmp_path / "dicts").mkdir()
    (tmp_path / "dicts" / "en-de.txt").write_text("house Haus\n")
    (tmp_path / "dicts" / "de-en.txt").write_text("Haus house\nzu viele Felder\n")
    sets = [
        {"name": "cm", "family": "codemix", "languages": ["de", "en"], "lexicon": {"muse": muse}}
    ]
    cfg = load_trial(write_trial(tmp_path, perturbations=sets, eval_languages=["en", "de"]))
    with pytest.raises(XScaleError, match=r"dicts/de-en.txt: line 2: expected 'word translation'"):
        preflight(trial_stages(cfg), check_weights=False)
    (tmp_path / "dicts" / "de-en.txt").write_text("Haus house\n")
    cfg = load_trial(write_trial(tmp_path, perturbations=sets, eval_languages=["en", "de", "fr"]))
    with pytest.raises(XScaleError, match=r"fr-de.txt: no such lexicon file \(nor fr-en.txt"):
        preflight(trial_stages(cfg), check_weights=False)
    cfg = load_trial(write_trial(tmp_path, perturbations=sets, eval_languages=["en", "de"]))
    preflight(trial_stages(cfg), check_weights=False)  # every file there and well formed


def test_preflight_refuses_bumblebee_without_translations(tmp_path):
    sets = [{"name": "bb", "family": "bumblebee", "languages": ["de", "zh"]}]
    cfg = load_trial(write_trial(tmp_path, target_task="pawsx", perturbations=sets))
    with pytest.raises(XScaleError, match=r"set 'bb': pawsx has no test data in 'zh'"):
        preflight(trial_stages(cfg), check_weights=False)


def test_cli_perturb_prints_originals_beside_perturbed(xscale_cli, tmp_path):
    proc = xscale_cli("perturb", "--task", "xnli", "--lang", "de", "--set", "typo", "-n", "3")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("xnli de test, set typo: typo (")
    assert sum(line.startswith("[") for line in lines) == 3
    assert "  text_a   Lena zeichnet am Montag zwei blaue Birnen im Laden." in lines
    s = sweep(tmp_path, "[{name: cm, family: codemix, languages: [fr], budget: 2}]")
    proc = xscale_cli(
        "perturb", "--task", "xnli", "--lang", "de", "--set", "cm", "--sweep", str(s), "-n", "2"
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.splitlines()
    assert out[0].startswith("xnli de test, set cm: codemix (") and "budget=2" in out[0]
    before = [line.split(None, 1)[1] for line in out if line.startswith("  text_")]
    after = [line.strip() for line in out if line.startswith("   ") and line.strip()]
    after = [a[3:] if a.startswith("-> ") else b for a, b in zip(after, before)]
    for i in (0, 2):  # two substitutions per example, across its premise and hypothesis
        words = list(
            zip((before[i] + " " + before[i + 1]).split(), (after[i] + " " + after[i + 1]).split())
        )
        assert sum(a != b for a, b in words) == 2
    for args, message in [
        (("--set", "typos"), "--set: unknown set 'typos'"),
        (("--set", "{family: polygloss, languages: [de]}"), "give --model"),
        (("--set", "{family: typo, rate: 3}"), "--set.rate: Input should be less"),
        (("--set", "typo", "--lang", "xx"), "xx"),
    ]:
        bad = xscale_cli("perturb", "--task", "xnli", *args)
        assert bad.returncode == 2 and bad.stderr.count("\n") == 1, (args, bad.stderr)
        assert message in bad.stderr, (args, bad.stderr)


def test_target_runs_name_their_intermediate_languages(tmp_path):
    """The param the analysis sets English against multilingual intermediate training by."""
    import json

    from xscale.stage.inputs import intermediate_languages

    def spec(**kw):
        return StageSpec(kind="target", model="tiny-xs", task="xnli", deepspeed_config="x", **kw)

    (tmp_path / "stages" / "int-a").mkdir(parents=True)
    parent = {"kind": "intermediate", "train_languages": "de+en+fr"}
    (tmp_path / "stages" / "int-a" / "spec.json").write_text(json.dumps(parent))
    assert (
        intermediate_languages(spec(intermediate_task="x", parent="int-a"), tmp_path) == "de+en+fr"
    )
    assert intermediate_languages(spec(parent="pre-a"), tmp_path) == "none"  # intermediate none
    assert intermediate_languages(spec(intermediate_task="m", parent="gone"), tmp_path) == "unknown"
