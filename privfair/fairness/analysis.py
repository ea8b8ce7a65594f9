"""The study's fairness statistics across the grid: seed means, paired CIs, DP-vs-non-private tests, Pearson's r.

Input is, per run (dataset, init, ε, seed), the :func:`privfair.fairness.metrics.group_metrics` table. Every
initialisation of a dataset (``scratch`` or pretrained, :mod:`privfair.evaluate.runs`) is analysed as a model family of
its own: its DP models are compared with its own non-private model, and Pearson's r is computed per (dataset, init), so
that the tables say whether pretraining changes who pays for privacy. Because every run of a dataset shares the test
set and the bootstrap resamples, per-resample values are averaged over seeds and differenced against the non-private
model resample by resample (:mod:`privfair.evaluate.paired`, as for the privacy-utility tables). The intervals and
p-values are those of the test-set bootstrap: they hold the trained models fixed, and the spread across training seeds
is reported beside them (``sd``), not folded in.

A quantity is *flagged* when its adjusted p-value is below ``alpha``. Two families of tests, each corrected with the
configured method: "this gap is zero" across every group of every attribute, for one dataset, init, model budget, label
and metric (which groups does this model treat differently?); and "DP changed it from non-private" across every
group, attribute and budget, for one dataset, init, kind, label and metric. Groups of unknown or unbinned values
(:data:`privfair.fairness.subgroups.KEPT_APART`) are not a patient population: they keep their raw p-value but
enter no family, are never adjusted and never flagged.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd

from privfair.core.stats import adjust_p_values, bootstrap_p_value, pearson_with_ci
from privfair.data.manifest import LABEL_PREFIX, label_columns
from privfair.evaluate.paired import change_from_non_private, seed_mean
from privfair.evaluate.runs import SCRATCH
from privfair.fairness.metrics import KEY_COLUMNS, MACRO, OVERALL, TESTED_AGAINST_ZERO, derived_quantities
from privfair.fairness.subgroups import KEPT_APART, assign_groups, attribute_names

INFO_COLUMNS = ["n", "n_groups", "reason"]
SUMMARY_COLUMNS = [
    "dataset",
    "init",
    "epsilon",
    *KEY_COLUMNS,
    *INFO_COLUMNS,
    "n_seeds",
    "mean",
    "sd",
    "n_valid",
    "n_resamples",
    "ci_low",
    "ci_high",
    "p_zero",
    "p_zero_adjusted",
    "flagged",
    "diff",
    "diff_ci_low",
    "diff_ci_high",
    "diff_n_valid",
    "p_diff",
    "p_diff_adjusted",
    "diff_flagged",
    "ci_level",
]
CORRELATION_COLUMNS = [
    "dataset",
    "init",
    "epsilon",
    "relation",
    "attribute",
    "group",
    "label",
    "metric",
    "n_points",
    "r",
    "r_ci_low",
    "r_ci_high",
    "p_value",
    "reason",
    "ci_level",
]
# Below this share of defined resamples (e.g. a small group often missing from them), no CI or p-value is given.
MIN_VALID_SHARE = 0.5
FAMILIES = {
    "p_zero": ["dataset", "init", "epsilon", "kind", "label", "metric"],
    "p_diff": ["dataset", "init", "kind", "label", "metric"],
}


def run_quantities(group_table: pd.DataFrame) -> pd.DataFrame:
    """Group metrics plus the gaps and fairness differences derived from them, for one run.

    Args:
        group_table: the run's :func:`privfair.fairness.metrics.group_metrics` table.

    Returns:
        ``group_table`` followed by rows of kind ``gap`` and ``fairness``
        (:func:`privfair.fairness.metrics.derived_quantities`), same columns, ``bootstrap`` arrays included.
    """
    return pd.concat([group_table, derived_quantities(group_table)], ignore_index=True)


def _aligned(runs: list[pd.DataFrame], keys: pd.MultiIndex) -> tuple[np.ndarray, list[np.ndarray]]:
    """(points: seeds × keys, one keys × R resample array per seed) aligned on ``keys`` (missing in a run → NaN)."""
    n_resamples = len(runs[0]["bootstrap"].iloc[0])
    missing = np.full(n_resamples, np.nan)
    points, resamples = [], []
    for table in runs:
        table = table.set_index(KEY_COLUMNS).reindex(keys)
        points.append(table["value"].to_numpy(dtype=float))
        resamples.append(np.stack([b if isinstance(b, np.ndarray) else missing for b in table["bootstrap"]]))
    return np.stack(points), resamples


def _bootstrap_statistics(estimates: np.ndarray, resamples: np.ndarray, ci: float) -> dict:
    """Per row: valid resample count, percentile CI and Wald p-value (NaN when too few resamples are defined)."""
    n_valid = np.isfinite(resamples).sum(axis=1)
    usable = n_valid >= MIN_VALID_SHARE * resamples.shape[1]
    tail = (1.0 - ci) / 2.0 * 100.0
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows stay NaN
        low, high = np.nanpercentile(resamples, [tail, 100.0 - tail], axis=1)
    p = np.array([bootstrap_p_value(e, r) for e, r in zip(estimates, resamples)])
    return {
        "n_valid": n_valid,
        "n_resamples": np.full(len(n_valid), resamples.shape[1]),
        "ci_low": np.where(usable, low, np.nan),
        "ci_high": np.where(usable, high, np.nan),
        "p": np.where(usable, p, np.nan),
    }


def _summarise_one_model_family(runs: dict[tuple, pd.DataFrame], ci: float) -> pd.DataFrame:
    """The summary of the runs of one (dataset, init): ``runs`` is keyed by (ε, seed)."""
    info = pd.concat(runs.values()).drop_duplicates(KEY_COLUMNS).set_index(KEY_COLUMNS)[INFO_COLUMNS]
    by_epsilon = {}
    for epsilon in sorted({key[0] for key in runs}):
        tables = [runs[key] for key in sorted(runs) if key[0] == epsilon]
        points, resamples = _aligned(tables, info.index)
        frame = info.reset_index().assign(epsilon=epsilon, n_seeds=len(tables))
        frame["mean"] = points.mean(axis=0)
        frame["sd"] = points.std(axis=0, ddof=1) if len(tables) > 1 else np.nan
        by_epsilon[epsilon] = (frame, seed_mean(resamples))
    frames = []
    for epsilon, (frame, resamples) in by_epsilon.items():
        statistics = _bootstrap_statistics(frame["mean"].to_numpy(), resamples, ci)
        for key in ("n_valid", "n_resamples", "ci_low", "ci_high"):
            frame[key] = statistics[key]
        frame["p_zero"] = np.where(frame["kind"].isin(TESTED_AGAINST_ZERO), statistics["p"], np.nan)
        frame[["diff", "diff_ci_low", "diff_ci_high", "diff_n_valid", "p_diff"]] = np.nan
        if math.inf in by_epsilon and not math.isinf(epsilon):
            reference, reference_resamples = by_epsilon[math.inf]
            frame["diff"] = change_from_non_private(frame["mean"].to_numpy(), reference["mean"].to_numpy())
            change = change_from_non_private(resamples, reference_resamples)
            difference = _bootstrap_statistics(frame["diff"].to_numpy(), change, ci)
            frame["diff_ci_low"], frame["diff_ci_high"], frame["diff_n_valid"], frame["p_diff"] = (
                difference[k] for k in ("ci_low", "ci_high", "n_valid", "p")
            )
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def summarise(quantities: dict[tuple, pd.DataFrame], *, ci: float, correction: str, alpha: float) -> pd.DataFrame:
    """One row per (dataset, init, ε, quantity): seed mean and SD, bootstrap CI, p for zero (gaps), and the paired
    DP − non-private difference (against the non-private model of the same init) with its CI and p-value.

    CIs and p-values are NaN where fewer than half of the resamples are defined; the two families of tests, which
    groups of unknown or unbinned values never enter, are described in the module docstring.

    Args:
        quantities: (dataset, init, ε, seed) -> that run's :func:`run_quantities` table
            (:func:`privfair.evaluate.runs.run_key`).
        ci: level of the percentile intervals, in (0, 1).
        correction: the multiple-testing correction, "holm" or "benjamini_hochberg".
        alpha: a quantity is flagged when its adjusted p-value is below this.

    Returns:
        Columns ``dataset, init, epsilon, kind, attribute, group, label, metric, n, n_groups, reason, n_seeds, mean,
        sd`` (ddof=1; NaN with one seed), ``n_valid`` (resamples defined for the seed mean), ``n_resamples`` (drawn),
        ``ci_low, ci_high, p_zero`` (gaps only), ``p_zero_adjusted, flagged, diff, diff_ci_low, diff_ci_high,
        diff_n_valid, p_diff, p_diff_adjusted, diff_flagged`` (the ``diff`` columns NaN for ε = ∞ and where the
        dataset and init have no non-private run; the adjusted p-values NaN and the flags False for unknown or
        unbinned groups) and ``ci_level``; sorted by dataset, then init (scratch first).
    """
    # One model family per (dataset, init), scratch first: each is compared with its own non-private model.
    families = sorted({key[:2] for key in quantities}, key=lambda key: (key[0], key[1] != SCRATCH, key[1]))
    summary = pd.concat(
        [
            _summarise_one_model_family(
                {key[2:]: table for key, table in quantities.items() if key[:2] == family}, ci
            ).assign(dataset=family[0], init=family[1])
            for family in families
        ],
        ignore_index=True,
    )
    # Unknown and unbinned groups are not a population: they enter no family (NaN is left out of an adjustment).
    in_family = ~summary["group"].isin(KEPT_APART)
    for p, adjusted, flag in (("p_zero", "p_zero_adjusted", "flagged"), ("p_diff", "p_diff_adjusted", "diff_flagged")):
        summary[adjusted] = (
            summary[p]
            .where(in_family)
            .groupby([summary[c] for c in FAMILIES[p]], sort=False)
            .transform(lambda values: adjust_p_values(values, correction))
        )
        summary[flag] = summary[adjusted] < alpha
    summary["ci_level"] = ci
    return summary[SUMMARY_COLUMNS]


def training_counts(manifest: pd.DataFrame, split: pd.DataFrame, spec: dict) -> pd.DataFrame:
    """Training images per (attribute, group) and training positives per label: the x of the drop-vs-size r.

    Args:
        manifest: the dataset's manifest (one row per image, the attribute and ``label_<finding>`` columns).
        split: the split table, with ``image_id`` and ``split``; images of the manifest not in it are not counted.
        spec: the ``fairness`` config that defines the groups.

    Returns:
        Columns ``counted`` ("group" or "label"), ``attribute, group`` (None for labels), ``label`` (None for
        groups) and ``n_train``: per group of every attribute and intersection (unknown and unbinned groups
        included), its training images; per label, its positive training images.
    """
    train = manifest.merge(split[["image_id", "split"]], on="image_id", validate="one_to_one")
    train = train[train["split"] == "train"]
    groups = assign_groups(train, spec)
    rows = [
        {"counted": "group", "attribute": attribute, "group": group, "label": None, "n_train": int(count)}
        for attribute in attribute_names(spec)
        for group, count in groups[attribute].value_counts().items()
    ]
    rows += [
        {
            "counted": "label",
            "attribute": None,
            "group": None,
            "label": column.removeprefix(LABEL_PREFIX),
            "n_train": int((train[column] == 1).sum()),
        }
        for column in label_columns(train)
    ]
    return pd.DataFrame(rows)


def correlations(summary: pd.DataFrame, counts: dict[str, pd.DataFrame], *, ci: float) -> pd.DataFrame:
    """Pearson's r of (a) ε against each performance gap, over the DP budgets (seed means: seeds of one budget are
    not independent points); (b) the DP-induced AUROC change (DP − non-private, as everywhere: negative when DP is
    worse) against the training count, over the labels and over the groups of each attribute. Each is computed per
    (dataset, init): a pretrained model family is never pooled with the scratch one.

    Args:
        summary: a :func:`summarise` table.
        counts: dataset -> its :func:`training_counts` table; every dataset of ``summary`` needs one.
        ci: level of the Fisher-z intervals of r, in (0, 1).

    Returns:
        Columns ``dataset, init, epsilon`` (NaN for ε vs gap, which spans the DP budgets), ``relation``
        ("epsilon_vs_gap", "auroc_drop_vs_training_positives" or "auroc_drop_vs_training_images"), ``attribute,
        group, label, metric, n_points, r, r_ci_low, r_ci_high, p_value, reason`` (why r is NaN) and ``ci_level``.
    """
    rows = []
    for (dataset, init), block in summary.groupby(["dataset", "init"], sort=False):
        gaps = block[(block["kind"] == "gap") & np.isfinite(block["epsilon"])]
        for (attribute, group, label, metric), points in gaps.groupby(KEY_COLUMNS[1:], sort=False):
            rows.append(
                {
                    "dataset": dataset,
                    "init": init,
                    "epsilon": np.nan,
                    "relation": "epsilon_vs_gap",
                    "attribute": attribute,
                    "group": group,
                    "label": label,
                    "metric": metric,
                    **pearson_with_ci(points["epsilon"], points["mean"], ci),
                }
            )
        rows += _drop_vs_count(block, counts[dataset], {"dataset": dataset, "init": init}, ci)
    return pd.DataFrame(rows, columns=CORRELATION_COLUMNS[:-1]).assign(ci_level=ci)


def _drop_vs_count(summary: pd.DataFrame, counts: pd.DataFrame, family: dict, ci: float) -> list[dict]:
    drops = summary[(summary["kind"] == "group") & (summary["metric"] == "auroc") & summary["diff"].notna()]
    per_label = drops[(drops["attribute"] == OVERALL) & (drops["label"] != MACRO)]
    label_counts = counts[counts["counted"] == "label"].set_index("label")["n_train"]
    group_counts = counts[counts["counted"] == "group"].set_index(["attribute", "group"])["n_train"]
    rows = []
    for epsilon, block in per_label.groupby("epsilon"):
        rows.append(
            {
                **family,
                "epsilon": epsilon,
                "relation": "auroc_drop_vs_training_positives",
                "attribute": OVERALL,
                "group": "",
                "label": "each label",
                "metric": "auroc",
                **pearson_with_ci(label_counts.reindex(block["label"]).to_numpy(), block["diff"], ci),
            }
        )
    per_group = drops[(drops["label"] == MACRO) & ~drops["group"].isin(KEPT_APART) & (drops["attribute"] != OVERALL)]
    for (epsilon, attribute), block in per_group.groupby(["epsilon", "attribute"], sort=False):
        sizes = group_counts.reindex(list(zip(block["attribute"], block["group"]))).to_numpy()
        rows.append(
            {
                **family,
                "epsilon": epsilon,
                "relation": "auroc_drop_vs_training_images",
                "attribute": attribute,
                "group": "each group",
                "label": MACRO,
                "metric": "auroc",
                **pearson_with_ci(sizes, block["diff"], ci),
            }
        )
    return rows
