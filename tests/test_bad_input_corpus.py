"""The bad-input contract across every command that reads user input: `sweep`, `plan`, `run`,
`status`, `analyze` and `sync` each answer a malformed file, flag or folder with exactly one line
on stderr (`xscale: error: ...`) naming the file and the key path or line, exit code 2, and
nothing written anywhere.

The CLI runs in this process (`xscale.cli.main`), so the corpus stays fast; tests/test_cli_run.py
and tests/test_paths.py run a subset through real subprocesses.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from test_sweep_config import BAD, BASE

from xscale.cli import main


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under `root` with its size and modification time."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.stat()
            out[str(p.relative_to(root))] = (st.st_size if p.is_file() else -1, st.st_mtime_ns)
    return out


def refused(capsys, root: Path, argv: list[str], *needles: str) -> str:
    """Run `xscale argv` in `root`; assert the one-line contract and that nothing was written."""
    before = snapshot(root)
    code = main(argv)
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert code == 2, f"exit {code}: {captured.err}"
    assert len(lines) == 1, f"{len(lines)} lines on stderr:\n{captured.err}"
    assert lines[0].startswith("xscale: error: "), lines[0]
    assert captured.out == "", captured.out
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    assert snapshot(root) == before, "the command wrote something"
    return lines[0]


@pytest.fixture
def work(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


# --------------------------------------------------------------------------- sweep and plan

IDS = [b[0] for b in BAD]


@pytest.mark.parametrize("command", ["sweep", "plan"])
@pytest.mark.parametrize("text, expected", [b[1:] for b in BAD], ids=IDS)
def test_malformed_sweep_file(command, text, expected, work, capsys):
    path = work / "bad_sweep.yaml"
    path.write_text(text)
    refused(capsys, work, [command, "bad_sweep.yaml"], "bad_sweep.yaml:", expected)


def _sweep(work: Path, text: str) -> str:
    (work / "s.yaml").write_text(text)
    return "s.yaml"


SWEEP_CASES = {
    "not utf-8": (BASE.encode() + b"# caf\xe9\n", ("s.yaml", "line 7", "UTF-8")),
    "output_dir is a file": (BASE.replace("output_dir: out", "output_dir: afile"), ("output_dir",)),
    "output_dir under a file": (
        BASE.replace("output_dir: out", "output_dir: afile/out"),
        ("output_dir", "cannot be created"),
    ),
    "tracking_uri scheme": (BASE + "tracking_uri: ftp://host/x\n", ("tracking_uri", "ftp://")),
    "missing data root": (
        BASE + "data: {root: fixtures, tasks: {xnli: ../nowhere}}\n",
        ("data.tasks.xnli", "nowhere"),
    ),
    "empty file": ("", ("s.yaml",)),
    # non-finite and out-of-range numbers (issue 27): each names its key
    "learning_rate .inf": (BASE + "target: {learning_rate: .inf}\n", ("target.learning_rate",)),
    "weight_decay .inf": (BASE + "target: {weight_decay: .inf}\n", ("target.weight_decay",)),
    "alignment .inf": (BASE + "pretrain: {alignment: .inf}\n", ("pretrain.alignment", "finite")),
    "epochs .nan": (BASE + "target: {epochs: .nan}\n", ("target.epochs", "finite")),
    "epochs .inf": (BASE + "target: {epochs: .inf}\n", ("target.epochs", "finite")),
    "epochs past a bound": (BASE + "target: {epochs: 1.0e9}\n", ("target.epochs",)),
    "loguniform to .inf": (
        BASE
        + "search: {method: optuna, num_samples: 2}\n"
        + "target: {learning_rate: {loguniform: [1.0e-5, .inf]}}\n",
        ("target.learning_rate.loguniform.1", "finite"),
    ),
    "seed past 64 bits": (
        BASE.replace("seeds: [0]", "seeds: [18446744073709551616]"),
        ("seeds.0",),
    ),
    "negative seed": (BASE.replace("seeds: [0]", "seeds: [-1]"), ("seeds.0",)),
    "max_steps past a bound": (
        BASE + "target: {max_steps: 100000000000000000}\n",
        ("target.max_steps", "out of range"),
    ),
    # hostile or uncommon YAML
    "5000-deep nesting": (BASE + "x: " + "[" * 5000 + "]" * 5000 + "\n", ("nested too deeply",)),
    "5000-digit integer": (
        BASE.replace("seeds: [0]", "seeds: [" + "9" * 5000 + "]"),
        ("too many digits",),
    ),
    "look-alike key": (BASE.replace("name: t", "n\u0430me: t"), ("unknown key", "U+0430")),
    "only a comment": ("# nothing\n", ("s.yaml",)),
    # stores and folders that can never be used (issue 27, items 8 and 12): `sweep` refuses them
    # before anything runs; `plan` only reads, often away from the cluster, and lets them be
    "tracking store: a folder": (
        BASE + "tracking_uri: sqlite:///adir\n",
        ("s.yaml: tracking_uri", "adir is a folder"),
    ),
    "tracking store: in /proc": (
        BASE + "tracking_uri: sqlite:////proc/xscale/mlflow.db\n",
        ("s.yaml: tracking_uri", "/proc"),
    ),
    "tracking store: no driver": (
        BASE + "tracking_uri: postgresql://bob@db.invalid/ml\n",
        ("s.yaml: tracking_uri", "driver", "pip install"),
    ),
    "output_dir in /proc": (BASE.replace("output_dir: out", "output_dir: /proc/x"), ("/proc",)),
    "output_dir /": (BASE.replace("output_dir: out", "output_dir: /"), ("output_dir: /",)),
    "output_dir /etc": (BASE.replace("output_dir: out", "output_dir: /etc"), ("/etc",)),
}
SWEEP_ONLY = ("output_dir", "tracking store")


@pytest.mark.parametrize("command", ["sweep", "plan"])
@pytest.mark.parametrize("case", list(SWEEP_CASES))
def test_sweep_file_problems(command, case, work, capsys):
    text, needles = SWEEP_CASES[case]
    (work / "afile").write_text("x")
    (work / "adir").mkdir()
    path = work / "s.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    if command == "plan" and case.startswith(SWEEP_ONLY):
        pytest.skip("plan only reads: a folder or store it cannot write is not its concern")
    if case == "tracking store: no driver" and _installed("psycopg"):
        pytest.skip("psycopg is installed here: the driver check has nothing to refuse")
    if command == "plan" and case == "missing data root":
        pytest.skip("plans are made away from the cluster whose data roots they name: a warning")
    refused(capsys, work, [command, "s.yaml"], *needles)


# data files that exist but cannot be trained or scored on (issue 27, item 7): preflight reads
# what each stage will read, so the sweep stops before Ray starts, naming the file (and line)
DATA_CASES = {
    "pretraining text not utf-8": ("pretrain/de.txt", b"caf\xe9 au lait\n", True, ("de.txt:",)),
    "empty pretraining text": ("pretrain/en.txt", b"\n\n", False, ("en.txt", "no text")),
    "empty test file": ("xtreme/xnli/test-de.tsv", b"", False, ("xnli", "'de'", "no examples")),
}


@pytest.mark.parametrize("case", list(DATA_CASES))
def test_data_file_problems(case, work, capsys):
    import shutil

    from xscale.data import FIXTURES_DIR

    rel, data, append, needles = DATA_CASES[case]
    shutil.copytree(FIXTURES_DIR, work / "data")
    target = work / "data" / rel
    target.write_bytes((target.read_bytes() if append else b"") + data)
    text = BASE.replace("[tiny-xs, tiny-s]", "[tiny-xs]").replace(", pawsx]", "]")
    refused(capsys, work, ["sweep", _sweep(work, text + "data: {root: data}\n")], *needles)


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def test_sweep_into_another_sweeps_folder(work, capsys):
    """A link to another study's folder (issue 27, item 12): its manifest is not replaced."""
    (work / "other").mkdir()
    (work / "other" / "sweep.json").write_text('{"name": "study", "groups": {}}')
    (work / "link").symlink_to(work / "other")
    text = BASE.replace("output_dir: out", "output_dir: link")
    line = refused(capsys, work, ["sweep", _sweep(work, text)], "output_dir", "'study'")
    assert "a link to" in line and str(work / "other") in line


