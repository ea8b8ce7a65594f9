"""MONAI preprocessing into a memory-mapped cache that training reads without loading the dataset into RAM.

The cache is ``cache.npy`` (N × C × spatial; float16/float32, or uint8 holding round(255 × value)) beside
``cache.parquet`` (the manifest plus ``cache_index``, the row of each image in the array). Images are transformed by
parallel workers and written to the file one by one as they arrive, so memory does not grow with the number of
images; the array is memory-mapped only for reading.

Readers: PNG/JPEG (PIL; colour converted to grayscale), DICOM (pydicom through MONAI: modality LUT, VOI LUT or
window, MONOCHROME1 inverted so that bone is bright), NIfTI (nibabel) and MedMNIST ``.npz`` entries.
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from monai.data import DataLoader, Dataset, MetaTensor, NumpyReader, PILReader, PydicomReader
from monai.transforms import (
    Compose,
    EnsureChannelFirst,
    HistogramNormalize,
    LoadImage,
    Orientation,
    Resize,
    ResizeWithPadOrCrop,
    ScaleIntensity,
    ScaleIntensityRange,
    Spacing,
    Transform,
)
from pydicom.pixels import apply_modality_lut, apply_voi_lut

from privfair.core.errors import ConfigError, ManifestError
from privfair.core.io import atomic_output
from privfair.data.adapters.medmnist import NPZ_SEPARATOR
from privfair.data.cache import UINT8_MAX
from privfair.data.manifest import first_items

COLOUR_MODES = ("RGB", "RGBA", "P", "LA", "CMYK")


def to_grayscale(image):
    """PIL converter: colour exports (a few NIH PNGs are RGBA) become one channel; 8/16-bit gray stays as it is."""
    return image.convert("L") if image.mode in COLOUR_MODES else image


class RadiographDicomReader(PydicomReader):
    """MONAI's pydicom reader, plus the display pipeline of a radiograph: the VOI LUT or window
    (WindowCenter/Width) after the modality LUT, and MONOCHROME1 (low values bright) inverted."""

    def __init__(self):
        super().__init__(swap_ij=False)  # rows stay rows, as with PNGs

    def _get_array_data(self, img, filename):
        data = apply_voi_lut(apply_modality_lut(img.pixel_array, img), img).astype(np.float32)
        if img.get("PhotometricInterpretation") == "MONOCHROME1":
            data = data.max() + data.min() - data
        return data

    def get_data(self, data):
        with warnings.catch_warnings():  # radiographs have no ImagePositionPatient: the identity affine is right
            warnings.filterwarnings("ignore", message="PydicomReader: ImageOrientationPatient")
            return super().get_data(data)


@lru_cache(maxsize=4)
def _npz_array(path: str, key: str) -> np.ndarray:
    """One array of an ``.npz`` (decompressed once per worker process; MedMNIST arrays are small)."""
    with np.load(path) as arrays:
        return arrays[key]


class NpzImageReader(NumpyReader):
    """Reads one image of a MedMNIST ``.npz``, addressed as ``<file>.npz#<key>/<index>``; colour to grayscale."""

    def read(self, data, **kwargs):
        path, address = str(data).split(NPZ_SEPARATOR)
        key, index = address.rsplit("/", 1)
        image = _npz_array(path, key)[int(index)].astype(np.float32)
        if image.ndim == 3 and image.shape[-1] == 3:  # RGB 2D (MedMNIST 3D volumes are 28 or 64 deep)
            image = image @ np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601 luma, as PIL's "L"
        return image


PIL_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


class LoadRadiograph(Transform):
    """Load a 2D image (or npz entry) with the one MONAI reader its name calls for; files without a known suffix
    are read as DICOM. (``LoadImage`` given several readers would try each and bury the cause of a failure.)"""

    def __init__(self):
        self.readers = {
            "npz": NpzImageReader(),
            "dicom": RadiographDicomReader(),
            "pil": PILReader(reverse_indexing=False, converter=to_grayscale),
        }

    def __call__(self, path: str) -> MetaTensor:
        if NPZ_SEPARATOR in path:
            reader = self.readers["npz"]
        else:
            reader = self.readers["pil" if path.lower().endswith(PIL_SUFFIXES) else "dicom"]
        image, meta = reader.get_data(reader.read(path))
        return MetaTensor(np.asarray(image, dtype=np.float32), meta=meta)


