"""The one look of every figure: journal-sized panels, colours, the ε axis and legends.

Figures are built on ``matplotlib.figure.Figure`` directly (Agg rendering, no pyplot state), so they work headless
under Snakemake and never leak settings between calls. Every figure with an ε axis uses :func:`epsilon_positions`
and :func:`epsilon_axis`: a log axis with a tick at each budget and the non-private model (ε = ∞) at the right end,
at a tick labelled "∞".
"""

from __future__ import annotations

import math
import textwrap
from contextlib import contextmanager
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullLocator

from privfair.core.io import atomic_output

PANEL_SIZE_IN = (3.5, 2.8)
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
EPSILON_LABEL = "Privacy budget ε (log scale; ∞ = non-private)"
# Where ∞ sits: this factor beyond the largest finite budget (or at 1 when there is none).
INFINITY_FACTOR = 3.0


def palette(n: int) -> tuple:
    """At least ``n`` distinguishable colours: tab10 up to ten, tab20 up to twenty, evenly spaced turbo beyond (so
    that no line is dropped or repeated, however many groups or labels a study has)."""
    if n <= 20:
        return matplotlib.colormaps["tab10" if n <= 10 else "tab20"].colors
    return tuple(tuple(rgba) for rgba in matplotlib.colormaps["turbo"](np.linspace(0.0, 1.0, n)))


def save_figure(fig: Figure, path_png, path_pdf, dpi: int = 300) -> None:
    """PNG at ``dpi`` and a vector PDF, each written whole or not at all."""
    for path, resolution in ((path_png, dpi), (path_pdf, None)):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(path) as partial:
            fig.savefig(partial, dpi=resolution, bbox_inches="tight")


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
        for panel, ax in zip(panels, axes, strict=False):
            ax.set_title(" · ".join(panel) if isinstance(panel, tuple) else panel)
        for ax in axes[len(panels) :]:
            ax.set_visible(False)
        yield dict(zip(panels, axes, strict=False))
        fig.tight_layout()
        save_figure(fig, path_png, path_pdf)


def epsilon_positions(epsilons) -> dict[float, float]:
    """x position of each ε on the log axis; ∞ goes :data:`INFINITY_FACTOR` beyond the largest finite budget."""
    finite = sorted(e for e in set(epsilons) if math.isfinite(e))
    top = finite[-1] * INFINITY_FACTOR if finite else 1.0
    return {e: (top if math.isinf(e) else e) for e in set(epsilons)}


def epsilon_axis(ax, positions: dict[float, float], ylabel: str) -> None:
    """A log ε axis with one tick per budget in ``positions`` (from :func:`epsilon_positions`), ∞ labelled "∞"."""
    ax.set_xscale("log")
    ticks = sorted(positions.values())
    ax.set_xticks(ticks)
    labels = {x: ("∞" if math.isinf(e) else f"{e:g}") for e, x in positions.items()}
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: labels.get(x, "")))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlim(ticks[0] / 1.5, ticks[-1] * 1.5)
    ax.set_xlabel(EPSILON_LABEL)
    ax.set_ylabel(ylabel)


def no_data(ax, message: str) -> None:
    """An empty panel that says why (e.g. every group below the minimum size), instead of a blank or an error."""
    ax.text(
        0.5,
        0.5,
        textwrap.fill(message, 34),
        ha="center",
        va="center",
        transform=ax.transAxes,
        fontsize=7,
        color="0.4",
    )
    ax.set_axis_off()


def unique_entries(axes) -> dict:
    """Legend label → handle over ``axes``, each label once, in order of first appearance."""
    entries = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    return entries


def panel_legend(ax, ncol: int = 3) -> None:
    """The panel's legend below it, each entry once: multi-label panels have too many entries to fit inside."""
    entries = unique_entries([ax])
    if entries:
        ax.legend(
            list(entries.values()),
            list(entries),
            loc="upper center",
            bbox_to_anchor=(0.5, -0.28),
            ncol=ncol,
            frameon=False,
        )


def figure_legend(panels: dict, order=None, **kwargs) -> None:
    """One legend under the figure with each entry of any panel once (none if there is nothing to show).

    ``order`` lists labels to show first, in that order; the others follow as they appear.
    """
    entries = unique_entries(panels.values())
    if not entries:
        return
    shown = [label for label in (order or ()) if label in entries]
    shown += [label for label in entries if label not in shown]
    next(iter(panels.values())).figure.legend(
        [entries[label] for label in shown],
        shown,
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
        frameon=False,
        **{"ncol": min(len(shown), 4), **kwargs},
    )
