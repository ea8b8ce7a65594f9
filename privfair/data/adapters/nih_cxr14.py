"""NIH ChestX-ray14: ``Data_Entry_2017*.csv`` plus PNGs in ``images/`` (or the ``images_0NN/images`` of the download).

``Finding Labels`` is a pipe-separated list of the 14 findings, "No Finding" meaning all negative. The header's
bracketed names (``OriginalImage[Width,Height]``) hold commas, so the header is parsed here rather than by pandas.
When ``train_val_list.txt`` and ``test_list.txt`` lie beside the table, they give the official split.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pandas as pd

from privfair.core.errors import ManifestError
from privfair.data.adapters.common import (
    RowChecks,
    find_table,
    index_images,
    labels_frame,
    or_unknown,
    origins,
    read_table,
)
from privfair.data.manifest import LABEL_PREFIX, OFFICIAL_SPLIT, ORIGIN

FINDINGS = (
    "Atelectasis",
    "Cardiomegaly",
    "Consolidation",
    "Edema",
    "Effusion",
    "Emphysema",
    "Fibrosis",
    "Hernia",
    "Infiltration",
    "Mass",
    "Nodule",
    "Pleural_Thickening",
    "Pneumonia",
    "Pneumothorax",
)
NO_FINDING = "No Finding"
SEX_CODES = {"F": ["F"], "M": ["M"]}
SPLIT_LISTS = {"train": "train_val_list.txt", "test": "test_list.txt"}


def header_names(path: Path) -> list[str]:
    """Column names with ``Name[a,b]`` expanded to ``Name_a, Name_b`` (the data rows have one field each)."""
    with gzip.open(path, "rt") if path.suffix == ".gz" else open(path) as file:
        header = file.readline().strip()
    names = []
    for name in re.findall(r"[^,\[]+(?:\[[^\]]*\])?", header):
        bracket = re.fullmatch(r"(.*)\[(.*)\]", name)
        names += [f"{bracket[1]}_{part}" for part in bracket[2].split(",")] if bracket else [name]
    return names


def finding_labels(table: pd.DataFrame, path: Path, checks: RowChecks) -> tuple[pd.DataFrame, pd.DataFrame]:
    findings = table["Finding Labels"].str.split("|")
    unknown = findings.map(lambda names: [n for n in names if n not in FINDINGS and n != NO_FINDING])
    no_finding_mixed = findings.map(lambda names: NO_FINDING in names and len(names) > 1)
    table = checks.check(
        table,
        unknown.map(bool) | no_finding_mixed,
        "label_code",
        f"'Finding Labels' not a '|'-list of {NO_FINDING!r} or {list(FINDINGS)}",
        path,
        values=table["Finding Labels"],
    )
    findings = findings.loc[table.index]
    labels = pd.DataFrame({f"{LABEL_PREFIX}{f.lower()}": findings.map(lambda names, f=f: f in names) for f in FINDINGS})
    return table, labels_frame(labels)


def official_split(root: Path, image_names: pd.Series) -> pd.Series | None:
    lists = {split: root / name for split, name in SPLIT_LISTS.items()}
    present = [path.is_file() for path in lists.values()]
    if not any(present):
        return None
    if not all(present):
        raise ManifestError(f"{root}: found only one of {list(SPLIT_LISTS.values())}; give both or neither")
    assignment = {}
    for split, path in lists.items():
        for name in path.read_text().split():
            if assignment.setdefault(name, split) != split:
                raise ManifestError(f"{path}: {name} is also listed in {SPLIT_LISTS[assignment[name]]}")
    return image_names.map(assignment)


def parse_data_entry(path: Path, checks: RowChecks) -> pd.DataFrame:
    """The manifest columns that the label table gives (all but ``path``), indexed by file line."""
    table = read_table(
        path,
        ["Image Index", "Finding Labels", "Patient ID", "Patient Age", "Patient Gender", "View Position"],
        skiprows=1,
        header=None,
        names=header_names(path),
        index_col=False,
    )
    table, labels = finding_labels(table, path, checks)
    table, age = checks.age(table, pd.to_numeric(table["Patient Age"], errors="coerce"), table["Patient Age"], path)
    table, sex = checks.sex(table, table["Patient Gender"], SEX_CODES, path)
    image_id = table["Image Index"].str.removesuffix(".png")
    manifest = pd.DataFrame(
        {
            "image_id": image_id,
            "file": table["Image Index"],
            "patient_id": table["Patient ID"],
            "study_id": image_id,  # one image per study (the follow-up number)
            "age": age.loc[table.index],
            "sex": sex.loc[table.index],
            "view": or_unknown(table["View Position"]),
            ORIGIN: origins(path, table.index),
        }
    )
    return pd.concat([manifest, labels.loc[table.index]], axis=1)


def nih_cxr14(root: Path, options: dict) -> tuple[pd.DataFrame, RowChecks]:
    checks = RowChecks(options.get("on_invalid"))
    path = find_table(root, options.get("table"), "Data_Entry_2017*.csv*")
    manifest = parse_data_entry(path, checks)
    images = index_images(root, options.get("image_dirs", ["images", "images_*/images"]), (".png",))
    manifest, paths = checks.image_paths(manifest, manifest["file"].map(images), path)
    manifest.insert(1, "path", paths)
    if options.get("official_split", True):
        split = official_split(root, manifest["file"])
        if split is not None:
            manifest[OFFICIAL_SPLIT] = split
    return manifest.drop(columns="file"), checks