def radiograph_transforms(spatial_size: list[int], histogram_equalize: bool = False) -> Compose:
    """2D: load, scale intensities to [0, 1] per image (bit depth differs between exports), area-resize, and
    optionally equalise the histogram (at the target size, where it is cheaper).

    ``reverse_indexing=False`` keeps rows as rows, so cached radiographs display upright.
    """
    transforms = [
        LoadRadiograph(),
        EnsureChannelFirst(),
        ScaleIntensity(minv=0.0, maxv=1.0),
        Resize(spatial_size, mode="area"),
    ]
    if histogram_equalize:
        transforms.append(HistogramNormalize(num_bins=256, min=0.0, max=1.0))
    return Compose(transforms)


def volume_transforms(spatial_size: list[int]) -> Compose:
    """3D without physical spacing (MedMNIST 3D): scale to [0, 1] and resize."""
    return Compose(
        [LoadRadiograph(), EnsureChannelFirst(), ScaleIntensity(minv=0.0, maxv=1.0), Resize(spatial_size, mode="area")]
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
        return radiograph_transforms(spatial_size, options.get("histogram_equalize", False))
    if len(spatial_size) == 3 and "pixdim" in options:
        return ct_transforms(spatial_size, options["pixdim"], options["hu_window"])
    if len(spatial_size) == 3:
        return volume_transforms(spatial_size)
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
        except Exception as error:  # noqa: BLE001 - MONAI wraps reader errors; keep the root cause
            cause = error.__cause__ or error
            reason = " ".join(str(cause).split())  # one line, whatever the reader printed
            return index, None, f"{self.paths[index]}: cannot preprocess image: {type(cause).__name__}: {reason}"


def _as_list(batch):
    return batch


def to_cache_dtype(image: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Values in [0, 1] as stored: uint8 keeps round(255 × value) (a quarter of float32's 4 bytes, ≈ 50 GB for
    200,000 radiographs at 512²); ``privfair.data.cache`` divides by 255 again."""
    if dtype == np.uint8:
        return np.rint(np.clip(image, 0.0, 1.0) * UINT8_MAX).astype(np.uint8)
    return image.astype(dtype)


def build_cache(
    manifest: pd.DataFrame,
    options: dict,
    cache_path: str | Path,
    manifest_path: str | Path,
    num_workers: int = 0,
    batch_size: int = 16,
) -> None:
    """Transform every image of ``manifest`` and write the cache array and, beside it, the manifest with
    ``cache_index``.

    Every image is tried; unreadable ones are then reported together (the first few and the count) and neither
    file is left behind.

    Args:
        manifest: the standardised manifest (:mod:`privfair.data.manifest`), one row per image; ``path`` is read.
        options: the dataset's ``preprocess`` config: ``spatial_size`` (2 or 3 entries, pixels or voxels),
            ``cache_dtype`` and, optionally, ``histogram_equalize`` (2D) or ``pixdim`` (mm) and ``hu_window`` (3D CT).
        cache_path: the ``.npy`` array to write, shape (N, 1, *spatial_size), row ``i`` the image of row ``i``.
        manifest_path: the Parquet file to write: ``manifest`` plus ``cache_index``.
        num_workers: data-loader worker processes that transform images (0: in this process).
        batch_size: images per worker batch.

    Raises:
        ConfigError: ``preprocess.spatial_size`` has neither 2 nor 3 entries.
        ManifestError: an image cannot be read or transformed, or comes out in another shape.
    """
    dataset = _Indexed(manifest["path"].tolist(), build_transforms(options))
    dtype = np.dtype(options["cache_dtype"])
    shape = (len(dataset), 1, *options["spatial_size"])  # grayscale radiographs and CT
    errors = []
    with atomic_output(cache_path) as partial, open(partial, "wb") as file:
        np.lib.format.write_array_header_1_0(
            file, {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
        )
        start, image_bytes = file.tell(), int(np.prod(shape[1:])) * dtype.itemsize
        for batch in DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=_as_list):
            for index, image, error in batch:
                if error is None and image.shape != shape[1:]:
                    error = f"{dataset.paths[index]}: preprocessed to shape {image.shape}, expected {shape[1:]}"
                if error:
                    errors.append(error)
                    continue
                file.seek(start + index * image_bytes)
                file.write(to_cache_dtype(image, dtype).tobytes())
        if errors:
            raise ManifestError(
                f"{len(errors)} of {len(dataset)} image(s) could not be preprocessed: "
                f"{first_items(errors, 3, sep='; ')}"
            )
        file.truncate(start + len(dataset) * image_bytes)
    with atomic_output(manifest_path) as partial:
        manifest.assign(cache_index=np.arange(len(manifest))).to_parquet(partial, index=False)
