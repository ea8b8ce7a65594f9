"""Privacy-utility figures (rules ``plot_privacy_utility``, ``plot_per_label``): one panel per dataset.

The non-private model sits at the "∞" tick of the shared ε axis (:mod:`privfair.core.style`), and a dashed
horizontal line at its AUROC runs across the panel, so that every budget reads against it.
"""

from __future__ import annotations

import pandas as pd

from privfair.core.style import (
    DP_COLOR,
    EPSILON_SHORT_LABEL,
    NON_PRIVATE_COLOR,
    SMALL_MULTIPLES_ABOVE,
    SMALL_PANEL_SIZE_IN,
    epsilon_axis,
    epsilon_positions,
    figure_legend,
    grid_columns,
    line_styles,
    panel_figure,
    panel_legend,
)
from privfair.core.tables import ci_header

# Legend entries of the privacy-utility figure, in display order.
DP_MEAN, NP_MEAN = "DP (mean ± SD over seeds)", "Non-private (mean ± SD)"
NP_DASHED = "Non-private (dashed)"
# Small multiples of the per-label figure: at most this many panels a row.
MAX_LABEL_COLUMNS = 5


def _points(ax, rows: pd.DataFrame, positions: dict, color, label: str, **style) -> None:
    """Mean ± SD over seeds at each budget's position."""
    ax.errorbar(
        rows["epsilon"].map(positions).to_numpy(dtype=float),
        rows["auroc_mean"],
        yerr=rows["auroc_sd"].fillna(0.0),
        color=color,
        capsize=2,
        label=label,
        **{"marker": "o", **style},
    )


def plot_privacy_utility(table: pd.DataFrame, path_png, path_pdf) -> None:
    """Macro AUROC vs ε from :func:`privfair.evaluate.aggregate.privacy_utility_table`.

    Args:
        table: one row per (dataset, ε) with ``auroc_mean``, ``auroc_sd``, ``ci_low``, ``ci_high``, ``ci_level``.
        path_png: the PNG to write (300 dpi).
        path_pdf: the PDF to write.

    DP points: mean over seeds with SD error bars, joined, over a band of the seed-averaged bootstrap CI. The
    non-private model: its point at ∞ and a dashed line at its mean, over a lighter band of its CI.
    """
    datasets = list(dict.fromkeys(table["dataset"]))
    dp_ci, np_ci = f"DP {ci_header(table)} (bootstrap)", f"Non-private {ci_header(table)}"
    with panel_figure(datasets, path_png, path_pdf) as panels:
        for dataset, ax in panels.items():
            rows = table[table["dataset"] == dataset].sort_values("epsilon")
            positions = epsilon_positions(rows["epsilon"])
            private = rows[rows["epsilon"] < float("inf")]
            non_private = rows[rows["epsilon"] == float("inf")]
            if not private.empty:
                x = private["epsilon"].map(positions).to_numpy(dtype=float)
                ci_style = {"color": DP_COLOR, "alpha": 0.2, "label": dp_ci}
                if len(x) > 1:
                    ax.fill_between(x, private["ci_low"], private["ci_high"], linewidth=0, **ci_style)
                else:  # a band needs two budgets; show the lone budget's CI as a wide bar instead
                    ax.vlines(x, private["ci_low"], private["ci_high"], linewidth=6, **ci_style)
                _points(ax, private, positions, DP_COLOR, DP_MEAN)
            for _, row in non_private.iterrows():
                ax.axhspan(row["ci_low"], row["ci_high"], color=NON_PRIVATE_COLOR, alpha=0.12, linewidth=0, label=np_ci)
                ax.axhline(row["auroc_mean"], color=NON_PRIVATE_COLOR, linestyle="--", linewidth=0.9)
            if not non_private.empty:
                _points(ax, non_private, positions, NON_PRIVATE_COLOR, NP_MEAN, marker="s")
            epsilon_axis(ax, positions, "Test macro AUROC")
        # Entries are the same in every panel: one legend under the figure.
        figure_legend(panels, order=(DP_MEAN, dp_ci, NP_MEAN, np_ci), ncol=2 if len(panels) == 1 else 4)


