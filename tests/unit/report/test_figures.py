"""The report's figures, drawn from tables made by the real upstream functions on tiny synthetic runs.

The tables go through CSV and back as the workflow's plotting scripts read them. Every ``plot_*`` function must write
a PNG and a PDF for a full grid, for a dataset with only the non-private model, for one with only DP models and for a
grid with a pretrained init beside scratch; the drawn figures (captured as they are saved) are inspected for the ε
axis's "∞" tick, for empty panels that say why, and for a line, style or panel per init.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass

import pandas as pd
import pytest
from helpers.predictions import model_predictions

from privfair.core import style
from privfair.evaluate.aggregate import per_label_table, privacy_utility_table, run_table
from privfair.evaluate.metrics import evaluate_predictions
from privfair.fairness.analysis import run_quantities, summarise, training_counts
from privfair.fairness.metrics import group_metrics, thresholds_from_summary
from privfair.report import fairness_figures, utility_figures
from privfair.report.fairness_figures import (
    plot_auroc_vs_training_count,
    plot_fairness_metrics,
    plot_gaps,
    plot_roc_curves,
)
from privfair.report.utility_figures import DP_MEAN, NP_MEAN, plot_per_label, plot_privacy_utility

SPEC = {
    "attributes": {"sex": {}, "age": {"bins": [0, 50, 100]}},
    "intersections": [],
    "min_group_size": {"positives": 2, "negatives": 2},
    "ece_bins": 10,
}
LABELS = ("effusion", "nodule")
NOISE = {1.0: 2.0, 10.0: 1.0, math.inf: 0.4}  # score noise per budget
# chest records sex and age; knee records age only (no sex gap can be formed), and was trained with one seed.
SEEDS = {"chest": (0, 1), "knee": (0,)}
# A pretrained init of chest, one seed, less noisy than scratch at every budget (only in the "pretrained" grid).
PUBLIC = "synth_cxr_public"
PRETRAINED_NOISE = 0.7
N_BOOTSTRAP = 50
PNG_MAGIC, PDF_MAGIC = b"\x89PNG\r\n\x1a\n", b"%PDF-"
CSV_READ = {"keep_default_na": False, "na_values": [""]}  # as the fairness plotting scripts read their tables


def predictions(dataset: str, noise: float, seed: int) -> pd.DataFrame:
    """One model's predictions on ``dataset``; the knee dataset records no sex."""
    columns = ("age",) if dataset == "knee" else ("age", "sex")
    return model_predictions(LABELS, noise, seed, dataset_seed=len(dataset), columns=columns)


