"""The whole DAG on an NIH-layout dataset: real rows of the ChestX-ray14 label table, synthetic PNG pixels, the
official split from train_val_list.txt / test_list.txt."""

from __future__ import annotations

import pandas as pd
import pytest
from helpers.exports import nih_lines, write_nih
from helpers.workflow import planned_jobs, snakemake, write_config


def nih_config(root) -> dict:
    return {
        "study": {"datasets": ["nih"], "epsilons": [4, float("inf")], "seeds": [1]},
        "evaluation": {"n_bootstrap": 20, "seed": 1, "ci": 0.95},
        "datasets": {
            "nih": {
                "source": {"adapter": "nih_cxr14", "root": str(root), "on_invalid": {"age": "error"}},
                "split": {"seed": 0, "fractions": {"train": 0.6, "val": 0.2, "test": 0.2}},
                "preprocess": {"spatial_size": [16, 16], "cache_dtype": "uint8", "histogram_equalize": True},
                "training": {
                    "model": {"width": 4, "num_groups": 2},
                    "epochs": 1,
                    "logical_batch_size": 64,
                    "physical_batch_size": 32,
                    "optimizer": {"name": "NAdam", "lr": 0.002},
                    "privacy": {"max_grad_norm": 1.5, "accountant": "rdp", "delta": None, "grad_sample_mode": "hooks"},
                },
            }
        },
    }


@pytest.mark.workflow
def test_nih_layout_dataset_runs_end_to_end(tmp_path):
    lines = nih_lines(n_per_finding=12, max_images=1)
    patients = sorted({line.split(",")[3] for line in lines[1:]}, key=int)
    root = write_nih(tmp_path / "nih", lines, size=16, test_patients=set(patients[::4]))
    config = write_config(tmp_path / "nih.yaml", nih_config(root))
    workdir = tmp_path / "study"
    snakemake("--cores", "2", "--configfile", str(config), workdir=workdir)
    results = workdir / "results" / "nih"
    table = pd.read_csv(results / "tables" / "privacy_utility.csv")
    assert table["dataset"].tolist() == ["nih", "nih"]
    split = pd.read_parquet(results / "data" / "nih" / "split.parquet")
    assert len(split) == len(lines) - 1
    assert (split.loc[split["patient_id"].isin(patients[::4]), "split"] == "test").all()
    assert (split.loc[~split["patient_id"].isin(patients[::4]), "split"] != "test").all()
    summary = pd.read_csv(results / "datasets" / "nih" / "summary.csv")
    counts = summary.query("variable == 'images' and statistic == 'count'").set_index("split")["value"]
    assert counts["all"] == len(split) == counts[["train", "val", "test"]].sum()
    for name in ("summary.md", "summary.tex", "summary.png", "summary.pdf"):
        assert (results / "datasets" / "nih" / name).stat().st_size > 0
    assert planned_jobs(snakemake("-n", "--configfile", str(config), workdir=workdir)) == {}


def test_bad_input_stops_ingest_with_file_and_line_in_the_log_and_no_output(tmp_path):
    lines = nih_lines(n_per_finding=1, max_images=1)
    fields = lines[3].split(",")
    fields[5] = "X"  # an unknown sex code on file line 4
    lines[3] = ",".join(fields)
    root = write_nih(tmp_path / "nih", lines, size=16)
    config = write_config(tmp_path / "nih.yaml", nih_config(root))
    workdir = tmp_path / "study"
    result = snakemake(
        "results/nih/data/nih/manifest.parquet",
        "--cores",
        "1",
        "--configfile",
        str(config),
        workdir=workdir,
        check=False,
    )
    assert result.returncode != 0
    message = "Data_Entry_2017_v2020.csv: sex code not in ['f', 'm'] in 1 row(s), line(s) 4 ('X')"
    assert message in (workdir / "results" / "nih" / "logs" / "ingest" / "nih.log").read_text()
    assert message in result.stderr
    assert not list((workdir / "results" / "nih" / "data").glob("**/*"))
