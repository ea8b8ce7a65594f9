"""Which training settings make the model, and which only make it fast."""

from __future__ import annotations

# Settings that change speed and memory, not the model: editing them must retrain nothing, and a run may resume
# with other values (the physical batch only splits a logical batch; the gradient sum and the noise are the same).
EXECUTION_KEYS = ("physical_batch_size", "num_workers", "checkpoint_every_epochs")


def model_settings(settings: dict) -> dict:
    """The training settings that determine the trained model (the train rule's params)."""
    return {k: v for k, v in settings.items() if k not in EXECUTION_KEYS}


def execution_settings(settings: dict) -> dict:
    """The memory and speed settings: a job reads them from the config, not its params, so editing them retrains
    nothing."""
    return {k: v for k, v in settings.items() if k in EXECUTION_KEYS}
