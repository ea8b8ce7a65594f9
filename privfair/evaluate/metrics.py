"""Classification metrics for one training run, with a paired bootstrap over the test split.

Operating thresholds are chosen on the validation split only (Youden's J); the test
split is used solely to measure. Bootstrap resamples (of test patients) are drawn from
``(n_patients, n_resamples, seed)`` alone, so every model of a dataset, which is evaluated
on the same test set, sees exactly the same resamples: differences between models can
then be bootstrapped pairwise, resample by resample.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score, roc_curve

from privfair.core.stats import percentile_ci

TRUE_PREFIX = "true_"
SCORE_PREFIX = "score_"
MACRO = "macro"
SUMMARY_COLUMNS = [
    "label",
    "metric",
    "value",
    "boot_mean",
    "ci_low",
    "ci_high",
    "n_valid",
    "n_resamples",
    "n_pos",
    "n_pos_patients",
]
BOOTSTRAP_COLUMNS = ["resample", "label", "auroc"]


def bootstrap_indices(n: int, n_resamples: int, seed: int) -> np.ndarray:
    """Row indices of ``n_resamples`` resamples (with replacement) of ``n`` rows, shape (n_resamples, n).

    Deterministic in ``(n, n_resamples, seed)``, which is what makes comparisons paired.
    """
    if n < 1 or n_resamples < 1:
        raise ValueError(f"bootstrap needs n >= 1 and n_resamples >= 1, got n={n}, n_resamples={n_resamples}")
    return np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))


def youden_threshold(y_true, y_score) -> float:
    """Score threshold maximising Youden's J = sensitivity + specificity - 1 (predict positive if score >= threshold).

    roc_curve's first threshold is +inf (nothing predicted positive, J = 0 by construction);
    it is skipped so the result is always a real score value. Ties in J go to the highest
    threshold, i.e. the most specific operating point.
    """
    y_true = np.asarray(y_true)
    if np.unique(y_true).size != 2:
        raise ValueError("youden_threshold needs both classes in y_true")
    fpr, tpr, thresholds = roc_curve(y_true, y_score, drop_intermediate=False)
    finite = np.isfinite(thresholds)
    j = (tpr - fpr)[finite]
    return float(thresholds[finite][np.argmax(j)])


def resampled_auroc(y_true, y_score, counts: np.ndarray) -> np.ndarray:
    """AUROC of each bootstrap resample, given how often each row occurs in it.

    ``counts`` has shape (n_resamples, n): row multiplicities (see :func:`resample_counts`).
    Equivalent to the Mann-Whitney U statistic of the resampled data (ties count 1/2), but
    the scores are sorted once instead of once per resample, so the cost is O(n_resamples * n).
    Resamples lacking a class get NaN.
    """
    y_true = np.asarray(y_true).astype(np.int64)
    y_score = np.asarray(y_score, dtype=float)
    order = np.argsort(y_score, kind="stable")
    sorted_scores = y_score[order]
    positive = y_true[order]
    weights = counts[:, order]
    # One column per distinct score value, so tied scores are handled as groups.
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    pos = np.add.reduceat(weights * positive, starts, axis=1).astype(float)
    neg = np.add.reduceat(weights * (1 - positive), starts, axis=1).astype(float)
    neg_below = np.cumsum(neg, axis=1) - neg
    u = (pos * (neg_below + 0.5 * neg)).sum(axis=1)
    n_pos, n_neg = pos.sum(axis=1), neg.sum(axis=1)
    auroc = np.full(counts.shape[0], np.nan)
    defined = (n_pos > 0) & (n_neg > 0)
    auroc[defined] = u[defined] / (n_pos[defined] * n_neg[defined])
    return auroc


def resample_counts(indices: np.ndarray) -> np.ndarray:
    """Per-resample row multiplicities, shape (n_resamples, n), from :func:`bootstrap_indices` output."""
    n_resamples, n = indices.shape
    flat = (indices + n * np.arange(n_resamples)[:, None]).ravel()
    return np.bincount(flat, minlength=n_resamples * n).reshape(n_resamples, n)


def sorted_test_rows(test: pd.DataFrame) -> pd.DataFrame:
    """Test rows ordered by image_id: bootstrap counts address rows by position, so position i must be the same
    image for every model, whatever order its predictions file was written in."""
    test = test.sort_values("image_id", kind="stable")
    if test["image_id"].duplicated().any():
        raise ValueError("duplicate image_id in the 'test' split; paired resampling needs unique images")
    return test


def patient_resample_counts(test: pd.DataFrame, n_bootstrap: int, seed: int) -> np.ndarray:
    """Row multiplicities (n_bootstrap, len(test)) of a cluster bootstrap of the patients of ``test``.

    Patients, not images, are resampled: images of one patient are not independent observations. Sorted patient
    ids make resample i the same draw of patients for every model of the dataset (a paired bootstrap).
    """
    patients, patient_of_row = np.unique(test["patient_id"].astype(str).to_numpy(), return_inverse=True)
    return resample_counts(bootstrap_indices(len(patients), n_bootstrap, seed))[:, patient_of_row]


def labels_of(predictions: pd.DataFrame) -> list[str]:
    """Label names, in column order, from the ``true_<label>`` columns; checks each has a ``score_<label>``."""
    labels = [c[len(TRUE_PREFIX) :] for c in predictions.columns if c.startswith(TRUE_PREFIX)]
    if not labels:
        raise ValueError("predictions have no 'true_<label>' columns")
    missing = [f"{SCORE_PREFIX}{label}" for label in labels if f"{SCORE_PREFIX}{label}" not in predictions.columns]
    if missing:
        raise ValueError(f"predictions lack score columns for their true_ columns: {missing}")
    return labels


def _split_arrays(rows: pd.DataFrame, split: str, label: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(y_true, y_score, known) of one label from the rows of one split, validated; ``y_true`` and ``y_score``
    hold the known rows only (a NaN true value is a masked label, e.g. CheXpert's uncertain findings)."""
    y = rows[f"{TRUE_PREFIX}{label}"].to_numpy(dtype=float)
    s = rows[f"{SCORE_PREFIX}{label}"].to_numpy(dtype=float)
    known = ~np.isnan(y)
    y, s = y[known], s[known]
    if np.isnan(s).any():
        raise ValueError(f"label {label!r} has missing score values in the {split!r} split")
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"label {label!r} has true values other than 0/1 in the {split!r} split")
    if np.unique(y).size != 2:
        raise ValueError(
            f"label {label!r} has {'a single class' if y.size else 'no known values'} in the {split!r} split; "
            "thresholds and AUROC need both classes"
        )
    return y.astype(np.int64), s, known


