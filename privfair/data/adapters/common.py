"""Pieces every adapter uses: reading tables, locating images, and row checks that fail or drop by config.

Rows of a source table are identified by their line in the file (header = line 1, blank lines and cells that span
lines counted as an editor counts them), so that a message points at what the user sees in an editor; entries of a
JSON list or an array are named by their key and position (``training[3]``). :func:`row_name` is the one place that
says how. Every cell is read as the text the file holds: ids stay as exported (patient "01" is not patient "001"),
a blank cell is "" (never NaN, nor the string "nan"), and messages quote values as the file has them. A failed check
(missing_image, label_code, sex, age) lists the first rows and the count; where ``source.on_invalid`` says ``drop``
for that check, the rows are removed and counted instead, and ``unknown`` (sex, age) keeps them with the value unknown
(the counts reach the log and the dataset summary through :class:`RowChecks`).
"""

from __future__ import annotations

import csv
import gzip
import os
from pathlib import Path

import numpy as np
import pandas as pd

from privfair.core.errors import ManifestError
from privfair.data.manifest import LABEL_PREFIX, UNKNOWN, first_items

MAX_AGE = 120
BLANK = "blank"  # the code of an empty cell in a label column
KEPT_UNKNOWN = "kept as unknown"
RECORD_COLUMNS = ["file", "check", "action", "problem", "rows", "first_lines"]
LINE = "line"  # the index name of a table read by read_table: each row's line in the file


def row_name(index_name: str | None, position) -> str:
    """How a message names one row of a source file.

    Args:
        index_name: the name of the row index: ``"line"`` for a table read by :func:`read_table` (the position is
            the row's line in the file), otherwise the key of a JSON list or an array (e.g. ``"training"``).
        position: the row's index value.

    Returns:
        ``"line 7"``, or ``"training[3]"`` for an entry of a list or array.
    """
    return f"line {position}" if index_name == LINE else f"{index_name}[{position}]"


def _short_names(index: pd.Index) -> list[str]:
    """Rows as listed after "line(s)": the line numbers of a table, the ``key[i]`` of entries of a list."""
    return [str(position) if index.name == LINE else row_name(index.name, position) for position in index]


def rows_named(index: pd.Index, values: pd.Series | None = None) -> str:
    """The first rows of ``index`` as a message names them, e.g. ``line(s) 2 ('X'), 5 ('') and 3 more``.

    Args:
        index: the rows (a table's lines, or positions in a list or array named by the index).
        values: the value of each row to quote beside it (indexed like the table), if any.

    Returns:
        The first five rows, their values, and how many more there are.
    """
    names = _short_names(index)
    if values is not None:
        names = [f"{name} ({values[position]!r})" for name, position in zip(names, index)]
    return ("line(s) " if index.name == LINE else "") + first_items(names)


def origins(path: Path, index: pd.Index) -> pd.Series:
    """Where each row came from, for the manifest's ``origin`` column (:data:`privfair.data.manifest.ORIGIN`).

    Args:
        path: the source file.
        index: its rows, as :func:`row_name` takes them.

    Returns:
        ``"<file>: line <n>"`` (or ``"<file>: training[3]"``) for each row, indexed by ``index``.
    """
    return pd.Series([f"{path}: {row_name(index.name, position)}" for position in index], index=index, dtype=object)


