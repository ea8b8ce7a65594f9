"""Synthetic chest radiographs shaped like a hospital PACS export.

Each image is a radiograph-like phantom (body outline, dark lung fields, bright
mediastinum and heart, faint ribs and texture, noise) with five graded findings
drawn where a radiologist would look for them. Grades follow the reference study:
0 absent, 1-2 mild (labelled negative downstream), 3-4 positive. The pixel
signal is faint for grades 1-2 and clear for 3-4, so grade >= 3 is learnable at
64 px while mild cases make the boundary non-trivial.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from privfair.core.errors import ConfigError

from ._common import (
    AGE_BETA,
    MAX_AGE,
    REFERENCE_AGE,
    age_beta,
    ensure_dirs,
    group_factors,
    interp_matrix,
    logit,
    parse_subgroup_effect,
    patient_ids,
    sample_demographics,
    sigmoid,
)

FINDINGS = ("cardiomegaly", "pleural_effusion", "pneumonic_infiltrate", "atelectasis", "nodule")
METADATA_COLUMNS = ("PatientID", "StudyID", "ImageFile", "PatientAge", "PatientSex", "ViewPosition", *FINDINGS)
PATIENT_ID_WIDTH = 5

# --- label model -----------------------------------------------------------
# P(finding present, grade >= 1) at REFERENCE_AGE and average comorbidity burden.
BASE_PRESENCE = {
    "cardiomegaly": 0.42,
    "pleural_effusion": 0.38,
    "pneumonic_infiltrate": 0.38,
    "atelectasis": 0.40,
    "nodule": 0.32,
}
# Grade 1..4 given present; P(grade >= 3 | present) = 0.55, so 15-35 % positives.
SEVERITY_PROBS = (0.25, 0.20, 0.30, 0.25)
PRESENCE_LOGIT_PER_DECADE = 0.25
# A shared latent burden makes findings co-occur; part of it persists per patient.
BURDEN_LOGIT_SD = 1.3
BURDEN_PATIENT_SHARE = 0.5
STUDY_GAP_YEARS = (0.2, 3.0)
# Bedside AP films are more common in sicker patients.
AP_BASE_PROB = 0.2
AP_PROB_PER_POSITIVE = 0.12

# --- rendering (intensities on a 0..1 scale, geometry in [-1, 1] image coordinates,
# y pointing down, patient's left on the image right as in a PA film) ---
BACKGROUND = 0.05
SOFT_TISSUE = 0.45
LUNG = 0.17
MEDIASTINUM = 0.6
HEART = 0.68
OPACITY = 0.58  # fluid / consolidated lung
NOISE_SD = 0.025
RIB_AMPLITUDE, RIB_FREQUENCY, RIB_CURVATURE = 0.05, 22.0, 0.3
TEXTURE_AMPLITUDE = 0.03
TEXTURE_KNOTS, PATCH_KNOTS = 12, 16  # coarse grids of the smooth random fields
BODY_CENTER_Y, BODY_RADII, BODY_POWER, BODY_EDGE = 0.15, (0.9, 1.05), 3.0, 0.3
LUNG_CENTER = (0.36, -0.05)  # x is mirrored per side
LUNG_RADII = (0.27, 0.6)
# Superellipse exponents: rounded apices, flatter bases with costophrenic angles.
LUNG_POWER_X, LUNG_POWER_APEX, LUNG_POWER_BASE = 2.4, 2.0, 3.2
MEDIASTINUM_HALF_WIDTH = (0.09, 0.15)  # at the apex, at the heart
MEDIASTINUM_BOTTOM_Y, MEDIASTINUM_EDGE = 0.45, 0.06
HEART_CENTER = (0.1, 0.28)
HEART_RADII = (0.28, 0.22)
HEART_EDGE = 0.2
EDGE = 0.12  # default soft-edge width of masks

# Geometric / exposure jitter so no two images are identical. No rotation keeps the
# coordinate grids separable (1-D row/column vectors), which makes rendering cheap.
SCALE_RANGE = (0.93, 1.07)
ASPECT_RANGE = (0.96, 1.04)
MAX_SHIFT = 0.05
BODY_WIDTH_RANGE = (0.95, 1.05)
LUNG_HEIGHT_RANGE = (0.94, 1.06)
HEART_SIZE_RANGE = (0.92, 1.08)  # natural variation, overlaps mild cardiomegaly
GAIN_RANGE = (0.88, 1.12)
MAX_BIAS = 0.04
GAMMA_RANGE = (0.85, 1.15)
AP_HEART_MAGNIFICATION = 1.05  # AP projection magnifies the heart a little
AP_GAIN = 0.93
FINDING_JITTER = (0.8, 1.2)  # per-image multiplier on each finding's strength

# Signal strength per grade: faint for mild grades, a clear jump at grade 3.
GRADE_STRENGTH = (0.0, 0.15, 0.3, 0.8, 1.0)
CARDIOMEGALY_WIDENING = 0.38  # fractional heart enlargement at strength 1
EFFUSION_OPACITY = 0.9
EFFUSION_MAX_HEIGHT = 0.25
EFFUSION_MENISCUS = 0.5  # extra height at the lateral chest wall
EFFUSION_EDGE = 0.04
INFILTRATE_OPACITY = 0.8
INFILTRATE_RADIUS = (0.1, 0.12)  # base + growth with strength
INFILTRATE_FOCUS_RANGE = 0.6  # focus within this fraction of the lung radii
ATELECTASIS_OPACITY = 0.9
ATELECTASIS_THICKNESS = (0.03, 0.06)  # base + growth with strength
ATELECTASIS_ANCHOR_X, ATELECTASIS_ANCHOR_Y = 0.08, (0.18, 0.34)  # lower lobe, from lung centre
ATELECTASIS_MAX_TILT = 0.35  # radians from horizontal
ATELECTASIS_WEDGE = 0.4  # relative thinning towards the lateral wall
NODULE_AMPLITUDE = 0.40
NODULE_RADIUS = (0.025, 0.04)  # base + growth with strength
NODULE_FOCUS_RANGE = 0.8
MAX_NODULES = 3


@dataclass(frozen=True)
class DomainShift:
    """Another hospital's scanner and patients (option ``shift``); the defaults are this generator's own.

    ``gamma`` multiplies every image's exposure gamma (the scanner's tone curve; > 1 darkens mid-tones, which a
    per-image min/max rescaling does not undo), ``noise_sd`` is the pixel noise on the 0..1 intensity scale,
    ``presence_logit`` is added to every finding's presence logit (odds times ``exp(presence_logit)``) and
    ``age_beta`` are the Beta parameters of the age mix (``_common.age_beta`` from a mean and sd in years).
    """

    gamma: float = 1.0
    noise_sd: float = NOISE_SD
    presence_logit: float = 0.0
    age_beta: tuple[float, float] = AGE_BETA


def parse_shift(spec: Mapping | None) -> DomainShift:
    """Validate a ``shift`` dict (keys ``gamma``, ``noise_sd``, ``presence_logit``, ``age: {mean, sd}``, all
    optional); errors name the offending key. None or ``{}`` is no shift."""
    if spec is None:
        return DomainShift()
    if not isinstance(spec, Mapping):
        raise ConfigError(f"shift must be a dict or None, got {type(spec).__name__}")
    allowed = ("gamma", "noise_sd", "presence_logit", "age")
    unknown = sorted(set(spec) - set(allowed))
    if unknown:
        raise ConfigError(f"shift has unknown key(s) {unknown}; allowed: {list(allowed)}")

    options = {}
    if "gamma" in spec:
        options["gamma"] = _shift_number("gamma", spec["gamma"], positive=True)
    if "noise_sd" in spec:
        options["noise_sd"] = _shift_number("noise_sd", spec["noise_sd"], nonnegative=True)
    if "presence_logit" in spec:
        options["presence_logit"] = _shift_number("presence_logit", spec["presence_logit"])
    if "age" in spec:
        age = spec["age"]
        if not isinstance(age, Mapping) or set(age) != {"mean", "sd"}:
            raise ConfigError(f"shift 'age' must be a dict with keys 'mean' and 'sd' (years), got {age!r}")
        mean, sd = _shift_number("age.mean", age["mean"]), _shift_number("age.sd", age["sd"], positive=True)
        options["age_beta"] = age_beta(mean, sd)
    return DomainShift(**options)


def _shift_number(key: str, value, positive: bool = False, nonnegative: bool = False) -> float:
    """``value`` as a finite float (> 0 with ``positive``, >= 0 with ``nonnegative``); errors name ``shift.key``."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"shift '{key}' must be a number, got {value!r}") from None
    if not math.isfinite(number) or (positive and number <= 0) or (nonnegative and number < 0):
        bound = " > 0" if positive else " >= 0" if nonnegative else ""
        raise ConfigError(f"shift '{key}' must be a finite number{bound}, got {value!r}")
    return number


