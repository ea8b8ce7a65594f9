"""Noise calibration before training: σ that spends the budget, and config errors for what cannot be trained."""

from __future__ import annotations

import re

import pytest
import torch
from opacus.accountants import create_accountant
from opacus.data_loader import DPDataLoader

from privfair.core.errors import ConfigError
from privfair.train import calibration
from privfair.train.accounting import pld_epsilon, pld_noise_multiplier
from privfair.train.calibration import calibrate_noise, sampling

TRAINING = {"logical_batch_size": 32, "epochs": 6, "privacy": {"accountant": "rdp", "delta": None}}


def spent(plan: dict) -> float:
    accountant = create_accountant(mechanism=plan["accountant"])
    accountant.history = [(plan["noise_multiplier"], plan["sample_rate"], plan["steps"])]
    return accountant.get_epsilon(delta=plan["delta"])


# 4800/64: 75 batches, where epochs / q rounds one step short; 93 batches, where the sampler draws only 92.
@pytest.mark.parametrize(
    "n_train, batch, epochs", [(100, 32, 6), (1221, 32, 6), (1280, 32, 6), (4800, 64, 3), (2976, 32, 2)]
)
def test_the_sampling_rate_and_steps_are_those_opacus_poisson_sampler_takes(n_train, batch, epochs):
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.arange(n_train)), batch_size=batch)
    private = DPDataLoader.from_data_loader(loader)
    sample_rate, steps = sampling(n_train, batch, epochs)
    assert sample_rate == private.sample_rate == 1 / len(loader)
    assert steps == epochs * sum(1 for _ in private.batch_sampler)


@pytest.mark.parametrize("epsilon", [1.0, 8.0])
def test_the_noise_spends_at_most_the_budget_and_nearly_all_of_it(epsilon):
    plan = calibrate_noise(1221, epsilon, TRAINING, "datasets.cxr")
    assert plan["delta"] == pytest.approx(0.1 / 1221)
    assert epsilon - 0.01 <= spent(plan) <= epsilon


@pytest.mark.parametrize("epsilon", [1.0, 8.0])
def test_with_prv_sigma_from_the_pld_spends_at_most_the_budget_by_prv(epsilon):
    plan = calibrate_noise(1221, epsilon, {**TRAINING, "privacy": {"accountant": "prv", "delta": None}}, "datasets.cxr")
    assert epsilon - 0.02 <= spent(plan) <= epsilon
    assert pld_epsilon(plan["noise_multiplier"], plan["sample_rate"], plan["steps"], plan["delta"]) <= epsilon


def test_where_prv_is_above_the_budget_at_the_pld_sigma_the_noise_is_raised(monkeypatch):
    # Aiming the PLD at the budget itself: PRV, about 0.01 above the PLD, overshoots, and a second round corrects it.
    monkeypatch.setattr(calibration, "PRV_EPS_ERROR", 0.0)
    found = []

    def spy(*args, **kwargs):
        found.append(pld_noise_multiplier(*args, **kwargs))
        return found[-1]

    monkeypatch.setattr(calibration, "pld_noise_multiplier", spy)
    plan = calibrate_noise(1221, 2.0, {**TRAINING, "privacy": {"accountant": "prv", "delta": None}}, "datasets.cxr")
    assert len(found) == 2 and found[0] < found[1] == plan["noise_multiplier"]
    assert 2.0 - 0.02 <= spent(plan) <= 2.0


def test_an_unreachable_budget_names_the_smallest_one_that_works():
    with pytest.raises(ConfigError, match=r"study\.epsilons: ε = 0\.01 cannot be reached for datasets\.cxr") as error:
        calibrate_noise(1221, 0.01, TRAINING, "datasets.cxr")
    smallest = float(
        re.search(r"the smallest ε that works with these settings is about ([0-9.e-]+)", str(error.value))[1]
    )
    assert 0.01 < smallest < 1.0
    assert spent(calibrate_noise(1221, smallest, TRAINING, "datasets.cxr")) <= smallest


def test_a_delta_not_below_one_over_n_is_named():
    training = {**TRAINING, "privacy": {"accountant": "rdp", "delta": 1e-3}}
    with pytest.raises(ConfigError, match=r"training\.privacy\.delta = 0\.001 must be in \(0, 1/N_train\)"):
        calibrate_noise(1221, 1.0, training, "datasets.cxr")
