"""The one look of every figure: journal-sized panels, colours, the ε axis and legends.

Figures are built on ``matplotlib.figure.Figure`` directly (Agg rendering, no pyplot state), so they work headless
under Snakemake and never leak settings between calls. Every figure with an ε axis uses :func:`epsilon_positions`
and :func:`epsilon_axis`: a log axis with a tick at each budget and the non-private model (ε = ∞) at the right end,
at a tick labelled "∞".

Figures scale to many labels and groups: lines sharing a panel take :func:`line_styles` (at most eight colours, then
markers and line styles), per-label figures become small multiples above :data:`SMALL_MULTIPLES_ABOVE` labels in a
balanced grid (:func:`grid_columns`), and point labels are placed clear of each other by :func:`place_labels`.
"""

from __future__ import annotations

import math
import textwrap
from contextlib import contextmanager
from pathlib import Path

import matplotlib
import matplotlib.transforms as mtransforms
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text
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


# Lines that share a panel use at most this many colours; beyond it, markers and then line styles tell them apart.
MAX_COLOURS = 8
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES = ("-", "--", ":", "-.")
# Above this many labels, per-label figures become small multiples (one small panel per label).
SMALL_MULTIPLES_ABOVE = 6
SMALL_PANEL_SIZE_IN = (2.3, 1.9)
EPSILON_SHORT_LABEL = "Privacy budget ε (∞ = non-private)"


def palette(n: int) -> tuple:
    """At least ``n`` distinct colours: tab10 up to ten, evenly spaced turbo beyond (so that no line is dropped or
    repeated, however many groups or labels a study has).

    Args:
        n: how many colours are needed.

    Returns:
        A tuple of at least ``n`` colours, the first ``n`` of them distinct. Lines that share one panel should take
        :func:`line_styles` instead: more than ~8 colours in one panel cannot be told apart.
    """
    if n <= 10:
        return matplotlib.colormaps["tab10"].colors
    return tuple(tuple(rgba) for rgba in matplotlib.colormaps["turbo"](np.linspace(0.0, 1.0, n)))


def line_styles(n: int) -> list[dict]:
    """``n`` distinguishable line styles for lines that share a panel: at most :data:`MAX_COLOURS` colours (tab10's
    first eight), cycled with markers and, past every colour-marker pair, line styles.

    Args:
        n: how many lines share the panel.

    Returns:
        ``n`` distinct dicts of ``color``, ``marker`` and ``linestyle`` (keyword arguments of ``Axes.plot``); with at
        most eight lines, each has its own colour and the default solid line with round markers.
    """
    colours = matplotlib.colormaps["tab10"].colors[:MAX_COLOURS]
    styles = []
    for i in range(n):
        turn, colour = divmod(i, len(colours))
        marker_turn, marker = divmod(turn, len(MARKERS))
        styles.append(
            {
                "color": colours[colour],
                "marker": MARKERS[marker],
                "linestyle": LINESTYLES[marker_turn % len(LINESTYLES)],
            }
        )
    return styles


def grid_columns(n: int, max_columns: int = 4) -> int:
    """Columns for ``n`` panels in a balanced grid of at most ``max_columns`` a row: the fewest rows, then as few
    columns as fill them (7 panels, at most 5 a row: rows of 4 and 3, not of 5 and 2).

    Args:
        n: how many panels.
        max_columns: the most panels in a row.

    Returns:
        The number of columns, at least one.
    """
    if n <= max_columns:
        return max(n, 1)
    return math.ceil(n / math.ceil(n / max_columns))


def save_figure(fig: Figure, path_png, path_pdf, dpi: int = 300) -> None:
    """PNG at ``dpi`` and a vector PDF, each written whole or not at all."""
    for path, resolution in ((path_png, dpi), (path_pdf, None)):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(path) as partial:
            fig.savefig(partial, dpi=resolution, bbox_inches="tight")


