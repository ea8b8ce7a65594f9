"""Ingest -> patient-level split -> MONAI cache, on small exports written by the tests themselves."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from privfair.core.errors import ConfigError, ManifestError
from privfair.data.adapters.synthetic import SYNTH_CXR_FINDINGS
from privfair.data.cache import load_splits
from privfair.data.ingest import ingest
from privfair.data.manifest import assert_patient_level
from privfair.data.preprocess import build_cache, build_transforms
from privfair.data.split import split_patients

FRACTIONS = {"train": 0.6, "val": 0.2, "test": 0.2}


def write_cxr_export(root, n_patients=20, size=40, seed=0):
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    rows = []
    for p in range(n_patients):
        for s in range(1 + p % 3):
            name = f"images/P{p:03d}_S{s}.png"
            Image.fromarray(rng.integers(0, 255, (size, size + 8), dtype=np.uint8)).save(root / name)
            grades = {f: int((p + s + i) % 5) for i, f in enumerate(SYNTH_CXR_FINDINGS)}
            rows.append(
                {
                    "PatientID": f"P{p:03d}",
                    "StudyID": f"S{p:03d}{s}",
                    "ImageFile": name,
                    "PatientAge": 20 + 3 * p,
                    "PatientSex": "FM"[p % 2],
                    "ViewPosition": "PA",
                    **grades,
                }
            )
    pd.DataFrame(rows).to_csv(root / "metadata.csv", index=False)
    return root


@pytest.fixture
def cxr_export(tmp_path):
    return write_cxr_export(tmp_path / "raw")


def test_ingest_binarises_grades_and_counts_comorbidity(cxr_export):
    manifest = ingest("synth_cxr", cxr_export, {"positive_grades": [3, 4]})[0]
    export = pd.read_csv(cxr_export / "metadata.csv")
    assert len(manifest) == len(export)
    for finding in SYNTH_CXR_FINDINGS:
        assert (manifest[f"label_{finding}"] == export[finding].isin([3, 4]).astype(int)).all()
    assert (manifest["comorbidity"] == manifest.filter(like="label_").sum(axis=1)).all()
    assert manifest["path"].map(lambda p: p.startswith("/")).all()


def test_ingest_names_file_and_row_of_a_bad_grade(cxr_export):
    export = pd.read_csv(cxr_export / "metadata.csv")
    export.loc[3, "nodule"] = 7
    export.to_csv(cxr_export / "metadata.csv", index=False)
    with pytest.raises(ManifestError, match=r"metadata\.csv: line 5, column 'nodule'"):
        ingest("synth_cxr", cxr_export, {"positive_grades": [3, 4]})


def test_ingest_refuses_a_missing_image_instead_of_skipping_it(cxr_export):
    (cxr_export / "images" / "P001_S1.png").unlink()
    with pytest.raises(ManifestError, match="missing image .*P001_S1.png"):
        ingest("synth_cxr", cxr_export, {"positive_grades": [3, 4]})


def test_ingest_names_missing_columns_and_unknown_adapters(cxr_export):
    pd.read_csv(cxr_export / "metadata.csv").drop(columns="PatientSex").to_csv(cxr_export / "metadata.csv", index=False)
    with pytest.raises(ManifestError, match="PatientSex"):
        ingest("synth_cxr", cxr_export, {"positive_grades": [3, 4]})
    with pytest.raises(ConfigError, match="source.adapter"):
        ingest("nope", cxr_export, {})


def test_split_keeps_patients_whole_and_is_seeded(cxr_export):
    manifest = ingest("synth_cxr", cxr_export, {"positive_grades": [3, 4]})[0]
    split = split_patients(manifest, FRACTIONS, seed=3)
    assert (split.groupby("patient_id")["split"].nunique() == 1).all()
    assert split["split"].value_counts()["train"] > split["split"].value_counts()["test"]
    shuffled = split_patients(manifest.sample(frac=1, random_state=1), FRACTIONS, seed=3)
    assert (
        shuffled.set_index("image_id")["split"].sort_index().equals(split.set_index("image_id")["split"].sort_index())
    )
    assert not split_patients(manifest, FRACTIONS, seed=4)["split"].equals(split["split"])


def test_a_leaking_manifest_fails_loudly(cxr_export):
    split = split_patients(ingest("synth_cxr", cxr_export, {"positive_grades": [3, 4]})[0], FRACTIONS, seed=0)
    patient = split.loc[split["split"] == "test", "patient_id"].iloc[0]
    split.loc[split.index[split["patient_id"] == patient][0], "split"] = "train"
    with pytest.raises(ManifestError, match=rf"1 patient\(s\) appear in more than one split: {patient}"):
        assert_patient_level(split, "split.parquet")


def test_split_refuses_a_split_without_both_classes(cxr_export):
    manifest = ingest("synth_cxr", cxr_export, {"positive_grades": [3, 4]})[0]
    manifest["label_nodule"] = 0
    with pytest.raises(ManifestError, match=r"fewer than two classes \[0\] for 'label_nodule'"):
        split_patients(manifest, FRACTIONS, seed=0)
    with pytest.raises(ConfigError, match="fractions"):
        split_patients(manifest, {"train": 0.5, "val": 0.2, "test": 0.2}, seed=0)


def test_radiograph_cache_is_resized_scaled_and_memory_mapped(cxr_export, tmp_path):
    manifest = ingest("synth_cxr", cxr_export, {"positive_grades": [3, 4]})[0]
    cache, cache_manifest, split_path = tmp_path / "cache.npy", tmp_path / "cache.parquet", tmp_path / "split.parquet"
    build_cache(manifest, {"spatial_size": [16, 16], "cache_dtype": "float16"}, cache, cache_manifest)
    array = np.load(cache, mmap_mode="r")
    assert isinstance(array, np.memmap) and array.shape == (len(manifest), 1, 16, 16) and array.dtype == np.float16
    assert array.min() >= 0 and array.max() <= 1 and array.max() > 0.5
    # The split is joined at load time, so a new split reuses the cache.
    split_patients(manifest, FRACTIONS, seed=0).to_parquet(split_path)
    table, data = load_splits(cache, cache_manifest, split_path)
    image, label = data["test"][0]
    assert image.shape == (1, 16, 16) and label.shape == (len(SYNTH_CXR_FINDINGS),)
    row = data["test"].rows.iloc[0]
    expected = build_transforms({"spatial_size": [16, 16]})(row["path"])  # same image, transformed afresh
    assert np.allclose(image.numpy(), np.asarray(expected), atol=1e-3)
    assert set(table["split"]) == {"train", "val", "test"}


def test_ct_cache_resamples_windows_and_crops(tmp_path):
    paths = []
    for i, spacing in enumerate([(2.0, 2.0, 2.0), (1.0, 1.0, 4.0)]):
        hu = np.full((20, 20, 10), -1000, np.int16)
        hu[5:15, 5:15, 3:7] = 40
        path = tmp_path / f"v{i}.nii.gz"
        nib.save(nib.Nifti1Image(hu, np.diag([*spacing, 1.0])), path)
        paths.append(str(path))
    split = pd.DataFrame({"path": paths, "image_id": ["a", "b"], "split": ["train", "test"]})
    options = {
        "spatial_size": [12, 12, 8],
        "pixdim": [2.0, 2.0, 2.0],
        "hu_window": [-150, 250],
        "cache_dtype": "float32",
    }
    build_cache(split, options, tmp_path / "c.npy", tmp_path / "c.parquet")
    array = np.load(tmp_path / "c.npy")
    assert array.shape == (2, 1, 12, 12, 8)
    assert array.min() == 0.0 and array.max() == pytest.approx((40 + 150) / 400, abs=0.02)
    # After resampling to 2 mm, the 20 x 20 mm soft-tissue box spans ~10 voxels in-plane at both spacings.
    for volume, in_plane in zip(array[:, 0], (10, 5)):
        assert abs((volume.max(axis=(1, 2)) > 0.3).sum() - in_plane) <= 1


def test_an_unreadable_image_is_named(cxr_export, tmp_path):
    split = split_patients(ingest("synth_cxr", cxr_export, {"positive_grades": [3, 4]})[0], FRACTIONS, seed=0)
    broken = split["path"].iloc[2]
    Path(broken).write_bytes(b"not a png")
    with pytest.raises(ManifestError, match=broken) as error:  # raised in a worker, reported by the main process
        build_cache(
            split,
            {"spatial_size": [16, 16], "cache_dtype": "float16"},
            tmp_path / "c.npy",
            tmp_path / "c.parquet",
            num_workers=1,
        )
    assert "\n" not in str(error.value)


def test_radiographs_stay_upright_in_the_cache(tmp_path):
    pixels = np.zeros((40, 30), np.uint8)
    pixels[:10] = 255  # a bright band at the top (e.g. the apices)
    Image.fromarray(pixels).save(tmp_path / "a.png")
    split = pd.DataFrame({"path": [str(tmp_path / "a.png")], "image_id": ["a"], "split": ["train"]})
    build_cache(split, {"spatial_size": [8, 8], "cache_dtype": "float32"}, tmp_path / "c.npy", tmp_path / "c.parquet")
    image = np.load(tmp_path / "c.npy")[0, 0]
    assert image[0].min() > 0.9 and image[-1].max() < 0.1


def test_an_official_split_is_honoured_and_validation_patients_come_from_official_training(cxr_export):
    manifest = ingest("synth_cxr", cxr_export, {"positive_grades": [3, 4]})[0]
    official_test = set(manifest["patient_id"].unique()[::4])
    manifest["official_split"] = np.where(manifest["patient_id"].isin(official_test), "test", "train")
    fractions = {"train": 0.45, "val": 0.15, "test": 0.4}  # the test fraction is the official one's, not 0.4
    split = split_patients(manifest, fractions, seed=0)
    assert set(split.loc[split["split"] == "test", "patient_id"]) == official_test
    val = set(split.loc[split["split"] == "val", "patient_id"])
    assert len(val) == round(0.25 * (manifest["patient_id"].nunique() - len(official_test)))  # val / (train + val)
    assert split_patients(manifest, fractions, seed=0)["split"].equals(split["split"])
    assert not split_patients(manifest, fractions, seed=3)["split"].equals(split["split"])
