"""The one table renderer: the full numbers as CSV, and a formatted view of them as Markdown and LaTeX.

A stage's table builder returns ``(numbers, view)``: ``numbers`` the rows shown (full precision, for CSV), ``view``
the same rows as formatted strings with readable headers (built with :func:`view` and the ``fmt_*`` cells below).
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

CI_DIGITS = 3

# Marks of cells that admit their limits (docs/methods.md, "What the marks mean"). A CI resting on fewer than this
# share of the bootstrap resamples (the others undefined, e.g. lacking a positive) is marked FEW_RESAMPLES, with its
# count of valid resamples; a cell measured on too few test cases to be relied on is marked UNRELIABLE.
FEW_RESAMPLES_SHARE = 0.8
FEW_RESAMPLES = "†"
UNRELIABLE = "‡"


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
    """ "95% CI" for a table with a ``ci_level`` column of 0.95 ("97.5% CI" for 0.975: never rounded to another
    level); plain "CI" when the level is unknown."""
    return f"{table['ci_level'].iloc[0] * 100:.10g}% CI" if "ci_level" in table.columns and len(table) else "CI"


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
    "†": r"\dag{}",
    "‡": r"\ddag{}",
    "−": "-",
    "—": "--",
}


# LaTeX's special characters in text (pandas escapes cells and headers, not the caption).
LATEX_SPECIALS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def _escape_latex(text: str) -> str:
    return "".join(LATEX_SPECIALS.get(character, character) for character in text)


def latex_table(view: pd.DataFrame, caption: str | None, text_columns=()) -> str:
    """A booktabs table (needs \\usepackage{booktabs}); cells are escaped for LaTeX and symbols put in math mode.
    As in :func:`markdown_table`, ``text_columns`` are left-aligned and the others (numbers) right-aligned."""
    alignment = "".join("l" if column in text_columns else "r" for column in view.columns)
    text = view.to_latex(
        index=False,
        escape=True,
        caption=caption and _escape_latex(caption),
        position="htbp",
        column_format=alignment,
    )
    for symbol, command in LATEX_SYMBOLS.items():
        text = text.replace(symbol, command)
    return text


def write_table(
    numbers: pd.DataFrame, view: pd.DataFrame, output, name: str, *, caption: str, text_columns=(), notes=()
) -> None:
    """Write table ``name`` to ``output[f"{name}_csv"]``, ``_md`` and ``_tex`` (a rule's named outputs, as made by
    ``table_outputs`` in the workflow); ``notes`` follow the Markdown table and close the LaTeX caption.

    Args:
        numbers: the rows shown, at full precision; written as CSV without the index.
        view: the same rows as formatted strings with readable headers (see :func:`view`); written as Markdown
            and as a booktabs LaTeX table.
        output: a rule's outputs, indexable by ``f"{name}_csv"``, ``f"{name}_md"`` and ``f"{name}_tex"``.
        name: the table's name, the prefix of its three output keys.
        caption: the LaTeX caption (not shown in the Markdown).
        text_columns: headers of ``view`` to left-align in Markdown; the others are right-aligned.
        notes: sentences without a final full stop, each written as ``Note: <note>.``.
    """
    numbers.to_csv(output[f"{name}_csv"], index=False)
    Path(output[f"{name}_md"]).write_text(
        markdown_table(view, text_columns) + "".join(f"\nNote: {n}.\n" for n in notes)
    )
    Path(output[f"{name}_tex"]).write_text(
        latex_table(view, " ".join([caption, *(f"Note: {n}." for n in notes)]), text_columns)
    )


def fmt_change(row, column: str = "diff") -> str:
    """A paired Δ vs non-private with its CI (``{column}``, ``{column}_ci_low``, ``{column}_ci_high``): "reference"
    for the non-private row itself, "—" where there is no Δ."""
    if math.isinf(row["epsilon"]):
        return "reference"
    if math.isnan(row[column]):
        return "—"
    return f"{row[column]:+.3f} {fmt_ci(row[f'{column}_ci_low'], row[f'{column}_ci_high'], CI_DIGITS)}"


def view(rows: pd.DataFrame, cells: dict) -> pd.DataFrame:
    """Formatted cells: one column per ``header: formatter(row)`` of ``cells``, one row per row of ``rows``."""
    return pd.DataFrame({header: [fmt(r) for _, r in rows.iterrows()] for header, fmt in cells.items()})


def few_resamples(n_valid, n_resamples) -> bool:
    """Whether a CI rests on fewer than :data:`FEW_RESAMPLES_SHARE` of the resamples (False when either count is
    missing: nothing to judge).

    Args:
        n_valid: the resamples in which the quantity is defined.
        n_resamples: the resamples drawn.

    Returns:
        ``n_valid < FEW_RESAMPLES_SHARE * n_resamples``, or False when a count is missing.
    """
    try:
        n_valid, n_resamples = float(n_valid), float(n_resamples)
    except (TypeError, ValueError):
        return False
    if math.isnan(n_valid) or math.isnan(n_resamples):
        return False
    return n_valid < FEW_RESAMPLES_SHARE * n_resamples


def mark_few_resamples(cell: str, n_valid, n_resamples) -> str:
    """``cell`` followed by "† <n_valid>/<n_resamples>" when :func:`few_resamples`, else ``cell`` unchanged.

    Args:
        cell: a formatted CI (or change with its CI).
        n_valid: the resamples behind it that are defined.
        n_resamples: the resamples drawn.

    Returns:
        The cell, marked where the rule fires.
    """
    if not few_resamples(n_valid, n_resamples):
        return cell
    return f"{cell} {FEW_RESAMPLES} {int(n_valid)}/{int(n_resamples)}"


def few_resamples_note(n_resamples, why: str) -> str:
    """The table note that explains :data:`FEW_RESAMPLES` (for ``notes`` of :func:`write_table`).

    Args:
        n_resamples: the numbers of resamples drawn (one or more values; repeats are dropped).
        why: why the other resamples are undefined, e.g. "lacked a positive or a negative".

    Returns:
        A sentence without a final full stop.
    """
    counts = sorted({int(n) for n in n_resamples if not math.isnan(float(n))})
    drawn = "/".join(str(n) for n in counts) or "drawn"
    return (
        f"{FEW_RESAMPLES} CI from fewer than {FEW_RESAMPLES_SHARE:.0%} of the {drawn} resamples (valid/drawn given "
        f"after the mark): the others {why}"
    )
