"""MIMIC-CXR-JPG: the metadata, CheXpert-label and split tables (``mimic-cxr-2.0.0-*.csv.gz``) and
``files/p10/p10000032/s50414267/<dicom_id>.jpg``.

Labels are per study and coded like CheXpert (same ``uncertain`` / ``blank`` policies). Demographics are not in
MIMIC-CXR: with ``patients`` (MIMIC-IV's ``patients.csv.gz``) the age at the study is ``anchor_age`` plus the years
from ``anchor_year`` to the (shifted) study date, and sex is ``gender``; without it both are missing, and the log
says so.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from privfair.core.errors import ManifestError
from privfair.data.adapters.chexpert import FINDINGS, finding_name
from privfair.data.adapters.common import RowChecks, coded_labels, read_table, uncertain_codes
from privfair.data.manifest import OFFICIAL_SPLIT, first_items

TABLES = {
    "metadata_table": "mimic-cxr-2.0.0-metadata.csv.gz",
    "label_table": "mimic-cxr-2.0.0-chexpert.csv.gz",
    "split_table": "mimic-cxr-2.0.0-split.csv.gz",
}
SPLITS = {"train": "train", "validate": "val", "test": "test"}
SEX_CODES = {"F": ["F"], "M": ["M"]}
FRONTAL = ("PA", "AP")


def image_path(root: Path, subject: int, study: int, dicom: str) -> str:
    return str(root / "files" / f"p{str(subject)[:2]}" / f"p{subject}" / f"s{study}" / f"{dicom}.jpg")


def mimic_cxr_jpg(root: Path, options: dict) -> tuple[pd.DataFrame, RowChecks]:
    checks = RowChecks(options.get("on_invalid"))
    paths = {key: root / options.get(key, name) for key, name in TABLES.items()}
    metadata = read_table(paths["metadata_table"], ["dicom_id", "subject_id", "study_id", "ViewPosition", "StudyDate"])
    if options.get("frontal_only", False):
        metadata = metadata[metadata["ViewPosition"].isin(FRONTAL)]
    split = read_table(paths["split_table"], ["dicom_id", "split"])
    unknown = split.index[~split["split"].isin(list(SPLITS))]
    if len(unknown):
        raise ManifestError(
            f"{paths['split_table']}: split not one of {list(SPLITS)} in {len(unknown)} row(s), line(s) "
            f"{first_items(unknown)}"
        )
    labels_table = read_table(paths["label_table"], ["subject_id", "study_id", *FINDINGS])
    codes = uncertain_codes(options.get("uncertain", "ignore"), options.get("blank", "zeros"))
    labels_table, labels = coded_labels(
        labels_table, {finding_name(f): f for f in FINDINGS}, codes, paths["label_table"], checks
    )
    labels = pd.concat([labels_table[["study_id"]], labels], axis=1)
    table = metadata.reset_index().merge(split[["dicom_id", "split"]], on="dicom_id", how="left")
    table = table.merge(labels, on="study_id", how="left").set_index("line")
    unlabelled = ~table["study_id"].isin(labels["study_id"])
    table = checks.check(
        table,
        unlabelled,
        "label_code",
        f"study not in {paths['label_table'].name}",
        paths["metadata_table"],
        values=table["study_id"],
    )
    if table["split"].isna().any():
        missing = table.loc[table["split"].isna(), "dicom_id"]
        raise ManifestError(
            f"{paths['split_table']}: {len(missing)} image(s) of {paths['metadata_table'].name} have no split, "
            f"e.g. {list(missing[:5])}"
        )
    image_paths = pd.Series(
        [image_path(root, *row) for row in table[["subject_id", "study_id", "dicom_id"]].itertuples(index=False)],
        index=table.index,
    )
    table, image_paths = checks.image_paths(table, image_paths, paths["metadata_table"])
    table, age, sex = demographics(table, options.get("patients_table"), root, checks)
    manifest = pd.DataFrame(
        {
            "image_id": table["dicom_id"].astype(str),
            "path": image_paths.loc[table.index],
            "patient_id": table["subject_id"].astype(str),
            "study_id": table["study_id"].astype(str),
            "age": age,
            "sex": sex,
            "view": table["ViewPosition"].fillna("unknown"),
            OFFICIAL_SPLIT: table["split"].map(SPLITS),
        }
    )
    label_names = [c for c in table.columns if c.startswith("label_")]
    return pd.concat([manifest, table[label_names]], axis=1), checks


def demographics(table: pd.DataFrame, patients_file: str | None, root: Path, checks: RowChecks):
    """Age at the study and sex from MIMIC-IV ``patients``; unknown (and said so) without it."""
    if not patients_file:
        print("mimic_cxr_jpg: no source.patients_table (MIMIC-IV patients.csv.gz) given: age and sex are unknown")
        return table, pd.Series(float("nan"), index=table.index), pd.Series(None, index=table.index, dtype=object)
    path = root / patients_file
    patients = read_table(path, ["subject_id", "gender", "anchor_age", "anchor_year"])
    merged = table.reset_index().merge(patients, on="subject_id", how="left").set_index("line")
    years = pd.to_datetime(merged["StudyDate"].astype(str), format="%Y%m%d", errors="coerce").dt.year
    age = merged["anchor_age"] + years - merged["anchor_year"]
    merged, age = checks.age(merged, age, merged["anchor_age"], path)
    merged, sex = checks.sex(merged, merged["gender"], SEX_CODES, path)
    return merged, age, sex
