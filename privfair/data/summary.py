"""What went into a study, per dataset and split: images, patients, label prevalence, age, sex, and the rows that
the ``on_invalid`` policies dropped.

The table is tidy (``split, variable, statistic, value``) so that other stages can select from it; the markdown and
LaTeX renderings pivot it to one column per split. The figure shows the age and co-morbidity distributions of
train vs test, sex per split and label prevalence per split.
"""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from privfair.core.style import STYLE, no_data, panel_legend, save_figure
from privfair.core.tables import latex_table, markdown_table
from privfair.data.manifest import SEXES, SPLITS, UNKNOWN, label_columns, label_names

COLUMNS = ["split", "variable", "statistic", "value"]
ALL = "all"
# Above eight labels, the summary figure grows by this many inches per label.
PREVALENCE_ROW_IN = 0.22
SINGLE_LABEL_COMORBIDITY = "with a single label, the number of positive findings is the label"


def _split_rows(split: str, rows: pd.DataFrame) -> list[tuple]:
    age, sex = rows["age"], rows["sex"]
    stats = [
        (split, "images", "count", len(rows)),
        (split, "patients", "count", rows["patient_id"].nunique()),
        (split, "age", "mean", age.mean()),
        (split, "age", "sd", age.std()),
        (split, "age", "missing", int(age.isna().sum())),
        *((split, "sex", s, int((sex == s).sum())) for s in SEXES),
        (split, "sex", UNKNOWN, int((~sex.isin(SEXES)).sum())),
    ]
    for column, name in zip(label_columns(rows), label_names(rows)):
        known = rows[column].dropna()
        stats += [
            (split, name, "positives", int(known.sum())),
            (split, name, "prevalence", known.mean() if len(known) else np.nan),
            (split, name, "masked", int(rows[column].isna().sum())),
        ]
    return stats


def summary_table(split_manifest: pd.DataFrame, dropped: pd.DataFrame) -> pd.DataFrame:
    """Counts and distributions per split and over all images; the rows that ``on_invalid`` dropped or kept with
    an unknown value, per check (split ``all``, variables "dropped" and "kept as unknown").

    Args:
        split_manifest: the manifest with ``split``, one row per image (``patient_id``, ``age`` in years, ``sex``,
            ``label_<finding>``).
        dropped: ingest's ``on_invalid`` report, with columns ``action``, ``check`` and ``rows`` (a count).

    Returns:
        A tidy table, columns ``split, variable, statistic, value``: per split and for ``all``, images and patients
        (count), age (mean, sd, missing), sex (F, M, unknown) and per label (positives, prevalence among known
        labels, masked); then one row per ingest (action, check) with its summed row count.
    """
    rows = []
    for split in SPLITS:
        rows += _split_rows(split, split_manifest[split_manifest["split"] == split])
    rows += _split_rows(ALL, split_manifest)
    for (action, check), count in dropped.groupby(["action", "check"], sort=False)["rows"].sum().items():
        rows.append((ALL, action, check, int(count)))
    return pd.DataFrame(rows, columns=COLUMNS)


def wide(table: pd.DataFrame) -> pd.DataFrame:
    """One row per (variable, statistic), one column per split, in the order of ``summary_table``."""
    pivot = table.pivot_table(
        index=["variable", "statistic"], columns="split", values="value", sort=False, aggfunc="first"
    )
    return pivot.reindex(columns=[s for s in (*SPLITS, ALL) if s in pivot.columns])


def _cell(value) -> str:
    if pd.isna(value):
        return "—"
    return f"{value:.3f}" if float(value) != int(value) else f"{int(value):,}"


def summary_view(table: pd.DataFrame) -> pd.DataFrame:
    """The :func:`summary_table` as formatted cells: one row per (variable, statistic), one column per split."""
    pivot = wide(table)
    cells = pivot.map(_cell).reset_index()
    return cells.rename(columns={"variable": "Variable", "statistic": "Statistic"})


def to_markdown(table: pd.DataFrame, dataset: str) -> str:
    """The summary as a Markdown page headed by the dataset's name.

    Args:
        table: a :func:`summary_table`.
        dataset: the dataset's name, for the heading.

    Returns:
        A ``# Dataset summary: <dataset>`` heading and a pipe table, one row per (variable, statistic), one column
        per split.
    """
    return f"# Dataset summary: {dataset}\n\n" + markdown_table(summary_view(table), ("Variable", "Statistic"))


