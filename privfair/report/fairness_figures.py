"""Fairness figures (rules ``plot_fairness_gaps``, ``plot_fairness_metrics``, ``plot_auroc_vs_training_count``,
``plot_roc_curves``): gaps and fairness differences against ε, AUROC against training count, ROC curves.

On the shared ε axis (:mod:`privfair.core.style`) each group's line runs from the strictest budget to ∞.
"""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
from sklearn.metrics import roc_curve

from privfair.core.style import (
    NON_PRIVATE_COLOR,
    epsilon_axis,
    epsilon_positions,
    figure_legend,
    no_data,
    palette,
    panel_figure,
    panel_legend,
)
from privfair.core.tables import ci_header
from privfair.evaluate.metrics import MACRO, SCORE_PREFIX, TRUE_PREFIX, labels_of
from privfair.fairness.metrics import OVERALL, SEX_GAP

METRIC_NAMES = {
    "statistical_parity_difference": "Statistical parity diff.",
    "equal_opportunity_difference": "Equal-opportunity diff.",
    "equalized_odds_difference": "Equalized-odds diff.",
    "auroc_gap": "AUROC gap (max − min)",
}


def _line_with_band(ax, rows: pd.DataFrame, positions, color, label, value="mean") -> None:
    rows = rows.sort_values("epsilon")
    x = rows["epsilon"].map(positions).to_numpy(dtype=float)
    ax.fill_between(x, rows["ci_low"], rows["ci_high"], color=color, alpha=0.15, linewidth=0)
    ax.plot(x, rows[value], color=color, marker="o", label=label)


def plot_gaps(summary: pd.DataFrame, attribute: str, path_png, path_pdf) -> None:
    """Macro-AUROC performance gap of each group of ``attribute`` against ε, one panel per dataset.

    Args:
        summary: a :func:`privfair.fairness.analysis.summarise` table (``mean``, ``ci_low``, ``ci_high``,
            ``ci_level``).
        attribute: the attribute (or intersection) whose groups to plot; for sex, the one F − M gap.
        path_png: the PNG to write (300 dpi).
        path_pdf: the PDF to write.

    Each group is a line of seed means over a band of its bootstrap CI, with a line at zero; a dataset with no gap
    for ``attribute`` gets a panel that says so.
    """
    rows = summary[
        (summary["kind"] == "gap")
        & (summary["attribute"] == attribute)
        & (summary["label"] == MACRO)
        & (summary["metric"] == "auroc")
    ]
    datasets = list(dict.fromkeys(summary["dataset"]))
    ylabel = "AUROC gap, female − male" if attribute == "sex" else "AUROC gap vs other groups"
    with panel_figure(datasets, path_png, path_pdf) as panels:
        for dataset, ax in panels.items():
            block = rows[rows["dataset"] == dataset]
            positions = epsilon_positions(summary.loc[summary["dataset"] == dataset, "epsilon"])
            groups = list(dict.fromkeys(block["group"]))
            for color, group in zip(palette(len(groups)), groups):
                _line_with_band(
                    ax, block[block["group"] == group], positions, color, "female − male" if group == SEX_GAP else group
                )
            if not groups:
                no_data(
                    ax,
                    f"No {attribute} gap: fewer than two recorded groups with enough test cases "
                    "(the tables' notes and fairness_summary.csv say why)",
                )
                continue
            ax.axhline(0.0, color=NON_PRIVATE_COLOR, linewidth=0.8)
            epsilon_axis(ax, positions, f"{ylabel}\n(mean over seeds, {ci_header(summary)})")
            panel_legend(ax)


def plot_fairness_metrics(summary: pd.DataFrame, path_png, path_pdf) -> None:
    """Standard fairness differences (macro over labels) against ε: a row of attributes per dataset.

    Args:
        summary: a :func:`privfair.fairness.analysis.summarise` table.
        path_png: the PNG to write (300 dpi).
        path_pdf: the PDF to write.

    One panel per (dataset, attribute), with a line of seed means over a band of its CI for each of statistical
    parity, equal-opportunity and equalized-odds difference and the AUROC gap; one legend under the figure.
    """
    rows = summary[(summary["kind"] == "fairness") & (summary["label"] == MACRO) & summary["metric"].isin(METRIC_NAMES)]
    attributes = [a for a in dict.fromkeys(summary["attribute"]) if a != OVERALL]
    datasets = list(dict.fromkeys(summary["dataset"]))
    panels_keys = [(d, a) for d in datasets for a in attributes]
    with panel_figure(panels_keys, path_png, path_pdf, ncols=len(attributes)) as panels:
        for (dataset, attribute), ax in panels.items():
            block = rows[(rows["dataset"] == dataset) & (rows["attribute"] == attribute)]
            if block.empty:
                no_data(ax, "Not available: fewer than two recorded groups with enough test cases")
                continue
            positions = epsilon_positions(summary.loc[summary["dataset"] == dataset, "epsilon"])
            for color, (metric, name) in zip(palette(len(METRIC_NAMES)), METRIC_NAMES.items()):
                if (block["metric"] == metric).any():
                    _line_with_band(ax, block[block["metric"] == metric], positions, color, name)
            epsilon_axis(ax, positions, "Difference between groups")
        figure_legend(panels)


