"""Patient-level train/validation/test split.

Whole patients are assigned to one split, so that no patient's images inform both training and evaluation.
A dataset's official split (``official_split`` in the manifest) is honoured: its test images are the test split,
its validation images (if any) the validation split; where it has none, validation patients are drawn from the
official training patients by the seed, in the proportion ``val / (train + val)`` of the configured fractions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from privfair.core.errors import ConfigError, ManifestError
from privfair.data.manifest import OFFICIAL_SPLIT, SPLITS, assert_patient_level, check_official_split, label_columns


def split_patients(
    manifest: pd.DataFrame, fractions: dict[str, float], seed: int, source: str = "manifest"
) -> pd.DataFrame:
    """Return ``manifest`` with a ``split`` column; patients are shuffled by ``seed`` and cut by ``fractions``.

    With an ``official_split`` column the official test (and validation, if any) split is kept; see the module.

    Args:
        manifest: the standardised manifest, one row per image, with ``patient_id`` and ``label_<finding>`` columns.
        fractions: ``{"train": ..., "val": ..., "test": ...}``, summing to 1.
        seed: seed of the patient shuffle; the result does not depend on the row order of ``manifest``.
        source: what to name in error messages (the manifest's path).

    Returns:
        A copy of ``manifest`` with ``split`` ("train", "val" or "test"), the same for all images of a patient.

    Raises:
        ConfigError: ``fractions`` does not name exactly the three splits or does not sum to 1.
        ManifestError: the official split is incomplete or splits a patient, a split is empty, or a split lacks
            one of the two classes of a label.
    """
    if sorted(fractions) != sorted(SPLITS) or not np.isclose(sum(fractions.values()), 1.0):
        raise ConfigError(f"split.fractions must give {list(SPLITS)} summing to 1, got {fractions}")
    if OFFICIAL_SPLIT in manifest.columns:
        check_official_split(manifest, source)
        assignment = _official_assignment(manifest, fractions, seed)
    else:
        assignment = _random_assignment(manifest["patient_id"], SPLITS, [fractions[s] for s in SPLITS], seed)
    result = manifest.assign(split=manifest["patient_id"].map(assignment))
    assert_patient_level(result, source)
    check_label_coverage(result, source)
    return result


def _random_assignment(patient_ids: pd.Series, splits, fractions, seed: int) -> dict:
    """Patient id -> split; patients are shuffled by ``seed`` and cut by ``fractions``."""
    # Sorting first makes the result independent of the row order of the export.
    patients = np.random.default_rng(seed).permutation(np.sort(patient_ids.unique()))
    bounds = np.round(np.cumsum(fractions) / np.sum(fractions) * len(patients)).astype(int)
    assignment = {}
    for split, chunk in zip(splits, np.split(patients, bounds[:-1])):
        assignment.update(dict.fromkeys(chunk, split))
    return assignment


def _official_assignment(manifest: pd.DataFrame, fractions: dict[str, float], seed: int) -> dict:
    official = manifest.groupby("patient_id")[OFFICIAL_SPLIT].first()
    if (official == "val").any():
        return official.to_dict()
    train = official.index[official == "train"].to_series()
    assignment = _random_assignment(train, ("train", "val"), [fractions["train"], fractions["val"]], seed)
    assignment.update(dict.fromkeys(official.index[official == "test"], "test"))
    return assignment


def check_label_coverage(manifest: pd.DataFrame, source: str) -> None:
    """Every split needs both classes of every label, or AUROC and thresholds are undefined there."""
    empty = [split for split in SPLITS if not (manifest["split"] == split).any()]
    if empty:
        raise ManifestError(
            f"{source}: no patients in the {empty} split(s); use more patients or other split fractions"
        )
    for split, rows in manifest.groupby("split"):
        for column in label_columns(manifest):
            if rows[column].nunique() < 2:  # NaN (masked) labels count for neither class
                raise ManifestError(
                    f"{source}: the {split} split ({len(rows)} images) has fewer than two classes "
                    f"{sorted(rows[column].dropna().unique().tolist())} for '{column}'; "
                    "use more patients or other split fractions"
                )
