"""Paper tables: the full numbers as CSV, and a formatted view of them as Markdown and LaTeX.

The builders below take the long tables of :mod:`privfair.fairness_analysis` and :mod:`privfair.aggregate` and
return ``(numbers, view)``: ``numbers`` the rows shown (full precision, for CSV), ``view`` the same rows as
formatted strings with readable headers.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from privfair.metrics import MACRO

CI_DIGITS = 3


def fmt_epsilon(epsilon: float) -> str:
    return "∞ (non-private)" if math.isinf(epsilon) else f"{epsilon:g}"


def fmt_mean_sd(mean: float, sd: float, digits: int = 3) -> str:
    if math.isnan(mean):
        return "n/a"
    return f"{mean:.{digits}f}" if math.isnan(sd) else f"{mean:.{digits}f} ± {sd:.{digits}f}"


def fmt_ci(low: float, high: float, digits: int = 2) -> str:
    return "—" if math.isnan(low) else f"[{low:.{digits}f}, {high:.{digits}f}]"


def fmt_number(value, spec: str) -> str:
    """A number in ``spec`` format; "—" when missing, "∞" when infinite."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return "∞" if math.isinf(float(value)) else format(float(value), spec)


def fmt_p(p: float) -> str:
    return "—" if math.isnan(p) else ("< 0.001" if p < 0.001 else f"{p:.3f}")


def ci_header(table: pd.DataFrame) -> str:
    """ "95% CI" for a table with a ``ci_level`` column of 0.95; plain "CI" when the level is unknown."""
    return f"{table['ci_level'].iloc[0]:.0%} CI" if "ci_level" in table.columns and len(table) else "CI"


def markdown_table(view: pd.DataFrame, text_columns=()) -> str:
    """A pipe table; ``text_columns`` are left-aligned, the others (numbers) right-aligned."""
    lines = [
        "| " + " | ".join(view.columns) + " |",
        "|" + "|".join(":---" if c in text_columns else "---:" for c in view.columns) + "|",
    ]
    for row in view.itertuples(index=False):
        lines.append("| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |")
    return "\n".join(lines) + "\n"


# Symbols of our headers and cells as math-mode commands, so that the tables compile with pdfLaTeX too.
LATEX_SYMBOLS = {
    "ε": r"$\varepsilon$",
    "δ": r"$\delta$",
    "σ": r"$\sigma$",
    "Δ": r"$\Delta$",
    "±": r"$\pm$",
    "≠": r"$\neq$",
    "≥": r"$\geq$",
    "∞": r"$\infty$",
    "×": r"$\times$",
    "·": r"$\cdot$",
    "−": "-",
    "—": "--",
}


def latex_table(view: pd.DataFrame, caption: str) -> str:
    """A booktabs table (needs \\usepackage{booktabs}); cells are escaped for LaTeX and symbols put in math mode."""
    text = view.to_latex(index=False, escape=True, caption=caption, position="htbp")
    for symbol, command in LATEX_SYMBOLS.items():
        text = text.replace(symbol, command)
    return text


def write_table(
    numbers: pd.DataFrame, view: pd.DataFrame, output, name: str, *, caption: str, text_columns=(), notes=()
) -> None:
    """Write table ``name`` to ``output[f"{name}_csv"]``, ``_md`` and ``_tex`` (a rule's named outputs, as made by
    ``table_outputs`` in the workflow); ``notes`` follow the Markdown table and close the LaTeX caption."""
    numbers.to_csv(output[f"{name}_csv"], index=False)
    Path(output[f"{name}_md"]).write_text(
        markdown_table(view, text_columns) + "".join(f"\nNote: {n}.\n" for n in notes)
    )
    Path(output[f"{name}_tex"]).write_text(latex_table(view, " ".join([caption, *(f"Note: {n}." for n in notes)])))


def _diff_cell(row) -> str:
    if math.isnan(row["diff"]):
        return "reference" if math.isinf(row["epsilon"]) else "—"
    return f"{row['diff']:+.3f} {fmt_ci(row['diff_ci_low'], row['diff_ci_high'], CI_DIGITS)}"


def _view(rows: pd.DataFrame, cells: dict) -> pd.DataFrame:
    return pd.DataFrame({header: [fmt(r) for _, r in rows.iterrows()] for header, fmt in cells.items()})


def _macro(summary: pd.DataFrame, kind: str) -> pd.DataFrame:
    return summary[(summary["kind"] == kind) & (summary["label"] == MACRO)]


