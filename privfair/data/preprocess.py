"""MONAI preprocessing into a memory-mapped cache that training reads without loading the dataset into RAM.

The cache is ``cache.npy`` (N × C × spatial; float16/float32, or uint8 holding round(255 × value)) beside
``cache.parquet`` (the manifest plus ``cache_index``, the row of each image in the array). Images are transformed by
parallel workers and written to the file one by one as they arrive, so memory does not grow with the number of
images; the array is memory-mapped only for reading.

Readers: PNG/JPEG/BMP (PIL; colour converted to grayscale), DICOM (pydicom through MONAI: modality LUT, VOI LUT or
window, MONOCHROME1 inverted so that bone is bright), NIfTI (nibabel, CT) and MedMNIST ``.npz`` entries. Any other
format is refused by name before a single image is read.

Non-finite values (NaN, ±Inf: float NIfTI or npz data) would turn a whole image into NaN once it is scaled (float
caches) or into 0 (uint8): they are an error naming the files, or, with ``preprocess.non_finite: zero``, replaced by
0 in the source's units before any other step and counted in the log.
"""

from __future__ import annotations

import errno
import io
import shutil
import warnings
from contextlib import contextmanager
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

from privfair.core.errors import ConfigError, ManifestError, NoSpaceError
from privfair.core.io import atomic_output
from privfair.core.workers import die_with_parent
from privfair.data.adapters.medmnist import NPZ_SEPARATOR
from privfair.data.cache import UINT8_MAX
from privfair.data.manifest import first_items

COLOUR_MODES = ("RGB", "RGBA", "P", "LA", "CMYK")
PIL_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
DICOM_SUFFIXES = (".dcm", ".dicom")
NIFTI_SUFFIXES = (".nii", ".nii.gz")
FORMAT_NAMES = {
    "pil": ", ".join(PIL_SUFFIXES),
    "dicom": f"DICOM ({', '.join(DICOM_SUFFIXES)}, no suffix, or any file with the DICOM preamble)",
    "npz": "MedMNIST .npz entries",
    "nifti": ", ".join(NIFTI_SUFFIXES),
}
NON_FINITE = "non_finite"  # meta key of a loaded image: how many NaN/Inf values preprocess.non_finite replaced
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


class NonFiniteValues(ValueError):
    """An image holds NaN or ±Inf values and ``preprocess.non_finite`` is ``error``."""

    def __init__(self, count: int, size: int):
        super().__init__(f"{count} of {size} value(s) are not finite (NaN or Inf)")
        self.count = count


def image_format(path: str) -> str | None:
    """The reader a path calls for: ``"npz"`` (a MedMNIST entry), ``"pil"``, ``"nifti"``, ``"dicom"``, or None.

    DICOM files often have no suffix, or a UID's last digits as one (``1.2.840.113619.2.55``): a file with another
    suffix is DICOM if it starts with the DICOM preamble (``DICM`` at byte 128), and unsupported otherwise.

    Args:
        path: an image path of the manifest.

    Returns:
        The format's key in :data:`FORMAT_NAMES`, or None for a format no reader here takes (e.g. ``.tif``).
    """
    lower = path.lower()
    if NPZ_SEPARATOR in path:
        return "npz"
    if lower.endswith(PIL_SUFFIXES):
        return "pil"
    if lower.endswith(NIFTI_SUFFIXES):
        return "nifti"
    if lower.endswith(DICOM_SUFFIXES) or not Path(path).suffix:
        return "dicom"
    try:
        with open(path, "rb") as file:
            return "dicom" if file.read(132)[128:] == b"DICM" else None
    except OSError:  # missing or unreadable: the DICOM reader names the file and the cause
        return "dicom"


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


