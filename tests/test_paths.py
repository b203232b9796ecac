"""The path rule and the input checks that run before anything is written.

Every path a sweep file, a trial file or a flag names is made absolute when the file loads,
against the directory the command runs in, so trial processes (Ray Tune runs each in a working
directory of its own) never see a relative path. Bad paths, a tracking URI with an unusable
scheme, a YAML key given twice and bytes that are not UTF-8 get one line naming the file and the
key (or line), exit code 2, and nothing written.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from xscale.errors import XScaleError
from xscale.sweep.io import read_yaml
from xscale.sweep.schema import load_sweep
from xscale.sweep.trial import load_trial

BASE = {
    "name": "p",
    "output_dir": "runs/p",
    "models": ["tiny-xs"],
    "target_tasks": ["xnli"],
    "data": {"root": "fixtures"},
}


@pytest.fixture
def in_tmp(tmp_path, monkeypatch) -> Path:
    """Run the test from a fresh temporary working directory."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def write(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_sweep_paths_resolve_against_the_working_directory(in_tmp):
    (in_tmp / "data").mkdir()
    f = write(
        in_tmp / "sweeps" / "s.yaml",
        {
            **BASE,
            "tracking_uri": "sqlite:///store/mlflow.db",
            "data": {"root": "data", "tasks": {"pretrain": "fixtures", "xnli": "./data"}},
            "resources": {"tiny-xs": {"deepspeed_config": "cpu_zero2.json"}},
        },
    )
    cfg = load_sweep("sweeps/s.yaml")
    assert cfg.output_dir == str(in_tmp / "runs" / "p")
    assert cfg.output_path.is_absolute()
    assert cfg.data.root == str(in_tmp / "data")
    assert cfg.data.tasks == {"pretrain": "fixtures", "xnli": str(in_tmp / "data")}
    assert cfg.tracking_uri == f"sqlite:///{in_tmp / 'store' / 'mlflow.db'}"
    assert cfg.resources["tiny-xs"].deepspeed_config == "cpu_zero2.json"  # a name stays a name
    # the file's own folder does not matter: the same file loaded from elsewhere differs
    other = in_tmp / "elsewhere"
    other.mkdir()
    os.chdir(other)
    assert load_sweep(f).output_dir == str(other / "runs" / "p")


def test_default_tracking_store_is_absolute_and_flags_resolve_too(in_tmp):
    write(in_tmp / "s.yaml", BASE)
    cfg = load_sweep("s.yaml", {"output_dir": "elsewhere/out"})
    assert cfg.output_dir == str(in_tmp / "elsewhere" / "out")
    assert cfg.resolved_tracking_uri == f"sqlite:///{in_tmp / 'elsewhere' / 'out' / 'mlflow.db'}"
    cfg = load_sweep("s.yaml", {"tracking_uri": "http://127.0.0.1:5000"})
    assert cfg.tracking_uri == "http://127.0.0.1:5000"


def test_trial_paths_resolve(in_tmp):
    (in_tmp / "weights").mkdir()
    (in_tmp / "recipes").mkdir()
    (in_tmp / "recipes" / "mine.json").write_text("{}")
    write(
        in_tmp / "t.yaml",
        {
            "model": "xlmr-base",
            "model_path": "weights",
            "target_task": "xnli",
            "deepspeed_config": "recipes/mine.json",
            "data": {"root": "~/somewhere"},
        },
    )
    cfg = load_trial("t.yaml")
    assert cfg.model_path == str(in_tmp / "weights")
    assert cfg.deepspeed_config == str(in_tmp / "recipes" / "mine.json")
    assert cfg.data.root == str(Path("~/somewhere").expanduser())


