"""ε checked by a second accountant (dp-accounting's PLD), and private runs that train with the calibrated σ."""

from __future__ import annotations

import json
import re

import pytest
from opacus.accountants import create_accountant

from privfair.core.errors import TrainingError
from privfair.train import loop as training
from privfair.train.accounting import EPSILON_TOLERANCE, check_epsilon, pld_epsilon, pld_noise_multiplier, rdp_epsilon
from privfair.train.calibration import calibrate_noise, sampling
from privfair.train.job import train_and_write


def opacus_epsilon(accountant: str, sigma: float, sample_rate: float, steps: int, delta: float) -> float:
    counter = create_accountant(mechanism=accountant)
    counter.history = [(sigma, sample_rate, steps)]
    return counter.get_epsilon(delta=delta)


@pytest.mark.parametrize(
    "sigma, sample_rate, steps, delta",
    [(1.5, 0.5, 4, 1e-3), (1.1, 0.01, 1_000, 1e-5), (0.7, 1 / 256, 25_600, 1e-6), (3.0, 0.02, 500, 1e-5)],
)
def test_pld_and_opacus_prv_agree_within_the_tolerance_and_rdp_stays_above(sigma, sample_rate, steps, delta):
    pld = pld_epsilon(sigma, sample_rate, steps, delta)
    prv = opacus_epsilon("prv", sigma, sample_rate, steps, delta)
    assert abs(prv - pld) <= EPSILON_TOLERANCE
    assert rdp_epsilon([(sigma, sample_rate, steps)], delta) >= pld - EPSILON_TOLERANCE


def test_a_finer_grid_moves_the_pessimistic_pld_epsilon_down_by_far_less_than_the_tolerance():
    coarse, fine = (pld_epsilon(1.1, 0.01, 1_000, 1e-5, discretisation=d) for d in (1e-4, 1e-5))
    assert 0 <= coarse - fine < EPSILON_TOLERANCE / 4


def test_an_opacus_epsilon_below_the_pld_one_beyond_the_tolerance_fails_naming_both():
    check_epsilon(1.0, 1.0 + EPSILON_TOLERANCE, "prv")  # at the tolerance: passes
    check_epsilon(9.0, 8.0, "rdp")  # above the PLD: always passes
    with pytest.raises(TrainingError, match=r"prv accountant reports ε = 1\.0000, below .* PLD ε = 1\.0500"):
        check_epsilon(1.0, 1.05, "prv")


def test_the_pld_calibration_spends_the_target_and_no_more():
    sigma = pld_noise_multiplier(2.0, 0.01, 1_000, 1e-5)
    assert 2.0 - 1e-3 < pld_epsilon(sigma, 0.01, 1_000, 1e-5) <= 2.0


def calibrate(tmp_path, n_train: int, epsilon: float, training_settings: dict):
    """Rule calibrate_noise's file for this budget, as the workflow writes it."""
    plan = calibrate_noise(n_train, epsilon, training_settings, "datasets.tiny")
    path = tmp_path / "noise.json"
    path.write_text(json.dumps(plan, indent=2))
    return plan, path


def test_a_private_run_trains_with_the_calibrated_noise_and_records_both_epsilons(
    tiny_cache, training_settings, tmp_path
):
    training_settings["epochs"] = 1
    plan, noise = calibrate(tmp_path, 64, 2.0, training_settings)
    outputs = {name: tmp_path / "run" / name for name in ("model.pt", "history.csv", "privacy.json")}
    outputs["model.pt"].parent.mkdir()
    lines = []
    result = train_and_write(
        *tiny_cache,
        training_settings,
        epsilon=2.0,
        seed=0,
        outputs=dict(zip(("model", "history", "privacy"), outputs.values())),
        run={"dataset": "tiny", "seed": 0},
        provenance={},
        log=lines.append,
        calibration_path=noise,
    )
    record = json.loads(outputs["privacy.json"].read_text())
    assert record["noise_multiplier"] == plan["noise_multiplier"]  # exactly the file's σ: not calibrated again
    assert (record["sample_rate"], record["steps"]) == sampling(64, 32, 1) == (0.5, 2)
    assert record["accountant"] == "prv" and record["delta"] == plan["delta"]
    # Opacus' ε of the steps taken, and the PLD ε of the same steps; both within the budget.
    steps = (plan["noise_multiplier"], 0.5, 2, plan["delta"])
    assert record["epsilon_spent"] == pytest.approx(opacus_epsilon("prv", *steps))
    assert record["epsilon_pld"] == pytest.approx(pld_epsilon(*steps))
    assert record["epsilon_pld"] - EPSILON_TOLERANCE <= record["epsilon_spent"] <= 2.0
    assert any(f"dp-accounting PLD ε {record['epsilon_pld']:.4f}" in line for line in lines)
    # Per epoch: Opacus' RDP bound on the steps so far, which grows and ends at or above the reported ε.
    bounds = list(result.history["epsilon_rdp"])
    assert bounds == sorted(bounds) and bounds[-1] >= record["epsilon_spent"]


def test_without_a_calibration_file_the_run_calibrates_by_the_same_function(tiny_cache, training_settings):
    training_settings["epochs"] = 1
    result = training.train_model(*tiny_cache, training_settings, epsilon=2.0, seed=0, log=lambda _: None)
    assert result.privacy.noise_multiplier == calibrate_noise(64, 2.0, training_settings, "x")["noise_multiplier"]


@pytest.mark.parametrize("field, value", [("n_train", 65), ("delta", 1e-4), ("epsilon", 8.0)])
def test_a_calibration_of_another_training_set_or_budget_is_refused_naming_the_file(
    tiny_cache, training_settings, tmp_path, field, value
):
    training_settings["epochs"] = 1
    plan, noise = calibrate(tmp_path, 64, 2.0, training_settings)
    noise.write_text(json.dumps({**plan, field: value}))
    with pytest.raises(TrainingError, match=rf"{re.escape(str(noise))} does not match this run \({field} "):
        training.train_model(*tiny_cache, training_settings, 2.0, seed=0, log=lambda _: None, calibration_path=noise)


def test_a_run_whose_opacus_epsilon_falls_below_the_pld_one_fails(tiny_cache, training_settings, monkeypatch):
    # Stand-in for an Opacus accountant that under-states ε: the PLD comes out 0.1 above it.
    training_settings["epochs"] = 1
    monkeypatch.setattr(training, "pld_epsilon", lambda *args: opacus_epsilon("prv", *args) + 0.1)
    with pytest.raises(TrainingError, match=r"Opacus' prv accountant reports ε = \d\.\d{4}, below .* PLD ε"):
        training.train_model(*tiny_cache, training_settings, epsilon=2.0, seed=0, log=lambda _: None)


def test_a_run_that_takes_other_steps_than_calibrated_fails(tiny_cache, training_settings, monkeypatch):
    # Stand-in for a schedule that drifted from its calibration (as epochs / q once did for 75 batches an epoch).
    training_settings["epochs"] = 1
    noise_plan = training.noise_plan
    monkeypatch.setattr(training, "noise_plan", lambda *args: {**noise_plan(*args), "steps": 1})
    with pytest.raises(TrainingError, match=r"the run took 2 steps .* but was calibrated for 1 steps"):
        training.train_model(*tiny_cache, training_settings, epsilon=2.0, seed=0, log=lambda _: None)


def test_per_epoch_epsilon_is_rdp_on_the_accountants_history():
    history = [(1.0, 0.01, 100), (1.0, 0.01, 100)]
    assert rdp_epsilon(history, 1e-5) == pytest.approx(opacus_epsilon("rdp", 1.0, 0.01, 200, 1e-5))
