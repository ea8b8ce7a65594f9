"""The table renderer: formatted cells, Markdown alignment and escaping, pdfLaTeX-safe LaTeX, and the three files."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest

from privfair.core.tables import (
    LATEX_SYMBOLS,
    ci_header,
    fmt_change,
    fmt_ci,
    fmt_epsilon,
    fmt_mean_sd,
    fmt_number,
    fmt_p,
    latex_table,
    markdown_table,
    view,
    write_table,
)

# Every symbol our headers and cells use, so that the LaTeX must put each in math mode (or replace it).
SYMBOLS = "ε δ σ Δ ± ∞ × ≠ ≥ · − —"


def change_row(epsilon: float, diff: float, low: float = math.nan, high: float = math.nan, column: str = "diff"):
    return pd.Series({"epsilon": epsilon, column: diff, f"{column}_ci_low": low, f"{column}_ci_high": high})


def outputs(tmp_path, name: str) -> dict:
    """A rule's named outputs, as ``table_outputs`` in the workflow makes them."""
    return {f"{name}_{kind}": tmp_path / f"{name}.{kind}" for kind in ("csv", "md", "tex")}


def body_lines(latex: str) -> list[str]:
    """The rows between \\midrule and \\bottomrule."""
    return latex.split("\\midrule\n")[1].split("\\bottomrule")[0].strip().splitlines()


# --- cells ---------------------------------------------------------------------------------------------------------


def test_cells_format_numbers_and_say_when_missing():
    assert fmt_epsilon(math.inf) == "∞ (non-private)" and fmt_epsilon(8.0) == "8" and fmt_epsilon(0.5) == "0.5"
    assert fmt_mean_sd(0.81234, 0.0456) == "0.812 ± 0.046"
    assert fmt_mean_sd(0.81234, math.nan) == "0.812"  # one seed: no SD
    assert fmt_mean_sd(math.nan, 0.1) == "n/a"
    assert fmt_ci(0.7049, 0.9151) == "[0.70, 0.92]" and fmt_ci(math.nan, math.nan) == "—"
    assert fmt_number(None, ".2f") == "—" and fmt_number(math.nan, ".2f") == "—"
    assert fmt_number(math.inf, ".2f") == "∞" and fmt_number(1.5e-5, ".1e") == "1.5e-05"
    assert fmt_p(math.nan) == "—" and fmt_p(0.0004) == "< 0.001" and fmt_p(0.0123) == "0.012"


def test_change_is_reference_for_non_private_and_dash_without_a_value():
    assert fmt_change(change_row(math.inf, 0.0, 0.0, 0.0)) == "reference"
    assert fmt_change(change_row(math.inf, math.nan)) == "reference"
    assert fmt_change(change_row(1.0, math.nan)) == "—"


def test_change_shows_its_sign_and_ci():
    assert fmt_change(change_row(1.0, -0.0123, -0.02, -0.0041)) == "-0.012 [-0.020, -0.004]"
    assert fmt_change(change_row(4.0, 0.0104, -0.001, 0.0209)) == "+0.010 [-0.001, 0.021]"
    # A change without a CI (too few valid resamples) still shows its value.
    assert fmt_change(change_row(4.0, -0.25)) == "-0.250 —"
    # The column is the caller's: the privacy-utility table calls its change "drop".
    assert fmt_change(change_row(2.0, -0.1, -0.2, -0.05, column="drop"), "drop") == "-0.100 [-0.200, -0.050]"


@pytest.mark.parametrize(("level", "header"), [(0.95, "95% CI"), (0.9, "90% CI"), (0.5, "50% CI")])
def test_ci_header_reads_the_ci_level(level, header):
    assert ci_header(pd.DataFrame({"ci_level": [level, level]})) == header


def test_ci_header_is_plain_when_the_level_is_unknown():
    assert ci_header(pd.DataFrame({"value": [1.0]})) == "CI"
    assert ci_header(pd.DataFrame({"ci_level": []})) == "CI"


@pytest.mark.parametrize(("level", "header"), [(0.975, "97.5% CI"), (0.999, "99.9% CI")])
def test_ci_header_does_not_round_a_level_to_a_different_one(level, header):
    assert ci_header(pd.DataFrame({"ci_level": [level]})) == header


def test_view_applies_one_formatter_per_header_to_every_row():
    rows = pd.DataFrame({"epsilon": [1.0, math.inf], "mean": [0.7, 0.9], "sd": [0.01, math.nan]})
    cells = view(rows, {"ε": lambda r: fmt_epsilon(r["epsilon"]), "AUROC": lambda r: fmt_mean_sd(r["mean"], r["sd"])})
    assert list(cells.columns) == ["ε", "AUROC"]
    assert cells.to_dict("list") == {"ε": ["1", "∞ (non-private)"], "AUROC": ["0.700 ± 0.010", "0.900"]}


# --- Markdown ------------------------------------------------------------------------------------------------------


