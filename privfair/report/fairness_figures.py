"""Fairness figures (rules ``plot_fairness_gaps``, ``plot_fairness_metrics``, ``plot_auroc_vs_training_count``,
``plot_roc_curves``): gaps and fairness differences against ε, AUROC against training count, ROC curves.

On the shared ε axis (:mod:`privfair.core.style`) each group's line runs from the strictest budget to ∞. Where the study
has inits other than scratch, colours keep telling groups, metrics or budgets apart and each init takes a line style
of its own (:func:`privfair.report.utility_figures.init_linestyles`, scratch solid), with legend entries for both; the
training-count figure gets a panel per (dataset, init). A study of scratch runs only is drawn as before.
"""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter
from sklearn.metrics import roc_curve

from privfair.core.style import (
    NON_PRIVATE_COLOR,
    SMALL_MULTIPLES_ABOVE,
    epsilon_axis,
    epsilon_positions,
    figure_legend,
    grid_columns,
    line_styles,
    no_data,
    panel_figure,
    panel_legend,
    place_labels,
)
from privfair.core.tables import ci_header
from privfair.evaluate.metrics import MACRO, SCORE_PREFIX, TRUE_PREFIX, labels_of
from privfair.evaluate.runs import SCRATCH, init_order
from privfair.fairness.metrics import ANY_FINDING, OVERALL, SEX_GAP, applicable_spec, nothing_to_group_by
from privfair.fairness.subgroups import INTERSECTION, KEPT_APART
from privfair.report.utility_figures import init_linestyles, scratch_only

METRIC_NAMES = {
    "statistical_parity_difference": "Statistical parity diff.",
    "equal_opportunity_difference": "Equal-opportunity diff.",
    "equalized_odds_difference": "Equalized-odds diff.",
    "auroc_gap": "AUROC gap (max − min)",
}


TOO_FEW_GROUPS = "fewer than two recorded groups with enough test cases"
# ROC panels: at most this many a row, and their size (inches) once there are more than a handful of labels.
MAX_ROC_COLUMNS = 5
SMALL_ROC_PANEL_IN = (2.4, 2.4)


def _line_with_band(ax, rows: pd.DataFrame, positions, style: dict, label, value="mean", alpha=0.15) -> None:
    rows = rows.sort_values("epsilon")
    x = rows["epsilon"].map(positions).to_numpy(dtype=float)
    ax.fill_between(x, rows["ci_low"], rows["ci_high"], color=style["color"], alpha=alpha, linewidth=0)
    ax.plot(x, rows[value], label=label, **style)


def _lines_per_init(ax, rows: pd.DataFrame, positions, style: dict, label, linestyles: dict | None, alpha=0.15) -> None:
    """``rows`` as one line with its band, or, with ``linestyles`` (init -> line style), one line per init in the
    colour and marker of ``style``, and one legend entry for ``label`` (drawn solid)."""
    if linestyles is None:
        _line_with_band(ax, rows, positions, style, label, alpha=alpha)
        return
    for init, linestyle in linestyles.items():
        block = rows[rows["init"] == init]
        if not block.empty:
            _line_with_band(ax, block, positions, {**style, "linestyle": linestyle}, None, alpha=alpha / 2)
    ax.plot([], [], label=label, **{**style, "linestyle": "-"})


def _init_entries(ax, linestyles: dict | None) -> None:
    """Legend entries for the inits' line styles (none for a study of scratch runs only)."""
    for init, linestyle in (linestyles or {}).items():
        ax.plot([], [], color=NON_PRIVATE_COLOR, linestyle=linestyle, label=f"init: {init}")


def _linestyles(summary: pd.DataFrame) -> dict | None:
    """init -> line style, or None when every run is scratch (one line per group, as before inits)."""
    return None if scratch_only(summary) else init_linestyles(summary["init"])


def count_ticks(low: float, high: float, most: int = 5) -> list[float]:
    """Round ticks for a log axis of counts from ``low`` to ``high``: the finest of decades, 1-3, 1-2-5 and finer
    steps that gives at most ``most`` ticks (decades thinned to every other one beyond that).

    Args:
        low: the axis's lower limit (> 0).
        high: its upper limit.
        most: the most ticks to give.

    Returns:
        The ticks, ascending.
    """
    decades = range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
    steps = ((1,), (1, 3), (1, 2, 5), (1, 1.5, 2, 3, 5, 7), (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 7, 8, 9))
    chosen = None
    for mantissas in steps:
        ticks = [m * 10.0**d for d in decades for m in mantissas if low <= m * 10.0**d <= high]
        if len(ticks) > most and chosen is not None:
            break
        chosen = ticks
    while len(chosen) > most:
        chosen = chosen[::2]
    return chosen


