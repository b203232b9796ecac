"""One tiny trial per task format through the CLI (`xscale run`) on the bundled fixtures.

Each test runs `xscale run --config <trial.yaml> --output-dir <out>` and checks what a user of a
run sees: per-language scores logged to MLflow (`<task>.<lang>.<metric>` for every fixture
language of the target task, plus `<task>.avg`, read back with `mlflow.search_runs` from
`sqlite:///<out>/mlflow.db`, experiment "xscale"), and the prediction files in the target stage
folder (`<stage>/predictions/<task>/test-<lang>.*`, XTREME's submission layout) with one entry
per evaluated example. Covered: classification, span QA, tagging, multiple choice, retrieval
(no training), a multi-task mixture, continued MLM, the `all` and `in-language` training modes
and a multilingual intermediate task.

All trials share one output folder (and one MLflow database) and the same pretrain settings, so
tiny-xs is pretrained once, by whichever test runs first, and reused by the rest.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest
from conftest import Trial as StageTrial

from xscale import data as xdata
from xscale.data import FIXTURES
from xscale.graph.expand import trial_stages
from xscale.sweep.trial import load_trial
from xscale.tasks.registry import get_task

pytestmark = pytest.mark.slow

EXPERIMENT = "xscale"  # the CLI's default experiment
MAX_EVAL = 20  # test examples per language
# Every trial below uses this pretrain block unchanged: one pretrain key, one tiny-xs checkpoint.
PRETRAIN = {"max_lines_per_language": 300, "max_length": 32, "batch_size": 32}
PHASE = {"max_steps": 4, "batch_size": 8, "max_length": 64, "max_eval_examples": MAX_EVAL}
# The test languages of the shipped fixtures, per target task.
FIXTURE_LANGS = {
    "xnli": ("en", "de", "es", "fr", "zh"),
    "pawsx": ("en", "de", "es", "fr"),
    "xquad": ("en", "de", "es", "zh"),
    "udpos": ("en", "de", "es", "fr", "zh"),
    "panx": ("en", "de", "es", "fr", "zh"),
    "xcopa": ("zh",),
    "tatoeba": ("de", "es", "fr", "zh"),
    "bucc": ("de", "fr", "zh"),
    "lareqa": ("en", "de", "es", "zh"),
    "mewslix": ("en", "de", "es"),
}
# Metrics that are not 0-100 scores: BUCC's threshold is a raw margin score.
NOT_A_SCORE = ("threshold",)


class Trial(StageTrial):
    def run(self, kind: str):
        """The stage's MLflow run, found by its key tag."""
        key = self.stage(kind).key
        (run,) = [r for r in search_runs(self.out) if r.data.tags.get("xscale.stage_key") == key]
        return run

    def predictions(self, task: str) -> Path:
        return self.dir("target") / "predictions" / task


@pytest.fixture(scope="module")
def out(e2e_output_dir) -> Path:
    """The shared output folder of every trial in this module (inside the session's)."""
    return e2e_output_dir / "formats"


@pytest.fixture(scope="module")
def trial(out, trial_yaml, xscale_cli):
    """`trial(name, **overrides)`: write a tiny trial (shared pretrain block, tiny phases) and
    run it through the CLI; returns a `Trial`."""

    def run(name: str, **overrides) -> Trial:
        phases = {k: {**PHASE, **overrides.pop(k, {})} for k in ("intermediate", "target")}
        config = trial_yaml(
            out.parent / f"formats-{name}.yaml",
            data={"root": "fixtures"},
            pretrain=PRETRAIN,
            **phases,
            **overrides,
        )
        proc = xscale_cli("run", "--config", str(config), "--output-dir", str(out))
        assert proc.returncode == 0, f"{name}: exit {proc.returncode}\n{proc.stderr[-4000:]}"
        return Trial(config, out, trial_stages(load_trial(config)), proc)

    return run


def search_runs(out: Path) -> list:
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{out / 'mlflow.db'}")
    try:
        return mlflow.search_runs(experiment_names=[EXPERIMENT], output_format="list")
    finally:
        mlflow.set_tracking_uri(previous)


def evaluated(task: str, lang: str) -> list:
    """The test examples a target stage evaluates in `lang` (the first MAX_EVAL)."""
    return xdata.load_examples(get_task(task), "test", lang, FIXTURES, limit=MAX_EVAL)


