"""Adapters for real datasets: each reads a dataset's own files into the standardised manifest.

Each takes the dataset's root folder and its ``source`` options and returns the manifest (validated afterwards by
``privfair.data.ingest.ingest``) and the :class:`~privfair.data.adapters.common.RowChecks` that record dropped rows.
"""

from privfair.data.adapters.chexpert import chexpert
from privfair.data.adapters.hospital import hospital_manifest
from privfair.data.adapters.medmnist import medmnist
from privfair.data.adapters.mimic_cxr_jpg import mimic_cxr_jpg
from privfair.data.adapters.msd_pancreas import msd_pancreas
from privfair.data.adapters.nih_cxr14 import nih_cxr14
from privfair.data.adapters.vindr_cxr import vindr_cxr

REAL_ADAPTERS = {
    "nih_cxr14": nih_cxr14,
    "chexpert": chexpert,
    "mimic_cxr_jpg": mimic_cxr_jpg,
    "vindr_cxr": vindr_cxr,
    "manifest": hospital_manifest,
    "msd_pancreas": msd_pancreas,
    "medmnist": medmnist,
}
