"""Differential privacy with Opacus: budget checks, the noise mode, and the privacy record.

Noise modes (``training.privacy.noise``):

- ``seeded``: the DP noise comes from torch's global RNG and the Poisson sampling from the data loader's generator,
  both seeded by the run's seed. The run is reproducible, and for that reason anyone who knows the seed can
  regenerate the noise: the model is a reproducible research run, not for release.
- ``secure``: the noise and the sampling come from two generators of their own, each seeded with 64 bits from
  ``os.urandom`` that are never written anywhere (their running states are only in ``resume.pt``, deleted when the
  run ends), and each noise draw is the sum of 2n = 4 Gaussians (Opacus' mitigation of floating-point attacks on the
  Gaussian mechanism, ``DPOptimizer.secure_mode``). The generators are PyTorch's own (Mersenne Twister on the CPU,
  Philox on CUDA), not the cryptographically secure ones of Opacus' ``secure_mode``: those need ``torchcsprng``,
  which has no build for this PyTorch.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from dataclasses import asdict, dataclass, field

import torch
from opacus import PrivacyEngine

from privfair.core.errors import ConfigError, TrainingError

ACCOUNTANTS = ("prv", "rdp")
NOISE_MODES = ("seeded", "secure")
DELTA_KEY = "training.privacy.delta"
NOT_FOR_RELEASE = "reproducible research run — not for release"
RELEASE_LABELS = {
    "seeded": NOT_FOR_RELEASE,
    "secure": "for release with this record: noise and sampling from unrecorded OS entropy",
    None: "non-private run — no privacy guarantee, not for release",
}


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
    """An Opacus ``PrivacyEngine`` with the configured accountant (``secure_mode`` off: see :func:`noise_generators`).

    Args:
        accountant: ``prv`` or ``rdp``.

    Returns:
        The engine.

    Raises:
        ConfigError: any other accountant; ``gdp`` is refused because Opacus' GDP accountant is a central-limit
            approximation that can under-state ε.
    """
    if accountant == "gdp":
        raise ConfigError(
            "training.privacy.accountant: 'gdp' is refused: Opacus' GDP accountant is an approximation that can "
            "under-state ε; use 'prv'"
        )
    if accountant not in ACCOUNTANTS:
        raise ConfigError(f"training.privacy.accountant: '{accountant}' is not one of {ACCOUNTANTS}")
    with warnings.catch_warnings():
        # Its advice to turn on secure_mode (torchcsprng) does not apply: the noise mode decides where noise comes from.
        warnings.filterwarnings("ignore", message="Secure RNG turned off")
        return PrivacyEngine(accountant=accountant)


def noise_mode(privacy: dict) -> str:
    """The configured noise mode.

    Args:
        privacy: the dataset's ``training.privacy`` config (the schema fills in ``noise: seeded``).

    Returns:
        ``seeded`` or ``secure``.

    Raises:
        ConfigError: the key is missing or has another value.
    """
    mode = privacy.get("noise")
    if mode not in NOISE_MODES:
        raise ConfigError(f"training.privacy.noise: {mode!r} is not one of {', '.join(NOISE_MODES)}")
    return mode


def noise_generators(device: torch.device) -> tuple[torch.Generator, torch.Generator]:
    """Generators for secure mode, seeded from ``os.urandom``; the seeds are not kept.

    Args:
        device: where the model (hence the noise) lives.

    Returns:
        ``(sampling, noise)``: a CPU generator for the Poisson sampler and one on ``device`` for the DP noise.
    """
    sampling = torch.Generator().manual_seed(int.from_bytes(os.urandom(8), "little"))
    noise = torch.Generator(device=device).manual_seed(int.from_bytes(os.urandom(8), "little"))
    return sampling, noise


def check_accounting(history: list, noise_multiplier: float, sample_rate: float, steps: int) -> None:
    """Check that the accountant counted what the sampler did: every step at (σ, q), as many steps as were taken.

    Args:
        history: the accountant's ``(noise_multiplier, sample_rate, steps)`` entries (``accountant.history``).
        noise_multiplier: σ of the DP optimiser.
        sample_rate: q of the Poisson sampler.
        steps: the optimiser steps taken (one per logical batch drawn).

    Raises:
        TrainingError: they differ; the message gives both.
    """
    accounted = sum(n for _, _, n in history)
    if accounted != steps or any(s != noise_multiplier or q != sample_rate for s, q, _ in history):
        raise TrainingError(
            f"the privacy accountant's history {[tuple(entry) for entry in history]} (σ, q, steps) does not match "
            f"what the sampler did: {steps} logical batches at q = {sample_rate!r} with σ = {noise_multiplier!r}"
        )


def patient_level(epsilon: float, delta: float | None, k: int) -> tuple[float, float | None]:
    """The guarantee for a patient with up to ``k`` images, by group privacy: (kε, k·e^{(k−1)ε}·δ).

    Args:
        epsilon: the per-image ε (``math.inf`` without a guarantee).
        delta: the per-image δ (None without a guarantee).
        k: the most training images of one patient.

    Returns:
        ``(patient_epsilon, patient_delta)``; ``(inf, None)`` for a non-private run, and ``patient_delta`` is
        ``math.inf`` where it overflows a float.
    """
    if not math.isfinite(epsilon) or delta is None:
        return math.inf, None
    try:
        return k * epsilon, k * math.exp((k - 1) * epsilon) * delta
    except OverflowError:
        return k * epsilon, math.inf


@dataclass
class PrivacyRecord:
    """What a run spent, as needed to report it: the δ here is the δ used in training.

    ``sample_rate`` and ``steps`` are those of the sampler (the logical batches actually drawn), checked against the
    accountant's history. ``epsilon_spent`` is Opacus' ε for them, checked against ``epsilon_pld``, dp-accounting's
    (``privfair.train.accounting``). The last fields are derived: ``release`` labels the run (a seeded model is
    "reproducible research run — not for release"), and ``patient_epsilon``/``patient_delta`` are the guarantee for a
    patient with ``max_images_per_patient`` = k images, (kε, k·e^{(k−1)ε}·δ) with ε = ``epsilon_spent``, which
    ``patient_guarantee`` puts in words (none when ``patient_delta`` ≥ 1).
    """

    private: bool
    noise_mode: str | None  # seeded or secure; None for a non-private run (no noise)
    epsilon: float
    epsilon_spent: float  # by Opacus' configured accountant (``accountant``): the ε the run reports
    epsilon_pld: float | None  # by dp-accounting's PLD, the independent check; None for a non-private run
    delta: float | None
    noise_multiplier: float
    sample_rate: float
    steps: int
    epochs: int
    accountant: str | None
    max_grad_norm: float | None
    n_train: int  # images: the privacy unit is one image
    n_train_patients: int
    max_images_per_patient: int  # k: a patient is protected at (kε, k·e^{(k−1)ε}·δ) by group privacy
    release: str = field(init=False)
    patient_epsilon: float = field(init=False)
    patient_delta: float | None = field(init=False)
    patient_guarantee: str = field(init=False)

    def __post_init__(self):
        self.release = RELEASE_LABELS[self.noise_mode]
        k = self.max_images_per_patient
        self.patient_epsilon, self.patient_delta = patient_level(self.epsilon_spent, self.delta, k)
        if self.patient_delta is None:
            self.patient_guarantee = "none: non-private run"
        elif self.patient_delta >= 1:
            self.patient_guarantee = (
                f"none: patient_delta = k·e^((k−1)ε)·δ ≥ 1 for k = {k} images per patient, so group privacy gives no "
                "meaningful patient-level guarantee; only the per-image (ε, δ) holds"
            )
        elif self.patient_delta >= 1 / self.n_train_patients:
            self.patient_guarantee = (
                f"weak: ({self.patient_epsilon:.3g}, {self.patient_delta:.2g}) for a patient with up to k = {k} "
                f"images, but patient_delta ≥ 1/N_patients = {1 / self.n_train_patients:.2g}"
            )
        else:
            self.patient_guarantee = (
                f"({self.patient_epsilon:.3g}, {self.patient_delta:.2g}) for a patient with up to k = {k} images"
            )

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
