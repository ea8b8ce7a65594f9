"""Ingest: run a dataset's adapter (``privfair.data.adapters``) and validate the manifest it returns.

Errors name the file and its line (the adapters record each row's ``origin``), and nothing is written unless the whole
table is valid.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from privfair.core.errors import ManifestError
from privfair.data.adapters import get_adapter
from privfair.data.manifest import LABEL_PREFIX, ORIGIN, is_finding, label_columns, validate_manifest


def ingest(adapter: str, root: str | Path, options: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read a dataset with its adapter into the validated, standardised manifest.

    Args:
        adapter: the adapter's name (``source.adapter``), looked up in ``privfair.data.adapters.ADAPTERS``.
        root: the dataset's folder (``source.root``, or where the embedded dataset was generated).
        options: the ``source`` block (``on_invalid`` and the adapter's own keys).

    Returns:
        The validated manifest (``comorbidity`` added) and the rows dropped or kept as unknown by the ``on_invalid``
        policies (one row per file and check, with the count).

    Raises:
        ConfigError: unknown adapter (the message names ``source.adapter`` and the known adapters).
        ManifestError: a missing folder, a bad table or row (named by its file and line), an image file listed
            twice, or no images left.
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
    return validate_manifest(manifest, root).drop(columns=ORIGIN, errors="ignore"), dropped
