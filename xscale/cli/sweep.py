"""Subcommands for whole studies: sweep, plan, status, analyze.

`plan`, `status` and `analyze` only read: they import no torch, transformers, DeepSpeed or Ray.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

import yaml

from xscale.analyze import analyze
from xscale.catalog.cluster import DEFAULT_MFU, GPUS, get_gpu
from xscale.catalog.sizes import get_size, human_params
from xscale.errors import XScaleError
from xscale.graph.expand import data_train_size, expand
from xscale.graph.manifest import read_manifest
from xscale.graph.plan import applied, cluster_plan, hub_gaps, plan_rows
from xscale.graph.stage import (
    KINDS,
)
from xscale.graph.status import sweep_status
from xscale.schedule.driver import run_study
from xscale.sweep.io import absolute, check_tracking_store, checked_tracking_uri, read_yaml
from xscale.sweep.phases import check_data_roots
from xscale.sweep.schema import load_sweep
from xscale.tasks.registry import TASKS
from xscale.tracking.upload import (
    pending_line,
    sync_folder,
)

TRACKING_ENV = "XSCALE_TRACKING_URI"  # the default store (cluster.yaml's head sets it)


def _load(args):
    over = {"output_dir": getattr(args, "output_dir", None)}
    if getattr(args, "tracking_uri", None):  # a bad flag is the flag's fault, not the file's
        over["tracking_uri"] = checked_tracking_uri(args.tracking_uri, "--tracking-uri")
    cfg = load_sweep(args.file, over)
    env = os.environ.get(TRACKING_ENV)
    if cfg.tracking_uri is None and env:  # neither the flag nor the file names a store
        cfg = load_sweep(
            args.file, {**over, "tracking_uri": checked_tracking_uri(env, TRACKING_ENV)}
        )
    return cfg


def _uri_source(args, cfg) -> str:
    """Where the sweep's tracking URI came from, for one-line errors about it."""
    if getattr(args, "tracking_uri", None):
        return "--tracking-uri"
    if "tracking_uri" in (read_yaml(args.file) or {}):
        return f"{args.file}: tracking_uri"
    if os.environ.get(TRACKING_ENV):
        return TRACKING_ENV
    return f"{args.file}: output_dir (its mlflow.db)"


def cmd_sweep(args) -> int:
    cfg = _load(args)
    return run_study(cfg, args.file, args.address, uri_what=_uri_source(args, cfg))


# ---------------------------------------------------------------------------- plan


