"""Adapters: read a dataset's own metadata into the standardised manifest (see ``privfair.data.manifest``).

Each adapter takes the dataset's root folder and its ``source`` options from the config and returns the manifest.
Errors name the file and row, and nothing is written unless the whole table is valid.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from privfair.core.errors import ConfigError, ManifestError
from privfair.data.adapters import REAL_ADAPTERS
from privfair.data.adapters.common import RowChecks, read_table
from privfair.data.manifest import LABEL_PREFIX, is_finding, label_columns, validate_manifest
from privfair.data.synth.cxr import FINDINGS as SYNTH_CXR_FINDINGS


def resolve_paths(root: Path, relative: pd.Series, table_path: Path) -> pd.Series:
    """Absolute image paths; a file listed in the table but absent on disk is an error, never a silent skip."""
    paths = relative.map(lambda p: str((root / p).resolve()))
    absent = [(row, p) for row, p in paths.items() if not Path(p).is_file()]
    if absent:
        row, path = absent[0]
        raise ManifestError(f"{table_path}: line {row} refers to a missing image {path} ({len(absent)} missing)")
    return paths


def grades_to_labels(grades: pd.DataFrame, positive_grades: list[int], table_path: Path) -> pd.DataFrame:
    """Binarise severity grades (the reference study counts grades 3 and 4 as positive)."""
    numeric = grades.apply(pd.to_numeric, errors="coerce")
    bad = numeric.isna() | ~numeric.isin(range(5))
    if bad.to_numpy().any():
        row, column = next((r, c) for c in bad.columns for r in bad.index[bad[c]])
        raise ManifestError(
            f"{table_path}: line {row}, column '{column}': grade must be 0-4, got {grades.at[row, column]!r}"
        )
    return numeric.isin(positive_grades).astype("int8").add_prefix(LABEL_PREFIX)


def synth_cxr(root: Path, options: dict) -> tuple[pd.DataFrame, RowChecks]:
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
    return pd.concat([manifest, labels], axis=1), RowChecks(None)


def synth_ct(root: Path, options: dict) -> tuple[pd.DataFrame, RowChecks]:
    """The embedded CT export: one volume per row, binary lesion label."""
    table_path = root / "metadata.csv"
    table = read_table(table_path, ["PatientID", "StudyID", "VolumeFile", "PatientAge", "PatientSex", "lesion"])
    bad = table.index[~table["lesion"].isin([0, 1])]
    if len(bad):
        raise ManifestError(f"{table_path}: line {bad[0]}: 'lesion' must be 0 or 1, got {table.at[bad[0], 'lesion']!r}")
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
    ), RowChecks(None)


Adapter = Callable[[Path, dict], tuple[pd.DataFrame, RowChecks]]
ADAPTERS: dict[str, Adapter] = {"synth_cxr": synth_cxr, "synth_ct": synth_ct, **REAL_ADAPTERS}


def ingest(adapter: str, root: str | Path, options: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run ``adapter`` on ``root``; return the validated manifest (``comorbidity`` added) and the rows dropped by
    the ``on_invalid`` policies (one row per file and check, with the count)."""
    if adapter not in ADAPTERS:
        raise ConfigError(f"source.adapter: unknown adapter '{adapter}'; known: {sorted(ADAPTERS)}")
    root = Path(root)
    if not root.is_dir():
        raise ManifestError(f"{root}: dataset folder not found (source.root)")
    manifest, checks = ADAPTERS[adapter](root, options)
    if manifest.empty:
        raise ManifestError(f"{root}: no images left to ingest; see the rows dropped by source.on_invalid above")
    manifest = manifest.reset_index(drop=True)
    findings = [c for c in label_columns(manifest) if is_finding(c.removeprefix(LABEL_PREFIX))]
    manifest["comorbidity"] = manifest[findings].sum(axis=1).astype("int16")
    return validate_manifest(manifest, root), checks.frame()
