"""`<output_dir>/sweep.json`: what a sweep planned, written when it starts, read by `status`
and `analyze` (the cells a complete study has, so missing ones are counted, never skipped).

    {"name", "sweep_file", "output_dir", "tracking_uri", "num_samples" (Optuna trials per group),
     "groups": {group key: the group (graph.Group.to_json: kind, label, parent, cost, base, ...)},
     "cells": [[size, intermediate task, target task, train languages, seed], ...]}

`graph_of(manifest)` rebuilds the stage graph from it, so `status` knows every planned stage
without re-reading (a possibly edited) sweep file.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from xscale.errors import XScaleError
from xscale.graph.expand import Graph, Group

MANIFEST = "sweep.json"


def build_manifest(cfg, graph, source: str) -> dict:
    return {
        "name": cfg.name,
        "sweep_file": str(Path(source).resolve()),
        "output_dir": str(cfg.output_path),
        "tracking_uri": cfg.resolved_tracking_uri,
        "num_samples": cfg.search.num_samples or 1,
        "groups": {k: g.to_json() for k, g in graph.groups.items()},
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


def write_manifest(cfg, graph, source: str) -> Path:
    out = cfg.output_path
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(build_manifest(cfg, graph, source), indent=2))
    tmp.replace(out / MANIFEST)
    return out / MANIFEST


def check_folder_owner(out: Path, name: str, what: str) -> None:
    """Refuse an output folder that holds another sweep (a manifest with another name), e.g. a
    symlink to a finished study's folder: the new sweep would replace its manifest and `status`
    would then describe the wrong sweep. A folder of the same name is this sweep's own: re-runs
    and a grown sweep file resume there. An unreadable manifest is rewritten (with a warning)."""
    path = Path(out) / MANIFEST
    if not path.is_file():
        return
    try:
        other = json.loads(path.read_text(encoding="utf-8"))
        other_name = other["name"]
    except (OSError, ValueError, UnicodeDecodeError, TypeError, KeyError):
        print(f"xscale: warning: {path}: unreadable; it is rewritten", file=sys.stderr)
        return
    if other_name != name:
        real = os.path.realpath(out)
        where = f"{out}" + (f" (a link to {real})" if real != str(out) else "")
        raise XScaleError(
            f"{what}: {where} holds another sweep, {other_name!r} ({other.get('sweep_file')});"
            f" give sweep {name!r} a folder of its own"
        )


def read_manifest(out: str | Path) -> dict:
    """The manifest of the sweep folder `out`; one-line errors for a folder that is not one."""
    path = Path(out) / MANIFEST
    if not Path(out).is_dir():
        raise XScaleError(f"{out}: no such folder")
    if not path.is_file():
        raise XScaleError(f"{out}: not a sweep folder (no {MANIFEST}; start one with xscale sweep)")
    try:
        m = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise XScaleError(f"{path}: corrupt ({type(e).__name__}: {e})") from None
    if not isinstance(m, dict) or not isinstance(m.get("groups"), dict) or "name" not in m:
        raise XScaleError(f"{path}: not an xscale sweep manifest (no name / groups)")
    return m


def graph_of(manifest: dict, where: str = MANIFEST):
    """The stage graph recorded in a manifest."""

    try:
        return Graph({k: Group.from_json(g) for k, g in manifest["groups"].items()})
    except (KeyError, TypeError, ValueError) as e:
        raise XScaleError(
            f"{where}: written by another xscale version or damaged (group field {e}); re-run"
            " `xscale sweep` with the sweep file to rewrite it"
        ) from None
