"""The train job keeps resumable state only while it can be resumed from, and its data loader workers die with it."""

from __future__ import annotations

import ctypes
import multiprocessing
import signal
import sys

import pytest

from privfair.core.errors import ResumeError, TrainingError, TrainingInterrupted
from privfair.train import job
from privfair.train.resume import ignore_signals_in_worker

PR_GET_PDEATHSIG = 2  # from <linux/prctl.h>


def run_job(tmp_path, error: Exception):
    """Run the job with a training that leaves resumable state (and a killed write's leftover), then fails."""

    def failing_training(*args, resume_path, **kwargs):
        for name in ("resume.pt", "resume.json", ".partial-resume.pt"):
            (resume_path.parent / name).write_text("state")
        raise error

    outputs = {name: tmp_path / f"{name}.out" for name in ("model", "history", "privacy")}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(job, "train_model", failing_training)
        with pytest.raises(type(error)):
            job.train_and_write("c", "m", "s", {}, 1.0, 0, outputs, run={}, provenance={}, log=lambda _: None)
    return sorted(p.name for p in tmp_path.iterdir())


@pytest.mark.parametrize("error", [TrainingError("diverged"), RuntimeError("CUDA out of memory"), OSError(28, "full")])
def test_a_run_that_fails_leaves_no_state(tmp_path, error):
    assert run_job(tmp_path, error) == []


@pytest.mark.parametrize(
    "error",
    [TrainingInterrupted("received SIGUSR1 ...: state saved"), ResumeError("resume.pt was written by another run")],
)
def test_an_interrupted_run_or_another_runs_state_is_kept(tmp_path, error):
    assert run_job(tmp_path, error) == [".partial-resume.pt", "resume.json", "resume.pt"]


def _death_signal(queue):
    ignore_signals_in_worker(0)
    libc = ctypes.CDLL(None, use_errno=True)
    death = ctypes.c_int()
    libc.prctl(PR_GET_PDEATHSIG, ctypes.byref(death), 0, 0, 0)
    queue.put((death.value, signal.getsignal(signal.SIGINT)))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_data_loader_workers_die_with_the_training_process_and_leave_ctrl_c_to_it():
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    worker = context.Process(target=_death_signal, args=(queue,))
    worker.start()
    death, on_sigint = queue.get(timeout=30)
    worker.join()
    assert death == signal.SIGKILL
    assert on_sigint == signal.SIG_IGN
