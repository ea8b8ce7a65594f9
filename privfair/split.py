"""Patient-level train/validation/test split.

Whole patients are assigned to one split, so that no patient's images inform both training and evaluation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from privfair.errors import ConfigError, ManifestError
from privfair.manifest import SPLITS, assert_patient_level, label_columns


def split_patients(manifest: pd.DataFrame, fractions: dict[str, float], seed: int, source: str = "manifest") -> pd.DataFrame:
    """Return ``manifest`` with a ``split`` column; patients are shuffled by ``seed`` and cut by ``fractions``."""
    if sorted(fractions) != sorted(SPLITS) or not np.isclose(sum(fractions.values()), 1.0):
        raise ConfigError(f"split.fractions must give {list(SPLITS)} summing to 1, got {fractions}")
    # Sorting first makes the result independent of the row order of the export.
    patients = np.random.default_rng(seed).permutation(np.sort(manifest["patient_id"].unique()))
    bounds = np.round(np.cumsum([fractions[s] for s in SPLITS]) * len(patients)).astype(int)
    assignment = {}
    for split, chunk in zip(SPLITS, np.split(patients, bounds[:-1])):
        assignment.update(dict.fromkeys(chunk, split))
    result = manifest.assign(split=manifest["patient_id"].map(assignment))
    assert_patient_level(result, source)
    check_label_coverage(result, source)
    return result


def check_label_coverage(manifest: pd.DataFrame, source: str) -> None:
    """Every split needs both classes of every label, or AUROC and thresholds are undefined there."""
    empty = [split for split in SPLITS if not (manifest["split"] == split).any()]
    if empty:
        raise ManifestError(f"{source}: no patients in the {empty} split(s); use more patients or other split fractions")
    for split, rows in manifest.groupby("split"):
        for column in label_columns(manifest):
            if rows[column].nunique() < 2:
                raise ManifestError(
                    f"{source}: the {split} split ({len(rows)} images) has only class {rows[column].iloc[0]} "
                    f"for '{column}'; use more patients or other split fractions"
                )