def plot_per_label(per_label: pd.DataFrame, path_png, path_pdf) -> None:
    """Per-label AUROC vs ε from :func:`privfair.evaluate.aggregate.per_label_table`.

    Args:
        per_label: one row per (dataset, ε, label) with ``auroc_mean`` and ``auroc_sd``.
        path_png: the PNG to write (300 dpi).
        path_pdf: the PDF to write.

    Up to :data:`~privfair.core.style.SMALL_MULTIPLES_ABOVE` labels: one panel per dataset, one line per label (mean
    ± SD over seeds) from the strictest budget to ∞, each label's non-private AUROC also a dashed line in its style.
    More labels: small multiples, one panel per (dataset, label) with a shared y axis, each dataset starting a row.
    """
    datasets = list(dict.fromkeys(per_label["dataset"]))
    labels = {d: list(dict.fromkeys(per_label.loc[per_label["dataset"] == d, "label"])) for d in datasets}
    if max(len(names) for names in labels.values()) > SMALL_MULTIPLES_ABOVE:
        _per_label_small_multiples(per_label, labels, path_png, path_pdf)
        return
    with panel_figure(datasets, path_png, path_pdf) as panels:
        for dataset, ax in panels.items():
            rows = per_label[per_label["dataset"] == dataset]
            positions = epsilon_positions(rows["epsilon"])
            for label, style in zip(labels[dataset], line_styles(len(labels[dataset])), strict=True):
                points = rows[rows["label"] == label].sort_values("epsilon")
                _points(
                    ax, points, positions, style["color"], label, marker=style["marker"], linestyle=style["linestyle"]
                )
                for value in points.loc[points["epsilon"] == float("inf"), "auroc_mean"]:
                    ax.axhline(value, color=style["color"], linestyle="--", linewidth=0.9)
            if (rows["epsilon"] == float("inf")).any():
                ax.plot([], [], color=NON_PRIVATE_COLOR, linestyle="--", label=NP_DASHED)
            epsilon_axis(ax, positions, "Test AUROC")
            panel_legend(ax, ncol=2)


def _per_label_small_multiples(per_label: pd.DataFrame, labels: dict, path_png, path_pdf) -> None:
    """One small panel per (dataset, label): DP mean ± SD joined, the non-private point at ∞ and a dashed line at it."""
    ncols = grid_columns(max(len(names) for names in labels.values()), MAX_LABEL_COLUMNS)
    slots = []
    for dataset, names in labels.items():
        keys = [(dataset, label) for label in names]
        slots += keys + [None] * (-len(keys) % ncols)  # each dataset starts a new row
    with panel_figure(slots, path_png, path_pdf, ncols=ncols, sharey=True, panel_size=SMALL_PANEL_SIZE_IN) as panels:
        for (dataset, label), ax in panels.items():
            rows = per_label[per_label["dataset"] == dataset]
            positions = epsilon_positions(rows["epsilon"])
            points = rows[rows["label"] == label].sort_values("epsilon")
            private = points[points["epsilon"] < float("inf")]
            non_private = points[points["epsilon"] == float("inf")]
            if not private.empty:
                _points(ax, private, positions, DP_COLOR, DP_MEAN)
            for value in non_private["auroc_mean"]:
                ax.axhline(value, color=NON_PRIVATE_COLOR, linestyle="--", linewidth=0.9, label=NP_DASHED)
            if not non_private.empty:
                _points(ax, non_private, positions, NON_PRIVATE_COLOR, NP_MEAN, marker="s")
            epsilon_axis(ax, positions, "Test AUROC", xlabel=EPSILON_SHORT_LABEL)
            if not ax.get_subplotspec().is_first_col():
                ax.set_ylabel("")
        figure_legend(panels, order=(DP_MEAN, NP_MEAN, NP_DASHED), ncol=3)
