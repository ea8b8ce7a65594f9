"""CheXpert: ``train.csv`` / ``valid.csv`` with ``Path, Sex, Age, Frontal/Lateral, AP/PA`` and 14 findings coded
1 (positive), 0 (negative), -1 (uncertain) or blank (not mentioned).

``uncertain`` and ``blank`` choose what those codes become: ``zeros``, ``ones`` or ``ignore`` (NaN: masked in the
loss and in evaluation). ``valid.csv`` (radiologist-labelled) is the official test split. The patient id comes from
the path (``.../patient00001/study1/view1_frontal.jpg``). A path that leads outside ``root`` is refused unless
``allow_outside_root`` is true.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from privfair.data.adapters.common import (
    RowChecks,
    coded_labels,
    labels_frame,
    locate,
    or_unknown,
    origins,
    read_table,
    uncertain_codes,
)
from privfair.data.manifest import OFFICIAL_SPLIT, ORIGIN, label_columns

FINDINGS = (
    "No Finding",
    "Enlarged Cardiomediastinum",
    "Cardiomegaly",
    "Lung Opacity",
    "Lung Lesion",
    "Edema",
    "Consolidation",
    "Pneumonia",
    "Atelectasis",
    "Pneumothorax",
    "Pleural Effusion",
    "Pleural Other",
    "Fracture",
    "Support Devices",
)
SEX_CODES = {"F": ["Female", "F"], "M": ["Male", "M"]}
TABLES = {"train": "train.csv", "test": "valid.csv"}


def finding_name(column: str) -> str:
    return column.lower().replace(" ", "_")


def under_root(root: Path, listed: str) -> str:
    """A table path relative to ``root``: table paths start with the release folder
    (``CheXpert-v1.0-small/train/...``), and ``root`` is that folder.

    Args:
        root: the release folder (``source.root``).
        listed: the path as ``Path`` lists it.

    Returns:
        The path without its leading release folder (any other path unchanged, for :func:`locate` to check).
    """
    parts = Path(listed).parts
    return str(Path(*parts[1:])) if len(parts) > 1 and parts[0] == root.name else listed


def read_split(root: Path, path: Path, split: str, options: dict, checks: RowChecks) -> pd.DataFrame:
    table = read_table(path, ["Path", "Sex", "Age", "Frontal/Lateral", "AP/PA", *FINDINGS])
    if options.get("frontal_only", False):
        table = table[table["Frontal/Lateral"] == "Frontal"]
    codes = uncertain_codes(options.get("uncertain", "ignore"), options.get("blank", "zeros"))
    table, labels = coded_labels(table, {finding_name(f): f for f in FINDINGS}, codes, path, checks)
    listed = table["Path"].map(lambda p: under_root(root, p))
    table, paths = checks.image_paths(table, locate(root, listed, path, options.get("allow_outside_root", False)), path)
    table, age = checks.age(table, pd.to_numeric(table["Age"], errors="coerce"), table["Age"], path)
    table, sex = checks.sex(table, table["Sex"], SEX_CODES, path)
    parts = table["Path"].str.extract(r"(patient\d+)/(study\d+)/(view[^/]+)\.\w+$")
    manifest = pd.DataFrame(
        {
            "image_id": parts[0] + "_" + parts[1] + "_" + parts[2],
            "path": paths.loc[table.index],
            "patient_id": parts[0],
            "study_id": parts[0] + "_" + parts[1],
            "age": age.loc[table.index],
            "sex": sex.loc[table.index],
            "view": or_unknown(table["AP/PA"]).where(table["Frontal/Lateral"] == "Frontal", "LL"),
            OFFICIAL_SPLIT: split,
            ORIGIN: origins(path, table.index),
        }
    )
    return pd.concat([manifest, labels.loc[table.index]], axis=1)


def chexpert(root: Path, options: dict) -> tuple[pd.DataFrame, RowChecks]:
    checks = RowChecks(options.get("on_invalid"))
    parts = [read_split(root, root / name, split, options, checks) for split, name in TABLES.items()]
    manifest = pd.concat(parts, ignore_index=True)
    labels = label_columns(manifest)
    manifest[labels] = labels_frame(manifest[labels])  # one split may be fully known, the other masked
    return manifest, checks