class LoadRadiograph(Transform):
    """Load a 2D image (or npz entry) with the one MONAI reader its format calls for (:func:`image_format`).
    (``LoadImage`` given several readers would try each and bury the cause of a failure.)"""

    formats = ("pil", "dicom", "npz")

    def __init__(self):
        self.readers = {
            "npz": NpzImageReader(),
            "dicom": RadiographDicomReader(),
            "pil": PILReader(reverse_indexing=False, converter=to_grayscale),
        }

    def __call__(self, path: str) -> MetaTensor:
        kind = image_format(path)
        if kind not in self.readers:
            raise ValueError(f"unsupported image format; supported: {supported(self.formats)}")
        reader = self.readers[kind]
        image, meta = reader.get_data(reader.read(path))
        return MetaTensor(np.asarray(image, dtype=np.float32), meta=meta)


class LoadVolume(Transform):
    """Load a CT volume (NIfTI) with MONAI's nibabel reader, keeping its affine for reorientation and resampling."""

    formats = ("nifti",)

    def __init__(self):
        self.load = LoadImage(image_only=True, reader="NibabelReader")

    def __call__(self, path: str) -> MetaTensor:
        return self.load(path)


def supported(formats: tuple[str, ...]) -> str:
    """The formats (keys of :data:`FORMAT_NAMES`) as a message lists them, e.g. ".nii, .nii.gz"."""
    return "; ".join(FORMAT_NAMES[f] for f in formats)


class ReplaceNonFinite(Transform):
    """Right after loading: refuse NaN/±Inf values (``preprocess.non_finite: error``), or replace them by 0
    (``zero``) and record how many in the image's meta (``non_finite``), which the cache writer counts.

    Args:
        policy: ``"error"`` or ``"zero"``.
    """

    def __init__(self, policy: str = "error"):
        self.policy = policy

    def __call__(self, image: MetaTensor) -> MetaTensor:
        bad = ~torch.isfinite(image)
        count = int(bad.sum())
        if count and self.policy == "error":
            raise NonFiniteValues(count, image.numel())
        if count:
            image = image.masked_fill(bad, 0.0)
        image.meta[NON_FINITE] = count
        return image


def radiograph_transforms(
    spatial_size: list[int], histogram_equalize: bool = False, non_finite: str = "error"
) -> Compose:
    """2D: load, check for non-finite values (``non_finite``: ``error`` or ``zero``), scale intensities to [0, 1]
    per image (bit depth differs between exports), area-resize, and optionally equalise the histogram (at the target
    size, where it is cheaper).

    ``reverse_indexing=False`` keeps rows as rows, so cached radiographs display upright.
    """
    transforms = [
        LoadRadiograph(),
        ReplaceNonFinite(non_finite),
        EnsureChannelFirst(),
        ScaleIntensity(minv=0.0, maxv=1.0),
        Resize(spatial_size, mode="area"),
    ]
    if histogram_equalize:
        transforms.append(HistogramNormalize(num_bins=256, min=0.0, max=1.0))
    return Compose(transforms)


def volume_transforms(spatial_size: list[int], non_finite: str = "error") -> Compose:
    """3D without physical spacing (MedMNIST 3D): check for non-finite values, scale to [0, 1] and resize."""
    return Compose(
        [
            LoadRadiograph(),
            ReplaceNonFinite(non_finite),
            EnsureChannelFirst(),
            ScaleIntensity(minv=0.0, maxv=1.0),
            Resize(spatial_size, mode="area"),
        ]
    )


def ct_transforms(
    spatial_size: list[int], pixdim: list[float], hu_window: list[float], non_finite: str = "error"
) -> Compose:
    """3D: load, check for non-finite values, reorient to RAS, resample to a common voxel spacing, window HU to
    [0, 1], centre pad/crop."""
    return Compose(
        [
            LoadVolume(),
            ReplaceNonFinite(non_finite),
            EnsureChannelFirst(),
            Orientation(axcodes="RAS", labels=(("L", "R"), ("P", "A"), ("I", "S"))),  # NIfTI's world axes
            Spacing(pixdim=pixdim, mode="bilinear"),
            ScaleIntensityRange(a_min=hu_window[0], a_max=hu_window[1], b_min=0.0, b_max=1.0, clip=True),
            ResizeWithPadOrCrop(spatial_size),
        ]
    )