def cmd_plan(args) -> int:
    cfg = _load(args)
    try:  # a plan is often made away from the cluster whose data roots it names: a warning
        check_data_roots(cfg.data, args.file)
    except XScaleError as e:
        print(
            f"xscale: warning: {e}; `xscale sweep` refuses it where it does not exist",
            file=sys.stderr,
        )
    graph = expand(cfg, train_size=data_train_size(cfg))
    for task, sizes in hub_gaps(graph).items():
        print(
            f"xscale: warning: {args.file}: task {task} has no Hugging Face hub copy and the"
            f" sweep reads it from the hub (data.root: hub; stages of {', '.join(sizes)}):"
            f" `xscale sweep` refuses it; give data.tasks.{task} a data folder",
            file=sys.stderr,
        )
    gpu = get_gpu(args.gpu) if args.gpu else None
    cluster = cluster_plan(cfg, graph, gpu, args.mfu, args.price_per_gpu_hour) if gpu else None
    rows = plan_rows(cfg, graph)
    counts: dict[str, dict[str, int]] = {}
    for r in rows:
        c = counts.setdefault(r["kind"], {"stages": 0, "complete": 0, "failed": 0})
        c["stages"] += 1
        c["complete"] += r["state"] == "done"
        c["failed"] += r["state"] == "failed"
    axes = {
        "sizes": len(cfg.models),
        "intermediate": len(cfg.intermediate_names),
        "target": len(cfg.target_tasks),
        "language_modes": len(cfg.train_languages),
        "seeds": len(cfg.seeds),
    }
    sizes = {m: get_size(m).params for m in cfg.models}
    if args.json:
        print(
            json.dumps(
                {
                    "name": cfg.name,
                    "sweep_file": str(Path(args.file).resolve()),
                    "output_dir": str(cfg.output_path),
                    "axes": axes,
                    "search": cfg.search.method,
                    "counts": counts,
                    "sizes": sizes,
                    "stages": rows,
                    "cluster": cluster.to_json() if cluster else None,
                },
                indent=1,
            )
        )
        return 0
    print(f"sweep {cfg.name} ({args.file}) -> {cfg.output_path}")
    print(
        f"axes: {axes['sizes']} sizes x {axes['intermediate']} intermediate x "
        f"{axes['target']} target x {axes['language_modes']} language modes x "
        f"{axes['seeds']} seeds; search {cfg.search.method}"
        + (f" ({cfg.search.num_samples} samples)" if cfg.search.method == "optuna" else "")
        + (", ASHA" if cfg.scheduler else "")
    )
    for kind in KINDS:
        if kind in counts:
            c = counts[kind]
            print(
                f"  {kind:<13} {c['stages']:>5} stages  {c['complete']:>5} complete"
                f"  {c['failed']:>3} failed"
            )
    total = sum(c["stages"] for c in counts.values())
    done = sum(c["complete"] for c in counts.values())
    print(f"  {'all':<13} {total:>5} stages  {done:>5} complete")
    print()
    print(f"{'stage':<58} {'key':<36} {'status':<15} {'resources':<22} {'cost':>9}  memory")
    for r in rows:
        res = r["resources"]
        where = f"{res['workers']}x({res['cpus']} CPU, {res['gpus']} GPU)"
        key = r["key"] or "-"
        print(
            f"{r['label'][:58]:<58} {key:<36} {r['state']:<15} {where:<22} {r['cost']:>9.3g}"
            f"  {r['memory']}"
        )
    subsets = [r for r in rows if r.get("key") and r.get("weights") != r.get("parent")]
    if subsets:
        print("\nstages whose weights are not their parent's (cartography subsets: the parent is")
        print("the map they train on; they start from the pretrained model):")
        for r in subsets:
            weights = r["weights"] or "the size's pretrained weights"
            print(f"  {r['label']}: map {r['parent']}, weights {weights}")
    print("\nsizes: " + ", ".join(f"{m} {human_params(p)}" for m, p in sizes.items()))
    if cluster is not None:
        print()
        print_cluster_plan(cluster)
    return 0


def _flow(value) -> str:
    return yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=1000).strip()


def _gib(e) -> str:
    return f"{e.gpu_gib:6.1f} ({e.states_gib:.1f}+{e.activations_gib:.1f}+{e.buffers_gib:.1f})"


def print_cluster_plan(plan) -> None:
    """The GPU plan: per size and stage kind, fit, suggestion, GPU-hours, disk; then totals."""
    g = plan.gpu
    print(
        f"on {g.name} ({g.note}; {g.memory_gib:g} GiB, dense {'bf16' if g.bf16 else 'fp16'}"
        f" peak {g.peak_tflops:g} TFLOP/s, {plan.mfu:.0%} of it assumed achieved;"
        f" {g.gpus_per_node} GPUs a node)"
    )
    head = (
        f"{'size':<10} {'kind':<13} {'stages':>6}  {'recipe (this sweep)':<34}"
        f" {'GiB/GPU (states+act+buf)':<25} {'fits':<4} {'CPU GiB/node':>12} {'GPU-hours':>10}"
        f" {'disk GB (exports)':>17}"
    )
    print(head)
    for r in plan.rows:
        e = r.estimate
        if e is None:
            print(f"{r.model:<10} {r.kind:<13} {r.stages:>6}  (evaluated only: no training)")
            continue
        fit = "yes" if e.fits else "NO"
        print(
            f"{r.model:<10} {r.kind:<13} {r.stages:>6}  {e.recipe.describe():<34} {_gib(e):<25}"
            f" {fit:<4} {e.cpu_gib_per_node:>12.1f} {r.gpu_hours:>10,.0f} {r.export_gb:>17,.0f}"
        )
    for r in plan.rows:
        if r.suggestion is not None:
            s = r.suggestion
            why = "does not fit; cheapest that does" if not r.estimate.fits else "cheaper, fits too"
            print(
                f"  {r.model} {r.kind}: {why}: {s.recipe.describe()}"
                f" ({s.gpu_gib:.1f} GiB/GPU, {s.cpu_gib_per_node:.1f} GiB CPU a node,"
                f" {r.suggested_hours:,.0f} GPU-hours): resources: {_flow({r.model: applied(s)})}"
            )
        for note in r.notes:
            print(f"  {r.model} {r.kind}: {note}")
    for r in plan.cpu_rows:
        print(f"{r.model:<10} {r.kind:<13} {r.stages:>6}  on CPUs (no GPU figures)")
        for note in r.notes:
            print(f"  {r.model} {r.kind}: {note}")
    total = f"total: {plan.gpu_hours:,.0f} GPU-hours of training"
    if plan.price is not None:
        total += f", ${plan.gpu_hours * plan.price:,.0f} at ${plan.price:g} per GPU-hour"
    else:
        total += " (give --price-per-gpu-hour for a cost)"
    print(total)
    print(
        f"disk: model exports {plan.export_gb:,.0f} GB (16-bit, kept); checkpoints up to"
        f" {plan.checkpoint_gb:,.0f} GB at once ({plan.max_concurrent} stages running, two"
        " checkpoints each while one is written; removed when a stage completes)"
    )
    print(
        "assumed: 6 x non-embedding parameters x training tokens per stage (8x with gradient"
        " checkpointing), evaluation not counted; Optuna groups at search.num_samples stages"
        " (ASHA stops some early); offload x1.3 (optimizer) / x2.0 (+ parameters) and ZeRO-3"
        " x1.1 slower; 1.5 GiB a GPU for CUDA and NCCL; fits = at most 90% of the GPU's memory"
    )


