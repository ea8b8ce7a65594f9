"""Identity and integrity of the data stage: no silent wrong answer, and each refusal is one line that names the file
and its line (or key), with no output and no ``.partial-*`` file left behind."""

from __future__ import annotations

import ctypes
import errno
import io
import json
import os
import shutil
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from helpers.exports import (
    hospital_options,
    nih_lines,
    rewrite_table,
    write_chexpert,
    write_dicom,
    write_hospital,
    write_msd,
    write_nih,
    write_volume,
)
from PIL import Image

from privfair.core.errors import ManifestError, NoSpaceError
from privfair.data import preprocess
from privfair.data.ingest import ingest
from privfair.data.preprocess import build_cache

RADIOGRAPH = {"spatial_size": [8, 8], "cache_dtype": "uint8"}
CT = {"spatial_size": [8, 8, 4], "pixdim": [3.0, 3.0, 6.0], "hu_window": [-150, 250]}


@pytest.fixture
def hospital(tmp_path):
    return write_hospital(tmp_path / "hospital")


@pytest.fixture
def refused(tmp_path, run_step_script):
    """``refused(adapter, root, options)`` runs the ingest step, checks that it failed with one line and left no
    file in its output folder, and returns that line."""

    def run(adapter: str, root, options: dict) -> str:
        out = tmp_path / "results"
        out.mkdir(exist_ok=True)
        status, log = run_step_script(
            "ingest",
            [root],
            {"manifest": out / "manifest.parquet", "dropped": out / "dropped.csv"},
            source={"adapter": adapter, **options},
        )
        assert status == 1 and log[-1].startswith("privfair: "), log
        assert list(out.iterdir()) == []  # no output, no .partial-*
        return log[-1]

    return run


def cache_files(tmp_path):
    out = tmp_path / "cache"
    out.mkdir(exist_ok=True)
    return out, out / "cache.npy", out / "cache.parquet"


def test_ids_stay_as_exported_so_that_01_and_001_are_two_patients(hospital, tmp_path):
    ids = ["01", "01", "001", "001", "1", "1", "0001", "0001"]
    rewrite_table(hospital / "export.csv", lambda t: t.assign(pid=ids + t["pid"].tolist()[len(ids) :]))
    manifest, _ = ingest("manifest", hospital, hospital_options())
    assert manifest["patient_id"].tolist()[: len(ids)] == ids
    assert manifest["patient_id"].nunique() == 10

    lines = nih_lines(n_per_finding=1, max_images=1)[:5]
    for line, patient in zip(range(1, 5), ("01", "001", "1", "0001")):
        fields = lines[line].split(",")
        fields[3] = patient
        lines[line] = ",".join(fields)
    nih, _ = ingest("nih_cxr14", write_nih(tmp_path / "nih", lines, size=8), {})
    assert nih["patient_id"].tolist() == ["01", "001", "1", "0001"]


@pytest.mark.parametrize("how", ["absolute path", "symlink"])
def test_one_file_listed_as_two_images_is_refused_naming_the_file_and_both_lines(hospital, refused, how):
    file = hospital / "png" / "0000_0.png"
    if how == "symlink":
        (hospital / "link").symlink_to(hospital / "png")
        listed = "link/0000_0.png"
    else:
        listed = str(file)
    rewrite_table(hospital / "export.csv", lambda t: t.assign(file=t["file"].mask(t.index == 3, listed)))
    message = refused("manifest", hospital, hospital_options())
    table = hospital / "export.csv"
    assert "1 image file(s) listed more than once" in message
    assert f"{file.resolve()} at {table}: line 2 (image_id png/0000_0, patient P0000) and {table}: line 5 " in message
    assert "patient P0001)" in message


@pytest.mark.parametrize(
    "header, named",
    [
        ("file,pid,alter,alter", "column 'alter' appears twice (columns 3 and 4)"),
        ("file,pid,Alter ,alter", "column 'alter' (column 4) and 'Alter ' (column 3) differ only in case or spaces"),
    ],
)
def test_a_duplicated_or_ambiguous_header_is_refused_naming_the_file_and_the_header(hospital, refused, header, named):
    table = hospital / "export.csv"
    lines = table.read_text().splitlines()
    lines[0] = lines[0].replace("file,pid,exam,alter", header)
    table.write_text("\n".join(lines) + "\n")
    assert refused("manifest", hospital, hospital_options()) == f"privfair: {table}: header: {named}; rename one"


