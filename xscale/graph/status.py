"""`xscale status`: every planned stage of a sweep folder and its state, from `sweep.json`, the
stage folders and the tracking journals (no Ray, no MLflow). Counted by `selection.planned`,
as the plan and the running sweep count."""

from __future__ import annotations

from pathlib import Path

from xscale.graph.manifest import graph_of, read_manifest
from xscale.graph.selection import planned
from xscale.graph.stage import (
    ERROR_FILE,
    check_outputs,
    read_stage_progress,
    stage_dir,
    stage_state,
)
from xscale.tracking.journal import pending
from xscale.tracking.upload import folder_journals


def sweep_status(out: Path) -> dict:
    """Every planned stage of the sweep in `out` and its state."""
    m = read_manifest(out)
    graph = graph_of(m, str(out / "sweep.json"))
    kinds: dict[str, dict[str, int]] = {}
    stages, failed = [], []
    for p in planned(graph, out, int(m.get("num_samples") or 1)):
        g = p.group
        c = kinds.setdefault(
            g.kind, dict.fromkeys(("stages", "done", "damaged", "started", "failed"), 0)
        )
        c.setdefault("left", 0)
        c["stages"] += 1
        if p.spec is None:  # waits on a parent's selection or on its search
            c["left"] += 1
            continue
        folder = stage_dir(out, p.spec)
        state = stage_state(folder)
        c[state] += 1
        row = {"key": p.spec.key, "kind": g.kind, "label": p.spec.label, "state": state}
        if state == "started":
            row["progress"] = read_stage_progress(folder)
        if state == "damaged":
            row["error"] = check_outputs(folder) or ""
        if state == "failed":
            text = (folder / ERROR_FILE).read_text(errors="replace").strip()
            row["error"] = text.splitlines()[0] if text else ""
            failed.append(row)
        stages.append(row)
    total = sum(c["stages"] for c in kinds.values())
    done = sum(c["done"] for c in kinds.values())
    unsent = [n for n in (pending(j) for j in folder_journals(out)) if n]
    return {
        "name": m["name"],
        "output_dir": str(out),
        "tracking_uri": m.get("tracking_uri"),
        "stages_total": total,
        "stages_done": done,
        "complete": total > 0 and done == total,
        "kinds": kinds,
        "stages": stages,
        "failed": failed,
        "tracking_unsent": {"runs": len(unsent), "events": sum(unsent)},
    }
