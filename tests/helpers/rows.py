"""Rows of a ``privfair.fairness.metrics.group_metrics`` table, written by hand for the statistics tests."""

from __future__ import annotations

import numpy as np


def group_metric_row(kind, attribute, group, label, metric, bootstrap, *, value=None, n_groups=np.nan) -> dict:
    """One quantity of one run: its point estimate (``value``, else the mean of the resamples) and resamples."""
    bootstrap = np.asarray(bootstrap, dtype=float)
    return {
        "kind": kind,
        "attribute": attribute,
        "group": group,
        "label": label,
        "metric": metric,
        "value": float(np.nanmean(bootstrap)) if value is None else value,
        "n": 100,
        "n_pos": np.nan,
        "n_neg": np.nan,
        "n_groups": n_groups,
        "reason": "",
        "bootstrap": bootstrap,
    }