@contextmanager
def panel_figure(
    panels: list, path_png, path_pdf, ncols: int | None = None, *, sharey: bool = False, panel_size=PANEL_SIZE_IN
):
    """Yield ``{panel: axes}`` (side by side, wrapping after ``ncols``); on exit lay out and save PNG + PDF.

    A panel key is its title; a tuple key is titled by its parts joined with " · ". A ``None`` in ``panels`` is an
    empty (hidden) slot, e.g. to start each dataset's small multiples on a new row; it is not in the yielded dict.
    ``sharey`` shares the y axis of all panels (tick labels on the first column only); ``panel_size`` is each
    panel's (width, height) in inches.
    """
    if not any(panel is not None for panel in panels):
        raise ValueError("nothing to plot: the table has no rows")
    ncols = ncols or len(panels)
    nrows = math.ceil(len(panels) / ncols)
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(panel_size[0] * ncols, panel_size[1] * nrows))
        axes = fig.subplots(nrows, ncols, squeeze=False, sharey=sharey).ravel()
        shown = {}
        for panel, ax in zip(panels, axes, strict=False):
            if panel is None:
                ax.set_visible(False)
                continue
            ax.set_title(" · ".join(panel) if isinstance(panel, tuple) else panel)
            shown[panel] = ax
        for ax in axes[len(panels) :]:
            ax.set_visible(False)
        yield shown
        fig.tight_layout()
        save_figure(fig, path_png, path_pdf)


def epsilon_positions(epsilons) -> dict[float, float]:
    """x position of each ε on the log axis; ∞ goes :data:`INFINITY_FACTOR` beyond the largest finite budget."""
    finite = sorted(e for e in set(epsilons) if math.isfinite(e))
    top = finite[-1] * INFINITY_FACTOR if finite else 1.0
    return {e: (top if math.isinf(e) else e) for e in set(epsilons)}


def epsilon_axis(ax, positions: dict[float, float], ylabel: str, xlabel: str = EPSILON_LABEL) -> None:
    """A log ε axis with one tick per budget in ``positions`` (from :func:`epsilon_positions`), ∞ labelled "∞".

    ``xlabel`` defaults to the full :data:`EPSILON_LABEL`; small panels take :data:`EPSILON_SHORT_LABEL`.
    """
    ax.set_xscale("log")
    ticks = sorted(positions.values())
    ax.set_xticks(ticks)
    labels = {x: ("∞" if math.isinf(e) else f"{e:g}") for e, x in positions.items()}
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: labels.get(x, "")))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlim(ticks[0] / 1.5, ticks[-1] * 1.5)
    ax.set_xlabel(xlabel)
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


# How far below a panel's lower edge its legend starts: clear of its tick labels and x label, whatever its height.
PANEL_LEGEND_DROP_IN = 0.45


def panel_legend(ax, ncol: int = 3) -> None:
    """The panel's legend below it, each entry once: multi-label panels have too many entries to fit inside.

    The legend hangs a fixed distance (:data:`PANEL_LEGEND_DROP_IN`) below the panel, under its x label.
    """
    entries = unique_entries([ax])
    if entries:
        drop = mtransforms.ScaledTranslation(0.0, -PANEL_LEGEND_DROP_IN, ax.figure.dpi_scale_trans)
        ax.legend(
            list(entries.values()),
            list(entries),
            loc="upper center",
            bbox_to_anchor=(0.5, 0.0),
            bbox_transform=ax.transAxes + drop,
            ncol=ncol,
            frameon=False,
        )


def _renderer(fig: Figure):
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    return fig.canvas.get_renderer()


def _overlaps(box, boxes) -> bool:
    return any(box.overlaps(other) for other in boxes)


