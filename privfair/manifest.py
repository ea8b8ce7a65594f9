"""The standardised manifest: one row per image, whatever the source dataset.

Columns: ``image_id`` (unique), ``path`` (absolute), ``patient_id``, ``study_id``, ``age`` (years, NaN if unknown),
``sex`` ("F"/"M"/missing), ``view``, one ``label_<finding>`` column per finding (0/1) and ``comorbidity`` (the
number of positive findings). Later stages add ``split`` and ``cache_index``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from privfair.errors import ManifestError

LABEL_PREFIX = "label_"
REQUIRED_COLUMNS = ("image_id", "path", "patient_id", "study_id", "age", "sex", "view")
SPLITS = ("train", "val", "test")


def label_columns(manifest: pd.DataFrame) -> list[str]:
    """The label columns, in manifest order (fixed by the adapter, never by a folder listing)."""
    return [c for c in manifest.columns if c.startswith(LABEL_PREFIX)]


def label_names(manifest: pd.DataFrame) -> list[str]:
    return [c.removeprefix(LABEL_PREFIX) for c in label_columns(manifest)]


def validate_manifest(manifest: pd.DataFrame, source: str | Path) -> pd.DataFrame:
    """Check the standardised columns; raise ManifestError naming ``source`` and the offending rows."""
    missing = [c for c in REQUIRED_COLUMNS if c not in manifest.columns]
    if missing:
        raise ManifestError(f"{source}: missing column(s) {missing}")
    if not label_columns(manifest):
        raise ManifestError(f"{source}: no '{LABEL_PREFIX}<finding>' columns")
    duplicated = manifest["image_id"][manifest["image_id"].duplicated()]
    if len(duplicated):
        raise ManifestError(f"{source}: duplicate image_id(s) {_first(duplicated)}")
    for column in ("image_id", "path", "patient_id", "study_id"):
        empty = manifest.index[manifest[column].isna() | (manifest[column].astype(str).str.strip() == "")]
        if len(empty):
            raise ManifestError(f"{source}: empty '{column}' in row(s) {_first(empty)}")
    bad_sex = manifest.index[manifest["sex"].notna() & ~manifest["sex"].isin(["F", "M"])]
    if len(bad_sex):
        raise ManifestError(f"{source}: sex must be 'F', 'M' or missing; row(s) {_first(bad_sex)}")
    age = manifest["age"]
    bad_age = manifest.index[age.notna() & ((age < 0) | (age > 120))]
    if len(bad_age):
        raise ManifestError(f"{source}: age outside [0, 120] in row(s) {_first(bad_age)}")
    for column in label_columns(manifest):
        bad = manifest.index[~manifest[column].isin([0, 1])]
        if len(bad):
            raise ManifestError(f"{source}: '{column}' must be 0 or 1; row(s) {_first(bad)}")
    return manifest


def assert_patient_level(manifest: pd.DataFrame, source: str | Path) -> None:
    """Fail if any patient has images in more than one split: that leaks identity across train and test."""
    splits_per_patient = manifest.groupby("patient_id")["split"].nunique()
    leaking = splits_per_patient.index[splits_per_patient > 1]
    if len(leaking):
        raise ManifestError(f"{source}: patient(s) {_first(leaking)} appear in more than one split")
    unknown = manifest.index[~manifest["split"].isin(SPLITS)]
    if len(unknown):
        raise ManifestError(f"{source}: split must be one of {SPLITS}; row(s) {_first(unknown)}")


def _first(values, n: int = 5) -> str:
    values = list(values)
    more = f" and {len(values) - n} more" if len(values) > n else ""
    return ", ".join(map(str, values[:n])) + more
