"""The embedded datasets (adapters ``synth_cxr`` and ``synth_ct``): read the exports of ``privfair.data.synth``.

The generators write a hospital-like export (``metadata.csv`` and the images it lists); these adapters read it like
any other dataset, so the embedded data goes through the same ingest, split and cache as a real one.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from privfair.core.errors import ManifestError
from privfair.data.adapters.common import RowChecks, grades_to_labels, origins, read_table, resolve_paths, rows_named
from privfair.data.manifest import LABEL_PREFIX, ORIGIN
from privfair.data.synth.cxr import FINDINGS as SYNTH_CXR_FINDINGS

SEX_CODES = {"F": ["F"], "M": ["M"]}


def demographics(table: pd.DataFrame, path: Path) -> tuple[pd.Series, pd.Series]:
    """Age and sex of every row, which the generator always writes: a bad value is an error naming its line.

    Args:
        table: the export's ``metadata.csv``, as ``read_table`` gives it.
        path: its file, named in messages.

    Returns:
        ``(age, sex)``: age in years and "F"/"M", indexed like ``table``.
    """
    checks = RowChecks(None)
    age = checks.age(table, pd.to_numeric(table["PatientAge"], errors="coerce"), table["PatientAge"], path)[1]
    return age, checks.sex(table, table["PatientSex"], SEX_CODES, path)[1]


def synth_cxr(root: Path, options: dict) -> tuple[pd.DataFrame, RowChecks]:
    """The embedded radiograph export: one row per image, findings graded 0-4."""
    table_path = root / "metadata.csv"
    columns = ["PatientID", "StudyID", "ImageFile", "PatientAge", "PatientSex", "ViewPosition", *SYNTH_CXR_FINDINGS]
    table = read_table(table_path, columns)
    labels = grades_to_labels(table[list(SYNTH_CXR_FINDINGS)], options["positive_grades"], table_path)
    age, sex = demographics(table, table_path)
    manifest = pd.DataFrame(
        {
            "image_id": table["ImageFile"].map(lambda p: Path(p).stem),
            "path": resolve_paths(root, table["ImageFile"], table_path, options.get("allow_outside_root", False)),
            "patient_id": table["PatientID"],
            "study_id": table["StudyID"],
            "age": age,
            "sex": sex,
            "view": table["ViewPosition"],
            ORIGIN: origins(table_path, table.index),
        }
    )
    return pd.concat([manifest, labels], axis=1), RowChecks(None)


def synth_ct(root: Path, options: dict) -> tuple[pd.DataFrame, RowChecks]:
    """The embedded CT export: one volume per row, binary lesion label."""
    table_path = root / "metadata.csv"
    table = read_table(table_path, ["PatientID", "StudyID", "VolumeFile", "PatientAge", "PatientSex", "lesion"])
    bad = table.index[~table["lesion"].isin(["0", "1"])]
    if len(bad):
        raise ManifestError(
            f"{table_path}: 'lesion' must be 0 or 1 in {len(bad)} row(s), {rows_named(bad, table['lesion'])}"
        )
    age, sex = demographics(table, table_path)
    return pd.DataFrame(
        {
            "image_id": table["StudyID"],
            "path": resolve_paths(root, table["VolumeFile"], table_path, options.get("allow_outside_root", False)),
            "patient_id": table["PatientID"],
            "study_id": table["StudyID"],
            "age": age,
            "sex": sex,
            "view": "axial",
            f"{LABEL_PREFIX}lesion": table["lesion"].astype("int8"),
            ORIGIN: origins(table_path, table.index),
        }
    ), RowChecks(None)
