"""The standardised manifest: one row per image, whatever the source dataset.

Columns: ``image_id`` (unique), ``path`` (absolute), ``patient_id``, ``study_id``, ``age`` (years, NaN if unknown),
``sex`` ("F"/"M"/missing), ``view``, one ``label_<finding>`` column per finding (0/1, or NaN where the label is
unknown and masked in the loss and in evaluation), ``comorbidity`` (the number of positive findings) and, for datasets
that have one, ``official_split`` (train/val/test). Later stages add ``split`` and ``cache_index``.

Ids are strings exactly as the source has them (patient "01" and "001" are two patients). While an adapter builds the
manifest, ``origin`` says where each row came from (``<file>: line <n>``), so that every check names the source line;
ingest drops it before the manifest is written.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from privfair.core.errors import ManifestError

LABEL_PREFIX = "label_"
REQUIRED_COLUMNS = ("image_id", "path", "patient_id", "study_id", "age", "sex", "view")
SPLITS = ("train", "val", "test")
OFFICIAL_SPLIT = "official_split"
SEXES = ("F", "M")
ORIGIN = "origin"  # "<file>: line <n>" (or "<file>: <key>[<i>]") of each row, while ingest checks the manifest
# How summaries and subgroups name a missing (or, in the source, unrecognised) sex or age.
UNKNOWN = "unknown"


def label_columns(manifest: pd.DataFrame) -> list[str]:
    """The label columns, in manifest order (fixed by the adapter, never by a folder listing)."""
    return [c for c in manifest.columns if c.startswith(LABEL_PREFIX)]


# Labels some datasets carry that are not findings: they count towards no one's co-morbidity, and an image with only
# them is finding-free for the underdiagnosis rate.
NOT_FINDINGS = ("no_finding", "support_devices")


def is_finding(label: str) -> bool:
    return label not in NOT_FINDINGS


def label_names(manifest: pd.DataFrame) -> list[str]:
    return [c.removeprefix(LABEL_PREFIX) for c in label_columns(manifest)]


def validate_manifest(manifest: pd.DataFrame, source: str | Path) -> pd.DataFrame:
    """Check the standardised columns, and that each image file is one image of one patient.

    Args:
        manifest: the adapter's manifest; with an ``origin`` column, messages name each offending row's file and
            line, otherwise its row number in ``manifest``.
        source: what to name at the start of a message (the dataset folder).

    Returns:
        ``manifest``, unchanged.

    Raises:
        ManifestError: naming ``source`` and the offending rows (their source lines where known).
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in manifest.columns]
    if missing:
        raise ManifestError(f"{source}: missing column(s) {missing}")
    if not label_columns(manifest):
        raise ManifestError(f"{source}: no '{LABEL_PREFIX}<finding>' columns")
    count, shown = _listed_twice(manifest, manifest["image_id"], lambda i: "")
    if count:
        raise ManifestError(f"{source}: {count} duplicate image_id(s): {first_items(shown, sep='; ')}")
    for column in ("image_id", "path", "patient_id", "study_id"):
        empty = manifest.index[manifest[column].isna() | (manifest[column].astype(str).str.strip() == "")]
        if len(empty):
            raise ManifestError(f"{source}: empty '{column}' at {first_items(where_from(manifest, empty))}")
    check_one_file_one_image(manifest, source)
    bad_sex = manifest.index[manifest["sex"].notna() & ~manifest["sex"].isin(SEXES)]
    if len(bad_sex):
        raise ManifestError(
            f"{source}: sex must be 'F', 'M' or missing; at {first_items(where_from(manifest, bad_sex))}"
        )
    age = manifest["age"]
    bad_age = manifest.index[age.notna() & ((age < 0) | (age > 120))]
    if len(bad_age):
        raise ManifestError(f"{source}: age outside [0, 120] at {first_items(where_from(manifest, bad_age))}")
    for column in label_columns(manifest):
        bad = manifest.index[~(manifest[column].isin([0, 1]) | manifest[column].isna())]
        if len(bad):
            raise ManifestError(
                f"{source}: '{column}' must be 0, 1 or NaN (masked); at {first_items(where_from(manifest, bad))}"
            )
    if OFFICIAL_SPLIT in manifest.columns:
        check_official_split(manifest, source)
    return manifest