def test_an_ambiguous_parquet_header_and_a_duplicated_nih_header_are_refused(tmp_path, hospital):
    table = pd.read_csv(hospital / "export.csv")
    table.assign(ALTER=table["alter"]).to_parquet(hospital / "export.parquet", index=False)
    with pytest.raises(
        ManifestError, match=r"export\.parquet: header: column 'ALTER' \(column 14\) and 'alter' \(column 4\) differ"
    ):
        ingest("manifest", hospital, hospital_options("export.parquet"))

    lines = nih_lines(n_per_finding=1, max_images=1)[:4]
    lines[0] = lines[0].replace("Follow-up #", "Patient Age")
    nih = write_nih(tmp_path / "nih", lines, size=8)
    with pytest.raises(ManifestError, match=r"header: column 'Patient Age' appears twice \(columns 3 and 5\)"):
        ingest("nih_cxr14", nih, {})


def test_a_path_outside_the_dataset_folder_is_refused_unless_allowed(hospital, tmp_path, refused):
    for name in ("elsewhere.png", "absolute.png"):
        shutil.copy(hospital / "png" / "0000_0.png", tmp_path / name)
    outside = {2: "../elsewhere.png", 3: str(tmp_path / "absolute.png")}
    rewrite_table(hospital / "export.csv", lambda t: t.assign(file=[outside.get(i, f) for i, f in t["file"].items()]))
    message = refused("manifest", hospital, hospital_options())
    assert message == (
        f"privfair: {hospital / 'export.csv'}: image path(s) outside the dataset folder {hospital} in 2 row(s), "
        f"line(s) 4 ('../elsewhere.png'), 5 ('{tmp_path / 'absolute.png'}') (or set source.allow_outside_root: true)"
    )
    manifest, _ = ingest("manifest", hospital, {**hospital_options(), "allow_outside_root": True})
    expected = [str((tmp_path / name).resolve()) for name in ("elsewhere.png", "absolute.png")]
    assert manifest.loc[[2, 3], "path"].tolist() == expected

    msd = write_msd(tmp_path / "Task07_Pancreas", n_cases=3)
    description = json.loads((msd / "dataset.json").read_text())
    description["training"][1]["image"] = "../../etc/passwd"
    (msd / "dataset.json").write_text(json.dumps(description))
    assert refused("msd_pancreas", msd, {}).endswith(
        "in 1 row(s), training[1] ('../../etc/passwd') (or set source.allow_outside_root: true)"
    )


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_blank_label_cell_names_file_line_and_column_and_is_never_nan(tmp_path, suffix, refused):
    root = write_hospital(tmp_path / "hospital", suffix=suffix)
    table = root / f"export{suffix}"
    blank = None if suffix == ".parquet" else ""
    rewrite_table(table, lambda t: t.assign(cardiomegaly_grade=t["cardiomegaly_grade"].mask(t.index == 2, blank)))
    message = refused("manifest", root, hospital_options(table.name))
    assert message == (
        f"privfair: {table}: label value outside the codes (0, 1, 2, 3, 4) in 1 row(s), line(s) 4 "
        "('cardiomegaly_grade=(blank)') (or set source.on_invalid.label_code: drop)"
    )
    manifest, dropped = ingest("manifest", root, {**hospital_options(table.name), "on_invalid": {"label_code": "drop"}})
    assert len(manifest) == 19 and dropped["first_lines"].tolist() == ["4"]


def test_a_blank_id_is_named_by_its_line_never_kept_as_nan(hospital, refused):
    rewrite_table(hospital / "export.csv", lambda t: t.assign(pid=t["pid"].mask(t.index == 4, "")))
    message = refused("manifest", hospital, hospital_options())
    assert message == f"privfair: {hospital}: empty 'patient_id' at {hospital / 'export.csv'}: line 6"


