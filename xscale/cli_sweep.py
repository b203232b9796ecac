"""Subcommands for whole studies: sweep, plan, status, analyze."""

from __future__ import annotations

import json
import time
from pathlib import Path

from xscale.errors import XScaleError


def _load(args):
    from xscale.sweep_config import load_sweep

    over = {"output_dir": getattr(args, "output_dir", None)}
    if getattr(args, "tracking_uri", None):
        over["tracking_uri"] = args.tracking_uri
    return load_sweep(args.file, over)


def _train_size(cfg):
    """Data sizes for cost estimates: counted for local data, nominal for hub data."""
    from xscale import data as xdata
    from xscale.graph import nominal_train_size
    from xscale.tasks.registry import TASKS

    cache: dict = {}

    def size(task: str, root: str) -> int:
        if (task, root) in cache:
            return cache[(task, root)]
        n = nominal_train_size(task, root)
        if root != xdata.HUB and task in TASKS:
            try:
                n = len(xdata.load_examples(TASKS[task], "train", "en", root))
            except XScaleError:
                pass  # preflight reports it
        cache[(task, root)] = n
        return n

    return size


def preflight_sweep(cfg, graph) -> None:
    """Every group's inputs checked once, before Ray starts or MLflow is written."""
    from xscale.pipeline import preflight

    seen = set()
    for g in graph.groups.values():
        sample = {k: v.values[0] for k, v in g.space.items()}
        if g.samples:
            sample = g.samples[0]
        spec = g.stage(sample, "preflight" if g.parent else None)
        ident = (spec.kind, spec.task, spec.data_root, spec.eval_languages, spec.model)
        if ident in seen:
            continue
        seen.add(ident)
        preflight([spec])


def write_manifest(cfg, graph, source: str) -> None:
    out = cfg.output_path
    out.mkdir(parents=True, exist_ok=True)
    manifest = {
        "name": cfg.name,
        "sweep_file": str(Path(source).resolve()),
        "tracking_uri": cfg.resolved_tracking_uri,
        "groups": {
            k: {"kind": g.kind, "label": g.label, "parent": g.parent, "cost": g.cost}
            for k, g in graph.groups.items()
        },
        # the cells `xscale analyze` expects: (size, intermediate, target, languages, seed)
        "cells": sorted(
            [
                g.base["model"],
                g.base["intermediate_task"],
                g.base["target_task"],
                g.base["train_languages"],
                str(g.base["seed"]),
            ]
            for g in graph.groups.values()
            if g.kind == "target"
        ),
    }
    tmp = out / "sweep.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=2))
    tmp.replace(out / "sweep.json")


def cmd_sweep(args) -> int:
    from concurrent.futures import ThreadPoolExecutor

    from xscale.graph import expand
    from xscale.schedule import log, run_sweep, start_ray
    from xscale.tracking import Tracker

    cfg = _load(args)
    graph = expand(cfg, train_size=_train_size(cfg))
    preflight_sweep(cfg, graph)
    out = cfg.output_path
    write_manifest(cfg, graph, args.file)

    def setup_tracking():
        tracker = Tracker(cfg.resolved_tracking_uri, cfg.name, out / "mlartifacts")
        parent = tracker.parent_run(
            uid=f"sweep-{cfg.name}-{out.resolve()}",
            name=f"sweep {cfg.name}",
            tags={"xscale.output_dir": str(out.resolve()), "xscale.sweep_file": args.file},
        )
        tracker.log_params(
            parent,
            {
                "models": ",".join(cfg.models),
                "intermediate_tasks": ",".join(cfg.intermediate_names),
                "target_tasks": ",".join(cfg.target_tasks),
                "seeds": ",".join(map(str, cfg.seeds)),
                "train_languages": ",".join(cfg.train_languages),
            },
        )
        return tracker, parent

    # MLflow's store set-up (a new sqlite schema takes ~1.3 s) overlaps Ray's start (~3 s)
    with ThreadPoolExecutor(1) as pool:
        tracking = pool.submit(setup_tracking)
        try:
            start_ray(args.address, {m: dict(vars(cfg.resources_for(m))) for m in cfg.models})
        except BaseException:
            tracker, parent = tracking.result()
            tracker.finish(parent, "FAILED")
            raise
        tracker, parent = tracking.result()
    t0 = time.time()
    log(
        f"{cfg.name}: {len(graph.groups)} stage groups "
        f"(pretrain {graph.count('pretrain')}, intermediate {graph.count('intermediate')}, "
        f"target {graph.count('target')}) -> {out}"
    )
    status, counts = "FAILED", None
    try:
        counts = run_sweep(cfg, graph, tracker, parent, address=args.address)
        status = "FINISHED" if not counts["failed"] and not counts["blocked"] else "FAILED"
    finally:
        tracker.finish(parent, status)
    log(
        f"{cfg.name}: {status.lower()} in {time.time() - t0:.0f}s: ran {counts['ran']}, "
        f"failed {counts['failed']}, blocked by a failed parent {counts['blocked']}; "
        f"results in {cfg.resolved_tracking_uri}"
    )
    if status != "FINISHED":
        log("re-run the same command to retry what is missing")
        return 1
    return 0


