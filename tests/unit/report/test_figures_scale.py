"""Every figure stays readable with many labels and groups: 14 findings, 6 age groups, 2 datasets.

The tables come from the real upstream functions on synthetic predictions; each figure is captured as it is saved
(drawn) and checked on its matplotlib objects: every panel keeps a sane share of the figure and is no thin strip, no
legend covers a panel or its labels, and no two pieces of text overlap. A single-label dataset's co-morbidity panels
say that co-morbidity needs more than one finding.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from helpers.predictions import model_predictions
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.legend import Legend
from matplotlib.text import Text

from privfair.data.adapters.nih_cxr14 import FINDINGS
from privfair.data.summary import plot_summary
from privfair.evaluate.aggregate import per_label_table, privacy_utility_table, run_table
from privfair.evaluate.metrics import evaluate_predictions
from privfair.fairness.analysis import run_quantities, summarise, training_counts
from privfair.fairness.metrics import group_metrics, thresholds_from_summary
from privfair.report.fairness_figures import (
    plot_auroc_vs_training_count,
    plot_fairness_metrics,
    plot_gaps,
    plot_roc_curves,
)
from privfair.report.utility_figures import plot_per_label, plot_privacy_utility

# The 14 NIH ChestX-ray14 findings, long names included.
LABELS = FINDINGS
AGE_BINS = [0, 30, 40, 50, 60, 70, 120]  # six age groups
SPEC = {
    "attributes": {"sex": {}, "age": {"bins": AGE_BINS}, "comorbidity": {"bins": [0, 2, 5, math.inf]}},
    "intersections": [],
    "min_group_size": {"positives": 2, "negatives": 2},
    "ece_bins": 10,
}
NOISE = {1.0: 2.0, 10.0: 1.0, math.inf: 0.4}
SEEDS = {"nih": (0, 1), "padchest": (0,)}
PUBLIC = "synth_cxr_public"
N_BOOTSTRAP = 20
N_IMAGES = 400
CSV_READ = {"keep_default_na": False, "na_values": [""]}

# Readability limits, on the drawn figure.
MIN_SHARE_OF_SLOT = 0.45  # of its grid slot's width and height
MIN_PANEL_IN = (1.2, 1.0)  # width, height
MAX_ASPECT = 3.0  # neither height/width nor width/height beyond this: no thin strips
MAX_FIGURE_IN = (16.0, 20.0)


def predictions(dataset: str, noise: float, seed: int, labels=LABELS) -> pd.DataFrame:
    """One model's predictions, with the co-morbidity count the ingest stage adds (positive findings per image)."""
    frame = model_predictions(labels, noise, seed, dataset_seed=len(dataset), n=N_IMAGES)
    return frame.assign(comorbidity=frame[[f"true_{label}" for label in labels]].sum(axis=1))


def manifest_and_split(frame: pd.DataFrame, labels) -> tuple[pd.DataFrame, pd.DataFrame]:
    manifest = frame.drop(columns=["split", *(f"score_{label}" for label in labels)])
    manifest = manifest.rename(columns={f"true_{label}": f"label_{label}" for label in labels})
    return manifest, manifest[["image_id"]].assign(split="train")


def as_manifest(frame: pd.DataFrame, labels) -> pd.DataFrame:
    """The predictions' images as a split manifest: val kept, the other images two parts train to one part test."""
    manifest = frame.drop(columns=[f"score_{label}" for label in labels])
    manifest = manifest.rename(columns={f"true_{label}": f"label_{label}" for label in labels})
    rest = np.where(np.arange(len(frame)) % 3, "train", "test")
    return manifest.assign(split=np.where(frame["split"] == "val", "val", rest))


def through_csv(table: pd.DataFrame, tmp_path, name: str, **read) -> pd.DataFrame:
    path = tmp_path / f"{name}.csv"
    table.to_csv(path, index=False)
    return pd.read_csv(path, **read)