@pytest.mark.parametrize("cache_dtype", ["uint8", "float16"])
def test_non_finite_voxels_are_an_error_naming_the_files_or_replaced_and_counted(tmp_path, cache_dtype, capsys):
    hu = np.full((16, 16, 8), -1000, np.float32)
    hu[4:12, 4:12, 2:6] = 40
    bad = hu.copy()
    bad[0, 0, 0], bad[1, 1, 1] = np.nan, np.inf
    paths = [write_volume(tmp_path / f"v{i}.nii.gz", volume) for i, volume in enumerate((hu, bad))]
    manifest = pd.DataFrame({"path": [str(p) for p in paths], "image_id": ["a", "b"]})
    out, cache, cache_manifest = cache_files(tmp_path)
    options = {**CT, "cache_dtype": cache_dtype}
    with pytest.raises(ManifestError) as error:
        build_cache(manifest, options, cache, cache_manifest)
    assert str(error.value) == (
        f"1 of 2 image(s) could not be preprocessed: {paths[1]}: 2 of 2048 value(s) are not finite (NaN or Inf); "
        "or set preprocess.non_finite: zero to replace NaN/Inf by 0"
    )
    assert list(out.iterdir()) == []
    build_cache(manifest, {**options, "non_finite": "zero"}, cache, cache_manifest)
    array = np.load(cache).astype(np.float32)
    assert np.isfinite(array).all() and array[1].max() > 0.4  # the soft tissue survives the replacement
    assert f"replaced 2 NaN/Inf value(s) by 0 (preprocess.non_finite: zero) in 1 image(s): {paths[1]} (2)" in (
        capsys.readouterr().out
    )


def test_non_finite_pixels_of_a_2d_image_are_refused(tmp_path):
    images = np.random.default_rng(0).random((4, 12, 12)).astype(np.float32)
    images[2, 5, 5] = np.nan
    np.savez(
        tmp_path / "float.npz",
        **{f"{s}_images": images for s in ("train", "val", "test")},
        **{f"{s}_labels": np.array([[0], [1], [0], [1]]) for s in ("train", "val", "test")},
    )
    manifest, _ = ingest("medmnist", tmp_path, {"file": "float.npz", "labels": ["a"]})
    out, cache, cache_manifest = cache_files(tmp_path)
    with pytest.raises(ManifestError, match=r"3 of 12 image\(s\) .*float\.npz#train_images/2: 1 of 144 value"):
        build_cache(manifest, {**RADIOGRAPH, "cache_dtype": "float16"}, cache, cache_manifest)
    assert list(out.iterdir()) == []


@pytest.mark.parametrize(
    "text, named",
    [
        (
            '{"labels": {"2": "cancer"},\n "training": [\n  {"image": "a"}\n  {"image": "b"}]}',
            "line 4, column 3: invalid JSON: Expecting ',' delimiter",
        ),
        ('{"labels": {"2": "cancer"}, "numTraining": 0}', "key 'training' (the list of training volumes) is missing"),
        ('{"training": [{"image": "a", "label": "b"}, {"image": "c"}]}', "training[1]: key(s) ['label'] missing"),
        ('{"training": [], "training": []}', "cannot read: key(s) ['training'] appear twice in one object"),
    ],
)
def test_a_malformed_dataset_json_names_the_file_and_the_line_or_key(tmp_path, refused, text, named):
    root = tmp_path / "Task07_Pancreas"
    root.mkdir()
    (root / "dataset.json").write_text(text)
    assert refused("msd_pancreas", root, {}).startswith(f"privfair: {root / 'dataset.json'}: {named}")


def test_an_unsupported_image_format_is_named_with_the_supported_ones(hospital, tmp_path):
    Image.open(hospital / "png" / "0003_1.png").save(hospital / "png" / "0003_1.tif")
    rewrite_table(hospital / "export.csv", lambda t: t.assign(file=t["file"].str.replace("0003_1.png", "0003_1.tif")))
    manifest, _ = ingest("manifest", hospital, hospital_options())
    out, cache, cache_manifest = cache_files(tmp_path)
    with pytest.raises(ManifestError) as error:
        build_cache(manifest, RADIOGRAPH, cache, cache_manifest)
    assert str(error.value).startswith(
        f"1 of 20 image(s) have an unsupported image format: {(hospital / 'png' / '0003_1.tif').resolve()} (.tif); "
        "supported here: .png, .jpg, .jpeg, .bmp; DICOM (.dcm, .dicom, no suffix, or any file with the DICOM preamble)"
    )
    assert list(out.iterdir()) == []
    # A DICOM file named by its UID has digits for a suffix: its preamble says what it is.
    dicom = write_dicom(tmp_path / "1.2.840.113619.55", np.arange(64, dtype=np.uint16).reshape(8, 8))
    build_cache(pd.DataFrame({"path": [str(dicom)]}), RADIOGRAPH, cache, cache_manifest)
    assert np.load(cache).shape == (1, 1, 8, 8)


