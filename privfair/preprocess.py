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
            Orientation(axcodes="RAS", labels=(("L", "R"), ("P", "A"), ("I", "S"))),  # NIfTI's world axes
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
    """Returns ``(index, image, error)`` so that workers can deliver images in any order, and so that a failure
    reaches the main process as a message naming the file rather than as a worker's traceback."""

    def __init__(self, paths: list[str], transform: Compose):
        self.images = Dataset(paths, transform)
        self.paths = paths

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        try:
            return index, np.asarray(self.images[index], dtype=np.float32), None
        except Exception as error:  # MONAI wraps reader errors; keep the root cause
            cause = error.__cause__ or error
            reason = " ".join(str(cause).split())  # one line, whatever the reader printed
            return index, None, f"{self.paths[index]}: cannot preprocess image: {type(cause).__name__}: {reason}"


def _as_list(batch):
    return batch


def build_cache(manifest: pd.DataFrame, options: dict, cache_path: str | Path, manifest_path: str | Path,
                num_workers: int = 0) -> None:
    """Transform every image of ``manifest`` and write the cache array and, beside it, the manifest with
    ``cache_index``."""
    dataset = _Indexed(manifest["path"].tolist(), build_transforms(options))
    shape = (len(dataset), 1, *options["spatial_size"])  # grayscale radiographs and CT
    cache = np.lib.format.open_memmap(cache_path, mode="w+", dtype=options["cache_dtype"], shape=shape)
    for batch in DataLoader(dataset, batch_size=16, num_workers=num_workers, collate_fn=_as_list):
        for index, image, error in batch:
            if error:
                raise ManifestError(error)
            if image.shape != shape[1:]:
                raise ManifestError(f"{dataset.paths[index]}: preprocessed to shape {image.shape}, expected "
                                    f"{shape[1:]} (a colour image?)")
            cache[index] = image
    cache.flush()
    manifest.assign(cache_index=np.arange(len(manifest))).to_parquet(manifest_path, index=False)