def build_study(tmp_path, labels_of_dataset: dict, seeds: dict, pretrained: tuple = ()) -> dict:
    """The tables of every figure, made by the upstream functions and read back from CSV as the workflow does;
    ``pretrained``: datasets that also have a pretrained init (seed 0, less noisy)."""
    runs, counts = {}, []
    for dataset, seeds_of in seeds.items():
        labels = labels_of_dataset[dataset]
        counts.append(
            training_counts(*manifest_and_split(predictions(dataset, 0.0, 0, labels), labels), SPEC).assign(
                dataset=dataset
            )
        )
        grid = [("scratch", e, noise, s) for (e, noise), s in itertools.product(NOISE.items(), seeds_of)]
        grid += [(PUBLIC, e, noise * 0.7, 0) for e, noise in NOISE.items() if dataset in pretrained]
        for init, epsilon, noise, seed in grid:
            frame = predictions(dataset, noise, seed, labels)
            evaluation, bootstrap = evaluate_predictions(frame, n_bootstrap=N_BOOTSTRAP, seed=3)
            thresholds = thresholds_from_summary(evaluation)
            metrics = group_metrics(frame, thresholds, SPEC, n_bootstrap=N_BOOTSTRAP, seed=3)
            runs[(dataset, init, epsilon, seed)] = (evaluation, bootstrap, run_quantities(metrics), frame, thresholds)
    records = [{"dataset": d, "init": i, "epsilon": e, "seed": s} for d, i, e, s in runs]
    table = run_table([run[0] for run in runs.values()], records)
    bootstraps = {key: run[1] for key, run in runs.items()}
    first = next(iter(seeds))
    return {
        "utility": through_csv(privacy_utility_table(table, bootstraps), tmp_path, "utility"),
        "per_label": through_csv(per_label_table(table, bootstraps), tmp_path, "per_label"),
        "summary": through_csv(
            summarise({key: run[2] for key, run in runs.items()}, ci=0.9, correction="holm", alpha=0.05),
            tmp_path,
            "summary",
            **CSV_READ,
        ),
        "counts": through_csv(pd.concat(counts), tmp_path, "counts", **CSV_READ),
        "models": {(i, e): (run[3], run[4]) for (d, i, e, s), run in runs.items() if d == first and s == 0},
        "manifest": as_manifest(predictions(first, 0.0, 0, labels_of_dataset[first]), labels_of_dataset[first]),
    }


FIGURES = {
    "privacy_utility": lambda s, png, pdf: plot_privacy_utility(s["utility"], png, pdf),
    "per_label": lambda s, png, pdf: plot_per_label(s["per_label"], png, pdf),
    "gaps_sex": lambda s, png, pdf: plot_gaps(s["summary"], "sex", png, pdf),
    "gaps_age": lambda s, png, pdf: plot_gaps(s["summary"], "age", png, pdf),
    "gaps_comorbidity": lambda s, png, pdf: plot_gaps(s["summary"], "comorbidity", png, pdf),
    "fairness_metrics": lambda s, png, pdf: plot_fairness_metrics(s["summary"], png, pdf),
    "auroc_vs_training_count": lambda s, png, pdf: plot_auroc_vs_training_count(s["summary"], s["counts"], png, pdf),
    "roc_curves": lambda s, png, pdf: plot_roc_curves(s["models"], "nih", png, pdf),
    "dataset_summary": lambda s, png, pdf: plot_summary(s["manifest"], "nih", png, pdf),
}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return build_study(tmp_path_factory.mktemp("tables14"), dict.fromkeys(SEEDS, LABELS), SEEDS)


@pytest.fixture(scope="module")
def pretrained_study(tmp_path_factory):
    """14 labels, one seed from scratch and one pretrained init: every init adds lines, panels or styles."""
    return build_study(tmp_path_factory.mktemp("tables14p"), {"nih": LABELS}, {"nih": (0,)}, pretrained=("nih",))


@pytest.fixture(scope="module")
def single_label_study(tmp_path_factory):
    """A 3-label dataset beside a single-label one, both with co-morbidity configured."""
    labels = {"chest": LABELS[:3], "mono": LABELS[4:5]}
    return build_study(tmp_path_factory.mktemp("tables1"), labels, {"chest": (0,), "mono": (0,)})


# --- what a readable figure is -------------------------------------------------------------------------------------


def visible_axes(figure) -> list:
    return [ax for ax in figure.axes if ax.get_visible()]


def shown(text: Text) -> bool:
    return text.get_visible() and bool(text.get_text().strip())


