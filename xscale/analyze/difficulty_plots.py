"""Plots of difficulty and alignment (analyze/difficulty.py's tables): alignment across the three
phases per size, alignment per layer, and difficulty or alignment against transfer."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from xscale.analyze.analysis import Analysis
from xscale.analyze.difficulty import correlation_points
from xscale.analyze.formatting import safe_name
from xscale.analyze.names import _inter_order
from xscale.analyze.plots import _errorbars, _figure
from xscale.analyze.tables import _size_order

PHASES = ("pretrained", "after_intermediate", "after_target")
LABELS = {"cka": "linear CKA (x100)", "retrieval": "retrieval accuracy (%)"}


def plot_alignment_phases(a: Analysis, out_dir: Path) -> list[tuple[str, str]]:
    """Per target: CKA and retrieval (last layer) at each phase, a panel per size, a line per
    intermediate task (mean ± 95% CI over seeds)."""
    images = []
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in a.alignment_phases:
        if r["metric"] in LABELS:
            groups[(r["target_task"], r["train_languages"])].append(r)
    order = _size_order(a.scored)
    for (target, mode), rows in sorted(groups.items()):
        sizes = sorted({r["model_size"] for r in rows}, key=order)
        fig, axes = _figure(3.6 * len(sizes) + 1, 6.4, 2, len(sizes))
        for col, size in enumerate(sizes):
            for row, metric in enumerate(LABELS):
                ax = axes[row][col]
                mine = [r for r in rows if r["model_size"] == size and r["metric"] == metric]
                for r in sorted(mine, key=lambda r: _inter_order(r["intermediate_task"])):
                    pts = [(i, r[p]) for i, p in enumerate(PHASES) if r[p].mean is not None]
                    _errorbars(ax, pts, r["intermediate_task"])
                ax.set_xticks(range(3), ["pretrained", "intermediate", "target"])
                ax.set_ylabel(LABELS[metric])
                ax.set_title(f"{size} (layer {mine[0]['layer']})" if mine else size, fontsize=9)
                ax.grid(True, alpha=0.3)
        axes[0][0].legend(fontsize=7)
        fig.suptitle(f"alignment by phase, chains ending in {target} (train: {mode})")
        name = f"plot_alignment_phases_{safe_name(target)}_{safe_name(mode)}.png"
        fig.savefig(out_dir / name)
        images.append((name, f"{target}, train {mode}: alignment after each phase, per size"))
    return images


def plot_alignment_layers(a: Analysis, out_dir: Path) -> list[tuple[str, str]]:
    """Per target and size: CKA per layer, a line per phase and intermediate task."""
    images = []
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in a.alignment_layers:
        if r["metric"] == "cka":
            groups[(r["target_task"], r["train_languages"], r["model_size"])].append(r)
    for (target, mode, size), rows in sorted(groups.items()):
        fig, axes = _figure(7, 4.2)
        ax = axes[0][0]
        layers = sorted({r["layer"] for r in rows})
        pre = {r["layer"]: r["pretrained"].mean for r in rows}
        ax.plot(layers, [pre.get(k) for k in layers], "k--", marker="s", label="pretrained")
        for inter in sorted({r["intermediate_task"] for r in rows}, key=_inter_order):
            by_layer = {r["layer"]: r for r in rows if r["intermediate_task"] == inter}
            for phase, style in (("after_intermediate", ":"), ("after_target", "-")):
                ys = [by_layer[k][phase].mean if k in by_layer else None for k in layers]
                if any(y is not None for y in ys):
                    ax.plot(layers, ys, style, marker="o", label=f"{inter}, {phase[6:]}")
        ax.set_xticks(layers)
        ax.set_xlabel("layer (0-based)")
        ax.set_ylabel(LABELS["cka"])
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
        ax.set_title(f"{size}: chains ending in {target} (train: {mode})", fontsize=9)
        name = f"plot_alignment_layers_{safe_name(size)}_{safe_name(target)}_{safe_name(mode)}.png"
        fig.savefig(out_dir / name)
        images.append((name, f"{size}, {target}, train {mode}: CKA per layer and phase"))
    return images


def plot_difficulty_transfer(a: Analysis, out_dir: Path) -> list[tuple[str, str]]:
    """Per target: the non-English gain over `none` against the confidence of what the
    intermediate stage trained on (cells) and against its change in CKA (runs)."""
    points = correlation_points(a.scored, a.tables)
    panels = (
        ("trained_confidence", "mean confidence of the trained examples (cells)"),
        (
            "change_intermediate:cka_debiased",
            "debiased CKA change in intermediate training, x100 (runs)",
        ),
    )
    images = []
    for target, mode in sorted({(k[0], k[1]) for k in points}):
        drawn = []
        for predictor, label in panels:
            pts = [
                (x, y)
                for x, y, _ in points.get((target, mode, predictor, "gain_non_en"), [])
                if x is not None and y is not None
            ]
            if pts:
                drawn.append((label, pts))
        if not drawn:
            continue
        fig, axes = _figure(5 * len(drawn), 4, 1, len(drawn))
        for ax, (label, pts) in zip(axes[0], drawn):
            ax.scatter([x for x, _ in pts], [y for _, y in pts], s=18)
            ax.axhline(0, color="grey", lw=0.8)
            ax.set_xlabel(label, fontsize=8)
            ax.set_ylabel("non-English gain over none")
            ax.grid(True, alpha=0.3)
        fig.suptitle(f"difficulty and alignment against transfer: {target} (train: {mode})")
        name = f"plot_difficulty_transfer_{safe_name(target)}_{safe_name(mode)}.png"
        fig.savefig(out_dir / name)
        images.append((name, f"{target}, train {mode}: gain against difficulty and alignment"))
    return images


def difficulty_plots(a: Analysis, out_dir: Path) -> list[tuple[str, str]]:
    return (
        plot_alignment_phases(a, out_dir)
        + plot_alignment_layers(a, out_dir)
        + plot_difficulty_transfer(a, out_dir)
    )
