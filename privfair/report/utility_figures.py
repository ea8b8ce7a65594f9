"""Privacy-utility figures (rules ``plot_privacy_utility``, ``plot_per_label``): one panel per dataset.

The non-private model sits at the "∞" tick of the shared ε axis (:mod:`privfair.core.style`), and a dashed
horizontal line at its AUROC runs across the panel, so that every budget reads against it.

Initialisations (:mod:`privfair.evaluate.runs`): a study of scratch runs only is drawn as before; otherwise each init
is a line of its own colour and marker (:func:`init_styles`, scratch first) within the dataset's panel, its
non-private model a square at ∞ and a dashed line in its colour. The fairness and audit figures take the same
styles, or a line style per init (:func:`init_linestyles`) where colours already tell groups apart.
"""

from __future__ import annotations

import pandas as pd

from privfair.core.style import (
    DP_COLOR,
    EPSILON_SHORT_LABEL,
    LINESTYLES,
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
from privfair.evaluate.runs import SCRATCH, init_order

# Legend entries of the privacy-utility figure, in display order.
DP_MEAN, NP_MEAN = "DP (mean ± SD over seeds)", "Non-private (mean ± SD)"
NP_DASHED = "Non-private (dashed)"
# With several inits: the non-private model of each init, and the shaded CIs, in every init's colour.
NP_SQUARE = "Non-private: square at ∞, dashed line (init's colour)"
# Small multiples of the per-label figure: at most this many panels a row.
MAX_LABEL_COLUMNS = 5
# Sideways nudge between the inits' markers at one budget, as a factor on the log ε axis.
INIT_NUDGE = 1.06


def inits_of(table: pd.DataFrame) -> list[str]:
    """The table's inits in display order (scratch first)."""
    return init_order(table["init"])


def scratch_only(table: pd.DataFrame) -> bool:
    """Whether every run of the table is scratch: then the figures look as they did before there were inits."""
    return inits_of(table) == [SCRATCH]


def init_styles(inits) -> dict[str, dict]:
    """One colour and marker per init (:func:`privfair.core.style.line_styles`), in display order.

    Args:
        inits: init labels, repeats allowed.

    Returns:
        ``{init: {"color", "marker", "linestyle"}}``.
    """
    ordered = init_order(inits)
    return dict(zip(ordered, line_styles(len(ordered)), strict=True))


def init_linestyles(inits) -> dict[str, str]:
    """One line style per init, for figures whose colours tell groups, metrics or budgets apart: scratch solid.

    Args:
        inits: init labels, repeats allowed.

    Returns:
        ``{init: linestyle}`` (cycled past four inits).
    """
    return {init: LINESTYLES[i % len(LINESTYLES)] for i, init in enumerate(init_order(inits))}


def init_nudges(inits) -> dict[str, float]:
    """A factor on the log ε axis per init, so that the inits' markers at one budget sit side by side."""
    ordered = init_order(inits)
    return {init: INIT_NUDGE ** (i - (len(ordered) - 1) / 2) for i, init in enumerate(ordered)}


def _points(ax, rows: pd.DataFrame, positions: dict, color, label: str, nudge: float = 1.0, **style) -> None:
    """Mean ± SD over seeds at each budget's position (times ``nudge``)."""
    ax.errorbar(
        rows["epsilon"].map(positions).to_numpy(dtype=float) * nudge,
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
        table: one row per (dataset, init, ε) with ``auroc_mean``, ``auroc_sd``, ``ci_low``, ``ci_high``,
            ``ci_level``.
        path_png: the PNG to write (300 dpi).
        path_pdf: the PDF to write.

    DP points: mean over seeds with SD error bars, joined, over a band of the seed-averaged bootstrap CI. The
    non-private model: its point at ∞ and a dashed line at its mean, over a lighter band of its CI. With inits other
    than scratch, one such line per init in each dataset's panel (:func:`_plot_inits`).
    """
    if not scratch_only(table):
        _plot_inits(table, path_png, path_pdf)
        return
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


def _plot_inits(table: pd.DataFrame, path_png, path_pdf) -> None:
    """The privacy-utility figure with several inits: per dataset panel, one colour and marker per init; DP mean ±
    SD joined over a band of its CI, the non-private model a square at ∞ with its CI as a bar and a dashed line at
    its mean. Markers of the inits at one budget are nudged apart."""
    datasets = list(dict.fromkeys(table["dataset"]))
    styles, nudges = init_styles(table["init"]), init_nudges(table["init"])
    band = f"{ci_header(table)} (bootstrap, shaded)"
    with panel_figure(datasets, path_png, path_pdf) as panels:
        for dataset, ax in panels.items():
            rows = table[table["dataset"] == dataset]
            positions = epsilon_positions(rows["epsilon"])
            for init, style in styles.items():
                block = rows[rows["init"] == init].sort_values("epsilon")
                private = block[block["epsilon"] < float("inf")]
                non_private = block[block["epsilon"] == float("inf")]
                colour, nudge = style["color"], nudges[init]
                if not private.empty:
                    x = private["epsilon"].map(positions).to_numpy(dtype=float) * nudge
                    if len(x) > 1:
                        ax.fill_between(x, private["ci_low"], private["ci_high"], color=colour, alpha=0.15, linewidth=0)
                    else:
                        ax.vlines(x, private["ci_low"], private["ci_high"], color=colour, alpha=0.25, linewidth=6)
                    _points(ax, private, positions, colour, init, nudge, marker=style["marker"])
                for _, row in non_private.iterrows():
                    x = positions[row["epsilon"]] * nudge
                    ax.vlines([x], row["ci_low"], row["ci_high"], color=colour, alpha=0.25, linewidth=6)
                    ax.axhline(row["auroc_mean"], color=colour, linestyle="--", linewidth=0.9)
                if not non_private.empty:
                    label = init if private.empty else None
                    _points(ax, non_private, positions, colour, label, nudge, marker="s")
            if (rows["epsilon"] == float("inf")).any():
                ax.plot([], [], color=NON_PRIVATE_COLOR, marker="s", linestyle="--", label=NP_SQUARE)
            ax.fill_between([], [], [], color=NON_PRIVATE_COLOR, alpha=0.2, linewidth=0, label=band)
            epsilon_axis(ax, positions, "Test macro AUROC")
        figure_legend(panels, order=(*styles, NP_SQUARE, band), ncol=min(len(styles) + 2, 4))


def plot_per_label(per_label: pd.DataFrame, path_png, path_pdf) -> None:
    """Per-label AUROC vs ε from :func:`privfair.evaluate.aggregate.per_label_table`.

    Args:
        per_label: one row per (dataset, ε, label) with ``auroc_mean`` and ``auroc_sd``.
        path_png: the PNG to write (300 dpi).
        path_pdf: the PDF to write.

    Up to :data:`~privfair.core.style.SMALL_MULTIPLES_ABOVE` labels: one panel per dataset, one line per label (mean
    ± SD over seeds) from the strictest budget to ∞, each label's non-private AUROC also a dashed line in its style;
    with inits other than scratch, one such panel per (dataset, init), each dataset a row. More labels: small
    multiples, one panel per (dataset, label) with a shared y axis, each dataset starting a row, and one line per
    init in each (:func:`init_styles`).
    """
    datasets = list(dict.fromkeys(per_label["dataset"]))
    labels = {d: list(dict.fromkeys(per_label.loc[per_label["dataset"] == d, "label"])) for d in datasets}
    if max(len(names) for names in labels.values()) > SMALL_MULTIPLES_ABOVE:
        _per_label_small_multiples(per_label, labels, path_png, path_pdf)
        return
    multi = not scratch_only(per_label)
    slots, ncols = datasets, None
    if multi:
        inits = {d: init_order(per_label.loc[per_label["dataset"] == d, "init"]) for d in datasets}
        ncols = max(len(names) for names in inits.values())
        slots = [slot for d in datasets for slot in [(d, i) for i in inits[d]] + [None] * (ncols - len(inits[d]))]
    with panel_figure(slots, path_png, path_pdf, ncols=ncols) as panels:
        for key, ax in panels.items():
            dataset = key[0] if multi else key
            rows = per_label[per_label["dataset"] == dataset]
            positions = epsilon_positions(rows["epsilon"])  # the same axis for every init of the dataset
            if multi:
                rows = rows[rows["init"] == key[1]]
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
    """One small panel per (dataset, label): DP mean ± SD joined, the non-private point at ∞ and a dashed line at it;
    with inits other than scratch, one line per init in its colour and marker."""
    multi = not scratch_only(per_label)
    styles, nudges = init_styles(per_label["init"]), init_nudges(per_label["init"])
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
            if multi:
                _init_lines(ax, points, positions, styles, nudges)
            else:
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
        order = (*styles, NP_SQUARE) if multi else (DP_MEAN, NP_MEAN, NP_DASHED)
        figure_legend(panels, order=order, ncol=min(len(order), 4) if multi else 3)


def _init_lines(ax, points: pd.DataFrame, positions: dict, styles: dict, nudges: dict) -> None:
    """One init per line in a small panel: DP mean ± SD joined, the non-private model a square at ∞ and a dashed
    line, all in the init's colour."""
    for init, style in styles.items():
        block = points[points["init"] == init]
        private = block[block["epsilon"] < float("inf")]
        non_private = block[block["epsilon"] == float("inf")]
        if not private.empty:
            _points(ax, private, positions, style["color"], init, nudges[init], marker=style["marker"])
        for value in non_private["auroc_mean"]:
            ax.axhline(value, color=style["color"], linestyle="--", linewidth=0.9)
        if not non_private.empty:
            _points(
                ax,
                non_private,
                positions,
                style["color"],
                None if not private.empty else init,
                nudges[init],
                marker="s",
            )
    if (points["epsilon"] == float("inf")).any():
        ax.plot([], [], color=NON_PRIVATE_COLOR, marker="s", linestyle="--", label=NP_SQUARE)