def text_box(text: Text, renderer):
    """The text's own extent (an annotation's connecting line left out), a pixel in from each side."""
    return Text.get_window_extent(text, renderer).padded(-1.0)


def all_texts(figure) -> list[Text]:
    """Every visible piece of text: titles, axis and tick labels, annotations, figure and legend text."""
    texts = [*figure.texts, figure._suptitle]
    for ax in visible_axes(figure):
        texts += [ax.title, ax._left_title, ax._right_title, *ax.texts]
        if ax.axison:
            texts += [ax.xaxis.label, ax.yaxis.label, *tick_labels(ax)]
    for legend in legends(figure):
        texts += [*legend.get_texts(), legend.get_title()]
    return list({id(text): text for text in texts if text is not None and shown(text)}.values())


def tick_labels(ax) -> list[Text]:
    """The tick labels drawn (ticks outside the view keep stale positions and are not drawn)."""
    return [tick.label1 for axis in (ax.xaxis, ax.yaxis) for tick in axis._update_ticks() if shown(tick.label1)]


def legends(figure) -> list[Legend]:
    return list(figure.legends) + [ax.get_legend() for ax in visible_axes(figure) if ax.get_legend()]


def assert_panels_keep_a_sane_share(figure) -> None:
    width_in, height_in = figure.get_size_inches()
    assert width_in <= MAX_FIGURE_IN[0] and height_in <= MAX_FIGURE_IN[1], (width_in, height_in)
    for ax in visible_axes(figure):
        nrows, ncols = ax.get_subplotspec().get_gridspec().get_geometry()
        box = ax.get_position()  # after drawing: the active position (a fixed aspect applied)
        name = ax.get_title()
        assert box.width >= MIN_SHARE_OF_SLOT / ncols and box.height >= MIN_SHARE_OF_SLOT / nrows, (name, box)
        w, h = box.width * width_in, box.height * height_in
        assert w >= MIN_PANEL_IN[0] and h >= MIN_PANEL_IN[1], (name, w, h)
        assert 1 / MAX_ASPECT <= h / w <= MAX_ASPECT, (name, w, h)


def assert_legends_cover_no_panel(figure, renderer) -> None:
    for legend in legends(figure):
        box = legend.get_window_extent(renderer)
        owner = legend.axes if legend in [ax.get_legend() for ax in figure.axes] else None
        for ax in visible_axes(figure):
            inside_own_panel = ax is owner and ax.bbox.contains(*box.p0) and ax.bbox.contains(*box.p1)
            furniture = [] if inside_own_panel or not ax.axison else [("panel", ax.bbox)]
            texts = [ax.title, *ax.texts] + ([ax.xaxis.label, ax.yaxis.label, *tick_labels(ax)] if ax.axison else [])
            furniture += [(t.get_text(), text_box(t, renderer)) for t in texts if shown(t)]
            clashes = [name for name, other in furniture if box.overlaps(other)]
            assert not clashes, (ax.get_title(), clashes)


def assert_no_text_overlaps(figure, renderer) -> None:
    boxes = [(text.get_text(), text_box(text, renderer)) for text in all_texts(figure)]
    clashes = [(a, b) for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2) if box_a.overlaps(box_b)]
    assert not clashes, clashes[:5]


def check_readable(figure) -> None:
    if not isinstance(figure.canvas, FigureCanvasAgg):
        FigureCanvasAgg(figure)
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    assert_panels_keep_a_sane_share(figure)
    assert_legends_cover_no_panel(figure, renderer)
    assert_no_text_overlaps(figure, renderer)


# --- the tests -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(FIGURES))
def test_every_figure_stays_readable_with_14_labels(study, tmp_path, saved, name):
    FIGURES[name](study, tmp_path / f"{name}.png", tmp_path / f"{name}.pdf")
    (figure,) = saved
    check_readable(figure)


@pytest.mark.parametrize(
    "name", ["privacy_utility", "per_label", "gaps_age", "fairness_metrics", "auroc_vs_training_count", "roc_curves"]
)
def test_figures_with_a_pretrained_init_stay_readable_with_14_labels(pretrained_study, tmp_path, saved, name):
    FIGURES[name](pretrained_study, tmp_path / f"{name}.png", tmp_path / f"{name}.pdf")
    (figure,) = saved
    check_readable(figure)
    if name == "per_label":  # small multiples, one line per init in each
        for ax in visible_axes(figure):
            assert {c.get_label() for c in ax.containers if c.get_label()[:1] != "_"} == {"scratch", PUBLIC}


