"""Pieces every adapter uses: reading tables, locating images, and row checks that fail or drop by config.

Rows of a source table are identified by their line in the file (header = line 1), so that a message points at
what the user sees in an editor. A failed check (missing_image, label_code, sex, age) lists the first rows and the
count; where ``source.on_invalid`` says ``drop`` for that check, the rows are removed and counted instead, and
``unknown`` (sex, age) keeps them with the value unknown (the counts reach the log and the dataset summary through
:class:`RowChecks`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from privfair.core.errors import ManifestError
from privfair.data.manifest import LABEL_PREFIX, first_items

MAX_AGE = 120
BLANK = "blank"  # the code of an empty cell in a label column
KEPT_UNKNOWN = "kept as unknown"
RECORD_COLUMNS = ["file", "check", "action", "problem", "rows", "first_lines"]


def read_table(path: Path, required: list[str], **read_options) -> pd.DataFrame:
    """Read a CSV (optionally gzipped) or parquet table, check its columns, and index rows by their file line."""
    if not path.is_file():
        raise ManifestError(f"{path}: file not found")
    try:
        if path.suffix == ".parquet":
            table = pd.read_parquet(path)
        else:
            table = pd.read_csv(path, **read_options)
    except (ValueError, OSError, pd.errors.ParserError) as error:
        raise ManifestError(f"{path}: cannot read table: {' '.join(str(error).split())}") from None
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise ManifestError(f"{path}: missing column(s) {missing}; found {list(table.columns)}")
    table.index = pd.RangeIndex(2, len(table) + 2, name="line")
    return table


def resolve_paths(root: Path, relative: pd.Series, table_path: Path) -> pd.Series:
    """Absolute image paths; a file listed in the table but absent on disk is an error, never a silent skip."""
    paths = relative.map(lambda p: str((root / p).resolve()))
    absent = [(row, p) for row, p in paths.items() if not Path(p).is_file()]
    if absent:
        row, path = absent[0]
        raise ManifestError(f"{table_path}: line {row} refers to a missing image {path} ({len(absent)} missing)")
    return paths


def grades_to_labels(grades: pd.DataFrame, positive_grades: list[int], table_path: Path) -> pd.DataFrame:
    """Binarise severity grades (the reference study counts grades 3 and 4 as positive)."""
    numeric = grades.apply(pd.to_numeric, errors="coerce")
    bad = numeric.isna() | ~numeric.isin(range(5))
    if bad.to_numpy().any():
        row, column = next((r, c) for c in bad.columns for r in bad.index[bad[c]])
        raise ManifestError(
            f"{table_path}: line {row}, column '{column}': grade must be 0-4, got {grades.at[row, column]!r}"
        )
    return numeric.isin(positive_grades).astype("int8").add_prefix(LABEL_PREFIX)


def find_table(root: Path, name: str | None, pattern: str) -> Path:
    """``root/name`` when configured, else the one file matching ``pattern`` (e.g. ``Data_Entry_2017*.csv*``)."""
    if name:
        return root / name
    matches = sorted(root.glob(pattern))
    if len(matches) != 1:
        raise ManifestError(
            f"{root}: expected one file matching '{pattern}', found {[m.name for m in matches]}; name it in the config"
        )
    return matches[0]


def index_images(root: Path, folders: list[str], suffixes: tuple[str, ...]) -> dict[str, str]:
    """File name -> absolute path over the folders (globs) under ``root``, e.g. NIH's ``images_*/images``.

    One directory scan per folder: checking 200,000 paths one by one would stat each.
    """
    index: dict[str, str] = {}
    for folder in sorted({f for pattern in folders for f in root.glob(pattern) if f.is_dir()}):
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.lower().endswith(suffixes):
                    index.setdefault(entry.name, str(Path(entry.path).resolve()))
    return index


class RowChecks:
    """Applies the row checks of one source table: each failing set of rows is an error or, by config, dropped."""

    def __init__(self, on_invalid: dict | None):
        self.on_invalid = on_invalid or {}
        self.records: list[dict] = []  # one per (file, check): rows dropped or kept as unknown, and the first lines

    def policy(self, check: str) -> str:
        return self.on_invalid.get(check, "error")

    def check(
        self, table: pd.DataFrame, bad: pd.Series, check: str, problem: str, path: Path, values: pd.Series | None = None
    ) -> pd.DataFrame:
        """Return ``table`` without the ``bad`` rows if the policy drops them; raise ManifestError otherwise."""
        lines = table.index[bad.reindex(table.index, fill_value=False).to_numpy(dtype=bool)]
        if not len(lines):
            return table
        shown = [f"{line} ({values[line]!r})" if values is not None else str(line) for line in lines]
        where = f"{problem} in {len(lines)} row(s), line(s) {first_items(shown)}"
        if self.policy(check) == "error":
            raise ManifestError(f"{path}: {where} (or set source.on_invalid.{check}: drop)")
        self._record(path, check, "dropped", problem, lines)
        return table.drop(index=lines)

    def _record(self, path: Path, check: str, action: str, problem: str, lines) -> None:
        print(f"{path}: {action} {len(lines)} row(s) with {problem}, line(s) {first_items(lines)}")
        self.records.append(
            {
                "file": str(path),
                "check": check,
                "action": action,
                "problem": problem,
                "rows": len(lines),
                "first_lines": first_items(lines),
            }
        )

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.records, columns=RECORD_COLUMNS)

    def image_paths(self, table: pd.DataFrame, paths: pd.Series, path: Path) -> tuple[pd.DataFrame, pd.Series]:
        """Drop or refuse rows whose image is absent (``paths`` is NaN where no file was found)."""
        missing = paths.isna() | ~paths.fillna("").map(os.path.isfile)
        table = self.check(
            table,
            missing,
            "missing_image",
            "image file not found",
            path,
            values=paths.fillna("(not in the image folders)"),
        )
        return table, paths.loc[table.index]

    def sex(
        self, table: pd.DataFrame, raw: pd.Series, codes: dict[str, list], path: Path
    ) -> tuple[pd.DataFrame, pd.Series]:
        """Map source sex codes to F/M; a missing or unknown code fails, is dropped, or (``unknown``) becomes NA."""
        lookup = {str(code).strip().lower(): sex for sex, values in codes.items() for code in values}
        sex = raw.map(lambda v: lookup.get(str(v).strip().lower()) if pd.notna(v) else None)
        bad = sex.isna()
        if self.policy("sex") == "unknown" and bad.any():
            self._record(path, "sex", KEPT_UNKNOWN, "missing or unknown sex code", table.index[bad])
        else:
            table = self.check(table, bad, "sex", f"sex code not in {sorted(lookup)}", path, values=raw)
        return table, sex.loc[table.index]

    def age(self, table: pd.DataFrame, age: pd.Series, raw: pd.Series, path: Path) -> tuple[pd.DataFrame, pd.Series]:
        """Check parsed ages (years, NaN = unparseable or missing) against [0, 120]."""
        bad = age.isna() | (age < 0) | (age > MAX_AGE)
        if self.policy("age") == "unknown":
            if bad.any():
                self._record(
                    path, "age", KEPT_UNKNOWN, f"missing or impossible age (outside 0-{MAX_AGE})", table.index[bad]
                )
            age = age.where(~bad)
        else:
            table = self.check(table, bad, "age", f"missing or impossible age (outside 0-{MAX_AGE})", path, values=raw)
        return table, age.loc[table.index].astype(float)


def coded_labels(
    table: pd.DataFrame, columns: dict[str, str], codes: dict, path: Path, checks: RowChecks
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Labels from coded columns: ``codes`` maps each source value (and ``BLANK``) to 0, 1 or NaN (masked).

    ``columns`` maps a finding name to its source column. A value outside ``codes`` fails or drops its row.
    """
    numeric_codes = {c: v for c, v in codes.items() if c != BLANK}
    labels, bad_value = {}, pd.Series(None, index=table.index, dtype=object)
    for name, column in columns.items():
        raw = table[column]
        numeric = pd.to_numeric(raw, errors="coerce")
        mapped, known = numeric.map(numeric_codes), numeric.isin(list(numeric_codes))
        if BLANK in codes:
            blank = raw.isna() | (raw.astype(str).str.strip() == "")
            mapped, known = mapped.mask(blank, codes[BLANK]), known | blank
        bad_value = bad_value.fillna(raw.astype(str).radd(f"{column}=").where(~known))
        labels[f"{LABEL_PREFIX}{name}"] = mapped
    allowed = ", ".join(str(c) for c in codes)
    table = checks.check(
        table, bad_value.notna(), "label_code", f"label value outside the codes ({allowed})", path, values=bad_value
    )
    return table, labels_frame(pd.DataFrame(labels).loc[table.index])


def labels_frame(labels: pd.DataFrame) -> pd.DataFrame:
    """int8 labels when every value is known; float32 with NaN (masked in the loss) otherwise."""
    if labels.isna().to_numpy().any():
        return labels.astype("float32")
    return labels.astype("int8")


def uncertain_codes(uncertain: str, blank: str) -> dict:
    """CheXpert-style codes 1 / 0 / -1 / blank to 0, 1 or NaN (masked) by the configured policies."""
    value = {"zeros": 0.0, "ones": 1.0, "ignore": np.nan}
    return {1: 1.0, 0: 0.0, -1: value[uncertain], BLANK: value[blank]}