@pytest.mark.parametrize(
    "flags, needles",
    [
        (["--tracking-uri", "ftp://x/y"], ("--tracking-uri", "ftp://")),
        # a credential in a refused URI is not echoed (issue 27, item 1)
        (["--tracking-uri", "ftp://bob:PW1234567@x/y"], ("--tracking-uri", "ftp://***@x/y")),
        (
            ["--tracking-uri", "mysql://bob:PW1234567@db/ml"],
            ("--tracking-uri", "mysql://***@db/ml", "MLFLOW_TRACKING_PASSWORD"),
        ),
        (["--output-dir", "afile"], ("output_dir", "afile")),
    ],
)
def test_sweep_flags(flags, needles, work, capsys):
    (work / "afile").write_text("x")
    line = refused(capsys, work, ["sweep", _sweep(work, BASE), *flags], *needles)
    assert "PW1234567" not in line


def test_missing_sweep_file(work, capsys):
    for command in ("sweep", "plan"):
        refused(capsys, work, [command, "nope.yaml"], "nope.yaml", "no such file")


# --------------------------------------------------------------------------- run

TRIAL = {
    "model": "tiny-xs",
    "intermediate_task": "mnli",
    "target_task": "xnli",
    "data": {"root": "fixtures"},
}

RUN_CASES = {
    "unknown size": ({"model": "tiny-zz"}, ("'tiny-zz'",)),
    "unknown target": ({"target_task": "foo"}, ("target_task", "'foo'")),
    "unknown intermediate": ({"intermediate_task": "foo"}, ("intermediate_task", "'foo'")),
    "target as intermediate": ({"intermediate_task": "xquad"}, ("'xquad'", "intermediate")),
    "unknown key": ({"target": {"learnin_rate": 1.0}}, ("target.learnin_rate", "unknown key")),
    "bad value": ({"target": {"batch_size": "many"}}, ("target.batch_size",)),
    "negative steps": ({"target": {"max_steps": -3}}, ("target.max_steps",)),
    "unknown language": ({"eval_languages": ["en", "qq"]}, ("'qq'",)),
    "tiny size from the hub": ({"data": {"root": "hub"}}, ("pretrain",)),
    "bad tracking uri in flags": ({}, ("--tracking-uri",)),
}