def test_per_label_figure_is_small_multiples_with_a_shared_y_and_a_reference_each(study, tmp_path, saved):
    plot_per_label(study["per_label"], tmp_path / "l.png", tmp_path / "l.pdf")
    (figure,) = saved
    axes = visible_axes(figure)
    assert len(axes) == len(LABELS) * len(SEEDS)
    assert {ax.get_title() for ax in axes} == {f"{d} · {label}" for d in SEEDS for label in LABELS}
    assert len({ax.get_ylim() for ax in axes}) == 1  # shared y
    for ax in axes:
        assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "10", "∞"]
        assert any(line.get_linestyle() == "--" for line in ax.lines)  # the non-private reference
    # Each dataset starts a new row.
    first = {d: min(ax.get_subplotspec().rowspan.start for ax in axes if ax.get_title().startswith(d)) for d in SEEDS}
    last_nih = max(ax.get_subplotspec().rowspan.start for ax in axes if ax.get_title().startswith("nih"))
    assert first["padchest"] > last_nih
    assert figure.legends and not any(ax.get_legend() for ax in axes)


def test_roc_grid_wraps_into_balanced_rows(study, tmp_path, saved):
    plot_roc_curves(study["models"], "nih", tmp_path / "r.png", tmp_path / "r.pdf")
    (figure,) = saved
    axes = visible_axes(figure)
    assert len(axes) == len(LABELS)
    assert axes[0].get_subplotspec().get_gridspec().get_geometry() == (3, 5)


def test_gap_lines_of_six_age_groups_are_told_apart(study, tmp_path, saved):
    plot_gaps(study["summary"], "age", tmp_path / "g.png", tmp_path / "g.pdf")
    (figure,) = saved
    ax = visible_axes(figure)[0]
    styles = [
        (line.get_color(), line.get_marker(), line.get_linestyle()) for line in ax.lines if line.get_label()[0] != "_"
    ]
    assert len(styles) == len(AGE_BINS) - 1 == len(set(styles))


def test_training_count_labels_each_annotated_once(study, tmp_path, saved):
    plot_auroc_vs_training_count(study["summary"], study["counts"], tmp_path / "c.png", tmp_path / "c.pdf")
    (figure,) = saved
    for ax in visible_axes(figure):
        assert sorted(t.get_text() for t in ax.texts) == sorted(LABELS)


def test_co_morbidity_of_a_single_label_dataset_says_it_needs_more_than_one_finding(
    single_label_study, tmp_path, saved
):
    summary = single_label_study["summary"]
    plot_gaps(summary, "comorbidity", tmp_path / "g.png", tmp_path / "g.pdf")
    plot_fairness_metrics(summary, tmp_path / "f.png", tmp_path / "f.pdf")
    gaps, metrics = saved

    def text_of(figure, title):
        (ax,) = [ax for ax in figure.axes if ax.get_title() == title]
        return " ".join(t.get_text().replace("\n", " ") for t in ax.texts)

    assert "needs more than one finding" in text_of(gaps, "mono")
    assert "fewer than two recorded groups" not in text_of(gaps, "mono")
    assert "needs more than one finding" in text_of(metrics, "mono · comorbidity")
    assert text_of(gaps, "chest") == ""  # the multi-label dataset has its co-morbidity gaps
    for figure in saved:
        check_readable(figure)


def test_the_dataset_summary_of_a_single_label_task_says_why_it_has_no_co_morbidity(tmp_path, saved):
    frame = as_manifest(predictions("mono", 0.0, 0, LABELS[:1]), LABELS[:1])
    plot_summary(frame, "mono", tmp_path / "s.png", tmp_path / "s.pdf")
    (figure,) = saved
    (ax,) = [ax for ax in figure.axes if ax.get_title() == "Co-morbidity"]
    assert "needs more than one finding" in " ".join(t.get_text().replace("\n", " ") for t in ax.texts)
    check_readable(figure)
