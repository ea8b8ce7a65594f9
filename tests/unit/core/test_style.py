"""The figure style: where ε = ∞ sits, the ε axis's ticks, panels written as PNG and PDF, legends and colours."""

from __future__ import annotations

import itertools
import math

import matplotlib
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.text import Text

from privfair.core.style import (
    EPSILON_SHORT_LABEL,
    INFINITY_FACTOR,
    MAX_COLOURS,
    epsilon_axis,
    epsilon_positions,
    figure_legend,
    grid_columns,
    line_styles,
    no_data,
    palette,
    panel_figure,
    panel_legend,
    place_labels,
)

PNG_MAGIC, PDF_MAGIC = b"\x89PNG\r\n\x1a\n", b"%PDF-"


def drawn_axes(n: int = 1):
    """``n`` axes of a figure with a canvas, so that tick labels and legends can be read after drawing."""
    figure = Figure()
    FigureCanvasAgg(figure)
    return figure, list(figure.subplots(1, n, squeeze=False).ravel())


def tick_labels(ax) -> list[str]:
    ax.figure.canvas.draw()
    return [label.get_text() for label in ax.get_xticklabels()]


def legend_texts(legend) -> list[str]:
    return [text.get_text() for text in legend.get_texts()]


# --- the ε axis ----------------------------------------------------------------------------------------------------


def test_infinity_sits_a_factor_beyond_the_largest_finite_budget():
    positions = epsilon_positions([8.0, 1.0, math.inf, 1.0, 4.0])
    assert positions == {1.0: 1.0, 4.0: 4.0, 8.0: 8.0, math.inf: 8.0 * INFINITY_FACTOR}
    assert positions[math.inf] > max(e for e in positions if math.isfinite(e))


def test_infinity_alone_sits_at_one():
    assert epsilon_positions([math.inf, math.inf]) == {math.inf: 1.0}


def test_finite_budgets_alone_keep_their_values():
    assert epsilon_positions([0.5, 2.0]) == {0.5: 0.5, 2.0: 2.0}


def test_epsilon_axis_has_one_tick_per_budget_labelled_with_the_budget_and_infinity():
    _, (ax,) = drawn_axes()
    positions = epsilon_positions([1.0, 10.0, 0.5, math.inf])
    epsilon_axis(ax, positions, "AUROC")
    assert ax.get_xscale() == "log"
    assert list(ax.get_xticks()) == sorted(positions.values())
    assert tick_labels(ax) == ["0.5", "1", "10", "∞"]
    low, high = ax.get_xlim()
    assert low < 0.5 and high > 10.0 * INFINITY_FACTOR  # every tick, ∞ included, is inside the axis
    assert "ε" in ax.get_xlabel() and ax.get_ylabel() == "AUROC"
    assert not ax.xaxis.get_minor_locator()()  # no unlabelled log minor ticks


def test_epsilon_axis_of_the_non_private_model_alone_reads_infinity():
    _, (ax,) = drawn_axes()
    epsilon_axis(ax, epsilon_positions([math.inf]), "AUROC")
    assert tick_labels(ax) == ["∞"]


# --- panels and files ----------------------------------------------------------------------------------------------


def test_panel_figure_writes_a_png_and_a_pdf_with_titled_panels(tmp_path):
    png, pdf = tmp_path / "deep" / "figure.png", tmp_path / "deep" / "figure.pdf"
    with panel_figure(["chest", ("knee", "lesion"), "ct"], png, pdf, ncols=2) as panels:
        for ax in panels.values():
            ax.plot([1, 2], [0.5, 0.7])
        titles = [ax.get_title() for ax in panels.values()]
        figure = next(iter(panels.values())).figure
    assert titles == ["chest", "knee · lesion", "ct"]
    # Three panels in two columns: the fourth slot is hidden.
    assert [ax.get_visible() for ax in figure.axes] == [True, True, True, False]
    assert png.stat().st_size > 0 and png.read_bytes()[:8] == PNG_MAGIC
    assert pdf.stat().st_size > 0 and pdf.read_bytes()[:5] == PDF_MAGIC
    assert sorted(p.name for p in png.parent.iterdir()) == ["figure.pdf", "figure.png"]  # no partial files left


def test_panel_figure_refuses_no_panels(tmp_path):
    with pytest.raises(ValueError, match="nothing to plot"), panel_figure([], tmp_path / "a.png", tmp_path / "a.pdf"):
        pass
    assert not list(tmp_path.iterdir())


def test_a_figure_that_fails_while_drawn_writes_nothing(tmp_path):
    with pytest.raises(RuntimeError, match="broken"), panel_figure(["a"], tmp_path / "a.png", tmp_path / "a.pdf"):
        raise RuntimeError("broken")
    assert not list(tmp_path.iterdir())


def test_no_data_says_why_and_hides_the_axes():
    _, (ax,) = drawn_axes()
    no_data(ax, "No sex gap: fewer than two recorded groups")
    assert [t.get_text().replace("\n", " ") for t in ax.texts] == ["No sex gap: fewer than two recorded groups"]
    assert not ax.axison


# --- legends and colours -------------------------------------------------------------------------------------------