def to_latex(table: pd.DataFrame, caption: str | None = None) -> str:
    """The summary as a booktabs LaTeX table.

    Args:
        table: a :func:`summary_table`.
        caption: the table's caption, or None for none.

    Returns:
        The LaTeX source (needs ``\\usepackage{booktabs}``), one row per (variable, statistic), one column per split.
    """
    return latex_table(summary_view(table), caption, ("Variable", "Statistic"))


def plot_summary(split_manifest: pd.DataFrame, dataset: str, path_png, path_pdf) -> None:
    """Age and co-morbidity of train vs test, sex per split, label prevalence per split (2 × 2 panels).

    The figure grows taller with the number of labels so that each keeps a readable row in the prevalence panel; a
    single-label task gets a co-morbidity panel that says why it has none (the count of findings is the label).

    Args:
        split_manifest: the manifest with ``split``, one row per image (``patient_id``, ``age`` in years, ``sex``,
            ``comorbidity``, ``label_<finding>``).
        dataset: the dataset's name, for the title.
        path_png: the PNG to write (200 dpi).
        path_pdf: the PDF to write.
    """
    by_split = {s: split_manifest[split_manifest["split"] == s] for s in SPLITS}
    names = label_names(split_manifest)
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(7.2, 5.6 + PREVALENCE_ROW_IN * max(0, len(names) - 8)))
        (age_ax, sex_ax), (comorbidity_ax, prevalence_ax) = fig.subplots(2, 2)
        fig.suptitle(
            f"{dataset}: {len(split_manifest):,} images of {split_manifest['patient_id'].nunique():,} patients"
        )
        ages = {s: by_split[s]["age"].dropna() for s in ("train", "test")}
        if any(len(a) for a in ages.values()):
            bins = np.linspace(0, max(a.max() for a in ages.values() if len(a)) + 1, 21)
            for split, values in ages.items():
                age_ax.hist(values, bins=bins, density=True, alpha=0.5, label=split)
            age_ax.legend()
        else:
            age_ax.text(0.5, 0.5, "no ages recorded", ha="center", va="center", transform=age_ax.transAxes)
        age_ax.set(title="Age", xlabel="years", ylabel="density")
        positions = np.arange(len(SPLITS))
        for i, sex in enumerate((*SEXES, UNKNOWN)):
            counts = [
                (by_split[s]["sex"] == sex).sum() if sex != UNKNOWN else (~by_split[s]["sex"].isin(SEXES)).sum()
                for s in SPLITS
            ]
            sex_ax.bar(positions + (i - 1) * 0.27, counts, width=0.27, label=sex)
        sex_ax.set(title="Sex", xticks=positions, xticklabels=SPLITS, ylabel="images")
        sex_ax.legend()
        comorbidity_ax.set(title="Co-morbidity", xlabel="positive findings per image", ylabel="fraction")
        if len(names) > 1:
            bins = np.arange(int(split_manifest["comorbidity"].max()) + 2) - 0.5  # one bar per count
            comorbidity_ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            for split in ("train", "test"):
                comorbidity_ax.hist(by_split[split]["comorbidity"], bins=bins, density=True, alpha=0.5, label=split)
            comorbidity_ax.legend()
        else:
            no_data(comorbidity_ax, f"Co-morbidity needs more than one finding: {SINGLE_LABEL_COMORBIDITY}")
        height = 0.8 / len(SPLITS)
        for i, split in enumerate(SPLITS):
            prevalence = by_split[split][label_columns(split_manifest)].mean()  # NaN (masked) rows left out
            prevalence_ax.barh(np.arange(len(names)) + (i - 1) * height, prevalence, height=height, label=split)
        prevalence_ax.set(
            title="Label prevalence", yticks=np.arange(len(names)), yticklabels=names, xlabel="fraction positive"
        )
        prevalence_ax.invert_yaxis()
        panel_legend(prevalence_ax)  # below the panel: inside, it would cover the bars of many labels
        fig.tight_layout()
        save_figure(fig, path_png, path_pdf, dpi=200)
