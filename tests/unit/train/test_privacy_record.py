"""What privacy.json states: the noise mode, the patient-level (ε, δ), and q and steps as the sampler drew them."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import yaml
from opacus.data_loader import DPDataLoader
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from privfair.core.errors import ConfigError, TrainingError
from privfair.train import loop as training
from privfair.train.privacy import NOT_FOR_RELEASE, PrivacyRecord, check_accounting, make_engine, patient_level

REPO = Path(__file__).resolve().parents[3]


def record(**changes) -> PrivacyRecord:
    fields = {
        "private": True,
        "noise_mode": "seeded",
        "epsilon": 2.0,
        "epsilon_spent": 1.9,
        "epsilon_pld": 1.89,
        "delta": 1e-5,
        "noise_multiplier": 1.1,
        "sample_rate": 0.01,
        "steps": 300,
        "epochs": 3,
        "accountant": "prv",
        "max_grad_norm": 1.0,
        "n_train": 10_000,
        "n_train_patients": 4_000,
        "max_images_per_patient": 1,
    }
    return PrivacyRecord(**{**fields, **changes})


def test_patient_level_guarantee_is_group_privacy_with_its_delta():
    assert patient_level(1.5, 1e-5, 1) == (1.5, 1e-5)
    epsilon, delta = patient_level(2.0, 1e-6, 3)
    assert epsilon == 6.0
    assert delta == pytest.approx(3 * math.exp(4.0) * 1e-6)
    assert patient_level(50.0, 1e-6, 100) == (5000.0, math.inf)  # e^4950 overflows a float
    assert patient_level(math.inf, None, 4) == (math.inf, None)


def test_the_record_states_the_patient_level_guarantee_or_its_absence():
    one_image = record(max_images_per_patient=1)
    assert (one_image.patient_epsilon, one_image.patient_delta) == (1.9, 1e-5)
    assert one_image.patient_guarantee.startswith("(1.9, 1e-05)")
    many = record(epsilon_spent=8.0, max_images_per_patient=5)
    assert many.patient_epsilon == 40.0 and many.patient_delta >= 1
    assert many.patient_guarantee.startswith("none: patient_delta")
    assert many.to_dict()["patient_delta"] == pytest.approx(5 * math.exp(32.0) * 1e-5)
    assert record(epsilon_spent=2.0, max_images_per_patient=3).patient_guarantee.startswith("weak")
    non_private = record(
        private=False, noise_mode=None, epsilon=math.inf, epsilon_spent=math.inf, epsilon_pld=None, delta=None
    )
    assert non_private.to_dict()["patient_epsilon"] == "inf" and non_private.patient_delta is None
    assert non_private.to_dict()["epsilon_pld"] is None
    assert non_private.release.startswith("non-private")


def test_seeded_runs_are_labelled_not_for_release():
    assert record(noise_mode="seeded").release == NOT_FOR_RELEASE == "reproducible research run — not for release"
    assert "not for release" not in record(noise_mode="secure").release


def test_gdp_is_refused_by_the_schema_and_the_code():
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["datasets"]["synth_cxr"]["training"]["privacy"]["accountant"] = "gdp"
    with pytest.raises(WorkflowError, match="gdp"):
        validate(config, str(REPO / "config" / "schema.yaml"))
    with pytest.raises(ConfigError, match=r"training\.privacy\.accountant: 'gdp' is refused"):
        make_engine("gdp")


def test_an_accountant_that_counted_other_steps_or_another_q_fails_the_run():
    check_accounting([(1.1, 0.25, 8)], 1.1, 0.25, 8)
    with pytest.raises(TrainingError, match=r"\[\(1\.1, 0\.25, 8\)\].*9 logical batches at q = 0\.25"):
        check_accounting([(1.1, 0.25, 8)], 1.1, 0.25, 9)
    with pytest.raises(TrainingError, match=r"q = 0\.2 "):
        check_accounting([(1.1, 0.25, 8)], 1.1, 0.2, 8)


def test_dp_record_matches_what_the_sampler_drew_with_empty_batches(make_cache, training_settings, monkeypatch):
    # 93 images in logical batches of 1: Opacus' sampler draws int(1 / (1/93)) = 92 batches an epoch at q = 1/93,
    # while its accountant hook would count q = 1/92; at q = 1/93 about a third of the Poisson batches are empty.
    cache = make_cache(n_per_split=(93, 16, 16))
    training_settings.update(epochs=1, logical_batch_size=1, physical_batch_size=8)
    training_settings["privacy"]["accountant"] = "rdp"
    samplers, optimisers, batch_sizes = [], [], []

    from_data_loader = DPDataLoader.from_data_loader.__func__

    def spy_loader(cls, *args, **kwargs):
        samplers.append(from_data_loader(cls, *args, **kwargs))
        return samplers[-1]

    make_optimizer = training.make_optimizer

    def spy_optimizer(parameters, spec):
        optimiser = make_optimizer(parameters, spec)
        optimisers.append(0)
        optimiser.register_step_post_hook(lambda *_: optimisers.append(optimisers.pop() + 1))
        return optimiser

    model_from_spec = training.model_from_spec

    def spy_model(spec):
        model = model_from_spec(spec)
        model.register_forward_pre_hook(lambda m, x: batch_sizes.append(len(x[0])) if m.training else None)
        return model

    monkeypatch.setattr(DPDataLoader, "from_data_loader", classmethod(spy_loader))
    monkeypatch.setattr(training, "make_optimizer", spy_optimizer)
    monkeypatch.setattr(training, "model_from_spec", spy_model)
    lines = []
    result = training.train_model(*cache, training_settings, epsilon=8.0, seed=0, log=lines.append)

    (loader,) = samplers
    taken = optimisers[0]
    assert 0 in batch_sizes  # empty Poisson batches were drawn, and trained on (noise only)
    privacy = result.privacy
    assert privacy.sample_rate == loader.sample_rate == 1 / 93
    assert privacy.steps == taken == len(loader.batch_sampler) == 92
    assert privacy.noise_mode == "seeded" and privacy.release == NOT_FOR_RELEASE
    assert privacy.patient_epsilon == privacy.epsilon_spent and privacy.patient_delta == privacy.delta  # k = 1
    assert list(result.history.columns) == ["epoch", "val_loss", "val_auroc", "epsilon_rdp", "seconds"]
    assert result.history.notna().all().all()
    assert all(torch.isfinite(t).all() for t in result.state_dict.values())
    assert not any("train loss" in line for line in lines) and any("val loss" in line for line in lines)


def test_non_private_history_keeps_the_training_loss(tiny_cache, training_settings):
    training_settings["epochs"] = 1
    result = training.train_model(*tiny_cache, training_settings, epsilon=math.inf, seed=0, log=lambda _: None)
    assert list(result.history.columns) == ["epoch", "train_loss", "val_loss", "val_auroc", "epsilon_rdp", "seconds"]
    assert result.privacy.noise_mode is None and result.privacy.steps == 2  # 64 images in logical batches of 32