def manifest_and_split(dataset: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The dataset's images as a manifest, every one in the training split (enough to count training images)."""
    frame = predictions(dataset, 0.0, 0)
    manifest = frame.drop(columns=["split", *(f"score_{label}" for label in LABELS)])
    manifest = manifest.rename(columns={f"true_{label}": f"label_{label}" for label in LABELS})
    return manifest, manifest[["image_id"]].assign(split="train")


def through_csv(table: pd.DataFrame, tmp_path, name: str, **read) -> pd.DataFrame:
    path = tmp_path / f"{name}.csv"
    table.to_csv(path, index=False)
    return pd.read_csv(path, **read)


@dataclass
class Study:
    """The tables every figure is drawn from, as the workflow has them on disk."""

    utility: pd.DataFrame
    per_label: pd.DataFrame
    summary: pd.DataFrame
    counts: pd.DataFrame
    models: dict  # (init, ε) -> (predictions, thresholds) of chest, seed 0


@pytest.fixture(scope="module")
def runs():
    """Every run of the grid: (dataset, init, ε, seed) -> (evaluation summary, bootstrap, run quantities,
    predictions)."""
    grid = [(d, "scratch", e, s, noise) for d, seeds in SEEDS.items() for e, noise in NOISE.items() for s in seeds]
    grid += [("chest", PUBLIC, e, 0, noise * PRETRAINED_NOISE) for e, noise in NOISE.items()]
    result = {}
    for dataset, init, epsilon, seed, noise in grid:
        frame = predictions(dataset, noise, seed)
        summary, bootstrap = evaluate_predictions(frame, n_bootstrap=N_BOOTSTRAP, seed=3)
        thresholds = thresholds_from_summary(summary)
        metrics = group_metrics(frame, thresholds, SPEC, n_bootstrap=N_BOOTSTRAP, seed=3)
        result[(dataset, init, epsilon, seed)] = (summary, bootstrap, run_quantities(metrics), frame)
    return result


@pytest.fixture(scope="module")
def studies(runs, tmp_path_factory):
    """The tables of the full grid (scratch), of its non-private models only, of its DP models only, and of the full
    grid with the pretrained init."""
    tmp_path = tmp_path_factory.mktemp("tables")
    counts = pd.concat([training_counts(*manifest_and_split(d), SPEC).assign(dataset=d) for d in SEEDS])

    def study(name: str, keep) -> Study:
        chosen = {key: run for key, run in runs.items() if keep(key)}
        table = run_table(
            [summary for summary, *_ in chosen.values()],
            # Records of scratch runs without an init, as written before there were inits: read as scratch.
            [
                {"dataset": d, "epsilon": e, "seed": s, **({} if i == "scratch" else {"init": i})}
                for d, i, e, s in chosen
            ],
        )
        bootstraps = {key: bootstrap for key, (_, bootstrap, *_) in chosen.items()}
        quantities = {key: quantities for key, (_, _, quantities, _) in chosen.items()}
        return Study(
            utility=through_csv(privacy_utility_table(table, bootstraps), tmp_path, f"{name}_utility"),
            per_label=through_csv(per_label_table(table, bootstraps), tmp_path, f"{name}_per_label"),
            summary=through_csv(
                summarise(quantities, ci=0.9, correction="holm", alpha=0.05), tmp_path, f"{name}_summary", **CSV_READ
            ),
            counts=through_csv(counts, tmp_path, f"{name}_counts", **CSV_READ),
            models={
                (i, e): (frame, thresholds_from_summary(summary))
                for (d, i, e, s), (summary, _, _, frame) in chosen.items()
                if d == "chest" and s == 0
            },
        )

    def scratch(key):
        return key[1] == "scratch"

    return {
        "full": study("full", scratch),
        "non-private only": study("np", lambda key: scratch(key) and math.isinf(key[2])),
        "DP only": study("dp", lambda key: scratch(key) and math.isfinite(key[2])),
        "pretrained": study("pretrained", lambda key: True),
    }


PLOTS = {
    "plot_privacy_utility": lambda study, png, pdf: plot_privacy_utility(study.utility, png, pdf),
    "plot_per_label": lambda study, png, pdf: plot_per_label(study.per_label, png, pdf),
    "plot_gaps": lambda study, png, pdf: plot_gaps(study.summary, "sex", png, pdf),
    "plot_fairness_metrics": lambda study, png, pdf: plot_fairness_metrics(study.summary, png, pdf),
    "plot_auroc_vs_training_count": lambda study, png, pdf: plot_auroc_vs_training_count(
        study.summary, study.counts, png, pdf
    ),
    "plot_roc_curves": lambda study, png, pdf: plot_roc_curves(study.models, "chest", png, pdf),
}


def panel(figure, title: str):
    (ax,) = [ax for ax in figure.axes if ax.get_title() == title]
    return ax


def tick_labels(ax) -> list[str]:
    return [label.get_text() for label in ax.get_xticklabels()]


def texts(ax) -> str:
    return " ".join(text.get_text().replace("\n", " ") for text in ax.texts)


# --- every figure, every kind of grid ------------------------------------------------------------------------------


def test_every_plot_function_is_covered():
    modules = (utility_figures, fairness_figures)
    defined = {name for module in modules for name, _ in inspect.getmembers(module, inspect.isfunction)}
    assert {name for name in defined if name.startswith("plot_")} == set(PLOTS)


@pytest.mark.parametrize("grid", ["full", "non-private only", "DP only", "pretrained"])
@pytest.mark.parametrize("name", list(PLOTS))
def test_each_figure_is_written_as_png_and_pdf(studies, tmp_path, name, grid):
    png, pdf = tmp_path / f"{name}.png", tmp_path / f"{name}.pdf"
    PLOTS[name](studies[grid], png, pdf)
    assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 1000
    assert pdf.read_bytes()[:5] == PDF_MAGIC and pdf.stat().st_size > 1000


# --- the privacy-utility panel's ε axis ----------------------------------------------------------------------------


def errorbar_x(ax, label: str) -> list[float]:
    """The x of the points drawn under ``label`` ([] when nothing is drawn under it)."""
    return [x for c in ax.containers if c.get_label() == label for x in c.lines[0].get_xdata()]


def test_the_non_private_model_sits_at_the_infinity_tick(studies, tmp_path, saved):
    plot_privacy_utility(studies["full"].utility, tmp_path / "pu.png", tmp_path / "pu.pdf")
    (figure,) = saved
    ax = panel(figure, "chest")
    assert tick_labels(ax) == ["1", "10", "∞"]
    infinity = ax.get_xticks()[-1]
    assert infinity == pytest.approx(10.0 * style.INFINITY_FACTOR)
    assert errorbar_x(ax, NP_MEAN) == [infinity]
    assert errorbar_x(ax, DP_MEAN) == [1.0, 10.0]
    # One legend for the figure, each entry once, DP entries first.
    (legend,) = figure.legends
    entries = [text.get_text() for text in legend.get_texts()]
    assert entries[0] == DP_MEAN and NP_MEAN in entries and len(entries) == len(set(entries)) == 4


def test_without_a_non_private_row_there_is_no_infinity_tick(studies, tmp_path, saved):
    plot_privacy_utility(studies["DP only"].utility, tmp_path / "pu.png", tmp_path / "pu.pdf")
    (figure,) = saved
    ax = panel(figure, "chest")
    assert tick_labels(ax) == ["1", "10"]
    assert errorbar_x(ax, NP_MEAN) == []
    assert DP_MEAN in [text.get_text() for text in figure.legends[0].get_texts()]


def test_a_figure_without_a_non_private_model_has_no_legend_entry_for_it(studies, tmp_path, saved):
    plot_privacy_utility(studies["DP only"].utility, tmp_path / "pu.png", tmp_path / "pu.pdf")
    (figure,) = saved
    assert NP_MEAN not in [text.get_text() for text in figure.legends[0].get_texts()]


def test_a_per_label_figure_without_a_non_private_model_has_no_legend_entry_for_it(studies, tmp_path, saved):
    plot_per_label(studies["DP only"].per_label, tmp_path / "l.png", tmp_path / "l.pdf")
    (figure,) = saved
    assert "Non-private (dashed)" not in [text.get_text() for text in panel(figure, "chest").get_legend().get_texts()]


def test_the_non_private_model_alone_is_at_an_infinity_tick(studies, tmp_path, saved):
    plot_privacy_utility(studies["non-private only"].utility, tmp_path / "pu.png", tmp_path / "pu.pdf")
    (figure,) = saved
    assert [tick_labels(panel(figure, d)) for d in SEEDS] == [["∞"], ["∞"]]


def test_per_label_panels_share_the_epsilon_axis(studies, tmp_path, saved):
    plot_per_label(studies["full"].per_label, tmp_path / "l.png", tmp_path / "l.pdf")
    (figure,) = saved
    for dataset in SEEDS:
        ax = panel(figure, dataset)
        assert tick_labels(ax) == ["1", "10", "∞"]
        entries = [text.get_text() for text in ax.get_legend().get_texts()]
        assert set(LABELS) <= set(entries) and len(entries) == len(set(entries))


# --- empty panels say why ------------------------------------------------------------------------------------------


def test_a_dataset_without_a_sex_gap_gets_a_panel_that_says_why(studies, tmp_path, saved):
    plot_gaps(studies["full"].summary, "sex", tmp_path / "g.png", tmp_path / "g.pdf")
    (figure,) = saved
    chest, knee = panel(figure, "chest"), panel(figure, "knee")
    assert "No sex gap" in texts(knee) and "fewer than two recorded groups" in texts(knee)
    assert not knee.lines and not knee.axison
    assert texts(chest) == "" and chest.lines and tick_labels(chest) == ["1", "10", "∞"]


def test_an_attribute_with_no_gaps_anywhere_still_plots(studies, tmp_path, saved):
    plot_gaps(studies["full"].summary, "comorbidity", tmp_path / "g.png", tmp_path / "g.pdf")
    (figure,) = saved
    assert all("No comorbidity gap" in texts(panel(figure, d)) for d in SEEDS)
    assert (tmp_path / "g.png").read_bytes()[:8] == PNG_MAGIC


def test_fairness_differences_without_groups_say_not_available(studies, tmp_path, saved):
    plot_fairness_metrics(studies["full"].summary, tmp_path / "f.png", tmp_path / "f.pdf")
    (figure,) = saved
    assert "Not available" in texts(panel(figure, "knee · sex"))
    assert panel(figure, "chest · sex").lines and texts(panel(figure, "chest · sex")) == ""


# --- AUROC against training counts ---------------------------------------------------------------------------------


def test_each_label_sits_at_its_training_positives(studies, tmp_path, saved):
    study = studies["full"]
    plot_auroc_vs_training_count(study.summary, study.counts, tmp_path / "c.png", tmp_path / "c.pdf")
    (figure,) = saved
    counts = study.counts[(study.counts["dataset"] == "chest") & (study.counts["counted"] == "label")]
    x = {float(offset[0]) for collection in panel(figure, "chest").collections for offset in collection.get_offsets()}
    assert x == set(counts["n_train"].astype(float))


def test_a_dataset_that_records_no_sex_says_so_in_its_placeholder(studies, tmp_path, saved):
    plot_gaps(studies["full"].summary, "sex", tmp_path / "g.png", tmp_path / "g.pdf")
    plot_fairness_metrics(studies["full"].summary, tmp_path / "f.png", tmp_path / "f.pdf")
    gaps, metrics = saved
    assert "sex not recorded" in texts(panel(gaps, "knee"))
    assert "sex not recorded" in texts(panel(metrics, "knee · sex"))


def test_few_labels_keep_one_panel_per_dataset_with_a_style_per_label(studies, tmp_path, saved):
    plot_per_label(studies["full"].per_label, tmp_path / "l.png", tmp_path / "l.pdf")
    (figure,) = saved
    assert [ax.get_title() for ax in figure.axes] == list(SEEDS)
    ax = panel(figure, "chest")
    styles = {
        c.get_label(): (c.lines[0].get_color(), c.lines[0].get_marker(), c.lines[0].get_linestyle())
        for c in ax.containers
    }
    assert set(styles) == set(LABELS) and len(set(styles.values())) == len(LABELS)


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [(100, 360, [100, 150, 200, 300]), (90, 20000, [100, 300, 1000, 3000, 10000]), (5, 50000, [10, 100, 1000, 10000])],
)
def test_training_count_ticks_are_round_and_few(low, high, expected):
    assert fairness_figures.count_ticks(low, high) == expected