def where_from(manifest: pd.DataFrame, index) -> list[str]:
    """Where rows came from, as messages name them.

    Args:
        manifest: the manifest, with or without ``origin``.
        index: the rows (labels of ``manifest.index``).

    Returns:
        Each row's ``origin`` ("<file>: line <n>") where the manifest has one, else "row <i>".
    """
    if ORIGIN in manifest.columns:
        return manifest.loc[index, ORIGIN].tolist()
    return [f"row {i}" for i in index]


def _listed_twice(manifest: pd.DataFrame, values: pd.Series, detail) -> tuple[int, list[str]]:
    """How many values occur in more than one row, and for each "<value> at <where> and <where>" (``detail(i)`` is
    appended to the source line of row ``i``)."""
    repeated = values[values.duplicated(keep=False)]
    shown = []
    for value, rows in repeated.groupby(repeated, sort=False):
        listed = [where + detail(i) for i, where in zip(rows.index, where_from(manifest, rows.index))]
        shown.append(f"{value} at {' and '.join(listed)}")
    return repeated.nunique(), shown


def check_one_file_one_image(manifest: pd.DataFrame, source: str | Path) -> None:
    """One image file (its path resolved, symlinks included) must be one row: one image id of one patient.

    The same file under two paths (absolute and relative, or through a symlink) or under two patients would count one
    image twice, and could put it in training and test at once.

    Args:
        manifest: the manifest, with ``path``, ``image_id``, ``patient_id`` and, where known, ``origin``.
        source: what to name at the start of a message (the dataset folder).

    Raises:
        ManifestError: naming each such file and the rows (source lines) that list it.
    """
    count, shown = _listed_twice(
        manifest,
        manifest["path"].map(os.path.realpath),
        lambda i: f" (image_id {manifest.at[i, 'image_id']}, patient {manifest.at[i, 'patient_id']})",
    )
    if count:
        raise ManifestError(
            f"{source}: {count} image file(s) listed more than once (each file must be one image of one patient): "
            f"{first_items(shown, 3, sep='; ')}"
        )


def check_official_split(manifest: pd.DataFrame, source: str | Path) -> None:
    """The dataset's own split must name every image and keep each patient in one split."""
    unknown = manifest.index[~manifest[OFFICIAL_SPLIT].isin(SPLITS)]
    if len(unknown):
        shown = [f"{i} ({where})" for i, where in zip(manifest.loc[unknown, "image_id"], where_from(manifest, unknown))]
        raise ManifestError(
            f"{source}: {len(unknown)} image(s) with no official split (must be one of {SPLITS}): {first_items(shown)}"
        )
    splits_per_patient = manifest.groupby("patient_id")[OFFICIAL_SPLIT].nunique()
    leaking = splits_per_patient.index[splits_per_patient > 1]
    if len(leaking):
        rows = manifest[manifest["patient_id"].isin(leaking)]
        examples = [f"{p} ({', '.join(sorted(g[OFFICIAL_SPLIT].unique()))})" for p, g in rows.groupby("patient_id")]
        raise ManifestError(
            f"{source}: {len(leaking)} patient(s) in more than one official split: {first_items(examples)}"
        )


def assert_patient_level(manifest: pd.DataFrame, source: str | Path) -> None:
    """Fail if any patient has images in more than one split: that leaks identity across train and test."""
    splits_per_patient = manifest.groupby("patient_id")["split"].nunique()
    leaking = splits_per_patient.index[splits_per_patient > 1]
    if len(leaking):
        raise ManifestError(
            f"{source}: {len(leaking)} patient(s) appear in more than one split: {first_items(leaking)}"
        )
    unknown = manifest.index[~manifest["split"].isin(SPLITS)]
    if len(unknown):
        raise ManifestError(
            f"{source}: split must be one of {SPLITS}; image_id(s) {first_items(manifest.loc[unknown, 'image_id'])}"
        )


def first_items(values, n: int = 5, sep: str = ", ") -> str:
    """The first ``n`` values and how many more there are, for error messages."""
    values = list(values)
    more = f" and {len(values) - n} more" if len(values) > n else ""
    return sep.join(map(str, values[:n])) + more
