"""Medical Segmentation Decathlon Task07 (pancreas): ``dataset.json``, ``imagesTr/`` and ``labelsTr/`` (NIfTI).

A volume is positive when its label map contains the tumour class (``"2": "cancer"`` in ``dataset.json``). That
class mixes lesion types (intraductal mucinous neoplasms, neuroendocrine tumours and adenocarcinomas), so it only
approximates PDAC. The Decathlon has no demographics (age and sex are unknown) and one volume per patient.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from privfair.core.errors import ManifestError
from privfair.data.adapters.common import RowChecks
from privfair.data.manifest import LABEL_PREFIX

TUMOUR_NAMES = ("cancer", "tumour", "tumor")


def tumour_class(labels: dict, path: Path, configured: int | None) -> int:
    if configured is not None:
        return configured
    matches = [int(k) for k, name in labels.items() if str(name).lower() in TUMOUR_NAMES]
    if len(matches) != 1:
        raise ManifestError(f"{path}: cannot tell the tumour class from labels {labels}; set source.tumour_class")
    return matches[0]


def contains_class(label_path: Path, value: int) -> bool:
    try:
        return bool(np.any(np.asanyarray(nib.load(label_path).dataobj) == value))
    except Exception as error:  # noqa: BLE001 - nibabel raises several types for a damaged file
        raise ManifestError(f"{label_path}: cannot read the label map: {type(error).__name__}: {error}") from None


def msd_pancreas(root: Path, options: dict) -> tuple[pd.DataFrame, RowChecks]:
    checks = RowChecks(options.get("on_invalid"))
    path = root / "dataset.json"
    if not path.is_file():
        raise ManifestError(f"{path}: file not found")
    description = json.loads(path.read_text())
    positive = tumour_class(description.get("labels", {}), path, options.get("tumour_class"))
    entries = pd.DataFrame(
        description["training"], index=pd.RangeIndex(1, len(description["training"]) + 1, name="entry")
    )
    images = entries["image"].map(lambda p: str((root / p).resolve()))
    entries, images = checks.image_paths(entries, images, path)
    label_paths = entries["label"].map(lambda p: (root / p).resolve())
    entries, _ = checks.image_paths(entries, label_paths.map(str), path)
    case = images.loc[entries.index].map(lambda p: Path(p).name.split(".")[0])
    return pd.DataFrame(
        {
            "image_id": case,
            "path": images.loc[entries.index],
            "patient_id": case,
            "study_id": case,
            "age": np.nan,
            "sex": None,
            "view": "axial",
            f"{LABEL_PREFIX}tumour": [int(contains_class(p, positive)) for p in label_paths.loc[entries.index]],
        }
    ).astype({f"{LABEL_PREFIX}tumour": "int8"}), checks