# ---------------------------------------------------------------------------- status


def cmd_status(args) -> int:
    out = Path(absolute(args.dir))
    st = sweep_status(out)
    if args.json:
        print(json.dumps(st, indent=1))
        return 0
    print(f"sweep {st['name']} in {out} (tracking: {st['tracking_uri']})")
    for kind in KINDS:
        c = st["kinds"].get(kind)
        if c is None:
            continue
        print(
            f"  {kind:<13} done {c['done']:>4}  running/stopped {c['started']:>3}"
            f"  failed {c['failed']:>3}  not started {c['left']:>4}  (stages {c['stages']})"
            + (f"  damaged {c['damaged']}" if c.get("damaged") else "")
        )
    state = "complete" if st["complete"] else "not complete"
    print(f"  {'all':<13} done {st['stages_done']:>4} of {st['stages_total']}: {state}")
    for row in st["stages"]:
        p = row.get("progress")
        if row["state"] == "started":
            where = f" step {p['step']}/{p['total']} loss {p['loss']:.3f}" if p else ""
            print(f"  running/stopped {row['label']}{where}")
    for row in st["stages"]:
        if row["state"] == "damaged":
            print(f"  damaged {row['label']}: {row['error']}; the next xscale sweep runs it again")
    for row in st["failed"]:
        print(f"  failed {row['key']}: {row['error']}")
    unsent = st["tracking_unsent"]
    if unsent["runs"]:
        print(
            f"  tracking: {unsent['events']} events of {unsent['runs']} runs not yet in MLflow"
            f" (uploading, or kept while the server was down: xscale sync {out})"
        )
    return 0


# ---------------------------------------------------------------------------- sync


def cmd_sync(args) -> int:
    out = Path(absolute(args.dir))
    if not out.is_dir() or not ((out / "stages").is_dir() or (out / "tracking").is_dir()):
        raise XScaleError(f"sync: {out}: not the output folder of an xscale run or sweep")
    uri = None
    if args.tracking_uri:
        uri = checked_tracking_uri(args.tracking_uri, "--tracking-uri")
        check_tracking_store(uri, "--tracking-uri")
    report = sync_folder(out, uri)
    line = pending_line(out, report, hint=False)
    if line:
        print(f"sync: sent {report.sent} events; {line}; run it again later", file=sys.stderr)
        return 1
    if not report.sent:
        print(f"sync: nothing to send; every journal of {out} is in MLflow")
    else:
        print(f"sync: sent {report.sent} events of {report.runs} runs; {out} is all in MLflow")
    return 0


# ---------------------------------------------------------------------------- analyze


