"""What may leave the building: collect the shareable results into one folder and prove that no identifier is in it.

``results/`` is private (the workflow's umask makes it 0600/0700): the manifests, splits, predictions and logs name
patients, studies and images. The ``release`` rule copies out what may be shared (aggregate tables, figures, dataset
summaries, and the models that a release can stand behind, each with its privacy record), readable by all (files
0644, folders 0755), lists it in ``MANIFEST.md``, and then scans every file for every identifier of every dataset's
manifest. One identifier found fails the release and deletes the folder, so nothing partial is left.

The scan reads each file as it will be read elsewhere:

- text (CSV, Markdown, LaTeX, JSON, HTML, SVG, …): whole tokens, case-insensitively. A token is a run of letters
  and digits (any other character, "_" included, separates tokens), so ``P00017`` is found in ``P00017.png``,
  ``roc_P00017`` or ``"p00017"`` but not in ``XP00017`` or ``P000171``, and a numeric id not as the decimals of a
  number (``0.123456``); ``data:`` URIs (how Snakemake's HTML report embeds every file) are decoded and scanned as
  the files they are;
- PDF: the text of every page as pypdf extracts it (matplotlib's Type 42 and Type 3 fonts both carry their text), once
  whole, once per shown string and once per text object (extraction glues neighbouring labels such as a tick and an
  axis label together, and splits ligatures such as "fi" from their word: one of the three keeps every id whole),
  plus every string object of the file (document information, annotations) and the XMP metadata;
- PNG: the text chunks (tEXt, zTXt, iTXt); the pixels are not text;
- PyTorch checkpoints (``.pt``, a zip): every string of the pickled metadata and the archive's names, not the tensors;
- zip archives: each member, by its own type.

A file of any other type that is not UTF-8 text cannot be scanned and is reported as a finding.

Identifiers that cannot be told from ordinary numbers or words (purely numeric ones shorter than 6 digits, any
shorter than 4 characters) are not scanned, since every table would "contain" them; they are counted and reported,
never skipped silently. A finding shows the identifier's kind and only its first 2 characters and its length.

By hand, on a folder (e.g. after adding Snakemake's HTML report to the release)::

    python -m privfair.report.release scan results/<study>/release
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import io
import json
import logging
import math
import os
import pickletools
import re
import shutil
import struct
import sys
import zipfile
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from privfair.core.errors import PrivfairError
from privfair.core.provenance import provenance

IDENTIFIER_COLUMNS = ("patient_id", "study_id", "image_id")
FILE_NAME = "image file name"
MIN_LENGTH = 4
MIN_NUMERIC_LENGTH = 6
UNSCANNABLE = (
    f"purely numeric and shorter than {MIN_NUMERIC_LENGTH} digits, or shorter than {MIN_LENGTH} characters: they "
    "cannot be told from ordinary numbers and words"
)
TEXT_SUFFIXES = frozenset(
    (".csv", ".tsv", ".md", ".tex", ".json", ".html", ".htm", ".svg", ".txt", ".rst", ".yaml", ".yml", ".log", ".xml")
    + (".js", ".css", ".bib", ".dot")
)
CHECKPOINT_SUFFIXES = frozenset((".pt", ".pth", ".ckpt"))
# Suffixes stripped from an image file's name to give the stem that is scanned too (``P00017.nii.gz`` → ``P00017``).
IMAGE_SUFFIXES = frozenset(
    (".png", ".jpg", ".jpeg", ".dcm", ".dicom", ".nii", ".gz", ".npy", ".npz", ".tif", ".tiff", ".bmp", ".mha", ".mhd")
    + (".nrrd",)
)
MANIFEST_NAME = "MANIFEST.md"
FILE_MODE, DIR_MODE = 0o644, 0o755
SECURE = "secure"
SEEDED_REASON = "seeded DP noise: reproducible research run — not for release"
NON_PRIVATE_REASON = "non-private model: no privacy guarantee, not for release"
MAX_SHOWN = 50  # findings named in the error message; the log has them all

# Tokens are runs of letters and digits; any other character ("_" too) separates them.
_WORD = re.compile(r"[^\W_]+")
_WORD_CHAR = re.compile(r"[^\W_]")
_DIGITS = re.compile(r"[0-9]+")
_DATA_URI = re.compile(r"data:([^,;\"'\s]*)((?:;[^,;\"'\s]*)*);base64,([A-Za-z0-9+/=]+)", re.IGNORECASE)
_MIME_SUFFIXES = {"image/png": ".png", "image/svg+xml": ".svg", "application/pdf": ".pdf", "application/zip": ".zip"}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# The pickle opcodes that carry a string (or bytes) argument: keys, values, class and module names.
_PICKLE_STRINGS = frozenset(
    ("STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8")
    + ("BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BYTEARRAY8", "GLOBAL", "INST")
)


class ReleaseError(PrivfairError, RuntimeError):
    """The release cannot be made: an identifier was found (the folder is deleted) or an input is unusable."""


@dataclass(frozen=True)
class Finding:
    """One identifier in one file: where, what kind, and a masked form of it (never the full value).

    ``file`` is relative to the scanned folder; an embedded file is named after its container
    (``report.html > summary.png``). ``shown`` is the identifier's first 2 characters and its length.
    """

    file: str
    kind: str
    shown: str

    def __str__(self) -> str:
        return f"{self.file}: {self.kind} {self.shown}"


def mask(identifier: str) -> str:
    """An identifier as a finding may show it: its first 2 characters and its length.

    Args:
        identifier: the identifier.

    Returns:
        E.g. ``'P0… (6 characters)'``.
    """
    return f"{identifier[:2]}… ({len(identifier)} characters)"


def is_scannable(identifier: str) -> bool:
    """Whether an identifier can be told from ordinary numbers and words in a file.

    Args:
        identifier: an id exactly as the manifest has it.

    Returns:
        False for ids shorter than 4 characters, purely numeric ids shorter than 6 digits and ids without a letter
        or digit; True otherwise.
    """
    if len(identifier) < MIN_LENGTH or not _WORD.search(identifier):
        return False
    return not (_DIGITS.fullmatch(identifier) and len(identifier) < MIN_NUMERIC_LENGTH)


def file_stem(name: str) -> str:
    """An image file's name without its image suffixes (``P00017_S01.png`` → ``P00017_S01``, ``a.nii.gz`` → ``a``)."""
    path = Path(name)
    while path.suffix.lower() in IMAGE_SUFFIXES and path.stem:
        path = Path(path.stem)
    return path.name


