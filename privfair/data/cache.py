"""Reading the preprocessed cache during training and prediction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from privfair.core.errors import ManifestError
from privfair.data.manifest import label_columns

UINT8_MAX = 255


class CachedImages(torch.utils.data.Dataset):
    """Images of one split from the memory-mapped cache, with their label vectors.

    The array is opened lazily, once per worker process, so that only the batches in use are in memory.
    """

    def __init__(self, cache_path: str | Path, manifest: pd.DataFrame, split: str):
        self.cache_path = str(cache_path)
        self.rows = manifest[manifest["split"] == split].reset_index(drop=True)
        # torch.tensor copies: pandas hands out read-only arrays.
        self.labels = torch.tensor(self.rows[label_columns(manifest)].to_numpy(dtype=np.float32))
        self._array = None

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, index):
        if self._array is None:
            self._array = np.load(self.cache_path, mmap_mode="r")
        # A copy: the memory map is read-only, and float32 caches would otherwise be shared with the tensor.
        image = np.array(self._array[self.rows.at[index, "cache_index"]], dtype=np.float32)
        if self._array.dtype == np.uint8:
            image /= UINT8_MAX  # see privfair.data.preprocess.to_cache_dtype
        return torch.from_numpy(image), self.labels[index]


def load_splits(cache_path, manifest_path, split_path, splits=("train", "val", "test")):
    """The cache manifest joined with the split, and one ``CachedImages`` per requested split.

    The split is joined here rather than baked into the cache, so that a new split re-uses the preprocessed images.

    Args:
        cache_path: the ``.npy`` array written by :func:`privfair.data.preprocess.build_cache`.
        manifest_path: the cache's manifest (Parquet, with ``image_id`` and ``cache_index``).
        split_path: the split (Parquet, with ``image_id`` and ``split``), as written by the split rule.
        splits: the splits to make datasets of.

    Returns:
        ``(manifest, datasets)``: the cache manifest with ``split``, restricted to the images in the split file,
        and ``{split: CachedImages}``, whose items are ``(image, labels)``: a float32 tensor (1, *spatial) in
        [0, 1] and a float32 vector with one entry per label (NaN where masked).

    Raises:
        ManifestError: images of the split file are missing from the cache.
    """
    assignment = pd.read_parquet(split_path, columns=["image_id", "split"])
    manifest = pd.read_parquet(manifest_path).merge(assignment, on="image_id", how="inner", validate="one_to_one")
    if len(manifest) != len(assignment):
        missing = len(assignment) - len(manifest)
        raise ManifestError(f"{split_path}: {missing} image(s) are not in the cache {manifest_path}")
    return manifest, {split: CachedImages(cache_path, manifest, split) for split in splits}