def plot_auroc_vs_training_count(summary: pd.DataFrame, counts: pd.DataFrame, path_png, path_pdf) -> None:
    """Per label: test AUROC against training positives, non-private and each DP model joined by a line.

    Args:
        summary: a :func:`privfair.fairness.analysis.summarise` table; its overall per-label AUROC rows are used.
        counts: the :func:`privfair.fairness.analysis.training_counts` tables of all datasets, stacked, with a
            ``dataset`` column.
        path_png: the PNG to write (300 dpi).
        path_pdf: the PDF to write.

    One panel per dataset, training positives on a log x axis: non-private points hollow, DP points coloured by ε
    (viridis), each label annotated.
    """
    rows = summary[
        (summary["kind"] == "group")
        & (summary["attribute"] == OVERALL)
        & (summary["metric"] == "auroc")
        & (summary["label"] != MACRO)
    ]
    datasets = list(dict.fromkeys(rows["dataset"]))
    with panel_figure(datasets, path_png, path_pdf) as panels:
        for dataset, ax in panels.items():
            block = rows[(rows["dataset"] == dataset) & rows["mean"].notna()]
            if block.empty:
                no_data(ax, "No finding with enough test cases")
                continue
            label_counts = counts[(counts["dataset"] == dataset) & (counts["counted"] == "label")].set_index("label")[
                "n_train"
            ]
            finite = sorted(e for e in block["epsilon"].unique() if math.isfinite(e))
            colors = dict(zip(finite, matplotlib.colormaps["viridis"](np.linspace(0.0, 0.85, max(len(finite), 1)))))
            for label, points in block.groupby("label", sort=False):
                x = label_counts.get(label, np.nan)
                points = points.sort_values("epsilon")
                ax.plot([x] * len(points), points["mean"], color="0.7", linewidth=0.8, zorder=1)
                for _, point in points.iterrows():
                    private = math.isfinite(point["epsilon"])
                    ax.scatter(
                        x,
                        point["mean"],
                        s=14,
                        zorder=2,
                        facecolor=colors[point["epsilon"]] if private else "white",
                        edgecolor=colors[point["epsilon"]] if private else NON_PRIVATE_COLOR,
                        label=f"ε = {point['epsilon']:g}" if private else "Non-private",
                    )
                ax.annotate(label, (x, points["mean"].max()), textcoords="offset points", xytext=(3, 3), fontsize=6)
            ax.set_xscale("log")
            # Counts often span less than a decade: ticks at 1-2-5 steps, no crowded minor labels, room for names.
            ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xlim(label_counts.min() / 1.5, label_counts.max() * 2.0)
            ax.set_xlabel("Training images with the finding (log scale)")
            ax.set_ylabel("Test AUROC (mean over seeds)")
            panel_legend(ax)


def plot_roc_curves(models: dict[float, tuple[pd.DataFrame, dict]], dataset: str, path_png, path_pdf) -> None:
    """Test ROC curve of each label for each budget (``models``: ε -> (predictions, val thresholds)), with the
    operating point chosen on validation marked.

    Args:
        models: ε -> (a predictions table, its label -> threshold dict from
            :func:`privfair.fairness.metrics.thresholds_from_summary`); labels are those of the first model.
        dataset: the dataset's name, for the panel titles.
        path_png: the PNG to write (300 dpi).
        path_pdf: the PDF to write.

    One panel per label (at most four per row); masked (NaN) test labels are left out.
    """
    labels = labels_of(next(iter(models.values()))[0])
    epsilons = sorted(models, key=lambda e: (math.isinf(e), e))
    colors = dict(zip(epsilons, palette(len(epsilons))))
    with panel_figure([(dataset, label) for label in labels], path_png, path_pdf, ncols=min(len(labels), 4)) as panels:
        for (_, label), ax in panels.items():
            for epsilon in epsilons:
                predictions, thresholds = models[epsilon]
                test = predictions[predictions["split"] == "test"]
                y = test[f"{TRUE_PREFIX}{label}"].to_numpy(dtype=float)
                s = test[f"{SCORE_PREFIX}{label}"].to_numpy(dtype=float)
                keep = ~np.isnan(y)
                fpr, tpr, _ = roc_curve(y[keep], s[keep])
                name = "non-private" if math.isinf(epsilon) else f"ε = {epsilon:g}"
                ax.plot(fpr, tpr, color=colors[epsilon], label=name)
                called = s[keep] >= thresholds[label]
                ax.plot(
                    called[y[keep] == 0].mean(),
                    called[y[keep] == 1].mean(),
                    marker="o",
                    color=colors[epsilon],
                    markeredgecolor="black",
                )
            ax.plot([0, 1], [0, 1], color="0.8", linewidth=0.8)
            ax.set_xlabel("False-positive rate")
            ax.set_ylabel("True-positive rate")
            ax.set_aspect("equal")
        figure_legend(panels, title="Dots: operating point chosen on validation")