def place_labels(ax, anchors, *, avoid=(), fontsize: float = 6, max_steps: int = 3) -> list:
    """Label points with text that overlaps neither other labels nor the points in ``avoid``.

    Call it last, when the panel is otherwise complete (limits final). Each label goes, lowest point first, at the
    first free spot inside the panel right or left of its point, then up to ``max_steps`` text heights above or
    below. Where the points crowd so that some label finds no free spot, every label goes instead into a column in
    the panel's right margin, in the order of its point's height, joined to its point by a thin line (and the font
    shrinks, to no less than 4 pt, if the column would be taller than the panel).

    Args:
        ax: the axes.
        anchors: ``(x, y, text)`` in data coordinates, one per label; one with a non-finite coordinate is left out.
        avoid: ``(x, y)`` points (data coordinates) that no label should cover, e.g. every marker of the panel.
        fontsize: the labels' font size in points.
        max_steps: how many text heights up or down a label may move from its point.

    Returns:
        The annotations, in the order of ``anchors``.
    """
    anchors = [(x, y, text) for x, y, text in anchors if np.isfinite(x) and np.isfinite(y)]
    if not anchors:
        return []
    fig = ax.figure
    fig.tight_layout()
    renderer = _renderer(fig)
    to_display = ax.transData.transform
    px_per_pt = fig.dpi / 72.0
    half = 3.0 * px_per_pt
    obstacles = [
        mtransforms.Bbox.from_extents(x - half, y - half, x + half, y + half)
        for x, y in (to_display(point) for point in avoid)
        if np.isfinite(x) and np.isfinite(y)
    ]
    placed, annotations = [], {}
    for i in sorted(range(len(anchors)), key=lambda i: to_display(anchors[i][:2])[1]):
        x, y, text = anchors[i]
        annotation = ax.annotate(
            text, (x, y), xytext=(3, 2), textcoords="offset points", fontsize=fontsize, annotation_clip=False
        )
        annotation.set_in_layout(False)
        annotations[i] = annotation
        height = annotation.get_window_extent(renderer).height / px_per_pt + 1.0
        candidates = [(dx, dy) for dy in (2, -2 - height) for dx in (3, -3)]
        candidates += [
            (dx, dy)
            for step in range(1, max_steps + 1)
            for dy in (2 + step * height, -2 - (step + 1) * height)
            for dx in (3, -3)
        ]
        for dx, dy in candidates:
            annotation.set_position((dx, dy))
            annotation.set_horizontalalignment("left" if dx > 0 else "right")
            box = annotation.get_window_extent(renderer).padded(px_per_pt)
            inside = ax.bbox.contains(*box.p0) and ax.bbox.contains(*box.p1)
            if inside and not _overlaps(box, placed) and not _overlaps(box, obstacles):
                placed.append(box)
                break
        else:
            for annotation in annotations.values():
                annotation.remove()
            return _margin_labels(ax, anchors, fontsize)
    return [annotations[i] for i in range(len(anchors))]


def _margin_labels(ax, anchors, fontsize: float) -> list:
    """Labels in a column right of the panel, ordered by their points' heights, each joined to its point."""
    fig = ax.figure
    line = {"arrowstyle": "-", "color": "0.65", "linewidth": 0.4, "shrinkA": 1, "shrinkB": 2}
    annotations = [
        ax.annotate(
            text,
            (x, y),
            xytext=(1.04, 0.5),
            textcoords="axes fraction",
            fontsize=fontsize,
            va="center",
            ha="left",
            annotation_clip=False,
            arrowprops=line,
        )
        for x, y, text in anchors
    ]
    for _ in range(2):  # lay out with the column, then place again in the panel's new height
        renderer = _renderer(fig)
        step = 1.2 * max(Text.get_window_extent(a, renderer).height for a in annotations) / ax.bbox.height
        if step * len(annotations) > 1.0 and fontsize > 4:
            smaller = max(4.0, fontsize / (step * len(annotations)))
            step, fontsize = step * smaller / fontsize, smaller
            for annotation in annotations:
                annotation.set_fontsize(fontsize)
        _stack(
            annotations, [ax.transAxes.inverted().transform(ax.transData.transform(a.xy))[1] for a in annotations], step
        )
        fig.tight_layout()
    return annotations


def _stack(annotations: list, targets: list, step: float) -> None:
    """Set each annotation's y (axes fraction) as near its target as a gap of ``step`` between neighbours allows;
    a column taller than the panel runs over it evenly at both ends."""
    order = sorted(range(len(targets)), key=lambda i: targets[i])
    spread = (len(targets) - 1) * step / 2
    low, high = min(step / 2, 0.5 - spread), max(1.0 - step / 2, 0.5 + spread)
    ys = []
    for i in order:
        y = min(max(targets[i], low), high)
        ys.append(max(y, ys[-1] + step) if ys else y)
    for k in range(len(ys) - 1, -1, -1):  # push down from the top where the column ran over it
        ys[k] = min(ys[k], high if k == len(ys) - 1 else ys[k + 1] - step)
    for i, y in zip(order, ys, strict=True):
        annotations[i].set_position((1.04, y))


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