def test_training_count_axis_has_round_ticks(studies, tmp_path, saved):
    study = studies["full"]
    plot_auroc_vs_training_count(study.summary, study.counts, tmp_path / "c.png", tmp_path / "c.pdf")
    (figure,) = saved
    ticks = panel(figure, "chest").get_xticks()
    assert 2 <= len(ticks) <= 5


# --- a pretrained init beside scratch ------------------------------------------------------------------------------


def test_privacy_utility_draws_a_line_per_init_in_its_own_colour(studies, tmp_path, saved):
    plot_privacy_utility(studies["pretrained"].utility, tmp_path / "pu.png", tmp_path / "pu.pdf")
    (figure,) = saved
    ax = panel(figure, "chest")
    colours = {c.get_label(): c.lines[0].get_color() for c in ax.containers if c.get_label() in ("scratch", PUBLIC)}
    assert set(colours) == {"scratch", PUBLIC} and len(set(colours.values())) == 2
    entries = [text.get_text() for text in figure.legends[0].get_texts()]
    assert entries[:2] == ["scratch", PUBLIC] and utility_figures.NP_SQUARE in entries
    assert tick_labels(ax) == ["1", "10", "∞"]
    assert [c.get_label() for c in panel(figure, "knee").containers if c.get_label()[:1] != "_"] == ["scratch"]


