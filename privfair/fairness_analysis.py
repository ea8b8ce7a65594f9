"""The study's fairness statistics across the grid: seed means, paired CIs, DP-vs-non-private tests, Pearson's r.

Input is, per run (dataset, ε, seed), the :func:`privfair.fairness.group_metrics` table. Because every run of a
dataset shares the test set and the bootstrap resamples, per-resample values are averaged over seeds and
differenced against the non-private model resample by resample (as in :mod:`privfair.aggregate`).

A quantity is *flagged* when its adjusted p-value is below ``alpha``. Two families of tests, each corrected with the
configured method: "the gap (or fairness difference) is zero" across the groups of one attribute, for one dataset,
model budget, label and metric (which groups does this model treat differently?); and "DP changed it from
non-private" across the groups and budgets of one attribute, for one dataset, label and metric.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from privfair.fairness import KEY_COLUMNS, LEVELS, derived_quantities
from privfair.manifest import LABEL_PREFIX, label_columns
from privfair.metrics import percentile_ci
from privfair.stats import adjust_p_values, bootstrap_p_value, pearson_with_ci
from privfair.subgroups import KEPT_APART, assign_groups, attribute_names

SUMMARY_COLUMNS = [
    "dataset", "epsilon", *KEY_COLUMNS, "n", "reason", "n_seeds", "mean", "sd", "ci_low", "ci_high", "p_zero",
    "p_zero_adjusted", "flagged", "diff", "diff_ci_low", "diff_ci_high", "p_diff", "p_diff_adjusted", "diff_flagged",
    "ci_level",
]
CORRELATION_COLUMNS = [
    "dataset", "epsilon", "relation", "attribute", "group", "label", "metric", "n_points", "r", "r_ci_low",
    "r_ci_high", "p_value", "reason", "ci_level",
]


def run_quantities(group_table: pd.DataFrame) -> pd.DataFrame:
    """Group metrics plus the gaps and fairness differences derived from them, for one run."""
    return pd.concat([group_table, derived_quantities(group_table)], ignore_index=True)


def _stack(runs: list[pd.DataFrame], keys: pd.MultiIndex) -> tuple[np.ndarray, np.ndarray]:
    """(points: seeds × keys, resamples: seeds × keys × R) aligned on ``keys`` (missing → NaN)."""
    points, resamples = [], []
    for table in runs:
        table = table.set_index(KEY_COLUMNS).reindex(keys)
        points.append(table["value"].to_numpy(dtype=float))
        n_resamples = len(next(b for b in table["bootstrap"] if isinstance(b, np.ndarray)))
        resamples.append(np.stack([b if isinstance(b, np.ndarray) else np.full(n_resamples, np.nan)
                                   for b in table["bootstrap"]]).astype(float))
    return np.stack(points), np.stack(resamples)


def _intervals(resamples: np.ndarray, ci: float) -> tuple[np.ndarray, np.ndarray]:
    bounds = np.array([percentile_ci(row, ci) for row in resamples])
    return bounds[:, 0], bounds[:, 1]


def _dataset_summary(runs: dict[tuple, pd.DataFrame], ci: float) -> pd.DataFrame:
    info = pd.concat(runs.values()).drop_duplicates(KEY_COLUMNS).set_index(KEY_COLUMNS)[["n", "reason"]]
    by_epsilon = {}
    for epsilon in sorted({key[1] for key in runs}):
        tables = [runs[key] for key in sorted(runs) if key[1] == epsilon]
        points, resamples = _stack(tables, info.index)
        frame = info.reset_index().assign(epsilon=epsilon, n_seeds=len(tables))
        frame["mean"] = points.mean(axis=0)
        frame["sd"] = points.std(axis=0, ddof=1) if len(tables) > 1 else np.nan
        # Plain mean over seeds: a resample undefined for any seed is undefined for the mean.
        by_epsilon[epsilon] = (frame, resamples.mean(axis=0))
    frames = []
    for epsilon, (frame, seed_mean) in by_epsilon.items():
        frame["ci_low"], frame["ci_high"] = _intervals(seed_mean, ci)
        # Gaps and differences between groups are tested against zero; group metrics and levels are not.
        tested = (frame["kind"] != "group") & ~frame["metric"].isin(LEVELS)
        frame["p_zero"] = [bootstrap_p_value(estimate, resamples) if test else np.nan
                           for test, estimate, resamples in zip(tested, frame["mean"], seed_mean)]
        frame[["diff", "diff_ci_low", "diff_ci_high", "p_diff"]] = np.nan
        if math.inf in by_epsilon and not math.isinf(epsilon):
            reference, reference_resamples = by_epsilon[math.inf]
            difference = seed_mean - reference_resamples
            frame["diff"] = frame["mean"] - reference["mean"]
            frame["diff_ci_low"], frame["diff_ci_high"] = _intervals(difference, ci)
            frame["p_diff"] = [bootstrap_p_value(estimate, resamples)
                               for estimate, resamples in zip(frame["diff"], difference)]
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def summarize(quantities: dict[tuple, pd.DataFrame], *, ci: float, correction: str, alpha: float) -> pd.DataFrame:
    """One row per (dataset, ε, quantity): seed mean and SD, bootstrap CI, p for zero (gaps and differences), and
    the paired DP − non-private difference with its CI and p-value. ``quantities`` maps (dataset, ε, seed) to
    :func:`run_quantities` tables."""
    datasets = sorted({key[0] for key in quantities})
    summary = pd.concat(
        [_dataset_summary({k: t for k, t in quantities.items() if k[0] == d}, ci).assign(dataset=d) for d in datasets],
        ignore_index=True,
    )
    families = {"p_zero": ["dataset", "epsilon", "kind", "attribute", "label", "metric"],
                "p_diff": ["dataset", "kind", "attribute", "label", "metric"]}
    for p, adjusted, flag in (("p_zero", "p_zero_adjusted", "flagged"), ("p_diff", "p_diff_adjusted", "diff_flagged")):
        summary[adjusted] = summary.groupby(families[p], sort=False)[p].transform(
            lambda values: adjust_p_values(values, correction))
        summary[flag] = summary[adjusted] < alpha
    summary["ci_level"] = ci
    return summary[SUMMARY_COLUMNS]


def training_counts(manifest: pd.DataFrame, split: pd.DataFrame, spec: dict) -> pd.DataFrame:
    """Training images per (attribute, group) and training positives per label: the x of the drop-vs-size r."""
    train = manifest.merge(split[["image_id", "split"]], on="image_id", validate="one_to_one")
    train = train[train["split"] == "train"]
    groups = assign_groups(train, spec)
    rows = [{"counted": "group", "attribute": attribute, "group": group, "label": None, "n_train": int(count)}
            for attribute in attribute_names(spec) for group, count in groups[attribute].value_counts().items()]
    rows += [{"counted": "label", "attribute": None, "group": None, "label": column.removeprefix(LABEL_PREFIX),
              "n_train": int((train[column] == 1).sum())} for column in label_columns(train)]
    return pd.DataFrame(rows)


def correlations(summary: pd.DataFrame, quantities: dict[tuple, pd.DataFrame], counts: dict[str, pd.DataFrame],
                 *, ci: float) -> pd.DataFrame:
    """Pearson's r of (a) ε against each performance gap, over the DP runs (one point per run);
    (b) the DP-induced AUROC drop against the training count, over labels and over the groups of an attribute."""
    rows = []
    for dataset in sorted({key[0] for key in quantities}):
        private = [(key, table) for key, table in sorted(quantities.items())
                   if key[0] == dataset and math.isfinite(key[1])]
        if private:
            gaps = pd.concat([t.loc[t["kind"] == "gap", KEY_COLUMNS + ["value"]].assign(epsilon=key[1])
                              for key, t in private])
            for (attribute, group, label, metric), block in gaps.groupby(KEY_COLUMNS[1:], sort=False):
                rows.append({"dataset": dataset, "epsilon": np.nan, "relation": "epsilon_vs_gap",
                             "attribute": attribute, "group": group, "label": label, "metric": metric,
                             **pearson_with_ci(block["epsilon"], block["value"], ci)})
        rows += _drop_vs_count(summary[summary["dataset"] == dataset], counts[dataset], dataset, ci)
    table = pd.DataFrame(rows).assign(ci_level=ci)
    return table.reindex(columns=CORRELATION_COLUMNS)


def _drop_vs_count(summary: pd.DataFrame, counts: pd.DataFrame, dataset: str, ci: float) -> list[dict]:
    drops = summary[(summary["kind"] == "group") & (summary["metric"] == "auroc") & summary["diff"].notna()]
    per_label = drops[(drops["attribute"] == "overall") & (drops["label"] != "macro")]
    label_counts = counts[counts["counted"] == "label"].set_index("label")["n_train"]
    group_counts = counts[counts["counted"] == "group"].set_index(["attribute", "group"])["n_train"]
    rows = []
    for epsilon, block in per_label.groupby("epsilon"):
        rows.append({"dataset": dataset, "epsilon": epsilon, "relation": "auroc_drop_vs_training_positives",
                     "attribute": "overall", "group": "all", "label": "per label", "metric": "auroc",
                     **pearson_with_ci(label_counts.reindex(block["label"]).to_numpy(), block["diff"], ci)})
    per_group = drops[(drops["label"] == "macro") & ~drops["group"].isin(KEPT_APART) & (drops["attribute"] != "overall")]
    for (epsilon, attribute), block in per_group.groupby(["epsilon", "attribute"], sort=False):
        sizes = group_counts.reindex(list(zip(block["attribute"], block["group"]))).to_numpy()
        rows.append({"dataset": dataset, "epsilon": epsilon, "relation": "auroc_drop_vs_training_images",
                     "attribute": attribute, "group": "per group", "label": "macro", "metric": "auroc",
                     **pearson_with_ci(sizes, block["diff"], ci)})
    return rows
