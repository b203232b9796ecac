"""The loss-guided attack against a trained tiny model, end to end through `xscale run`: on the
demo's data (the XNLI fixtures), PolyGloss lowers accuracy far more than random code-mixing
with the same budget and lexicon, and every logged number agrees with the prediction files.
Then `xscale perturb` attacks the exported target model (encoder + head) from its folder.

tiny-xs is pretrained as in test_trial_e2e (the same pretrain block), in a folder of its own,
and fine-tuned as the demo does (400 English rows, 12 epochs).
"""

from __future__ import annotations

import pytest
from conftest import Trial

from xscale import data as xdata
from xscale.data import FIXTURES
from xscale.graph.expand import trial_stages
from xscale.sweep.trial import load_trial
from xscale.tasks.registry import get_task

pytestmark = pytest.mark.slow

N = 100  # attacked examples per language
SETS = [
    {"name": "cm", "family": "codemix", "languages": ["de", "fr"], "budget": 3, "max_examples": N},
    {"name": "pg", "family": "polygloss", "languages": ["de", "fr"], "budget": 3,
     "max_queries": 32, "max_examples": N},
]  # fmt: skip
LANGS = ("en", "es")


@pytest.fixture(scope="module")
def attacked(e2e_output_dir, xscale_cli, trial_yaml) -> Trial:
    # a folder of its own: test_trial_e2e's first trial must be the first in its folder
    out = e2e_output_dir / "attack"
    config = trial_yaml(
        out.parent / f"{out.name}-attack.yaml",
        intermediate_task="none",
        eval_languages=list(LANGS),
        perturbations=SETS,
        target={"max_steps": None, "epochs": 12, "batch_size": 32, "max_length": 64,
                "max_train_examples": 400, "max_eval_examples": None},
    )  # fmt: skip
    proc = xscale_cli("run", "--config", str(config), "--output-dir", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return Trial(config, out, trial_stages(load_trial(config)), proc)


def test_loss_guided_attack_beats_random_codemixing(attacked):
    m = attacked.result("target")["metrics"]
    # a model worth attacking: chance is 33.3, and 45 on 250 rows is ~3.7 standard errors above it
    assert m["xnli.en.accuracy"] > 45.0
    for lang in LANGS:
        for s in ("cm", "pg"):
            assert m[f"xnli.{lang}.{s}.examples"] == N
            assert m[f"xnli.{lang}.{s}.drop"] == pytest.approx(
                m[f"xnli.{lang}.{s}.clean_accuracy"] - m[f"xnli.{lang}.{s}.accuracy"]
            )
        # the same examples, the same number of substitutions, the same lexicon
        assert m[f"xnli.{lang}.pg.accuracy"] < m[f"xnli.{lang}.cm.accuracy"], lang
        assert 1.0 < m[f"xnli.{lang}.pg.mean_queries"] <= 32.0
    assert m["xnli.en.pg.accuracy"] <= m["xnli.en.cm.accuracy"] - 15.0
    drops = {s: sum(m[f"xnli.{lang}.{s}.drop"] for lang in LANGS) for s in ("cm", "pg")}
    assert drops["pg"] >= 2 * drops["cm"]
    assert m["xnli.en.pg.success_rate"] >= 30.0
    assert m["xnli.pg.drop_en"] == pytest.approx(m["xnli.en.pg.drop"])
    assert m["xnli.pg.drop_non_en"] == pytest.approx(m["xnli.es.pg.drop"])
    assert 0.0 < m["xnli.pg.time_share"] < 100.0 and m["xnli.pg.seconds"] > 0.0


def test_logged_clean_scores_are_those_of_the_prediction_files(attacked):
    """clean_accuracy of a capped set = the accuracy of the exported predictions of its first
    N examples (and success_rate is bounded by what those predictions got right)."""
    m = attacked.result("target")["metrics"]
    task = get_task("xnli")
    for lang in LANGS:
        gold = [e.fields["label"] for e in xdata.load_examples(task, "test", lang, FIXTURES)]
        pred = (attacked.dir("target") / "predictions" / "xnli" / f"test-{lang}.tsv").read_text()
        pred = pred.split()
        assert len(pred) == len(gold)
        right = sum(p == g for p, g in zip(pred[:N], gold[:N]))
        assert m[f"xnli.{lang}.pg.clean_accuracy"] == pytest.approx(100.0 * right / N)
        all_right = sum(p == g for p, g in zip(pred, gold))
        assert m[f"xnli.{lang}.accuracy"] == pytest.approx(100.0 * all_right / len(gold))
        fooled = m[f"xnli.{lang}.pg.success_rate"] * right / 100.0
        assert fooled == pytest.approx(round(fooled))  # a count of examples
        assert m[f"xnli.{lang}.pg.accuracy"] >= 100.0 * (right - round(fooled)) / N - 1e-9


def test_xscale_perturb_attacks_the_exported_model(attacked, xscale_cli):
    model = attacked.dir("target")
    assert (model / "model" / "head.safetensors").is_file()
    pg = "{family: polygloss, languages: [de, fr], budget: 3, max_queries: 32}"
    proc = xscale_cli("perturb", "--task", "xnli", "--lang", "en", "--set", pg,
                      "--model", str(model), "-n", "8")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert text.count("\n[") == 8 and "model: " in text
    assert "right -> WRONG" in text  # at least one of 8 examples flipped (60% succeed above)
    # an encoder alone cannot be attacked: the intermediate/pretrain model/ has no head
    pre = attacked.dir("pretrain") / "model"
    bad = xscale_cli("perturb", "--task", "xnli", "--set", pg, "--model", str(pre))
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert "no task head" in bad.stderr
