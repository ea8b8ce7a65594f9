"""Secure noise mode: noise and sampling from unrecorded OS entropy, still resumable, and nothing of it left behind."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from opacus.optimizers import optimizer as dp_optimizer

from privfair.core.errors import ConfigError
from privfair.train import loop as training
from privfair.train.job import train_and_write
from privfair.train.privacy import NOT_FOR_RELEASE


def quiet(_):
    pass


@pytest.fixture
def training_settings(training_settings):
    training_settings["privacy"].update(accountant="rdp", noise="secure")  # RDP calibrates σ in milliseconds
    training_settings["epochs"] = 2
    return training_settings


@pytest.fixture
def noise_draws(monkeypatch):
    """Every call of Opacus' noise function, as ``(secure_mode, generator)``."""
    calls = []
    generate = dp_optimizer._generate_noise

    def spy(std, reference, generator=None, secure_mode=False):
        calls.append((secure_mode, generator))
        return generate(std, reference, generator=generator, secure_mode=secure_mode)

    monkeypatch.setattr(dp_optimizer, "_generate_noise", spy)
    return calls


def test_secure_noise_uses_its_own_generator_and_the_floating_point_mitigation(
    tiny_cache, training_settings, noise_draws
):
    training_settings["epochs"] = 1
    runs = [training.train_model(*tiny_cache, training_settings, 4.0, seed=1, log=quiet) for _ in range(2)]
    assert noise_draws and all(secure and isinstance(g, torch.Generator) for secure, g in noise_draws)
    # Same seed, other noise and batches: nothing recorded reproduces them.
    assert not torch.equal(runs[0].state_dict["classifier.weight"], runs[1].state_dict["classifier.weight"])
    assert runs[0].privacy.noise_mode == "secure" and runs[0].privacy.release != NOT_FOR_RELEASE
    assert runs[0].privacy.steps == runs[1].privacy.steps == 2


def test_seeded_noise_comes_from_the_seed(tiny_cache, training_settings, noise_draws):
    training_settings["privacy"]["noise"] = "seeded"
    training_settings["epochs"] = 1
    result = training.train_model(*tiny_cache, training_settings, 4.0, seed=1, log=quiet)
    assert noise_draws and all(not secure and g is None for secure, g in noise_draws)
    assert result.privacy.release == NOT_FOR_RELEASE


def test_an_unknown_noise_mode_is_named(tiny_cache, training_settings):
    training_settings["privacy"]["noise"] = "urandom"
    with pytest.raises(ConfigError, match=r"training\.privacy\.noise: 'urandom'"):
        training.train_model(*tiny_cache, training_settings, 4.0, seed=1, log=quiet)


def test_secure_run_resumes_exactly_and_its_state_is_gone_once_the_outputs_are_written(
    tiny_cache, training_settings, tmp_path
):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    resume = run_dir / "resume.pt"
    # train_model leaves the snapshot after epoch 1 of 2 behind (the job would delete it): the state to resume from.
    first = training.train_model(*tiny_cache, training_settings, 4.0, seed=1, log=quiet, resume_path=resume)
    fingerprint = json.loads(resume.with_suffix(".json").read_text())
    assert set(fingerprint) == {"identity"}
    assert set(fingerprint["identity"]) == {"settings", "epsilon", "seed", "data", "init"}

    outputs = {name: run_dir / file for name, file in [("model", "model.pt"), ("history", "history.csv")]}
    outputs["privacy"] = run_dir / "privacy.json"
    lines = []
    resumed = train_and_write(
        *tiny_cache,
        training_settings,
        4.0,
        seed=1,
        outputs=outputs,
        run={"dataset": "tiny", "seed": 1},
        provenance={"version": "test"},
        log=lines.append,
    )
    assert any(f"resumed from {resume} after epoch 1" in line for line in lines)
    # Epoch 2 replayed with the restored sampling and noise generators: the same model as the first run.
    for name, tensor in first.state_dict.items():
        assert torch.equal(resumed.state_dict[name], tensor), name
    assert resumed.privacy == first.privacy

    assert sorted(p.name for p in run_dir.iterdir()) == ["history.csv", "model.pt", "privacy.json"]
    record = json.loads(outputs["privacy"].read_text())
    assert record["noise_mode"] == "secure" and record["steps"] == 4
    assert {"patient_epsilon", "patient_delta", "patient_guarantee", "release"} <= record.keys()
    assert not any(word in key for key in record for word in ("rng", "generator", "state"))
    checkpoint = torch.load(outputs["model"], weights_only=True)
    assert set(checkpoint) == {"state_dict", "model", "best_epoch", "provenance"}
    history = pd.read_csv(outputs["history"])
    assert list(history.columns) == ["epoch", "val_loss", "val_auroc", "epsilon_rdp", "seconds"]
