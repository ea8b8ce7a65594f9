"""Differential privacy with Opacus: budget checks, making a training setup private, and the privacy record."""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import asdict, dataclass

from opacus import PrivacyEngine

from privfair.core.errors import ConfigError

ACCOUNTANTS = ("prv", "rdp", "gdp")
DELTA_KEY = "training.privacy.delta"


def resolve_delta(delta: float | None, n_train: int) -> float:
    """δ must stay below 1/N (otherwise releasing one record in full would satisfy it); default 0.1/N."""
    if delta is None:
        return 0.1 / n_train
    if not 0 < delta < 1 / n_train:
        raise ConfigError(
            f"{DELTA_KEY} = {delta} must be in (0, 1/N_train) = (0, {1 / n_train:.3g}) for N_train = {n_train}"
        )
    return delta


def make_engine(accountant: str) -> PrivacyEngine:
    if accountant not in ACCOUNTANTS:
        raise ConfigError(f"training.privacy.accountant: '{accountant}' is not one of {ACCOUNTANTS}")
    if accountant == "gdp":
        warnings.warn(
            "accountant 'gdp' is an approximation that can under-state ε (its σ overshot the target ε under PRV "
            "accounting); prefer 'prv'",
            stacklevel=2,
        )
    return PrivacyEngine(accountant=accountant)


@dataclass
class PrivacyRecord:
    """What a run spent, as needed to report it: the δ here is the δ used in training."""

    private: bool
    epsilon: float
    epsilon_spent: float
    delta: float | None
    noise_multiplier: float
    sample_rate: float
    steps: int
    epochs: int
    accountant: str | None
    max_grad_norm: float | None
    n_train: int  # images: the privacy unit is one image
    n_train_patients: int
    max_images_per_patient: int  # k: a patient is protected at k·ε by group privacy

    def to_dict(self) -> dict:
        # JSON has no infinity; the record keeps it as the string Snakemake's wildcards use.
        return {k: ("inf" if isinstance(v, float) and math.isinf(v) else v) for k, v in asdict(self).items()}


def read_record(path) -> dict:
    """A run's privacy record (JSON), with "inf" turned back into ``math.inf``.

    Args:
        path: the record written by the train rule: ``dataset``, ``seed``, ``best_epoch``, the fields of
            :class:`PrivacyRecord` and the run's provenance.

    Returns:
        The record as a dict; every value that is the string "inf" (e.g. ``epsilon`` and ``epsilon_spent`` of a
        non-private run) becomes ``math.inf``.
    """
    with open(path) as f:
        record = json.load(f)
    return {k: (math.inf if v == "inf" else v) for k, v in record.items()}