def generate_synth_cxr(
    out_dir: str | Path,
    *,
    n_patients: int,
    images_per_patient: tuple[int, int] = (1, 4),
    image_size: int = 128,
    seed: int = 0,
    subgroup_effect: Mapping | None = None,
    shift: Mapping | None = None,
) -> pd.DataFrame:
    """Write ``images/<StudyID>.png`` and ``metadata.csv`` under ``out_dir``; return the metadata.

    One 8-bit grayscale PNG per study. ``subgroup_effect`` (see
    ``_common.parse_subgroup_effect``) scales one finding's visibility and
    presence probability inside a patient subgroup. ``shift`` (see
    :func:`parse_shift`) renders another hospital: its tone curve, noise, finding
    prevalence and age mix; left out, the images are those without it, bit for bit.
    Deterministic in ``seed``.
    """
    effect = parse_subgroup_effect(subgroup_effect, FINDINGS)
    domain = parse_shift(shift)
    lo, hi = images_per_patient
    if not 1 <= lo <= hi:
        raise ConfigError(f"images_per_patient must satisfy 1 <= lo <= hi, got {images_per_patient}")
    if image_size < 16:
        raise ConfigError(f"image_size must be >= 16, got {image_size}")

    # Separate streams: labels never shift the pixels of other images, and a
    # subgroup effect leaves every image outside the group byte-identical.
    label_rng, pixel_rng = np.random.default_rng(seed).spawn(2)
    meta, grades, visibility, ap_view = _sample_metadata(label_rng, n_patients, (lo, hi), effect, domain)

    root, image_dir = ensure_dirs(out_dir, "images")
    renderer = _CxrRenderer(image_size, domain)
    for i, (study, rng) in enumerate(zip(meta["StudyID"], pixel_rng.spawn(len(meta)))):
        pixels = renderer.render(rng, grades[i], bool(ap_view[i]), visibility[i])
        Image.fromarray(pixels).save(image_dir / f"{study}.png")
    meta.to_csv(root / "metadata.csv", index=False)
    return meta