def _stage_state(path: Path) -> str:
    if (path / "COMPLETE").is_file():
        return "done"
    if (path / "error.txt").is_file():
        return "failed"
    if (path / "attempts.jsonl").is_file():
        return "started"
    return "left"


def cmd_plan(args) -> int:
    from xscale.dsconfig import estimate_size_memory
    from xscale.graph import expand
    from xscale.schedule import resolve
    from xscale.sizes import get_size, human_params

    cfg = _load(args)
    graph = expand(cfg, train_size=_train_size(cfg))
    known = resolve(graph, cfg.output_path)
    counts: dict[str, list[int]] = {}
    rows = []
    for g in sorted(graph.groups.values(), key=lambda g: (g.depth, -g.cost)):
        specs = known.get(g.key)
        c = counts.setdefault(g.kind, [0, 0, 0])
        if specs is None:
            n = cfg.search.num_samples or 1 if g.optuna else len(g.samples)
            c[0] += n
            rows.append((g, "-", "waits on search" if g.optuna else "waits on parent", n))
            continue
        for s in specs:
            state = _stage_state(cfg.output_path / "stages" / s.key)
            c[0] += 1
            c[1] += state == "done"
            c[2] += state == "failed"
            rows.append((g, s.key, state, 1))
    print(f"sweep {cfg.name} ({args.file}) -> {cfg.output_path}")
    print(
        f"axes: {len(cfg.models)} sizes x {len(cfg.intermediate_names)} intermediate x "
        f"{len(cfg.target_tasks)} target x {len(cfg.train_languages)} language modes x "
        f"{len(cfg.seeds)} seeds; search {cfg.search.method}"
        + (f" ({cfg.search.num_samples} samples)" if cfg.search.method == "optuna" else "")
        + (", ASHA" if cfg.scheduler else "")
    )
    total = sum(c[0] for c in counts.values())
    done = sum(c[1] for c in counts.values())
    for kind in ("pretrain", "intermediate", "target"):
        if kind in counts:
            n, d, f = counts[kind]
            print(f"  {kind:<13} {n:>5} stages  {d:>5} complete  {f:>3} failed")
    print(f"  {'all':<13} {total:>5} stages  {done:>5} complete")
    print()
    print(f"{'stage':<58} {'key':<36} {'status':<15} {'resources':<22} {'cost':>9}  memory")
    for g, key, state, _n in rows:
        r = g.resources
        res = f"{r['workers']}x({r['cpus']} CPU, {r['gpus']} GPU)"
        mem = ""
        try:
            mem = str(estimate_size_memory(g.base["model"]))
        except Exception:  # memory estimates are informative only
            mem = "?"
        print(f"{g.label[:58]:<58} {key:<36} {state:<15} {res:<22} {g.cost:>9.3g}  {mem}")
    sizes = {m: human_params(get_size(m).params) for m in cfg.models}
    print("\nsizes: " + ", ".join(f"{m} {p}" for m, p in sizes.items()))
    return 0