def read_table(path: Path, required: list[str], **read_options) -> pd.DataFrame:
    """Read a CSV (optionally gzipped) or parquet table as text, check its header, and index rows by file line.

    Args:
        path: the table; ``.parquet`` is read as parquet, anything else as CSV.
        required: columns that must be present.
        **read_options: passed to ``pandas.read_csv`` (e.g. ``names`` for a header pandas cannot parse).

    Returns:
        The table, every cell a string as the file has it ("" where blank; parquet values as a CSV export would
        show them), indexed by each row's line in the file (index name ``"line"``).

    Raises:
        ManifestError: the file is missing or unreadable, a header is duplicated or ambiguous, a required column is
            missing, or the table has no rows.
    """
    if not path.is_file():
        raise ManifestError(f"{path}: file not found")
    try:
        if path.suffix == ".parquet":
            table = pd.read_parquet(path)
            check_header(path, list(table.columns))
            table, lines = table.apply(_as_text), range(2, len(table) + 2)
        else:
            header, lines = _csv_layout(path)
            check_header(path, read_options.get("names", header))
            table = pd.read_csv(path, dtype=str, keep_default_na=False, **read_options)
    except ManifestError:  # a bad header (a ValueError too)
        raise
    except (ValueError, OSError, pd.errors.ParserError, csv.Error) as error:
        raise ManifestError(f"{path}: cannot read table: {' '.join(str(error).split())}") from None
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise ManifestError(f"{path}: missing column(s) {missing}; found {list(table.columns)}")
    if table.empty:
        raise ManifestError(f"{path}: the table has no rows (only a header)")
    if len(lines) != len(table):  # the CSV module and pandas disagree on a malformed line: count rows instead
        print(f"{path}: cannot tell every row's line; messages count rows from line 2, blank lines left out")
        lines = range(2, len(table) + 2)
    table.index = pd.Index(lines, name=LINE)
    return table


def _csv_layout(path: Path) -> tuple[list[str], list[int]]:
    """The header fields and the line on which each data row starts, as pandas reads the rows: blank lines
    (whitespace only) are no rows, and a quoted cell may span lines."""
    # utf-8-sig: UTF-8, as pandas reads it, whose byte-order mark (if any) is not part of the first column's name
    with (gzip.open if path.suffix == ".gz" else open)(path, "rt", newline="", encoding="utf-8-sig") as file:
        reader = csv.reader(file)
        header, starts, previous_end = None, [], 0
        for record in reader:
            start, previous_end = previous_end + 1, reader.line_num
            if not record or (len(record) == 1 and not record[0].strip()):
                continue
            if header is None:
                header = record
            else:
                starts.append(start)
    return header or [], starts


def _as_text(column: pd.Series) -> pd.Series:
    """A parquet column as a CSV export shows it: "" where missing, whole floats without ".0" (a float column is
    often an integer one with gaps), everything else ``str``."""
    missing = column.isna()
    if pd.api.types.is_float_dtype(column) and (column[~missing] % 1 == 0).all():
        column = column.astype("Int64")
    return column.astype(str).where(~missing, "")


def check_header(path: Path, names: list) -> None:
    """Refuse a header that names a column twice, or two columns that differ only in case or spaces ("age" and
    "Age "): which of them the config means is ambiguous. Unnamed (empty) columns are not compared.

    Args:
        path: the table, named in the message.
        names: its column names, in order.

    Raises:
        ManifestError: naming the file, the header names and their columns (1-based).
    """
    seen: dict[str, int] = {}
    for column, name in enumerate(map(str, names), start=1):
        key = " ".join(name.split()).casefold()
        if not key:
            continue
        if key in seen:
            first = str(names[seen[key] - 1])
            if first == name:
                what = f"appears twice (columns {seen[key]} and {column})"
            else:
                what = f"(column {column}) and {first!r} (column {seen[key]}) differ only in case or spaces"
            raise ManifestError(f"{path}: header: column {name!r} {what}; rename one")
        seen[key] = column


def locate(root: Path, listed: pd.Series, table_path: Path, allow_outside_root: bool = False) -> pd.Series:
    """Absolute, resolved paths of the files a table lists relative to ``root``.

    A listed path that leads outside ``root`` as written (an absolute path elsewhere, or ``../``) is refused unless
    ``source.allow_outside_root`` is true; a symlink inside ``root`` may point anywhere (the dataset's owner made it).

    Args:
        root: the dataset folder (``source.root``).
        listed: the paths as the table lists them, indexed like the table (by line).
        table_path: the table, named in messages.
        allow_outside_root: ``source.allow_outside_root``.

    Returns:
        The resolved paths (symlinks followed), as strings, indexed like ``listed``.

    Raises:
        ManifestError: naming the table, the lines and the paths that lead outside ``root``.
    """
    base = os.path.abspath(root)
    inside = os.path.join(base, "")  # with its trailing separator: "/data/nih/", and "/" for root /
    absolute = listed.map(lambda p: os.path.normpath(os.path.join(base, p)))
    outside = ~absolute.map(lambda p: p.startswith(inside) or p == base)  # blank: root itself, not found later
    if outside.any() and not allow_outside_root:
        raise ManifestError(
            f"{table_path}: image path(s) outside the dataset folder {root} in {int(outside.sum())} row(s), "
            f"{rows_named(listed.index[outside.to_numpy()], listed)} (or set source.allow_outside_root: true)"
        )
    return absolute.map(lambda p: str(Path(p).resolve()))


