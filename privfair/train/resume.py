"""Resumable training: what a job killed at its time limit or preempted needs to go on exactly where it stopped.

The unit of resumption is a complete epoch. After every epoch the training loop takes a snapshot (model,
optimiser, the Opacus accountant's history, every RNG state, history rows, best-so-far model); it is written to
the run's ``resume.pt`` every ``checkpoint_every_epochs`` epochs and when SLURM sends SIGUSR1 (the warning before
the time limit) or SIGTERM. Work of an unfinished epoch is dropped: the next attempt restores the RNG states of
the snapshot and so replays that epoch with the same Poisson batches and the same noise. Nothing of the dropped
work was released, so the accountant counts each step once and the privacy record equals an uninterrupted run's.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from privfair.core.errors import ResumeError, TrainingInterrupted

SIGNALS = (signal.SIGUSR1, signal.SIGTERM)


def data_fingerprint(cache_path, manifest_path, split_path) -> dict:
    """Identifies the training data cheaply: hashes of the (small) tables, size and mtime of the image cache."""
    cache = os.stat(cache_path)
    return {
        "manifest_sha256": _sha256(manifest_path),
        "split_sha256": _sha256(split_path),
        "cache_bytes": cache.st_size,
        "cache_mtime_ns": cache.st_mtime_ns,
    }


def _sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def capture_rng(generator: torch.Generator) -> dict:
    """Every random state a run draws from: Python, NumPy, torch (CPU, CUDA) and the data loader's generator."""
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "loader": generator.get_state(),
    }


def restore_rng(state: dict, generator: torch.Generator) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state["cuda"]:
        torch.cuda.set_rng_state_all(state["cuda"])
    generator.set_state(state["loader"])


class ResumeFile:
    """A run's resumable state on disk, bound to the identity of the run (settings, ε, seed, data).

    It is not a declared Snakemake output, so Snakemake keeps it when a job fails; the train step deletes it once
    the run's outputs are written.
    """

    def __init__(self, path, identity: dict):
        self.path = Path(path)
        self.identity = identity

    def save(self, snapshot: dict) -> None:
        """Write atomically: a kill during the write leaves the previous file intact."""
        partial = self.path.with_name(self.path.name + ".partial")
        torch.save({"identity": self.identity, **snapshot}, partial)
        os.replace(partial, self.path)

    def load(self) -> dict | None:
        """The saved snapshot, or None if there is none; a snapshot of another run is refused."""
        if not self.path.exists():
            return None
        snapshot = torch.load(self.path, map_location="cpu", weights_only=False)
        saved = snapshot.pop("identity")
        if saved != self.identity:
            differing = sorted(k for k in saved.keys() | self.identity.keys() if saved.get(k) != self.identity.get(k))
            raise ResumeError(
                f"{self.path} was written by a run with other {', '.join(differing)}; delete it to train from scratch"
            )
        return snapshot

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


def ignore_signals_in_worker(worker_id: int) -> None:
    """A data loader's ``worker_init_fn``: SLURM signals every process of the job step, and a worker ended by the
    signal would make the loader raise before the training process saves its state. Workers leave the signals to
    the training process, which shuts them down."""
    for s in SIGNALS:
        signal.signal(s, signal.SIG_IGN)


@contextmanager
def interrupt_on_signals():
    """Turn the first SIGUSR1/SIGTERM into ``TrainingInterrupted``, raised at once; yields the list of signals
    received. Library code may wrap that exception in another one or, inside a ``__del__``, swallow it, so callers
    check the list rather than the exception type, and check it again at the end of each epoch. Later signals are
    ignored so that writing the snapshot is not cut short by SLURM's SIGTERM following its warning signal."""
    received = []

    def handler(signum, frame):
        if not received:
            received.append(signal.Signals(signum))
            raise TrainingInterrupted(f"received {signal.Signals(signum).name}")

    previous = {s: signal.signal(s, handler) for s in SIGNALS}
    try:
        yield received
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
