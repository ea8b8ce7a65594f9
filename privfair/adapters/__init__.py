"""Adapters for real datasets: each reads a dataset's own files into the standardised manifest.

Each takes the dataset's root folder and its ``source`` options and returns the manifest (validated afterwards by
``privfair.ingest.ingest``) and the :class:`~privfair.adapters.common.RowChecks` that record dropped rows.
"""

from privfair.adapters.chexpert import chexpert
from privfair.adapters.hospital import hospital_manifest
from privfair.adapters.medmnist import medmnist
from privfair.adapters.mimic_cxr_jpg import mimic_cxr_jpg
from privfair.adapters.msd_pancreas import msd_pancreas
from privfair.adapters.nih_cxr14 import nih_cxr14
from privfair.adapters.vindr_cxr import vindr_cxr

REAL_ADAPTERS = {
    "nih_cxr14": nih_cxr14,
    "chexpert": chexpert,
    "mimic_cxr_jpg": mimic_cxr_jpg,
    "vindr_cxr": vindr_cxr,
    "manifest": hospital_manifest,
    "msd_pancreas": msd_pancreas,
    "medmnist": medmnist,
}