def cmd_status(args) -> int:
    out = Path(args.dir)
    manifest = out / "sweep.json"
    if not manifest.is_file():
        raise XScaleError(f"{out}: not a sweep folder (no sweep.json; start one with xscale sweep)")
    m = json.loads(manifest.read_text())
    states: dict[str, dict[str, int]] = {}
    failed = []
    for stage in sorted((out / "stages").glob("*")) if (out / "stages").is_dir() else []:
        spec = (
            json.loads((stage / "spec.json").read_text()) if (stage / "spec.json").is_file() else {}
        )
        kind = spec.get("kind", "?")
        st = _stage_state(stage)
        states.setdefault(kind, {}).setdefault(st, 0)
        states[kind][st] += 1
        if st == "failed":
            failed.append((stage.name, (stage / "error.txt").read_text().strip()))
    groups = m["groups"]
    print(f"sweep {m['name']} in {out} (tracking: {m['tracking_uri']})")
    for kind in ("pretrain", "intermediate", "target"):
        planned = sum(1 for g in groups.values() if g["kind"] == kind)
        s = states.get(kind, {})
        left = max(0, planned - sum(s.values()))
        print(
            f"  {kind:<13} done {s.get('done', 0):>4}  running/stopped {s.get('started', 0):>3}"
            f"  failed {s.get('failed', 0):>3}  not started {left:>4}  (groups {planned})"
        )
    for key, err in failed:
        print(f"  failed {key}: {err}")
    return 0


def cmd_analyze(args) -> int:
    from xscale.analyze import analyze
    from xscale.tasks.registry import TASKS

    expected = None
    if args.dir and (Path(args.dir) / "sweep.json").is_file():
        manifest = json.loads((Path(args.dir) / "sweep.json").read_text())
        expected = [tuple(c) for c in manifest.get("cells", [])] or None
        if args.experiment is None and args.tracking_uri is None:
            args.experiment = manifest["name"]
    elif not args.dir and not args.tracking_uri:
        raise XScaleError("analyze: give a sweep folder, or --tracking-uri and --experiment")
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


def add_subcommands(sub) -> None:
    s = sub.add_parser(
        "sweep",
        help="run a whole study from a sweep YAML file on Ray Tune (re-run to resume)",
        description=(
            "Expand the sweep file into a stage graph and run it on Ray Tune in waves. "
            "Complete stages are reused, so re-running the command resumes a killed sweep."
        ),
    )
    s.add_argument("file", help="sweep YAML file, e.g. sweeps/smoke.yaml")
    s.add_argument("--output-dir", help="override the file's output_dir")
    s.add_argument("--tracking-uri", help="MLflow URI (default sqlite:///<output_dir>/mlflow.db)")
    s.add_argument(
        "--address", help="Ray cluster address (e.g. auto, or ray://head:10001); default: local Ray"
    )
    s.set_defaults(func=cmd_sweep)

    s = sub.add_parser(
        "plan", help="print a sweep's stage graph, resources and progress without running it"
    )
    s.add_argument("file", help="sweep YAML file")
    s.add_argument("--output-dir", help="override the file's output_dir")
    s.set_defaults(func=cmd_plan)

    s = sub.add_parser("status", help="progress of a running or finished sweep")
    s.add_argument("dir", help="the sweep's output_dir")
    s.set_defaults(func=cmd_status)

    s = sub.add_parser("analyze", help="scale-versus-gap report from a sweep's MLflow runs")
    s.add_argument("dir", nargs="?", help="sweep output_dir (reads <dir>/mlflow.db)")
    s.add_argument("--tracking-uri", help="MLflow tracking URI instead of <dir>/mlflow.db")
    s.add_argument("--experiment", help="MLflow experiment (the sweep's name)")
    s.add_argument("--out", help="report folder (default <dir>/analysis)")
    s.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    s.add_argument(
        "--no-log-artifacts", action="store_true", help="don't log the report to the sweep run"
    )
    s.set_defaults(func=cmd_analyze)
