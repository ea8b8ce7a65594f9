"""Predictions of one model on one dataset, shaped as the ``predict`` rule writes them."""

from __future__ import annotations

import numpy as np
import pandas as pd


def model_predictions(
    labels, noise: float, seed: int, *, dataset_seed: int = 0, n: int = 240, columns=("age", "sex")
) -> pd.DataFrame:
    """Val and test rows of one model: images, truth and demographics are the dataset's (``dataset_seed``), the
    score noise is the model's (``noise``, ``seed``). Two images per patient; a quarter of the patients in val."""
    rng = np.random.default_rng(dataset_seed)
    frame = pd.DataFrame(
        {
            "image_id": [f"img{i:04d}" for i in range(n)],
            "patient_id": [f"pat{i // 2:04d}" for i in range(n)],
            "split": np.where(np.arange(n) // 2 % 4 == 0, "val", "test"),
            "age": rng.integers(20, 90, n).astype(float),
            "sex": rng.choice(["F", "M"], n),
        }
    )
    frame = frame.drop(columns=[c for c in ("age", "sex") if c not in columns])
    model = np.random.default_rng([seed, int(noise * 10)])
    for label in labels:
        y = (rng.random(n) < 0.4).astype(int)
        frame[f"true_{label}"] = y
        frame[f"score_{label}"] = 1 / (1 + np.exp(-(2.0 * y - 1.0 + rng.normal(size=n) + noise * model.normal(size=n))))
    return frame
