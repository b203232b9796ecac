"""Which stage of a group its children start from: the best complete stage by the English dev
metric, recorded in `<output_dir>/groups/<group key>.json`; and the concrete stages of a graph
that are known from those records (`resolve`). No Ray, no training: `plan` and `status` use it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from xscale.graph.expand import Graph, Group
from xscale.graph.stage import StageSpec, is_complete, read_result, stage_dir
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


def load_selection(output_dir: Path) -> dict[str, str]:
    out = {}
    for f in (Path(output_dir) / "groups").glob("*.json"):
        out[f.stem] = json.loads(f.read_text())["selected"]
    return out


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