def build_transforms(options: dict) -> Compose:
    """Choose the transform chain from the dataset's ``preprocess`` config; its first step is the loader, whose
    ``formats`` are the image formats the chain reads."""
    spatial_size, non_finite = options["spatial_size"], options.get("non_finite", "error")
    if len(spatial_size) == 2:
        return radiograph_transforms(spatial_size, options.get("histogram_equalize", False), non_finite)
    if len(spatial_size) == 3 and "pixdim" in options:
        return ct_transforms(spatial_size, options["pixdim"], options["hu_window"], non_finite)
    if len(spatial_size) == 3:
        return volume_transforms(spatial_size, non_finite)
    raise ConfigError(f"preprocess.spatial_size must have 2 or 3 entries, got {spatial_size}")


class _Indexed(torch.utils.data.Dataset):
    """Returns ``(index, image, error, non_finite)`` so that workers can deliver images in any order, so that a
    failure reaches the main process as a message naming the file rather than as a worker's traceback, and so that
    the non-finite values found (replaced, or refused) are counted there."""

    def __init__(self, paths: list[str], transform: Compose):
        self.images = Dataset(paths, transform)
        self.paths = paths

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        try:
            image = self.images[index]
            return index, np.asarray(image, dtype=np.float32), None, image.meta[NON_FINITE]
        except Exception as error:  # noqa: BLE001 - MONAI wraps reader errors; keep the root cause
            cause = error.__cause__ or error
            if isinstance(cause, NonFiniteValues):
                return index, None, f"{self.paths[index]}: {cause}", cause.count
            reason = " ".join(str(cause).split())  # one line, whatever the reader printed
            return index, None, f"{self.paths[index]}: cannot preprocess image: {type(cause).__name__}: {reason}", 0


def _as_list(batch):
    return batch


