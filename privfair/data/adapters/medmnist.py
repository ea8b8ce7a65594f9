"""MedMNIST ``.npz`` files (2D and 3D), keys ``{train,val,test}_{images,labels}``, for quick experiments.

An image's ``path`` is ``<file>.npz#<split>_images/<index>``, which the preprocessing reads (see
``privfair.data.preprocess.NpzImageReader``). ``labels`` names the label columns: one name per column of a multi-label
set (ChestMNIST), or one name per class of a single-column multi-class set (one-vs-rest; a binary set, e.g.
PneumoniaMNIST, names its positive class only). MedMNIST has no patient ids or demographics: each image is its own
patient, age and sex are unknown, and the fairness stage has nothing to group by.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from privfair.core.errors import ManifestError
from privfair.data.adapters.common import RowChecks, origins, rows_named
from privfair.data.manifest import LABEL_PREFIX, OFFICIAL_SPLIT, ORIGIN, SPLITS

NPZ_SEPARATOR = "#"


def label_matrix(raw: np.ndarray, names: list[str], key: str, path: Path) -> np.ndarray:
    raw = raw.reshape(len(raw), -1)
    if raw.shape[1] == 1 and len(names) > 1:  # multi-class: one-vs-rest columns
        allowed = range(len(names))
        matrix = raw == np.arange(len(names))
    elif raw.shape[1] == len(names):
        allowed, matrix = (0, 1), raw
    else:
        raise ManifestError(f"{path}: '{key}' has {raw.shape[1]} column(s) but source.labels names {len(names)}")
    bad = pd.Index(np.flatnonzero(~np.isin(raw, allowed).all(axis=1)), name=key)
    if len(bad):
        raise ManifestError(f"{path}: values outside {list(allowed)} in {len(bad)} image(s), {rows_named(bad)}")
    return matrix.astype("int8")


def medmnist(root: Path, options: dict) -> tuple[pd.DataFrame, RowChecks]:
    path = (root / options["file"]).resolve()
    if not path.is_file():
        raise ManifestError(f"{path}: file not found")
    names = options["labels"]
    parts = []
    with np.load(path) as arrays:
        for split in SPLITS:
            key = f"{split}_labels"
            if key not in arrays or f"{split}_images" not in arrays:
                raise ManifestError(f"{path}: no '{split}_images' / '{key}' arrays; found {sorted(arrays.files)}")
            labels = label_matrix(arrays[key], names, key, path)
            ids = [f"{split}_{i}" for i in range(len(labels))]
            part = pd.DataFrame(
                {
                    "image_id": ids,
                    "path": [f"{path}{NPZ_SEPARATOR}{split}_images/{i}" for i in range(len(labels))],
                    "patient_id": ids,
                    "study_id": ids,
                    "age": np.nan,
                    "sex": None,
                    "view": "unknown",
                    OFFICIAL_SPLIT: split,
                    ORIGIN: origins(path, pd.RangeIndex(len(labels), name=f"{split}_images")).to_numpy(),
                }
            )
            parts.append(pd.concat([part, pd.DataFrame(labels, columns=[f"{LABEL_PREFIX}{n}" for n in names])], axis=1))
    print(f"medmnist: {path.name} has no demographics: age and sex are unknown")
    return pd.concat(parts, ignore_index=True), RowChecks(None)
