"""Deterministic synthetic datasets shaped like hospital exports (nothing is downloaded)."""

from .ct import generate_synth_ct
from .cxr import generate_synth_cxr

# Source adapter name (config ``source.adapter``) -> generator writing that export.
GENERATORS = {"synth_cxr": generate_synth_cxr, "synth_ct": generate_synth_ct}

__all__ = ["GENERATORS", "generate_synth_ct", "generate_synth_cxr"]
