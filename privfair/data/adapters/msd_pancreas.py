"""Medical Segmentation Decathlon Task07 (pancreas): ``dataset.json``, ``imagesTr/`` and ``labelsTr/`` (NIfTI).

A volume is positive when its label map contains the tumour class (``"2": "cancer"`` in ``dataset.json``). That
class mixes lesion types (intraductal mucinous neoplasms, neuroendocrine tumours and adenocarcinomas), so it only
approximates PDAC. The Decathlon has no demographics (age and sex are unknown) and one volume per patient. Entries are
named by their place in the list (``training[3]``); a path that leads outside ``root`` is refused unless
``allow_outside_root`` is true.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from privfair.core.errors import ManifestError
from privfair.data.adapters.common import RowChecks, locate, origins
from privfair.data.manifest import LABEL_PREFIX, ORIGIN

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


def read_description(path: Path) -> dict:
    """``dataset.json``, checked for what the adapter reads: ``training``, a list of ``{"image", "label"}`` paths.

    Args:
        path: the dataset's ``dataset.json``.

    Returns:
        The parsed description.

    Raises:
        ManifestError: naming the file and the JSON line and column of a syntax error, a repeated key, or the key
            that is missing or of the wrong type.
    """
    if not path.is_file():
        raise ManifestError(f"{path}: file not found")
    try:
        description = json.loads(path.read_text(), object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as error:
        raise ManifestError(f"{path}: line {error.lineno}, column {error.colno}: invalid JSON: {error.msg}") from None
    except (ValueError, OSError) as error:  # a repeated key (see _unique_keys), bad encoding, unreadable file
        raise ManifestError(f"{path}: cannot read: {error}") from None
    if not isinstance(description, dict) or not isinstance(description.get("training"), list):
        raise ManifestError(f"{path}: key 'training' (the list of training volumes) is missing or not a list")
    if not isinstance(description.get("labels", {}), dict):
        raise ManifestError(f"{path}: key 'labels' must map label values to names")
    for i, entry in enumerate(description["training"]):
        entry = entry if isinstance(entry, dict) else {}
        missing = [key for key in ("image", "label") if not isinstance(entry.get(key), str)]
        if missing:
            raise ManifestError(f"{path}: training[{i}]: key(s) {missing} missing or not a path")
    return description


def _unique_keys(pairs: list[tuple]) -> dict:
    """A JSON object whose keys are unique: ``json`` would keep the last of two equal keys without a word."""
    keys = [key for key, _ in pairs]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise ValueError(f"key(s) {repeated} appear twice in one object")
    return dict(pairs)


def msd_pancreas(root: Path, options: dict) -> tuple[pd.DataFrame, RowChecks]:
    checks = RowChecks(options.get("on_invalid"))
    path = root / "dataset.json"
    description = read_description(path)
    positive = tumour_class(description.get("labels", {}), path, options.get("tumour_class"))
    entries = pd.DataFrame(description["training"], columns=["image", "label"])
    entries.index = pd.RangeIndex(len(entries), name="training")  # named "training[i]" in messages
    if entries.empty:
        raise ManifestError(f"{path}: 'training' lists no volumes")
    allow_outside = options.get("allow_outside_root", False)
    images = locate(root, entries["image"], path, allow_outside)
    label_paths = locate(root, entries["label"], path, allow_outside)
    entries, images = checks.image_paths(entries, images, path)
    entries, label_paths = checks.image_paths(entries, label_paths.loc[entries.index], path)
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
            f"{LABEL_PREFIX}tumour": [int(contains_class(Path(p), positive)) for p in label_paths],
            ORIGIN: origins(path, entries.index),
        }
    ).astype({f"{LABEL_PREFIX}tumour": "int8"}), checks