def _sample_metadata(rng, n_patients, images_per_patient, effect, domain):
    """Studies, demographics and finding grades; returns (frame, grades, visibility, is_ap)."""
    ids = patient_ids(n_patients, PATIENT_ID_WIDTH)
    first_age, sex = sample_demographics(rng, n_patients, domain.age_beta)
    n_studies = rng.integers(images_per_patient[0], images_per_patient[1] + 1, size=n_patients)
    patient_burden = rng.standard_normal(n_patients)

    patient = np.repeat(np.arange(n_patients), n_studies)
    n = len(patient)
    first_row = np.repeat(np.cumsum(n_studies) - n_studies, n_studies)
    study_no = np.arange(n) - first_row
    gaps = np.where(study_no == 0, 0.0, rng.uniform(*STUDY_GAP_YEARS, size=n))
    elapsed = np.cumsum(gaps)
    elapsed -= elapsed[first_row]
    age = np.minimum(first_age[patient] + np.floor(elapsed).astype(np.int64), MAX_AGE)
    sex = sex[patient]

    share = BURDEN_PATIENT_SHARE
    burden = np.sqrt(share) * patient_burden[patient] + np.sqrt(1 - share) * rng.standard_normal(n)
    # Drawn for every cell regardless of the effect, so only group members change.
    presence_draw = rng.random((n, len(FINDINGS)))
    severity = 1 + rng.choice(len(SEVERITY_PROBS), size=(n, len(FINDINGS)), p=SEVERITY_PROBS)
    view_draw = rng.random(n)

    grades = np.zeros((n, len(FINDINGS)), dtype=np.int64)
    visibility = np.ones((n, len(FINDINGS)))
    for j, finding in enumerate(FINDINGS):
        vis, prev = group_factors(effect, finding, age, sex)
        logits = (
            logit(BASE_PRESENCE[finding])
            + domain.presence_logit
            + PRESENCE_LOGIT_PER_DECADE * (age - REFERENCE_AGE) / 10.0
            + BURDEN_LOGIT_SD * burden
        )
        present = presence_draw[:, j] < np.clip(sigmoid(logits) * prev, 0.0, 1.0)
        grades[:, j] = np.where(present, severity[:, j], 0)
        visibility[:, j] = vis

    n_positive = (grades >= 3).sum(axis=1)
    ap_view = view_draw < AP_BASE_PROB + AP_PROB_PER_POSITIVE * n_positive

    pid = np.asarray(ids)[patient]
    study_ids = [f"{p}_S{k + 1:02d}" for p, k in zip(pid, study_no)]
    frame = pd.DataFrame(
        {
            "PatientID": pid,
            "StudyID": study_ids,
            "ImageFile": [f"images/{s}.png" for s in study_ids],
            "PatientAge": age,
            "PatientSex": sex,
            "ViewPosition": np.where(ap_view, "AP", "PA"),
            **{f: grades[:, j] for j, f in enumerate(FINDINGS)},
        },
        columns=list(METADATA_COLUMNS),
    )
    return frame, grades, visibility, ap_view