def test_markdown_aligns_text_left_and_numbers_right():
    cells = pd.DataFrame({"Dataset": ["chest", "knee"], "ε": ["1", "∞"], "AUROC": ["0.812", "0.900"]})
    lines = markdown_table(cells, text_columns=("Dataset",)).splitlines()
    assert lines[0] == "| Dataset | ε | AUROC |"
    assert lines[1].strip("|").split("|") == [":---", "---:", "---:"]
    assert lines[2:] == ["| chest | 1 | 0.812 |", "| knee | ∞ | 0.900 |"]


def test_markdown_escapes_pipes_in_cells():
    cells = pd.DataFrame({"Group": ["a|b", "plain"], "n": ["1", "2"]})
    text = markdown_table(cells, text_columns=("Group",))
    row = text.splitlines()[2]
    assert row == "| a\\|b | 1 |"
    # Splitting on unescaped pipes gives back the columns: the cell's pipe does not open a new one.
    assert len(re.split(r"(?<!\\)\|", row)) - 2 == len(cells.columns)


# --- LaTeX ---------------------------------------------------------------------------------------------------------


def test_latex_escapes_special_characters_in_cells_and_headers():
    cells = pd.DataFrame({"Data_set": ["synth_cxr"], "Share": ["95%"], "Pair": ["F & M"]})
    text = latex_table(cells, "A caption.")
    assert "Data\\_set" in text
    assert body_lines(text) == ["synth\\_cxr & 95\\% & F \\& M \\\\"]


def test_latex_puts_every_symbol_in_math_mode_and_is_ascii():
    symbols = SYMBOLS.split()
    cells = pd.DataFrame({"Δ vs non-private [95% CI]": symbols, "ε": [f"∞ ± {s}" for s in symbols]})
    text = latex_table(cells, "Budget ε, noise σ, δ.")
    assert not [c for c in text if ord(c) > 127], "non-ASCII characters left for pdfLaTeX"
    for symbol in symbols:
        command = LATEX_SYMBOLS[symbol]
        assert command in text, symbol
    assert "$\\varepsilon$" in text.splitlines()[1]  # the caption's symbols too
    # Every body row still has one column separator: the symbols' commands add no '&'.
    assert all(line.count(" & ") == 1 for line in body_lines(text))


def test_latex_is_a_booktabs_table_with_the_caption():
    text = latex_table(pd.DataFrame({"a": ["1"], "b": ["2"]}), "My caption.")
    assert text.startswith("\\begin{table}[htbp]")
    assert "\\caption{My caption.}" in text
    assert all(rule in text for rule in ("\\toprule", "\\midrule", "\\bottomrule"))


def test_latex_escapes_special_characters_in_the_caption():
    text = latex_table(pd.DataFrame({"a": ["1"]}), "Note: synth_ct: 95% of groups & more.")
    assert "\\caption{Note: synth\\_ct: 95\\% of groups \\& more.}" in text


# --- files ---------------------------------------------------------------------------------------------------------


def test_write_table_writes_csv_markdown_and_latex_with_notes(tmp_path):
    numbers = pd.DataFrame({"dataset": ["chest", "chest"], "epsilon": [1.0, math.inf], "auroc": [0.71234567, 0.9]})
    cells = view(
        numbers,
        {
            "Dataset": lambda r: r["dataset"],
            "ε": lambda r: fmt_epsilon(r["epsilon"]),
            "AUROC": lambda r: f"{r.auroc:.3f}",
        },
    )
    paths = outputs(tmp_path, "utility")
    notes = ["first note", "second note"]
    write_table(numbers, cells, paths, "utility", caption="Macro AUROC.", text_columns=("Dataset",), notes=notes)

    # CSV: the full-precision numbers, infinity included.
    again = pd.read_csv(paths["utility_csv"])
    pd.testing.assert_frame_equal(again, numbers)
    assert np.isinf(again["epsilon"].iloc[1])

    # Markdown: the table as rendered, then the notes after it.
    markdown = paths["utility_md"].read_text()
    table = markdown_table(cells, ("Dataset",))
    assert markdown.startswith(table)
    assert markdown[len(table) :] == "\nNote: first note.\n\nNote: second note.\n"

    # LaTeX: the notes close the caption, in order.
    latex = paths["utility_tex"].read_text()
    assert "\\caption{Macro AUROC. Note: first note. Note: second note.}" in latex
    assert latex == latex_table(cells, "Macro AUROC. Note: first note. Note: second note.", ("Dataset",))


def test_latex_aligns_text_columns_left_and_numbers_right():
    cells = pd.DataFrame({"Dataset": ["cxr"], "Label": ["effusion"], "AUROC": ["0.91"], "Seeds": ["2"]})
    assert "\\begin{tabular}{llrr}" in latex_table(cells, None, ("Dataset", "Label"))
    assert "\\begin{tabular}{rrrr}" in latex_table(cells, None)


def test_write_table_without_notes_writes_the_bare_table(tmp_path):
    numbers = pd.DataFrame({"x": [1.5]})
    cells = view(numbers, {"X": lambda r: f"{r['x']:.1f}"})
    paths = outputs(tmp_path, "t")
    write_table(numbers, cells, paths, "t", caption="Caption.")
    assert paths["t_md"].read_text() == markdown_table(cells)
    assert "\\caption{Caption.}" in paths["t_tex"].read_text()
