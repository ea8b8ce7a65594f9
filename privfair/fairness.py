"""Subgroup metrics of one model, and the fairness quantities derived from them.

Everything is measured on the test split at the operating thresholds chosen on validation (see
:mod:`privfair.metrics`), and every value comes with the same paired cluster bootstrap as the evaluation: row 0 of
each array is the point estimate (all weights one), rows 1..R the bootstrap resamples. Derived quantities are then
plain array arithmetic, so a gap's CI is the distribution of the gap itself, not a combination of intervals.

Definitions (all per label, and for ``macro`` on the label-averaged group metrics):

- *performance gap* (the reference study's measure, which it called "statistical parity difference"): for sex,
  female − male; for any other attribute, the group's metric minus the test-size-weighted mean of the other
  recorded groups;
- *statistical parity difference*: largest minus smallest selection rate across groups (fairlearn's
  ``demographic_parity_difference``); *equal-opportunity difference*: the same for TPR; *equalized-odds
  difference*: the larger of the TPR and FPR differences (fairlearn's ``equalized_odds_difference``);
  *worst-group AUROC* and *AUROC gap* (largest minus smallest).

Groups of unknown or unbinned attribute values are reported but take no part in gaps and differences; groups with
fewer positives or negatives than the configured minimum are reported as not available, with the reason.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from privfair.metrics import (
    MACRO, SCORE_PREFIX, TRUE_PREFIX, labels_of, patient_resample_counts, resampled_auroc, sorted_test_rows,
)
from privfair.subgroups import KEPT_APART, UNKNOWN, assign_groups, attribute_names, group_order

GROUP_METRICS = ("auroc", "accuracy", "tpr", "fpr", "fnr", "selection_rate", "ece")
UNDERDIAGNOSIS = "underdiagnosis_rate"
ANY_FINDING = "any"
FAIRNESS_METRICS = (
    "statistical_parity_difference", "equal_opportunity_difference", "equalized_odds_difference",
    "worst_group_auroc", "auroc_gap",
)
# Fairness quantities that are levels, not differences between groups: nothing to test against zero.
LEVELS = ("worst_group_auroc",)
SEX_GAP = "F − M"
ALL_GROUPS = "all"
# The whole test set as one "group", so overall values share the machinery (and resamples) of subgroups.
OVERALL = "overall"
KEY_COLUMNS = ["kind", "attribute", "group", "label", "metric"]
GROUP_COLUMNS = KEY_COLUMNS + ["value", "n", "n_pos", "n_neg", "reason", "bootstrap"]


def thresholds_from_summary(summary: pd.DataFrame) -> dict[str, float]:
    """label -> operating threshold, from an evaluation summary (chosen on validation)."""
    rows = summary[summary["metric"] == "threshold"]
    return dict(zip(rows["label"], rows["value"].astype(float)))


def _rates(y: np.ndarray, s: np.ndarray, threshold: float, weights: np.ndarray, ece_bins: int) -> dict:
    """Each group metric for every weight row (point estimate and resamples) of one label."""
    predicted = s >= threshold
    positives, negatives = weights @ y, weights @ (1 - y)
    true_pos, false_pos = weights @ (y * predicted), weights @ ((1 - y) * predicted)
    total = positives + negatives
    bins = np.minimum((s * ece_bins).astype(int), ece_bins - 1)
    residual_per_bin = weights @ (np.eye(ece_bins)[bins] * (y - s)[:, None])
    with np.errstate(invalid="ignore", divide="ignore"):
        tpr = true_pos / positives
        return {
            "auroc": resampled_auroc(y, s, weights),
            "accuracy": (true_pos + negatives - false_pos) / total,
            "tpr": tpr,
            "fpr": false_pos / negatives,
            "fnr": 1.0 - tpr,
            "selection_rate": (true_pos + false_pos) / total,
            # Expected calibration error with equal-width bins: sum over bins of |sum(y - p)| / n.
            "ece": np.abs(residual_per_bin).sum(axis=1) / total,
        }


def _row(attribute, group, label, metric, values, n, n_pos, n_neg, reason) -> dict:
    return {
        "kind": "group", "attribute": attribute, "group": group, "label": label, "metric": metric,
        "value": float(values[0]), "n": n, "n_pos": n_pos, "n_neg": n_neg, "reason": reason,
        "bootstrap": values[1:].astype(np.float32),
    }


def _shortfall(n_pos: int, n_neg: int, minimum: dict) -> str:
    short = [f"{count} {name} < {minimum[name]}" for name, count in (("positives", n_pos), ("negatives", n_neg))
             if count < minimum[name]]
    return "; ".join(short)


def group_metrics(
    predictions: pd.DataFrame, thresholds: dict[str, float], spec: dict, *, n_bootstrap: int, seed: int
) -> pd.DataFrame:
    """Test-split metrics of every (attribute, group, label), with their bootstrap resamples.

    One row per (attribute, group, label, metric): ``value`` (point estimate; NaN if not available), ``n``,
    ``n_pos``, ``n_neg`` (test images), ``reason`` (why not available, else ""), and ``bootstrap`` (an array of
    ``n_bootstrap`` resampled values, the resamples of :func:`privfair.metrics.evaluate_predictions`).
    Labels include ``macro`` (mean over labels; needs every label available) and, for multi-label tasks,
    ``any`` with the underdiagnosis rate: the share of images with at least one finding called finding-free.
    """
    labels = labels_of(predictions)
    missing = [label for label in labels if label not in thresholds]
    if missing:
        raise ValueError(f"no validation threshold for label(s) {missing}")
    test = sorted_test_rows(predictions[predictions["split"] == "test"])
    weights = np.vstack([np.ones(len(test)), patient_resample_counts(test, n_bootstrap, seed)])
    groups = assign_groups(test, spec).assign(**{OVERALL: ALL_GROUPS})
    minimum = spec["min_group_size"]
    truth = test[[f"{TRUE_PREFIX}{label}" for label in labels]].to_numpy(dtype=float)
    scores = test[[f"{SCORE_PREFIX}{label}" for label in labels]].to_numpy(dtype=float)
    nan = np.full(n_bootstrap + 1, np.nan)

    rows = []
    for attribute in [OVERALL, *attribute_names(spec)]:
        present = set(groups[attribute])
        order = [ALL_GROUPS] if attribute == OVERALL else group_order(spec, attribute) + list(KEPT_APART)
        for group in [g for g in order if g in present]:
            member = (groups[attribute] == group).to_numpy()
            per_label = {}
            for j, label in enumerate(labels):
                # Masked (uncertain, ignored) labels are NaN and take no part.
                rows_j = member & ~np.isnan(truth[:, j])
                y, s = truth[rows_j, j], scores[rows_j, j]
                n_pos, n_neg = int(y.sum()), int(len(y) - y.sum())
                reason = _shortfall(n_pos, n_neg, minimum)
                values = ({m: nan for m in GROUP_METRICS} if reason
                          else _rates(y, s, thresholds[label], weights[:, rows_j], spec["ece_bins"]))
                per_label[label] = values
                rows += [_row(attribute, group, label, m, values[m], len(y), n_pos, n_neg, reason)
                         for m in GROUP_METRICS]
            unavailable = [label for label in labels if np.isnan(per_label[label]["auroc"][0])]
            macro_reason = f"label(s) not available: {', '.join(unavailable)}" if unavailable else ""
            for metric in GROUP_METRICS:
                # Plain mean: a resample in which any label is undefined has no macro value.
                values = np.mean([per_label[label][metric] for label in labels], axis=0)
                rows.append(_row(attribute, group, MACRO, metric, values, int(member.sum()), -1, -1, macro_reason))
            if len(labels) > 1:
                rows.append(_underdiagnosis(attribute, group, truth[member], scores[member], labels, thresholds,
                                            weights[:, member], minimum))
    return pd.DataFrame(rows, columns=GROUP_COLUMNS)


def _underdiagnosis(attribute, group, truth, scores, labels, thresholds, weights, minimum) -> dict:
    """Seyyed-Kalantari et al. (2021): among images with a finding, the share the model calls finding-free."""
    cutoffs = np.array([thresholds[label] for label in labels])
    has_finding = (np.nan_to_num(truth) == 1).any(axis=1)
    called_free = ~(scores >= cutoffs).any(axis=1)
    n_pos = int(has_finding.sum())
    reason = f"{n_pos} images with a finding < {minimum['positives']}" if n_pos < minimum["positives"] else ""
    with np.errstate(invalid="ignore", divide="ignore"):
        values = (weights @ (has_finding & called_free)) / (weights @ has_finding)
    if reason:
        values = np.full(len(weights), np.nan)
    return _row(attribute, group, ANY_FINDING, UNDERDIAGNOSIS, values, len(truth), n_pos, len(truth) - n_pos, reason)


def derived_quantities(metrics: pd.DataFrame) -> pd.DataFrame:
    """Performance gaps and standard fairness differences from a :func:`group_metrics` table.

    Returns rows of kind ``gap`` (per group; for sex one ``F − M`` row) and ``fairness`` (group ``all``), with
    ``value`` and ``bootstrap`` like the input; ``n`` is the number of groups that took part.
    """
    rows = []
    recorded = metrics[~metrics["group"].isin(KEPT_APART) & metrics["value"].notna()]
    for (attribute, label), block in recorded.groupby(["attribute", "label"], sort=False):
        per_metric = {}
        for metric, rates in block.groupby("metric", sort=False):
            values = np.column_stack([rates["value"].to_numpy(), np.stack(rates["bootstrap"].to_list())])
            per_metric[metric] = values
            rows += _gaps(attribute, label, metric, rates["group"].tolist(), values, rates["n"].to_numpy(float))
        rows += _differences(attribute, label, per_metric)
    return pd.DataFrame(rows, columns=GROUP_COLUMNS)


def _derived_row(kind, attribute, group, label, metric, values, n) -> dict:
    return {"kind": kind, "attribute": attribute, "group": group, "label": label, "metric": metric,
            "value": float(values[0]), "n": n, "n_pos": -1, "n_neg": -1, "reason": "",
            "bootstrap": np.asarray(values[1:], dtype=np.float32)}


def _gaps(attribute, label, metric, groups, values, sizes) -> list[dict]:
    """values: (n_groups, 1 + R). Sex: female − male; otherwise each group minus the weighted mean of the others."""
    if len(groups) < 2:
        return []
    if attribute == "sex":
        gap = values[groups.index("F")] - values[groups.index("M")]
        return [_derived_row("gap", attribute, SEX_GAP, label, metric, gap, 2)]
    rows = []
    for i, group in enumerate(groups):
        others = np.delete(values, i, axis=0)
        # A resample in which another group's metric is undefined leaves that group out of the mean.
        weights = np.where(np.isnan(others), 0.0, np.delete(sizes, i)[:, None])
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_of_others = np.nansum(others * weights, axis=0) / weights.sum(axis=0)
        rows.append(_derived_row("gap", attribute, group, label, metric, values[i] - mean_of_others, len(groups)))
    return rows


def _spread(values: np.ndarray) -> np.ndarray:
    """Largest minus smallest group value, per column (NaN groups of a resample are skipped)."""
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN resample columns stay NaN
        return np.nanmax(values, axis=0) - np.nanmin(values, axis=0)


def _worst(values: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmin(values, axis=0)


def _differences(attribute, label, per_metric: dict) -> list[dict]:
    """Standard fairness differences across the recorded groups of one attribute (each needs two groups)."""
    usable = {metric: values for metric, values in per_metric.items() if len(values) >= 2}
    derived = {}
    if "selection_rate" in usable:
        derived["statistical_parity_difference"] = _spread(usable["selection_rate"])
    if "tpr" in usable:
        derived["equal_opportunity_difference"] = _spread(usable["tpr"])
    if "tpr" in usable and "fpr" in usable:
        derived["equalized_odds_difference"] = np.fmax(_spread(usable["tpr"]), _spread(usable["fpr"]))
    if "auroc" in usable:
        derived["worst_group_auroc"] = _worst(usable["auroc"])
        derived["auroc_gap"] = _spread(usable["auroc"])
    n_groups = max((len(v) for v in usable.values()), default=0)
    return [_derived_row("fairness", attribute, ALL_GROUPS, label, name, values, n_groups)
            for name, values in derived.items()]


def unrecorded_attributes(metrics: pd.DataFrame) -> list[str]:
    """Attributes with no recorded group at all (e.g. a dataset without demographics): nothing to group by."""
    subgroups = metrics[metrics["attribute"] != OVERALL]
    recorded = subgroups.groupby("attribute", sort=False)["group"].agg(lambda g: not set(g) <= set(KEPT_APART))
    return [attribute for attribute, any_recorded in recorded.items() if not any_recorded]


def nothing_to_group_by(attributes: list[str], dataset: str) -> str:
    return (f"{dataset}: {', '.join(attributes)} not recorded (every test image is '{UNKNOWN}'): nothing to group by, "
            "so no gaps or fairness differences for "
            f"{'it' if len(attributes) == 1 else 'them'}")
