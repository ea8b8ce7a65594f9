"""Statistics shared by the stages: percentile intervals and p-values of bootstrap resamples, multiple-testing
correction, Pearson's r with a CI, and the AUROC of labels with masked (unknown) rows."""

from __future__ import annotations

import numpy as np
from scipy.stats import false_discovery_control, norm, pearsonr
from sklearn.metrics import roc_auc_score


def bootstrap_p_value(estimate: float, resamples) -> float:
    """Two-sided p-value of "the quantity is zero": a z-test with the bootstrap standard error.

    A normal (Wald) test rather than a tail count, so that p is not bounded below by 1/R and survives a
    multiple-testing correction; NaN when fewer than two resamples are finite, they are all equal, or the estimate
    is undefined.
    """
    values = np.asarray(resamples, dtype=float)
    values = values[np.isfinite(values)]
    if values.size < 2 or not np.isfinite(estimate):
        return float("nan")
    if np.ptp(values) == 0:  # every resample equal: the bootstrap says nothing about the uncertainty
        return float("nan")
    return float(2.0 * norm.sf(abs(estimate) / values.std(ddof=1)))


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error rate)."""
    order = np.argsort(p_values)
    m = len(p_values)
    stepped = np.maximum.accumulate(p_values[order] * np.arange(m, 0, -1))
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted


# Config name -> adjustment of a family of finite p-values.
CORRECTIONS = {"holm": holm, "benjamini_hochberg": lambda p: false_discovery_control(p, method="bh")}


def adjust_p_values(p_values, method: str) -> np.ndarray:
    """Holm (family-wise error) or Benjamini-Hochberg (false discovery rate) adjusted p-values; NaN stays NaN."""
    if method not in CORRECTIONS:
        raise ValueError(f"unknown multiple-testing correction {method!r}; use one of {sorted(CORRECTIONS)}")
    p_values = np.asarray(p_values, dtype=float)
    adjusted = np.full(p_values.shape, np.nan)
    finite = np.isfinite(p_values)
    if finite.any():
        adjusted[finite] = CORRECTIONS[method](p_values[finite])
    return adjusted


def pearson_with_ci(x, y, ci: float = 0.95) -> dict:
    """Pearson's r, its two-sided p-value and Fisher-z CI; NaNs with a reason when r is not defined."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    result = {
        "n_points": int(keep.sum()),
        "r": np.nan,
        "r_ci_low": np.nan,
        "r_ci_high": np.nan,
        "p_value": np.nan,
        "reason": "",
    }
    if len(x) < 3:
        result["reason"] = f"needs at least 3 points, has {len(x)}"
    elif np.ptp(x) == 0 or np.ptp(y) == 0:
        result["reason"] = "a variable is constant"
    else:
        test = pearsonr(x, y)
        # Fisher's z interval needs n > 3; with exactly 3 points only r and p are given.
        low, high = test.confidence_interval(ci) if len(x) > 3 else (np.nan, np.nan)
        result.update(r=float(test.statistic), r_ci_low=float(low), r_ci_high=float(high), p_value=float(test.pvalue))
    return result


def percentile_ci(values, ci: float = 0.95) -> tuple[float, float]:
    """Two-sided percentile interval of the finite entries of ``values`` (NaN, NaN if there are none)."""
    if not 0.0 < ci < 1.0:
        raise ValueError(f"ci must lie in (0, 1), got {ci}")
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    tail = (1.0 - ci) / 2.0 * 100.0
    low, high = np.percentile(values, [tail, 100.0 - tail])
    return float(low), float(high)


def masked_macro_auroc(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """Mean over labels of each label's AUROC on the rows where it is known (NaN in ``y_true`` = masked)."""
    known = ~np.isnan(y_true)
    return float(
        np.mean([roc_auc_score(y_true[known[:, j], j], y_score[known[:, j], j]) for j in range(y_true.shape[1])])
    )
