"""`xscale run` on bad input: one line on stderr, exit code 2, before any training or tracking.

Every case runs the real CLI (`xscale.cli.main`) and checks that stderr is exactly one non-empty
line `xscale: error: ...` (nothing filtered: a library warning printed first is a failure; the
output is captured at the file-descriptor level, so a C library's write counts too), that
stdout is empty, and that the output folder was never created (so no `mlflow.db`, no `stages/`).
The cases run in this process (`cli`): a subprocess per case cost the suite minutes of
interpreter start-up. What needs a fresh interpreter (the hub's offline cache settings, read
when huggingface_hub is imported) and the informational subcommands (`--help`, `run --help`,
`sizes`, `tasks`) run in a subprocess (`xscale_cli`).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from xscale.catalog.sizes import SIZES, human_params
from xscale.cli import main
from xscale.data import FIXTURES_DIR
from xscale.tasks.registry import TASKS


def assert_usage_error(proc, out_dir: Path, *needles: str) -> str:
    """The one-line error contract; returns the message (after `xscale: error: `)."""
    lines = [line for line in proc.stderr.split("\n") if line.strip()]
    assert proc.returncode == 2, f"exit {proc.returncode}; stderr:\n{proc.stderr}"
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{proc.stderr}"
    assert lines[0].startswith("xscale: error: "), lines[0]
    assert proc.stdout == "", proc.stdout
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    # Nothing trained, nothing tracked: the output folder was never made.
    assert not (out_dir / "mlflow.db").exists()
    assert not list(out_dir.glob("stages/*/COMPLETE"))
    assert not out_dir.exists(), sorted(p.name for p in out_dir.iterdir())
    return lines[0][len("xscale: error: ") :]


def run_config(xscale_cli, tmp_path, trial_yaml, env=None, **overrides):
    cfg = trial_yaml(tmp_path / "trial.yaml", **overrides)
    out = tmp_path / "out"
    return xscale_cli("run", "--config", str(cfg), "--output-dir", str(out), env=env), out


@pytest.fixture
def cli(capfd, monkeypatch):
    """`cli(*args, env=None)`: the CLI in this process, as `xscale_cli` runs it in a subprocess:
    a CompletedProcess with its exit code and what it wrote to file descriptors 1 and 2."""

    def run(*args: str, env: dict | None = None, **_):
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, value)
        capfd.readouterr()
        try:
            code = main(list(args))
        except SystemExit as e:  # argparse's usage errors
            code = e.code if isinstance(e.code, int) else 0 if e.code is None else 2
        out, err = capfd.readouterr()
        return subprocess.CompletedProcess(list(args), code, out, err)

    return run


@pytest.fixture
def data_copy(tmp_path) -> Path:
    """A writable copy of the shipped fixture data root, to break."""
    root = tmp_path / "data"
    shutil.copytree(FIXTURES_DIR, root)
    return root


def replace_line(path: Path, index: int, text: str) -> int:
    """Replace the 0-based line `index` of `path`; returns its 1-based line number."""
    lines = path.read_text(encoding="utf-8").split("\n")
    lines[index] = text
    path.write_text("\n".join(lines), encoding="utf-8")
    return index + 1


# --------------------------------------------------------------------------- names and roles

NAME_CASES = {
    "unknown size": ({"model": "tiny-zz"}, ("'tiny-zz'", "tiny-xs", "xlmr-base")),
    "unknown target task": ({"target_task": "xnlii"}, ("target_task", "'xnlii'", "xnli")),
    "unknown intermediate task": ({"intermediate_task": "mnlii"}, ("intermediate_task", "'mnlii'")),
    "target task as target": ({"target_task": "mnli"}, ("'mnli'", "target")),
    "target task as intermediate": ({"intermediate_task": "xquad"}, ("'xquad'", "intermediate")),
    "unknown eval language": ({"eval_languages": ["en", "qq"]}, ("'qq'", "xnli")),
    "unknown yaml key": (
        {"intermediate": {"learnin_rate": 1e-3}},
        ("intermediate.learnin_rate", "unknown key", "trial.yaml"),
    ),
    "bad value type": ({"target": {"batch_size": "many"}}, ("target.batch_size",)),
    "tiny size with hub data": ({"data": {"root": "hub"}}, ("pretrain", "fixtures")),
}


@pytest.mark.parametrize("case", list(NAME_CASES))
def test_bad_names_and_values(case, cli, tmp_path, trial_yaml):
    overrides, needles = NAME_CASES[case]
    proc, out = run_config(cli, tmp_path, trial_yaml, **overrides)
    assert_usage_error(proc, out, *needles)


@pytest.mark.parametrize(
    "flags, needles",
    [
        (["--model", "huge"], ("'huge'",)),
        (["--eval-languages", "en,qq"], ("'qq'",)),
    ],
    ids=["model", "eval-languages"],
)
def test_bad_flags_override_the_config(flags, needles, cli, tmp_path, trial_yaml):
    cfg = trial_yaml(tmp_path / "trial.yaml")
    out = tmp_path / "out"
    proc = cli("run", "--config", str(cfg), *flags, "--output-dir", str(out))
    assert_usage_error(proc, out, *needles)


def test_run_without_config_or_model(cli, tmp_path):
    out = tmp_path / "out"
    proc = cli("run", "--output-dir", str(out))
    assert_usage_error(proc, out, "--config")


# --------------------------------------------------------------------------- YAML files


def test_invalid_yaml(cli, tmp_path):
    cfg = tmp_path / "trial.yaml"
    cfg.write_text("model: tiny-xs\ntarget_task: [xnli\n")
    out = tmp_path / "out"
    proc = cli("run", "--config", str(cfg), "--output-dir", str(out))
    assert_usage_error(proc, out, str(cfg), "invalid YAML", "line")


def test_yaml_that_is_not_a_mapping(cli, tmp_path):
    cfg = tmp_path / "trial.yaml"
    cfg.write_text("- tiny-xs\n- xnli\n")
    out = tmp_path / "out"
    proc = cli("run", "--config", str(cfg), "--output-dir", str(out))
    assert_usage_error(proc, out, str(cfg), "mapping")


def test_missing_config_file(cli, tmp_path):
    out = tmp_path / "out"
    proc = cli("run", "--config", str(tmp_path / "nope.yaml"), "--output-dir", str(out))
    assert_usage_error(proc, out, "nope.yaml")


# --------------------------------------------------------------------------- data files


def test_missing_target_test_file(cli, tmp_path, trial_yaml, data_copy):
    missing = data_copy / "xtreme" / "xnli" / "test-de.tsv"
    missing.unlink()
    proc, out = run_config(
        cli,
        tmp_path,
        trial_yaml,
        intermediate_task="none",
        data={"root": str(data_copy)},
        # as short as it gets, should it ever train before failing
        pretrain={"max_steps": 2, "max_lines_per_language": 100},
        target={"max_steps": 2, "max_eval_examples": 8},
    )
    assert_usage_error(proc, out, "test-de.tsv")


def test_missing_test_file_for_a_requested_language(cli, tmp_path, trial_yaml, data_copy):
    (data_copy / "xtreme" / "xnli" / "test-de.tsv").unlink()
    proc, out = run_config(
        cli,
        tmp_path,
        trial_yaml,
        eval_languages=["en", "de"],
        data={"root": str(data_copy)},
    )
    assert_usage_error(proc, out, "'de'", str(data_copy))


@pytest.mark.parametrize(
    "relative",
    ["intermediate/mnli/train.tsv", "pretrain/zh.txt"],
)
def test_missing_data_file(relative, cli, tmp_path, trial_yaml, data_copy):
    (data_copy / relative).unlink()
    proc, out = run_config(cli, tmp_path, trial_yaml, data={"root": str(data_copy)})
    assert_usage_error(proc, out, str(data_copy / relative))


@pytest.mark.parametrize("task", ["lareqa", "mewslix"])
def test_retrieval_pool_from_the_hub_is_refused_before_training(task, cli, tmp_path, trial_yaml):
    """LAReQA / Mewsli-X have no release-form hub copy: refused in preflight, before the hub
    download of their training data and before anything trains."""
    data = {"root": "hub", "tasks": {"pretrain": "fixtures"}}
    proc, out = run_config(
        cli, tmp_path, trial_yaml, intermediate_task="none", target_task=task, data=data
    )
    assert_usage_error(proc, out, f"task {task}", "download", f"data.tasks.{task}")


def test_mewslix_mention_off_its_text(cli, tmp_path, trial_yaml, data_copy):
    path = data_copy / "xtreme" / "mewslix" / "wikinews_mentions-test.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    row = json.loads(lines[5])
    row["mentions"][0]["mention_span"]["start"] += 1
    lines[5] = json.dumps(row)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    proc, out = run_config(
        cli,
        tmp_path,
        trial_yaml,
        intermediate_task="none",
        target_task="mewslix",
        data={"root": str(data_copy)},
    )
    assert_usage_error(proc, out, f"{path}:6.mentions[0]", "is not at")


@pytest.mark.parametrize("relative", ["xtreme/xnli/test-de.tsv", "intermediate/mnli/train.tsv"])
def test_data_file_that_is_not_utf8(relative, cli, tmp_path, trial_yaml, data_copy):
    path = data_copy / relative
    lines = path.read_bytes().split(b"\n")
    lines[6] = b"caf\xe9\t" + lines[6]  # Latin-1, not UTF-8, on line 7
    path.write_bytes(b"\n".join(lines))
    proc, out = run_config(cli, tmp_path, trial_yaml, data={"root": str(data_copy)})
    assert_usage_error(proc, out, f"{path}:7", "not valid UTF-8")


def test_data_root_that_is_not_a_folder(cli, tmp_path, trial_yaml):
    proc, out = run_config(cli, tmp_path, trial_yaml, data={"root": str(tmp_path / "no")})
    assert_usage_error(proc, out, str(tmp_path / "no"))


@pytest.mark.parametrize(
    "relative, index, text, needle",
    [
        # a test row of a non-English language, far from the first rows
        ("xtreme/xnli/test-fr.tsv", 6, "only one column", "3 tab-separated columns"),
        ("intermediate/mnli/train.tsv", 10, None, "'maybe'"),
    ],
    ids=["xnli-columns", "mnli-label"],
)
def test_malformed_data_row(relative, index, text, needle, cli, tmp_path, trial_yaml, data_copy):
    path = data_copy / relative
    if text is None:  # keep the MNLI columns, break the gold label (last column)
        line = path.read_text(encoding="utf-8").split("\n")[index]
        text = line.rsplit("\t", 1)[0] + "\tmaybe"
    number = replace_line(path, index, text)
    proc, out = run_config(cli, tmp_path, trial_yaml, data={"root": str(data_copy)})
    assert_usage_error(proc, out, f"{path}:{number}", needle)


# --------------------------------------------------------------------------- DeepSpeed config


@pytest.mark.parametrize(
    "config, needles",
    [
        ({"zero_optimizaton": {"stage": 2}}, ("zero_optimizaton", "zero_optimization")),
        ({"zero_optimization": {"stage": 7}}, ("zero_optimization.stage",)),
        ({"zero_optimization": {"stage": 2, "overlap_com": True}}, ("overlap_com",)),
        ('{"zero_optimization": {"stage": 2,}}', ("invalid JSON", "line 1")),
    ],
    ids=["unknown-key", "bad-stage", "unknown-zero-key", "bad-json"],
)
def test_invalid_deepspeed_config(config, needles, cli, tmp_path, trial_yaml):
    ds = tmp_path / "ds.json"
    ds.write_text(config if isinstance(config, str) else json.dumps(config))
    proc, out = run_config(cli, tmp_path, trial_yaml, deepspeed_config=str(ds))
    assert_usage_error(proc, out, str(ds), *needles)


# --------------------------------------------------------------------------- real sizes offline


def test_real_size_offline_without_weights(xscale_cli, tmp_path, trial_yaml):
    """Fails in preflight (not after loading data for minutes, not with a traceback), naming
    the hub id and both ways to provide the weights. HF_HOME is an empty folder, so no cache."""
    env = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf-home")}
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "TRANSFORMERS_CACHE"):
        env[var] = str(tmp_path / "hf-home" / "hub")
    proc, out = run_config(
        xscale_cli,
        tmp_path,
        trial_yaml,
        env=env,
        model="xlmr-base",
    )
    message = assert_usage_error(proc, out, "FacebookAI/xlm-roberta-base")
    assert "model_path" in message or "--model-path" in message
    assert "HF_HOME" in message or "cache" in message


# --------------------------------------------------------------------------- informational


def test_help(xscale_cli):
    proc = xscale_cli("--help")
    assert proc.returncode == 0, proc.stderr
    for command in ("run", "sizes", "tasks"):
        assert command in proc.stdout


def test_run_help(xscale_cli):
    proc = xscale_cli("run", "--help")
    assert proc.returncode == 0, proc.stderr
    for flag in ("--config", "--model", "--intermediate", "--target", "--output-dir"):
        assert flag in proc.stdout


def test_no_command_is_a_usage_error(xscale_cli):
    proc = xscale_cli()
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("xscale: error:")


def test_sizes_lists_every_size_with_its_params(xscale_cli):
    proc = xscale_cli("sizes")
    assert proc.returncode == 0, proc.stderr
    rows = {line.split()[0]: line for line in proc.stdout.splitlines() if line.strip()}
    for name, size in SIZES.items():
        assert name in rows, f"{name} missing from:\n{proc.stdout}"
        assert human_params(size.params) in rows[name].split()
        if size.hub_id:
            assert size.hub_id in rows[name]


def test_tasks_lists_every_task_with_its_roles(xscale_cli):
    proc = xscale_cli("tasks")
    assert proc.returncode == 0, proc.stderr
    rows = {line.split()[0]: line.split() for line in proc.stdout.splitlines() if line.strip()}
    for name, task in TASKS.items():
        assert name in rows
        assert ",".join(task.roles) in rows[name]
        assert set(task.languages) <= set(rows[name])
