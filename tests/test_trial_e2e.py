"""End to end through the CLI: `xscale run` on tiny-xs, stage folders, result.json and MLflow.

All trials share one output folder and one MLflow experiment, so tiny-xs is pretrained once (by
the mnli -> xnli trial, which every other test requests first) and reused. What each test owns is
found by stage key (`xscale.pipeline.trial_stages`, a pure function of the trial file) and by the
trial's parent run (tag `xscale.parent_uid` = `trial-<target key>`).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from statistics import fmean

import mlflow
import pytest
from conftest import PHASE_PARAMS, Trial

from xscale.catalog.sizes import get_size
from xscale.graph.expand import trial_stages
from xscale.graph.stage import StageSpec, stage_dir
from xscale.sweep.trial import load_trial

pytestmark = pytest.mark.slow

EXPERIMENT = "e2e"
XNLI_LANGS = ("en", "de", "es", "fr", "zh")
PAWSX_LANGS = ("en", "de", "es", "fr")  # the languages of the shipped PAWS-X fixtures


def run_args(config: Path, out: Path) -> list[str]:
    return ["run", "--config", str(config), "--output-dir", str(out), "--experiment", EXPERIMENT]


def run_trial(xscale_cli, trial_yaml, out: Path, name: str, **overrides) -> Trial:
    config = trial_yaml(out.parent / f"{out.name}-{name}.yaml", **overrides)
    proc = xscale_cli(*run_args(config, out))
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stderr[-3000:]}"
    return Trial(config, out, trial_stages(load_trial(config)), proc)


def search_runs(out: Path) -> list:
    """All runs of the experiment, read back with MLflow's own search API."""
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{out / 'mlflow.db'}")
    try:
        return mlflow.search_runs(experiment_names=[EXPERIMENT], output_format="list")
    finally:
        mlflow.set_tracking_uri(previous)


def parent_run(runs: list, trial: Trial):
    uid = f"trial-{trial.stage('target').key}"
    (run,) = [r for r in runs if r.data.tags.get("xscale.parent_uid") == uid]
    return run


def stage_runs(runs: list, key: str) -> list:
    return [r for r in runs if r.data.tags.get("xscale.stage_key") == key]


def children(runs: list, parent_id: str) -> list:
    return [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent_id]


def check_zero_shot(metrics: dict, task: str, langs: tuple[str, ...]) -> None:
    """Per-language scores in [0, 100] and aggregates consistent with them."""
    scores = {lang: metrics[f"{task}.{lang}.accuracy"] for lang in langs}
    for lang, v in scores.items():
        assert 0.0 <= v <= 100.0, (lang, v)
    per_lang = {k for k in metrics if k.startswith(f"{task}.") and k.endswith(".accuracy")}
    assert per_lang == {f"{task}.{lang}.accuracy" for lang in langs}
    non_en = [v for lang, v in scores.items() if lang != "en"]
    assert metrics[f"{task}.avg"] == pytest.approx(fmean(scores.values()))
    assert metrics[f"{task}.avg_non_en"] == pytest.approx(fmean(non_en))
    assert metrics[f"{task}.gap_en"] == pytest.approx(scores["en"] - fmean(non_en))


def check_phase_run(run, trial: Trial, spec: StageSpec) -> None:
    params = run.data.params
    missing = [p for p in PHASE_PARAMS if p not in params]
    assert not missing, f"{spec.kind} run lacks params {missing}"
    assert run.info.status == "FINISHED"
    assert params["model_size"] == "tiny-xs"
    assert params["model_params"] == str(get_size("tiny-xs").params)
    assert params["seed"] == "0"
    assert params["zero_stage"] == "0"  # cpu_zero2.json, resolved for one CPU process
    assert params["batch_size"] == str(spec.hparams.batch_size)
    assert float(params["learning_rate"]) == pytest.approx(spec.hparams.learning_rate)
    assert run.data.tags["xscale.stage_kind"] == spec.kind
    assert run.info.run_id == trial.result(spec.kind)["mlflow_run_id"]
    if spec.kind != "pretrain":
        cfg = load_trial(trial.config)
        assert params["intermediate_task"] == cfg.intermediate_task
        # an intermediate stage is shared by every target task, so only target runs name one
        if spec.kind == "target":
            assert params["target_task"] == cfg.target_task
        # each phase starts from its parent stage's exported model
        assert Path(params["model_source"]) == trial.out / "stages" / spec.parent / "model"


# --------------------------------------------------------------------------- (a) mnli -> xnli


@pytest.fixture(scope="module")
def base_trial(e2e_output_dir, xscale_cli, trial_yaml) -> Trial:
    """tiny-xs: pretrain -> mnli -> xnli, the first trial in the shared output folder."""
    return run_trial(xscale_cli, trial_yaml, e2e_output_dir / "out", "mnli-xnli")