@dataclass
class Identifiers:
    """The identifiers to scan for, and the count of those that cannot be scanned.

    ``kinds`` maps each scannable identifier, lower-cased, to its kind(s) (``<dataset> <column>``) and ``shown`` to
    its masked form (:func:`mask`, in its own case); neither is in the repr. ``scanned`` and ``skipped`` count the
    distinct identifiers of each kind that are scanned for, and that cannot be.
    """

    kinds: dict[str, str] = field(default_factory=dict, repr=False)
    shown: dict[str, str] = field(default_factory=dict, repr=False)
    scanned: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)

    @classmethod
    def from_values(cls, values: dict[str, object]) -> Identifiers:
        """Identifiers from lists of values per kind.

        Args:
            values: kind (e.g. ``"chest patient_id"``) → its identifiers (strings; duplicates counted once).

        Returns:
            The scannable identifiers with their kinds, and the counts of both sorts per kind.
        """
        kinds = defaultdict(list)
        identifiers = cls()
        for kind, column in values.items():
            for value in dict.fromkeys(str(v) for v in column):
                if is_scannable(value):
                    identifiers.scanned[kind] += 1
                    kinds[value.lower()].append(kind)
                    identifiers.shown.setdefault(value.lower(), mask(value))
                else:
                    identifiers.skipped[kind] += 1
        identifiers.kinds = {value: ", ".join(dict.fromkeys(k)) for value, k in kinds.items()}
        return identifiers

    @property
    def n_skipped(self) -> int:
        return sum(self.skipped.values())

    def summary_lines(self) -> list[str]:
        """One line per kind: how many identifiers are scanned for and how many cannot be."""
        return [
            f"{kind}: {self.scanned[kind]} scanned for, {self.skipped[kind]} not scannable"
            for kind in sorted(set(self.scanned) | set(self.skipped))
        ]


