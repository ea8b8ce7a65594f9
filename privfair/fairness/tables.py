"""The fairness tables (rule ``analyse_fairness``): views of :func:`privfair.fairness.analysis.summarise` and
:func:`privfair.fairness.analysis.correlations`, rendered by :mod:`privfair.core.tables`."""

from __future__ import annotations

import math

import pandas as pd

from privfair.core.tables import (
    CI_DIGITS,
    ci_header,
    few_resamples,
    few_resamples_note,
    fmt_change,
    fmt_ci,
    fmt_epsilon,
    fmt_mean_sd,
    fmt_p,
    mark_few_resamples,
    view,
)
from privfair.evaluate.metrics import MACRO
from privfair.fairness.metrics import ANY_FINDING, OVERALL
from privfair.fairness.subgroups import KEPT_APART

WHY_FEW_RESAMPLES = "were undefined: a group lacked the positives or negatives of some label in them"
ENOUGH = "enough test positives and negatives (fairness.min_group_size)"


def _macro(summary: pd.DataFrame, kind: str) -> pd.DataFrame:
    return summary[(summary["kind"] == kind) & (summary["label"] == MACRO)]


def _count(row, column: str) -> float:
    value = row.get(column, math.nan)
    return math.nan if value is None else float(value)


def _ci_cell(row) -> str:
    cell = fmt_ci(row["ci_low"], row["ci_high"], CI_DIGITS)
    return mark_few_resamples(cell, _count(row, "n_valid"), _count(row, "n_resamples"))


def _change_cell(row) -> str:
    return mark_few_resamples(fmt_change(row), _count(row, "diff_n_valid"), _count(row, "n_resamples"))


def _gap_fallback(summary: pd.DataFrame) -> list[tuple[str, str]]:
    """(dataset, attribute) pairs with AUROC gaps of single labels but no macro AUROC gap."""
    gaps = summary[(summary["kind"] == "gap") & (summary["metric"] == "auroc") & summary["mean"].notna()]
    with_macro = set(zip(*[gaps.loc[gaps["label"] == MACRO, c] for c in ("dataset", "attribute")]))
    pairs = dict.fromkeys(zip(gaps["dataset"], gaps["attribute"]))
    return [pair for pair in pairs if pair not in with_macro]