def cmd_analyze(args) -> int:
    expected = None
    if args.dir:
        args.dir = absolute(args.dir)
        if (Path(args.dir) / "sweep.json").is_file():
            manifest = read_manifest(args.dir)
            expected = [tuple(c) for c in manifest.get("cells", [])] or None
            if args.experiment is None and args.tracking_uri is None:
                args.experiment = manifest["name"]
    elif not args.tracking_uri:
        raise XScaleError("analyze: give a sweep folder, or --tracking-uri and --experiment")
    if args.tracking_uri:
        args.tracking_uri = checked_tracking_uri(args.tracking_uri, "--tracking-uri")
    out = analyze(
        tracking_uri=args.tracking_uri,
        experiment=args.experiment,
        out_dir=args.out,
        sweep_dir=args.dir,
        expected=expected,
        main_metrics={t.name: t.metric for t in TASKS.values()},
        plots=not args.no_plots,
        log_artifacts=not args.no_log_artifacts,
    )
    print(f"report: {Path(out) / 'report.md'}")
    return 0


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1] (got {text})")
    return value


def _price(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or not 0 <= value <= 1000:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1000 (got {text})")
    return value


def add_subcommands(command) -> None:
    """Register the study commands with `command(name, func, **parser kwargs)` (cli/__init__.py)."""
    s = command(
        "sweep",
        cmd_sweep,
        help="run a whole study from a sweep YAML file on Ray Tune (re-run to resume)",
        description=(
            "Expand the sweep file into a stage graph and run it on Ray Tune. Complete stages "
            "are reused, so re-running the command resumes a killed sweep. Relative paths in "
            "the file and the flags resolve against the current directory."
        ),
    )
    s.add_argument("file", help="sweep YAML file, e.g. sweeps/smoke.yaml")
    s.add_argument("--output-dir", help="override the file's output_dir")
    s.add_argument("--tracking-uri", help="MLflow URI (default sqlite:///<output_dir>/mlflow.db)")
    s.add_argument(
        "--address", help="Ray cluster address (e.g. auto, or ray://head:10001); default: local Ray"
    )

    s = command(
        "plan",
        cmd_plan,
        help="print a sweep's stage graph, resources and progress without running it",
    )
    s.add_argument("file", help="sweep YAML file")
    s.add_argument("--output-dir", help="override the file's output_dir")
    s.add_argument("--json", action="store_true", help="print the plan as JSON (for scripts)")
    s.add_argument(
        "--gpu",
        choices=sorted(GPUS),
        help="plan the sweep on this GPU type: fit per stage, suggested recipes, GPU-hours, disk",
    )
    s.add_argument(
        "--mfu",
        type=_share,
        default=DEFAULT_MFU,
        help=f"share of the GPU's dense 16-bit peak achieved (default {DEFAULT_MFU})",
    )
    s.add_argument(
        "--price-per-gpu-hour",
        type=_price,
        help="price of one GPU-hour, for the sweep's cost (your provider's; none assumed)",
    )

    s = command("status", cmd_status, help="progress of a running or finished sweep")
    s.add_argument("dir", help="the sweep's output_dir")
    s.add_argument("--json", action="store_true", help="print the status as JSON (for scripts)")

    s = command(
        "sync",
        cmd_sync,
        help="upload what runs kept in their tracking journals (e.g. while MLflow was down)",
        description=(
            "Stages and sweeps log to a journal in their folder first and upload it in the "
            "background; events a tracking server did not take are kept there. This sends "
            "them, once each. The next run or sweep on the folder does the same at its start."
        ),
    )
    s.add_argument("dir", help="the output folder of a sweep or run")
    s.add_argument("--tracking-uri", help="send to this store instead of the one each run used")

    s = command("analyze", cmd_analyze, help="scale-versus-gap report from a sweep's MLflow runs")
    s.add_argument("dir", nargs="?", help="sweep output_dir (reads <dir>/mlflow.db)")
    s.add_argument("--tracking-uri", help="MLflow tracking URI instead of <dir>/mlflow.db")
    s.add_argument("--experiment", help="MLflow experiment (the sweep's name)")
    s.add_argument("--out", help="report folder (default <dir>/analysis)")
    s.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    s.add_argument(
        "--no-log-artifacts", action="store_true", help="don't log the report to the sweep run"
    )
