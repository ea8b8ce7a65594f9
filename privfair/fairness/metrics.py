"""Subgroup metrics of one model, and the fairness quantities derived from them.

Everything is measured on the test split at the operating thresholds chosen on validation (see
:mod:`privfair.evaluate.metrics`), and every value comes with the same paired cluster bootstrap as the evaluation: row
0 of each array is the point estimate (all weights one), rows 1..R the bootstrap resamples. Derived quantities are then
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

from privfair.data.manifest import is_finding
from privfair.evaluate.metrics import (
    MACRO,
    SCORE_PREFIX,
    TRUE_PREFIX,
    labels_of,
    patient_resample_counts,
    resampled_auroc,
    sorted_test_rows,
)
from privfair.fairness.subgroups import KEPT_APART, UNKNOWN, assign_groups, attribute_names, group_order

GROUP_METRICS = ("auroc", "accuracy", "tpr", "fpr", "fnr", "selection_rate", "ece")
UNDERDIAGNOSIS = "underdiagnosis_rate"
ANY_FINDING = "any"
# Fairness quantities are never tested against zero: the spreads (largest minus smallest group) cannot be negative
# and sampling noise alone makes them positive, and the worst-group AUROC is a level. Only gaps are.
TESTED_AGAINST_ZERO = ("gap",)
SEX_GAP = "F − M"
ALL_GROUPS = "all"
# The whole test set as one "group", so overall values share the machinery (and resamples) of subgroups.
OVERALL = "overall"
KEY_COLUMNS = ["kind", "attribute", "group", "label", "metric"]
# n, n_pos, n_neg: test images of a group; n_groups: how many groups a gap or difference is formed from.
GROUP_COLUMNS = KEY_COLUMNS + ["value", "n", "n_pos", "n_neg", "n_groups", "reason", "bootstrap"]


def thresholds_from_summary(summary: pd.DataFrame) -> dict[str, float]:
    """label -> operating threshold, from an evaluation summary (chosen on validation).

    Args:
        summary: the ``summary`` of :func:`privfair.evaluate.metrics.evaluate_predictions` (``label, metric, value``).

    Returns:
        ``{label: threshold}`` from its ``threshold`` rows; predict positive when score >= threshold.
    """
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


def _row(
    attribute,
    group,
    label,
    metric,
    values,
    n=np.nan,
    n_pos=np.nan,
    n_neg=np.nan,
    reason="",
    *,
    kind="group",
    n_groups=np.nan,
) -> dict:
    return {
        "kind": kind,
        "attribute": attribute,
        "group": group,
        "label": label,
        "metric": metric,
        "value": float(values[0]),
        "n": n,
        "n_pos": n_pos,
        "n_neg": n_neg,
        "n_groups": n_groups,
        "reason": reason,
        "bootstrap": np.asarray(values[1:], dtype=np.float32),
    }


# What each metric needs at least the configured minimum of: AUROC both classes, TPR/FNR positives, FPR negatives;
# the others need as many images as the two minimums together.
NEEDS = {"auroc": ("positives", "negatives"), "tpr": ("positives",), "fnr": ("positives",), "fpr": ("negatives",)}


def _shortfall(metric: str, n_pos: int, n_neg: int, minimum: dict) -> str:
    counts = {"positives": n_pos, "negatives": n_neg}
    if metric not in NEEDS:
        needed = minimum["positives"] + minimum["negatives"]
        return f"{n_pos + n_neg} images < {needed}" if n_pos + n_neg < needed else ""
    return "; ".join(
        f"{counts[name]} {name} < {minimum[name]}" for name in NEEDS[metric] if counts[name] < minimum[name]
    )


def applicable_spec(spec: dict, labels: list[str]) -> tuple[dict, list[str]]:
    """The subgroup spec without attributes that cannot apply to this task, and why they were left out."""
    if len(labels) > 1 or "comorbidity" not in spec["attributes"]:
        return spec, []
    reduced = {
        **spec,
        "attributes": {k: v for k, v in spec["attributes"].items() if k != "comorbidity"},
        "intersections": [i for i in spec.get("intersections", []) if "comorbidity" not in i],
    }
    return reduced, ["comorbidity left out: with a single label, the number of positive findings is the label"]


def group_metrics(
    predictions: pd.DataFrame, thresholds: dict[str, float], spec: dict, *, n_bootstrap: int, seed: int
) -> pd.DataFrame:
    """Test-split metrics of every (attribute, group, label), with their bootstrap resamples.

    ``macro`` is the mean over the labels available in every recorded group of the attribute, so that groups are
    compared on the same labels; for multi-label tasks, label ``any`` holds the underdiagnosis rate: the share of
    images with at least one finding called finding-free.

    Args:
        predictions: a predictions table (``split``, ``image_id``, ``patient_id``, the attribute columns and
            ``true_<label>``/``score_<label>``); only its ``test`` rows are used.
        thresholds: label -> operating threshold (:func:`thresholds_from_summary`).
        spec: the ``fairness`` config: ``attributes``, ``intersections``, ``min_group_size`` (``positives``,
            ``negatives``) and ``ece_bins``.
        n_bootstrap: number of resamples; with ``seed``, the same as in the evaluation, to share its resamples.
        seed: seed of the resamples.

    Returns:
        One row per (attribute, group, label, metric), attribute ``overall`` (group ``all``) first, with columns
        ``kind`` ("group"), ``attribute, group, label, metric, value`` (point estimate; NaN if not available),
        ``n, n_pos, n_neg`` (test images), ``n_groups`` (NaN), ``reason`` (why not available; for ``macro``, which
        labels it averages when not all) and ``bootstrap`` (a float32 array of ``n_bootstrap`` resampled values).
    """
    labels = labels_of(predictions)
    missing = [label for label in labels if label not in thresholds]
    if missing:
        raise ValueError(f"no validation threshold for label(s) {missing}")
    spec, _ = applicable_spec(spec, labels)
    test = sorted_test_rows(predictions[predictions["split"] == "test"])
    weights = np.vstack([np.ones(len(test)), patient_resample_counts(test, n_bootstrap, seed)])
    groups = assign_groups(test, spec).assign(**{OVERALL: ALL_GROUPS})
    truth = test[[f"{TRUE_PREFIX}{label}" for label in labels]].to_numpy(dtype=float)
    scores = test[[f"{SCORE_PREFIX}{label}" for label in labels]].to_numpy(dtype=float)

    rows = []
    for attribute in [OVERALL, *attribute_names(spec)]:
        present = set(groups[attribute])
        order = [ALL_GROUPS] if attribute == OVERALL else group_order(spec, attribute) + list(KEPT_APART)
        members = {g: (groups[attribute] == g).to_numpy() for g in order if g in present}
        per_group = {
            g: _label_metrics(attribute, g, truth[m], scores[m], labels, thresholds, weights[:, m], spec)
            for g, m in members.items()
        }
        rows += [row for per_label in per_group.values() for label in labels for row in per_label[label]["rows"]]
        rows += _macro_rows(attribute, per_group, labels, members)
        if len(labels) > 1:
            rows += [
                _underdiagnosis(
                    attribute, g, truth[m], scores[m], labels, thresholds, weights[:, m], spec["min_group_size"]
                )
                for g, m in members.items()
            ]
    return pd.DataFrame(rows, columns=GROUP_COLUMNS)


def _label_metrics(attribute, group, truth, scores, labels, thresholds, weights, spec) -> dict:
    """label -> {"values": metric -> array (NaN where not available), "rows": table rows} for one group."""
    result = {}
    for j, label in enumerate(labels):
        known = ~np.isnan(truth[:, j])  # masked (uncertain, ignored) labels take no part
        y, s = truth[known, j], scores[known, j]
        n_pos, n_neg = int(y.sum()), int(len(y) - y.sum())
        rates = _rates(y, s, thresholds[label], weights[:, known], spec["ece_bins"])
        values, rows = {}, []
        for metric in GROUP_METRICS:
            reason = _shortfall(metric, n_pos, n_neg, spec["min_group_size"])
            values[metric] = np.full(len(weights), np.nan) if reason else rates[metric]
            rows.append(_row(attribute, group, label, metric, values[metric], len(y), n_pos, n_neg, reason))
        result[label] = {"values": values, "rows": rows}
    return result


def _macro_rows(attribute, per_group: dict, labels, members: dict) -> list[dict]:
    """Macro rows of every group of one attribute, all averaging the same labels.

    Groups with at most half of the labels available are too small for a macro value (NaN, with the reason); the
    labels averaged are those available in every other recorded group, so that one rare finding missing in one group
    narrows the comparison instead of emptying it.
    """
    rows = []
    for metric in GROUP_METRICS:
        available = {
            g: [label for label in labels if np.isfinite(per_label[label]["values"][metric][0])]
            for g, per_label in per_group.items()
        }
        large = [g for g in per_group if len(available[g]) > len(labels) / 2]
        compared = [g for g in large if g not in KEPT_APART] or large
        common = [label for label in labels if all(label in available[g] for g in compared)]
        left_out = [label for label in labels if label not in common]
        shared = f"mean over {len(common)} of {len(labels)} labels (not: {', '.join(left_out)})" if left_out else ""
        for group, per_label in per_group.items():
            missing = [label for label in common if label not in available[group]]
            if group in large and common and not missing:
                # Plain mean: a resample in which any averaged label is undefined has no macro value.
                values, reason = np.mean([per_label[label]["values"][metric] for label in common], axis=0), shared
            else:
                values = np.full(len(per_label[labels[0]]["values"][metric]), np.nan)
                reason = f"only {len(available[group])} of {len(labels)} labels available"
            rows.append(_row(attribute, group, MACRO, metric, values, int(members[group].sum()), reason=reason))
    return rows


def _underdiagnosis(attribute, group, truth, scores, labels, thresholds, weights, minimum) -> dict:
    """Seyyed-Kalantari et al. (2021): among images with a finding, the share the model calls finding-free.

    Labels that are not findings (e.g. "no finding", "support devices") neither make an image sick nor count as a
    finding called."""
    findings = [j for j, label in enumerate(labels) if is_finding(label)]
    cutoffs = np.array([thresholds[labels[j]] for j in findings])
    has_finding = (np.nan_to_num(truth[:, findings]) == 1).any(axis=1)
    called_free = ~(scores[:, findings] >= cutoffs).any(axis=1)
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
    ``value`` and ``bootstrap`` like the input and ``n_groups`` the number of groups that took part.
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


def _gaps(attribute, label, metric, groups, values, sizes) -> list[dict]:
    """values: (n_groups, 1 + R). Sex: female − male; otherwise each group minus the weighted mean of the others."""
    if len(groups) < 2:
        return []
    if attribute == "sex":
        gap = values[groups.index("F")] - values[groups.index("M")]
        return [_row(attribute, SEX_GAP, label, metric, gap, kind="gap", n_groups=2)]
    rows = []
    for i, group in enumerate(groups):
        others = np.delete(values, i, axis=0)
        # A resample in which another group's metric is undefined leaves that group out of the mean.
        weights = np.where(np.isnan(others), 0.0, np.delete(sizes, i)[:, None])
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_of_others = np.nansum(others * weights, axis=0) / weights.sum(axis=0)
        rows.append(_row(attribute, group, label, metric, values[i] - mean_of_others, kind="gap", n_groups=len(groups)))
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
    return [
        _row(attribute, ALL_GROUPS, label, name, values, kind="fairness", n_groups=n_groups)
        for name, values in derived.items()
    ]


def unrecorded_attributes(metrics: pd.DataFrame) -> list[str]:
    """Attributes with no recorded group at all (e.g. a dataset without demographics): nothing to group by."""
    subgroups = metrics[metrics["attribute"] != OVERALL]
    recorded = subgroups.groupby("attribute", sort=False)["group"].agg(lambda g: not set(g) <= set(KEPT_APART))
    return [attribute for attribute, any_recorded in recorded.items() if not any_recorded]


def nothing_to_group_by(attributes: list[str], dataset: str) -> str:
    return (
        f"{dataset}: {', '.join(attributes)} not recorded (every test image is '{UNKNOWN}'): nothing to group by, "
        "so no gaps or fairness differences for "
        f"{'it' if len(attributes) == 1 else 'them'}"
    )


def attribute_notes(metrics: pd.DataFrame, spec: dict, dataset: str) -> list[str]:
    """Why some configured attributes have no gaps for this dataset, one sentence each.

    Args:
        metrics: a :func:`group_metrics` table.
        spec: the ``fairness`` config it was made with.
        dataset: the dataset's name, which starts each sentence.

    Returns:
        Sentences without a final full stop (for ``notes`` of :func:`privfair.core.tables.write_table`): comorbidity
        left out of a single-label task, and attributes with no recorded group (every test image unknown).
    """
    labels = sorted(set(metrics["label"]) - {MACRO, ANY_FINDING})
    notes = [f"{dataset}: {note}" for note in applicable_spec(spec, labels)[1]]
    unrecorded = unrecorded_attributes(metrics)
    if unrecorded:
        notes.append(nothing_to_group_by(unrecorded, dataset))
    return notes