def test_figure_legend_shows_each_label_once_in_the_given_order():
    figure, (left, right) = drawn_axes(2)
    left.plot([1], [1], label="a")
    left.plot([1], [2], label="b")
    right.plot([1], [1], label="b")
    right.plot([1], [3], label="c")
    figure_legend({"left": left, "right": right}, order=("c", "absent", "a"))
    (legend,) = figure.legends
    assert legend_texts(legend) == ["c", "a", "b"]


def test_figure_legend_without_order_follows_first_appearance():
    figure, (left, right) = drawn_axes(2)
    right.plot([1], [1], label="z")
    left.plot([1], [1], label="y")
    right.plot([1], [1], label="y")
    figure_legend({"left": left, "right": right})
    assert legend_texts(figure.legends[0]) == ["y", "z"]


def test_figure_legend_is_left_out_when_nothing_is_labelled():
    figure, (ax,) = drawn_axes()
    ax.plot([1], [1])
    figure_legend({"only": ax})
    assert figure.legends == []


def test_panel_legend_shows_each_label_once():
    _, (ax,) = drawn_axes()
    for y in range(3):
        ax.plot([1], [y], label="same")
    ax.plot([1], [5], label="other")
    panel_legend(ax)
    assert legend_texts(ax.get_legend()) == ["same", "other"]


@pytest.mark.parametrize("n", [1, 3, 10, 13, 20, 25])
def test_palette_gives_distinct_colours(n):
    colours = palette(n)
    assert len(colours) >= n
    assert len({to_rgba(c) for c in colours[:n]}) == n


@pytest.mark.parametrize("n", [1, 8, 9, 14, 40, 70])
def test_line_styles_tell_every_line_apart_with_at_most_eight_colours(n):
    styles = line_styles(n)
    assert len(styles) == n
    assert len({(to_rgba(s["color"]), s["marker"], s["linestyle"]) for s in styles}) == n
    assert len({to_rgba(s["color"]) for s in styles}) == min(n, MAX_COLOURS)
    if n <= MAX_COLOURS:  # few lines: a colour each, plain solid lines with round markers
        assert {(s["marker"], s["linestyle"]) for s in styles} == {("o", "-")}


def test_palette_beyond_ten_avoids_tab20s_paired_shades():
    assert palette(10) == palette(3)
    assert len(palette(14)) == 14 and palette(14)[:2] != matplotlib.colormaps["tab20"].colors[:2]


@pytest.mark.parametrize(
    ("n", "most", "columns"), [(1, 4, 1), (4, 4, 4), (5, 4, 3), (7, 5, 4), (13, 4, 4), (14, 5, 5), (28, 5, 5)]
)
def test_grid_columns_balances_rows(n, most, columns):
    assert grid_columns(n, most) == columns
    rows = math.ceil(n / columns)
    assert columns <= most and rows == math.ceil(n / most)


def test_panel_figure_leaves_none_slots_empty_and_can_share_y(tmp_path):
    with panel_figure(["a", None, "b", "c"], tmp_path / "f.png", tmp_path / "f.pdf", ncols=2, sharey=True) as panels:
        panels["a"].plot([1, 2], [0.0, 1.0])
        panels["c"].plot([1, 2], [5.0, 6.0])
        figure = panels["a"].figure
    assert list(panels) == ["a", "b", "c"]
    assert [ax.get_visible() for ax in figure.axes] == [True, False, True, True]
    assert panels["a"].get_ylim() == panels["c"].get_ylim()


def test_epsilon_axis_takes_a_shorter_label_for_small_panels():
    _, (ax,) = drawn_axes()
    epsilon_axis(ax, epsilon_positions([1.0, math.inf]), "AUROC", xlabel=EPSILON_SHORT_LABEL)
    assert ax.get_xlabel() == EPSILON_SHORT_LABEL and tick_labels(ax) == ["1", "∞"]


def text_boxes(annotations) -> list:
    renderer = annotations[0].figure.canvas.get_renderer()
    return [Text.get_window_extent(a, renderer) for a in annotations]


def overlapping(boxes) -> list:
    return [(i, j) for i, j in itertools.combinations(range(len(boxes)), 2) if boxes[i].overlaps(boxes[j])]


def test_place_labels_keeps_sparse_labels_beside_their_points():
    _, (ax,) = drawn_axes()
    ax.set(xlim=(0, 10), ylim=(0, 10))
    anchors = [(2.0, 2.0, "low"), (8.0, 8.0, "high")]
    annotations = place_labels(ax, anchors)
    assert [a.get_text() for a in annotations] == ["low", "high"]
    assert all(a.arrow_patch is None for a in annotations)  # near their points: no connecting line
    assert not overlapping(text_boxes(annotations))


def test_place_labels_never_overlaps_crowded_labels():
    figure, (ax,) = drawn_axes()
    ax.set(xlim=(0, 10), ylim=(0, 1))
    anchors = [(5.0 + 0.01 * i, 0.5 + 0.001 * i, f"finding number {i}") for i in range(14)]
    annotations = place_labels(ax, anchors, avoid=[(x, y) for x, y, _ in anchors])
    figure.canvas.draw()
    assert sorted(a.get_text() for a in annotations) == sorted(text for *_, text in anchors)
    assert not overlapping(text_boxes(annotations))
    # Too crowded to sit beside their points: a column right of the panel, each joined to its point.
    assert all(a.arrow_patch is not None for a in annotations)
    assert all(box.x0 > ax.bbox.x1 for box in text_boxes(annotations))
