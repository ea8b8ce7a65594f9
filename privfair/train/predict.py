"""Predicting probabilities with a trained model, and the predictions table that evaluation reads."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from privfair.data.cache import CachedImages
from privfair.train.models import build_model

ROW_COLUMNS = ["image_id", "patient_id", "study_id", "split", "age", "sex", "view", "comorbidity"]


def device_for_run() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@torch.no_grad()
def predict_probabilities(
    model: torch.nn.Module, images: CachedImages, batch_size: int, device: torch.device
) -> np.ndarray:
    """Sigmoid outputs, one row per image of ``images``, one column per label."""
    model.eval()
    loader = DataLoader(images, batch_size=batch_size, shuffle=False)
    scores = [torch.sigmoid(model(x.to(device))).float().cpu() for x, _ in loader]
    model.train()
    return torch.cat(scores).numpy()


def load_model(checkpoint_path, device: torch.device) -> tuple[torch.nn.Module, dict]:
    """Rebuild the network from a checkpoint written by ``privfair.train.loop.save_checkpoint``."""
    checkpoint = torch.load(checkpoint_path, map_location=device, weights_only=True)
    spec = checkpoint["model"]
    model = build_model(
        spec["spatial_dims"], spec["in_channels"], len(spec["labels"]), spec["width"], spec["num_groups"]
    )
    model.load_state_dict(checkpoint["state_dict"])
    return model.to(device), checkpoint


def predictions_table(images: CachedImages, labels: list[str], scores: np.ndarray) -> pd.DataFrame:
    """Rows of ``images`` with ``true_<label>`` and ``score_<label>`` columns (the format evaluation reads);
    a masked label's true value stays NaN."""
    table = images.rows[ROW_COLUMNS].copy()
    for i, label in enumerate(labels):
        truth = images.labels[:, i].numpy()
        table[f"true_{label}"] = truth if np.isnan(truth).any() else truth.astype("int8")
        table[f"score_{label}"] = scores[:, i]
    return table