def performance_gap_table(summary: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Macro-AUROC performance gap of every group and budget (the reference study's fairness measure)."""
    rows = _macro(summary, "gap")
    rows = rows[rows["metric"] == "auroc"]
    ci = ci_header(summary)
    return rows, _view(
        rows,
        {
            "Dataset": lambda r: r["dataset"],
            "Attribute": lambda r: r["attribute"],
            "Group": lambda r: r["group"],
            "ε": lambda r: fmt_epsilon(r["epsilon"]),
            "AUROC gap (mean ± SD)": lambda r: fmt_mean_sd(r["mean"], r["sd"]),
            ci: lambda r: fmt_ci(r["ci_low"], r["ci_high"], CI_DIGITS),
            "p (gap ≠ 0, adj.)": lambda r: fmt_p(r["p_zero_adjusted"]),
            f"Δ vs non-private [{ci}]": _diff_cell,
        },
    )


def fairness_metric_table(summary: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The standard fairness differences (macro over labels) per attribute and budget."""
    rows = _macro(summary, "fairness")
    ci = ci_header(summary)
    return rows, _view(
        rows,
        {
            "Dataset": lambda r: r["dataset"],
            "Attribute": lambda r: r["attribute"],
            "Metric": lambda r: r["metric"].replace("_", " "),
            "ε": lambda r: fmt_epsilon(r["epsilon"]),
            "Value (mean ± SD)": lambda r: fmt_mean_sd(r["mean"], r["sd"]),
            ci: lambda r: fmt_ci(r["ci_low"], r["ci_high"], CI_DIGITS),
            f"Δ vs non-private [{ci}]": _diff_cell,
            "p (Δ, adj.)": lambda r: fmt_p(r["p_diff_adjusted"]),
        },
    )


def p_value_table(summary: pd.DataFrame, method: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """DP vs non-private: macro AUROC of every group and every AUROC gap, with raw and adjusted p-values."""
    rows = summary[
        (summary["label"] == MACRO)
        & (summary["metric"] == "auroc")
        & summary["p_diff"].notna()
        & summary["kind"].isin(["group", "gap"])
    ]
    return rows, _view(
        rows,
        {
            "Dataset": lambda r: r["dataset"],
            "ε": lambda r: fmt_epsilon(r["epsilon"]),
            "Quantity": lambda r: "AUROC" if r["kind"] == "group" else "AUROC gap",
            "Attribute": lambda r: r["attribute"],
            "Group": lambda r: r["group"],
            f"Δ vs non-private [{ci_header(summary)}]": _diff_cell,
            "p": lambda r: fmt_p(r["p_diff"]),
            f"p ({method.replace('_', '-')})": lambda r: fmt_p(r["p_diff_adjusted"]),
            "Flagged": lambda r: "yes" if r["diff_flagged"] else "",
        },
    )


def correlation_table(correlations: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pearson's r: ε vs macro-AUROC gaps, and AUROC drop vs training count (labels, groups)."""
    rows = correlations[
        (correlations["relation"] != "epsilon_vs_gap")
        | ((correlations["label"] == MACRO) & (correlations["metric"] == "auroc"))
    ]
    relation = {
        "epsilon_vs_gap": "ε vs AUROC gap",
        "auroc_drop_vs_training_positives": "AUROC drop vs training positives",
        "auroc_drop_vs_training_images": "AUROC drop vs training images",
    }
    return rows, _view(
        rows,
        {
            "Dataset": lambda r: r["dataset"],
            "Relation": lambda r: relation[r["relation"]],
            "ε": lambda r: "DP runs" if math.isnan(r["epsilon"]) else fmt_epsilon(r["epsilon"]),
            "Attribute": lambda r: r["attribute"],
            "Group": lambda r: r["group"],
            "Points": lambda r: str(r["n_points"]),
            f"r [{ci_header(correlations)}]": lambda r: (
                "n/a" if math.isnan(r["r"]) else f"{r['r']:+.2f} {fmt_ci(r['r_ci_low'], r['r_ci_high'])}"
            ),
            "p": lambda r: fmt_p(r["p_value"]),
            "Note": lambda r: r["reason"] if isinstance(r["reason"], str) else "",
        },
    )


def privacy_record_table(records: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per trained model: the privacy it spent, as recorded during training."""
    columns = [
        "dataset",
        "epsilon",
        "seed",
        "epsilon_spent",
        "delta",
        "noise_multiplier",
        "sample_rate",
        "steps",
        "epochs",
        "accountant",
        "max_grad_norm",
        "n_train",
        "max_images_per_patient",
    ]
    rows = pd.DataFrame(records).reindex(columns=columns).sort_values(["dataset", "epsilon", "seed"], ignore_index=True)

    return rows, _view(
        rows,
        {
            "Dataset": lambda r: r["dataset"],
            "ε target": lambda r: fmt_epsilon(float(r["epsilon"])),
            "Seed": lambda r: str(r["seed"]),
            "ε spent": lambda r: fmt_number(r["epsilon_spent"], ".3g"),
            "δ": lambda r: fmt_number(r["delta"], ".2e"),
            "Noise σ": lambda r: fmt_number(r["noise_multiplier"], ".3f"),
            "Sampling rate q": lambda r: fmt_number(r["sample_rate"], ".4f"),
            "Steps": lambda r: str(r["steps"]),
            "Accountant": lambda r: r["accountant"] if isinstance(r["accountant"], str) else "—",
            "Clip": lambda r: fmt_number(r["max_grad_norm"], "g"),
            "Images per patient (max)": lambda r: str(r["max_images_per_patient"]),
        },
    )
