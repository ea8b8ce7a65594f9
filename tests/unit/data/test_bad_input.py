"""Bad input is never silent: each case fails with the file and rows named (first few and a count) and leaves no
output, or, where source.on_invalid asks for it, the rows are dropped and counted."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers.exports import hospital_options, nih_lines, rewrite_table, write_chexpert, write_hospital, write_nih

from privfair.core.errors import ManifestError
from privfair.data.ingest import ingest
from privfair.data.preprocess import build_cache
from privfair.data.split import split_patients
from privfair.data.summary import summary_table


@pytest.fixture
def nih(tmp_path):
    """A small NIH-layout dataset from real rows of the label table (45 images)."""
    return write_nih(tmp_path / "nih", nih_lines(n_per_finding=3, max_images=2)[:46], size=16)


def edit_table(root, line: int, column: int, value: str) -> None:
    """Set field ``column`` of file line ``line`` (1 = header) of the NIH table."""
    path = root / "Data_Entry_2017_v2020.csv"
    lines = path.read_text().splitlines()
    fields = lines[line - 1].split(",")
    fields[column] = value
    lines[line - 1] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")


def test_a_corrupt_or_missing_image_fails_preprocessing_naming_each_file_and_leaves_no_cache(nih, tmp_path):
    manifest, _ = ingest("nih_cxr14", nih, {})
    (nih / "images_001" / "images" / f"{manifest.at[3, 'image_id']}.png").write_bytes(b"\x89PNG truncated")
    for i in (5, 6, 7):
        (nih / "images_001" / "images" / f"{manifest.at[i, 'image_id']}.png").unlink()
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ManifestError) as error:
        build_cache(
            manifest, {"spatial_size": [8, 8], "cache_dtype": "uint8"}, out / "cache.npy", out / "cache.parquet"
        )
    message = str(error.value)
    assert message.startswith("4 of 45 image(s) could not be preprocessed")
    assert f"{manifest.at[3, 'image_id']}.png: cannot preprocess image: UnidentifiedImageError" in message
    assert f"{manifest.at[5, 'image_id']}.png" in message and "and 1 more" in message
    assert list(out.iterdir()) == []


def test_a_missing_image_fails_ingest_naming_table_lines_or_is_dropped_and_counted(nih):
    names = [line.split(",")[0] for line in (nih / "Data_Entry_2017_v2020.csv").read_text().splitlines()[1:]]
    for name in names[:7]:
        (nih / "images_001" / "images" / name).unlink()
    with pytest.raises(
        ManifestError,
        match=r"Data_Entry_2017_v2020\.csv: image file not found in 7 row\(s\), "
        r"line\(s\) 2 \('\(not in the image folders\)'\), 3 .* and 2 more",
    ):
        ingest("nih_cxr14", nih, {})
    manifest, dropped = ingest("nih_cxr14", nih, {"on_invalid": {"missing_image": "drop"}})
    assert len(manifest) == 38 and not set(names[:7]) & set(manifest["image_id"] + ".png")
    assert dropped[["check", "rows"]].values.tolist() == [["missing_image", 7]]
    manifest["split"] = np.where(np.arange(len(manifest)) % 2, "train", "test")
    summary = summary_table(manifest, dropped)
    assert summary.query("variable == 'dropped' and statistic == 'missing_image'")["value"].item() == 7


def test_a_label_outside_the_codes_names_file_line_and_value(tmp_path):
    root = write_chexpert(tmp_path / "CheXpert-v1.0-small")
    table = pd.read_csv(root / "train.csv")
    table.loc[4, "Edema"] = 2
    table.to_csv(root / "train.csv", index=False)
    with pytest.raises(
        ManifestError,
        match=r"train\.csv: label value outside the codes \(1, 0, -1, blank\) in "
        r"1 row\(s\), line\(s\) 6 \('Edema=2\.0'\)",
    ):
        ingest("chexpert", root, {})


def test_an_unknown_finding_name_is_refused(nih):
    edit_table(nih, 4, 1, "Cardiomegaly|Dragons")
    with pytest.raises(
        ManifestError,
        match=r"'Finding Labels' not a .* in 1 row\(s\), line\(s\) 4 "
        r"\('Cardiomegaly\|Dragons'\)",
    ):
        ingest("nih_cxr14", nih, {})


def test_an_unknown_sex_code_is_refused_dropped_or_kept_as_unknown(nih):
    edit_table(nih, 9, 5, "X")
    edit_table(nih, 12, 5, "")
    with pytest.raises(ManifestError, match=r"sex code not in \['f', 'm'\] in 2 row\(s\), line\(s\) 9 \('X'\), 12"):
        ingest("nih_cxr14", nih, {})
    dropped, counts = ingest("nih_cxr14", nih, {"on_invalid": {"sex": "drop"}})
    assert len(dropped) == 43 and counts["rows"].tolist() == [2]
    kept, records = ingest("nih_cxr14", nih, {"on_invalid": {"sex": "unknown"}})
    assert len(kept) == 45 and kept["sex"].isna().sum() == 2
    assert records[["check", "action", "rows", "first_lines"]].values.tolist() == [
        ["sex", "kept as unknown", 2, "9, 12"]
    ]


@pytest.mark.parametrize("age", ["", "150", "-3", "abc"])
def test_a_missing_or_impossible_age_is_refused(nih, age):
    edit_table(nih, 7, 4, age)
    with pytest.raises(ManifestError, match=r"missing or impossible age \(outside 0-120\) in 1 row\(s\), line\(s\) 7"):
        ingest("nih_cxr14", nih, {})
    kept, _ = ingest("nih_cxr14", nih, {"on_invalid": {"age": "unknown"}})
    assert np.isnan(kept.at[5, "age"])  # line 7 is row 5


def test_a_duplicate_image_id_is_refused(nih):
    path = nih / "Data_Entry_2017_v2020.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines, lines[3], lines[5]]) + "\n")
    duplicate = lines[3].split(",")[0].removesuffix(".png")
    with pytest.raises(ManifestError, match=rf"nih: 2 duplicate image_id\(s\): {duplicate}"):
        ingest("nih_cxr14", nih, {})


def test_a_patient_in_two_official_splits_is_refused(tmp_path):
    lines = nih_lines(n_per_finding=2, max_images=2)[:30]
    root = write_nih(tmp_path / "nih", lines, size=16, test_patients=set())
    patient_images = [line.split(",")[0] for line in lines[1:] if line.split(",")[3] == lines[1].split(",")[3]]
    assert len(patient_images) == 2
    train = (root / "train_val_list.txt").read_text().split()
    (root / "train_val_list.txt").write_text("\n".join(n for n in train if n != patient_images[1]))
    (root / "test_list.txt").write_text(patient_images[1])
    patient = lines[1].split(",")[3]
    with pytest.raises(
        ManifestError, match=rf"1 patient\(s\) in more than one official split: {patient} \(test, train\)"
    ):
        ingest("nih_cxr14", root, {})
    manifest, _ = ingest("nih_cxr14", root, {"official_split": False})
    assert "official_split" not in manifest
    manifest["official_split"] = np.where(manifest["image_id"] + ".png" == patient_images[1], "test", "train")
    with pytest.raises(ManifestError, match="more than one official split"):
        split_patients(manifest, {"train": 0.6, "val": 0.2, "test": 0.2}, seed=0)


def test_lines_are_numbered_as_the_file_numbers_them_blank_lines_and_multi_line_cells_included(nih, tmp_path):
    path = nih / "Data_Entry_2017_v2020.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines[:3], "", *lines[3:]]) + "\n")  # line 4 is blank
    edit_table(nih, 9, 5, "X")
    with pytest.raises(ManifestError, match=r"sex code not in \['f', 'm'\] in 1 row\(s\), line\(s\) 9 \('X'\) "):
        ingest("nih_cxr14", nih, {})

    hospital = write_hospital(tmp_path / "hospital")
    notes = ["first line\nsecond line"] + [""] * 19  # the first row spans lines 2 and 3
    rewrite_table(hospital / "export.csv", lambda t: t.assign(note=notes, alter=t["alter"].mask(t.index == 2, "200")))
    with pytest.raises(ManifestError, match=r"impossible age \(outside 0-120\) in 1 row\(s\), line\(s\) 5 \('200'\)"):
        ingest("manifest", hospital, hospital_options())


def test_a_failed_preprocess_step_ends_with_one_line_and_leaves_no_file(nih, tmp_path, run_step_script):
    manifest, _ = ingest("nih_cxr14", nih, {})
    broken = manifest.at[7, "path"]
    with open(broken, "r+b") as file:
        file.truncate(40)
    manifest.to_parquet(tmp_path / "manifest.parquet")
    out = tmp_path / "out"
    out.mkdir()
    status, log = run_step_script(
        "preprocess",
        [tmp_path / "manifest.parquet"],
        {"cache": out / "cache.npy", "manifest": out / "cache.parquet"},
        threads=2,  # one MONAI worker, which dies with the step
        preprocess={"spatial_size": [8, 8], "cache_dtype": "float16"},
    )
    message = (
        f"privfair: 1 of 45 image(s) could not be preprocessed: {broken}: cannot preprocess image: "
        f"UnidentifiedImageError: cannot identify image file '{broken}'"
    )
    assert status == 1 and log == [message]  # the log holds the one line, and nothing partial is left
    assert list(out.iterdir()) == []