def _ellipse(X, Y, cx, cy, rx, ry, power=2.0, edge=EDGE):
    """Soft (super)ellipse mask in [0, 1]; X is a row and Y a column vector."""
    d = np.abs((X - cx) / rx) ** power + np.abs((Y - cy) / ry) ** power
    return np.clip((1.0 - d) / edge, 0.0, 1.0)


def _lung(X, Y, cx, cy, rx, ry):
    """Soft lung-field mask: superellipse with a flatter base than apex."""
    dy = np.abs((Y - cy) / ry)
    d = np.abs((X - cx) / rx) ** LUNG_POWER_X + np.where(Y < cy, dy**LUNG_POWER_APEX, dy**LUNG_POWER_BASE)
    return np.clip((1.0 - d) / EDGE, 0.0, 1.0)


def _point_in_lung(rng, side, max_radius):
    """Uniform random point inside the inner ``max_radius`` fraction of one lung."""
    r = max_radius * np.sqrt(rng.random())
    theta = rng.uniform(0.0, 2 * np.pi)
    x = side * LUNG_CENTER[0] + r * LUNG_RADII[0] * np.cos(theta)
    y = LUNG_CENTER[1] + r * LUNG_RADII[1] * np.sin(theta)
    return float(x), float(y)


class _CxrRenderer:
    """Renders one radiograph; coordinate vectors and upsampling matrices are built once."""

    def __init__(self, size: int, domain: DomainShift):
        self.size, self.domain = size, domain
        c = ((np.arange(size, dtype=np.float32) + 0.5) / size) * 2.0 - 1.0
        self.x, self.y = c[None, :], c[:, None]
        self.up = {k: interp_matrix(size, k) for k in (TEXTURE_KNOTS, PATCH_KNOTS)}

    def _smooth_noise(self, rng, knots):
        m = self.up[knots]
        return m @ rng.standard_normal((knots, knots), dtype=np.float32) @ m.T

    def render(self, rng, grades, ap_view, visibility) -> np.ndarray:
        # Every random number is drawn unconditionally and in a fixed order, so the
        # anatomy of an image does not depend on its grades or the subgroup effect.
        u = rng.uniform
        scale, aspect = u(*SCALE_RANGE), u(*ASPECT_RANGE)
        dx, dy = u(-MAX_SHIFT, MAX_SHIFT), u(-MAX_SHIFT, MAX_SHIFT)
        body_width, lung_height, heart_size = u(*BODY_WIDTH_RANGE), u(*LUNG_HEIGHT_RANGE), u(*HEART_SIZE_RANGE)
        rib_phase = u(0.0, 2 * np.pi)
        texture = self._smooth_noise(rng, TEXTURE_KNOTS)
        patches = self._smooth_noise(rng, PATCH_KNOTS)
        jitter = rng.uniform(*FINDING_JITTER, size=len(FINDINGS))
        effusion_side, infiltrate_side, atelectasis_side = (int(s) for s in rng.choice((-1, 1), size=3))
        infiltrate_focus = _point_in_lung(rng, infiltrate_side, INFILTRATE_FOCUS_RANGE)
        atelectasis_anchor = (u(-ATELECTASIS_ANCHOR_X, ATELECTASIS_ANCHOR_X), u(*ATELECTASIS_ANCHOR_Y))
        atelectasis_tilt = u(-ATELECTASIS_MAX_TILT, ATELECTASIS_MAX_TILT)
        n_nodules = int(rng.integers(1, MAX_NODULES + 1))
        nodules = [
            (_point_in_lung(rng, int(rng.choice((-1, 1))), NODULE_FOCUS_RANGE), u(*FINDING_JITTER))
            for _ in range(MAX_NODULES)
        ]
        gain, bias, gamma = u(*GAIN_RANGE), u(-MAX_BIAS, MAX_BIAS), u(*GAMMA_RANGE)
        noise = rng.standard_normal((self.size, self.size), dtype=np.float32)

        X = (self.x - dx) / (scale * aspect)  # (1, size) row vector
        Y = (self.y - dy) / scale  # (size, 1) column vector

        body_rx = BODY_RADII[0] * body_width
        body = _ellipse(X, Y, 0.0, BODY_CENTER_Y, body_rx, BODY_RADII[1], BODY_POWER, BODY_EDGE)
        img = BACKGROUND + (SOFT_TISSUE - BACKGROUND) * body
        lung_rx, lung_ry = LUNG_RADII[0], LUNG_RADII[1] * lung_height
        lungs = {side: _lung(X, Y, side * LUNG_CENTER[0], LUNG_CENTER[1], lung_rx, lung_ry) for side in (-1, 1)}
        lung = lungs[-1] + lungs[1]
        ribs = RIB_AMPLITUDE * np.cos(RIB_FREQUENCY * (Y + RIB_CURVATURE * X**2) + rib_phase) ** 4
        img += ((LUNG - SOFT_TISSUE) + ribs + TEXTURE_AMPLITUDE * texture) * lung

        # Mediastinum widens from the apex (y = -1) down to the heart.
        apex, base = MEDIASTINUM_HALF_WIDTH
        half_width = apex + (base - apex) * np.clip((Y + 1.0) / (1.0 + HEART_CENTER[1]), 0, 1)
        mediastinum = np.clip((half_width - np.abs(X)) / MEDIASTINUM_EDGE, 0, 1)
        mediastinum = mediastinum * np.clip((MEDIASTINUM_BOTTOM_Y - Y) / HEART_EDGE, 0, 1)
        img += (MEDIASTINUM - img) * mediastinum * body

        strength = [GRADE_STRENGTH[g] * float(v * j) for g, v, j in zip(grades, visibility, jitter)]

        # Cardiomegaly: the heart silhouette widens (mostly to the patient's left) and lengthens.
        widen = 1.0 + CARDIOMEGALY_WIDENING * strength[0]
        heart_scale = heart_size * (AP_HEART_MAGNIFICATION if ap_view else 1.0)
        heart = _ellipse(
            X,
            Y,
            HEART_CENTER[0] + 0.5 * (widen - 1.0) * HEART_RADII[0],
            HEART_CENTER[1],
            HEART_RADII[0] * heart_scale * widen,
            HEART_RADII[1] * heart_scale * float(np.sqrt(widen)),
            edge=HEART_EDGE,
        )
        img += (HEART - img) * heart

        # Lung opacities blend towards OPACITY; they never darken denser structures.
        def opacify(alpha):
            nonlocal img
            img += np.maximum(OPACITY - img, 0.0) * np.clip(alpha, 0.0, 1.0)

        # Pleural effusion: fluid fills one lung base; the meniscus climbs the lateral wall.
        if strength[1] > 0:
            s = effusion_side
            lateral = np.clip((s * X - LUNG_CENTER[0]) / lung_rx, -1, 1)  # -1 medial .. 1 lateral
            height = EFFUSION_MAX_HEIGHT * strength[1] * (1.0 + EFFUSION_MENISCUS * (lateral + 1.0) ** 2)
            top = LUNG_CENTER[1] + lung_ry - height
            opacify(EFFUSION_OPACITY * strength[1] * np.clip((Y - top) / EFFUSION_EDGE, 0, 1) * lungs[s])

        # Pneumonic infiltrate: patchy opacity around a focus inside one lung.
        if strength[2] > 0:
            cx, cy = infiltrate_focus
            two_var = 2 * (INFILTRATE_RADIUS[0] + INFILTRATE_RADIUS[1] * strength[2]) ** 2
            blob = np.exp(-((X - cx) ** 2) / two_var) * np.exp(-((Y - cy) ** 2) / two_var)
            patchy = np.clip(0.5 + patches, 0, 1)
            opacify(INFILTRATE_OPACITY * strength[2] * blob * patchy * lungs[infiltrate_side])

        # Atelectasis: a dense lower-lobe band, wedge-shaped (thicker towards the hilum).
        if strength[3] > 0:
            s = atelectasis_side
            px = s * (LUNG_CENTER[0] + atelectasis_anchor[0])
            py = LUNG_CENTER[1] + atelectasis_anchor[1]
            ct, st = float(np.cos(atelectasis_tilt)), float(np.sin(atelectasis_tilt))
            along = (X - px) * ct + (Y - py) * st
            across = (Y - py) * ct - (X - px) * st
            thickness = ATELECTASIS_THICKNESS[0] + ATELECTASIS_THICKNESS[1] * strength[3]
            thickness = thickness * np.clip(1.0 - ATELECTASIS_WEDGE * s * along / lung_rx, 0.1, None)
            band = np.clip(1.0 - np.abs(across) / thickness, 0, 1)
            opacify(ATELECTASIS_OPACITY * strength[3] * band * lungs[s])

        # Nodules: one to three small round dense spots in the lungs.
        if strength[4] > 0:
            for (nx, ny), size_jitter in nodules[:n_nodules]:
                radius = (NODULE_RADIUS[0] + NODULE_RADIUS[1] * strength[4]) * size_jitter
                dist = np.sqrt((X - nx) ** 2 + (Y - ny) ** 2)
                spot = np.clip((radius - dist) / (0.4 * radius), 0, 1)  # soft rim, 40 % of the radius
                img += NODULE_AMPLITUDE * strength[4] * spot * lung

        if ap_view:
            gain *= AP_GAIN
        img = gain * np.clip(img, 0, 1) ** (gamma * self.domain.gamma) + bias + self.domain.noise_sd * noise
        return np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)
