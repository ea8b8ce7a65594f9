"""Masked (unknown) labels, e.g. CheXpert's uncertain findings under the 'ignore' policy: NaN in the manifest,
left out of the loss, the class weights, validation AUROC and test evaluation."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score

from privfair.core.stats import masked_macro_auroc
from privfair.evaluate.metrics import evaluate_predictions
from privfair.train.loop import WeightedBCE, positive_class_weights

NAN = float("nan")


def test_masked_entries_add_nothing_to_the_loss_and_per_sample_losses_stay_available():
    logits = torch.tensor([[2.0, -1.0], [0.5, 3.0]], requires_grad=True)
    target = torch.tensor([[1.0, NAN], [0.0, 1.0]])
    per_sample = WeightedBCE(torch.ones(2), reduction="none")(logits, target)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    assert torch.allclose(per_sample[0], bce(logits[0, :1], target[0, :1]))  # the mean over known labels only
    assert torch.allclose(per_sample[1], bce(logits[1], target[1]))
    WeightedBCE(torch.ones(2))(logits, target).backward()
    assert torch.isfinite(logits.grad).all() and logits.grad[0, 1] == 0
    # An unmasked batch gives the plain BCE, as before masking existed.
    full = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert torch.allclose(WeightedBCE(torch.ones(2))(logits, full), bce(logits, full))


def test_class_weights_count_known_labels_only():
    labels = torch.tensor([[1.0, NAN], [0.0, 1.0], [0.0, NAN], [NAN, 0.0]])
    assert torch.equal(positive_class_weights(labels), torch.tensor([2.0, 1.0]))


def test_validation_auroc_skips_masked_rows():
    y = np.array([[1, 0], [0, NAN], [1, 1], [0, 0], [NAN, 1]], dtype=float)
    s = np.array([[0.9, 0.2], [0.1, 0.99], [0.8, 0.7], [0.3, 0.4], [0.0, 0.6]])
    assert math.isclose(masked_macro_auroc(y, s), 1.0)  # the masked rows would make both AUROCs worse


def test_evaluation_computes_each_label_on_its_known_rows():
    rng = np.random.default_rng(0)
    rows = []
    for split in ("val", "test"):
        for i in range(40):
            truth_a, truth_b = i % 2, (i // 2) % 2
            rows.append(
                {
                    "split": split,
                    "image_id": f"{split}{i}",
                    "patient_id": f"{split}p{i}",
                    "true_a": truth_a,
                    "score_a": truth_a + rng.normal(0, 0.6),
                    "true_b": NAN if i % 5 == 0 else truth_b,
                    "score_b": truth_b + rng.normal(0, 0.6),
                }
            )
    predictions = pd.DataFrame(rows)
    summary, bootstrap = evaluate_predictions(predictions, n_bootstrap=20, seed=1)
    test = predictions[(predictions["split"] == "test") & predictions["true_b"].notna()]
    expected = roc_auc_score(test["true_b"], test["score_b"])
    got = summary.query("label == 'b' and metric == 'auroc'")["value"].item()
    assert math.isclose(got, expected)
    assert bootstrap.query("label == 'b'")["auroc"].notna().all()