@pytest.mark.parametrize("case", list(RUN_CASES))
def test_malformed_trial(case, work, capsys):
    over, needles = RUN_CASES[case]
    (work / "t.yaml").write_text(yaml.safe_dump({**TRIAL, **over}))
    argv = ["run", "--config", "t.yaml", "--output-dir", "out"]
    if case == "bad tracking uri in flags":
        argv += ["--tracking-uri", "ftp://x"]
    line = refused(capsys, work, argv, *needles)
    if case != "bad tracking uri in flags" and "tracking" not in case:
        assert "t.yaml" in line or "--" in line, line


def test_trial_file_not_utf8_or_not_yaml(work, capsys):
    (work / "t.yaml").write_bytes(b"model: tiny-xs\ntarget_task: xnli\n# caf\xe9\n")
    refused(capsys, work, ["run", "--config", "t.yaml", "--output-dir", "o"], "t.yaml", "line 3")
    (work / "t.yaml").write_text("model: [tiny-xs\n")
    refused(capsys, work, ["run", "--config", "t.yaml", "--output-dir", "o"], "t.yaml", "line")
    refused(capsys, work, ["run", "--config", "nope.yaml", "--output-dir", "o"], "nope.yaml")


def test_run_output_dir_that_is_a_file(work, capsys):
    (work / "t.yaml").write_text(yaml.safe_dump(TRIAL))
    (work / "afile").write_text("x")
    refused(capsys, work, ["run", "--config", "t.yaml", "--output-dir", "afile"], "--output-dir")


# --------------------------------------------------------------------------- status, analyze, sync


def _folder(work: Path, manifest: bytes | None) -> str:
    d = work / "d"
    d.mkdir()
    if manifest is not None:
        (d / "sweep.json").write_bytes(manifest)
    return "d"


FOLDER_CASES = {
    "no sweep.json": (None, ("not a sweep folder",)),
    "corrupt json": (b"{bad", ("sweep.json", "corrupt")),
    "not a manifest": (b"[1, 2]", ("sweep.json", "not an xscale sweep manifest")),
    "not utf-8": (b"\xff\xfe{}", ("sweep.json", "corrupt")),
}


@pytest.mark.parametrize("case", list(FOLDER_CASES))
def test_status_of_a_bad_folder(case, work, capsys):
    manifest, needles = FOLDER_CASES[case]
    refused(capsys, work, ["status", _folder(work, manifest)], *needles)


@pytest.mark.parametrize("case", [c for c in FOLDER_CASES if c != "no sweep.json"])
def test_analyze_of_a_bad_folder(case, work, capsys):
    manifest, needles = FOLDER_CASES[case]
    refused(capsys, work, ["analyze", _folder(work, manifest)], *needles)


@pytest.mark.parametrize(
    "argv, needles",
    [
        (["status", "nowhere"], ("nowhere", "no such folder")),
        (["analyze", "nowhere"], ("nowhere", "mlflow.db")),
        (["analyze"], ("give a sweep folder",)),
        (["analyze", "--tracking-uri", "ftp://x", "--experiment", "e"], ("--tracking-uri",)),
        (["sync", "nowhere"], ("nowhere", "not the output folder")),
        (["sync", "."], ("not the output folder",)),
    ],
)
def test_read_commands_on_bad_arguments(argv, needles, work, capsys):
    refused(capsys, work, argv, *needles)


def test_analyze_of_a_server_that_does_not_answer(work, capsys):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = ["analyze", "--tracking-uri", f"http://127.0.0.1:{port}", "--experiment", "e"]
    refused(capsys, work, argv, "does not answer")


def test_the_corpus_is_large(request):
    """At least 60 malformed inputs across the commands (issue 11, item 9)."""
    items = [i for i in request.session.items if i.module.__name__ == __name__]
    cases = [i for i in items if i.name != "test_the_corpus_is_large"]
    assert len(cases) >= 60, len(cases)


def test_plan_warns_about_a_data_root_that_is_not_here(work, capsys):
    (work / "s.yaml").write_text(BASE + "data: {root: fixtures, tasks: {xnli: /shared/nowhere}}\n")
    assert main(["plan", "s.yaml"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("xscale: warning: s.yaml: data.tasks.xnli")