def test_mnli_to_xnli_trial(base_trial, xscale_cli):
    t = base_trial
    assert [s.kind for s in t.specs] == ["pretrain", "intermediate", "target"]
    for spec in t.specs:
        where = stage_dir(t.out, spec)
        assert (where / "COMPLETE").is_file(), where
        assert (where / "model" / "config.json").is_file()
        assert not (where / "ckpt").exists()
        assert t.attempts(spec.kind) == 1
    assert t.stage("target").parent == t.stage("intermediate").key
    assert t.stage("intermediate").parent == t.stage("pretrain").key

    result = t.result("target")
    check_zero_shot(result["metrics"], "xnli", XNLI_LANGS)
    assert result["steps"] == 8 and result["resumed_from_step"] == 0
    assert "dev.accuracy" in t.result("intermediate")["metrics"]
    assert "xnli.gap_en" in t.proc.stdout

    runs = search_runs(t.out)
    parent = parent_run(runs, t)
    assert parent.info.status == "FINISHED"
    assert "mlflow.parentRunId" not in parent.data.tags
    kids = children(runs, parent.info.run_id)
    assert sorted(r.data.tags["xscale.stage_kind"] for r in kids) == [
        "intermediate",
        "pretrain",
        "target",
    ]
    for spec in t.specs:
        (run,) = stage_runs(runs, spec.key)
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        check_phase_run(run, t, spec)
    (target_run,) = stage_runs(runs, t.stage("target").key)
    logged = target_run.data.metrics
    check_zero_shot(logged, "xnli", XNLI_LANGS)
    for name, value in result["metrics"].items():
        assert logged[name] == pytest.approx(value), name

    # The same command again trains nothing and adds no run.
    again = xscale_cli(*run_args(t.config, t.out))
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stderr.count("complete, reusing") == 3
    for spec in t.specs:
        assert t.attempts(spec.kind) == 1
    runs_after = search_runs(t.out)
    assert {r.info.run_id for r in runs_after} == {r.info.run_id for r in runs}
    assert parent_run(runs_after, t).info.status == "FINISHED"


# --------------------------------------------------------------------------- (b) none baseline


def test_none_baseline_trial(base_trial, xscale_cli, trial_yaml):
    t = run_trial(xscale_cli, trial_yaml, base_trial.out, "none-xnli", intermediate_task="none")
    assert [s.kind for s in t.specs] == ["pretrain", "target"]
    pre, target = t.stage("pretrain"), t.stage("target")
    assert pre.key == base_trial.stage("pretrain").key  # one tiny-xs checkpoint for both
    assert t.attempts("pretrain") == 1  # reused, not pretrained again
    assert target.parent == pre.key
    assert (t.dir("target") / "COMPLETE").is_file()
    check_zero_shot(t.result("target")["metrics"], "xnli", XNLI_LANGS)

    runs = search_runs(t.out)
    parent = parent_run(runs, t)
    kids = children(runs, parent.info.run_id)
    assert [r.data.tags["xscale.stage_key"] for r in kids] == [target.key]
    (run,) = kids
    check_phase_run(run, t, target)
    assert run.data.params["intermediate_task"] == "none"
    check_zero_shot(run.data.metrics, "xnli", XNLI_LANGS)
    assert len(stage_runs(runs, pre.key)) == 1


# --------------------------------------------------------------------------- (c) real XNLI


@pytest.mark.shared_data
def test_real_xnli_dev_files(base_trial, shared_data, xscale_cli, trial_yaml):
    """XNLI from the real XTREME files (dev-<lang>.tsv, split by row index), MNLI from the
    fixtures: the intermediate stage is the one the base trial trained."""
    t = run_trial(
        xscale_cli,
        trial_yaml,
        base_trial.out,
        "real-xnli",
        data={"root": "fixtures", "tasks": {"xnli": str(shared_data)}},
        target={"max_train_examples": 160, "max_eval_examples": 60},
    )
    assert t.stage("intermediate").key == base_trial.stage("intermediate").key
    assert t.attempts("intermediate") == 1
    result = t.result("target")
    assert result["train_examples"] == 160
    check_zero_shot(result["metrics"], "xnli", XNLI_LANGS)

    runs = search_runs(t.out)
    (run,) = stage_runs(runs, t.stage("target").key)
    assert run.data.tags["mlflow.parentRunId"] == parent_run(runs, t).info.run_id
    check_phase_run(run, t, t.stage("target"))
    check_zero_shot(run.data.metrics, "xnli", XNLI_LANGS)