def load_identifiers(manifests: dict[str, str | Path]) -> Identifiers:
    """Every patient, study and image id and image file name (and stem) of the datasets' manifests.

    Args:
        manifests: dataset name → its ``manifest.parquet`` (columns ``image_id, patient_id, study_id, path``).

    Returns:
        The identifiers, with kinds such as ``"synth_cxr patient_id"`` and ``"synth_cxr image file name"``.

    Raises:
        ReleaseError: a manifest lacks one of those columns.
    """
    values = {}
    for dataset, path in manifests.items():
        columns = [*IDENTIFIER_COLUMNS, "path"]
        manifest = pd.read_parquet(path)
        missing = [c for c in columns if c not in manifest.columns]
        if missing:
            raise ReleaseError(f"{path}: no column(s) {missing}: cannot tell which identifiers to scan for")
        for column in IDENTIFIER_COLUMNS:
            values[f"{dataset} {column}"] = manifest[column].dropna().astype(str)
        names = [Path(str(p)).name for p in manifest["path"].dropna()]
        values[f"{dataset} {FILE_NAME}"] = names + [file_stem(name) for name in names]
    return Identifiers.from_values(values)


class _Matcher:
    """Whole-token, case-insensitive search for many identifiers at once: each is indexed by its first word."""

    def __init__(self, identifiers: Identifiers):
        self.kinds, self.shown = identifiers.kinds, identifiers.shown
        self.index = defaultdict(list)
        for value in identifiers.kinds:
            first = _WORD.search(value)
            self.index[first.group()].append((value, first.start()))

    def find(self, text: str) -> set[str]:
        text = text.lower()
        found = set()
        for word in _WORD.finditer(text):
            for value, offset in self.index.get(word.group(), ()):
                start, end = word.start() - offset, word.start() - offset + len(value)
                if start < 0 or text[start:end] != value:
                    continue
                if start > 0 and _WORD_CHAR.match(value[0]) and _WORD_CHAR.match(text[start - 1]):
                    continue
                if end < len(text) and _WORD_CHAR.match(value[-1]) and _WORD_CHAR.match(text[end]):
                    continue
                # A numeric id as the decimals of a number (0.123456) is a number, not the id.
                if _DIGITS.fullmatch(value) and start >= 2 and text[start - 1] == "." and text[start - 2].isdigit():
                    continue
                found.add(value)
        return found


def _file_type(name: str) -> str:
    suffix = Path(name).suffix.lower()
    if suffix in TEXT_SUFFIXES:
        return "text"
    if suffix in CHECKPOINT_SUFFIXES:
        return "checkpoint"
    return {".pdf": "pdf", ".png": "png", ".zip": "zip"}.get(suffix, "other")


def _texts(data: bytes, name: str) -> tuple[list[str], list[tuple[bytes, str]]]:
    """What to search in a file: its texts, and the files embedded in it (``(bytes, name)``) to scan in turn.

    Raises:
        ValueError: the file cannot be read as its type (or its type cannot be scanned).
    """
    kind = _file_type(name)
    if kind == "other":
        try:
            return _text_file(data.decode("utf-8"))
        except UnicodeDecodeError:
            raise ValueError("not a type the scan can read (and not UTF-8 text)") from None
    if kind == "text":
        return _text_file(data.decode("utf-8", errors="replace"))
    if kind == "pdf":
        return _pdf_texts(data), []
    if kind == "png":
        return _png_texts(data), []
    if kind == "checkpoint":
        return _checkpoint_texts(data), []
    return _zip_members(data)


