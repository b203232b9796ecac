"""The report's plots (matplotlib, no pyplot): score and gap vs parameters, gain heatmaps and
per-language bars; each returns [(png file name, caption)]."""

from __future__ import annotations

import itertools
from collections import defaultdict
from pathlib import Path

from xscale.analyze.analysis import Analysis
from xscale.analyze.formatting import safe_name
from xscale.analyze.names import MISSING, _inter_order, _lang_order
from xscale.analyze.tables import _size_order


def _figure(width: float, height: float, rows: int = 1, cols: int = 1):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    return fig, fig.subplots(rows, cols, squeeze=False)


def _by_size(rows: list[dict], inter: str, q: str) -> list[tuple]:
    """(parameters, summary of `q`) of one intermediate task's rows that have a value, by size."""
    return sorted(
        (
            (r["model_params"], r[q])
            for r in rows
            if r["intermediate_task"] == inter and r["model_params"] and r[q].mean is not None
        ),
        key=lambda p: p[0],
    )


def _errorbars(ax, pts: list[tuple], label: str) -> None:
    """One line of (x, summary) points with their 95% interval as error bars."""
    ax.errorbar(
        [x for x, _ in pts],
        [s.mean for _, s in pts],
        yerr=[s.half_width or 0.0 for _, s in pts],
        marker="o",
        capsize=3,
        label=label,
    )


def plot_scaling(a: Analysis, out_dir: Path) -> list[tuple[str, str]]:
    """Non-English score and gap vs parameters (log x), one line per intermediate task."""
    images = []
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for c in a.cells:
        groups[(c["target_task"], c["train_languages"])].append(c)
    for (target, mode), cells in sorted(groups.items()):
        fig, axes = _figure(11, 4.2, 1, 2)
        drawn = False
        for inter in sorted({c["intermediate_task"] for c in cells}, key=_inter_order):
            for ax, q in zip(axes[0], ("non_en", "gap")):
                if pts := _by_size(cells, inter, q):
                    drawn = True
                    _errorbars(ax, pts, inter)
        if not drawn:
            continue
        for ax, label in zip(axes[0], ("non-English mean", "gap (en - non-en)")):
            ax.set_xscale("log")
            ax.set_xlabel("parameters")
            ax.set_ylabel(label)
            ax.grid(True, alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=8)
            else:  # e.g. retrieval from English: no English score, so no gap
                ax.text(0.5, 0.5, "not defined for this task", ha="center", transform=ax.transAxes)
        fig.suptitle(f"{target} (train: {mode}) - mean ± 95% CI over seeds")
        name = f"plot_scaling_{safe_name(target)}_{safe_name(mode)}.png"
        fig.savefig(out_dir / name)
        images.append((name, f"{target}, train {mode}: score and gap vs parameters"))
    return images


def plot_gain_heatmaps(a: Analysis, out_dir: Path) -> list[tuple[str, str]]:
    """Intermediate x target heatmap of the mean non-English gain over `none`, one per size."""
    import numpy as np

    images = []
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for g in a.gains:
        groups[(g["model_size"], g["train_languages"])].append(g)
    order = _size_order(a.scored)
    for (size, mode), gains in sorted(groups.items(), key=lambda kv: (kv[0][1], order(kv[0][0]))):
        inters = sorted({g["intermediate_task"] for g in gains}, key=_inter_order)
        targets = sorted({g["target_task"] for g in gains})
        grid = np.full((len(inters), len(targets)), np.nan)
        for g in gains:
            mean = g["gain_non_en"].gain.mean
            if mean is not None:
                grid[inters.index(g["intermediate_task"]), targets.index(g["target_task"])] = mean
        fig, axes = _figure(max(4.5, 1.3 * len(targets) + 3), max(2.5, 0.6 * len(inters) + 1.5))
        ax = axes[0][0]
        vmax = float(np.nanmax(np.abs(grid))) if np.isfinite(grid).any() else 0.0
        vmax = vmax or 1.0
        from matplotlib import colormaps

        cmap = colormaps["RdBu"].with_extremes(bad="#cccccc")
        im = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=-vmax, vmax=vmax)
        ax.set_xticks(range(len(targets)), targets, rotation=30, ha="right")
        ax.set_yticks(range(len(inters)), inters)
        for i, j in itertools.product(range(len(inters)), range(len(targets))):
            v = grid[i, j]
            color = "white" if abs(v) > 0.6 * vmax else "black"  # NaN -> black on grey
            ax.text(
                j, i, MISSING if np.isnan(v) else f"{v:+.2f}", ha="center", va="center", color=color
            )
        fig.colorbar(im, ax=ax, label="non-English gain over none")
        ax.set_title(f"{size} (train: {mode})")
        name = f"plot_gain_heatmap_{safe_name(size)}_{safe_name(mode)}.png"
        fig.savefig(out_dir / name)
        images.append((name, f"{size}, train {mode}: intermediate x target gain (— = missing)"))
    return images


