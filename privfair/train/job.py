"""One train job (rule ``train``): train, write the outputs whole, and leave no state behind that is not needed.

The resumable state (``resume.pt`` and its fingerprint ``resume.json``, beside the model) is kept only while it can
be resumed from: when the job stops on a signal after saving it, or when it belongs to another run (the user decides).
It is deleted once the outputs are written, and when the job fails for any other reason. In secure noise mode it holds
the only copy of the noise and sampling generators' states, which must not outlive the run.
"""

from __future__ import annotations

import json
from pathlib import Path

from privfair.core.errors import ResumeError, TrainingInterrupted
from privfair.core.io import atomic_output
from privfair.train.loop import TrainResult, save_checkpoint, train_model
from privfair.train.resume import discard_resume_state


def resume_path_for(model_path) -> Path:
    """Where a run keeps its resumable state: ``resume.pt`` beside its ``model.pt``.

    Args:
        model_path: the run's checkpoint.

    Returns:
        The ``resume.pt`` path (its fingerprint is ``resume.json`` beside it).
    """
    return Path(model_path).with_name("resume.pt")


def train_and_write(
    cache_path,
    manifest_path,
    split_path,
    settings: dict,
    epsilon: float,
    seed: int,
    outputs: dict,
    run: dict,
    provenance: dict,
    log=print,
    calibration_path=None,
    init_path=None,
) -> TrainResult:
    """Train one model (:func:`privfair.train.loop.train_model`, resumable) and write its outputs atomically.

    Args:
        cache_path: the preprocessed image array.
        manifest_path: the cache's manifest.
        split_path: the patient split.
        settings: the dataset's ``training`` config, execution settings included.
        epsilon: the privacy budget; ``math.inf`` trains without Opacus.
        seed: the run's seed.
        outputs: paths ``model`` (checkpoint), ``history`` (CSV, one row per epoch) and ``privacy`` (JSON record).
        run: what identifies the run in the record, written first (``dataset``, ``init``, ``seed``).
        provenance: the code that trained it (:func:`privfair.core.provenance.provenance`), written last.
        log: called with one line of progress at a time.
        calibration_path: the budget's ``noise.json`` (rule ``calibrate_noise``), whose σ a private run trains with;
            None for a non-private run (a private run without it calibrates in-process).
        init_path: the pretrained checkpoint the run starts from; None: fresh weights.

    Returns:
        The :class:`privfair.train.loop.TrainResult`.

    Raises:
        TrainingInterrupted: a signal stopped training; the state saved for resuming (if any) is kept.
        TrainingError: among others, ``calibration_path`` was calibrated for another training set or settings.
        ResumeError: the saved state is not this run's or not a safe state file; it is kept for the user to inspect.
        Exception: any other failure, after the resumable state and partial outputs are deleted.
    """
    resume = resume_path_for(outputs["model"])
    try:
        result = train_model(
            cache_path,
            manifest_path,
            split_path,
            settings,
            epsilon=epsilon,
            seed=seed,
            log=log,
            resume_path=resume,
            calibration_path=calibration_path,
            init_path=init_path,
        )
        with atomic_output(outputs["model"]) as partial:
            save_checkpoint(partial, result, provenance)
        with atomic_output(outputs["history"]) as partial:
            result.history.to_csv(partial, index=False)
        record = {**run, "best_epoch": result.best_epoch, **result.privacy.to_dict(), **provenance}
        with atomic_output(outputs["privacy"]) as partial:
            partial.write_text(json.dumps(record, indent=2))
    except (TrainingInterrupted, ResumeError):
        raise
    except Exception:
        discard_resume_state(resume)
        raise
    discard_resume_state(resume)
    return result
