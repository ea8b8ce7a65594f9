"""Ingest: run a dataset's adapter (``privfair.data.adapters``), choose its labels, and validate the manifest.

Errors name the file and its line (the adapters record each row's ``origin``), and nothing is written unless the whole
table is valid.

Label choice (:func:`choose_labels`) is the same for every multi-label adapter: ``source.labels`` keeps the findings
it names, and ``source.min_positive_patients`` then drops those with fewer positive patients in the ingested
manifest. A name is the manifest's (``effusion``, the column ``label_effusion``) or the dataset's own (NIH
``Effusion``, CheXpert ``Pleural Effusion``): case, spaces and punctuation are ignored. Each dropped finding is one
row of the dropped-rows table (action "finding dropped", check ``labels`` or ``min_positive_patients``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from privfair.core.errors import ConfigError, ManifestError
from privfair.data.adapters import get_adapter
from privfair.data.adapters.common import RECORD_COLUMNS
from privfair.data.manifest import LABEL_PREFIX, ORIGIN, is_finding, label_columns, validate_manifest

FINDING_DROPPED = "finding dropped"  # the action of a dropped finding in the dropped-rows table


def ingest(adapter: str, root: str | Path, options: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read a dataset with its adapter into the validated, standardised manifest.

    Args:
        adapter: the adapter's name (``source.adapter``), looked up in ``privfair.data.adapters.ADAPTERS``.
        root: the dataset's folder (``source.root``, or where the embedded dataset was generated).
        options: the ``source`` block (``on_invalid``, ``labels``, ``min_positive_patients`` and the adapter's own
            keys).

    Returns:
        The validated manifest (``comorbidity`` added, counting all of the dataset's findings, chosen or not) and
        the rows dropped or kept as unknown by the ``on_invalid`` policies (one row per file and check, with the
        count), then one row per finding dropped by ``labels`` or ``min_positive_patients``.

    Raises:
        ConfigError: unknown adapter (the message names ``source.adapter`` and the known adapters), or a name in
            ``source.labels`` that the dataset does not have.
        ManifestError: a missing folder, a bad table or row (named by its file and line), an image file listed
            twice, or no images (or no labels) left.
    """
    read = get_adapter(adapter).read
    root = Path(root)
    if not root.is_dir():
        raise ManifestError(f"{root}: dataset folder not found (source.root)")
    manifest, checks = read(root, options)
    dropped = checks.frame()
    if manifest.empty:
        if (dropped["action"] == "dropped").any():
            raise ManifestError(f"{root}: no images left to ingest; see the rows dropped by source.on_invalid above")
        raise ManifestError(f"{root}: the '{adapter}' adapter found no images (source.root and the adapter's options)")
    manifest = manifest.reset_index(drop=True)
    findings = [c for c in label_columns(manifest) if is_finding(c.removeprefix(LABEL_PREFIX))]
    manifest["comorbidity"] = manifest[findings].sum(axis=1).astype("int16")
    # A dict of labels is the manifest adapter's finding -> column map, which has chosen the findings already;
    # medmnist's list names the columns it wrote, so choosing them keeps them all.
    selected = options.get("labels") if isinstance(options.get("labels"), list) else None
    manifest, label_records = choose_labels(manifest, selected, options.get("min_positive_patients"), root)
    if label_records:
        dropped = pd.concat([d for d in (dropped, pd.DataFrame(label_records)) if len(d)], ignore_index=True)
        dropped = dropped.reindex(columns=RECORD_COLUMNS)
    return validate_manifest(manifest, root).drop(columns=ORIGIN, errors="ignore"), dropped


def label_key(name: str) -> str:
    """A finding's name as the manifest's columns spell it: lower case, runs of other characters as one ``_``.

    Args:
        name: a finding's name, e.g. ``"Pleural Effusion"`` or ``"Pleural_Thickening"``.

    Returns:
        e.g. ``"pleural_effusion"``, ``"pleural_thickening"``.
    """
    return re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_")


def choose_labels(
    manifest: pd.DataFrame, labels: list[str] | None, min_positive_patients: int | None, root: str | Path
) -> tuple[pd.DataFrame, list[dict]]:
    """Keep the findings ``labels`` names, then drop those with fewer than ``min_positive_patients`` positive patients.

    Args:
        manifest: the adapter's manifest (``patient_id`` and ``label_<finding>`` columns).
        labels: ``source.labels``: names of findings, the manifest's (``effusion``) or the dataset's own
            (``Effusion``), compared by :func:`label_key` where not equal; None keeps all of them.
        min_positive_patients: ``source.min_positive_patients``; None drops none.
        root: the dataset folder, the ``file`` of the records.

    Returns:
        The manifest without the dropped label columns, and one record per dropped finding (the columns of the
        dropped-rows table; ``rows`` is 1, one finding), each also printed to the log.

    Raises:
        ConfigError: a name in ``labels`` matches no finding (the message names ``source.labels``, the name and the
            known findings).
        ManifestError: no finding is left.
    """
    names = [c.removeprefix(LABEL_PREFIX) for c in label_columns(manifest)]
    records, keep = [], list(names)
    if labels is not None:
        chosen = {_match(name, names) for name in labels}
        keep = [n for n in names if n in chosen]
        records += [_record(root, n, "labels", "not selected by source.labels") for n in names if n not in chosen]
    if min_positive_patients is not None:
        positive = {n: manifest.loc[manifest[LABEL_PREFIX + n] == 1, "patient_id"].nunique() for n in keep}
        rare = [n for n in keep if positive[n] < min_positive_patients]
        keep = [n for n in keep if n not in rare]
        records += [
            _record(
                root,
                n,
                "min_positive_patients",
                f"{positive[n]} positive patient(s), fewer than source.min_positive_patients ({min_positive_patients})",
            )
            for n in rare
        ]
    for record in records:
        print(f"{root}: {FINDING_DROPPED} {record['problem'].removeprefix('finding ')}")
    if not keep:
        raise ManifestError(
            f"{root}: no labels left after source.labels and source.min_positive_patients; the dataset has {names}"
        )
    return manifest.drop(columns=[LABEL_PREFIX + n for n in names if n not in keep]), records


def _match(name: str, names: list[str]) -> str:
    """The finding of ``names`` that ``name`` means: the same name, else the only one of the same :func:`label_key`."""
    if name in names:
        return name
    matches = [n for n in names if label_key(n) == label_key(name)]
    if len(matches) != 1:
        raise ConfigError(f"source.labels: unknown finding {name!r}; this dataset's findings are {names}")
    return matches[0]


def _record(root: str | Path, name: str, check: str, why: str) -> dict:
    """One dropped finding as a row of the dropped-rows table (``rows`` counts findings here: 1)."""
    return {
        "file": str(root),
        "check": check,
        "action": FINDING_DROPPED,
        "problem": f"finding '{name}': {why}",
        "rows": 1,
        "first_lines": "",
    }
