"""One seed fixes every source of randomness of a run: Python, NumPy, torch (CPU and CUDA) and data order."""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def seed_everything(seed: int) -> torch.Generator:
    """Seed all global RNGs and return a generator for the data loader's shuffling."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    # Deterministic cuBLAS; ops without a deterministic kernel only warn, so CUDA runs still work.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    return torch.Generator().manual_seed(seed)
