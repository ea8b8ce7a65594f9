"""The adapter registry: each adapter reads a dataset's own files into the standardised manifest.

An adapter's ``read`` takes the dataset's root folder and its ``source`` options and returns the manifest (validated
afterwards by ``privfair.data.ingest.ingest``) and the :class:`~privfair.data.adapters.common.RowChecks` that record
dropped rows. The embedded datasets also have a ``generate`` that writes their export (rule ``generate_synthetic``).

Adding an adapter: its module here, one entry in :data:`ADAPTERS`, and its ``source_<name>`` entry under ``$defs`` in
``config/schema.yaml`` (its keys; ``tests/unit/data/test_adapters.py`` checks that the two list the same adapters).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from privfair.core.errors import ConfigError
from privfair.data.adapters.chexpert import chexpert
from privfair.data.adapters.common import RowChecks
from privfair.data.adapters.hospital import hospital_manifest
from privfair.data.adapters.medmnist import medmnist
from privfair.data.adapters.mimic_cxr_jpg import mimic_cxr_jpg
from privfair.data.adapters.msd_pancreas import msd_pancreas
from privfair.data.adapters.nih_cxr14 import nih_cxr14
from privfair.data.adapters.synthetic import synth_ct, synth_cxr
from privfair.data.adapters.vindr_cxr import vindr_cxr
from privfair.data.synth import generate_synth_ct, generate_synth_cxr


@dataclass(frozen=True)
class Adapter:
    """One dataset adapter, named as in the config's ``source.adapter``.

    Args:
        name: the config's ``source.adapter``.
        read: ``read(root, options) -> (manifest, row_checks)``; ``options`` is the ``source`` block.
        generate: embedded datasets only: ``generate(out_dir, **source["synthetic"])`` writes the export that
            ``read`` reads, and returns its metadata table.
        dims: the image dimensions the dataset can have (2: radiographs, 3: volumes); ``preprocess.spatial_size``
            must have one of these lengths.
    """

    name: str
    read: Callable[[Path, dict], tuple[pd.DataFrame, RowChecks]]
    generate: Callable[..., pd.DataFrame] | None = None
    dims: tuple[int, ...] = (2,)


ADAPTERS: dict[str, Adapter] = {
    adapter.name: adapter
    for adapter in (
        Adapter("synth_cxr", synth_cxr, generate=generate_synth_cxr),
        Adapter("synth_ct", synth_ct, generate=generate_synth_ct, dims=(3,)),
        Adapter("nih_cxr14", nih_cxr14),
        Adapter("chexpert", chexpert),
        Adapter("mimic_cxr_jpg", mimic_cxr_jpg),
        Adapter("vindr_cxr", vindr_cxr),
        Adapter("manifest", hospital_manifest, dims=(2, 3)),
        Adapter("msd_pancreas", msd_pancreas, dims=(3,)),
        Adapter("medmnist", medmnist, dims=(2, 3)),
    )
}


def get_adapter(name: str) -> Adapter:
    """Look an adapter up by its config name.

    Args:
        name: the config's ``source.adapter``, e.g. ``"nih_cxr14"``.

    Returns:
        The registry entry.

    Raises:
        ConfigError: ``name`` is not a registered adapter (the message names ``source.adapter`` and the known ones).
    """
    if name not in ADAPTERS:
        raise ConfigError(f"source.adapter: unknown adapter '{name}'; known: {sorted(ADAPTERS)}")
    return ADAPTERS[name]


__all__ = ["ADAPTERS", "Adapter", "get_adapter"]