def to_cache_dtype(image: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Values in [0, 1] as stored: uint8 keeps round(255 × value) (a quarter of float32's 4 bytes, ≈ 50 GB for
    200,000 radiographs at 512²); ``privfair.data.cache`` divides by 255 again."""
    if dtype == np.uint8:
        return np.rint(np.clip(image, 0.0, 1.0) * UINT8_MAX).astype(np.uint8)
    return image.astype(dtype)


def check_formats(paths: list[str], formats: tuple[str, ...]) -> None:
    """Refuse, before any image is read, the images that no reader of the chain takes.

    Args:
        paths: the manifest's image paths.
        formats: the chain's formats (its loader's ``formats``, keys of :data:`FORMAT_NAMES`).

    Raises:
        ManifestError: naming the first files, their format or suffix, and the supported formats.
    """
    kinds = {path: image_format(path) for path in paths}
    unsupported = [f"{path} ({kind or Path(path).suffix})" for path, kind in kinds.items() if kind not in formats]
    if unsupported:
        raise ManifestError(
            f"{len(unsupported)} of {len(paths)} image(s) have an unsupported image format: "
            f"{first_items(unsupported, 3, sep='; ')}; supported here: {supported(formats)}"
        )


def byte_size(count: int) -> str:
    """A size as ``df -H`` shows it.

    Args:
        count: bytes.

    Returns:
        ``count`` in decimal units with one decimal, e.g. "52.4 GB" ("999 bytes" below a kilobyte).
    """
    size = float(count)
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            break
        size /= 1000
    return f"{count} bytes" if unit == "bytes" else f"{size:.1f} {unit}"


@contextmanager
def room_for(output: str | Path, needed: int, free: int):
    """Turn a full disk or quota (ENOSPC, EDQUOT) while writing ``output`` into one line naming the output and the
    space it needs.

    Args:
        output: the output being written (its final name).
        needed: its size in bytes.
        free: the bytes free on its disk before writing began.

    Raises:
        NoSpaceError: in place of the ``OSError``.
    """
    try:
        yield
    except OSError as error:
        if error.errno not in NO_SPACE:
            raise
        raise NoSpaceError(
            f"{output}: no space left to write it ({error.strerror}): it needs {byte_size(needed)}, and "
            f"{byte_size(free)} were free before writing began; free some space or write results/ elsewhere"
        ) from None


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

    Every image is tried; unreadable ones (and images with NaN/Inf values, unless ``non_finite: zero``) are then
    reported together (the first few and the count). Either both files are written whole or neither is there, nor a
    ``.partial-*`` file. Data-loader workers die with this process, however it ends.

    Args:
        manifest: the standardised manifest (:mod:`privfair.data.manifest`), one row per image; ``path`` is read.
        options: the dataset's ``preprocess`` config: ``spatial_size`` (2 or 3 entries, pixels or voxels),
            ``cache_dtype``, optionally ``non_finite`` (``error``, the default, or ``zero``) and
            ``histogram_equalize`` (2D) or ``pixdim`` (mm) and ``hu_window`` (3D CT).
        cache_path: the ``.npy`` array to write, shape (N, 1, *spatial_size), row ``i`` the image of row ``i``.
        manifest_path: the Parquet file to write: ``manifest`` plus ``cache_index``.
        num_workers: data-loader worker processes that transform images (0: in this process).
        batch_size: images per worker batch.

    Raises:
        ConfigError: ``preprocess.spatial_size`` has neither 2 nor 3 entries.
        ManifestError: an image is in an unsupported format (before any is read), cannot be read or transformed,
            holds non-finite values, or comes out in another shape.
        NoSpaceError: the cache does not fit on its disk (checked before any image is read), or the disk filled up
            while writing; the message names the output and the space it needs.
    """
    paths = manifest["path"].tolist()
    transforms = build_transforms(options)
    check_formats(paths, transforms.transforms[0].formats)
    dataset = _Indexed(paths, transforms)
    dtype = np.dtype(options["cache_dtype"])
    shape = (len(dataset), 1, *options["spatial_size"])  # grayscale radiographs and CT
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
    )
    image_bytes = int(np.prod(shape[1:])) * dtype.itemsize
    cache_bytes = header.tell() + len(dataset) * image_bytes
    free = shutil.disk_usage(Path(cache_path).parent).free
    if free < cache_bytes:
        raise NoSpaceError(
            f"{cache_path}: not enough space for the cache: it needs {byte_size(cache_bytes)} ({len(dataset)} images "
            f"of {byte_size(image_bytes)}), and {byte_size(free)} are free; free some space or write results/ "
            f"elsewhere{'' if dtype == np.uint8 else ' (or use preprocess.cache_dtype: uint8)'}"
        )
    errors, replaced, refused_non_finite = [], [], 0
    with atomic_output(cache_path) as partial_cache, atomic_output(manifest_path) as partial_manifest:
        with room_for(cache_path, cache_bytes, free), open(partial_cache, "wb") as file:
            file.write(header.getvalue())
            loader = DataLoader(
                dataset,
                batch_size=batch_size,
                num_workers=num_workers,
                collate_fn=_as_list,
                worker_init_fn=die_with_parent,
            )
            for batch in loader:
                for index, image, error, non_finite in batch:
                    if error is None and image.shape != shape[1:]:
                        error = f"{dataset.paths[index]}: preprocessed to shape {image.shape}, expected {shape[1:]}"
                    if error:
                        errors.append(error)
                        refused_non_finite += bool(non_finite)
                        continue
                    if non_finite:
                        replaced.append((dataset.paths[index], non_finite))
                    file.seek(header.tell() + index * image_bytes)
                    file.write(to_cache_dtype(image, dtype).tobytes())
            if errors:
                hint = "; or set preprocess.non_finite: zero to replace NaN/Inf by 0" if refused_non_finite else ""
                raise ManifestError(
                    f"{len(errors)} of {len(dataset)} image(s) could not be preprocessed: "
                    f"{first_items(errors, 3, sep='; ')}{hint}"
                )
            file.truncate(cache_bytes)
        table = manifest.assign(cache_index=np.arange(len(manifest))).to_parquet(index=False)
        with room_for(manifest_path, len(table), free):
            Path(partial_manifest).write_bytes(table)
    if replaced:
        print(
            f"{cache_path}: replaced {sum(n for _, n in replaced)} NaN/Inf value(s) by 0 (preprocess.non_finite: zero) "
            f"in {len(replaced)} image(s): {first_items(f'{path} ({n})' for path, n in replaced)}"
        )
