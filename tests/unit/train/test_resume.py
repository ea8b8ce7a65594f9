"""Kill and resume: a run stopped by SLURM's warning signal continues to the same model and privacy record."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
import time

import pytest
import torch

from privfair.core.errors import ResumeError, TrainingInterrupted
from privfair.train import loop as training


def quiet(_):
    pass


@pytest.fixture
def tiny_cache(make_cache):
    return make_cache(n_per_split=(32, 16, 16))


@pytest.fixture
def training_settings(training_settings):
    # RDP calibrates σ in milliseconds, PRV in seconds; resuming restores any Opacus accountant's history alike.
    training_settings["privacy"]["accountant"] = "rdp"
    training_settings.update(logical_batch_size=16, physical_batch_size=16)
    return training_settings


def signal_when_saved(path, signum=signal.SIGUSR1):
    """Once ``path`` exists (during the epoch after a checkpoint), send ``signum`` to this process and its children,
    as SLURM does to every process of a job step."""

    def watch():
        deadline = time.monotonic() + 60
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.005)
        for pid in [worker.pid for worker in multiprocessing.active_children()]:  # data loader workers
            with contextlib.suppress(ProcessLookupError):  # a worker of the last epoch may have exited meanwhile
                os.kill(pid, signum)
        os.kill(os.getpid(), signum)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    return watcher


# With data loader workers the signal reaches them too (SLURM signals every process of the job step); Ctrl-C
# (SIGINT) is handled like SLURM's signals.
@pytest.mark.parametrize(
    "epsilon, epochs, signum, workers",
    [(3.0, 3, signal.SIGUSR1, 0), (float("inf"), 4, signal.SIGTERM, 2), (float("inf"), 3, signal.SIGINT, 0)],
)
def test_killed_and_resumed_run_equals_an_uninterrupted_one(
    tiny_cache, training_settings, tmp_path, epsilon, epochs, signum, workers
):
    training_settings.update(epochs=epochs, num_workers=workers)
    uninterrupted = training.train_model(*tiny_cache, training_settings, epsilon=epsilon, seed=5, log=quiet)

    resume = tmp_path / "resume.pt"
    watcher = signal_when_saved(resume, signum)
    with pytest.raises(TrainingInterrupted, match=f"{signal.Signals(signum).name}.*saved to .*resume.pt"):
        training.train_model(*tiny_cache, training_settings, epsilon=epsilon, seed=5, log=quiet, resume_path=resume)
    watcher.join()
    saved = torch.load(resume, weights_only=False)
    assert 1 <= saved["epoch"] < epochs

    resumed_log = []
    resumed = training.train_model(
        *tiny_cache, training_settings, epsilon=epsilon, seed=5, log=resumed_log.append, resume_path=resume
    )
    assert any(f"resumed from {resume} after epoch {saved['epoch']}" in line for line in resumed_log)
    assert resumed.privacy == uninterrupted.privacy  # steps, σ, q, ε spent, δ, accountant
    assert resumed.best_epoch == uninterrupted.best_epoch
    cols = [c for c in uninterrupted.history.columns if c != "seconds"]  # losses, val AUROC, ε spent
    assert resumed.history[cols].equals(uninterrupted.history[cols])
    for name, tensor in uninterrupted.state_dict.items():
        assert torch.equal(resumed.state_dict[name], tensor), name


def test_checkpoint_holds_the_validation_class_weights_and_a_changed_loss_is_refused(
    tiny_cache, training_settings, tmp_path
):
    training_settings.update(epochs=2, checkpoint_every_epochs=1)
    resume = tmp_path / "resume.pt"
    watcher = signal_when_saved(resume)
    with pytest.raises(TrainingInterrupted):
        training.train_model(*tiny_cache, training_settings, epsilon=2.0, seed=0, log=quiet, resume_path=resume)
    watcher.join()
    saved = torch.load(resume, weights_only=False)
    _, data = training.load_splits(*tiny_cache, splits=("val",))
    assert torch.equal(saved["pos_weight"], training.positive_class_weights(data["val"].labels))

    saved["pos_weight"] = saved["pos_weight"] + 1  # e.g. rebuilt from the training labels, as a buggy resume would
    torch.save(saved, resume)
    with pytest.raises(ResumeError, match="class weights"):
        training.train_model(*tiny_cache, training_settings, epsilon=2.0, seed=0, log=quiet, resume_path=resume)


def test_resume_of_another_configuration_is_refused(tiny_cache, training_settings, tmp_path):
    training_settings["epochs"] = 2
    resume = tmp_path / "resume.pt"
    watcher = signal_when_saved(resume)
    with pytest.raises(TrainingInterrupted):
        training.train_model(*tiny_cache, training_settings, epsilon=2.0, seed=0, log=quiet, resume_path=resume)
    watcher.join()
    with pytest.raises(ResumeError, match=r"resume\.pt was written by a run with other epsilon.*delete it"):
        training.train_model(*tiny_cache, training_settings, epsilon=4.0, seed=0, log=quiet, resume_path=resume)
    training_settings["optimizer"]["lr"] = 0.01
    with pytest.raises(ResumeError, match="other settings"):
        training.train_model(*tiny_cache, training_settings, epsilon=2.0, seed=0, log=quiet, resume_path=resume)
    # Memory and speed settings do not change the model: resuming with them is allowed.
    training_settings["optimizer"]["lr"] = 0.002
    training_settings.update(physical_batch_size=16, checkpoint_every_epochs=2)
    result = training.train_model(*tiny_cache, training_settings, epsilon=2.0, seed=0, log=quiet, resume_path=resume)
    assert list(result.history["epoch"]) == [1, 2]