def test_per_label_figure_has_a_panel_per_dataset_and_init(studies, tmp_path, saved):
    plot_per_label(studies["pretrained"].per_label, tmp_path / "l.png", tmp_path / "l.pdf")
    (figure,) = saved
    titles = [ax.get_title() for ax in figure.axes if ax.get_visible()]
    assert titles == ["chest · scratch", f"chest · {PUBLIC}", "knee · scratch"]


def test_gap_and_fairness_lines_of_each_init_take_a_line_style_of_their_own(studies, tmp_path, saved):
    summary = studies["pretrained"].summary
    plot_gaps(summary, "sex", tmp_path / "g.png", tmp_path / "g.pdf")
    plot_fairness_metrics(summary, tmp_path / "f.png", tmp_path / "f.pdf")
    gaps, metrics = saved
    for ax in (panel(gaps, "chest"), panel(metrics, "chest · sex")):
        drawn = [line for line in ax.lines if len(line.get_xdata())]
        assert {line.get_linestyle() for line in drawn if line.get_color() != style.NON_PRIVATE_COLOR} >= {"-", "--"}
    entries = [text.get_text() for text in panel(gaps, "chest").get_legend().get_texts()]
    assert "female − male" in entries and "init: scratch" in entries and f"init: {PUBLIC}" in entries


def test_roc_curves_of_every_init_and_budget(studies, tmp_path, saved):
    models = studies["pretrained"].models
    assert len(models) == 2 * len(NOISE)
    plot_roc_curves(models, "chest", tmp_path / "r.png", tmp_path / "r.pdf")
    (figure,) = saved
    ax = panel(figure, "chest · effusion")
    curves = [line for line in ax.lines if len(line.get_xdata()) > 2]  # not the diagonal, points or legend proxies
    assert len(curves) == 2 * len(NOISE)  # one per (init, ε)
    assert {line.get_linestyle() for line in curves} == {"-", "--"}  # scratch solid, the pretrained init dashed
    entries = [text.get_text() for text in figure.legends[0].get_texts()]
    assert {"ε = 1", "ε = 10", "non-private", "init: scratch", f"init: {PUBLIC}"} <= set(entries)


def test_training_count_figure_has_a_panel_per_dataset_and_init(studies, tmp_path, saved):
    study = studies["pretrained"]
    plot_auroc_vs_training_count(study.summary, study.counts, tmp_path / "c.png", tmp_path / "c.pdf")
    (figure,) = saved
    assert [ax.get_title() for ax in figure.axes if ax.get_visible()] == [
        "chest · scratch",
        f"chest · {PUBLIC}",
        "knee · scratch",
    ]
