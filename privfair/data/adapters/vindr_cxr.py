"""VinDr-CXR: DICOM images in ``train/`` and ``test/`` and the image-level label tables
``annotations/image_labels_{train,test}.csv`` (one row per radiologist in train, the consensus in test).

Sex and age come from the DICOM tags ``PatientSex`` and ``PatientAge`` (``045Y``-style), read header-only. A
training image's finding is positive when ``rater_vote`` (``majority`` or ``any``) of its radiologists marked it.
The release has no patient ids: each image is its own patient, the usual reading of its de-identification.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pydicom

from privfair.core.errors import ManifestError
from privfair.data.adapters.common import RowChecks, labels_frame, locate, or_unknown, origins, read_table
from privfair.data.manifest import LABEL_PREFIX, OFFICIAL_SPLIT, ORIGIN, label_columns

SPLITS = ("train", "test")
SEX_CODES = {"F": ["F"], "M": ["M"]}
AGE_UNITS = {"Y": 1.0, "M": 12.0, "W": 52.1775, "D": 365.25}
ID_COLUMNS = ("image_id", "rad_id")


def dicom_age(value: str) -> float:
    """DICOM age string (``nnnD/W/M/Y``) in years; NaN when absent or malformed."""
    match = re.fullmatch(r"(\d{3})([DWMY])", str(value).strip())
    return int(match[1]) / AGE_UNITS[match[2]] if match else float("nan")


HEADER_TAGS = ("PatientSex", "PatientAge", "ViewPosition")


def read_header(path: str) -> tuple[str, ...]:
    """``HEADER_TAGS`` from the header only (the pixel data is not read); "" where a tag is absent."""
    try:
        header = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=list(HEADER_TAGS))
    except Exception as error:  # noqa: BLE001 - pydicom raises several types for a file that is not DICOM
        raise ManifestError(f"{path}: cannot read the DICOM header: {type(error).__name__}: {error}") from None
    return tuple(str(header.get(tag, "") or "") for tag in HEADER_TAGS)


def rater_labels(table: pd.DataFrame, vote: str) -> pd.DataFrame:
    """One row per image: a finding is positive if any / a majority of the rows (radiologists) mark it.

    ``table`` has ``image_id`` and the findings coded 0/1 (numbers), indexed by file line; the result is indexed by
    the line of each image's first row.
    """
    findings = [c for c in table.columns if c not in ID_COLUMNS]
    grouped = table.groupby("image_id", sort=False)[findings]
    votes = grouped.mean() if vote == "majority" else grouped.max()
    positive = votes > 0.5 if vote == "majority" else votes > 0
    line = table.reset_index().groupby("image_id", sort=False)["line"].first()
    return positive.set_index(line.loc[positive.index].to_numpy()).rename_axis("line").assign(image_id=positive.index)


def read_split(root: Path, split: str, options: dict, checks: RowChecks) -> pd.DataFrame:
    path = root / "annotations" / f"image_labels_{split}.csv"
    table = read_table(path, ["image_id"])
    findings = [c for c in table.columns if c not in ID_COLUMNS]
    coded = table[findings].apply(pd.to_numeric, errors="coerce")
    bad = ~coded.isin([0, 1]).all(axis=1)
    table = checks.check(table, bad, "label_code", "finding not coded 0 or 1", path)
    labels = rater_labels(table[["image_id"]].join(coded), options.get("rater_vote", "majority"))
    image_paths = locate(root, labels["image_id"].map(lambda i: f"{split}/{i}.dicom"), path)
    labels, image_paths = checks.image_paths(labels, image_paths, path)
    header = pd.DataFrame([read_header(p) for p in image_paths], columns=HEADER_TAGS, index=labels.index)
    labels, age = checks.age(labels, header["PatientAge"].map(dicom_age), header["PatientAge"], path)
    labels, sex = checks.sex(labels, header["PatientSex"].loc[labels.index], SEX_CODES, path)
    manifest = pd.DataFrame(
        {
            "image_id": labels["image_id"],
            "path": image_paths.loc[labels.index],
            "patient_id": labels["image_id"],
            "study_id": labels["image_id"],
            "age": age.loc[labels.index],
            "sex": sex.loc[labels.index],
            "view": or_unknown(header["ViewPosition"].loc[labels.index]),
            OFFICIAL_SPLIT: split,
            ORIGIN: origins(path, labels.index),
        }
    )
    names = {f: f"{LABEL_PREFIX}{re.sub(r'[^0-9a-z]+', '_', f.lower()).strip('_')}" for f in findings}
    return pd.concat([manifest, labels_frame(labels[findings].rename(columns=names))], axis=1)


def vindr_cxr(root: Path, options: dict) -> tuple[pd.DataFrame, RowChecks]:
    checks = RowChecks(options.get("on_invalid"))
    manifest = pd.concat([read_split(root, split, options, checks) for split in SPLITS], ignore_index=True)
    labels = label_columns(manifest)
    manifest[labels] = labels_frame(manifest[labels])  # a finding missing from one table is unknown (masked) there
    return manifest, checks
