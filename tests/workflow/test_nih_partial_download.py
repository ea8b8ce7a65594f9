"""A real export as users have it: the full NIH ChestX-ray14 label table (112,120 rows) beside a partial download of
a few hundred images (synthetic pixels), through the nih_cxr14 adapter unchanged, with one split seed.

Only the root, the drop policy for the images not downloaded and a label choice are set for the source; the rare
findings the subset cannot represent are dropped by ``min_positive_patients``, and the stratified split puts every
remaining finding's positives in every split."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pandas as pd
import pytest
from helpers.exports import NIH_TABLE, noise
from helpers.workflow import snakemake, write_config
from PIL import Image

DOWNLOADED = 400  # images: the first ones of the table, as an interrupted download leaves them


def partial_download(root, n_images: int):
    """The download's layout with the full label table and the first ``n_images`` images only."""
    (root / "images_001" / "images").mkdir(parents=True)
    with gzip.open(NIH_TABLE, "rb") as source, open(root / "Data_Entry_2017_v2020.csv", "wb") as table:
        shutil.copyfileobj(source, table)
    rows = pd.read_csv(root / "Data_Entry_2017_v2020.csv", usecols=["Image Index"], nrows=n_images)
    rng = np.random.default_rng(0)
    for name in rows["Image Index"]:
        Image.fromarray(noise(rng, (16, 16))).save(root / "images_001" / "images" / name)
    return root


def study(root) -> dict:
    return {
        "study": {"datasets": ["nih"], "epsilons": [8, float("inf")], "seeds": [1]},
        "evaluation": {"n_bootstrap": 20},
        "datasets": {
            "nih": {
                "source": {
                    "adapter": "nih_cxr14",
                    "root": str(root),
                    "on_invalid": {"missing_image": "drop"},
                    "min_positive_patients": 6,
                },
                "split": {"seed": 0, "fractions": {"train": 0.6, "val": 0.2, "test": 0.2}},
                "preprocess": {"spatial_size": [16, 16], "cache_dtype": "uint8"},
                "training": {
                    "model": {"width": 4, "num_groups": 2},
                    "epochs": 1,
                    "logical_batch_size": 64,
                    "physical_batch_size": 64,
                    "optimizer": {"name": "NAdam", "lr": 0.002},
                    "privacy": {"max_grad_norm": 1.5, "accountant": "rdp", "delta": None, "grad_sample_mode": "hooks"},
                },
            }
        },
    }


@pytest.mark.workflow
def test_a_partial_download_with_the_full_table_runs_end_to_end(tmp_path):
    root = partial_download(tmp_path / "nih", DOWNLOADED)
    workdir = tmp_path / "study"
    snakemake("--cores", "2", "--configfile", str(write_config(tmp_path / "nih.yaml", study(root))), workdir=workdir)
    results = workdir / "results" / "nih"

    dropped = pd.read_csv(results / "data" / "nih" / "dropped.csv")
    missing = dropped[dropped["check"] == "missing_image"]
    assert missing["rows"].sum() == 112_120 - DOWNLOADED
    rare = dropped[dropped["check"] == "min_positive_patients"]
    assert (
        rare["problem"].str.contains("finding 'hernia': 1 positive patient").any()
    )  # in 1 of the 400 images' patients

    split = pd.read_parquet(results / "data" / "nih" / "split.parquet")
    assert len(split) == DOWNLOADED
    labels = [c for c in split.columns if c.startswith("label_")]
    assert labels and "label_hernia" not in labels
    for label in labels:  # every kept finding has positives and negatives in every split
        assert (split.groupby("split")[label].agg(["min", "max"]).to_numpy() == [0, 1]).all(), label

    table = pd.read_csv(results / "tables" / "privacy_utility.csv")
    assert table["dataset"].tolist() == ["nih", "nih"] and table["auroc_mean"].notna().all()
    summary = pd.read_csv(results / "datasets" / "nih" / "summary.csv")
    assert (summary["variable"] == "finding dropped").any()
