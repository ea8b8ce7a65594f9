"""Noise calibration for one (dataset, ε), before any model trains.

Everything the accountant needs is known once the split is: the training-set size N, hence δ (which must stay below
1/N), the sampling rate q of a logical batch and the number of steps. Calibrating here, once per budget, means that
a budget the accountant cannot reach, or a δ too large for the data, stops the study with a config error naming the
key, before a GPU job starts, instead of inside every training job.
"""

from __future__ import annotations

import math
import warnings

from opacus.accountants import create_accountant
from opacus.accountants.utils import MAX_SIGMA, get_noise_multiplier

from privfair.core.errors import ConfigError
from privfair.train.privacy import resolve_delta


def sampling(n_train: int, logical_batch_size: int, epochs: int) -> tuple[float, int]:
    """The sampling rate and step count of Opacus' Poisson sampler for this data and schedule.

    Opacus' ``make_private`` sets q = 1 / len(data loader), with one expected logical batch per loader step.
    """
    batches_per_epoch = math.ceil(n_train / logical_batch_size)
    sample_rate = 1 / batches_per_epoch
    return sample_rate, int(epochs / sample_rate)


def _epsilon(accountant: str, sigma: float, sample_rate: float, steps: int, delta: float) -> float:
    counter = create_accountant(mechanism=accountant)
    counter.history = [(sigma, sample_rate, steps)]
    return counter.get_epsilon(delta=delta)


def calibrate_noise(n_train: int, epsilon: float, training: dict, key: str) -> dict:
    """The noise multiplier that spends exactly ``epsilon`` over the configured epochs.

    Args:
        n_train: training images (the privacy unit is one image).
        epsilon: the budget, finite and positive.
        training: the dataset's ``training`` config (``logical_batch_size``, ``epochs``, ``privacy``).
        key: the dataset's config key (``datasets.<name>``), for messages.

    Returns:
        ``epsilon``, ``delta``, ``noise_multiplier``, ``sample_rate``, ``steps``, ``accountant``, ``n_train``.

    Raises:
        ConfigError: δ is not below 1/N, or the accountant cannot reach ``epsilon`` with any σ Opacus allows (the
            message gives the smallest ε that works with these settings).
    """
    privacy = training["privacy"]
    accountant = privacy["accountant"]
    delta = resolve_delta(privacy.get("delta"), n_train)
    sample_rate, steps = sampling(n_train, training["logical_batch_size"], training["epochs"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # RDP's "optimal order is the largest alpha" says nothing actionable here
        try:
            sigma = get_noise_multiplier(
                target_epsilon=epsilon,
                target_delta=delta,
                sample_rate=sample_rate,
                epochs=training["epochs"],
                accountant=accountant,
            )
        except ValueError:
            floor = _epsilon(accountant, MAX_SIGMA / 2, sample_rate, steps, delta)
            raise ConfigError(
                f"study.epsilons: ε = {epsilon:g} cannot be reached for {key} by the {accountant} accountant "
                f"(N_train = {n_train}, δ = {delta:.3g}, q = {sample_rate:.4g}, {steps} steps); the smallest ε that "
                f"works with these settings is about {floor * 1.01:.3g}"
            ) from None
    return {
        "epsilon": epsilon,
        "delta": delta,
        "noise_multiplier": sigma,
        "sample_rate": sample_rate,
        "steps": steps,
        "accountant": accountant,
        "n_train": n_train,
    }
