"""The dataset summary: counts, prevalence over known labels, age and sex per split, dropped rows; table and figure."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from privfair.data.adapters.common import RECORD_COLUMNS
from privfair.data.summary import plot_summary, summary_table, to_latex, to_markdown


def split_manifest() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "image_id": [f"i{i}" for i in range(8)],
            "patient_id": ["a", "a", "b", "c", "d", "e", "f", "f"],
            "age": [30, 30, 50, np.nan, 70, 20, 40, 41],
            "sex": ["F", "F", "M", None, "M", "F", "M", "M"],
            "label_effusion": [1, 0, np.nan, 1, 0, 1, 0, np.nan],
            "label_mass": [0, 0, 1, 0, 0, 1, 0, 0],
            "comorbidity": [1, 0, 1, 1, 0, 2, 0, 0],
            "split": ["train", "train", "train", "train", "val", "test", "test", "test"],
        }
    )


def value(table, split, variable, statistic):
    return table.query("split == @split and variable == @variable and statistic == @statistic")["value"].item()


def test_counts_prevalence_over_known_labels_demographics_and_dropped_rows():
    dropped = pd.DataFrame(
        [["t.csv", "age", "dropped", "bad age", 3, "4, 5, 9"], ["t.csv", "sex", "kept as unknown", "bad sex", 1, "7"]],
        columns=RECORD_COLUMNS,
    )
    table = summary_table(split_manifest(), dropped)
    assert (value(table, "train", "images", "count"), value(table, "train", "patients", "count")) == (4, 3)
    assert value(table, "test", "patients", "count") == 2 and value(table, "all", "images", "count") == 8
    assert value(table, "train", "effusion", "positives") == 2
    assert math.isclose(value(table, "train", "effusion", "prevalence"), 2 / 3)  # the masked row is left out
    assert value(table, "train", "effusion", "masked") == 1
    assert math.isclose(value(table, "train", "age", "mean"), np.mean([30, 30, 50]))
    assert value(table, "train", "age", "missing") == 1
    assert [value(table, "train", "sex", s) for s in ("F", "M", "unknown")] == [2, 1, 1]
    assert value(table, "all", "dropped", "age") == 3 and value(table, "all", "kept as unknown", "sex") == 1
    markdown = to_markdown(table, "demo")
    assert "| effusion | prevalence | 0.667 |" in markdown and "| train | val | test | all |" in markdown
    assert r"effusion & prevalence & 0.667" in to_latex(table)


def test_the_figure_is_written_also_without_ages(tmp_path):
    manifest = split_manifest().assign(age=np.nan, sex=None)  # MedMNIST-like: no demographics
    plot_summary(manifest, "demo", tmp_path / "s.png", tmp_path / "s.pdf")
    assert (tmp_path / "s.png").stat().st_size > 0 and (tmp_path / "s.pdf").read_bytes().startswith(b"%PDF")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.pdf", "s.png"]
