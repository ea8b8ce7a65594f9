"""Noise calibration for one (dataset, ε), before any model trains.

Everything the accountant needs is known once the split is: the training-set size N, hence δ (which must stay below
1/N), the sampling rate q of a logical batch and the number of steps. Calibrating here, once per budget, means that
a budget the accountant cannot reach, or a δ too large for the data, stops the study with a config error naming the
key, before a GPU job starts, instead of inside every training job.

σ must keep Opacus' configured accountant, which reports the ε spent, within the budget. With RDP that accountant is
also the fastest to calibrate with, so it is used directly. Opacus' PRV is slow where σ is small (81 s and 12 GB for
one ε at σ = 0.3 at hospital scale), and its own bisection visits such σ: 208 s and 5 GB per budget. So σ comes from
dp-accounting's PLD (:func:`privfair.train.accounting.pld_noise_multiplier`, seconds), and PRV is asked only at the
σ found; where its ε is above the budget (it runs about 0.01 above the PLD's), the PLD target is lowered by the
excess and σ found again (benchmarks/accounting.py has the figures).
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

from opacus.accountants import create_accountant
from opacus.accountants.utils import MAX_SIGMA, get_noise_multiplier

from privfair.core.errors import ConfigError, TrainingError
from privfair.train.accounting import PRV_EPS_ERROR, pld_noise_multiplier
from privfair.train.privacy import resolve_delta

# Should PRV still exceed the budget at the σ found for a PLD target of ε − PRV_EPS_ERROR, that target is lowered by
# the excess plus this, so that the next σ lands at or just below the budget: the PRV − PLD difference moves far less
# than this between σ that close.
PRV_SLACK = 0.002
PRV_ROUNDS = 4


def sampling(n_train: int, logical_batch_size: int, epochs: int) -> tuple[float, int]:
    """The sampling rate and step count of Opacus' Poisson sampler for this data and schedule.

    Opacus' ``make_private`` sets q = 1 / len(data loader), with one expected logical batch per loader step, and its
    sampler draws ``int(1 / q)`` batches an epoch: k − 1 for some k batches (93, 99, ...), by rounding, and k for
    the rest. The step count is the sampler's, so that the calibrated schedule is the one trained; ``epochs / q``
    would be one step short for some k (75 batches, 3 epochs: 224 instead of 225) and the run would overspend.
    """
    batches_per_epoch = math.ceil(n_train / logical_batch_size)
    sample_rate = 1 / batches_per_epoch
    return sample_rate, epochs * int(1 / sample_rate)


def _epsilon(accountant: str, sigma: float, sample_rate: float, steps: int, delta: float) -> float:
    counter = create_accountant(mechanism=accountant)
    counter.history = [(sigma, sample_rate, steps)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # RDP's "optimal order is the largest alpha" says nothing actionable here
        return counter.get_epsilon(delta=delta)


def _noise_multiplier(accountant: str, epsilon: float, sample_rate: float, steps: int, delta: float) -> float:
    """σ whose ε by ``accountant`` is at most ``epsilon`` and within about 0.01 of it; ValueError if none is."""
    if accountant == "rdp":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # as in _epsilon
            return get_noise_multiplier(
                target_epsilon=epsilon, target_delta=delta, sample_rate=sample_rate, steps=steps, accountant="rdp"
            )
    # PRV reports the upper end of its error band, so it sits up to PRV_EPS_ERROR above the PLD: aim that much lower.
    goal, sigma = epsilon - PRV_EPS_ERROR, 1.0
    for _ in range(PRV_ROUNDS):
        if goal <= 0:
            break
        sigma = pld_noise_multiplier(goal, sample_rate, steps, delta, guess=sigma)
        excess = _epsilon(accountant, sigma, sample_rate, steps, delta) - epsilon
        if excess <= 0:
            return sigma
        goal -= excess + PRV_SLACK
    raise ValueError(f"the {accountant} accountant stays above ε = {epsilon:g}")


def calibrate_noise(n_train: int, epsilon: float, training: dict, key: str) -> dict:
    """The noise multiplier that spends ``epsilon`` over the configured epochs: at most it, and within about 0.01.

    The ε is that of the configured Opacus accountant, which the run reports; see the module's docstring for how σ
    is found.

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
    try:
        sigma = _noise_multiplier(accountant, epsilon, sample_rate, steps, delta)
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


def noise_plan(path, n_train: int, epsilon: float, training: dict) -> dict:
    """The calibration a private run trains with: the file of rule ``calibrate_noise``, or, without one, made now.

    Both come from :func:`calibrate_noise`, so a run trains with the same σ either way.

    Args:
        path: ``noise.json`` of this (dataset, ε); None calibrates in this process (unit tests, interactive use).
        n_train: the training images the run has.
        epsilon: the run's budget.
        training: the dataset's ``training`` config.

    Returns:
        The calibration, as :func:`calibrate_noise` returns it.

    Raises:
        ConfigError: without ``path``, as :func:`calibrate_noise`.
        TrainingError: the file was calibrated for another training set, budget, δ, schedule or accountant (the
            message names the file and what differs).
    """
    if path is None:
        return calibrate_noise(n_train, epsilon, training, key="this run")
    plan = json.loads(Path(path).read_text())
    sample_rate, steps = sampling(n_train, training["logical_batch_size"], training["epochs"])
    expected = {
        "n_train": n_train,
        "delta": resolve_delta(training["privacy"].get("delta"), n_train),
        "epsilon": epsilon,
        "sample_rate": sample_rate,
        "steps": steps,
        "accountant": training["privacy"]["accountant"],
    }
    differs = [f"{name} {plan.get(name)!r} ≠ {value!r}" for name, value in expected.items() if plan.get(name) != value]
    if differs:
        raise TrainingError(
            f"{path} does not match this run ({'; '.join(differs)}, file ≠ run): it was calibrated for other data or "
            "settings; delete it so that rule calibrate_noise makes it again"
        )
    return plan
