"""Paired comparisons across the study grid, resample by resample.

Every run of a dataset is evaluated on the same test set with the same patient-level bootstrap resamples (see
:mod:`privfair.evaluate.metrics`). So a budget's per-resample values can be averaged over its seeds, and two budgets
can be differenced resample by resample: the intervals of the seed mean and of the change from non-private are
paired bootstrap intervals, not naive combinations of per-run intervals. Both the privacy-utility tables
(:mod:`privfair.evaluate.aggregate`) and the fairness statistics (:mod:`privfair.fairness.analysis`) use these two
functions, and so share one sign convention: the change is **DP − non-private**, negative when privacy costs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def seed_mean(per_seed: Sequence[np.ndarray]) -> np.ndarray:
    """Per-resample mean over the seeds of one budget.

    Args:
        per_seed: one array per seed, all of the same shape (..., n_resamples), resample ``r`` of every seed drawn
            from the same test patients.

    Returns:
        The mean over seeds, of that shape. A resample undefined (NaN) for any seed is undefined for the mean.
    """
    shapes = {np.shape(values) for values in per_seed}
    if len(shapes) != 1:
        raise ValueError(f"seeds have different bootstrap resamples: shapes {sorted(shapes)}")
    return np.mean(np.stack([np.asarray(values, dtype=float) for values in per_seed]), axis=0)


def change_from_non_private(private: np.ndarray, non_private: np.ndarray) -> np.ndarray:
    """Per-resample change of a DP model from the non-private one: DP − non-private (negative when DP costs).

    Args:
        private: seed-mean resamples of a DP budget (:func:`seed_mean`).
        non_private: seed-mean resamples of the non-private model, on the same resamples.

    Returns:
        ``private − non_private``, resample by resample.
    """
    private, non_private = np.asarray(private, dtype=float), np.asarray(non_private, dtype=float)
    if private.shape != non_private.shape:
        raise ValueError(f"cannot pair resamples of shapes {private.shape} and {non_private.shape}")
    return private - non_private
