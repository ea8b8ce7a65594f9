"""Privacy-utility figures (one panel per dataset), sized for single-column journal figures.

Figures are built on ``matplotlib.figure.Figure`` directly (Agg rendering, no pyplot
state), so they work headless under Snakemake and never leak settings between calls.
The non-private model (epsilon = inf) cannot sit on a log epsilon axis, so it is drawn
as a dashed horizontal reference line instead of a point.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullLocator

from privfair.tables import ci_header

PANEL_SIZE_IN = (3.5, 2.8)
# Axis range used when a dataset has only the non-private model (nothing to span).
FALLBACK_EPSILON_RANGE = (0.1, 100.0)
STYLE = {
    "font.size": 8,
    "axes.titlesize": 9,
    "axes.labelsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "lines.linewidth": 1.2,
    "lines.markersize": 4,
    "pdf.fonttype": 42,  # embed TrueType so text stays editable in the PDF
    "ps.fonttype": 42,
}
DP_COLOR = "C0"
NON_PRIVATE_COLOR = "0.35"
EPSILON_LABEL = "Privacy budget ε (log scale)"
# Legend entries of the privacy-utility figure, in display order.
DP_MEAN, NP_MEAN = "DP (mean ± SD over seeds)", "Non-private"


@contextmanager
def panel_figure(panels: list, path_png, path_pdf, ncols: int | None = None):
    """Yield ``{panel: axes}`` (side by side, wrapping after ``ncols``); on exit lay out and save PNG + PDF.

    A panel key is its title; a tuple key is titled by its parts joined with " · ".
    """
    if not panels:
        raise ValueError("nothing to plot: the table has no rows")
    ncols = ncols or len(panels)
    nrows = math.ceil(len(panels) / ncols)
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(PANEL_SIZE_IN[0] * ncols, PANEL_SIZE_IN[1] * nrows))
        axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
        for panel, ax in zip(panels, axes):
            ax.set_title(" · ".join(panel) if isinstance(panel, tuple) else panel)
        for ax in axes[len(panels) :]:
            ax.set_visible(False)
        yield dict(zip(panels, axes))
        fig.tight_layout()
        for path, dpi in ((path_png, 300), (path_pdf, None)):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(path, dpi=dpi, bbox_inches="tight")


def _epsilon_axis(ax, epsilons, ylabel: str) -> None:
    """Log epsilon axis with ticks at the evaluated budgets (non-finite values ignored)."""
    finite = np.unique([e for e in epsilons if math.isfinite(e)])
    ax.set_xscale("log")
    if finite.size:
        ax.set_xlim(finite.min() / 1.5, finite.max() * 1.5)
        ax.set_xticks(finite)
    else:
        ax.set_xlim(*FALLBACK_EPSILON_RANGE)
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
    ax.set_xlabel(EPSILON_LABEL)
    ax.set_ylabel(ylabel)


def _split_private(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(DP rows sorted by epsilon, non-private rows)."""
    private = np.isfinite(rows["epsilon"].to_numpy(dtype=float))
    return rows[private].sort_values("epsilon"), rows[~private]


def plot_privacy_utility(table: pd.DataFrame, path_png, path_pdf) -> None:
    """Macro AUROC vs epsilon from :func:`privfair.aggregate.privacy_utility_table`.

    Points: mean over seeds with SD error bars; shaded band: seed-averaged bootstrap CI.
    Non-private: dashed line at its mean with its CI as a lighter band.
    """
    datasets = list(dict.fromkeys(table["dataset"]))
    dp_ci, np_ci = f"DP {ci_header(table)} (bootstrap)", f"Non-private {ci_header(table)}"
    with panel_figure(datasets, path_png, path_pdf) as panels:
        for dataset, ax in panels.items():
            rows = table[table["dataset"] == dataset]
            private, non_private = _split_private(rows)
            if not private.empty:
                eps = private["epsilon"].to_numpy(dtype=float)
                ci_style = {"color": DP_COLOR, "alpha": 0.2, "label": dp_ci}
                if len(eps) > 1:
                    ax.fill_between(eps, private["ci_low"], private["ci_high"], linewidth=0, **ci_style)
                else:  # a band needs two budgets; show the lone budget's CI as a wide bar instead
                    ax.vlines(eps, private["ci_low"], private["ci_high"], linewidth=6, **ci_style)
                ax.errorbar(
                    eps,
                    private["auroc_mean"],
                    yerr=private["auroc_sd"].fillna(0.0),
                    color=DP_COLOR,
                    marker="o",
                    capsize=2,
                    label=DP_MEAN,
                )
            for _, row in non_private.iterrows():
                ax.axhspan(row["ci_low"], row["ci_high"], color=NON_PRIVATE_COLOR, alpha=0.12, linewidth=0, label=np_ci)
                ax.axhline(row["auroc_mean"], color=NON_PRIVATE_COLOR, linestyle="--", label=NP_MEAN)
            _epsilon_axis(ax, rows["epsilon"], "Test macro AUROC")
        # Entries are the same in every panel: one legend under the figure, each entry once.
        entries = {}
        for ax in panels.values():
            for handle, label in zip(*ax.get_legend_handles_labels()):
                entries.setdefault(label, handle)
        shown = [label for label in (DP_MEAN, dp_ci, NP_MEAN, np_ci) if label in entries]
        figure = next(iter(panels.values())).figure
        figure.legend(
            [entries[label] for label in shown],
            shown,
            loc="upper center",
            bbox_to_anchor=(0.5, 0.0),
            ncol=2 if len(panels) == 1 else 4,
            frameon=False,
        )


def plot_per_label(per_label: pd.DataFrame, path_png, path_pdf) -> None:
    """Per-label AUROC vs epsilon from :func:`privfair.aggregate.per_label_table`.

    One line per label (mean ± SD over seeds); each label's non-private AUROC is a dashed
    line in the same colour.
    """
    datasets = list(dict.fromkeys(per_label["dataset"]))
    with panel_figure(datasets, path_png, path_pdf) as panels:
        for dataset, ax in panels.items():
            rows = per_label[per_label["dataset"] == dataset]
            labels = list(dict.fromkeys(rows["label"]))
            palette = matplotlib.colormaps["tab10" if len(labels) <= 10 else "tab20"].colors
            for i, label in enumerate(labels):
                color = palette[i % len(palette)]
                private, non_private = _split_private(rows[rows["label"] == label])
                if not private.empty:
                    ax.errorbar(
                        private["epsilon"].to_numpy(dtype=float),
                        private["auroc_mean"],
                        yerr=private["auroc_sd"].fillna(0.0),
                        color=color,
                        marker="o",
                        capsize=2,
                        label=label,
                    )
                for value in non_private["auroc_mean"]:
                    ax.axhline(
                        value,
                        color=color,
                        linestyle="--",
                        linewidth=0.9,
                        label=label if private.empty else "_nolegend_",
                    )
            ax.plot([], [], color=NON_PRIVATE_COLOR, linestyle="--", label="Non-private (dashed)")
            _epsilon_axis(ax, rows["epsilon"], "Test AUROC")
            # Below the panel: multi-label datasets have too many entries to fit inside it.
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.28), ncol=2, frameon=False)
