"""The embedded datasets (adapters ``synth_cxr`` and ``synth_ct``): read the exports of ``privfair.data.synth``.

The generators write a hospital-like export (``metadata.csv`` and the images it lists); these adapters read it like
any other dataset, so the embedded data goes through the same ingest, split and cache as a real one.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from privfair.core.errors import ManifestError
from privfair.data.adapters.common import RowChecks, grades_to_labels, read_table, resolve_paths
from privfair.data.manifest import LABEL_PREFIX
from privfair.data.synth.cxr import FINDINGS as SYNTH_CXR_FINDINGS


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
