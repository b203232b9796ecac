"""The `xscale` command: thin, a table from command name to function; argument glue only.

Errors in user input print one line (`xscale: error: ...`) on stderr and exit with code 2.
Commands that only read (`sizes`, `tasks`, `plan`, `status`, `analyze`) import no torch,
transformers, DeepSpeed or Ray, so they answer at once.
"""

from __future__ import annotations

import argparse
import sys

from xscale import __version__
from xscale.catalog.recipes import format_table
from xscale.cli import sweep as cli_sweep
from xscale.errors import XScaleError
from xscale.runtime import quiet_environment, set_verbosity
from xscale.schedule.local import run_trial
from xscale.stage.preview import preview
from xscale.sweep.io import (
    check_output_dir,
    check_tracking_store,
    checked_tracking_uri,
    parse,
    read_yaml,
)
from xscale.sweep.phases import check_data_roots
from xscale.sweep.trial import TrialConfig, load_trial
from xscale.tasks.registry import TASKS

# ---------------------------------------------------------------- subcommands


def cmd_sizes(args) -> int:
    print(format_table())
    return 0


def cmd_tasks(args) -> int:
    print(f"{'task':<10} {'format':<22} {'metric':<9} {'roles':<22} languages")
    for t in TASKS.values():
        roles = ",".join(t.roles)
        print(f"{t.name:<10} {t.format:<22} {t.metric:<9} {roles:<22} {' '.join(t.languages)}")
    return 0


def _trial_overrides(args) -> dict:
    over = {
        "model": args.model,
        "model_path": args.model_path,
        "intermediate_task": args.intermediate,
        "target_task": args.target,
        "seed": args.seed,
    }
    if args.eval_languages:
        over["eval_languages"] = [s for s in args.eval_languages.split(",") if s]
    if args.data_root:
        over["data"] = {"root": args.data_root}
    return over


def cmd_run(args) -> int:
    if args.config:
        over = _trial_overrides(args)
        if "data" in over:  # --data-root replaces the root, keeping the file's per-task roots
            over["data"] = {**(read_yaml(args.config).get("data") or {}), **over["data"]}
        cfg = load_trial(args.config, over)
        source = args.config
    else:
        over = {k: v for k, v in _trial_overrides(args).items() if v is not None}
        if "model" not in over or "target_task" not in over:
            raise XScaleError("run: give --config FILE, or at least --model and --target")
        cfg = parse(TrialConfig, over, "command line")
        source = "command line"
    uri = checked_tracking_uri(args.tracking_uri, "--tracking-uri")
    out = check_output_dir(args.output_dir, "--output-dir")
    if uri:
        check_tracking_store(uri, "--tracking-uri")
    check_data_roots(cfg.data, source)

    results = run_trial(cfg, out, uri, args.experiment, source=args.config)
    target = results.get("target")
    print(f"done: {len(results)} stages; target metrics in {out}")
    for k, v in sorted(target.metrics.items() if target else ()):
        print(f"{k}\t{v:.4f}")
    return 0


def cmd_perturb(args) -> int:
    if args.examples < 1:
        raise XScaleError("-n: must be at least 1")
    text = preview(
        args.task,
        args.lang,
        args.set,
        sweep=args.sweep,
        model=args.model,
        n=args.examples,
        data_root=args.data_root,
        seed=args.seed,
        split=args.split,
    )
    print(text)
    return 0


# ---------------------------------------------------------------- parser


def _common(p: argparse.ArgumentParser, top: bool = False) -> None:
    """-q / -v, accepted before or after the command name (a subcommand's copy leaves the
    top-level value alone unless given)."""
    default = False if top else argparse.SUPPRESS
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "-q", "--quiet", action="store_true", default=default,
        help="only errors and the final summary",
    )  # fmt: skip
    g.add_argument(
        "-v", "--verbose", action="store_true", default=default,
        help="more detail: every stage's own log lines, library warnings",
    )  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="xscale",
        description=(
            "Model-scale studies of intermediate-task training (STILTs) for zero-shot "
            "cross-lingual transfer: DeepSpeed training, Ray Tune sweeps, MLflow tracking."
        ),
    )
    p.add_argument("--version", action="version", version=f"xscale {__version__}")
    _common(p, top=True)
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, func, **kw) -> argparse.ArgumentParser:
        s = sub.add_parser(name, **kw)
        _common(s)
        s.set_defaults(func=func)
        return s

    command("sizes", cmd_sizes, help="print the table of named model sizes")
    command("tasks", cmd_tasks, help="list the registered tasks")

    s = command(
        "run",
        cmd_run,
        help="run one trial: pretrain (tiny sizes) -> intermediate -> target -> zero-shot eval",
        description=(
            "Run one trial. Values come from --config (a YAML trial file; see examples/) and "
            "are overridden by the flags. Completed stages in --output-dir are reused. "
            "Relative paths resolve against the current directory."
        ),
    )
    s.add_argument("--config", help="YAML trial file (keys: see examples/trial.yaml)")
    s.add_argument("--model", help="size name from `xscale sizes`, e.g. tiny-s or xlmr-base")
    s.add_argument("--model-path", help="local weights for a real size instead of its hub id")
    s.add_argument("--intermediate", help="intermediate task from `xscale tasks`, or none")
    s.add_argument("--target", help="target task from `xscale tasks`, e.g. xnli")
    s.add_argument("--seed", type=int, help="random seed (default 0)")
    s.add_argument("--eval-languages", help="comma-separated languages (default: all available)")
    s.add_argument(
        "--data-root",
        help="task data: hub, fixtures, or a folder in XTREME download layout",
    )
    s.add_argument("--output-dir", required=True, help="where stages and mlflow.db are written")
    s.add_argument(
        "--tracking-uri", help="MLflow tracking URI (default: sqlite:///<output-dir>/mlflow.db)"
    )
    s.add_argument("--experiment", default="xscale", help="MLflow experiment name")

    s = command(
        "perturb",
        cmd_perturb,
        help="show what a perturbation set (noise, code-mixing, an attack) does to test examples",
        description=(
            "Print the first -n test examples of a task in one language beside their perturbed"
            " versions under a set: a plain name (typo, swap, nopunct, lower), a set declared"
            " in --sweep's perturbations, or a YAML mapping such as"
            " '{family: codemix, languages: [de], rate: 0.3}'. An attack (polygloss,"
            " bumblebee) queries a trained model: --model is a target stage's folder."
        ),
    )
    s.add_argument("--task", required=True, help="target task, e.g. xnli")
    s.add_argument("--lang", default="en", help="language of the examples (default en)")
    s.add_argument("--set", required=True, help="set name, or a YAML mapping of one set")
    s.add_argument("--sweep", help="sweep file whose perturbations (and data root) to use")
    s.add_argument("--model", help="target stage folder (or its model/) to attack")
    s.add_argument("-n", "--examples", type=int, default=5, help="examples shown (default 5)")
    s.add_argument(
        "--data-root", help="hub, fixtures or a folder (default: the sweep's, else fixtures)"
    )
    s.add_argument("--seed", type=int, default=0, help="the sweep seed the stage would use (0)")
    s.add_argument("--split", default="test", choices=("train", "dev", "test"))

    cli_sweep.add_subcommands(command)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    set_verbosity(0 if args.quiet else 2 if args.verbose else 1)
    quiet_environment()
    try:
        return int(args.func(args) or 0)
    except XScaleError as e:
        print(f"xscale: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("xscale: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
