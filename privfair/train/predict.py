"""Predicting probabilities with a trained model, and the predictions table that evaluation reads."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from privfair.data.cache import CachedImages
from privfair.train.checkpoint import load_state_file
from privfair.train.models import model_from_spec

ROW_COLUMNS = ["image_id", "patient_id", "study_id", "split", "age", "sex", "view", "comorbidity"]


def device_for_run() -> torch.device:
    """The device to train and predict on.

    Returns:
        ``cuda`` (the current CUDA device) when one is available, else ``cpu``.
    """
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@torch.no_grad()
def predict_logits(model: torch.nn.Module, images: CachedImages, batch_size: int, device: torch.device) -> torch.Tensor:
    """The network's outputs before the sigmoid, one row per image of ``images``, one column per label.

    Args:
        model: the network, already on ``device``; evaluated in eval mode, and left in train mode afterwards.
        images: one split of the cache (:class:`privfair.data.cache.CachedImages`), read in order.
        batch_size: images per forward pass.
        device: where the batches go.

    Returns:
        A float32 CPU tensor (n_images, n_labels), rows in the order of ``images.rows``.
    """
    model.eval()
    loader = DataLoader(images, batch_size=batch_size, shuffle=False)
    logits = [model(x.to(device)).float().cpu() for x, _ in loader]
    model.train()
    return torch.cat(logits)


def predict_probabilities(
    model: torch.nn.Module, images: CachedImages, batch_size: int, device: torch.device
) -> np.ndarray:
    """Sigmoid outputs, one row per image of ``images``, one column per label.

    Args:
        model: the network, already on ``device``; evaluated in eval mode, and left in train mode afterwards.
        images: one split of the cache (:class:`privfair.data.cache.CachedImages`), read in order.
        batch_size: images per forward pass.
        device: where the batches go.

    Returns:
        A float32 array (n_images, n_labels) of probabilities, rows in the order of ``images.rows``.
    """
    return torch.sigmoid(predict_logits(model, images, batch_size, device)).numpy()


def load_model(checkpoint_path, device: torch.device) -> tuple[torch.nn.Module, dict]:
    """Rebuild the network from a checkpoint written by ``privfair.train.loop.save_checkpoint``.

    Args:
        checkpoint_path: the checkpoint file, loaded with ``weights_only=True``: nothing in it can run code.
        device: where to put the network and the loaded tensors.

    Returns:
        ``(model, checkpoint)``: the network with the saved weights, on ``device``, and the checkpoint dict
        (``state_dict``, ``model`` (the spec, ``labels`` included), ``best_epoch``, ``provenance``).

    Raises:
        CheckpointError: the file holds anything but tensors and plain containers, or is unreadable; the message
            names it.
    """
    checkpoint = load_state_file(checkpoint_path, device)
    spec = checkpoint["model"]
    model = model_from_spec(spec)
    model.load_state_dict(checkpoint["state_dict"])
    return model.to(device), checkpoint


def predictions_table(images: CachedImages, labels: list[str], scores: np.ndarray) -> pd.DataFrame:
    """Rows of ``images`` with ``true_<label>`` and ``score_<label>`` columns (the format evaluation reads);
    a masked label's true value stays NaN.

    Args:
        images: one split of the cache; its manifest rows supply the identifying columns.
        labels: the label names, in the order of the label vector and of the columns of ``scores``.
        scores: probabilities from :func:`predict_probabilities`, shape (len(images), len(labels)).

    Returns:
        One row per image: ``image_id, patient_id, study_id, split, age, sex, view, comorbidity``, then per label
        ``true_<label>`` (int8 0/1, or float with NaN when any value is masked) and ``score_<label>``.
    """
    table = images.rows[ROW_COLUMNS].copy()
    for i, label in enumerate(labels):
        truth = images.labels[:, i].numpy()
        table[f"true_{label}"] = truth if np.isnan(truth).any() else truth.astype("int8")
        table[f"score_{label}"] = scores[:, i]
    return table
