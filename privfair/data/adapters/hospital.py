"""The generic hospital export (adapter ``manifest``): a CSV or parquet table whose columns the config names.

``columns`` maps the manifest fields (``image``, ``patient_id``, ``study_id``, ``age``, ``sex``, ``view`` and, if the
export has one, ``split``) to the table's column names; ``labels`` maps each finding to its column. Labels are
graded: ``label_codes`` lists the valid grades and ``positive_grades`` those counted as positive (the reference
study: grades 0-4, positive 3 and 4); a blank grade is not a grade, and fails (or drops) its row like any value
outside ``label_codes``. Image paths are relative to ``root``; one that leads outside it is refused unless
``allow_outside_root`` is true. Ids are kept as the table writes them ("01" and "001" are two patients).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from privfair.data.adapters.common import RowChecks, coded_labels, locate, or_unknown, origins, read_table
from privfair.data.manifest import OFFICIAL_SPLIT, ORIGIN

DEFAULT_SEX_CODES = {"F": ["F", "female", "w"], "M": ["M", "male"]}
OPTIONAL_FIELDS = ("study_id", "view", "split")


def hospital_manifest(root: Path, options: dict) -> tuple[pd.DataFrame, RowChecks]:
    checks = RowChecks(options.get("on_invalid"))
    path = root / options["table"]
    columns, findings = options["columns"], options["labels"]
    table = read_table(
        path,
        [columns[f] for f in ("image", "patient_id", "age", "sex")]
        + [columns[f] for f in OPTIONAL_FIELDS if f in columns]
        + list(findings.values()),
    )
    codes = {code: float(code in options["positive_grades"]) for code in options.get("label_codes", [0, 1, 2, 3, 4])}
    table, labels = coded_labels(table, findings, codes, path, checks)
    listed = locate(root, table[columns["image"]], path, options.get("allow_outside_root", False))
    table, paths = checks.image_paths(table, listed, path)
    age_raw = table[columns["age"]]
    table, age = checks.age(table, pd.to_numeric(age_raw, errors="coerce"), age_raw, path)
    table, sex = checks.sex(table, table[columns["sex"]], options.get("sex_codes", DEFAULT_SEX_CODES), path)
    image_id = table[columns["image"]].map(lambda p: str(Path(p).with_suffix("")))
    manifest = pd.DataFrame(
        {
            "image_id": image_id,
            "path": paths.loc[table.index],
            "patient_id": table[columns["patient_id"]],
            "study_id": table[columns["study_id"]] if "study_id" in columns else image_id,
            "age": age.loc[table.index],
            "sex": sex.loc[table.index],
            "view": or_unknown(table[columns["view"]]) if "view" in columns else "unknown",
            ORIGIN: origins(path, table.index),
        }
    )
    if "split" in columns:
        manifest[OFFICIAL_SPLIT] = table[columns["split"]].replace({"validation": "val", "valid": "val"})
    return pd.concat([manifest, labels.loc[table.index].astype("int8")], axis=1), checks
