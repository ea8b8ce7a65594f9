"""A second opinion on ε: Google's dp-accounting (PLD) checks Opacus' accountant, and is the fast one to calibrate with.

Opacus' configured accountant (PRV or RDP) gives the ε a run reports. dp-accounting computes the same guarantee by
another method: the privacy loss distribution (PLD) of the Poisson-subsampled Gaussian, ``PoissonSampledDpEvent(q,
GaussianDpEvent(σ))`` self-composed once per optimiser step under add-or-remove-one neighbouring (the relation of
Opacus' accountants), discretised pessimistically, so its ε is an upper bound on the true ε. Opacus' ε may exceed it
(RDP does, by design); it may fall below it only by the numerical error of the two methods, :data:`EPSILON_TOLERANCE`.

Only Opacus and dp-accounting compute ε here; this module only asks them.
"""

from __future__ import annotations

import functools
import warnings

import dp_accounting
from dp_accounting.pld.pld_privacy_accountant import PLDAccountant
from opacus.accountants import RDPAccountant
from opacus.accountants.utils import MAX_SIGMA
from scipy import optimize

from privfair.core.errors import TrainingError

# dp-accounting's default grid for privacy losses. At the reference scale (q = 1/1174, 176,100 steps) its ε exceeds
# that of a 10× finer grid by at most 0.003, and one ε costs 0.07–1.8 s; a 10× coarser grid over-states ε so much at
# ε = 1 that the σ calibrated on it is 26 % too large, budget wasted on noise (benchmarks/accounting.py).
PLD_DISCRETISATION = 1e-4
# Opacus' PRV accountant computes ε to within eps_error (its default, which privfair keeps) and reports the upper end:
# its ε comes out 0.008–0.01 above the PLD ε at the reference scale.
PRV_EPS_ERROR = 0.01
# How far Opacus' ε may fall below the PLD ε before a run fails: PRV's error band, plus 0.01 for the PLD's pessimistic
# discretisation (at most 0.003 measured: over 3× margin). RDP's ε is never below the true ε, so it always passes.
EPSILON_TOLERANCE = PRV_EPS_ERROR + 0.01

# The PLD calibration's bracket grows by this factor from its first guess: small enough that the search never visits
# a σ far below the answer, where the privacy loss distribution is wide and slow to compose.
BRACKET_STEP = 1.25


def pld_epsilon(
    noise_multiplier: float, sample_rate: float, steps: int, delta: float, discretisation: float = PLD_DISCRETISATION
) -> float:
    """ε of ``steps`` Poisson-subsampled Gaussian steps by dp-accounting's PLD accountant (add-or-remove-one).

    Args:
        noise_multiplier: σ, the noise standard deviation over the clipping norm.
        sample_rate: q, the Poisson sampling rate of a logical batch.
        steps: optimiser steps taken.
        delta: δ.
        discretisation: the PLD's ``value_discretization_interval``; coarser is faster and over-states ε more.

    Returns:
        The ε at ``delta``, an upper bound (pessimistic discretisation); ``math.inf`` for σ = 0.
    """
    return _pld_accountant(discretisation).compose(_steps(noise_multiplier, sample_rate, steps)).get_epsilon(delta)


def _pld_accountant(discretisation: float) -> PLDAccountant:
    return PLDAccountant(dp_accounting.NeighboringRelation.ADD_OR_REMOVE_ONE, discretisation)


def _steps(noise_multiplier: float, sample_rate: float, steps: int) -> dp_accounting.DpEvent:
    step = dp_accounting.PoissonSampledDpEvent(sample_rate, dp_accounting.GaussianDpEvent(noise_multiplier))
    return dp_accounting.SelfComposedDpEvent(step, steps)


def pld_noise_multiplier(
    target_epsilon: float,
    sample_rate: float,
    steps: int,
    delta: float,
    guess: float = 1.0,
    discretisation: float = PLD_DISCRETISATION,
) -> float:
    """The smallest σ whose PLD ε is at most ``target_epsilon``, to a relative 1e-5 above it (Brent's method).

    The bracket grows by :data:`BRACKET_STEP` from ``guess``. Each ε costs up to seconds (one PLD), so none is
    computed twice: the bracket's ends are Brent's first two, and the root is moved up by Brent's tolerance instead of
    being checked, as ε falls as σ grows.

    Args:
        target_epsilon: the ε to spend, positive.
        sample_rate: q.
        steps: optimiser steps.
        delta: δ.
        guess: a σ to start the bracket from.
        discretisation: as for :func:`pld_epsilon`.

    Returns:
        σ with PLD ε ≤ ``target_epsilon``.

    Raises:
        ValueError: not even σ = Opacus' ``MAX_SIGMA`` reaches ``target_epsilon``.
    """

    @functools.cache
    def gap(sigma: float) -> float:
        return pld_epsilon(sigma, sample_rate, steps, delta, discretisation) - target_epsilon

    low = high = guess
    if gap(guess) > 0:
        while gap(high) > 0:
            low, high = high, high * BRACKET_STEP
            if high > MAX_SIGMA:
                raise ValueError(f"no σ up to {MAX_SIGMA:g} reaches ε = {target_epsilon:g}")
    else:
        while gap(low) <= 0:
            low, high = low / BRACKET_STEP, low
    if gap(high) == 0:
        return high
    tolerance = 1e-5 * high
    return min(optimize.brentq(gap, low, high, xtol=tolerance) + tolerance, high)


def rdp_epsilon(history: list, delta: float) -> float:
    """Opacus' RDP ε of an accountant history: a valid upper bound that costs milliseconds, for per-epoch reporting.

    Args:
        history: ``(noise_multiplier, sample_rate, steps)`` entries, as in ``accountant.history``.
        delta: δ.

    Returns:
        The RDP ε at ``delta``.
    """
    accountant = RDPAccountant()
    accountant.history = list(history)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "optimal order is the largest alpha": the bound holds all the same
        return accountant.get_epsilon(delta=delta)


def check_epsilon(opacus_epsilon: float, independent_epsilon: float, accountant: str) -> None:
    """Fail when Opacus' ε is below the PLD ε by more than :data:`EPSILON_TOLERANCE`: Opacus would under-state ε.

    Args:
        opacus_epsilon: ε by Opacus' configured accountant.
        independent_epsilon: ε of the same steps by :func:`pld_epsilon`.
        accountant: the Opacus accountant's name, for the message.

    Raises:
        TrainingError: naming both values and the tolerance.
    """
    if opacus_epsilon < independent_epsilon - EPSILON_TOLERANCE:
        raise TrainingError(
            f"Opacus' {accountant} accountant reports ε = {opacus_epsilon:.4f}, below dp-accounting's PLD ε = "
            f"{independent_epsilon:.4f} by more than the tolerance {EPSILON_TOLERANCE}: the reported ε may "
            "under-state the privacy spent"
        )
