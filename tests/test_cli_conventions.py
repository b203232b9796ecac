"""What users expect of a command-line tool: `--version`, `-q` / `-v`, `--json` for scripts,
and read-only commands that answer at once because they import no torch, transformers,
DeepSpeed or Ray (the timing itself lives in bench/cli_startup.py, never in a test)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from xscale import __version__

HEAVY = ("torch", "transformers", "deepspeed", "ray")
PROBE = """
import contextlib, io, sys
HEAVY = %s
from xscale.cli import main
try:
    with contextlib.redirect_stdout(io.StringIO()):
        rc = main(sys.argv[1:])
except SystemExit as e:
    rc = e.code or 0
print(sorted({m.split('.')[0] for m in sys.modules} & set(HEAVY)))
sys.exit(rc)
""".replace("%s", repr(HEAVY))


def heavy_imports(*args: str, cwd=None) -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, cwd=cwd
    )
    assert proc.returncode == 0, proc.stderr
    return eval(proc.stdout.strip().splitlines()[-1])  # the printed list


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["sizes"],
        ["tasks"],
        ["plan", "sweeps/scaling.yaml"],
        ["plan", "sweeps/smoke.yaml", "--json"],
    ],
    ids=lambda a: " ".join(a),
)
def test_read_only_commands_import_no_heavy_library(args, repo_root, tmp_path):
    if args[0] == "plan":
        args = [*args, "--output-dir", str(tmp_path / "out")]
    assert heavy_imports(*args, cwd=repo_root) == []


def test_version(xscale_cli):
    proc = xscale_cli("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"xscale {__version__}"


def test_quiet_and_verbose_flags_before_or_after_the_command(xscale_cli):
    for args in (["-q", "sizes"], ["sizes", "-q"], ["-v", "tasks"], ["tasks", "--verbose"]):
        proc = xscale_cli(*args)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip()
    proc = xscale_cli("sizes", "-q", "-v")
    assert proc.returncode == 2 and "not allowed with" in proc.stderr


def test_plan_json_lists_every_stage(xscale_cli, repo_root, tmp_path):
    proc = xscale_cli(
        "plan", "sweeps/smoke.yaml", "--json", "--output-dir", str(tmp_path / "o"), cwd=repo_root
    )
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert plan["name"] == "smoke" and plan["output_dir"] == str(tmp_path / "o")
    counts = plan["counts"]
    assert sum(c["stages"] for c in counts.values()) == len(plan["stages"])
    assert {r["state"] for r in plan["stages"]} <= {"left", "waits on parent"}
    assert {r["kind"] for r in plan["stages"]} == {"pretrain", "intermediate", "target"}