def check_logged(t: Trial, task: str, langs: tuple[str, ...] | None = None) -> dict:
    """The target run's metrics: `<task>.<lang>.<metric>` for exactly `langs` (default: every
    fixture language of `task`), the task's main metric in each, `<task>.avg`, all in 0-100."""
    langs = langs or FIXTURE_LANGS[task]
    assert set(FIXTURE_LANGS[task]) == set(
        xdata.available_languages(get_task(task), FIXTURES, "test")
    )
    run = t.run("target")
    assert run.info.status == "FINISHED"
    logged = run.data.metrics
    per_lang = {k: v for k, v in logged.items() if k.startswith(f"{task}.") and k.count(".") == 2}
    assert {k.split(".")[1] for k in per_lang} == set(langs), sorted(per_lang)
    metric = get_task(task).metric
    for lang in langs:
        assert f"{task}.{lang}.{metric}" in logged, (lang, sorted(per_lang))
    for name, value in per_lang.items():
        if name.split(".")[-1] not in NOT_A_SCORE:
            assert 0.0 <= value <= 100.0, (name, value)
    assert 0.0 <= logged[f"{task}.avg"] <= 100.0
    mean = sum(logged[f"{task}.{lang}.{metric}"] for lang in langs) / len(langs)
    assert logged[f"{task}.avg"] == pytest.approx(mean)
    # what result.json holds is what MLflow holds
    for name, value in t.result("target")["metrics"].items():
        if name.startswith(f"{task}."):
            assert logged[name] == pytest.approx(value), name
    return logged


def check_label_files(t: Trial, task: str, langs: tuple[str, ...] | None = None) -> None:
    """One line per evaluated example in `test-<lang>.tsv` (classification, multiple choice)."""
    for lang in langs or FIXTURE_LANGS[task]:
        lines = (t.predictions(task) / f"test-{lang}.tsv").read_text().splitlines()
        assert len(lines) == len(evaluated(task, lang)), lang
        allowed = get_task(task).labels or ("0", "1")
        assert set(lines) <= set(allowed), (lang, set(lines))


# --------------------------------------------------------------------------- classification


def test_classification_sst2_to_pawsx(trial):
    t = trial("sst2-pawsx", intermediate_task="sst2", target_task="pawsx")
    assert [s.kind for s in t.specs] == ["pretrain", "intermediate", "target"]
    check_logged(t, "pawsx")
    check_label_files(t, "pawsx")
    assert t.run("intermediate").data.params["stage_task"] == "sst2"


# --------------------------------------------------------------------------- span QA


def test_span_qa_squad_to_xquad(trial):
    t = trial("squad-xquad", intermediate_task="squad", target_task="xquad")
    logged = check_logged(t, "xquad")
    assert {k.split(".")[2] for k in logged if k.startswith("xquad.en.")} == {"exact_match", "f1"}
    for lang in FIXTURE_LANGS["xquad"]:
        answers = json.loads((t.predictions("xquad") / f"test-{lang}.json").read_text())
        ids = [e.fields["id"] for e in evaluated("xquad", lang)]
        assert list(answers) == ids, lang
        assert all(isinstance(a, str) for a in answers.values())


# --------------------------------------------------------------------------- tagging


def read_tag(path: Path) -> list[list[str]]:
    """XTREME evaluate.py's reader: one tag per line, sentences split by blank lines."""
    sents, cur = [], []
    for line in path.read_text().splitlines():
        if line.strip():
            cur.append(line.strip())
        else:
            sents.append(cur)
            cur = []
    return sents + ([cur] if cur else [])


def check_tag_files(t: Trial, task: str) -> None:
    tags = set(get_task(task).labels)
    for lang in FIXTURE_LANGS[task]:
        sents = read_tag(t.predictions(task) / f"test-{lang}.tsv")
        words = [len(e.fields["tokens"]) for e in evaluated(task, lang)]
        assert [len(s) for s in sents] == words, lang
        assert {x for s in sents for x in s} <= tags


def test_tagging_ccg_to_udpos(trial):
    t = trial("ccg-udpos", intermediate_task="ccg", target_task="udpos")
    assert 0 <= t.result("intermediate")["metrics"]["dev.accuracy"] <= 100
    logged = check_logged(t, "udpos")
    assert {k.split(".")[2] for k in logged if k.startswith("udpos.de.")} == {
        "accuracy",
        "f1",
        "precision",
        "recall",
    }
    check_tag_files(t, "udpos")


def test_tagging_none_to_panx(trial):
    t = trial("none-panx", intermediate_task="none", target_task="panx")
    assert [s.kind for s in t.specs] == ["pretrain", "target"]
    check_logged(t, "panx")
    check_tag_files(t, "panx")


# --------------------------------------------------------------------------- multiple choice