def _text_file(text: str) -> tuple[list[str], list[tuple[bytes, str]]]:
    """The text without its base64 ``data:`` payloads, and those payloads decoded (named by ``filename=``/mime)."""
    embedded = []
    for number, match in enumerate(_DATA_URI.finditer(text)):
        mime, parameters, payload = match.groups()
        names = [p.split("=", 1)[1] for p in parameters.split(";") if p.lower().startswith("filename=")]
        mime = mime.lower()
        suffix = ".txt" if mime.startswith("text/") else _MIME_SUFFIXES.get(mime, "")  # no suffix: binary or UTF-8
        try:
            decoded = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            decoded = payload.encode()  # not base64 after all: scan it as it stands
        embedded.append((decoded, names[0] if names else f"data URI {number + 1}{suffix}"))
    return [_DATA_URI.sub(lambda m: f"data:{m[1]}{m[2]};base64,", text)], embedded


def _pdf_texts(data: bytes) -> list[str]:
    from pypdf import PdfReader
    from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, NameObject, StreamObject

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    reader = PdfReader(io.BytesIO(data), strict=False)
    texts = [text for page in reader.pages for text in _page_texts(page)]
    # Every string and name of the file's objects (document information, annotations, outlines), and the XMP.
    strings, seen, stack = [], set(), [reader.trailer]
    while stack:
        item = stack.pop()
        if isinstance(item, IndirectObject):
            if (item.idnum, item.generation) in seen:
                continue
            seen.add((item.idnum, item.generation))
            item = item.get_object()
        if isinstance(item, StreamObject) and item.get("/Type") == "/Metadata":
            strings.append(item.get_data().decode("utf-8", errors="replace"))
        if isinstance(item, DictionaryObject):
            stack.extend(item.values())
            strings.extend(str(key) for key in item)
        elif isinstance(item, ArrayObject):
            stack.extend(item)
        elif isinstance(item, (str, NameObject)):
            strings.append(str(item))
        elif isinstance(item, bytes):
            strings.append(item.decode("latin-1"))
    return [*texts, "\n".join(strings)]


def _page_texts(page) -> list[str]:
    """A page's text three ways: as extracted, one line per shown string, one line per text object (BT … ET).

    pypdf reports a text object's strings only once the next one begins, so they are grouped by the BT that follows.
    """
    shown, objects = [], [[]]

    def on_text(text, *_):
        shown.append(text)
        objects[-1].append(text)

    def on_operator(operator, *_):
        if operator == b"BT":
            objects.append([])

    whole = page.extract_text(visitor_text=on_text, visitor_operand_before=on_operator)
    return [whole, "\n".join(shown), "\n".join("".join(o) for o in objects)]


def _png_texts(data: bytes) -> list[str]:
    if not data.startswith(_PNG_SIGNATURE):
        raise ValueError("not a PNG file")
    texts, position = [], len(_PNG_SIGNATURE)
    while position + 8 <= len(data):
        length, chunk = struct.unpack(">I4s", data[position : position + 8])
        body = data[position + 8 : position + 8 + length]
        position += 12 + length
        if chunk == b"tEXt":
            texts.append(body.replace(b"\0", b"\n").decode("latin-1"))
        elif chunk == b"zTXt":
            keyword, _, rest = body.partition(b"\0")
            texts.append(keyword.decode("latin-1") + "\n" + zlib.decompress(rest[1:]).decode("latin-1"))
        elif chunk == b"iTXt":
            keyword, _, rest = body.partition(b"\0")
            compressed, rest = rest[0], rest[2:]
            language, _, rest = rest.partition(b"\0")
            translated, _, text = rest.partition(b"\0")
            text = zlib.decompress(text) if compressed else text
            texts.append(b"\n".join((keyword, language, translated, text)).decode("utf-8", errors="replace"))
        elif chunk == b"IEND":
            break
    return texts


def _checkpoint_texts(data: bytes) -> list[str]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise ValueError("not a zip-format PyTorch checkpoint (the legacy format cannot be scanned)") from None
    texts = ["\n".join(archive.namelist()), archive.comment.decode("latin-1")]
    for member in archive.infolist():
        if member.filename.endswith(".pkl"):
            for opcode, argument, _ in pickletools.genops(archive.read(member)):
                if opcode.name in _PICKLE_STRINGS and argument is not None:
                    texts.append(argument.decode("latin-1") if isinstance(argument, bytes) else str(argument))
        elif "/data/" not in f"/{member.filename}" and member.file_size <= 4096:  # small records, not tensors
            texts.append(archive.read(member).decode("latin-1"))
    return texts


