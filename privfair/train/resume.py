"""Resumable training: what a job killed at its time limit or preempted needs to go on exactly where it stopped.

The unit of resumption is a complete epoch. After every epoch the training loop takes a snapshot (model,
optimiser, the Opacus accountant's history, every RNG state, history rows, best-so-far model); it is written to
the run's ``resume.pt`` every ``checkpoint_every_epochs`` epochs and when SLURM sends SIGUSR1 (the warning before
the time limit) or SIGTERM. Work of an unfinished epoch is dropped: the next attempt restores the RNG states of
the snapshot and so replays that epoch with the same Poisson batches and the same noise. Nothing of the dropped
work was released, so the accountant counts each step once and the privacy record equals an uninterrupted run's.

The run's fingerprint (settings, ε, seed, data) is in a JSON sidecar, ``resume.json``, read and compared before any
tensor is loaded; ``resume.pt`` itself is read with ``weights_only=True`` (see ``privfair.train.checkpoint``), so it
holds only tensors and plain containers. In secure noise mode the RNG states it holds are the only record of the
noise and sampling generators; the train job deletes both files once the run's outputs are written, or when the run
fails other than by an interruption that saved its state.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from privfair.core.errors import ResumeError, TrainingInterrupted
from privfair.core.workers import die_with_parent
from privfair.train.checkpoint import load_state_file

# SLURM's warning before the time limit, its (and preemption's) termination, and Ctrl-C.
SIGNALS = (signal.SIGUSR1, signal.SIGTERM, signal.SIGINT)


def data_fingerprint(cache_path, manifest_path, split_path) -> dict:
    """Identifies the training data cheaply: hashes of the (small) tables, size and mtime of the image cache."""
    cache = os.stat(cache_path)
    return {
        "manifest_sha256": _sha256(manifest_path),
        "split_sha256": _sha256(split_path),
        "cache_bytes": cache.st_size,
        "cache_mtime_ns": cache.st_mtime_ns,
    }


def file_fingerprint(path) -> dict:
    """Identifies a small file (a pretrained checkpoint a run starts from) by its hash."""
    return {"sha256": _sha256(path)}


def _sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def capture_rng(generator: torch.Generator, noise_generator: torch.Generator | None = None) -> dict:
    """Every random state a run draws from: Python, NumPy, torch (CPU, CUDA), the data loader's generator (the
    Poisson sampling of a private run) and the DP noise generator (secure mode; None: the noise is torch's global
    RNG). Plain types and tensors only, for ``weights_only`` loading: NumPy's key becomes a list of ints."""
    name, key, position, has_gauss, cached_gaussian = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": (name, key.tolist(), position, has_gauss, cached_gaussian),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "loader": generator.get_state(),
        "noise": noise_generator.get_state() if noise_generator is not None else None,
    }


def restore_rng(state: dict, generator: torch.Generator, noise_generator: torch.Generator | None = None) -> None:
    """Set every random state captured by :func:`capture_rng`.

    Args:
        state: the captured states.
        generator: the data loader's generator.
        noise_generator: the DP noise generator of a secure run; None where the noise comes from torch's global RNG.
    """
    random.setstate(state["python"])
    name, key, position, has_gauss, cached_gaussian = state["numpy"]
    np.random.set_state((name, np.asarray(key, dtype=np.uint32), position, has_gauss, cached_gaussian))
    torch.set_rng_state(state["torch"])
    if state["cuda"]:
        torch.cuda.set_rng_state_all(state["cuda"])
    generator.set_state(state["loader"])
    if (state["noise"] is None) != (noise_generator is None):
        raise ResumeError("the saved run and this one draw the DP noise from different generators")
    if noise_generator is not None:
        noise_generator.set_state(state["noise"])


def _sidecar(path: Path) -> Path:
    return path.with_suffix(".json")


def _state_files(path) -> list[Path]:
    """``resume.pt``, its fingerprint ``resume.json``, and the temporary files of an interrupted write of either."""
    path = Path(path)
    files = [path, _sidecar(path)]
    return files + [f.with_name(f".partial-{f.name}") for f in files]


def discard_resume_state(path) -> None:
    """Delete a run's resumable state: ``path`` (``resume.pt``), ``resume.json`` and any ``.partial-`` leftovers.

    Args:
        path: the ``resume.pt`` given to :func:`privfair.train.loop.train_model`.
    """
    for file in _state_files(path):
        file.unlink(missing_ok=True)


def _write_atomically(path: Path, write) -> None:
    """``write(temporary)``, then rename it to ``path``: a kill during the write leaves the previous file intact."""
    partial = path.with_name(f".partial-{path.name}")
    try:
        write(partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


class ResumeFile:
    """A run's resumable state on disk, bound to the identity of the run (settings, ε, seed, data).

    The identity is in the JSON sidecar (``resume.json``), compared before ``resume.pt`` is opened. Neither file is a
    declared Snakemake output, so Snakemake keeps them when a job fails; the train job deletes them once the run's
    outputs are written (:func:`discard_resume_state`).
    """

    def __init__(self, path, identity: dict):
        self.path = Path(path)
        self.sidecar = _sidecar(self.path)
        # As it reads back from JSON (tuples become lists), so that comparing is exact.
        self.identity = json.loads(json.dumps(identity))

    def save(self, snapshot: dict) -> None:
        """Write the fingerprint, then the snapshot (tensors and plain containers only), each atomically."""
        _write_atomically(self.sidecar, lambda p: p.write_text(json.dumps({"identity": self.identity}, indent=2)))
        _write_atomically(self.path, lambda p: torch.save(snapshot, p))

    def load(self) -> dict | None:
        """The saved snapshot, or None if there is none (stale ``.partial-`` files of a killed write are removed).

        The fingerprint is checked first: a snapshot of another run, or one without a fingerprint, is refused before
        any of it is unpickled; the snapshot is then read with ``weights_only=True``.
        """
        for partial in _state_files(self.path)[2:]:
            partial.unlink(missing_ok=True)
        if not self.path.exists():
            return None
        if not self.sidecar.exists():
            raise ResumeError(
                f"{self.path} has no fingerprint ({self.sidecar.name}), so it cannot be matched to this run; delete "
                "it to train from scratch"
            )
        try:
            saved = json.loads(self.sidecar.read_text())["identity"]
            if not isinstance(saved, dict):
                raise TypeError("the identity is not an object")
        except (ValueError, KeyError, TypeError) as error:
            raise ResumeError(
                f"{self.sidecar} is not a fingerprint privfair wrote ({error}); delete it and "
                f"{self.path.name} to train from scratch"
            ) from None
        if saved != self.identity:
            differing = sorted(k for k in saved.keys() | self.identity.keys() if saved.get(k) != self.identity.get(k))
            raise ResumeError(
                f"{self.path} was written by a run with other {', '.join(differing)} (see {self.sidecar.name}); "
                f"delete it to train from scratch"
            )
        return load_state_file(self.path, "cpu", ResumeError)


def ignore_signals_in_worker(worker_id: int) -> None:
    """A data loader's ``worker_init_fn``: SLURM signals every process of the job step (and Ctrl-C the whole
    process group), and a worker ended by the signal would make the loader raise before the training process saves
    its state. Workers leave the signals to the training process, which shuts them down, and die with it when it is
    killed outright (:func:`privfair.core.workers.die_with_parent`)."""
    for s in SIGNALS:
        signal.signal(s, signal.SIG_IGN)
    die_with_parent()


@contextmanager
def interrupt_on_signals():
    """Turn the first SIGUSR1/SIGTERM/SIGINT into ``TrainingInterrupted``, raised at once; yields the list of signals
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
