"""Cross-lingual alignment of sentence representations: English rows against their translations.

Given X (n x d, English) and Y (n x d, the other language), row i of Y translating row i of X,
`alignment_scores(X, Y)` gives, with the names of `tracking.names.alignment_name`:

- ``retrieval``: Tatoeba-style translation search (0-100), averaged over both directions: each
  English row queries the other language's rows by cosine (`metrics.tatoeba_accuracy`, XTREME's
  search) and each other-language row queries the English rows. Chance is 100/n.
- ``cos_parallel``: the mean cosine similarity of the n parallel pairs (x_i, y_i).
- ``cos_random``: the mean cosine of the non-parallel pairs (x_i, y_j), i != j: all n(n-1) of
  them, so the value is exact (no sampled baseline). ``cos_parallel - cos_random`` is the
  margin translations have over unrelated sentences; anisotropic spaces raise both.
- ``cka``: linear CKA (Kornblith et al. 2019, eq. 5) of the column-centred X and Y:
  ``||Y'X||_F^2 / (||X'X||_F ||Y'Y||_F)``, in [0, 1]; 1 when Y is X up to an orthogonal
  transform and isotropic scaling. Computed through the n x n Gram matrices when n < d
  (``||Y'X||_F^2 = tr(K L)`` with K = XX', L = YY'), in float64. Unrelated random
  representations give about d/(n+d), not 0, when n is not much larger than d (a bias of the
  estimator with few samples): with 200 pairs, 0.79 at XLM-R base's width and 0.95 at XXL's,
  so linear CKA tracks width across sizes.
- ``cka_debiased``: CKA from the unbiased HSIC estimator (Song et al. 2012; debiased CKA of
  Nguyen, Raghu & Kornblith 2021): about 0 for unrelated representations of any width, 1 for
  the same one; comparable across sizes. May be slightly negative.
"""

from __future__ import annotations

import numpy as np

from xscale.tasks.metrics import _l2_normalize, tatoeba_accuracy

ALIGNMENT_METRICS = ("retrieval", "cos_parallel", "cos_random", "cka", "cka_debiased")


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA of two representations of the same n examples (n x d1, n x d2)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(f"CKA needs n x d matrices of the same n, got {x.shape} and {y.shape}")
    if x.shape[0] < 2:
        raise ValueError("CKA needs at least 2 examples")
    x = x - x.mean(axis=0, keepdims=True)
    y = y - y.mean(axis=0, keepdims=True)
    if x.shape[0] < max(x.shape[1], y.shape[1]):  # n x n Grams are the smaller products
        k, lg = x @ x.T, y @ y.T
        cross, xx, yy = float((k * lg).sum()), np.linalg.norm(k), np.linalg.norm(lg)
    else:
        cross = float(np.linalg.norm(y.T @ x) ** 2)
        xx, yy = np.linalg.norm(x.T @ x), np.linalg.norm(y.T @ y)
    denom = float(xx * yy)
    return cross / denom if denom > 0 else 0.0


def _unbiased_hsic(k: np.ndarray, lg: np.ndarray) -> float:
    """Song et al. (2012)'s unbiased HSIC of two n x n Gram matrices (n >= 4)."""
    n = k.shape[0]
    k, lg = k.copy(), lg.copy()
    np.fill_diagonal(k, 0.0)
    np.fill_diagonal(lg, 0.0)
    ones_k, ones_l = k.sum(axis=0), lg.sum(axis=0)
    term = float((k * lg).sum()) + ones_k.sum() * ones_l.sum() / ((n - 1) * (n - 2))
    term -= 2.0 / (n - 2) * float(ones_k @ ones_l)
    return term / (n * (n - 3))


def debiased_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA with the unbiased HSIC estimator: ~0 for unrelated representations whatever
    their widths (the plain estimator gives ~d/(n+d))."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(f"CKA needs n x d matrices of the same n, got {x.shape} and {y.shape}")
    if x.shape[0] < 4:
        raise ValueError("debiased CKA needs at least 4 examples")
    x = x - x.mean(axis=0, keepdims=True)
    y = y - y.mean(axis=0, keepdims=True)
    k, lg = x @ x.T, y @ y.T
    xy, xx, yy = _unbiased_hsic(k, lg), _unbiased_hsic(k, k), _unbiased_hsic(lg, lg)
    denom = xx * yy
    return xy / float(np.sqrt(denom)) if denom > 0 else 0.0


def cosine_stats(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(mean cosine of the parallel pairs, mean cosine of every non-parallel pair)."""
    sim = _l2_normalize(x).astype(np.float64) @ _l2_normalize(y).astype(np.float64).T
    n = sim.shape[0]
    diagonal = float(np.trace(sim))
    off = (float(sim.sum()) - diagonal) / (n * (n - 1))
    return diagonal / n, off


def retrieval_accuracy(x: np.ndarray, y: np.ndarray) -> float:
    """Translation search accuracy (0-100), mean of English->other and other->English."""
    en_queries = tatoeba_accuracy(y, x)["accuracy"]  # English rows query the other side
    other_queries = tatoeba_accuracy(x, y)["accuracy"]
    return (en_queries + other_queries) / 2


def alignment_scores(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Every metric of `ALIGNMENT_METRICS` for English rows `x` and their translations `y`."""
    if x.shape != y.shape or x.shape[0] < 2:
        raise ValueError(f"alignment needs two n x d arrays with n >= 2, got {x.shape}, {y.shape}")
    parallel, random = cosine_stats(x, y)
    return {
        "retrieval": retrieval_accuracy(x, y),
        "cos_parallel": parallel,
        "cos_random": random,
        "cka": linear_cka(x, y),
        "cka_debiased": debiased_cka(x, y),
    }