def _zip_members(data: bytes) -> tuple[list[str], list[tuple[bytes, str]]]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise ValueError("not a zip archive") from None
    members = [m for m in archive.infolist() if not m.is_dir()]
    return ["\n".join(archive.namelist()), archive.comment.decode("latin-1")], [
        (archive.read(m), m.filename) for m in members
    ]


def _scan_bytes(data: bytes, name: str, label: str, matcher: _Matcher, depth: int = 0) -> list[Finding]:
    try:
        texts, embedded = _texts(data, name)
    except Exception as error:  # noqa: BLE001 - a file the scan cannot read, however it fails, cannot be shown clean
        return [Finding(label, "unscannable file", f"({type(error).__name__}: {error})")]
    found = set()
    for text in texts:
        found |= matcher.find(text)
    findings = [Finding(label, matcher.kinds[value], matcher.shown[value]) for value in sorted(found)]
    for content, inner in embedded:
        if depth >= 4:
            findings.append(Finding(f"{label} > {inner}", "unscannable file", "(nested too deeply)"))
        else:
            findings += _scan_bytes(content, inner, f"{label} > {inner}", matcher, depth + 1)
    return findings


def scan_for_identifiers(folder: str | Path, identifiers: Identifiers) -> list[Finding]:
    """Search every file of a folder, and every file name, for the identifiers.

    Args:
        folder: the folder (e.g. ``results/release``); every file under it is scanned, hidden ones included.
        identifiers: what to search for (:func:`load_identifiers`).

    Returns:
        One finding per identifier and file where it occurs (files named relative to ``folder``), and one per file
        that cannot be read as its type; empty when the folder is clean.
    """
    folder = Path(folder)
    matcher = _Matcher(identifiers)
    findings = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(folder).as_posix()
        findings += [Finding(relative, matcher.kinds[v], matcher.shown[v]) for v in sorted(matcher.find(relative))]
        findings += _scan_bytes(path.read_bytes(), path.name, relative, matcher)
    return findings


def model_decision(record: dict) -> tuple[bool, str]:
    """Whether a run's model may be released, by its privacy record.

    Args:
        record: the run's ``privacy.json``. A model is released only when it is a DP run (``private`` true, finite
            ε) whose ``noise_mode`` is ``secure``; a record without one (written before noise modes) is ``seeded``.

    Returns:
        ``(release, reason)``: the reason says why a model is left out (or that it is released).
    """
    epsilon = record.get("epsilon")
    if record.get("private") is False or epsilon in ("inf", math.inf):
        return False, NON_PRIVATE_REASON
    noise = record.get("noise_mode") or "seeded"
    if noise == SECURE:
        return True, "DP run with secure noise (noise and sampling from unrecorded OS entropy)"
    if noise == "seeded":
        return False, SEEDED_REASON
    return False, f"unknown noise mode {noise!r}: not for release"


@dataclass
class ReleasePlan:
    """What a release holds: ``files`` (source → path inside the release) and ``left_out`` (run → reason)."""

    files: dict[Path, str] = field(default_factory=dict)
    left_out: dict[str, str] = field(default_factory=dict)


def plan_release(files, runs, root: str | Path = "results") -> ReleasePlan:
    """Where each shared file goes, and which models are left out.

    Args:
        files: tables, figures and dataset summaries, each under ``root`` (kept at its place: ``results/tables/x.csv``
            → ``tables/x.csv``).
        runs: ``(model.pt, privacy.json)`` of every run, under ``root/runs``; a released model goes with its record
            to ``models/<dataset>/<init>/eps-<ε>/seed-<s>/``.
        root: the results folder the paths are relative to.

    Returns:
        The plan.
    """
    root = Path(root)
    plan = ReleasePlan()
    for path in map(Path, files):
        plan.files[path] = _relative(path, root).as_posix()
    for model, record_path in runs:
        model, record_path = Path(model), Path(record_path)
        run = _relative(model.parent, root / "runs")
        release, reason = model_decision(json.loads(record_path.read_text()))
        if release:
            for path in (model, record_path):
                plan.files[path] = (Path("models") / run / path.name).as_posix()
        else:
            plan.left_out[run.as_posix()] = reason
    return plan


