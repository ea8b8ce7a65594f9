"""Time the paired-bootstrap evaluation at study scale (1,000 resamples × 8 labels × 3,000 test images).

Run: .venv/bin/python benchmarks/evaluate.py
"""

import time

import numpy as np
import pandas as pd

from privfair.evaluate.metrics import evaluate_predictions


def synthetic_predictions(n_val=1000, n_test=3000, n_labels=8, seed=0):
    rng = np.random.default_rng(seed)
    n = n_val + n_test
    table = {"image_id": [f"i{i}" for i in range(n)], "split": ["val"] * n_val + ["test"] * n_test}
    for k in range(n_labels):
        truth = rng.integers(0, 2, n)
        table[f"true_l{k}"] = truth
        table[f"score_l{k}"] = 1 / (1 + np.exp(-(1.5 * truth + rng.normal(size=n))))
    return pd.DataFrame(table)


if __name__ == "__main__":
    predictions = synthetic_predictions()
    evaluate_predictions(predictions, n_bootstrap=10, seed=0)  # warm-up
    times = []
    for _ in range(3):
        start = time.perf_counter()
        evaluate_predictions(predictions, n_bootstrap=1000, seed=0)
        times.append(time.perf_counter() - start)
    print(
        f"evaluate_predictions, 1000 resamples x 8 labels x 3000 test rows: best {min(times):.2f} s, "
        f"median {sorted(times)[1]:.2f} s"
    )
