"""Adapters: read a dataset's own metadata into the standardised manifest (see ``privfair.manifest``).

Each adapter takes the dataset's root folder and its ``source`` options from the config and returns the manifest.
Errors name the file and row, and nothing is written unless the whole table is valid.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pandas as pd

from privfair.errors import ConfigError, ManifestError
from privfair.manifest import LABEL_PREFIX, label_columns, validate_manifest
from privfair.synth.cxr import FINDINGS as SYNTH_CXR_FINDINGS


def read_table(path: Path, required: list[str]) -> pd.DataFrame:
    """Read a CSV export and check that it has the columns an adapter needs."""
    if not path.is_file():
        raise ManifestError(f"{path}: file not found")
    table = pd.read_csv(path)
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise ManifestError(f"{path}: missing column(s) {missing}; found {list(table.columns)}")
    return table


def resolve_paths(root: Path, relative: pd.Series, table_path: Path) -> pd.Series:
    """Absolute image paths; a file listed in the table but absent on disk is an error, never a silent skip."""
    paths = relative.map(lambda p: str((root / p).resolve()))
    absent = [(row, p) for row, p in paths.items() if not Path(p).is_file()]
    if absent:
        row, path = absent[0]
        raise ManifestError(f"{table_path}: row {row + 2} refers to a missing image {path} ({len(absent)} missing)")
    return paths


def grades_to_labels(grades: pd.DataFrame, positive_grades: list[int], table_path: Path) -> pd.DataFrame:
    """Binarise severity grades (the reference study counts grades 3 and 4 as positive)."""
    numeric = grades.apply(pd.to_numeric, errors="coerce")
    bad = numeric.isna() | ~numeric.isin(range(5))
    if bad.to_numpy().any():
        row, column = next((r, c) for c in bad.columns for r in bad.index[bad[c]])
        raise ManifestError(f"{table_path}: row {row + 2}, column '{column}': grade must be 0-4, got {grades.at[row, column]!r}")
    return numeric.isin(positive_grades).astype("int8").add_prefix(LABEL_PREFIX)


def synth_cxr(root: Path, options: dict) -> pd.DataFrame:
    """The embedded radiograph export: one row per image, findings graded 0-4."""
    table_path = root / "metadata.csv"
    columns = ["PatientID", "StudyID", "ImageFile", "PatientAge", "PatientSex", "ViewPosition", *SYNTH_CXR_FINDINGS]
    table = read_table(table_path, columns)
    labels = grades_to_labels(table[list(SYNTH_CXR_FINDINGS)], options["positive_grades"], table_path)
    manifest = pd.DataFrame(
        {
            "image_id": table["ImageFile"].map(lambda p: Path(p).stem),
            "path": resolve_paths(root, table["ImageFile"], table_path),
            "patient_id": table["PatientID"].astype(str),
            "study_id": table["StudyID"].astype(str),
            "age": table["PatientAge"].astype(float),
            "sex": table["PatientSex"],
            "view": table["ViewPosition"],
        }
    )
    return pd.concat([manifest, labels], axis=1)


def synth_ct(root: Path, options: dict) -> pd.DataFrame:
    """The embedded CT export: one volume per row, binary lesion label."""
    table_path = root / "metadata.csv"
    table = read_table(table_path, ["PatientID", "StudyID", "VolumeFile", "PatientAge", "PatientSex", "lesion"])
    bad = table.index[~table["lesion"].isin([0, 1])]
    if len(bad):
        raise ManifestError(f"{table_path}: row {bad[0] + 2}: 'lesion' must be 0 or 1, got {table.at[bad[0], 'lesion']!r}")
    return pd.DataFrame(
        {
            "image_id": table["StudyID"].astype(str),
            "path": resolve_paths(root, table["VolumeFile"], table_path),
            "patient_id": table["PatientID"].astype(str),
            "study_id": table["StudyID"].astype(str),
            "age": table["PatientAge"].astype(float),
            "sex": table["PatientSex"],
            "view": "axial",
            f"{LABEL_PREFIX}lesion": table["lesion"].astype("int8"),
        }
    )


ADAPTERS: dict[str, Callable[[Path, dict], pd.DataFrame]] = {"synth_cxr": synth_cxr, "synth_ct": synth_ct}


def ingest(adapter: str, root: str | Path, options: dict) -> pd.DataFrame:
    """Run ``adapter`` on ``root`` and return the validated manifest with ``comorbidity`` added."""
    if adapter not in ADAPTERS:
        raise ConfigError(f"source.adapter: unknown adapter '{adapter}'; known: {sorted(ADAPTERS)}")
    root = Path(root)
    manifest = ADAPTERS[adapter](root, options)
    manifest["comorbidity"] = manifest[label_columns(manifest)].sum(axis=1).astype("int16")
    return validate_manifest(manifest, root)
