import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from privfair.core.stats import percentile_ci
from privfair.evaluate.metrics import (
    bootstrap_indices,
    evaluate_predictions,
    resample_counts,
    resampled_auroc,
    youden_threshold,
)


def frame(val: dict, test: dict) -> pd.DataFrame:
    """Predictions table from {label: (y_true, y_score)} per split, with the non-metric columns filled in."""
    parts = []
    for split, columns in (("val", val), ("test", test)):
        n = len(next(iter(columns.values()))[0])
        part = pd.DataFrame(
            {
                "image_id": [f"{split}{i}" for i in range(n)],
                "patient_id": [f"p{i}" for i in range(n)],
                "split": split,
                "age": 50.0,
                "sex": "F",
                "comorbidity": 0,
            }
        )
        for label, (y, _) in columns.items():
            part[f"true_{label}"] = np.asarray(y, dtype=int)
        for label, (_, s) in columns.items():
            part[f"score_{label}"] = np.asarray(s, dtype=float)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def noisy_task(rng, n: int, separation: float, prevalence: float = 0.3):
    y = (rng.random(n) < prevalence).astype(int)
    return y, 1 / (1 + np.exp(-(separation * y + rng.normal(size=n))))


def metric(summary: pd.DataFrame, label: str, name: str) -> pd.Series:
    return summary[(summary["label"] == label) & (summary["metric"] == name)].iloc[0]


def test_bootstrap_indices_deterministic_and_in_range():
    a = bootstrap_indices(50, 20, seed=7)
    assert a.shape == (20, 50)
    assert a.min() >= 0 and a.max() < 50
    np.testing.assert_array_equal(a, bootstrap_indices(50, 20, seed=7))
    assert not np.array_equal(a, bootstrap_indices(50, 20, seed=8))
    with pytest.raises(ValueError, match="n_resamples"):
        bootstrap_indices(50, 0, seed=7)


def test_resampled_auroc_equals_sklearn_with_ties():
    rng = np.random.default_rng(0)
    y = (rng.random(300) < 0.2).astype(int)
    score = np.round(rng.random(300) * 0.5 + 0.3 * y, 2)  # rounding creates many ties
    idx = bootstrap_indices(300, 50, seed=1)
    fast = resampled_auroc(y, score, resample_counts(idx))
    slow = [roc_auc_score(y[i], score[i]) for i in idx]
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-10)


def test_resampled_auroc_nan_when_resample_has_one_class():
    y = np.array([0, 0, 0, 1])
    counts = np.array([[1, 1, 1, 1], [2, 1, 1, 0]])
    auroc = resampled_auroc(y, np.array([0.1, 0.2, 0.3, 0.9]), counts)
    assert auroc[0] == 1.0 and np.isnan(auroc[1])


def test_youden_picks_gap_on_separable_toy():
    y = [0, 0, 0, 1, 1, 1]
    assert youden_threshold(y, [0.1, 0.2, 0.3, 0.7, 0.8, 0.9]) == pytest.approx(0.7)