@pytest.mark.parametrize(
    "uri, needle",
    [
        ("mlflow.db", "not a tracking URI"),
        ("ftp://host/x", "not a tracking URI"),
        ("sqlite://relative.db", "three slashes"),
        ("sqlite:///:memory:", "give a file"),
    ],
)
def test_unusable_tracking_uris_are_refused(in_tmp, uri, needle):
    write(in_tmp / "s.yaml", {**BASE, "tracking_uri": uri})
    with pytest.raises(XScaleError, match="tracking_uri") as e:
        load_sweep("s.yaml")
    assert needle in str(e.value) and "s.yaml" in str(e.value)


def test_duplicate_yaml_keys_name_the_key_and_line(tmp_path):
    f = tmp_path / "d.yaml"
    f.write_text("name: d\nmodels: [tiny-xs]\noutput_dir: o\nmodels: [tiny-s]\n")
    with pytest.raises(XScaleError) as e:
        read_yaml(f)
    assert str(e.value) == f"{f}: line 4: duplicate key 'models'"
    f.write_text("target:\n  learning_rate: 1.0e-3\n  batch_size: 8\n  learning_rate: 2.0e-3\n")
    with pytest.raises(XScaleError, match="line 4: duplicate key 'learning_rate'"):
        read_yaml(f)


def test_non_utf8_files_name_the_line(tmp_path):
    f = tmp_path / "latin1.yaml"
    f.write_bytes("name: x\noutput_dir: caf\xe9\n".encode("latin-1"))
    with pytest.raises(XScaleError, match=r"latin1.yaml: line 2: not UTF-8"):
        read_yaml(f)


# ------------------------------------------------------------ the CLI: exit 2, nothing written


def assert_refused(proc, *needles: str) -> str:
    lines = [line for line in proc.stderr.split("\n") if line.strip()]
    assert proc.returncode == 2, f"exit {proc.returncode}; stderr:\n{proc.stderr}"
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("xscale: error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    return lines[0]


def _listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize(
    "case",
    ["output_dir is a file", "output_dir under a file", "data root missing", "data root a file"],
)
def test_sweep_refuses_bad_paths_and_writes_nothing(case, tmp_path, xscale_cli):
    work = tmp_path / "w"
    work.mkdir()
    (work / "afile").write_text("x")
    data = dict(BASE)
    if case == "output_dir is a file":
        data["output_dir"] = "afile"
        needles = ["s.yaml: output_dir", str(work / "afile"), "is a file"]
    elif case == "output_dir under a file":
        data["output_dir"] = "afile/out"
        needles = ["s.yaml: output_dir", str(work / "afile" / "out"), "cannot be created"]
    elif case == "data root missing":
        data["data"] = {"root": "fixtures", "tasks": {"xnli": "../nowhere"}}
        needles = ["s.yaml", "data.tasks.xnli", str(tmp_path / "nowhere"), "does not exist"]
    else:
        data["data"] = {"root": "afile"}
        needles = ["s.yaml", "data.root", str(work / "afile"), "is not a folder"]
    write(work / "s.yaml", data)
    before = _listing(work)
    proc = xscale_cli("sweep", "s.yaml", cwd=work, timeout=120)
    assert_refused(proc, *needles)
    assert _listing(work) == before  # nothing written


def test_run_refuses_an_output_dir_that_is_a_file(tmp_path, xscale_cli, trial_yaml):
    work = tmp_path / "w"
    cfg = trial_yaml(work / "t.yaml")
    (work / "out").write_text("x")
    proc = xscale_cli("run", "--config", str(cfg), "--output-dir", "out", cwd=work, timeout=120)
    assert_refused(proc, "--output-dir", str(work / "out"), "is a file")


def test_run_refuses_a_bad_tracking_uri(tmp_path, xscale_cli, trial_yaml):
    work = tmp_path / "w"
    cfg = trial_yaml(work / "t.yaml")
    proc = xscale_cli(
        "run", "--config", str(cfg), "--output-dir", "out", "--tracking-uri", "x.db", cwd=work
    )
    assert_refused(proc, "--tracking-uri", "'x.db'")
    assert not (work / "out").exists()
