"""Every adapter, from files in its dataset's real on-disk format through the manifest and the MONAI cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers.exports import (
    HOSPITAL_FINDINGS,
    hospital_options,
    nih_lines,
    write_chexpert,
    write_dicom,
    write_hospital,
    write_medmnist,
    write_mimic,
    write_msd,
    write_nih,
    write_vindr,
)

from privfair.core.errors import ConfigError
from privfair.data.adapters import ADAPTERS, get_adapter
from privfair.data.adapters.vindr_cxr import dicom_age
from privfair.data.cache import CachedImages
from privfair.data.ingest import ingest
from privfair.data.preprocess import build_cache
from privfair.data.split import split_patients

RADIOGRAPH = {"spatial_size": [16, 16], "cache_dtype": "uint8"}
SCHEMA = Path(__file__).resolve().parents[3] / "config" / "schema.yaml"


def cache_of(manifest, tmp_path, options=RADIOGRAPH):
    build_cache(manifest, options, tmp_path / "cache.npy", tmp_path / "cache.parquet")
    cache = np.load(tmp_path / "cache.npy", mmap_mode="r")
    assert cache.shape == (len(manifest), 1, *options["spatial_size"])
    assert pd.read_parquet(tmp_path / "cache.parquet")["cache_index"].tolist() == list(range(len(manifest)))
    return cache


def test_nih_cxr14_from_pngs_with_the_official_split(tmp_path):
    lines = nih_lines(n_per_finding=1, max_images=2)
    test_patients = {lines[1].split(",")[3]}
    root = write_nih(tmp_path / "nih", lines, test_patients=test_patients)
    manifest, dropped = ingest("nih_cxr14", root, {})
    assert len(manifest) == len(lines) - 1 and dropped.empty
    assert set(manifest.loc[manifest["patient_id"].isin(test_patients), "official_split"]) == {"test"}
    first = lines[1].split(",")
    row = manifest.iloc[0]
    assert (row["image_id"], row["patient_id"], row["age"], row["sex"], row["view"]) == (
        first[0].removesuffix(".png"),
        first[3],
        float(first[4]),
        first[5],
        first[6],
    )
    for finding in first[1].split("|"):
        assert row[f"label_{finding.lower()}"] == 1
    cache = cache_of(manifest, tmp_path)
    assert cache.dtype == np.uint8 and cache.max() > 200  # scaled to [0, 1], stored as 0-255


def test_chexpert_uncertainty_policies_frontal_only_and_patient_from_path(tmp_path):
    root = write_chexpert(tmp_path / "CheXpert-v1.0-small")
    table = pd.read_csv(root / "train.csv")
    manifest, _ = ingest("chexpert", root, {"uncertain": "ignore", "blank": "zeros", "frontal_only": True})
    assert (manifest["view"] == "PA").all() and len(manifest) == 16  # 12 + 4 patients, frontal views only
    train = manifest[manifest["official_split"] == "train"].reset_index(drop=True)
    frontal = table[table["Frontal/Lateral"] == "Frontal"].reset_index(drop=True)
    source = frontal["Cardiomegaly"]
    labels = train["label_cardiomegaly"]
    assert labels[source == -1].isna().all() and (labels[source.isna()] == 0).all()
    assert (labels[source == 1] == 1).all() and (labels[source == 0] == 0).all()
    assert train["patient_id"].tolist() == frontal["Path"].str.extract(r"(patient\d+)")[0].tolist()
    assert set(manifest.loc[manifest["official_split"] == "test", "patient_id"]) == {
        f"patient{p:05d}" for p in range(12, 16)
    }
    ones, _ = ingest("chexpert", root, {"uncertain": "ones", "blank": "ignore"})
    assert len(ones) == 32
    both = ones[ones["view"] != "LL"].reset_index(drop=True)
    assert (both.loc[:11, "label_cardiomegaly"][source.to_numpy() == -1] == 1).all()
    assert both.loc[:11, "label_cardiomegaly"][source.isna().to_numpy()].isna().all()
    cache_of(manifest, tmp_path)  # colour JPEGs become one channel


@pytest.mark.parametrize("with_patients", [True, False])
def test_mimic_cxr_jpg_paths_splits_and_age_at_study(tmp_path, with_patients, capsys):
    root = write_mimic(tmp_path / "mimic", with_patients=with_patients)
    options = {"frontal_only": True, **({"patients_table": "patients.csv.gz"} if with_patients else {})}
    manifest, _ = ingest("mimic_cxr_jpg", root, options)
    assert len(manifest) == 16 and (manifest["view"] == "PA").all()
    assert manifest.groupby("patient_id")["official_split"].nunique().max() == 1
    assert set(manifest["official_split"]) == {"train", "val", "test"}
    if with_patients:
        # anchor age 40 + i in 2150; the second study is one year later
        subject = manifest[manifest["patient_id"] == "10000003"].sort_values("study_id")
        assert subject["age"].tolist() == [43.0, 44.0] and set(subject["sex"]) == {"M"}
    else:
        assert manifest["age"].isna().all() and manifest["sex"].isna().all()
        assert "age and sex are unknown" in capsys.readouterr().out
    cache_of(manifest, tmp_path)


def test_vindr_cxr_dicom_demographics_votes_and_inversion(tmp_path):
    root = write_vindr(tmp_path / "vindr")
    manifest, _ = ingest("vindr_cxr", root, {"rater_vote": "majority"})
    train = manifest[manifest["official_split"] == "train"].set_index("image_id")
    assert train["label_aortic_enlargement"].tolist() == [0, 0, 1, 0, 0, 1]  # marked by 0, 1, 2, 0, 1, 2 of 3
    assert train["label_pleural_effusion"].sum() == 0  # one radiologist of three is no majority
    anyone, _ = ingest("vindr_cxr", root, {"rater_vote": "any"})
    assert anyone.query("official_split == 'train'")["label_aortic_enlargement"].tolist() == [0, 1, 1, 0, 1, 1]
    assert anyone.query("official_split == 'train'")["label_pleural_effusion"].tolist() == [1, 0, 1, 0, 1, 0]
    assert train["age"].tolist() == [40.0, 41.0, 42.0, 43.0, 44.0, 45.0] and train["sex"].tolist() == list("FMFMFM")
    assert dicom_age("006M") == 0.5 and np.isnan(dicom_age("")) and np.isnan(dicom_age("45"))
    cache_of(manifest, tmp_path)


def test_dicom_monochrome1_is_inverted_and_windowed(tmp_path):
    pixels = np.full((32, 32), 3000, np.uint16)
    pixels[:16] = 500  # low values: bright in MONOCHROME1
    pixels[:4] = 20  # below the window: clipped to its lower end
    paths = [
        write_dicom(tmp_path / f"{kind}.dcm", pixels, kind, WindowCenter=1750, WindowWidth=2500)
        for kind in ("MONOCHROME1", "MONOCHROME2")
    ]
    manifest = pd.DataFrame({"path": [str(p) for p in paths]})
    cache = cache_of(manifest, tmp_path, {"spatial_size": [32, 32], "cache_dtype": "float32"})
    inverted, plain = cache[0, 0], cache[1, 0]
    assert inverted[8, 0] > 0.9 and inverted[24, 0] < 0.1 and plain[8, 0] < 0.1 and plain[24, 0] > 0.9
    assert inverted[0, 0] == inverted[8, 0]  # windowed: 20 and 500 both lie at or below the window's lower end


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_hospital_manifest_with_graded_labels(tmp_path, suffix):
    root = write_hospital(tmp_path / "hospital", suffix=suffix)
    manifest, _ = ingest("manifest", root, hospital_options(f"export{suffix}"))
    export = pd.read_csv(root / "export.csv") if suffix == ".csv" else pd.read_parquet(root / "export.parquet")
    for finding in HOSPITAL_FINDINGS:
        assert manifest[f"label_{finding}"].tolist() == export[f"{finding}_grade"].isin([3, 4]).astype(int).tolist()
    assert manifest["sex"].tolist() == ["F" if s == "w" else "M" for s in export["geschlecht"]]
    assert "official_split" not in manifest
    cache_of(manifest, tmp_path, {**RADIOGRAPH, "histogram_equalize": True})


def test_msd_pancreas_is_positive_when_the_label_map_has_the_tumour_class(tmp_path):
    root = write_msd(tmp_path / "Task07_Pancreas")
    manifest, _ = ingest("msd_pancreas", root, {})
    assert manifest["label_tumour"].tolist() == [0, 1, 0, 1, 0, 1]
    assert manifest["age"].isna().all() and manifest["sex"].isna().all()
    ct = {"spatial_size": [8, 8, 8], "pixdim": [3.0, 3.0, 3.0], "hu_window": [-150, 250], "cache_dtype": "float16"}
    cache_of(manifest, tmp_path, ct)


@pytest.mark.parametrize(
    "shape, spatial_size", [((28, 28), [16, 16]), ((28, 28, 3), [16, 16]), ((12, 12, 12), [8, 8, 8])]
)
def test_medmnist_2d_colour_and_3d_without_demographics_through_split_and_cache(tmp_path, shape, spatial_size):
    root = write_medmnist(tmp_path / "medmnist", shape=shape, n_classes=3)
    manifest, _ = ingest("medmnist", root, {"file": "set.npz", "labels": ["a", "b", "c"]})
    assert len(manifest) == 18 and manifest["age"].isna().all() and manifest["sex"].isna().all()
    assert (manifest[["label_a", "label_b", "label_c"]].sum(axis=1) == 1).all()  # one-vs-rest columns
    split = split_patients(manifest, {"train": 0.6, "val": 0.2, "test": 0.2}, seed=0)
    assert (split["split"] == split["official_split"]).all()
    build_cache(
        manifest, {"spatial_size": spatial_size, "cache_dtype": "uint8"}, tmp_path / "c.npy", tmp_path / "c.parquet"
    )
    images = CachedImages(tmp_path / "c.npy", pd.read_parquet(tmp_path / "c.parquet").assign(split="train"), "train")
    image, label = images[0]
    assert image.shape == (1, *spatial_size) and 0.0 <= image.min() and image.max() <= 1.0
    assert label.tolist() == [1.0, 0.0, 0.0]


def test_the_registry_and_the_schema_list_the_same_adapters():
    schema = yaml.safe_load(SCHEMA.read_text())
    source = schema["$defs"]["dataset"]["properties"]["source"]
    assert sorted(source["properties"]["adapter"]["enum"]) == sorted(ADAPTERS)
    branches = {branch["if"]["properties"]["adapter"]["const"]: branch["then"]["$ref"] for branch in source["allOf"]}
    assert branches == {name: f"#/$defs/source_{name}" for name in ADAPTERS}
    for name, adapter in ADAPTERS.items():
        own = schema["$defs"][f"source_{name}"]
        assert adapter.name == name and own["properties"]["adapter"] == {"const": name}
        assert own["additionalProperties"] is False and "adapter" in own["required"]
        assert (adapter.generate is not None) == ("synthetic" in own["required"])  # generated <=> has settings for it


def test_an_unknown_adapter_is_named_with_the_known_ones():
    assert get_adapter("synth_ct") is ADAPTERS["synth_ct"]
    with pytest.raises(ConfigError, match=r"source\.adapter: unknown adapter 'nih'; known: \['chexpert'"):
        get_adapter("nih")
