"""Synthetic abdominal CT volumes shaped like a hospital NIfTI export.

Each patient gets one int16 Hounsfield-unit volume: air, an abdominal ellipse of
subcutaneous fat, muscle wall and mixed viscera, liver, kidneys, aorta, lumbar
spine with discs and a pancreas wrapped in peripancreatic fat. The binary label
``lesion`` is a hypodense, roughly spherical pancreatic-tumour-like lesion.
Anatomy is defined in millimetres and the voxel spacing varies between
patients, so the same organ spans a different number of voxels in each volume
(downstream resampling matters).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from privfair.core.errors import ConfigError

from ._common import (
    REFERENCE_AGE,
    ensure_dirs,
    group_factors,
    interp_matrix,
    logit,
    parse_subgroup_effect,
    patient_ids,
    sample_demographics,
    sigmoid,
)

FINDINGS = ("lesion",)
METADATA_COLUMNS = ("PatientID", "StudyID", "VolumeFile", "PatientAge", "PatientSex", "lesion")
PATIENT_ID_WIDTH = 4

# --- label model -----------------------------------------------------------
LESION_PREVALENCE = 0.45  # at REFERENCE_AGE
LESION_LOGIT_PER_DECADE = 0.3

# --- acquisition -----------------------------------------------------------
INPLANE_SPACING_MM = (1.5, 2.0)
SLICE_SPACING_MM = (2.0, 3.0)
NOISE_SD_HU = 12.0
HU_RANGE = (-1024, 3071)

# --- tissue values (HU) ----------------------------------------------------
AIR_HU = -1000.0
FAT_HU = -100.0
MUSCLE_HU = 40.0
VISCERA_HU, VISCERA_SPREAD_HU = 15.0, 12.0  # bowel loops and mesenteric fat
LIVER_HU = 60.0
KIDNEY_HU = 140.0  # enhancing cortex
AORTA_HU = 160.0  # arterial contrast
CANCELLOUS_BONE_HU, CORTICAL_BONE_HU, DISC_HU = 300.0, 900.0, 90.0
PERIPANCREATIC_FAT_HU = -90.0
PANCREAS_HU = 50.0
LESION_CONTRAST_HU = (80.0, 110.0)  # hypodensity relative to the pancreas; conspicuous at 4 mm voxels

# --- geometry (mm, x = patient left, y = anterior, z = superior; origin at the volume centre) ---
BODY_SEMI_AXES = (34.0, 26.0)
SUBCUTANEOUS_FAT_MM, MUSCLE_WALL_MM = 5.0, 3.0
LIVER_CENTER, LIVER_SEMI_AXES = (-16.0, 2.0, 12.0), (16.0, 18.0, 40.0)
KIDNEY_CENTER, KIDNEY_SEMI_AXES = (18.0, -10.0, -5.0), (6.0, 8.0, 20.0)  # x mirrored
AORTA_CENTER, AORTA_RADIUS = (3.0, -5.0), 4.5
VERTEBRA_CENTER, VERTEBRA_RADIUS, CORTEX_MM = (0.0, -16.0), 7.0, 1.5
VERTEBRA_PITCH_MM, DISC_MM = 26.0, 5.0
PANCREAS_CENTER, PANCREAS_SEMI_AXES = (2.0, 8.0, 0.0), (18.0, 8.0, 13.0)
PANCREAS_MAX_TILT = 0.25  # radians, in-plane
PANCREAS_ARCH_MM = 3.0  # head and tail curve posteriorly around the spine
FAT_HALO_MM = 3.0
LESION_RADIUS_MM = (10.0, 13.0)
LESION_MAX_OFFSET_MM = (10.0, 2.0, 4.0)  # from the pancreas centre, in the pancreas frame

# Per-patient anatomical variation.
BODY_SIZE_RANGE = (0.92, 1.04)
ORGAN_SIZE_RANGE = (0.9, 1.1)
ORGAN_SHIFT_MM = 3.0
EDGE_MM = 1.5  # partial-volume blur of organ boundaries
VISCERA_KNOTS = (5, 5, 4)


def generate_synth_ct(
    out_dir: str | Path,
    *,
    n_patients: int,
    shape: tuple[int, int, int] = (48, 48, 40),
    seed: int = 0,
    subgroup_effect: Mapping | None = None,
) -> pd.DataFrame:
    """Write ``volumes/<PatientID>.nii.gz`` and ``metadata.csv`` under ``out_dir``; return the metadata.

    ``subgroup_effect`` must name the finding ``"lesion"``; its ``visibility``
    scales the lesion's HU contrast and ``prevalence`` its probability inside
    the subgroup. Deterministic in ``seed`` (voxel data and CSV).
    """
    effect = parse_subgroup_effect(subgroup_effect, FINDINGS)
    shape = tuple(int(n) for n in shape)
    if len(shape) != 3 or min(shape) < 8:
        raise ConfigError(f"shape must be three sizes >= 8, got {shape}")

    # Separate streams so the label model never shifts the anatomy of any volume.
    label_rng, voxel_rng = np.random.default_rng(seed).spawn(2)
    ids = patient_ids(n_patients, PATIENT_ID_WIDTH)
    age, sex = sample_demographics(label_rng, n_patients)
    visibility, prevalence = group_factors(effect, "lesion", age, sex)
    p_lesion = sigmoid(logit(LESION_PREVALENCE) + LESION_LOGIT_PER_DECADE * (age - REFERENCE_AGE) / 10.0)
    lesion = (label_rng.random(n_patients) < np.clip(p_lesion * prevalence, 0.0, 1.0)).astype(np.int64)

    root, volume_dir = ensure_dirs(out_dir, "volumes")
    for pid, has_lesion, vis, rng in zip(ids, lesion, visibility, voxel_rng.spawn(n_patients)):
        hu, spacing = _render_volume(rng, shape, bool(has_lesion), float(vis))
        nib.save(_nifti(hu, spacing), volume_dir / f"{pid}.nii.gz")

    meta = pd.DataFrame(
        {
            "PatientID": ids,
            "StudyID": [f"{pid}_S01" for pid in ids],
            "VolumeFile": [f"volumes/{pid}.nii.gz" for pid in ids],
            "PatientAge": age,
            "PatientSex": sex,
            "lesion": lesion,
        },
        columns=list(METADATA_COLUMNS),
    )
    meta.to_csv(root / "metadata.csv", index=False)
    return meta


def _nifti(hu: np.ndarray, spacing: np.ndarray) -> nib.Nifti1Image:
    """RAS affine with the given spacing and the volume centre at the origin."""
    affine = np.diag([*spacing, 1.0])
    affine[:3, 3] = -spacing * (np.asarray(hu.shape) - 1) / 2.0
    img = nib.Nifti1Image(hu, affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    img.header.set_xyzt_units("mm", "sec")
    return img


def _soft(normalised_radius, scale_mm):
    """Partial-volume weight in [0, 1] from a normalised radius (1 = boundary)."""
    return np.clip((1.0 - normalised_radius) * scale_mm / EDGE_MM + 0.5, 0.0, 1.0)


def _ellipsoid(x, y, z, center, semi):
    r = np.sqrt(((x - center[0]) / semi[0]) ** 2 + ((y - center[1]) / semi[1]) ** 2 + ((z - center[2]) / semi[2]) ** 2)
    return _soft(r, min(semi))


def _ellipse(x, y, center, semi):
    """Elliptic cylinder along z (2-D weight, broadcast over slices)."""
    r = np.sqrt(((x - center[0]) / semi[0]) ** 2 + ((y - center[1]) / semi[1]) ** 2)
    return _soft(r, min(semi))


def _paint(vol, weight, hu):
    vol += (hu - vol) * weight


def _render_volume(rng, shape, has_lesion: bool, visibility: float):
    """One HU volume (int16) and its voxel spacing (mm)."""
    # Every random number is drawn unconditionally and in a fixed order, so a
    # volume's anatomy depends only on its own stream, not on its label.
    u = rng.uniform
    inplane = u(*INPLANE_SPACING_MM)
    spacing = np.array([inplane, inplane, u(*SLICE_SPACING_MM)])
    body = u(*BODY_SIZE_RANGE)

    def shifted(center):
        return np.asarray(center) + rng.uniform(-ORGAN_SHIFT_MM, ORGAN_SHIFT_MM, size=len(center))

    def sized(semi):
        return np.asarray(semi) * u(*ORGAN_SIZE_RANGE)

    liver_c, liver_s = shifted(LIVER_CENTER), sized(LIVER_SEMI_AXES)
    kidneys = [(shifted(KIDNEY_CENTER) * (side, 1, 1), sized(KIDNEY_SEMI_AXES)) for side in (-1, 1)]
    aorta_c = shifted(AORTA_CENTER)
    vertebra_c, disc_phase = shifted(VERTEBRA_CENTER), u(0.0, VERTEBRA_PITCH_MM)
    pancreas_c, pancreas_s = shifted(PANCREAS_CENTER), sized(PANCREAS_SEMI_AXES)
    tilt = u(-PANCREAS_MAX_TILT, PANCREAS_MAX_TILT)
    lesion_offset = rng.uniform(-1.0, 1.0, size=3) * LESION_MAX_OFFSET_MM
    lesion_radius = u(*LESION_RADIUS_MM)
    lesion_contrast = u(*LESION_CONTRAST_HU)
    coarse = rng.standard_normal(VISCERA_KNOTS, dtype=np.float32)
    noise = rng.standard_normal(shape, dtype=np.float32)

    # Physical coordinates as broadcastable axis vectors.
    x, y, z = ((np.arange(n) - (n - 1) / 2.0) * s for n, s in zip(shape, spacing))
    x, y, z = x[:, None, None], y[None, :, None], z[None, None, :]

    vol = np.full(shape, AIR_HU, dtype=np.float32)
    a, b = np.asarray(BODY_SEMI_AXES) * body
    _paint(vol, _ellipse(x, y, (0, 0), (a, b)), FAT_HU)
    a, b = a - SUBCUTANEOUS_FAT_MM, b - SUBCUTANEOUS_FAT_MM
    _paint(vol, _ellipse(x, y, (0, 0), (a, b)), MUSCLE_HU)
    a, b = a - MUSCLE_WALL_MM, b - MUSCLE_WALL_MM
    ux, uy, uz = (interp_matrix(n, k) for n, k in zip(shape, VISCERA_KNOTS))
    viscera = VISCERA_HU + VISCERA_SPREAD_HU * np.einsum("ia,jb,kc,abc->ijk", ux, uy, uz, coarse, optimize=True)
    vol += (viscera - vol) * _ellipse(x, y, (0, 0), (a, b))

    _paint(vol, _ellipsoid(x, y, z, liver_c, liver_s), LIVER_HU)
    for center, semi in kidneys:
        _paint(vol, _ellipsoid(x, y, z, center, semi), KIDNEY_HU)
    _paint(vol, _ellipse(x, y, aorta_c, (AORTA_RADIUS, AORTA_RADIUS)), AORTA_HU)

    # Vertebral bodies: cortical shell around cancellous bone, interrupted by discs.
    in_disc = np.abs((z - disc_phase) % VERTEBRA_PITCH_MM - VERTEBRA_PITCH_MM / 2) < DISC_MM / 2
    vertebra = _ellipse(x, y, vertebra_c, (VERTEBRA_RADIUS, VERTEBRA_RADIUS))
    _paint(vol, vertebra, np.where(in_disc, DISC_HU, CORTICAL_BONE_HU))
    inner = VERTEBRA_RADIUS - CORTEX_MM
    _paint(vol, _ellipse(x, y, vertebra_c, (inner, inner)) * ~in_disc, CANCELLOUS_BONE_HU)

    # Pancreas in its own tilted, arched frame, wrapped in a fat halo that outlines it.
    ct, st = np.cos(tilt), np.sin(tilt)
    px, py, pz = x - pancreas_c[0], y - pancreas_c[1], z - pancreas_c[2]
    along = ct * px + st * py
    across = ct * py - st * px + PANCREAS_ARCH_MM * (along / pancreas_s[0]) ** 2
    origin = (0.0, 0.0, 0.0)
    _paint(vol, _ellipsoid(along, across, pz, origin, pancreas_s + FAT_HALO_MM), PERIPANCREATIC_FAT_HU)
    pancreas = _ellipsoid(along, across, pz, origin, pancreas_s)
    _paint(vol, pancreas, PANCREAS_HU)

    if has_lesion:
        lesion = _ellipsoid(along, across, pz, lesion_offset, (lesion_radius,) * 3)
        vol -= visibility * lesion_contrast * lesion * pancreas  # confined to the gland

    vol += NOISE_SD_HU * noise
    hu = np.clip(np.rint(vol), *HU_RANGE).astype(np.int16)
    return hu, spacing