def resolve_paths(root: Path, relative: pd.Series, table_path: Path, allow_outside_root: bool = False) -> pd.Series:
    """:func:`locate` (same arguments and result), where a file listed in the table but absent on disk is an error,
    never a silent skip."""
    paths = locate(root, relative, table_path, allow_outside_root)
    absent = [(row, p) for row, p in paths.items() if not Path(p).is_file()]
    if absent:
        row, path = absent[0]
        raise ManifestError(
            f"{table_path}: {row_name(paths.index.name, row)} refers to a missing image {path} ({len(absent)} missing)"
        )
    return paths


def or_unknown(values: pd.Series) -> pd.Series:
    """Blank cells (e.g. of a view column) as ``"unknown"``.

    Args:
        values: a text column, as :func:`read_table` gives it.

    Returns:
        ``values`` with blank (or whitespace-only) cells replaced by ``"unknown"``.
    """
    return values.where(values.str.strip() != "", UNKNOWN)


def grades_to_labels(grades: pd.DataFrame, positive_grades: list[int], table_path: Path) -> pd.DataFrame:
    """Binarise severity grades (the reference study counts grades 3 and 4 as positive)."""
    numeric = grades.apply(pd.to_numeric, errors="coerce")
    bad = numeric.isna() | ~numeric.isin(range(5))
    if bad.to_numpy().any():
        row, column = next((r, c) for c in bad.columns for r in bad.index[bad[c]])
        raise ManifestError(
            f"{table_path}: {row_name(grades.index.name, row)}, column '{column}': grade must be 0-4, "
            f"got {grades.at[row, column]!r}"
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
        where = f"{problem} in {len(lines)} row(s), {rows_named(lines, values)}"
        if self.policy(check) == "error":
            raise ManifestError(f"{path}: {where} (or set source.on_invalid.{check}: drop)")
        self._record(path, check, "dropped", problem, lines)
        return table.drop(index=lines)

    def _record(self, path: Path, check: str, action: str, problem: str, lines) -> None:
        print(f"{path}: {action} {len(lines)} row(s) with {problem}, {rows_named(lines)}")
        self.records.append(
            {
                "file": str(path),
                "check": check,
                "action": action,
                "problem": problem,
                "rows": len(lines),
                "first_lines": first_items(_short_names(lines)),
            }
        )

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.records, columns=RECORD_COLUMNS)

    def image_paths(self, table: pd.DataFrame, paths: pd.Series, path: Path) -> tuple[pd.DataFrame, pd.Series]:
        """Drop or refuse rows whose image is absent (``paths`` is NaN where no file was found)."""
        missing = paths.isna() | ~paths.fillna("").map(os.path.isfile).astype(bool)
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

    ``columns`` maps a finding name to its source column (text, as :func:`read_table` gives it). A value outside
    ``codes`` fails or drops its row; so does a blank cell where ``codes`` has no ``BLANK`` entry (the message names
    the column and shows ``(blank)``).
    """
    numeric_codes = {c: v for c, v in codes.items() if c != BLANK}
    labels, bad_value = {}, pd.Series(None, index=table.index, dtype=object)
    for name, column in columns.items():
        raw = table[column]
        numeric = pd.to_numeric(raw, errors="coerce")
        mapped, known = numeric.map(numeric_codes), numeric.isin(list(numeric_codes))
        blank = raw.str.strip() == ""
        if BLANK in codes:
            mapped, known = mapped.mask(blank, codes[BLANK]), known | blank
        bad_value = bad_value.fillna(raw.mask(blank, "(blank)").radd(f"{column}=").where(~known))
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
