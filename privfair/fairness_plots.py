"""Fairness figures: gaps and fairness differences against ε, AUROC against training count, ROC curves.

The non-private model sits at the right end of the ε axis, at a tick labelled "∞", so that each group's line runs
from the strictest budget to no privacy at all.
"""

from __future__ import annotations

import math
import textwrap

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter, NullLocator
from sklearn.metrics import roc_curve

from privfair.fairness import OVERALL, SEX_GAP
from privfair.metrics import MACRO, SCORE_PREFIX, TRUE_PREFIX, labels_of
from privfair.plots import EPSILON_LABEL, NON_PRIVATE_COLOR, panel_figure
from privfair.tables import ci_header

METRIC_NAMES = {
    "statistical_parity_difference": "Statistical parity diff.",
    "equal_opportunity_difference": "Equal-opportunity diff.",
    "equalized_odds_difference": "Equalized-odds diff.",
    "auroc_gap": "AUROC gap (max − min)",
}


def _palette(n: int):
    return matplotlib.colormaps["tab10" if n <= 10 else "tab20"].colors


def _epsilon_positions(epsilons) -> dict[float, float]:
    """x position of each ε on a log axis; ∞ goes one factor of 3 beyond the largest finite budget."""
    finite = sorted(e for e in set(epsilons) if math.isfinite(e))
    top = finite[-1] * 3 if finite else 1.0
    return {e: (top if math.isinf(e) else e) for e in set(epsilons)}


def _epsilon_axis(ax, positions: dict[float, float], ylabel: str) -> None:
    ax.set_xscale("log")
    ticks = sorted(positions.values())
    ax.set_xticks(ticks)
    labels = {x: ("∞" if math.isinf(e) else f"{e:g}") for e, x in positions.items()}
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: labels.get(x, "")))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlim(ticks[0] / 1.5, ticks[-1] * 1.5)
    ax.set_xlabel(EPSILON_LABEL.replace("(log scale)", "(log scale; ∞ = non-private)"))
    ax.set_ylabel(ylabel)


def _no_data(ax, message: str) -> None:
    """An empty panel that says why (e.g. every group below the minimum size), instead of a blank or an error."""
    ax.text(
        0.5, 0.5, textwrap.fill(message, 34), ha="center", va="center", transform=ax.transAxes, fontsize=7, color="0.4"
    )
    ax.set_axis_off()


def _figure_legend(panels: dict, **kwargs) -> None:
    """One legend under the figure with each entry of any panel once (none if there is nothing to show)."""
    handles = {}
    for ax in panels.values():
        handles.update(zip(*reversed(ax.get_legend_handles_labels())))
    if handles:
        next(iter(panels.values())).figure.legend(
            list(handles.values()),
            list(handles),
            loc="upper center",
            bbox_to_anchor=(0.5, 0.0),
            frameon=False,
            ncol=min(len(handles), 4),
            **kwargs,
        )


def _line_with_band(ax, rows: pd.DataFrame, positions, color, label, value="mean") -> None:
    rows = rows.sort_values("epsilon")
    x = rows["epsilon"].map(positions).to_numpy(dtype=float)
    ax.fill_between(x, rows["ci_low"], rows["ci_high"], color=color, alpha=0.15, linewidth=0)
    ax.plot(x, rows[value], color=color, marker="o", label=label)


def plot_gaps(summary: pd.DataFrame, attribute: str, path_png, path_pdf) -> None:
    """Macro-AUROC performance gap of each group of ``attribute`` against ε, one panel per dataset."""
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
            positions = _epsilon_positions(summary.loc[summary["dataset"] == dataset, "epsilon"])
            groups = list(dict.fromkeys(block["group"]))
            for color, group in zip(_palette(len(groups)), groups):
                _line_with_band(
                    ax, block[block["group"] == group], positions, color, "female − male" if group == SEX_GAP else group
                )
            if not groups:
                _no_data(
                    ax,
                    f"No {attribute} gap: fewer than two recorded groups with enough test cases "
                    "(the tables' notes and fairness_summary.csv say why)",
                )
                continue
            ax.axhline(0.0, color=NON_PRIVATE_COLOR, linewidth=0.8)
            _epsilon_axis(ax, positions, f"{ylabel}\n(mean over seeds, {ci_header(summary)})")
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.28), ncol=3, frameon=False)


