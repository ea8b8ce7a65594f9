"""MONAI preprocessing into a memory-mapped cache that training reads without loading the dataset into RAM.

The cache is ``cache.npy`` (N × C × spatial, written with ``numpy.lib.format.open_memmap``) beside
``cache.parquet`` (the split manifest plus ``cache_index``, the row of each image in the array).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from monai.data import DataLoader, Dataset, PILReader
from monai.transforms import (
    Compose,
    EnsureChannelFirst,
    LoadImage,
    Orientation,
    Resize,
    ResizeWithPadOrCrop,
    ScaleIntensity,
    ScaleIntensityRange,
    Spacing,
)

from privfair.errors import ConfigError, ManifestError


def radiograph_transforms(spatial_size: list[int]) -> Compose:
    """2D: load, scale intensities to [0, 1] per image (bit depth differs between exports), area-resize.

    ``reverse_indexing=False`` keeps rows as rows, so cached radiographs display upright.
    """
    return Compose(
        [
            LoadImage(image_only=True, reader=PILReader(reverse_indexing=False)),
            EnsureChannelFirst(),
            ScaleIntensity(minv=0.0, maxv=1.0),
            Resize(spatial_size, mode="area"),
        ]
    )


def ct_transforms(spatial_size: list[int], pixdim: list[float], hu_window: list[float]) -> Compose:
    """3D: load, reorient to RAS, resample to a common voxel spacing, window HU to [0, 1], centre pad/crop."""
    return Compose(
        [
            LoadImage(image_only=True, reader="NibabelReader"),
            EnsureChannelFirst(),
            Orientation(axcodes="RAS"),
            Spacing(pixdim=pixdim, mode="bilinear"),
            ScaleIntensityRange(a_min=hu_window[0], a_max=hu_window[1], b_min=0.0, b_max=1.0, clip=True),
            ResizeWithPadOrCrop(spatial_size),
        ]
    )


def build_transforms(options: dict) -> Compose:
    """Choose the transform chain from the dataset's ``preprocess`` config."""
    spatial_size = options["spatial_size"]
    if len(spatial_size) == 2:
        return radiograph_transforms(spatial_size)
    if len(spatial_size) == 3:
        return ct_transforms(spatial_size, options["pixdim"], options["hu_window"])
    raise ConfigError(f"preprocess.spatial_size must have 2 or 3 entries, got {spatial_size}")


class _Indexed(torch.utils.data.Dataset):
    """Carries each row's position so that workers can return images in any order."""

    def __init__(self, paths: list[str], transform: Compose):
        self.images = Dataset(paths, transform)
        self.paths = paths

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        try:
            image = self.images[index]
        except Exception as error:  # MONAI wraps reader errors; say which file failed
            raise ManifestError(f"{self.paths[index]}: cannot preprocess image: {error}") from error
        return index, torch.as_tensor(np.asarray(image), dtype=torch.float32)


def build_cache(split_manifest: pd.DataFrame, options: dict, cache_path: str | Path, manifest_path: str | Path,
                num_workers: int = 0) -> None:
    """Transform every image of ``split_manifest`` and write the cache array and its manifest."""
    dataset = _Indexed(split_manifest["path"].tolist(), build_transforms(options))
    channels = options.get("channels", 1)
    shape = (len(dataset), channels, *options["spatial_size"])
    cache = np.lib.format.open_memmap(cache_path, mode="w+", dtype=options["cache_dtype"], shape=shape)
    loader = DataLoader(dataset, batch_size=16, num_workers=num_workers)
    for indices, images in loader:
        if tuple(images.shape[1:]) != shape[1:]:
            path = split_manifest["path"].iloc[int(indices[0])]
            raise ManifestError(f"{path}: preprocessed to shape {tuple(images.shape[1:])}, expected {shape[1:]}")
        cache[indices.numpy()] = images.numpy().astype(cache.dtype)
    cache.flush()
    split_manifest.assign(cache_index=np.arange(len(split_manifest))).to_parquet(manifest_path, index=False)
