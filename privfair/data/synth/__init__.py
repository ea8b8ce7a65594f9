"""Deterministic synthetic datasets shaped like hospital exports (nothing is downloaded).

Each generator is registered with the adapter that reads its export (``privfair.data.adapters.ADAPTERS``, field
``generate``): ``synth_cxr`` -> :func:`generate_synth_cxr`, ``synth_ct`` -> :func:`generate_synth_ct`.
"""

from .ct import generate_synth_ct
from .cxr import generate_synth_cxr

__all__ = ["generate_synth_ct", "generate_synth_cxr"]