def performance_gap_table(summary: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Macro-AUROC performance gap of every group and budget (the reference study's fairness measure).

    Args:
        summary: a :func:`privfair.fairness.analysis.summarise` table.

    Where an attribute has no macro gap (small data: no group had more than half of the labels with enough
    positives and negatives), its gaps of single labels are shown instead, and the view gains a ``Label`` column
    (explained by :func:`table_notes`).

    Args:
        summary: a :func:`privfair.fairness.analysis.summarise` table.

    Returns:
        ``(numbers, view)`` for :func:`privfair.core.tables.write_table`: the summary's ``gap`` rows of macro AUROC
        (all its columns), plus the per-label AUROC gaps of attributes without a macro gap, and per row dataset,
        init, attribute, group, (label, when there are such rows,) ε, gap (mean ± SD over seeds), CI, the adjusted
        p-value of "gap = 0" and the paired change from non-private; CIs and changes resting on few resamples are
        marked "† valid/drawn".
    """
    gaps = summary[(summary["kind"] == "gap") & (summary["metric"] == "auroc")]
    fallback = pd.Series(list(zip(gaps["dataset"], gaps["attribute"])), index=gaps.index).isin(_gap_fallback(summary))
    per_label = fallback & (gaps["label"] != MACRO) & gaps["mean"].notna()
    rows = gaps[(gaps["label"] == MACRO) | per_label]
    ci = ci_header(summary)
    label = {"Label": lambda r: r["label"]} if per_label.any() else {}
    return rows, view(
        rows,
        {
            "Dataset": lambda r: r["dataset"],
            "Init": lambda r: r["init"],
            "Attribute": lambda r: r["attribute"],
            "Group": lambda r: r["group"],
            **label,
            "ε": lambda r: fmt_epsilon(r["epsilon"]),
            "AUROC gap (mean ± SD)": lambda r: fmt_mean_sd(r["mean"], r["sd"]),
            ci: _ci_cell,
            "p (gap ≠ 0, adj.)": lambda r: fmt_p(r["p_zero_adjusted"]),
            f"Δ vs non-private [{ci}]": _change_cell,
        },
    )


def fairness_metric_table(summary: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The standard fairness differences (macro over labels) per attribute and budget.

    Args:
        summary: a :func:`privfair.fairness.analysis.summarise` table.

    Returns:
        ``(numbers, view)`` for :func:`privfair.core.tables.write_table`: the summary's macro ``fairness`` rows (all
        its columns), and per row dataset, init, attribute, metric, ε, value (mean ± SD over seeds), CI, the paired
        change from non-private and its adjusted p-value; CIs and changes resting on few resamples are marked.
    """
    rows = _macro(summary, "fairness")
    ci = ci_header(summary)
    return rows, view(
        rows,
        {
            "Dataset": lambda r: r["dataset"],
            "Init": lambda r: r["init"],
            "Attribute": lambda r: r["attribute"],
            "Metric": lambda r: r["metric"].replace("_", " "),
            "ε": lambda r: fmt_epsilon(r["epsilon"]),
            "Value (mean ± SD)": lambda r: fmt_mean_sd(r["mean"], r["sd"]),
            ci: _ci_cell,
            f"Δ vs non-private [{ci}]": _change_cell,
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
        that have a DP-vs-non-private p-value (all the summary's columns), unknown and unbinned groups left out
        (they are in no test family), and per row dataset, init, ε, quantity, attribute, group, the paired change with
        its CI (marked where it rests on few resamples), p, adjusted p and whether it is flagged.
    """
    rows = summary[
        (summary["label"] == MACRO)
        & (summary["metric"] == "auroc")
        & summary["p_diff"].notna()
        & summary["kind"].isin(["group", "gap"])
        & ~summary["group"].isin(KEPT_APART)
    ]
    return rows, view(
        rows,
        {
            "Dataset": lambda r: r["dataset"],
            "Init": lambda r: r["init"],
            "ε": lambda r: fmt_epsilon(r["epsilon"]),
            "Quantity": lambda r: "AUROC" if r["kind"] == "group" else "AUROC gap",
            "Attribute": lambda r: r["attribute"],
            "Group": lambda r: r["group"],
            f"Δ vs non-private [{ci_header(summary)}]": _change_cell,
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
        only, all columns), and per row dataset, init (r is computed per init), relation, ε ("DP runs" for ε vs
        gap), attribute, group, number of points, r with its CI ("n/a" when undefined), p and the reason r is not
        defined, if any.
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
            "Init": lambda r: r["init"],
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


def macro_label_sets(summary: pd.DataFrame) -> dict[tuple[str, str], tuple[list[str], list[str] | None]]:
    """Which labels the macro AUROC of each attribute averages.

    An attribute's macro values average the labels available in every group compared
    (:func:`privfair.fairness.metrics.group_metrics`), and availability depends on the test split alone, so it is the
    same for every model of a dataset: the labels are read off the groups that have a macro value at one budget of
    one init.

    Args:
        summary: a :func:`privfair.fairness.analysis.summarise` table.

    Returns:
        ``{(dataset, attribute): (all labels, labels averaged)}``, attribute ``overall`` included; labels averaged is
        None where no group has a macro AUROC.
    """
    aurocs = summary[(summary["kind"] == "group") & (summary["metric"] == "auroc")]
    sets = {}
    for dataset, block in aurocs.groupby("dataset", sort=False):
        labels = [label for label in pd.unique(block["label"]) if label not in (MACRO, ANY_FINDING)]
        first = block.iloc[0]
        block = block[(block["epsilon"] == first["epsilon"]) & (block["init"] == first["init"])]
        for attribute, rows in block.groupby("attribute", sort=False):
            macro = rows[(rows["label"] == MACRO) & rows["mean"].notna()]
            if macro.empty:
                sets[(dataset, attribute)] = (labels, None)
                continue
            available = rows[rows["mean"].notna() & rows["group"].isin(macro["group"])]
            shared = [
                label
                for label in labels
                if set(macro["group"]) <= set(available.loc[available["label"] == label, "group"])
            ]
            sets[(dataset, attribute)] = (labels, shared)
    return sets


def _attribute_list(attributes: list[str]) -> str:
    return ", ".join("overall" if a == OVERALL else a for a in attributes)


def macro_label_notes(summary: pd.DataFrame, shown: pd.DataFrame) -> list[str]:
    """Notes naming the labels behind every macro AUROC of a table, and how they differ from the privacy-utility
    table's macro AUROC (which averages every label of the dataset).

    Args:
        summary: a :func:`privfair.fairness.analysis.summarise` table.
        shown: the table's rows (a subset of ``summary``); only its (dataset, attribute) pairs are described.

    Returns:
        Sentences without a final full stop, one per dataset and set of labels.
    """
    sets = macro_label_sets(summary)
    macro_rows = shown[shown["label"] == MACRO]
    pairs = list(dict.fromkeys(zip(macro_rows["dataset"], macro_rows["attribute"])))
    notes = []
    for dataset in dict.fromkeys(d for d, _ in pairs):
        by_set: dict[tuple | None, list[str]] = {}
        labels = next((all_labels for (d, _), (all_labels, _) in sets.items() if d == dataset), None)
        if labels is None:  # no group rows to read the labels from
            continue
        for d, attribute in pairs:
            if d == dataset and (d, attribute) in sets:
                shared = sets[(d, attribute)][1]
                by_set.setdefault(None if shared is None else tuple(shared), []).append(attribute)
        for shared, attributes in by_set.items():
            if shared is None:
                notes.append(
                    f"{dataset}: no macro AUROC for {_attribute_list(attributes)}: no group had more than half of "
                    f"the {len(labels)} labels with {ENOUGH}"
                )
            elif len(shared) == len(labels):
                notes.append(
                    f"{dataset}: the macro AUROC of {_attribute_list(attributes)} averages "
                    f"{'its one label' if len(labels) == 1 else f'all {len(labels)} labels'} "
                    f"({', '.join(shared)}), as the privacy-utility table does"
                )
            else:
                left_out = [label for label in labels if label not in shared]
                notes.append(
                    f"{dataset}: the macro AUROC of {_attribute_list(attributes)} averages {len(shared)} of the "
                    f"{len(labels)} labels ({', '.join(shared)}), those with {ENOUGH} in every group compared; the "
                    f"privacy-utility table's macro AUROC also averages {', '.join(left_out)}"
                )
    return notes


def gap_fallback_notes(summary: pd.DataFrame) -> list[str]:
    """Why :func:`performance_gap_table` shows gaps of single labels for some attributes, and which.

    Args:
        summary: a :func:`privfair.fairness.analysis.summarise` table.

    Returns:
        Sentences without a final full stop, one per (dataset, attribute) without a macro gap: those with gaps of
        single labels (naming them), and those with recorded groups but no gap at all.
    """
    notes = []
    gaps = summary[(summary["kind"] == "gap") & (summary["metric"] == "auroc") & summary["mean"].notna()]
    for dataset, attribute in _gap_fallback(summary):
        rows = gaps[(gaps["dataset"] == dataset) & (gaps["attribute"] == attribute)]
        labels = list(pd.unique(rows["label"]))
        notes.append(
            f"{dataset}, {attribute}: no macro AUROC gap (no group had more than half of the labels with {ENOUGH}); "
            f"shown instead: the gaps of single labels with enough in at least two groups: {', '.join(labels)}"
        )
    groups = summary[
        (summary["kind"] == "group") & (summary["attribute"] != OVERALL) & ~summary["group"].isin(KEPT_APART)
    ]
    with_gaps = set(zip(gaps["dataset"], gaps["attribute"]))
    for dataset, attribute in dict.fromkeys(zip(groups["dataset"], groups["attribute"])):
        if (dataset, attribute) not in with_gaps:
            notes.append(f"{dataset}, {attribute}: no AUROC gap at all: no label had {ENOUGH} in two of its groups")
    return notes


def table_notes(name: str, summary: pd.DataFrame, numbers: pd.DataFrame) -> list[str]:
    """The notes of one fairness table: which labels its macro values average, why it falls back to single labels,
    and what its marks mean, each only where it applies.

    Args:
        name: "performance_gaps", "fairness_metrics", "p_values" or "pearson".
        summary: the :func:`privfair.fairness.analysis.summarise` table the tables were made from.
        numbers: the table's rows (its ``numbers``).

    Returns:
        Sentences without a final full stop (``notes`` of :func:`privfair.core.tables.write_table`).
    """
    notes = []
    if name in ("performance_gaps", "p_values"):
        notes += macro_label_notes(summary, numbers)
    if name == "performance_gaps":
        notes += gap_fallback_notes(summary)
    if name == "p_values":
        apart = summary["group"].isin(KEPT_APART) & summary["p_diff"].notna() & (summary["label"] == MACRO)
        if apart.any():
            notes.append(
                f"groups of unknown or unbinned values ({', '.join(KEPT_APART)}) are not a patient population: "
                "they are in no test family and not shown"
            )
    checked = {"performance_gaps": ["n_valid", "diff_n_valid"], "fairness_metrics": ["n_valid", "diff_n_valid"]}
    checked["p_values"] = ["diff_n_valid"]
    if "n_resamples" in numbers.columns and any(
        few_resamples(_count(row, column), _count(row, "n_resamples"))
        for _, row in numbers.iterrows()
        for column in checked.get(name, [])
    ):
        notes.append(few_resamples_note(numbers["n_resamples"], WHY_FEW_RESAMPLES))
    return notes