def _relative(path: Path, root: Path) -> Path:
    try:
        return path.resolve().relative_to(root.resolve())
    except ValueError:
        return Path(path.name)


def _copy(source: Path, folder: Path, relative: str) -> None:
    target = folder / relative
    for parent in reversed(target.relative_to(folder).parents[:-1]):
        directory = folder / parent
        if not directory.is_dir():
            directory.mkdir()
            directory.chmod(DIR_MODE)
    shutil.copyfile(source, target)
    target.chmod(FILE_MODE)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def manifest_text(folder: Path, plan: ReleasePlan, identifiers: Identifiers) -> str:
    """``MANIFEST.md``: every file released, every model left out and why, and what the identifier scan covers.

    Args:
        folder: the release folder, with the files of ``plan`` in it (their sizes and SHA-256 are listed).
        plan: the release's plan.
        identifiers: the identifiers the release is scanned for.

    Returns:
        The Markdown text.
    """
    origin = provenance()
    lines = [
        "# Release",
        "",
        (
            "What may leave the building: aggregate tables, figures, dataset summaries and the models a release can "
            "stand behind (DP runs with secure noise), each with its privacy record. Made by the `release` rule of "
            f"privfair {origin['privfair_version']} (commit `{origin['git_commit']}`). Every file here was scanned "
            "for the patient, study and image identifiers and image file names of every dataset's manifest, and none "
            "was found (`python -m privfair.report.release scan <folder>` repeats the scan, e.g. after adding the "
            "HTML report)."
        ),
        "",
        "## Files released",
        "",
        "| file | bytes | SHA-256 |",
        "|---|---:|---|",
    ]
    for relative in sorted(plan.files.values()):
        path = folder / relative
        lines.append(f"| `{relative}` | {path.stat().st_size} | `{_sha256(path)}` |")
    lines += ["", "## Models left out", ""]
    if plan.left_out:
        lines += ["| run | reason |", "|---|---|"]
        lines += [f"| `{run}` | {reason} |" for run, reason in sorted(plan.left_out.items())]
    else:
        lines.append("None: every model is a DP run with secure noise.")
    lines += ["", "## Identifier scan", "", "| identifiers | scanned for | not scannable |", "|---|---:|---:|"]
    kinds = sorted(set(identifiers.scanned) | set(identifiers.skipped))
    lines += [f"| {kind} | {identifiers.scanned[kind]} | {identifiers.skipped[kind]} |" for kind in kinds]
    lines.append("")
    if identifiers.n_skipped:
        lines.append(
            f"{identifiers.n_skipped} identifier(s) could not be scanned for, being {UNSCANNABLE}. Check by eye that "
            "no file lists patients, studies or images."
        )
    else:
        lines.append("Every identifier could be scanned for.")
    return "\n".join(lines) + "\n"


def findings_message(findings: list[Finding], what: str) -> str:
    """One line per finding (the first 50 of them), after a line saying what was scanned."""
    lines = [f"{len(findings)} identifier finding(s) in {what}; nothing may be shared from it:"]
    lines += [f"  {finding}" for finding in findings[:MAX_SHOWN]]
    if len(findings) > MAX_SHOWN:
        lines.append(f"  … and {len(findings) - MAX_SHOWN} more")
    return "\n".join(lines)


