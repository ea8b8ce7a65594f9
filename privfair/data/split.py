"""Patient-level train/validation/test split, stratified over the labels.

Whole patients are assigned to one split, so that no patient's images inform both training and evaluation.
Patients are spread by a patient-level iterative stratification (Sechidis et al., 2011). Each patient is described
by its classes: which labels it has a positive image of, and which a negative one. First, for each class, rarest
first, every split that still lacks it takes one patient of it while any is left (the one with most of the classes
that split lacks), so that every split gets both classes of every label wherever the counts allow. Then the rest,
rarest class first as in Sechidis et al.: each patient goes to the split that wants most of that class (its share of
the class's patients minus those it has), else to the split with most room. The seed orders the patients and breaks
ties. Each split gets exactly the number of patients a plain cut by the fractions would give it.

A dataset's official split (``official_split`` in the manifest) is honoured: its test images are the test split,
its validation images (if any) the validation split; where it has none, validation patients are drawn from the
official training patients, stratified as above, in the proportion ``val / (train + val)`` of the configured
fractions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from privfair.core.errors import ConfigError, ManifestError
from privfair.data.manifest import OFFICIAL_SPLIT, SPLITS, assert_patient_level, check_official_split, label_columns


def split_patients(
    manifest: pd.DataFrame, fractions: dict[str, float], seed: int, source: str = "manifest"
) -> pd.DataFrame:
    """Return ``manifest`` with a ``split`` column: patients stratified over the labels by ``seed``, cut by
    ``fractions``.

    With an ``official_split`` column the official test (and validation, if any) split is kept; see the module.

    Args:
        manifest: the standardised manifest, one row per image, with ``patient_id`` and ``label_<finding>`` columns.
        fractions: ``{"train": ..., "val": ..., "test": ...}``, summing to 1: the share of patients in each split.
        seed: seed of the stratification's order and ties; the result does not depend on the row order of
            ``manifest``.
        source: what to name in error messages (the manifest's path).

    Returns:
        A copy of ``manifest`` with ``split`` ("train", "val" or "test"), the same for all images of a patient.

    Raises:
        ConfigError: ``fractions`` does not name exactly the three splits or does not sum to 1.
        ManifestError: the official split is incomplete or splits a patient, a split is empty, or some labels lack
            one of their two classes in some split (all of them named, see :func:`check_label_coverage`).
    """
    if sorted(fractions) != sorted(SPLITS) or not np.isclose(sum(fractions.values()), 1.0):
        raise ConfigError(f"split.fractions must give {list(SPLITS)} summing to 1, got {fractions}")
    if OFFICIAL_SPLIT in manifest.columns:
        check_official_split(manifest, source)
        assignment = _official_assignment(manifest, fractions, seed)
    else:
        assignment = stratified_assignment(manifest, SPLITS, [fractions[s] for s in SPLITS], seed)
    result = manifest.assign(split=manifest["patient_id"].map(assignment))
    assert_patient_level(result, source)
    check_label_coverage(result, source)
    return result


def split_sizes(n_patients: int, fractions) -> np.ndarray:
    """Patients per split: ``n_patients`` cut by the cumulative ``fractions``, rounded (they sum to ``n_patients``).

    Args:
        n_patients: how many patients to split.
        fractions: the share of each split, in order (normalised to sum to 1).

    Returns:
        The number of patients of each split.
    """
    bounds = np.round(np.cumsum(fractions) / np.sum(fractions) * n_patients).astype(int)
    return np.diff(bounds, prepend=0)


def patient_classes(manifest: pd.DataFrame, patients) -> np.ndarray:
    """Which classes of each label each patient has an image of (a masked, NaN, label counts for neither).

    Args:
        manifest: one row per image, with ``patient_id`` and ``label_<finding>`` columns.
        patients: the patient ids, in the order of the result's rows.

    Returns:
        A boolean array, one row per patient: first "has a positive image" per label, then "has a negative image"
        per label, in the manifest's label order.
    """
    columns = label_columns(manifest)
    labels, by_patient = manifest[columns], manifest["patient_id"]
    positive = (labels == 1).groupby(by_patient).any().reindex(patients, fill_value=False)
    negative = (labels == 0).groupby(by_patient).any().reindex(patients, fill_value=False)
    return np.hstack([positive.to_numpy(dtype=bool), negative.to_numpy(dtype=bool)])


def stratified_assignment(manifest: pd.DataFrame, splits, fractions, seed: int) -> dict:
    """Patient id -> split, by iterative stratification over the patients' classes (see the module).

    Args:
        manifest: the images to split (``patient_id`` and ``label_<finding>`` columns); its row order does not matter.
        splits: the split names, in order.
        fractions: the share of patients of each split, in the order of ``splits``.
        seed: seed of the order in which patients are placed and of ties.

    Returns:
        Each patient's split; the number of patients of each split is :func:`split_sizes`.
    """
    rng = np.random.default_rng(seed)
    patients = np.sort(manifest["patient_id"].unique())  # sorted: independent of the row order of the export
    classes = patient_classes(manifest, patients)
    capacity = split_sizes(len(patients), fractions)
    wanted = np.outer(capacity / max(len(patients), 1), classes.sum(axis=0))  # per split and class: still wanted
    present = np.zeros(wanted.shape, dtype=int)  # per split and class: patients placed there
    placed = np.full(len(patients), -1)
    order = rng.permutation(len(patients))  # the order in which patients of a class are taken
    ties = rng.random((len(patients), len(capacity)))  # each patient's tie-breaks between the splits

    def put(patient: int, split: int) -> None:
        placed[patient] = split
        capacity[split] -= 1
        wanted[split] -= classes[patient]
        present[split] += classes[patient]

    def waiting(column: int) -> np.ndarray:
        """The patients not yet placed that have ``column``'s class, in the seeded order."""
        return order[(placed[order] < 0) & classes[order, column]]

    # 1. Coverage: rarest class first, each split that lacks it takes one patient of it while any is left: the one
    # with most of the classes the split still lacks (fewest patients needed in a small split), first in the order.
    totals = classes.sum(axis=0)
    columns, split_ties = np.lexsort((rng.random(len(totals)), totals)), rng.random(len(capacity))
    for column in columns:
        for split in sorted(range(len(capacity)), key=lambda j: (-wanted[j, column], -split_ties[j])):
            members = waiting(column)
            if len(members) and present[split, column] == 0 and capacity[split] > 0:
                lacked = (classes[members] & (present[split] == 0)).sum(axis=1)
                put(members[np.argmax(lacked)], split)
    # 2. Proportions: rarest class left first, each patient to the split that wants most of it, else the emptier.
    while (left := classes[placed < 0].sum(axis=0)).any():
        column = int(rng.choice(np.flatnonzero(left == left[left > 0].min())))  # ties broken by the seed
        for patient in waiting(column):
            open_ = np.flatnonzero(capacity > 0)
            put(patient, max(open_, key=lambda j: (wanted[j, column], capacity[j], ties[patient, j])))
    for patient in order[placed[order] < 0]:  # patients with every label masked
        open_ = np.flatnonzero(capacity > 0)
        put(patient, max(open_, key=lambda j: (capacity[j], ties[patient, j])))
    return dict(zip(patients, np.asarray(splits, dtype=object)[placed]))


def _official_assignment(manifest: pd.DataFrame, fractions: dict[str, float], seed: int) -> dict:
    official = manifest.groupby("patient_id")[OFFICIAL_SPLIT].first()
    if (official == "val").any():
        return official.to_dict()
    train = manifest[manifest["patient_id"].map(official) == "train"]
    assignment = stratified_assignment(train, ("train", "val"), [fractions["train"], fractions["val"]], seed)
    assignment.update(dict.fromkeys(official.index[official == "test"], "test"))
    return assignment


def check_label_coverage(manifest: pd.DataFrame, source: str) -> None:
    """Every split needs both classes of every label, or AUROC and thresholds are undefined there.

    Args:
        manifest: the manifest with ``split``.
        source: what to name at the start of a message (the manifest's path).

    Raises:
        ManifestError: a split is empty; or, in one message, every label that lacks a class in some split, with its
            positive patients, the splits and the classes they have, and what to change.
    """
    empty = [split for split in SPLITS if not (manifest["split"] == split).any()]
    if empty:
        raise ManifestError(
            f"{source}: no patients in the {empty} split(s); use more patients or other split fractions"
        )
    failures, failing = [], 0
    for column in label_columns(manifest):
        lacking: dict[tuple, list[str]] = {}
        for split in SPLITS:
            values = manifest.loc[manifest["split"] == split, column]
            if values.nunique() < 2:  # NaN (masked) labels count for neither class
                lacking.setdefault(tuple(sorted(values.dropna().unique().tolist())), []).append(split)
        if lacking:
            positive = manifest.loc[manifest[column] == 1, "patient_id"].nunique()
            counts = f"{positive} positive patient(s) of {manifest['patient_id'].nunique()}"
            failing += 1
            failures += [
                f"fewer than two classes {list(classes)} for '{column}' in the {_splits_named(splits)} ({counts})"
                for classes, splits in lacking.items()
            ]
    if failures:
        fixed = " (the test split is the dataset's official one)" if OFFICIAL_SPLIT in manifest.columns else ""
        raise ManifestError(
            f"{source}: {failing} label(s) cannot have both classes in every split{fixed}: "
            f"{'; '.join(failures)}. Leave such labels out (source.labels), drop rare ones with "
            "source.min_positive_patients, or use more patients"
        )


def _splits_named(names: list[str]) -> str:
    """``"test split"``, ``"val and test splits"``."""
    if len(names) == 1:
        return f"{names[0]} split"
    return f"{', '.join(names[:-1])} and {names[-1]} splits"
