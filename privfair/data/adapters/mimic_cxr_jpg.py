"""MIMIC-CXR-JPG: the metadata, CheXpert-label and split tables (``mimic-cxr-2.0.0-*.csv.gz``) and
``files/p10/p10000032/s50414267/<dicom_id>.jpg``.

Labels are per study and coded like CheXpert (same ``uncertain`` / ``blank`` policies). Demographics are not in
MIMIC-CXR: with ``patients`` (MIMIC-IV's ``patients.csv.gz``) the age at the study is ``anchor_age`` plus the years
from ``anchor_year`` to the (shifted) study date, and sex is ``gender``; without it both are missing, and the log
says so. Ids (subject, study, DICOM) are kept as the tables write them, and the tables are joined on them as text.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from privfair.core.errors import ManifestError
from privfair.data.adapters.chexpert import FINDINGS, finding_name
from privfair.data.adapters.common import (
    RowChecks,
    coded_labels,
    locate,
    or_unknown,
    origins,
    read_table,
    rows_named,
    uncertain_codes,
)
from privfair.data.manifest import OFFICIAL_SPLIT, ORIGIN

TABLES = {
    "metadata_table": "mimic-cxr-2.0.0-metadata.csv.gz",
    "label_table": "mimic-cxr-2.0.0-chexpert.csv.gz",
    "split_table": "mimic-cxr-2.0.0-split.csv.gz",
}
SPLITS = {"train": "train", "validate": "val", "test": "test"}
SEX_CODES = {"F": ["F"], "M": ["M"]}
FRONTAL = ("PA", "AP")


def image_path(subject: str, study: str, dicom: str) -> str:
    """The JPEG's path under ``root``: ``files/p10/p10000032/s50414267/<dicom_id>.jpg``."""
    return f"files/p{subject[:2]}/p{subject}/s{study}/{dicom}.jpg"


def mimic_cxr_jpg(root: Path, options: dict) -> tuple[pd.DataFrame, RowChecks]:
    checks = RowChecks(options.get("on_invalid"))
    paths = {key: root / options.get(key, name) for key, name in TABLES.items()}
    metadata = read_table(paths["metadata_table"], ["dicom_id", "subject_id", "study_id", "ViewPosition", "StudyDate"])
    if options.get("frontal_only", False):
        metadata = metadata[metadata["ViewPosition"].isin(FRONTAL)]
    split = unique_key(read_table(paths["split_table"], ["dicom_id", "split"]), "dicom_id", paths["split_table"])
    unknown = split.index[~split["split"].isin(list(SPLITS))]
    if len(unknown):
        raise ManifestError(
            f"{paths['split_table']}: split not one of {list(SPLITS)} in {len(unknown)} row(s), "
            f"{rows_named(unknown, split['split'])}"
        )
    labels_table = read_table(paths["label_table"], ["subject_id", "study_id", *FINDINGS])
    labels_table = unique_key(labels_table, "study_id", paths["label_table"])
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
            f"{paths['metadata_table']}: {len(missing)} image(s) not in {paths['split_table'].name}, "
            f"{rows_named(missing.index, missing)}"
        )
    listed = pd.Series(
        [image_path(*row) for row in table[["subject_id", "study_id", "dicom_id"]].itertuples(index=False)],
        index=table.index,
    )
    table, image_paths = checks.image_paths(
        table, locate(root, listed, paths["metadata_table"]), paths["metadata_table"]
    )
    table, age, sex = demographics(table, options.get("patients_table"), root, paths["metadata_table"], checks)
    manifest = pd.DataFrame(
        {
            "image_id": table["dicom_id"],
            "path": image_paths.loc[table.index],
            "patient_id": table["subject_id"],
            "study_id": table["study_id"],
            "age": age,
            "sex": sex,
            "view": or_unknown(table["ViewPosition"]),
            OFFICIAL_SPLIT: table["split"].map(SPLITS),
            ORIGIN: origins(paths["metadata_table"], table.index),
        }
    )
    label_names = [c for c in table.columns if c.startswith("label_")]
    return pd.concat([manifest, table[label_names]], axis=1), checks


def unique_key(table: pd.DataFrame, key: str, path: Path) -> pd.DataFrame:
    """Check that ``key``, the column another table is joined on, names each row once: a repeated key would silently
    duplicate the rows joined to it.

    Args:
        table: a table read by ``read_table`` (indexed by line).
        key: the join column.
        path: the table's file, named in the message.

    Returns:
        ``table``, unchanged.

    Raises:
        ManifestError: naming the file, the lines and the repeated values.
    """
    repeated = table.index[table[key].duplicated(keep=False).to_numpy()]
    if len(repeated):
        raise ManifestError(
            f"{path}: '{key}' repeated in {len(repeated)} row(s), {rows_named(repeated, table[key])}; "
            "each must appear once"
        )
    return table


def demographics(table: pd.DataFrame, patients_file: str | None, root: Path, metadata: Path, checks: RowChecks):
    """Age at the study and sex from MIMIC-IV ``patients``; unknown (and said so) without it.

    A bad age or sex is named by the line of the image in ``metadata`` (the age depends on its study date), with
    the subject's values in ``patients``.

    Args:
        table: the images (metadata joined with the split and labels), indexed by their metadata line.
        patients_file: ``source.patients_table``, relative to ``root``, or None.
        root: the dataset folder.
        metadata: the metadata table, named in messages.
        checks: the adapter's row checks (``on_invalid``).

    Returns:
        ``(table, age, sex)``: the rows kept, and their age (years) and sex ("F"/"M"/None).
    """
    if not patients_file:
        print("mimic_cxr_jpg: no source.patients_table (MIMIC-IV patients.csv.gz) given: age and sex are unknown")
        return table, pd.Series(float("nan"), index=table.index), pd.Series(None, index=table.index, dtype=object)
    path = root / patients_file
    patients = read_table(path, ["subject_id", "gender", "anchor_age", "anchor_year"])
    patients = unique_key(patients, "subject_id", path)
    merged = table.reset_index().merge(patients, on="subject_id", how="left").set_index("line")
    absent = merged["gender"].isna()  # every cell read is text: NaN only where the subject is not in patients
    years = pd.to_datetime(merged["StudyDate"], format="%Y%m%d", errors="coerce").dt.year
    age = (
        pd.to_numeric(merged["anchor_age"], errors="coerce")
        + years
        - pd.to_numeric(merged["anchor_year"], errors="coerce")
    )
    not_listed = f"(subject not in {path.name})"
    shown_age = ("anchor_age " + merged["anchor_age"] + ", StudyDate " + merged["StudyDate"]).mask(absent, not_listed)
    merged, age = checks.age(merged, age, shown_age, metadata)
    merged, sex = checks.sex(merged, merged["gender"].mask(absent, not_listed), SEX_CODES, metadata)
    return merged, age, sex
