"""Shared fixtures: tiny caches whose labels are learnable, so tests exercise real training."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

TRAINING = {
    "model": {"width": 8, "num_groups": 4},
    "epochs": 2,
    "logical_batch_size": 32,
    "physical_batch_size": 8,
    "optimizer": {"name": "NAdam", "lr": 0.002, "weight_decay": 0.0},
    "privacy": {
        "max_grad_norm": 1.0,
        "accountant": "prv",
        "delta": None,
        "grad_sample_mode": "hooks",
        "noise": "seeded",
    },
    "num_workers": 0,
}


def write_cache(directory, n_per_split=(64, 24, 24), labels=("a", "b"), size=16, seed=0):
    """A cache of 2D images where label i is a bright square in quadrant i, one patient per image."""
    rng = np.random.default_rng(seed)
    n = sum(n_per_split)
    y = rng.integers(0, 2, size=(n, len(labels)))
    y[:2] = [[0] * len(labels), [1] * len(labels)]  # every split sees both classes
    for start in np.cumsum((0, *n_per_split[:-1])):
        y[start : start + 2] = [[0] * len(labels), [1] * len(labels)]
    images = rng.normal(0.2, 0.05, size=(n, 1, size, size)).astype(np.float16)
    half = size // 2
    for i in range(len(labels)):
        r, c = divmod(i, 2)
        images[y[:, i] == 1, 0, r * half : r * half + half // 2, c * half : c * half + half // 2] += 0.6
    cache_path, manifest_path, split_path = (
        directory / name for name in ("cache.npy", "cache.parquet", "split.parquet")
    )
    np.save(cache_path, images)
    manifest = pd.DataFrame(
        {
            "image_id": [f"img{i}" for i in range(n)],
            "path": [f"/nowhere/img{i}.png" for i in range(n)],
            "patient_id": [f"p{i}" for i in range(n)],
            "study_id": [f"s{i}" for i in range(n)],
            "age": rng.integers(20, 90, n).astype(float),
            "sex": rng.choice(["F", "M"], n),
            "view": "PA",
            **{f"label_{name}": y[:, i].astype("int8") for i, name in enumerate(labels)},
        }
    )
    manifest["comorbidity"] = y.sum(axis=1)
    manifest.assign(cache_index=np.arange(n)).to_parquet(manifest_path, index=False)
    manifest.assign(split=np.repeat(["train", "val", "test"], n_per_split)).to_parquet(split_path, index=False)
    return cache_path, manifest_path, split_path


@pytest.fixture
def tiny_cache(tmp_path):
    return write_cache(tmp_path)


@pytest.fixture
def make_cache(tmp_path):
    """``make_cache(**options)`` writes a cache as :func:`write_cache` does, into this test's folder."""
    return lambda **options: write_cache(tmp_path, **options)


@pytest.fixture
def training_settings():
    return {k: (dict(v) if isinstance(v, dict) else v) for k, v in TRAINING.items()}
