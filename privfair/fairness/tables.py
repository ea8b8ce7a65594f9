"""The fairness tables (rule ``analyse_fairness``): views of :func:`privfair.fairness.analysis.summarise` and
:func:`privfair.fairness.analysis.correlations`, rendered by :mod:`privfair.core.tables`."""

from __future__ import annotations

import math

import pandas as pd

from privfair.core.tables import CI_DIGITS, ci_header, fmt_change, fmt_ci, fmt_epsilon, fmt_mean_sd, fmt_p, view
from privfair.evaluate.metrics import MACRO


def _macro(summary: pd.DataFrame, kind: str) -> pd.DataFrame:
    return summary[(summary["kind"] == kind) & (summary["label"] == MACRO)]


def performance_gap_table(summary: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Macro-AUROC performance gap of every group and budget (the reference study's fairness measure).

    Args:
        summary: a :func:`privfair.fairness.analysis.summarise` table.

    Returns:
        ``(numbers, view)`` for :func:`privfair.core.tables.write_table`: the summary's ``gap`` rows of macro AUROC
        (all its columns), and per row dataset, attribute, group, ε, gap (mean ± SD over seeds), CI, the adjusted
        p-value of "gap = 0" and the paired change from non-private.
    """
    rows = _macro(summary, "gap")
    rows = rows[rows["metric"] == "auroc"]
    ci = ci_header(summary)
    return rows, view(
        rows,
        {
            "Dataset": lambda r: r["dataset"],
            "Attribute": lambda r: r["attribute"],
            "Group": lambda r: r["group"],
            "ε": lambda r: fmt_epsilon(r["epsilon"]),
            "AUROC gap (mean ± SD)": lambda r: fmt_mean_sd(r["mean"], r["sd"]),
            ci: lambda r: fmt_ci(r["ci_low"], r["ci_high"], CI_DIGITS),
            "p (gap ≠ 0, adj.)": lambda r: fmt_p(r["p_zero_adjusted"]),
            f"Δ vs non-private [{ci}]": fmt_change,
        },
    )


def fairness_metric_table(summary: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The standard fairness differences (macro over labels) per attribute and budget.

    Args:
        summary: a :func:`privfair.fairness.analysis.summarise` table.

    Returns:
        ``(numbers, view)`` for :func:`privfair.core.tables.write_table`: the summary's macro ``fairness`` rows (all
        its columns), and per row dataset, attribute, metric, ε, value (mean ± SD over seeds), CI, the paired change
        from non-private and its adjusted p-value.
    """
    rows = _macro(summary, "fairness")
    ci = ci_header(summary)
    return rows, view(
        rows,
        {
            "Dataset": lambda r: r["dataset"],
            "Attribute": lambda r: r["attribute"],
            "Metric": lambda r: r["metric"].replace("_", " "),
            "ε": lambda r: fmt_epsilon(r["epsilon"]),
            "Value (mean ± SD)": lambda r: fmt_mean_sd(r["mean"], r["sd"]),
            ci: lambda r: fmt_ci(r["ci_low"], r["ci_high"], CI_DIGITS),
            f"Δ vs non-private [{ci}]": fmt_change,
            "p (Δ, adj.)": lambda r: fmt_p(r["p_diff_adjusted"]),
        },
    )


def p_value_table(summary: pd.DataFrame, method: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """DP vs non-private: macro AUROC of every group and every AUROC gap, with raw and adjusted p-values.

    Args:
        summary: a :func:`privfair.fairness.analysis.summarise` table.
        method: the multiple-testing correction the summary used (e.g. "holm"), for the header.

    Returns:
        ``(numbers, view)`` for :func:`privfair.core.tables.write_table`: the macro-AUROC ``group`` and ``gap`` rows
        that have a DP-vs-non-private p-value (all the summary's columns), and per row dataset, ε, quantity,
        attribute, group, the paired change with its CI, p, adjusted p and whether it is flagged.
    """
    rows = summary[
        (summary["label"] == MACRO)
        & (summary["metric"] == "auroc")
        & summary["p_diff"].notna()
        & summary["kind"].isin(["group", "gap"])
    ]
    return rows, view(
        rows,
        {
            "Dataset": lambda r: r["dataset"],
            "ε": lambda r: fmt_epsilon(r["epsilon"]),
            "Quantity": lambda r: "AUROC" if r["kind"] == "group" else "AUROC gap",
            "Attribute": lambda r: r["attribute"],
            "Group": lambda r: r["group"],
            f"Δ vs non-private [{ci_header(summary)}]": fmt_change,
            "p": lambda r: fmt_p(r["p_diff"]),
            f"p ({method.replace('_', '-')})": lambda r: fmt_p(r["p_diff_adjusted"]),
            "Flagged": lambda r: "yes" if r["diff_flagged"] else "",
        },
    )


def correlation_table(correlations: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pearson's r: ε vs macro-AUROC gaps, and AUROC drop vs training count (labels, groups).

    Args:
        correlations: a :func:`privfair.fairness.analysis.correlations` table.

    Returns:
        ``(numbers, view)`` for :func:`privfair.core.tables.write_table`: its rows (ε-vs-gap rows of macro AUROC
        only, all columns), and per row dataset, relation, ε ("DP runs" for ε vs gap), attribute, group, number of
        points, r with its CI ("n/a" when undefined), p and the reason r is not defined, if any.
    """
    rows = correlations[
        (correlations["relation"] != "epsilon_vs_gap")
        | ((correlations["label"] == MACRO) & (correlations["metric"] == "auroc"))
    ]
    relation = {
        "epsilon_vs_gap": "ε vs AUROC gap",
        "auroc_drop_vs_training_positives": "AUROC Δ (DP − non-private) vs training positives",
        "auroc_drop_vs_training_images": "AUROC Δ (DP − non-private) vs training images",
    }
    return rows, view(
        rows,
        {
            "Dataset": lambda r: r["dataset"],
            "Relation": lambda r: relation[r["relation"]],
            "ε": lambda r: "DP runs" if math.isnan(r["epsilon"]) else fmt_epsilon(r["epsilon"]),
            "Attribute": lambda r: r["attribute"],
            "Group": lambda r: r["group"],
            "Points": lambda r: str(r["n_points"]),
            f"r [{ci_header(correlations)}]": lambda r: (
                "n/a" if math.isnan(r["r"]) else f"{r['r']:+.2f} {fmt_ci(r['r_ci_low'], r['r_ci_high'])}"
            ),
            "p": lambda r: fmt_p(r["p_value"]),
            "Note": lambda r: r["reason"] if isinstance(r["reason"], str) else "",
        },
    )