def test_youden_is_finite_when_scores_carry_no_information():
    assert youden_threshold([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == 0.5


def test_threshold_is_chosen_on_val_not_test():
    # Val separates at 0.6; test scores are shifted up so every test negative lies above 0.6.
    df = frame(
        val={"x": ([0, 0, 0, 1, 1, 1], [0.1, 0.2, 0.3, 0.6, 0.7, 0.8])},
        test={"x": ([0, 0, 0, 1, 1, 1], [0.65, 0.68, 0.7, 0.9, 0.92, 0.95])},
    )
    summary, _ = evaluate_predictions(df, n_bootstrap=20, seed=0)
    assert metric(summary, "x", "threshold")["value"] == pytest.approx(0.6)
    assert youden_threshold([0, 0, 0, 1, 1, 1], [0.65, 0.68, 0.7, 0.9, 0.92, 0.95]) == pytest.approx(0.9)
    assert metric(summary, "x", "auroc")["value"] == 1.0
    assert metric(summary, "x", "sensitivity")["value"] == 1.0
    assert metric(summary, "x", "specificity")["value"] == 0.0
    assert metric(summary, "x", "accuracy")["value"] == 0.5


def test_confusion_metrics_by_hand():
    df = frame(
        val={"x": ([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])},  # threshold 0.8
        test={"x": ([0, 0, 0, 0, 1, 1, 1], [0.1, 0.5, 0.85, 0.2, 0.9, 0.7, 0.95])},
    )
    summary, _ = evaluate_predictions(df, n_bootstrap=10, seed=0)
    # Predicted positive at >= 0.8: negatives 1 of 4 (FP), positives 2 of 3 (TP).
    assert metric(summary, "x", "sensitivity")["value"] == pytest.approx(2 / 3)
    assert metric(summary, "x", "specificity")["value"] == pytest.approx(3 / 4)
    assert metric(summary, "x", "accuracy")["value"] == pytest.approx(5 / 7)


def test_perfect_scores_give_auroc_one_and_degenerate_ci():
    rng = np.random.default_rng(1)
    y_val, y_test = rng.permutation([0, 1] * 50), rng.permutation([0, 1] * 100)
    df = frame(val={"x": (y_val, 0.2 + 0.6 * y_val)}, test={"x": (y_test, 0.2 + 0.6 * y_test)})
    summary, boot = evaluate_predictions(df, n_bootstrap=200, seed=3)
    for label in ("x", "macro"):
        row = metric(summary, label, "auroc")
        assert (row["value"], row["boot_mean"], row["ci_low"], row["ci_high"]) == (1.0, 1.0, 1.0, 1.0)
        assert row["n_valid"] == 200
    assert list(boot.columns) == ["resample", "label", "auroc"]
    assert len(boot) == 2 * 200 and (boot["auroc"] == 1.0).all()


def test_random_scores_give_chance_auroc_with_ci_covering_half():
    rng = np.random.default_rng(2)
    y_val, y_test = (rng.random(500) < 0.4).astype(int), (rng.random(2000) < 0.4).astype(int)
    df = frame(val={"x": (y_val, rng.random(500))}, test={"x": (y_test, rng.random(2000))})
    summary, _ = evaluate_predictions(df, n_bootstrap=500, seed=0)
    row = metric(summary, "x", "auroc")
    assert abs(row["value"] - 0.5) < 0.04
    assert row["ci_low"] < 0.5 < row["ci_high"]
    assert row["ci_high"] - row["ci_low"] < 0.1


def test_paired_resamples_and_macro_match_sklearn_on_the_same_indices():
    rng = np.random.default_rng(3)
    y_val = {k: (rng.random(100) < 0.3).astype(int) for k in "ab"}
    y_test = {k: (rng.random(150) < 0.3).astype(int) for k in "ab"}
    models = []
    for noise in (0.5, 2.0):  # two models, same test set
        models.append(
            frame(
                val={k: (y_val[k], y_val[k] + noise * rng.normal(size=100)) for k in "ab"},
                test={k: (y_test[k], y_test[k] + noise * rng.normal(size=150)) for k in "ab"},
            )
        )
    idx = bootstrap_indices(150, 30, seed=11)
    for df in models:
        summary, boot = evaluate_predictions(df, n_bootstrap=30, seed=11)
        test = df[df["split"] == "test"].sort_values("image_id")  # resamples index test rows in image_id order
        for r in (0, 17, 29):
            expected = {
                k: roc_auc_score(test[f"true_{k}"].to_numpy()[idx[r]], test[f"score_{k}"].to_numpy()[idx[r]])
                for k in "ab"
            }
            got = boot[boot["resample"] == r].set_index("label")["auroc"]
            assert got["a"] == pytest.approx(expected["a"], abs=1e-10)
            assert got["macro"] == pytest.approx((expected["a"] + expected["b"]) / 2, abs=1e-10)
        aurocs = summary[summary["metric"] == "auroc"].set_index("label")["value"]
        assert aurocs["macro"] == pytest.approx((aurocs["a"] + aurocs["b"]) / 2)


def test_row_order_does_not_change_results():
    rng = np.random.default_rng(6)
    df = frame(val={"x": noisy_task(rng, 80, 1.0)}, test={"x": noisy_task(rng, 120, 1.0)})
    shuffled = df.sample(frac=1, random_state=1)
    for expected, got in zip(
        evaluate_predictions(df, n_bootstrap=50, seed=2), evaluate_predictions(shuffled, n_bootstrap=50, seed=2)
    ):
        pd.testing.assert_frame_equal(expected, got)


def test_macro_resample_undefined_when_any_label_is():
    rng = np.random.default_rng(4)
    y_rare = np.zeros(40, dtype=int)
    y_rare[[3, 20]] = 1  # two positives: many resamples miss both
    y_common, s_common = noisy_task(rng, 40, 2.0, prevalence=0.5)
    df = frame(
        val={"rare": ([0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8]), "common": ([0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8])},
        test={"rare": (y_rare, rng.random(40)), "common": (y_common, s_common)},
    )
    summary, boot = evaluate_predictions(df, n_bootstrap=300, seed=0)
    wide = boot.pivot(index="resample", columns="label", values="auroc")
    assert wide["rare"].isna().any()
    np.testing.assert_array_equal(wide["macro"].isna(), wide["rare"].isna() | wide["common"].isna())
    assert metric(summary, "macro", "auroc")["n_valid"] == wide["macro"].notna().sum() < 300
    assert np.isnan(metric(summary, "rare", "accuracy")["n_valid"])


@pytest.mark.parametrize("split", ["val", "test"])
def test_single_class_label_is_rejected(split):
    good = ([0, 1, 0, 1], [0.1, 0.9, 0.3, 0.6])
    bad = ([0, 0, 0, 0], [0.1, 0.9, 0.3, 0.6])
    df = frame(val={"lesion": bad if split == "val" else good}, test={"lesion": bad if split == "test" else good})
    with pytest.raises(ValueError, match=f"'lesion' has a single class .* '{split}' split"):
        evaluate_predictions(df, n_bootstrap=5, seed=0)


def test_missing_split_or_score_column_is_rejected():
    df = frame(val={"x": ([0, 1], [0.2, 0.8])}, test={"x": ([0, 1], [0.2, 0.8])})
    with pytest.raises(ValueError, match="no 'val' rows"):
        evaluate_predictions(df[df["split"] == "test"], n_bootstrap=5, seed=0)
    with pytest.raises(ValueError, match="no 'test' rows"):
        evaluate_predictions(df[df["split"] == "val"], n_bootstrap=5, seed=0)
    with pytest.raises(ValueError, match="score_x"):
        evaluate_predictions(df.drop(columns="score_x"), n_bootstrap=5, seed=0)
    with pytest.raises(ValueError, match="duplicate image_id"):
        evaluate_predictions(df.assign(image_id="same"), n_bootstrap=5, seed=0)


def test_percentile_ci_ignores_nan():
    assert percentile_ci([np.nan, 1.0, 2.0, 3.0, np.nan], ci=0.5) == (1.5, 2.5)
    assert all(np.isnan(percentile_ci([np.nan])))


def test_bootstrap_resamples_patients_with_all_their_images():
    rng = np.random.default_rng(3)
    y, s = noisy_task(rng, 60, 1.0)
    df = frame(val={"x": noisy_task(rng, 40, 1.0)}, test={"x": (y, s)})
    test_rows = df["split"] == "test"
    # Images 2k and 2k+1 belong to one patient: their scores must move together in every resample.
    df.loc[test_rows, "patient_id"] = [f"q{i // 2}" for i in range(60)]
    df.loc[test_rows, "score_x"] = np.repeat(s[::2], 2)
    df.loc[test_rows, "true_x"] = np.repeat(y[::2], 2)
    by_patient = evaluate_predictions(df, n_bootstrap=200, seed=0)[1]
    one_image_each = df[~test_rows | (df.index % 2 == 0)]
    one_image_each.loc[one_image_each["split"] == "test", "patient_id"] = [f"q{i}" for i in range(30)]
    singles = evaluate_predictions(one_image_each, n_bootstrap=200, seed=0)[1]
    # Duplicated images add no information, so the patient-level bootstrap equals that of one image per patient.
    np.testing.assert_allclose(by_patient["auroc"], singles["auroc"])