def test_multiple_choice_hellaswag_to_xcopa(trial):
    """HellaSwag as the intermediate task; XCOPA's target stage trains on English COPA."""
    t = trial("hellaswag-xcopa", intermediate_task="hellaswag", target_task="xcopa")
    assert t.run("intermediate").data.params["stage_task"] == "hellaswag"
    assert t.result("target")["train_examples"] == len(
        xdata.load_examples(get_task("copa"), "train", "en", FIXTURES)
    )
    check_logged(t, "xcopa")
    for lang in FIXTURE_LANGS["xcopa"]:
        # as XTREME-R's evaluate.py reads it (read_xcopa: json.loads(row)["label"] per line)
        path = t.predictions("xcopa") / f"test-{lang}.jsonl"
        labels = [json.loads(row)["label"] for row in path.open()]
        assert len(labels) == len(evaluated("xcopa", lang)) and set(labels) <= {0, 1}


# --------------------------------------------------------------------------- retrieval


def check_untrained(t: Trial) -> None:
    assert [s.kind for s in t.specs] == ["pretrain", "target"]
    assert t.result("target")["steps"] == 0
    assert "train.loss" not in t.run("target").data.metrics


def test_retrieval_tatoeba_without_training(trial):
    t = trial("none-tatoeba", intermediate_task="none", target_task="tatoeba")
    check_untrained(t)
    logged = check_logged(t, "tatoeba")
    for lang in FIXTURE_LANGS["tatoeba"]:
        lines = (t.predictions("tatoeba") / f"test-{lang}.tsv").read_text().splitlines()
        n = len(evaluated("tatoeba", lang))
        assert len(lines) == n and all(0 <= int(x) < n for x in lines), lang
        right = sum(int(x) == i for i, x in enumerate(lines))
        assert logged[f"tatoeba.{lang}.accuracy"] == pytest.approx(100.0 * right / n)


def test_retrieval_bucc_without_training(trial):
    t = trial("none-bucc", intermediate_task="none", target_task="bucc")
    check_untrained(t)
    logged = check_logged(t, "bucc")
    bucc = get_task("bucc")
    for lang in FIXTURE_LANGS["bucc"]:
        corpus = xdata.load_bucc(bucc, "test", lang, FIXTURES)
        src, trg = set(corpus.src_ids[:MAX_EVAL]), set(corpus.trg_ids[:MAX_EVAL])
        pairs = [p.split("\t") for p in (t.predictions("bucc") / f"test-{lang}.tsv").read_text()
                 .splitlines()]  # fmt: skip
        assert all(len(p) == 2 and p[0] in src and p[1] in trg for p in pairs), lang
        assert len({p[0] for p in pairs}) == len(pairs)  # each sentence mined at most once
        assert set(logged) >= {f"bucc.{lang}.{m}" for m in ("f1", "precision", "recall")}


# --------------------------------------------------------------------------- dual encoder


def chance_map_at_20(pool_size: int, relevant: int) -> float:
    """Expected mAP@20 (0-100) of a random ranking: rank i holds a relevant item with
    probability r/N, and then precision@i averages 1 + (r-1)(i-1)/(N-1) hits over i ranks."""
    n, r = pool_size, relevant
    total = sum((r / n) * (1 + (r - 1) * (i - 1) / max(n - 1, 1)) / i for i in range(1, 21))
    return 100.0 * total / min(r, 20)


def check_pool_exports(t: Trial, task: str) -> dict:
    """Each language's exported rankings score (dual_encoder.score_export, from the pool's gold)
    exactly what the run logged; returns the logged metrics."""
    from xscale.tasks.dual_encoder import score_export

    logged = check_logged(t, task)
    langs = list(FIXTURE_LANGS[task])
    pool = xdata.load_pool(get_task(task), FIXTURES, langs, limit=MAX_EVAL)
    ids = [c for c, _ in pool.candidates]
    for lang in langs:
        gold = {qid: {ids[j] for j in rel} for qid, _, rel in pool.queries[lang]}
        path = t.predictions(task) / f"test-{lang}.jsonl"
        assert all(len(json.loads(x)["ranking"]) == 20 for x in path.read_text().splitlines())
        assert score_export(path, gold) == pytest.approx(logged[f"{task}.{lang}.map_at_20"])
    return logged


def test_dual_encoder_lareqa_trained_on_squad_pairs(trial):
    t = trial("none-lareqa", intermediate_task="none", target_task="lareqa")
    # LAReQA's target stage trains on English SQuAD, selecting on passages held out of it
    train = xdata.load_examples(get_task("lareqa"), "train", "en", FIXTURES)
    assert t.result("target")["train_examples"] == len(train)
    assert {e.fields["context"] for e in train}.isdisjoint(
        e.fields["context"] for e in xdata.load_examples(get_task("lareqa"), "dev", "en", FIXTURES)
    )
    check_pool_exports(t, "lareqa")