def plot_languages(a: Analysis, out_dir: Path) -> list[tuple[str, str]]:
    """Per-language bars (mean ± CI over seeds), one panel per size, one bar per intermediate."""
    images = []
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in a.languages:
        groups[(r["target_task"], r["train_languages"])].append(r)
    order = _size_order(a.scored)
    for (target, mode), rows in sorted(groups.items()):
        sizes = sorted({r["model_size"] for r in rows}, key=order)
        inters = sorted({r["intermediate_task"] for r in rows}, key=_inter_order)
        langs = _lang_order(r["language"] for r in rows)
        width = min(24.0, max(7.0, 0.3 * len(langs) * len(inters) + 2))
        fig, axes = _figure(width, 2.6 * len(sizes) + 0.6, len(sizes), 1)
        bar = 0.8 / len(inters)
        index = {(r["model_size"], r["intermediate_task"], r["language"]): r["score"] for r in rows}
        for ax, size in zip(axes[:, 0], sizes):
            for n, inter in enumerate(inters):
                stats_ = [index.get((size, inter, lang)) for lang in langs]
                ok = [(i, s) for i, s in enumerate(stats_) if s is not None and s.mean is not None]
                xs = [i + n * bar for i, _ in ok]
                ys = [s.mean for _, s in ok]
                err = [s.half_width or 0.0 for _, s in ok]
                ax.bar(xs, ys, bar, yerr=err, capsize=2, label=inter)
            ax.set_xticks([i + 0.4 - bar / 2 for i in range(len(langs))], langs)
            ax.set_title(f"{size}", fontsize=10)
            ax.grid(True, axis="y", alpha=0.3)
        axes[0][0].legend(fontsize=8, ncols=min(4, len(inters)))
        fig.suptitle(f"{target} (train: {mode}) per language; missing bars are missing scores")
        name = f"plot_languages_{safe_name(target)}_{safe_name(mode)}.png"
        fig.savefig(out_dir / name)
        images.append((name, f"{target}, train {mode}: per-language scores"))
    return images


def plot_robustness(a: Analysis, out_dir: Path) -> list[tuple[str, str]]:
    """Per perturbation set: English and non-English drop vs parameters (log x), one line per
    intermediate task, mean ± 95% CI over seeds."""
    images = []
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in a.robustness_size:
        groups[(r["set"], r["target_task"], r["train_languages"])].append(r)
    for (pert, target, mode), rows in sorted(groups.items()):
        fig, axes = _figure(11, 4.2, 1, 2)
        drawn = False
        for inter in sorted({r["intermediate_task"] for r in rows}, key=_inter_order):
            for ax, q in zip(axes[0], ("drop_en", "drop_non_en")):
                if pts := _by_size(rows, inter, q):
                    drawn = True
                    _errorbars(ax, pts, inter)
        if not drawn:
            continue
        for ax, label in zip(axes[0], ("English drop", "non-English mean drop")):
            ax.set_xscale("log")
            ax.set_xlabel("parameters")
            ax.set_ylabel(f"{label} (points)")
            ax.axhline(0.0, color="grey", linewidth=0.8)
            ax.grid(True, alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=8)
        fig.suptitle(f"{target} (train: {mode}) under {pert}: clean minus perturbed, ± 95% CI")
        name = f"plot_robustness_{safe_name(target)}_{safe_name(mode)}_{safe_name(pert)}.png"
        fig.savefig(out_dir / name)
        images.append((name, f"{target}, train {mode}: degradation under {pert} vs parameters"))
    return images


def make_plots(a: Analysis, out_dir: Path) -> list[tuple[str, str]]:
    return (
        plot_scaling(a, out_dir)
        + plot_gain_heatmaps(a, out_dir)
        + plot_languages(a, out_dir)
        + plot_robustness(a, out_dir)
    )
