"""Per-sample data augmentation of the training split, K augmented views of each sample (``training.augmentation``).

:class:`AugmentedViews` wraps the training split (:func:`privfair.data.cache.load_splits`) so that each item is K
random views of one image, stacked as ``(K, C, *spatial)``, and its labels: MONAI's ``RandFlip`` (a left-right
flip) and ``RandAffine`` (small rotation, scaling and translation), 2D or 3D alike. With K > 1 the training loop
averages the per-sample gradients of a sample's K views before clipping (augmentation multiplicity, De et al. 2022,
"Unlocking high-accuracy differentially private image classification through scale"; ``privfair.train.loop``).

No privacy cost: augmentation is a function of one sample applied before per-sample clipping, so the clipped
gradient of a sample is still bounded by the clipping norm whatever its views are, and one sample changes one
clipped gradient as before; the sampling rate q and the step count do not change either. Only the training split
is augmented; validation and test images are never.

Randomness: each epoch, and each data-loader worker within it, reseeds the transforms from the run's seed
(``set_epoch``, :func:`seed_worker`), so a run is reproducible, and a run resumed at an epoch boundary
(``privfair.train.resume``) draws the same views as an uninterrupted one without saving any augmentation state.
The transforms draw from their own NumPy generators, never from the global ones.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from monai.transforms import Compose, RandAffine, RandFlip
from monai.utils import convert_to_tensor
from torch.utils.data import Dataset, get_worker_info

from privfair.core.errors import ConfigError

# The left-right axis among the spatial axes of a cached image: the width of a 2D radiograph (C, H, W), and the
# first axis of a CT volume, which preprocessing reorients to RAS (privfair.data.preprocess). Left-right is the
# only flip that keeps anatomy plausible up to mirroring; up-down or front-back flips never occur in real images.
# A left-right flip of a chest radiograph puts the heart on the right (situs inversus, very rare) and moves
# side-specific findings and markers: it is common practice in CXR classifiers, but off unless configured.
LEFT_RIGHT_AXIS = {2: 1, 3: 0}
FLIP_PROBABILITY = 0.5


def views_per_sample(settings: dict) -> int | None:
    """K, the views per sample the training loader yields; None without ``training.augmentation`` (plain batches)."""
    augmentation = settings.get("augmentation")
    return None if augmentation is None else augmentation.get("multiplicity", 1)


def check_augmentation(settings: dict) -> None:
    """Refuse augmentation multiplicity with ghost clipping, which never materialises per-sample gradients.

    Ghost clipping computes per-sample gradient norms without the gradients themselves, so the K views' gradients
    cannot be averaged before clipping; clipping each view instead would change what is averaged.

    Raises:
        ConfigError: ``multiplicity`` > 1 and ``privacy.grad_sample_mode`` is ``ghost``.
    """
    views = views_per_sample(settings) or 1
    if views > 1 and settings.get("privacy", {}).get("grad_sample_mode") == "ghost":
        raise ConfigError(
            f"training.augmentation.multiplicity: {views} views need per-sample gradients, which "
            "training.privacy.grad_sample_mode 'ghost' does not compute: use hooks or functorch, or multiplicity 1"
        )


def make_transform(spatial_dims: int, spatial_size, options: dict) -> Compose:
    """The random transform of one view of a ``(C, *spatial)`` image.

    Args:
        spatial_dims: 2 or 3.
        spatial_size: the image's spatial shape (translations are fractions of it).
        options: the ``training.augmentation`` config: ``flip`` (bool), ``rotate_degrees`` (each rotation angle
            uniform in ±that; in 3D about each axis), ``scale`` (each axis scaled by 1 + uniform ±that),
            ``translate`` (a shift uniform in ±that fraction of the size, per axis); absent or 0: not applied.

    Returns:
        A MONAI ``Compose`` (seed it with ``set_random_state``); the identity when nothing is configured.
    """
    transforms = []
    if options.get("flip", False):
        transforms.append(RandFlip(prob=FLIP_PROBABILITY, spatial_axis=LEFT_RIGHT_AXIS[spatial_dims]))
    rotate, scale, translate = (options.get(k, 0) for k in ("rotate_degrees", "scale", "translate"))
    if rotate or scale or translate:
        angles = 1 if spatial_dims == 2 else 3  # in-plane; about each of the 3 axes
        transforms.append(
            RandAffine(
                prob=1.0,
                rotate_range=(math.radians(rotate),) * angles if rotate else None,
                scale_range=(scale,) * spatial_dims if scale else None,
                translate_range=tuple(translate * n for n in spatial_size) if translate else None,
                mode="bilinear",
                # Replicating the edge keeps intensities in range and adds no artificial black frame.
                padding_mode="border",
            )
        )
    return Compose(transforms)


class AugmentedViews(Dataset):
    """The training split with K augmented views of each item: ``(views (K, C, *spatial), labels)``.

    Args:
        dataset: the training split, whose items are ``(image (C, *spatial), labels)``.
        options: the ``training.augmentation`` config (see :func:`make_transform`; ``multiplicity`` is K, default 1).
        seed: the run's seed; the transforms are reseeded from it each epoch (:meth:`set_epoch`) and in each worker.
    """

    def __init__(self, dataset: Dataset, options: dict, seed: int):
        self.dataset = dataset
        self.views = options.get("multiplicity", 1)
        image = dataset[0][0]
        self.transform = make_transform(image.ndim - 1, tuple(image.shape[1:]), options)
        self.seed = seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Reseed for ``epoch``: call before iterating the loader (workers copy the dataset when they start)."""
        self.epoch = epoch
        self._reseed(stream=0)

    def seed_worker(self, worker_id: int) -> None:
        """Give data-loader worker ``worker_id`` its own stream, so that workers do not draw the same views."""
        self._reseed(stream=worker_id + 1)

    def _reseed(self, stream: int) -> None:
        seed = np.random.SeedSequence([self.seed, self.epoch, stream]).generate_state(1)[0]
        self.transform.set_random_state(seed=int(seed))

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        image, labels = self.dataset[index]
        views = [convert_to_tensor(self.transform(image), track_meta=False) for _ in range(self.views)]
        return torch.stack(views).to(image.dtype), labels


def seed_worker(worker_id: int) -> None:
    """A data loader's ``worker_init_fn`` part: reseed an :class:`AugmentedViews` in the worker (no-op otherwise)."""
    info = get_worker_info()
    if info is not None and isinstance(info.dataset, AugmentedViews):
        info.dataset.seed_worker(worker_id)