def plot_fairness_metrics(summary: pd.DataFrame, path_png, path_pdf) -> None:
    """Standard fairness differences (macro over labels) against ε: a row of attributes per dataset."""
    rows = summary[(summary["kind"] == "fairness") & (summary["label"] == MACRO) & summary["metric"].isin(METRIC_NAMES)]
    attributes = [a for a in dict.fromkeys(summary["attribute"]) if a != OVERALL]
    datasets = list(dict.fromkeys(summary["dataset"]))
    panels_keys = [(d, a) for d in datasets for a in attributes]
    with panel_figure(panels_keys, path_png, path_pdf, ncols=len(attributes)) as panels:
        for (dataset, attribute), ax in panels.items():
            block = rows[(rows["dataset"] == dataset) & (rows["attribute"] == attribute)]
            if block.empty:
                _no_data(ax, "Not available: fewer than two recorded groups with enough test cases")
                continue
            positions = _epsilon_positions(summary.loc[summary["dataset"] == dataset, "epsilon"])
            for color, (metric, name) in zip(_palette(len(METRIC_NAMES)), METRIC_NAMES.items()):
                if (block["metric"] == metric).any():
                    _line_with_band(ax, block[block["metric"] == metric], positions, color, name)
            _epsilon_axis(ax, positions, "Difference between groups")
        _figure_legend(panels)


def plot_auroc_vs_training_count(summary: pd.DataFrame, counts: pd.DataFrame, path_png, path_pdf) -> None:
    """Per label: test AUROC against training positives, non-private and each DP model joined by a line."""
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
                _no_data(ax, "No finding with enough test cases")
                continue
            label_counts = counts[(counts["dataset"] == dataset) & (counts["counted"] == "label")].set_index("label")[
                "n_train"
            ]
            finite = sorted(e for e in block["epsilon"].unique() if math.isfinite(e))
            colours = dict(zip(finite, matplotlib.colormaps["viridis"](np.linspace(0.0, 0.85, max(len(finite), 1)))))
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
                        facecolor=colours[point["epsilon"]] if private else "white",
                        edgecolor=colours[point["epsilon"]] if private else NON_PRIVATE_COLOR,
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
            handles = dict(zip(*reversed(ax.get_legend_handles_labels())))
            ax.legend(
                list(handles.values()),
                list(handles),
                loc="upper center",
                bbox_to_anchor=(0.5, -0.28),
                ncol=3,
                frameon=False,
            )


def plot_roc_curves(models: dict[float, tuple[pd.DataFrame, dict]], dataset: str, path_png, path_pdf) -> None:
    """Test ROC curve of each label for each budget (``models``: ε -> (predictions, val thresholds)), with the
    operating point chosen on validation marked."""
    labels = labels_of(next(iter(models.values()))[0])
    epsilons = sorted(models, key=lambda e: (math.isinf(e), e))
    colours = dict(zip(epsilons, _palette(len(epsilons))))
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
                ax.plot(fpr, tpr, color=colours[epsilon], label=name)
                called = s[keep] >= thresholds[label]
                ax.plot(
                    called[y[keep] == 0].mean(),
                    called[y[keep] == 1].mean(),
                    marker="o",
                    color=colours[epsilon],
                    markeredgecolor="black",
                )
            ax.plot([0, 1], [0, 1], color="0.8", linewidth=0.8)
            ax.set_xlabel("False-positive rate")
            ax.set_ylabel("True-positive rate")
            ax.set_aspect("equal")
        _figure_legend(panels, title="Dots: operating point chosen on validation")
