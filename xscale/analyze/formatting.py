"""Table values for display (`fmt`, missing is always `—`) and for CSV (`flatten`, `write_csv`)."""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from xscale.analyze.names import MISSING
from xscale.analyze.stats import Correlation, Fit, PairedGain, Summary, Trend
from xscale.analyze.tables import Partial


def flatten(row: Mapping[str, Any]) -> dict[str, Any]:
    """A table row with Summary/PairedGain/Fit values spread into plain CSV columns."""
    out: dict[str, Any] = {}
    for k, v in row.items():
        if isinstance(v, PairedGain):
            out.update(flatten({k: v.gain}))
            out[f"{k}_p_value"], out[f"{k}_note"] = v.p_value, v.note
        elif isinstance(v, Summary):
            ci = v.ci or (None, None)
            out.update({f"{k}_n": v.n, f"{k}_n_missing": v.n_missing, f"{k}_mean": v.mean})
            if v.interval:
                out.update({f"{k}_ci_low": ci[0], f"{k}_ci_high": ci[1]})
                out[f"{k}_deterministic"] = v.deterministic
        elif isinstance(v, Partial):
            out[f"{k}_mean"] = None
            out[f"{k}_partial"] = f"{v.have} of {v.total} {v.what}"
            out[f"{k}_missing"] = ", ".join(v.missing)
        elif isinstance(v, Trend):
            ci = v.ci or (None, None)
            out.update(
                {
                    f"{k}_kind": v.kind,
                    f"{k}_n_sizes": v.n_sizes,
                    f"{k}_n": v.n,
                    f"{k}_estimate": v.estimate,
                    f"{k}_ci_low": ci[0],
                    f"{k}_ci_high": ci[1],
                    f"{k}_p_value": v.p_value,
                    f"{k}_r2": v.r2,
                    f"{k}_note": v.note,
                }
            )
        elif isinstance(v, Correlation):
            out.update({"n": v.n, "r": v.r, "r_ci_low": v.ci_low, "r_ci_high": v.ci_high})
            out.update({"p_value": v.p_value, "note": v.note})
        elif isinstance(v, Fit):
            ci = v.slope_ci or (None, None)
            out.update(
                {
                    "n": v.n,
                    "n_sizes": v.n_sizes,
                    "slope": v.slope,
                    "slope_ci_low": ci[0],
                    "slope_ci_high": ci[1],
                    "intercept": v.intercept,
                    "r2": v.r2,
                    "note": v.note,
                }
            )
        else:
            out[k] = v
    return out


def fmt(v: Any, digits: int = 2) -> str:
    """Display form of a table value; missing is always `—`."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return MISSING
    if isinstance(v, PairedGain):
        g = v.gain
        if g.mean is None:
            return f"{MISSING} ({v.note})" if v.note else MISSING
        text = f"{g.mean:+.{digits}f}"
        text += (
            f" ± {g.half_width:.{digits}f}" if g.half_width is not None else " (n=1, CI undefined)"
        )
        text += f", p={v.p_value:.3g}" if v.p_value is not None else f"; {v.note}"
        return text + (f" [{g.n_missing} unpaired]" if g.n_missing else "")
    if isinstance(v, Summary):
        if v.mean is None:
            return MISSING
        if v.deterministic:
            text = f"{v.mean:.{digits}f} (deterministic: n distinct = 1, no interval)"
            return text + (f" [n={v.n}, {v.n_missing} missing]" if v.n_missing else "")
        if v.half_width is None:
            undefined = v.interval and v.n == 1
            text = f"{v.mean:.{digits}f}" + (" (n=1, CI undefined)" if undefined else "")
        else:
            text = f"{v.mean:.{digits}f} ± {v.half_width:.{digits}f}"
        return text + (f" [n={v.n}, {v.n_missing} missing]" if v.n_missing else "")
    if isinstance(v, Correlation):
        if v.r is None:
            return f"{MISSING} ({v.note})"
        ci = f" [{v.ci_low:+.2f}, {v.ci_high:+.2f}]" if v.ci_low is not None else " (CI undefined)"
        return f"r={v.r:+.2f}{ci}, p={v.p_value:.3g}, n={v.n}"
    if isinstance(v, Trend):
        return _fmt_trend(v, digits)
    if isinstance(v, Partial):
        names = ", ".join(v.missing[:4]) + (", ..." if len(v.missing) > 4 else "")
        return f"partial, {v.have} of {v.total} {v.what} (missing: {names})"
    if isinstance(v, Fit):
        if v.slope is None:
            return f"{MISSING} ({v.note})"
        ci = v.slope_ci
        text = f"slope {v.slope:+.{digits}f}"
        text += f" [{ci[0]:+.{digits}f}, {ci[1]:+.{digits}f}]" if ci else " (CI undefined)"
        text += f", r²={v.r2:.3f}" if v.r2 is not None else ""
        return text + f", n={v.n}" + (f"; {v.note}" if v.note else "")
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _fmt_trend(t: Trend, digits: int) -> str:
    if t.kind == "none":
        return f"{MISSING} ({t.note})"
    if t.kind == "deterministic":
        return f"{MISSING} ({t.note}, no interval)"
    ci = f" [{t.ci_low:+.{digits}f}, {t.ci_high:+.{digits}f}]" if t.ci else ""
    p = f", p={t.p_value:.3g}" if t.p_value is not None else ""
    if t.kind == "two_models":
        small, large = t.sizes or ("smaller", "larger")
        return f"{large} - {small}: {t.estimate:+.{digits}f}{ci}{p} ({t.note})"
    if not t.ci:
        return f"slope {t.estimate:+.{digits}f} per 10x params ({t.note}; no interval)"
    r2 = f", r²={t.r2:.3f}" if t.r2 is not None else ""
    return f"slope {t.estimate:+.{digits}f}{ci} per 10x params{p}{r2}, {t.n_sizes} sizes"


def write_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    flat = [flatten(r) for r in rows]
    columns = list(dict.fromkeys(c for r in flat for c in r))
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns or ["empty"], restval="")
        w.writeheader()
        for r in flat:
            w.writerow({k: "" if v is None else v for k, v in r.items()})


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "x"