def build_release(folder, files, runs, manifests: dict[str, str | Path], root: str | Path = "results") -> ReleasePlan:
    """Collect what may be shared into ``folder``, list it in ``MANIFEST.md`` and scan it for identifiers.

    The release is assembled beside ``folder`` (``.partial-<name>``) and renamed to ``folder`` only once the scan has
    found nothing; on a finding, or any error, it is deleted, so nothing partial is left. Files are 0644 and folders
    0755: they are meant to be shared (the rest of ``results/`` stays private).

    Args:
        folder: the release folder to create (e.g. ``results/release``); it must not exist.
        files: tables, figures and dataset summaries under ``root`` (see :func:`plan_release`).
        runs: ``(model.pt, privacy.json)`` of every run; only DP runs with secure noise are released.
        manifests: dataset name → ``manifest.parquet``, whose identifiers are scanned for.
        root: the results folder the paths are relative to.

    Returns:
        The plan that was released.

    Raises:
        ReleaseError: an identifier was found (one line per finding, each identifier masked), or ``folder`` exists.
    """
    folder = Path(folder)
    if folder.exists():
        raise ReleaseError(f"{folder} exists already; delete it to make a new release")
    identifiers = load_identifiers(manifests)
    plan = plan_release(files, runs, root)
    partial = folder.with_name(f".partial-{folder.name}")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        partial.mkdir(parents=True)
        partial.chmod(DIR_MODE)
        for source, relative in plan.files.items():
            _copy(source, partial, relative)
        (partial / MANIFEST_NAME).write_text(manifest_text(partial, plan, identifiers))
        (partial / MANIFEST_NAME).chmod(FILE_MODE)
        findings = scan_for_identifiers(partial, identifiers)
        for line in _report_lines(plan, identifiers, findings):
            print(line)
        if findings:
            raise ReleaseError(findings_message(findings, f"the release {folder} (deleted)"))
        os.replace(partial, folder)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return plan


def _report_lines(plan: ReleasePlan, identifiers: Identifiers, findings: list[Finding]) -> list[str]:
    lines = [f"{len(plan.files)} file(s) released, {len(plan.left_out)} model(s) left out:"]
    lines += [f"  left out {run}: {reason}" for run, reason in sorted(plan.left_out.items())]
    lines += ["identifiers:", *(f"  {line}" for line in identifiers.summary_lines())]
    if identifiers.n_skipped:
        lines.append(f"privfair: {identifiers.n_skipped} identifier(s) not scanned for, being {UNSCANNABLE}")
    lines += [f"finding: {finding}" for finding in findings] or ["scan: no identifier found"]
    return lines


def main(argv: list[str] | None = None) -> int:
    """``python -m privfair.report.release scan FOLDER [--manifest PATH ...]``: scan a folder by hand.

    Args:
        argv: the command line after the program name (``sys.argv[1:]`` when None).

    Returns:
        0 when nothing is found, 1 on a finding (one line each, on stderr), 2 when there is nothing to scan for.
    """
    parser = argparse.ArgumentParser(prog="python -m privfair.report.release", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    scan = commands.add_parser("scan", help="scan a folder for the identifiers of every dataset's manifest")
    scan.add_argument("folder", type=Path)
    scan.add_argument(
        "--manifest",
        action="append",
        type=Path,
        help="a dataset's manifest.parquet (repeatable; default: every study's, results/*/data/*/manifest.parquet)",
    )
    arguments = parser.parse_args(argv)
    paths = arguments.manifest or sorted(Path("results").glob("*/data/*/manifest.parquet"))
    if not paths:
        print(
            "privfair: no manifest to take identifiers from: give --manifest, or run in the workflow's folder",
            file=sys.stderr,
        )
        return 2
    if not arguments.folder.is_dir():
        print(f"privfair: {arguments.folder} is not a folder", file=sys.stderr)
        return 2
    # Each manifest under its dataset's name, or its folder where two studies have a dataset of the same name.
    names = [path.parent.name for path in paths]
    identifiers = load_identifiers(
        {(path.parent.name if names.count(path.parent.name) == 1 else str(path.parent)): path for path in paths}
    )
    findings = scan_for_identifiers(arguments.folder, identifiers)
    for line in identifiers.summary_lines():
        print(line)
    if identifiers.n_skipped:
        print(f"privfair: {identifiers.n_skipped} identifier(s) not scanned for, being {UNSCANNABLE}")
    if findings:
        print(findings_message(findings, str(arguments.folder)), file=sys.stderr)
        return 1
    n_files = sum(1 for p in arguments.folder.rglob("*") if p.is_file())
    print(f"{arguments.folder}: no identifier found in {n_files} file(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