def _auroc_row(label: str, value: float, boot: np.ndarray, ci: float) -> dict:
    valid = boot[np.isfinite(boot)]
    low, high = percentile_ci(valid, ci)
    return {
        "label": label,
        "metric": "auroc",
        "value": value,
        "boot_mean": float(valid.mean()) if valid.size else np.nan,
        "ci_low": low,
        "ci_high": high,
        "n_valid": float(valid.size),
        "n_resamples": float(boot.size),
    }


def evaluate_predictions(
    predictions: pd.DataFrame, *, n_bootstrap: int, seed: int, ci: float = 0.95
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Test-split metrics at validation-chosen thresholds, with bootstrap CIs for AUROC.

    Test patients are resampled (a cluster bootstrap: each drawn patient brings all their images), in sorted
    ``patient_id`` order, so runs evaluated on the same test set with the same ``(n_bootstrap, seed)`` share
    resamples (paired), regardless of row order.

    Args:
        predictions: a predictions table (:func:`privfair.train.predict.predictions_table`) with ``split``,
            ``image_id``, ``patient_id`` and ``true_<label>``/``score_<label>`` per label; ``val`` and ``test`` rows.
        n_bootstrap: number of bootstrap resamples of the test patients.
        seed: seed of the resamples.
        ci: level of the percentile intervals, in (0, 1).

    Returns:
        ``(summary, bootstrap)``:

        - ``summary``: one row per (label, metric) with columns ``label, metric, value, boot_mean, ci_low, ci_high,
          n_valid, n_resamples, n_pos, n_pos_patients``; metrics are auroc, accuracy, sensitivity, specificity and
          threshold (Youden's J on validation) per label, plus auroc for label ``"macro"`` (mean of the per-label
          AUROCs). The bootstrap columns (``boot_mean`` to ``n_resamples``) are filled for auroc rows only; ``n_pos``
          (test images positive for the label) and ``n_pos_patients`` (distinct test patients among them) for every
          row of a label, NaN for macro.
        - ``bootstrap``: columns ``resample, label, auroc``, one row per resample and label (``"macro"`` included).
          A resample in which a label lacks a class has NaN AUROC for that label and for macro; CIs use only the
          valid resamples (``n_valid``).
    """
    for column in ("split", "image_id", "patient_id"):
        if column not in predictions.columns:
            raise ValueError(f"predictions have no {column!r} column")
    splits = {split: predictions[predictions["split"] == split] for split in ("val", "test")}
    for split, rows in splits.items():
        if rows.empty:
            raise ValueError(f"predictions have no {split!r} rows")
    labels = labels_of(predictions)
    test = sorted_test_rows(splits["test"])
    counts = patient_resample_counts(test, n_bootstrap, seed)

    patients = test["patient_id"].astype(str).to_numpy()
    rows, boot = [], {}
    for label in labels:
        threshold = youden_threshold(*_split_arrays(splits["val"], "val", label)[:2])
        y, s, known = _split_arrays(test, "test", label)
        predicted = s >= threshold
        auroc = float(roc_auc_score(y, s))
        boot[label] = resampled_auroc(y, s, counts[:, known])
        rows.append(_auroc_row(label, auroc, boot[label], ci))
        point = {
            "accuracy": float(np.mean(predicted == y)),
            "sensitivity": float(np.mean(predicted[y == 1])),
            "specificity": float(np.mean(~predicted[y == 0])),
            "threshold": threshold,
        }
        rows.extend({"label": label, "metric": metric, "value": value} for metric, value in point.items())
        counts_of_label = {"n_pos": float(y.sum()), "n_pos_patients": float(np.unique(patients[known][y == 1]).size)}
        for row in rows[-len(point) - 1 :]:
            row.update(counts_of_label)

    # Plain mean (not nanmean): a resample where any label is undefined has no macro AUROC.
    boot[MACRO] = np.mean(np.vstack([boot[label] for label in labels]), axis=0)
    macro_point = float(np.mean([r["value"] for r in rows if r["metric"] == "auroc"]))
    rows.append(_auroc_row(MACRO, macro_point, boot[MACRO], ci))

    summary = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    bootstrap = pd.DataFrame(
        {
            "resample": np.tile(np.arange(n_bootstrap), len(boot)),
            "label": np.repeat(list(boot), n_bootstrap),
            "auroc": np.concatenate(list(boot.values())),
        },
        columns=BOOTSTRAP_COLUMNS,
    )
    return summary, bootstrap
