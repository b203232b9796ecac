"""Which stage of a group its children start from: the best complete stage by the English dev
metric, recorded in `<output_dir>/groups/<group key>.json`; and the concrete stages of a graph
that are known from those records (`resolve`). No Ray, no training: `plan` and `status` use it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from xscale.graph.expand import Graph, Group
from xscale.graph.stage import (
    MARKER,
    STAGES,
    StageSpec,
    invalidate,
    is_complete,
    read_result,
    stage_dir,
    stage_path,
    verify_stage,
)
from xscale.tracking.names import DEV_SCORE


def select_best(
    output_dir: Path,
    group: Group,
    specs: list[StageSpec],
    mode: str,
    reports: dict[str, int] | None = None,
) -> str | None:
    """Pick the group's best complete stage; record it in groups/<key>.json, with how many
    intermediate results each stage reported to the scheduler (`reports`, by stage key)."""
    done = [
        (s, read_result(stage_dir(output_dir, s)))
        for s in specs
        if is_complete(stage_dir(output_dir, s))
    ]
    if not done:
        return None

    def score(item):
        v = item[1].dev_score
        return float("-inf") if v is None else (v if mode == "max" else -v)

    best, _ = max(done, key=score)
    record = {
        "group": group.key,
        "selected": best.key,
        "candidates": [
            {
                "stage": s.key,
                DEV_SCORE: r.dev_score,
                **({"reports": reports.get(s.key, 0)} if reports is not None else {}),
            }
            for s, r in done
        ],
    }
    path = output_dir / "groups" / f"{group.key}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2))
    tmp.replace(path)
    return best.key


def read_selection(path: Path) -> str:
    """The stage a `groups/<key>.json` record selected; ValueError saying why when it is not a
    record xscale wrote."""
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:  # UnicodeDecodeError is a ValueError
        raise ValueError(f"unreadable ({type(e).__name__})") from None
    chosen = record.get("selected") if isinstance(record, dict) else None
    if not isinstance(chosen, str) or not chosen:
        raise ValueError("names no selected stage")
    return chosen


def load_selection(output_dir: Path) -> dict[str, str]:
    """Group key -> its selected stage; a damaged record counts as no selection (`status` and
    `plan` show the group as waiting; `xscale sweep` sets it aside and the group chooses again)."""
    out = {}
    for f in (Path(output_dir) / "groups").glob("*.json"):
        try:
            out[f.stem] = read_selection(f)
        except ValueError:
            continue
    return out


def verify_reuse(output_dir: Path, say: Callable[[str], None]) -> int:
    """Before a sweep reuses anything in `output_dir`: every complete stage's outputs are checked
    against its marker (`verify_stage`: sizes, SHA-256 of its results) and every group's
    selection is read; a stage that fails is set back to not complete (its marker kept aside
    with the reason) and runs again, a damaged selection or one whose stage is no longer
    complete is set aside and its group chooses again. One line each through `say`; returns
    how many were set back."""
    output_dir = Path(output_dir)
    count = 0
    for folder in sorted((output_dir / STAGES).glob("*/")):
        if not (folder / MARKER).is_file():
            continue
        reason = verify_stage(folder)
        if reason is not None:
            invalidate(folder, reason)
            say(f"stage {_label_of(folder)}: {reason}: it runs again")
            count += 1
    for f in sorted((output_dir / "groups").glob("*.json")):
        try:
            chosen = read_selection(f)
        except ValueError as e:
            reason = f"{f}: {e}"
        else:
            if is_complete(stage_path(output_dir, chosen)):
                continue
            reason = f"{f}: its selected stage {chosen} is not complete"
        f.replace(f.with_name(f.name + ".invalid"))
        say(f"{reason}: the group chooses again")
        count += 1
    return count


def _label_of(folder: Path) -> str:
    try:
        return StageSpec.model_validate_json((folder / "spec.json").read_text()).label
    except (OSError, ValueError):
        return folder.name


def resolve(graph: Graph, output_dir: Path) -> dict[str, list[StageSpec] | None]:
    """Concrete stages per group where they are known now (None: waits on a parent's search)."""
    selected = load_selection(output_dir)
    known: dict[str, list[StageSpec] | None] = {}
    chosen: dict[str, str | None] = {}
    for level in graph.by_depth():
        for g in level:
            parent_stage = None
            if g.parent is not None:
                parent_stage = chosen.get(g.parent)
                if parent_stage is None:
                    known[g.key] = None
                    chosen[g.key] = None
                    continue
            if g.optuna:
                known[g.key] = None
                chosen[g.key] = selected.get(g.key)
                continue
            specs = [g.stage(s, parent_stage) for s in g.samples]
            known[g.key] = specs
            chosen[g.key] = specs[0].key if len(specs) == 1 else selected.get(g.key)
    return known


@dataclass(frozen=True)
class Planned:
    """One stage a sweep will run: its group and, once known, its spec (None: it waits on a
    parent's selection, or it is an Optuna sample not drawn yet; `why` says which)."""

    group: Group
    spec: StageSpec | None
    why: str | None = None


def group_stage_count(g: Group, num_samples: int | None) -> int:
    """Stages of one group: its grid points, or the Optuna samples its search asks for."""
    return max(1, num_samples or 1) if g.optuna else max(1, len(g.samples))


def planned(graph: Graph, output_dir: Path, num_samples: int | None) -> list[Planned]:
    """Every stage of the sweep, one entry each, in depth order: the one counting rule of
    `plan`, `status`, the sweep's start line and its progress total."""
    known = resolve(graph, output_dir)
    out: list[Planned] = []
    for g in sorted(graph.groups.values(), key=lambda g: (g.depth, -g.cost, g.label)):
        specs = known.get(g.key)
        if specs is not None:
            out.extend(Planned(g, s) for s in specs)
            continue
        why = "waits on search" if g.optuna and _parent_ready(g, known) else "waits on parent"
        out.extend(Planned(g, None, why) for _ in range(group_stage_count(g, num_samples)))
    return out


def _parent_ready(g: Group, known: dict) -> bool:
    return g.parent is None or known.get(g.parent) is not None