def test_dual_encoder_mewslix_learns_above_chance(trial):
    t = trial(
        "none-mewslix",
        intermediate_task="none",
        target_task="mewslix",
        target={"max_steps": 60, "batch_size": 16, "max_length": 96},
    )
    logged = check_pool_exports(t, "mewslix")
    pool = xdata.load_pool(get_task("mewslix"), FIXTURES, ["en"])
    chance = chance_map_at_20(len(pool.candidates), 1)  # one gold entity among 190: 1.9
    for lang in FIXTURE_LANGS["mewslix"]:
        assert logged[f"mewslix.{lang}.map_at_20"] > 3 * chance, (lang, logged)


# --------------------------------------------------------------------------- mixture, MLM


def test_mixture_mnli_sst2_to_xnli(trial):
    t = trial(
        "mix-xnli",
        intermediate_task="mnli+sst2",
        mixture_cap=40,
        intermediate={"max_steps": 6},
    )
    inter = t.stage("intermediate")
    assert inter.mixture == ("mnli", "sst2")
    result = t.result("intermediate")
    assert result["train_examples"] == 80  # 40 per task
    for name in ("mnli", "sst2"):
        assert 0 <= result["metrics"][f"dev.{name}.score"] <= 100
    params = t.run("intermediate").data.params
    assert params["stage_task"] == "mix:mnli+sst2"
    assert t.run("target").data.params["intermediate_task"] == "mix:mnli+sst2"
    check_logged(t, "xnli")
    check_label_files(t, "xnli")


def test_continued_mlm_during_the_intermediate_task(trial):
    t = trial(
        "cmlm-xnli",
        intermediate_task="mnli",
        intermediate={"continued_mlm": 0.3, "max_steps": 6},
        target_task="xnli",
    )
    assert t.stage("intermediate").hparams.continued_mlm == 0.3
    assert "30% MLM steps" in t.proc.stderr
    assert t.result("intermediate")["steps"] == 6
    check_logged(t, "xnli")
    check_label_files(t, "xnli")


# --------------------------------------------------------------------------- training languages


def test_train_languages_all(trial):
    t = trial(
        "all-xnli",
        intermediate_task="none",
        target_task="xnli",
        train_languages="all",
        target={"max_train_examples": 30},
    )
    result = t.result("target")
    assert result["train_examples"] == 30 * len(FIXTURE_LANGS["xnli"])  # 30 in each language
    assert t.run("target").data.params["train_languages"] == "all"
    check_logged(t, "xnli")
    check_label_files(t, "xnli")


def test_train_languages_in_language(trial):
    t = trial(
        "inlang-xnli",
        intermediate_task="none",
        target_task="xnli",
        train_languages="in-language",
        target={"max_train_examples": 30, "checkpoint_every": 2},
    )
    langs = FIXTURE_LANGS["xnli"]
    # each language's model checkpointed into its own ckpt-<lang>/; none is left once complete
    assert not list(t.dir("target").glob("ckpt*"))
    result = t.result("target")
    assert result["train_languages"] == sorted(langs)
    assert result["steps"] == 4 * len(langs)  # one 4-step model per language
    for lang in langs:  # one model per language, each trained and tested on its language
        saved = json.loads((t.dir("target") / f"lang-{lang}.json").read_text())
        part = saved["result"]  # and its scores, kept for a resume
        assert part["train_examples"] == 30 and part["steps"] == 4
        assert set(saved["scores"]) >= {lang}
        scored = {k.split(".")[1] for k in part["metrics"] if k.startswith("xnli.")}
        assert scored - {"avg", "avg_non_en", "gap_en"} == {lang}
    logged = check_logged(t, "xnli")
    for lang in langs:
        assert 0 <= logged[f"dev.{lang}.score"] <= 100
    assert t.run("target").data.params["train_languages"] == "in-language"
    check_label_files(t, "xnli")


def test_multilingual_intermediate_task(trial):
    t = trial(
        "xnli3-pawsx",
        intermediate_task="xnli",
        intermediate_languages=["en", "de", "fr"],
        intermediate={"max_train_examples": 20},
        target_task="pawsx",
    )
    inter = t.stage("intermediate")
    assert inter.train_languages == "de+en+fr"
    assert t.run("intermediate").data.params["train_languages"] == "de+en+fr"
    assert t.result("intermediate")["train_examples"] == 60  # 20 in each of the 3 languages
    assert "[de+en+fr]" in t.proc.stderr
    check_logged(t, "pawsx")
    check_label_files(t, "pawsx")
