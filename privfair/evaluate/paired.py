"""Paired comparisons across the study grid, resample by resample.

Every run of a dataset is evaluated on the same test set with the same patient-level bootstrap resamples (see
:mod:`privfair.evaluate.metrics`). So a budget's per-resample values can be averaged over its seeds, and two budgets
can be differenced resample by resample: the intervals of the seed mean and of the change from non-private are
paired bootstrap intervals, not naive combinations of per-run intervals. The same holds across initialisations: a
pretrained model and the one trained from scratch are differenced resample by resample too (the gain from
pretraining, pretrained − scratch, positive when pretraining helps). Both the privacy-utility tables
(:mod:`privfair.evaluate.aggregate`) and the fairness statistics (:mod:`privfair.fairness.analysis`) use
:func:`seed_mean` and :func:`change_from_non_private`, and so share one sign convention: the change is **DP −
non-private**, negative when privacy costs.
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
    return _paired_difference(private, non_private)


def gain_from_pretraining(pretrained: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """Per-resample gain of a pretrained model over the one trained from scratch at the same budget: pretrained −
    scratch (positive when pretraining helps).

    Args:
        pretrained: seed-mean resamples of the pretrained model (:func:`seed_mean`).
        scratch: seed-mean resamples of the scratch model of the same dataset and budget, on the same resamples.

    Returns:
        ``pretrained − scratch``, resample by resample.
    """
    return _paired_difference(pretrained, scratch)


def _paired_difference(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    first, second = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    if first.shape != second.shape:
        raise ValueError(f"cannot pair resamples of shapes {first.shape} and {second.shape}")
    return first - second
