"""One trial (`xscale run`), run in this process: its chain of stages, preflight, then each stage
in order (complete ones reused), under one MLflow parent run."""

from __future__ import annotations

from pathlib import Path

from xscale.errors import XScaleError
from xscale.graph.expand import trial_stages
from xscale.graph.stage import (
    MARKER,
    StageResult,
    invalidate,
    is_complete,
    read_result,
    stage_dir,
    stage_path,
    verify_stage,
)
from xscale.runtime import say
from xscale.stage.preflight import preflight
from xscale.sweep.io import default_tracking_uri
from xscale.sweep.trial import TrialConfig
from xscale.tracking.client import TrackingInfo
from xscale.tracking.upload import catch_up, open_parent, pending_line, sync_folder


def run_trial(
    cfg: TrialConfig,
    output_dir: Path,
    tracking_uri: str | None,
    experiment: str,
    source: str | None = None,
) -> dict[str, dict]:
    """Run the trial's stages in order (skipping complete ones); returns results by stage kind.
    A bad input is refused before anything is written, naming `source` (the trial file)."""
    from xscale.stage.runner import run_stage
    from xscale.train.distributed import shutdown_distributed

    try:
        specs = trial_stages(cfg)
        preflight(specs)
    except XScaleError as e:
        raise XScaleError(f"{source}: {e}" if source else str(e)) from None
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    uri = tracking_uri or default_tracking_uri(output_dir)
    artifacts = str(output_dir / "mlartifacts")
    target = specs[-1]
    uid = f"trial-{target.key}"
    report, finished = catch_up(
        output_dir, uri, experiment, lambda key: is_complete(stage_path(output_dir, key))
    )
    if finished:
        say("trial", f"{finished} complete stages' MLflow runs were still RUNNING: finished")
    parent = open_parent(
        output_dir,
        uri,
        experiment,
        uid,
        f"trial {cfg.model} {cfg.intermediate_task} -> {cfg.target_task} seed{cfg.seed}",
        {"xscale.output_dir": str(output_dir.resolve())},
        say=lambda line: say("trial", line),
    )
    info = TrackingInfo(uri, experiment, uid, artifacts)
    results: dict[str, StageResult] = {}
    status = "FAILED"
    try:
        for spec in specs:
            where = stage_dir(output_dir, spec)
            reason = verify_stage(where) if (where / MARKER).is_file() else None
            if reason is not None:  # as a sweep does: a changed stage runs again
                invalidate(where, reason)
                say(spec.label, f"{reason}: it runs again")
            if is_complete(where):
                say(spec.label, f"complete, reusing {where}")
                results[spec.kind] = read_result(where)
                continue
            say(spec.label, f"starting -> {where}")
            results[spec.kind] = run_stage(spec, output_dir, info)
        status = "FINISHED"
    finally:
        parent.finish(status)
        parent.close()
        shutdown_distributed()
        line = pending_line(output_dir, sync_folder(output_dir))
        if line:
            say("trial", line)
    return results