def why_no_groups(summary: pd.DataFrame, dataset: str, attribute: str) -> str:
    """Why ``attribute`` has no gaps or fairness differences for ``dataset``, from the summary itself.

    Args:
        summary: a :func:`privfair.fairness.analysis.summarise` table.
        dataset: the dataset.
        attribute: the attribute (or intersection).

    Returns:
        One sentence: co-morbidity of a single-label task (it needs more than one finding), an attribute not
        recorded (every image unknown), or fewer than two recorded groups with enough test cases, with the
        summary's ``reason`` for the groups left out where it gives one.
    """
    rows = summary[summary["dataset"] == dataset]
    labels = sorted(set(rows["label"].dropna()) - {MACRO, ANY_FINDING})
    if "comorbidity" in attribute.split(INTERSECTION):
        notes = applicable_spec({"attributes": {"comorbidity": {}}}, labels)[1]
        if notes:
            return f"co-morbidity needs more than one finding: {notes[0].split(': ', 1)[-1]}"
    groups = rows[(rows["kind"] == "group") & (rows["attribute"] == attribute)]
    if groups.empty:
        return f"{attribute} not analysed for {dataset}"
    recorded = groups[~groups["group"].isin(KEPT_APART)]
    if recorded.empty:
        return f"{TOO_FEW_GROUPS}: {nothing_to_group_by([attribute], dataset)}"
    short = recorded[(recorded["metric"] == "auroc") & (recorded["label"] == MACRO) & recorded["mean"].isna()]
    reasons = [
        f"{group}: {reason}" for group, reason in zip(short["group"], short["reason"]) if isinstance(reason, str)
    ]
    reasons = list(dict.fromkeys(reasons))
    detail = f" ({'; '.join(reasons[:2])}{'; …' if len(reasons) > 2 else ''})" if reasons else ""
    return f"{TOO_FEW_GROUPS}{detail}"


def plot_gaps(summary: pd.DataFrame, attribute: str, path_png, path_pdf) -> None:
    """Macro-AUROC performance gap of each group of ``attribute`` against ε, one panel per dataset.

    Args:
        summary: a :func:`privfair.fairness.analysis.summarise` table (``mean``, ``ci_low``, ``ci_high``,
            ``ci_level``).
        attribute: the attribute (or intersection) whose groups to plot; for sex, the one F − M gap.
        path_png: the PNG to write (300 dpi).
        path_pdf: the PDF to write.

    Each group is a line of seed means over a band of its bootstrap CI, with a line at zero; with inits other than
    scratch, one line per (group, init), the init told by its line style. A dataset with no gap for ``attribute``
    gets a panel that says so.
    """
    rows = summary[
        (summary["kind"] == "gap")
        & (summary["attribute"] == attribute)
        & (summary["label"] == MACRO)
        & (summary["metric"] == "auroc")
    ]
    datasets = list(dict.fromkeys(summary["dataset"]))
    linestyles = _linestyles(summary)
    ylabel = "AUROC gap, female − male" if attribute == "sex" else "AUROC gap vs other groups"
    with panel_figure(datasets, path_png, path_pdf) as panels:
        for dataset, ax in panels.items():
            block = rows[rows["dataset"] == dataset]
            positions = epsilon_positions(summary.loc[summary["dataset"] == dataset, "epsilon"])
            groups = list(dict.fromkeys(block["group"]))
            for style, group in zip(line_styles(len(groups)), groups, strict=True):
                _lines_per_init(
                    ax,
                    block[block["group"] == group],
                    positions,
                    style,
                    "female − male" if group == SEX_GAP else group,
                    linestyles,
                    alpha=0.15 if len(groups) <= 3 else 0.07,  # many overlapping bands: fainter, so lines stay clear
                )
            if not groups:
                no_data(ax, f"No {attribute} gap: {why_no_groups(summary, dataset, attribute)}")
                continue
            _init_entries(ax, linestyles)
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
    parity, equal-opportunity and equalized-odds difference and the AUROC gap (with inits other than scratch, one
    such line per init, told by its line style); one legend under the figure.
    """
    rows = summary[(summary["kind"] == "fairness") & (summary["label"] == MACRO) & summary["metric"].isin(METRIC_NAMES)]
    attributes = [a for a in dict.fromkeys(summary["attribute"]) if a != OVERALL]
    datasets = list(dict.fromkeys(summary["dataset"]))
    panels_keys = [(d, a) for d in datasets for a in attributes]
    linestyles = _linestyles(summary)
    with panel_figure(panels_keys, path_png, path_pdf, ncols=len(attributes)) as panels:
        for (dataset, attribute), ax in panels.items():
            block = rows[(rows["dataset"] == dataset) & (rows["attribute"] == attribute)]
            if block.empty:
                no_data(ax, f"Not available: {why_no_groups(summary, dataset, attribute)}")
                continue
            positions = epsilon_positions(summary.loc[summary["dataset"] == dataset, "epsilon"])
            for style, (metric, name) in zip(line_styles(len(METRIC_NAMES)), METRIC_NAMES.items(), strict=True):
                if (block["metric"] == metric).any():
                    _lines_per_init(ax, block[block["metric"] == metric], positions, style, name, linestyles)
            _init_entries(ax, linestyles)
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

    One panel per dataset (per (dataset, init) with inits other than scratch), training positives on a log x axis:
    non-private points hollow, DP points coloured by ε (viridis), each label annotated beside its points, moved clear
    of other labels and points where they crowd.
    """
    rows = summary[
        (summary["kind"] == "group")
        & (summary["attribute"] == OVERALL)
        & (summary["metric"] == "auroc")
        & (summary["label"] != MACRO)
    ]
    datasets = list(dict.fromkeys(rows["dataset"]))
    multi = not scratch_only(summary)
    keys = datasets
    if multi:
        keys = [(d, i) for d in datasets for i in init_order(rows.loc[rows["dataset"] == d, "init"])]
    with panel_figure(keys, path_png, path_pdf) as panels:
        for key, ax in panels.items():
            dataset = key[0] if multi else key
            block = rows[(rows["dataset"] == dataset) & rows["mean"].notna()]
            if multi:
                block = block[block["init"] == key[1]]
            if block.empty:
                no_data(ax, "No finding with enough test cases")
                continue
            label_counts = counts[(counts["dataset"] == dataset) & (counts["counted"] == "label")].set_index("label")[
                "n_train"
            ]
            finite = sorted(e for e in block["epsilon"].unique() if math.isfinite(e))
            anchors, points_drawn = [], []
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
                anchors.append((x, points["mean"].max(), label))
                points_drawn += [(x, y) for y in points["mean"]]
            ax.set_xscale("log")
            ax.set_xlim(label_counts.min() / 1.5, label_counts.max() * 1.5)
            # Counts often span less than a decade: a few round ticks, no crowded minor labels.
            ax.xaxis.set_major_locator(FixedLocator(count_ticks(*ax.get_xlim())))
            ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xlabel("Training images with the finding (log scale)")
            ax.set_ylabel("Test AUROC (mean over seeds)")
            panel_legend(ax)
            low, high = ax.get_ylim()
            ax.set_ylim(low, high + 0.08 * (high - low))  # headroom for the top labels
            place_labels(ax, anchors, avoid=points_drawn)