@pytest.mark.shared_data
def test_tiny_model_pretrained_on_real_xnli_text(shared_data, xscale_cli, trial_yaml, tmp_path):
    """`pretrain.corpus: xnli` on the real files: the tokenizer and the MLM see the text of
    XNLI's training rows only (the training buckets of the row-index split, row-aligned across
    languages), then the usual target stage runs on the same rows. A short budget; the measured
    full run (examples/real_xnli.yaml) is recorded in README.md."""
    from xscale import data as xdata
    from xscale.tasks.registry import get_task

    out = tmp_path / "real"
    t = run_trial(
        xscale_cli,
        trial_yaml,
        out,
        "corpus",
        model="tiny-xs",
        intermediate_task="none",
        data={"root": str(shared_data)},
        pretrain={
            "corpus": "xnli",
            "vocab_size": 5000,
            "alignment": 1.0,
            "max_steps": 40,
            "max_length": 64,
        },
        target={"max_train_examples": 200, "max_eval_examples": 60},
    )
    corpus = t.dir("pretrain") / "corpus"
    train = {
        lang: xdata.load_examples(get_task("xnli"), "train", lang, shared_data)
        for lang in XNLI_LANGS
    }
    for lang in XNLI_LANGS:
        lines = (corpus / f"{lang}.txt").read_text(encoding="utf-8").split("\n")[:-1]
        assert len(lines) == 2 * len(train[lang])  # premise and hypothesis of every row
        assert lines[0] == " ".join(train[lang][0].fields["text_a"].split())
    pre = t.result("pretrain")
    assert pre["vocab_size"] >= 0.9 * 5000
    check_zero_shot(t.result("target")["metrics"], "xnli", XNLI_LANGS)


# --------------------------------------------------------------------------- (d) resume


def test_killed_stage_resumes_from_its_checkpoint(base_trial, xscale_cli, xscale_argv, trial_yaml):
    out = base_trial.out
    config = trial_yaml(
        out.parent / "resume.yaml",
        intermediate={"epochs": 2, "max_steps": 60, "checkpoint_every": 10, "log_every": 10},
    )
    specs = trial_stages(load_trial(config))
    inter = next(s for s in specs if s.kind == "intermediate")
    where = stage_dir(out, inter)
    latest = where / "ckpt" / "latest"

    log = out.parent / "resume-killed.log"
    with open(log, "w") as f:
        proc = subprocess.Popen(
            xscale_argv(*run_args(config, out)), stdout=f, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 300
        while not (latest.is_file() and latest.read_text().strip()):
            if proc.poll() is not None:
                pytest.fail(
                    f"run ended (exit {proc.returncode}) before a checkpoint:\n"
                    + log.read_text()[-3000:]
                )
            if time.monotonic() > deadline:
                pytest.fail("no checkpoint within 300 s:\n" + log.read_text()[-3000:])
            time.sleep(0.02)
        proc.kill()  # SIGKILL: no cleanup, no FAILED status, as a lost node
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=60)
    assert proc.returncode == -9
    assert not (where / "COMPLETE").exists(), "the stage finished before it was killed"
    runs = search_runs(out)
    assert len(stage_runs(runs, inter.key)) == 1

    again = xscale_cli(*run_args(config, out))
    assert again.returncode == 0, again.stderr[-3000:]
    t = Trial(config, out, specs, again)
    result = t.result("intermediate")
    assert (where / "COMPLETE").is_file()
    assert result["resumed_from_step"] > 0
    assert result["resumed_from_step"] % 10 == 0
    assert result["steps"] == 60
    assert t.attempts("intermediate") == 2
    assert t.attempts("pretrain") == 1
    assert t.attempts("target") == 1
    assert not (where / "ckpt").exists()

    runs = search_runs(out)
    (run,) = stage_runs(runs, inter.key)  # the retry logged into the run it already had
    assert run.info.run_id == result["mlflow_run_id"]
    check_phase_run(run, t, inter)
    (target_run,) = stage_runs(runs, t.stage("target").key)
    check_zero_shot(target_run.data.metrics, "xnli", XNLI_LANGS)
    assert parent_run(runs, t).info.status == "FINISHED"


# --------------------------------------------------------------------------- (e) other tasks


@pytest.mark.parametrize("intermediate", ["anli", "sst2"])
def test_other_intermediate_tasks_to_pawsx(intermediate, base_trial, xscale_cli, trial_yaml):
    t = run_trial(
        xscale_cli,
        trial_yaml,
        base_trial.out,
        f"{intermediate}-pawsx",
        intermediate_task=intermediate,
        target_task="pawsx",
    )
    assert t.attempts("pretrain") == 1
    for kind in ("intermediate", "target"):
        assert (t.dir(kind) / "COMPLETE").is_file()
    assert 0 <= t.result("intermediate")["metrics"]["dev.accuracy"] <= 100
    check_zero_shot(t.result("target")["metrics"], "pawsx", PAWSX_LANGS)

    runs = search_runs(t.out)
    parent = parent_run(runs, t)
    for kind in ("intermediate", "target"):
        spec = t.stage(kind)
        (run,) = stage_runs(runs, spec.key)
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        check_phase_run(run, t, spec)
        assert run.data.params["stage_task"] == (
            intermediate if kind == "intermediate" else "pawsx"
        )
    (target_run,) = stage_runs(runs, t.stage("target").key)
    check_zero_shot(target_run.data.metrics, "pawsx", PAWSX_LANGS)
