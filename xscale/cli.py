"""The `xscale` command: thin, one subcommand -> one function.

Errors in user input print one line (`xscale: error: ...`) on stderr and exit with code 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from xscale.errors import XScaleError


def quiet_environment() -> None:
    """Keep library chatter out of the progress output."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    try:
        import torch

        if not torch.cuda.is_available():
            os.environ.setdefault("DS_ACCELERATOR", "cpu")
    except ImportError:
        pass
    import logging

    for name in ("DeepSpeed", "deepspeed", "torch.distributed"):
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:
        pass


# ---------------------------------------------------------------- subcommands


def cmd_sizes(args) -> int:
    from xscale.sizes import format_table

    print(format_table())
    return 0


def cmd_tasks(args) -> int:
    from xscale.tasks.registry import TASKS

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
    from xscale.config import TrialConfig, load_trial, parse
    from xscale.pipeline import run_trial

    if args.config:
        over = _trial_overrides(args)
        if "data" in over:  # --data-root replaces the root, keeping the file's per-task roots
            from xscale.config import read_yaml

            over["data"] = {**(read_yaml(args.config).get("data") or {}), **over["data"]}
        cfg = load_trial(args.config, over)
    else:
        over = {k: v for k, v in _trial_overrides(args).items() if v is not None}
        if "model" not in over or "target_task" not in over:
            raise XScaleError("run: give --config FILE, or at least --model and --target")
        cfg = parse(TrialConfig, over, "command line")
    results = run_trial(cfg, Path(args.output_dir), args.tracking_uri, args.experiment)
    target = results.get("target", {})
    print(f"done: {len(results)} stages; target metrics in {args.output_dir}")
    for k, v in sorted(target.get("metrics", {}).items()):
        print(f"{k}\t{v:.4f}")
    return 0


# ---------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="xscale",
        description=(
            "Model-scale studies of intermediate-task training (STILTs) for zero-shot "
            "cross-lingual transfer: DeepSpeed training, Ray Tune sweeps, MLflow tracking."
        ),
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    s = sub.add_parser("sizes", help="print the table of named model sizes")
    s.set_defaults(func=cmd_sizes)

    s = sub.add_parser("tasks", help="list the registered tasks")
    s.set_defaults(func=cmd_tasks)

    s = sub.add_parser(
        "run",
        help="run one trial: pretrain (tiny sizes) -> intermediate -> target -> zero-shot eval",
        description=(
            "Run one trial. Values come from --config (a YAML trial file; see examples/) and "
            "are overridden by the flags. Completed stages in --output-dir are reused."
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
    s.set_defaults(func=cmd_run)

    from xscale import cli_sweep

    cli_sweep.add_subcommands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.func not in (cmd_sizes, cmd_tasks):
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
