"""Means with t-intervals, paired gains with the paired t-test, and OLS fits on log10(params).
Missing values (None or NaN) are skipped and counted, never averaged as zero."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from statistics import fmean

from xscale.analyze.names import _seed_order


@dataclass(frozen=True)
class Summary:
    """Mean over the present values and its t-interval; `n_missing` values were skipped."""

    n: int
    mean: float | None
    half_width: float | None  # None when n < 2: the interval is undefined
    n_missing: int = 0
    interval: bool = True  # False: a plain mean, no interval intended
    distinct: int = 0  # distinct values among the present ones

    @property
    def deterministic(self) -> bool:
        """Replicates that are one computation (every value equal): no interval to give."""
        return self.n >= 2 and self.distinct == 1

    @property
    def ci(self) -> tuple[float, float] | None:
        if self.half_width is None or self.mean is None:
            return None
        return (self.mean - self.half_width, self.mean + self.half_width)


def _present(values: Iterable[float | None]) -> list[float]:
    return [float(v) for v in values if v is not None and not math.isnan(v)]


def t_quantile(df: int, confidence: float = 0.95) -> float:
    from scipy import stats

    return float(stats.t.ppf(0.5 + confidence / 2, df))


def summarize(values: Sequence[float | None], confidence: float = 0.95) -> Summary:
    present = _present(values)
    n, n_missing = len(present), len(values) - len(present)
    distinct = len(set(present))
    if n == 0:
        return Summary(0, None, None, n_missing)
    mean = math.fsum(present) / n
    if n == 1 or distinct == 1:  # one value, or replicates that are one computation
        return Summary(n, mean, None, n_missing, distinct=distinct)
    half = t_quantile(n - 1, confidence) * statistics.stdev(present) / math.sqrt(n)
    return Summary(n, mean, half, n_missing, distinct=distinct)


def mean_only(values: Sequence[float | None]) -> Summary:
    """Plain mean over the present values (no interval), counting the missing ones."""
    s = summarize(values)
    return Summary(s.n, s.mean, None, s.n_missing, interval=False, distinct=s.distinct)


@dataclass(frozen=True)
class PairedGain:
    """Mean of paired differences (treatment - baseline), its CI and the paired t-test p-value.
    `gain.n_missing` counts seeds where one side (or both) is missing."""

    gain: Summary
    p_value: float | None
    note: str = ""


def paired_gain(treat: Mapping[str, float | None], base: Mapping[str, float | None]) -> PairedGain:
    seeds = sorted(set(treat) | set(base), key=_seed_order)
    pairs = [
        (treat[s], base[s]) for s in seeds if _present([treat.get(s)]) and _present([base.get(s)])
    ]
    diffs = [t - b for t, b in pairs]
    gain = summarize(diffs)
    gain = Summary(gain.n, gain.mean, gain.half_width, len(seeds) - len(pairs), True, gain.distinct)
    if gain.n < 2:
        return PairedGain(gain, None, f"p not computable: n={gain.n} pairs (<2)")
    if statistics.stdev(diffs) <= 1e-12 * max(1.0, abs(gain.mean)):
        return PairedGain(gain, None, "deterministic: every pair differs by the same amount")
    from scipy import stats

    p = float(stats.ttest_rel([t for t, _ in pairs], [b for _, b in pairs]).pvalue)
    return PairedGain(gain, p)


@dataclass(frozen=True)
class Fit:
    """OLS fit y = intercept + slope * log10(params)."""

    n: int
    n_sizes: int
    slope: float | None
    intercept: float | None
    slope_half_width: float | None
    r2: float | None
    note: str = ""

    @property
    def slope_ci(self) -> tuple[float, float] | None:
        if self.slope is None or self.slope_half_width is None:
            return None
        return (self.slope - self.slope_half_width, self.slope + self.slope_half_width)


def fit_log_params(points: Sequence[tuple[float | None, float | None]]) -> Fit:
    """Fit y on log10(x) over points (x = parameter count); points with a missing side skipped."""
    pts = [
        (math.log10(x), float(y)) for x, y in points if _present([x]) and x > 0 and _present([y])
    ]
    n, n_sizes = len(pts), len({x for x, _ in pts})
    if n_sizes < 2:
        return Fit(n, n_sizes, None, None, None, None, "not computable: fewer than 2 sizes")
    x_mean = math.fsum(x for x, _ in pts) / n
    y_mean = math.fsum(y for _, y in pts) / n
    sxx = math.fsum((x - x_mean) ** 2 for x, _ in pts)
    slope = math.fsum((x - x_mean) * (y - y_mean) for x, y in pts) / sxx
    intercept = y_mean - slope * x_mean
    sse = math.fsum((y - intercept - slope * x) ** 2 for x, y in pts)
    sst = math.fsum((y - y_mean) ** 2 for _, y in pts)
    r2 = 1.0 - sse / sst if sst > 0 else None
    note = "" if sst > 0 else "r² undefined: y constant"
    if n < 3:
        return Fit(n, n_sizes, slope, intercept, None, r2, "CI undefined: n<3")
    half = t_quantile(n - 2) * math.sqrt(sse / (n - 2) / sxx)
    return Fit(n, n_sizes, slope, intercept, half, r2, note)


@dataclass(frozen=True)
class Trend:
    """A quantity against model size, estimated at the level where it varies: each size is one
    checkpoint, so its seeds are replicates of that checkpoint's score, not of a size effect.

    `kind`:
    - "fit": 3 or more sizes: OLS of the per-size means on log10(params) (statsmodels), slope
      with its t-interval on sizes - 2 degrees of freedom and p-value: the checkpoint-to-
      checkpoint variation is in the residuals, whatever the seeds vary;
    - "two_models": 2 sizes: the larger minus the smaller mean, with a Welch interval over the
      seeds (a comparison of two checkpoints, never a slope: with one pretraining draw per size
      the interval holds the seeds' variation only);
    - "deterministic": every value identical: no interval;
    - "none": fewer than 2 sizes (`note` says why)."""

    kind: str
    n_sizes: int
    n: int  # seed-level values used
    estimate: float | None = None  # slope per decade of parameters, or larger - smaller
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None
    r2: float | None = None
    note: str = ""
    sizes: tuple[str, ...] = ()  # two_models: (smaller, larger)

    @property
    def ci(self) -> tuple[float, float] | None:
        return None if self.ci_low is None else (self.ci_low, self.ci_high)


def size_trend(
    by_size: Mapping[float, Sequence[float | None]],
    names: Mapping[float, str] | None = None,
    confidence: float = 0.95,
) -> Trend:
    """`by_size`: parameter count -> the seeds' values of one quantity at that size."""
    sizes = {float(p): _present(vs) for p, vs in by_size.items() if p is not None and p > 0}
    sizes = {p: vs for p, vs in sizes.items() if vs}
    n = sum(len(vs) for vs in sizes.values())
    k = len(sizes)
    if k < 2:
        return Trend("none", k, n, note=f"needs at least 2 sizes (has {k})")
    values = [v for vs in sizes.values() for v in vs]
    if len(set(values)) == 1:
        return Trend("deterministic", k, n, note="deterministic: every value identical")
    order = sorted(sizes)
    if k == 2:
        small, large = (sizes[p] for p in order)
        diff = fmean(large) - fmean(small)
        label = tuple((names or {}).get(p, f"{p:g}") for p in order)
        note = "two checkpoints, not a trend; the interval is the seeds' variation only"
        if len(small) < 2 or len(large) < 2:
            return Trend("two_models", k, n, diff, note=note + "; CI undefined (n<2)", sizes=label)
        from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

        cm = CompareMeans(DescrStatsW(large), DescrStatsW(small))
        if statistics.stdev(large) == 0 and statistics.stdev(small) == 0:
            return Trend(
                "two_models", k, n, diff, note=note + "; each size deterministic", sizes=label
            )
        low, high = cm.tconfint_diff(alpha=1 - confidence, usevar="unequal")
        p = float(cm.ttest_ind(usevar="unequal")[1])
        return Trend("two_models", k, n, diff, float(low), float(high), p, note=note, sizes=label)
    import numpy as np
    import statsmodels.api as sm

    x = np.log10(np.array(order))
    y = np.array([fmean(sizes[p]) for p in order])
    res = sm.OLS(y, sm.add_constant(x)).fit()
    if res.df_resid < 1 or float(res.ssr) <= 1e-24 * max(1.0, float(np.sum(y**2))):
        return Trend("fit", k, n, float(res.params[1]), note="exact fit: no residual variance")
    low, high = (float(v) for v in res.conf_int(alpha=1 - confidence)[1])
    return Trend(
        "fit",
        k,
        n,
        float(res.params[1]),
        low,
        high,
        float(res.pvalues[1]),
        float(res.rsquared),
        note=f"OLS on {k} per-size means, df={int(res.df_resid)}",
    )


def adjust(p_values: Sequence[float | None]) -> tuple[list, list]:
    """Holm and Benjamini-Hochberg adjusted p-values of a table's tests (statsmodels'
    `multipletests`), None where a test has no p-value."""
    idx = [i for i, p in enumerate(p_values) if p is not None and not math.isnan(p)]
    holm: list = [None] * len(p_values)
    bh: list = [None] * len(p_values)
    if idx:
        from statsmodels.stats.multitest import multipletests

        ps = [float(p_values[i]) for i in idx]
        for name, out in (("holm", holm), ("fdr_bh", bh)):
            adjusted = multipletests(ps, method=name)[1]
            for i, a in zip(idx, adjusted):
                out[i] = float(a)
    return holm, bh


@dataclass(frozen=True)
class Correlation:
    """Pearson's r over n points, its 95% interval (Fisher's z: tanh(atanh r ± z_0.975 /
    sqrt(n-3)), defined for n >= 4) and the two-sided p-value (scipy.stats.pearsonr)."""

    n: int
    r: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    note: str = ""


def pearson(points: Sequence[tuple[float | None, float | None]]) -> Correlation:
    """Correlation of the points whose two values are both present."""
    pts = [(float(x), float(y)) for x, y in points if _present([x]) and _present([y])]
    n = len(pts)
    if n < 3:
        return Correlation(n, None, None, None, None, f"not computable: n={n} (<3)")
    xs, ys = [x for x, _ in pts], [y for _, y in pts]
    if statistics.pstdev(xs) == 0 or statistics.pstdev(ys) == 0:
        return Correlation(n, None, None, None, None, "not computable: a constant variable")
    from scipy import stats

    r, p = (float(v) for v in stats.pearsonr(xs, ys))
    if n < 4:
        return Correlation(n, r, None, None, p, "CI undefined: n<4")
    z, half = math.atanh(max(-0.999999, min(0.999999, r))), stats.norm.ppf(0.975) / math.sqrt(n - 3)
    return Correlation(n, r, math.tanh(z - half), math.tanh(z + half), p)


def within_size_correlation(
    points: Sequence[tuple[float | None, float | None, str]], confidence: float = 0.95
) -> Correlation:
    """The correlation of x and y within sizes (repeated-measures correlation: each size's
    points centred on their own means, so size cannot drive both sides): the partial r of x
    in the OLS y ~ size + x (statsmodels), df = points - sizes - 1, its two-sided p, and a
    Fisher-z interval on df - 1. Points with a missing side are skipped."""
    pts = [(float(x), float(y), g) for x, y, g in points if _present([x]) and _present([y])]
    groups = sorted({g for _, _, g in pts})
    n, k = len(pts), len(groups)
    df = n - k - 1
    if df < 1:
        note = f"not computable within sizes: {n} points in {k} sizes (needs > sizes + 1)"
        return Correlation(n, None, None, None, None, note)
    import numpy as np
    import statsmodels.api as sm

    x = np.array([p[0] for p in pts])
    y = np.array([p[1] for p in pts])
    dummies = np.array([[float(g == h) for h in groups] for _, _, g in pts])
    design = np.column_stack([dummies, x])
    if np.linalg.matrix_rank(design) < design.shape[1] or np.ptp(y) == 0:
        return Correlation(n, None, None, None, None, "not computable: no variation within sizes")
    res = sm.OLS(y, design).fit()
    t = float(res.tvalues[-1])
    r = t / math.sqrt(t * t + df)
    p = float(res.pvalues[-1])
    if df < 2:
        return Correlation(n, r, None, None, p, f"within {k} sizes, df={df}; CI undefined")
    from scipy import stats

    z, half = (
        math.atanh(max(-0.999999, min(0.999999, r))),
        stats.norm.ppf(0.5 + confidence / 2) / math.sqrt(df - 1),
    )
    return Correlation(
        n, r, math.tanh(z - half), math.tanh(z + half), p, f"within {k} sizes, df={df}"
    )