def test_a_header_only_table_says_that_it_has_no_rows(hospital, tmp_path, refused):
    table = hospital / "export.csv"
    table.write_text(table.read_text().splitlines()[0] + "\n")
    message = refused("manifest", hospital, hospital_options())
    assert message == f"privfair: {table}: the table has no rows (only a header)"
    chexpert = write_chexpert(tmp_path / "CheXpert-v1.0-small", n_patients=2)
    for name in ("train.csv", "valid.csv"):
        rewrite_table(chexpert / name, lambda t: t.assign(**{"Frontal/Lateral": "Lateral"}))
    message = refused("chexpert", chexpert, {"frontal_only": True})
    assert message == (
        f"privfair: {chexpert}: the 'chexpert' adapter found no images (source.root and the adapter's options)"
    )


def test_integer_sex_codes_are_shown_as_the_file_has_them(hospital, refused):
    codes = ["1", "2"] * 10
    codes[3], codes[5] = "3", ""
    rewrite_table(hospital / "export.csv", lambda t: t.assign(geschlecht=codes))
    options = {**hospital_options(), "sex_codes": {"F": [1], "M": [2]}}
    message = refused("manifest", hospital, options)
    assert message.endswith(
        "sex code not in ['1', '2'] in 2 row(s), line(s) 5 ('3'), 7 ('') (or set source.on_invalid.sex: drop)"
    )
    manifest, _ = ingest("manifest", hospital, {**options, "on_invalid": {"sex": "unknown"}})
    assert manifest["sex"].tolist()[:3] == ["F", "M", "F"] and manifest["sex"].isna().sum() == 2


def test_a_full_disk_names_the_output_and_the_space_it_needs_and_leaves_nothing(hospital, tmp_path, monkeypatch):
    manifest, _ = ingest("manifest", hospital, hospital_options())
    out, cache, cache_manifest = cache_files(tmp_path)
    needs = "it needs 1.4 kB"  # the .npy header (128 bytes), then 20 images of 8 x 8 bytes

    monkeypatch.setattr(preprocess.shutil, "disk_usage", lambda path: SimpleNamespace(free=999))
    with pytest.raises(NoSpaceError) as error:
        build_cache(manifest, RADIOGRAPH, cache, cache_manifest)
    assert str(error.value).startswith(
        f"{cache}: not enough space for the cache: {needs} (20 images of 64 bytes), and 999 bytes are free"
    )
    assert list(out.iterdir()) == []
    monkeypatch.undo()

    class FillsUp(io.FileIO):  # the disk fills up once the header is written
        def write(self, data):
            if self.tell():
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return super().write(data)

    monkeypatch.setattr(preprocess, "open", FillsUp, raising=False)
    with pytest.raises(NoSpaceError) as error:
        build_cache(manifest, RADIOGRAPH, cache, cache_manifest)
    assert str(error.value).startswith(f"{cache}: no space left to write it (No space left on device): {needs}")
    assert list(out.iterdir()) == []


PR_GET_PDEATHSIG = 2  # from <linux/prctl.h>


@pytest.mark.skipif(os.uname().sysname != "Linux", reason="PR_SET_PDEATHSIG is Linux's")
def test_preprocessing_workers_die_with_their_parent(hospital, tmp_path, monkeypatch):
    """Each worker has asked the kernel to kill it when the job's process dies (what it records while it works)."""
    manifest, _ = ingest("manifest", hospital, hospital_options())
    load = preprocess.LoadRadiograph.__call__

    def load_and_record(self, path):
        signal = ctypes.c_int()
        ctypes.CDLL(None).prctl(PR_GET_PDEATHSIG, ctypes.byref(signal), 0, 0, 0)
        (tmp_path / f"worker-{os.getpid()}").write_text(str(signal.value))
        return load(self, path)

    monkeypatch.setattr(preprocess.LoadRadiograph, "__call__", load_and_record)
    _, cache, cache_manifest = cache_files(tmp_path)
    build_cache(manifest, RADIOGRAPH, cache, cache_manifest, num_workers=2, batch_size=4)
    records = {path.name: path.read_text() for path in tmp_path.glob("worker-*")}
    assert f"worker-{os.getpid()}" not in records and 1 <= len(records) <= 2
    assert set(records.values()) == {"9"}  # SIGKILL