def plot_roc_curves(
    models: dict[tuple[str, float], tuple[pd.DataFrame, dict]], dataset: str, path_png, path_pdf
) -> None:
    """Test ROC curve of each label for each (init, budget) (``models``: (init, ε) -> (predictions, val thresholds)),
    with the operating point chosen on validation marked.

    Args:
        models: (init, ε) -> (a predictions table, its label -> threshold dict from
            :func:`privfair.fairness.metrics.thresholds_from_summary`); labels are those of the first model.
        dataset: the dataset's name, for the panel titles.
        path_png: the PNG to write (300 dpi).
        path_pdf: the PDF to write.

    One panel per label (at most four a row; with more than a handful of labels, smaller panels, at most five a
    row); masked (NaN) test labels are left out. Each budget has its colour and marker; with inits other than
    scratch, each init its line style (legend entries for both).
    """
    labels = labels_of(next(iter(models.values()))[0])
    epsilons = sorted({e for _, e in models}, key=lambda e: (math.isinf(e), e))
    inits = init_order(init for init, _ in models)
    multi = inits != [SCRATCH]
    styles = dict(zip(epsilons, line_styles(len(epsilons)), strict=True))
    linestyles = init_linestyles(inits)
    many = len(labels) > SMALL_MULTIPLES_ABOVE
    layout = {"ncols": grid_columns(len(labels), MAX_ROC_COLUMNS if many else 4)}
    if many:
        layout["panel_size"] = SMALL_ROC_PANEL_IN
    with panel_figure([(dataset, label) for label in labels], path_png, path_pdf, **layout) as panels:
        for (_, label), ax in panels.items():
            for init, epsilon in sorted(models, key=lambda k: (inits.index(k[0]), epsilons.index(k[1]))):
                predictions, thresholds = models[(init, epsilon)]
                test = predictions[predictions["split"] == "test"]
                y = test[f"{TRUE_PREFIX}{label}"].to_numpy(dtype=float)
                s = test[f"{SCORE_PREFIX}{label}"].to_numpy(dtype=float)
                keep = ~np.isnan(y)
                fpr, tpr, _ = roc_curve(y[keep], s[keep])
                name = "non-private" if math.isinf(epsilon) else f"ε = {epsilon:g}"
                linestyle = linestyles[init] if multi else styles[epsilon]["linestyle"]
                ax.plot(fpr, tpr, color=styles[epsilon]["color"], linestyle=linestyle, label=None if multi else name)
                if multi:  # one entry per budget, drawn solid, and one per init (below)
                    ax.plot([], [], color=styles[epsilon]["color"], label=name)
                called = s[keep] >= thresholds[label]
                ax.plot(
                    called[y[keep] == 0].mean(),
                    called[y[keep] == 1].mean(),
                    marker=styles[epsilon]["marker"],
                    color=styles[epsilon]["color"],
                    markeredgecolor="black",
                )
            ax.plot([0, 1], [0, 1], color="0.8", linewidth=0.8)
            if multi:
                _init_entries(ax, linestyles)
            ax.set_xlabel("False-positive rate")
            ax.set_ylabel("True-positive rate")
            ax.set_aspect("equal")
        figure_legend(panels, title="Dots: operating point chosen on validation")
