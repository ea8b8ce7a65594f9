"""State files are data, not code: a planted pickle as resume.pt or model.pt is refused before it can run."""

from __future__ import annotations

import json
import math
import pickle

import pytest
import torch

from privfair.core.errors import CheckpointError, ResumeError
from privfair.train import loop as training
from privfair.train.predict import load_model
from privfair.train.resume import ResumeFile


class Planted:
    """Unpickling it calls ``open(marker, "w")``: any code that runs leaves the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def plant(path, marker, fmt: str) -> None:
    """Write a malicious state file in torch's zip format or as a bare pickle (torch's legacy format)."""
    payload = {"state_dict": Planted(marker), "epoch": 1}
    if fmt == "zip":
        torch.save(payload, path)
    else:
        with open(path, "wb") as f:
            pickle.dump(payload, f)


def test_the_planted_file_does_run_code_when_unpickled(tmp_path):
    # The payload of the tests below is live: an unsafe load would run it.
    marker = tmp_path / "ran"
    plant(tmp_path / "x.pt", marker, "zip")
    torch.load(tmp_path / "x.pt", weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize("fmt", ["zip", "pickle"])
def test_a_planted_model_checkpoint_is_refused_and_named(tmp_path, fmt):
    marker, checkpoint = tmp_path / "ran", tmp_path / "model.pt"
    plant(checkpoint, marker, fmt)
    with pytest.raises(CheckpointError, match=rf"{checkpoint}.*refused"):
        load_model(checkpoint, torch.device("cpu"))
    assert not marker.exists()


@pytest.fixture
def saved_state(tiny_cache, training_settings, tmp_path):
    """A real run's resume.pt and resume.json (train_model leaves the snapshot of epoch 1 of 2 behind)."""
    resume = tmp_path / "resume.pt"
    training_settings["epochs"] = 2
    training.train_model(*tiny_cache, training_settings, math.inf, seed=0, log=lambda _: None, resume_path=resume)
    assert resume.exists() and resume.with_suffix(".json").exists()
    return resume


@pytest.mark.parametrize("fmt", ["zip", "pickle"])
def test_a_planted_resume_file_with_a_matching_fingerprint_is_refused_and_named(
    tiny_cache, training_settings, saved_state, tmp_path, fmt
):
    marker = tmp_path / "ran"
    plant(saved_state, marker, fmt)
    training_settings["epochs"] = 2
    with pytest.raises(ResumeError, match=rf"{saved_state}.*refused"):
        training.train_model(
            *tiny_cache, training_settings, math.inf, seed=0, log=lambda _: None, resume_path=saved_state
        )
    assert not marker.exists()


def test_the_fingerprint_is_checked_before_the_state_is_opened(tiny_cache, training_settings, saved_state, tmp_path):
    marker = tmp_path / "ran"
    plant(saved_state, marker, "zip")
    training_settings["epochs"] = 2
    # Another run's fingerprint: refused without unpickling anything.
    with pytest.raises(ResumeError, match=r"resume\.pt was written by a run with other seed"):
        training.train_model(
            *tiny_cache, training_settings, math.inf, seed=1, log=lambda _: None, resume_path=saved_state
        )
    # No fingerprint at all: refused too.
    saved_state.with_suffix(".json").unlink()
    with pytest.raises(ResumeError, match=r"resume\.pt has no fingerprint \(resume\.json\)"):
        training.train_model(
            *tiny_cache, training_settings, math.inf, seed=0, log=lambda _: None, resume_path=saved_state
        )
    assert not marker.exists()


def test_the_fingerprint_holds_the_identity_only_and_stale_partial_writes_are_removed(tmp_path):
    resume = ResumeFile(tmp_path / "resume.pt", {"epsilon": math.inf, "seed": 3, "settings": {"epochs": (1, 2)}})
    resume.save({"epoch": 1, "model": {"w": torch.ones(2)}})
    assert json.loads((tmp_path / "resume.json").read_text()) == {
        "identity": {"epsilon": math.inf, "seed": 3, "settings": {"epochs": [1, 2]}}
    }
    stale = [tmp_path / ".partial-resume.pt", tmp_path / ".partial-resume.json"]
    for path in stale:
        path.write_text("left by a killed write")
    again = ResumeFile(tmp_path / "resume.pt", {"epsilon": math.inf, "seed": 3, "settings": {"epochs": (1, 2)}})
    assert torch.equal(again.load()["model"]["w"], torch.ones(2))
    assert not any(path.exists() for path in stale)
