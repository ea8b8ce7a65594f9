"""Helpers shared by the synthetic CXR and CT generators.

Both generators draw patients from the same demographic model and accept the
same ``subgroup_effect`` specification, which plants a known (ground-truth)
subgroup disparity for the downstream fairness analysis.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from privfair.core.errors import ConfigError

MIN_AGE = 18
MAX_AGE = 95
# Age = MIN_AGE + (MAX_AGE - MIN_AGE) * Beta(a, b): mean ~66 y, sd ~15 y, so
# most patients are 50-85 like a hospital imaging population, with a young tail.
AGE_BETA = (3.2, 1.9)
FEMALE_FRACTION = 0.5
# Presence/lesion probabilities are modelled around this age (logit offset 0).
REFERENCE_AGE = 65.0

ATTRIBUTES = ("age", "sex")
SEXES = ("M", "F")
_REQUIRED_KEYS = ("finding", "attribute", "group")
_OPTIONAL_KEYS = ("visibility", "prevalence")


def patient_ids(n_patients: int, min_width: int) -> list[str]:
    """PACS-style zero-padded ids ``P00017``; widened when ``n_patients`` needs it."""
    width = max(min_width, len(str(max(n_patients - 1, 0))))
    return [f"P{i:0{width}d}" for i in range(n_patients)]


def sample_demographics(
    rng: np.random.Generator, n_patients: int, age_beta: tuple[float, float] = AGE_BETA
) -> tuple[np.ndarray, np.ndarray]:
    """Return (integer ages, sexes as ``"M"``/``"F"`` strings) for ``n_patients`` patients.

    ``age_beta``: the Beta parameters of the age mix (see :func:`age_beta`); the default is ``AGE_BETA``.
    """
    if n_patients < 1:
        raise ConfigError(f"n_patients must be >= 1, got {n_patients}")
    ages = MIN_AGE + (MAX_AGE - MIN_AGE) * rng.beta(*age_beta, size=n_patients)
    sexes = np.where(rng.random(n_patients) < FEMALE_FRACTION, "F", "M")
    return np.rint(ages).astype(np.int64), sexes


def age_beta(mean: float, sd: float) -> tuple[float, float]:
    """Beta parameters of an age mix with this ``mean`` and ``sd`` in years on [MIN_AGE, MAX_AGE] (moments).

    Raises:
        ConfigError: no Beta distribution on that interval has these moments (mean outside it, sd too large).
    """
    span = MAX_AGE - MIN_AGE
    m, v = (mean - MIN_AGE) / span, (sd / span) ** 2
    if not (0.0 < m < 1.0 and 0.0 < v < m * (1.0 - m)):
        limit = math.sqrt(max(m * (1.0 - m), 0.0)) * span
        raise ConfigError(
            f"age mean must lie in ({MIN_AGE}, {MAX_AGE}) and sd in (0, {limit:.1f}) for that mean, "
            f"got mean={mean}, sd={sd}"
        )
    k = m * (1.0 - m) / v - 1.0
    return m * k, (1.0 - m) * k


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def logit(p: float) -> float:
    return math.log(p / (1.0 - p))


@dataclass(frozen=True)
class SubgroupEffect:
    """A planted disparity: in ``group`` the finding is ``visibility`` times as
    conspicuous and ``prevalence`` times as likely to be present."""

    finding: str
    attribute: str
    group: tuple[float, float] | str
    visibility: float = 1.0
    prevalence: float = 1.0

    def members(self, ages: np.ndarray, sexes: np.ndarray) -> np.ndarray:
        """Boolean mask: age in ``[lo, hi)`` for ``"age"``, sex equal for ``"sex"``."""
        if self.attribute == "age":
            lo, hi = self.group
            ages = np.asarray(ages)
            return (ages >= lo) & (ages < hi)
        return np.asarray(sexes) == self.group


def parse_subgroup_effect(spec: Mapping | None, findings: Sequence[str]) -> SubgroupEffect | None:
    """Validate a ``subgroup_effect`` dict; errors name the offending key."""
    if spec is None:
        return None
    if not isinstance(spec, Mapping):
        raise ConfigError(f"subgroup_effect must be a dict or None, got {type(spec).__name__}")
    unknown = sorted(set(spec) - set(_REQUIRED_KEYS) - set(_OPTIONAL_KEYS))
    if unknown:
        raise ConfigError(
            f"subgroup_effect has unknown key(s) {unknown}; allowed: {list(_REQUIRED_KEYS + _OPTIONAL_KEYS)}"
        )
    for key in _REQUIRED_KEYS:
        if key not in spec:
            raise ConfigError(f"subgroup_effect is missing required key '{key}'")

    finding = spec["finding"]
    if finding not in findings:
        raise ConfigError(f"subgroup_effect 'finding'={finding!r} is unknown; expected one of {list(findings)}")
    attribute = spec["attribute"]
    if attribute not in ATTRIBUTES:
        raise ConfigError(f"subgroup_effect 'attribute'={attribute!r} is unknown; expected one of {list(ATTRIBUTES)}")

    group = spec["group"]
    if attribute == "age":
        try:
            lo, hi = (float(v) for v in group)
        except (TypeError, ValueError):
            raise ConfigError(f"subgroup_effect 'group' for age must be [lo, hi], got {group!r}") from None
        if not lo < hi:
            raise ConfigError(f"subgroup_effect 'group' for age needs lo < hi, got {group!r}")
        group = (lo, hi)
    elif group not in SEXES:
        raise ConfigError(f"subgroup_effect 'group' for sex must be one of {list(SEXES)}, got {group!r}")

    factors = {}
    for key in _OPTIONAL_KEYS:
        value = spec.get(key, 1.0)
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"subgroup_effect '{key}' must be a number, got {value!r}") from None
        if not (math.isfinite(value) and value >= 0.0):
            raise ConfigError(f"subgroup_effect '{key}' must be a finite number >= 0, got {value!r}")
        factors[key] = value
    return SubgroupEffect(finding, attribute, group, **factors)


def interp_matrix(size: int, knots: int) -> np.ndarray:
    """(size, knots) linear-interpolation matrix; contracting it with a coarse random
    grid along each axis gives a smooth random field cheaply (e.g. ``M @ Z @ M.T``)."""
    pos = np.linspace(0.0, knots - 1.0, size)
    eye = np.eye(knots)
    return np.stack([np.interp(pos, np.arange(knots), eye[k]) for k in range(knots)], axis=1).astype(np.float32)


def group_factors(
    effect: SubgroupEffect | None, finding: str, ages: np.ndarray, sexes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-row (visibility, prevalence) multipliers for ``finding``; 1.0 outside the group."""
    n = len(ages)
    visibility, prevalence = np.ones(n), np.ones(n)
    if effect is not None and effect.finding == finding:
        inside = effect.members(ages, sexes)
        visibility[inside] = effect.visibility
        prevalence[inside] = effect.prevalence
    return visibility, prevalence


def ensure_dirs(out_dir: str | Path, sub: str) -> tuple[Path, Path]:
    """Create ``out_dir/sub`` and return (out_dir, out_dir/sub) as Paths."""
    root = Path(out_dir)
    (root / sub).mkdir(parents=True, exist_ok=True)
    return root, root / sub
