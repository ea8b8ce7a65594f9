"""Subgroups, subgroup metrics and fairness quantities: equal to scikit-learn's and fairlearn's on the same inputs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    equal_opportunity_difference,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn.metrics import accuracy_score, roc_auc_score

from privfair.core.errors import ConfigError
from privfair.evaluate.metrics import evaluate_predictions
from privfair.fairness.analysis import correlations, run_quantities, summarise, training_counts
from privfair.fairness.metrics import attribute_notes, derived_quantities, group_metrics, unrecorded_attributes
from privfair.fairness.subgroups import NOT_BINNED, UNKNOWN, assign_groups, bin_labels, check_fairness_spec

SPEC = {
    "attributes": {
        "sex": {},
        "age": {"bins": [0, 30, 60, 70, 80, 100]},
        "comorbidity": {"bins": [0, 1, 2, math.inf], "labels": ["0", "1", "≥2"]},
    },
    "intersections": [["age", "sex"]],
    "min_group_size": {"positives": 1, "negatives": 1},
    "ece_bins": 10,
}
LABELS = ("effusion", "nodule")
THRESHOLDS = {"effusion": 0.5, "nodule": 0.4}


def predictions(seed: int = 0, n: int = 1200, *, effect: float = 0.0) -> pd.DataFrame:
    """Val and test rows of a two-label model; ``effect`` weakens the effusion signal in women."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "image_id": [f"img{i:05d}" for i in range(n)],
            "patient_id": [f"pat{i // 2:05d}" for i in range(n)],
            "split": np.where(np.arange(n) // 2 % 4 == 0, "val", "test"),
            "age": rng.integers(20, 95, n).astype(float),
            "sex": rng.choice(["F", "M"], n),
        }
    )
    for label in LABELS:
        y = (rng.random(n) < 0.35).astype(int)
        signal = 0.8 - (effect * (frame["sex"] == "F") if label == "effusion" else 0.0)
        frame[f"true_{label}"] = y
        frame[f"score_{label}"] = 1 / (1 + np.exp(-(signal * (2 * y - 1) + rng.normal(size=n))))
    frame["comorbidity"] = frame[[f"true_{label}" for label in LABELS]].sum(axis=1)
    return frame


def rows(table, **key) -> pd.DataFrame:
    mask = np.ones(len(table), dtype=bool)
    for column, value in key.items():
        mask &= table[column] == value
    return table[mask]


def value(table, **key) -> float:
    found = rows(table, **key)
    assert len(found) == 1, key
    return float(found["value"].iloc[0])


@pytest.fixture(scope="module")
def metrics():
    return group_metrics(predictions(), THRESHOLDS, SPEC, n_bootstrap=200, seed=5)


def test_bins_and_groups_keep_unknown_and_unbinned_apart():
    assert bin_labels([0, 30, 60]) == ["[0, 30)", "[30, 60)"]
    assert bin_labels([0, 1, 2, math.inf])[-1] == "≥2"
    rows_ = pd.DataFrame(
        {"age": [29.9, 30, 99, 100, np.nan], "sex": ["F", "M", None, "X", "F"], "comorbidity": [0, 1, 2, 5, 0]}
    )
    groups = assign_groups(rows_, SPEC)
    assert groups["age"].tolist() == ["[0, 30)", "[30, 60)", "[80, 100)", NOT_BINNED, UNKNOWN]
    assert groups["sex"].tolist() == ["F", "M", UNKNOWN, UNKNOWN, "F"]
    assert groups["comorbidity"].tolist() == ["0", "1", "≥2", "≥2", "0"]
    assert groups["age×sex"].tolist() == ["[0, 30) & F", "[30, 60) & M", UNKNOWN, UNKNOWN, UNKNOWN]


def test_a_dataset_without_demographics_has_only_the_unknown_group():
    groups = assign_groups(pd.DataFrame({"comorbidity": [0, 1]}), SPEC)
    assert set(groups["age"]) == set(groups["sex"]) == {UNKNOWN}


@pytest.mark.parametrize(
    "attributes, intersections, message",
    [
        ({"age": {"bins": [0, 50, 40]}}, [], "fairness.attributes.age.bins"),
        ({"age": {"bins": [0, 50, 100], "labels": ["young"]}}, [], "fairness.attributes.age.labels"),
        ({"age": {"bins": [0, 50, 100], "labels": ["a", "a"]}}, [], "must be distinct"),
        ({"age": {"bins": [0, 50, 100], "labels": ["a & b", "c"]}}, [], "must not contain '&'"),
        ({"age": {"bins": [0, 50, 100]}}, [["age", "sex"]], r"fairness.intersections\[0\]"),
    ],
)
def test_bad_subgroup_specs_name_the_key(attributes, intersections, message):
    with pytest.raises(ConfigError, match=message):
        check_fairness_spec({"attributes": attributes, "intersections": intersections})


def test_group_auroc_and_rates_equal_scikit_learn_and_fairlearn(metrics):
    frame = predictions()
    test = frame[frame["split"] == "test"]
    for label in LABELS:
        y, s = test[f"true_{label}"], test[f"score_{label}"]
        called = (s >= THRESHOLDS[label]).astype(int)
        by_sex = MetricFrame(
            metrics={
                "tpr": true_positive_rate,
                "fpr": false_positive_rate,
                "selection_rate": selection_rate,
                "accuracy": accuracy_score,
            },
            y_true=y,
            y_pred=called,
            sensitive_features=test["sex"],
        ).by_group
        for sex in ("F", "M"):
            member = test["sex"] == sex
            key = {"attribute": "sex", "group": sex, "label": label}
            assert value(metrics, metric="auroc", **key) == pytest.approx(roc_auc_score(y[member], s[member]))
            for name in ("tpr", "fpr", "selection_rate", "accuracy"):
                assert value(metrics, metric=name, **key) == pytest.approx(by_sex.loc[sex, name])
            assert value(metrics, metric="fnr", **key) == pytest.approx(1 - by_sex.loc[sex, "tpr"])
        overall = {"attribute": "overall", "group": "all", "label": label}
        assert value(metrics, metric="auroc", **overall) == pytest.approx(roc_auc_score(y, s))


def test_calibration_error_and_underdiagnosis_follow_their_definitions(metrics):
    test = predictions().query("split == 'test'")
    y, p = test["true_nodule"].to_numpy(), test["score_nodule"].to_numpy()
    bins = np.minimum((p * 10).astype(int), 9)
    ece = sum(abs((y[bins == b] - p[bins == b]).sum()) for b in range(10)) / len(y)
    assert value(metrics, attribute="overall", label="nodule", metric="ece") == pytest.approx(ece)
    truth = test[[f"true_{label}" for label in LABELS]].to_numpy() == 1
    called = np.column_stack([test[f"score_{label}"] >= THRESHOLDS[label] for label in LABELS])
    sick = truth.any(axis=1)
    expected = (~called.any(axis=1) & sick).sum() / sick.sum()
    assert value(metrics, attribute="overall", label="any", metric="underdiagnosis_rate") == pytest.approx(expected)


def test_fairness_differences_equal_fairlearn(metrics):
    test = predictions().query("split == 'test'")
    derived = derived_quantities(metrics)
    for attribute in ("sex", "age"):
        groups = assign_groups(test, SPEC)[attribute]
        for label in LABELS:
            y, called = test[f"true_{label}"], (test[f"score_{label}"] >= THRESHOLDS[label]).astype(int)
            key = {"kind": "fairness", "attribute": attribute, "label": label}
            reference = {
                "statistical_parity_difference": demographic_parity_difference,
                "equal_opportunity_difference": equal_opportunity_difference,
                "equalized_odds_difference": equalized_odds_difference,
            }
            for name, function in reference.items():
                assert value(derived, metric=name, **key) == pytest.approx(
                    function(y, called, sensitive_features=groups)
                ), (attribute, label, name)


def test_gaps_follow_the_reference_study(metrics):
    derived = derived_quantities(metrics)
    key = {"label": "effusion", "metric": "auroc"}
    female, male = (value(metrics, attribute="sex", group=g, **key) for g in ("F", "M"))
    assert value(derived, kind="gap", attribute="sex", **key) == pytest.approx(female - male)
    ages = rows(metrics, kind="group", attribute="age", **key)
    target = ages[ages["group"] == "[80, 100)"].iloc[0]
    others = ages[ages["group"] != "[80, 100)"]
    expected = target["value"] - np.average(others["value"], weights=others["n"])
    assert value(derived, kind="gap", attribute="age", group="[80, 100)", **key) == pytest.approx(expected)
    auroc_values = rows(metrics, attribute="age", label="effusion", metric="auroc")["value"]
    assert value(derived, kind="fairness", attribute="age", label="effusion", metric="auroc_gap") == pytest.approx(
        auroc_values.max() - auroc_values.min()
    )


def test_small_groups_are_not_available_with_the_reason():
    spec = {**SPEC, "min_group_size": {"positives": 60, "negatives": 1}}
    table = group_metrics(predictions(), THRESHOLDS, spec, n_bootstrap=20, seed=5)
    young = rows(table, attribute="age", group="[0, 30)", label="effusion").set_index("metric")
    assert math.isnan(young.loc["auroc", "value"]) and "positives < 60" in young.loc["auroc", "reason"]
    assert np.isnan(young.loc["auroc", "bootstrap"]).all()
    # The minimum applies per metric: the FPR and accuracy need no positives.
    assert np.isfinite(young.loc["fpr", "value"]) and np.isfinite(young.loc["accuracy", "value"])
    # Too few labels for a macro value: not available, with the reason.
    macro = rows(table, attribute="age", group="[0, 30)", label="macro", metric="auroc").iloc[0]
    assert math.isnan(macro["value"]) and macro["reason"] == "only 0 of 2 labels available"
    # An unavailable group takes no part in the gaps of the others.
    gaps = rows(derived_quantities(table), kind="gap", attribute="age", label="effusion", metric="auroc")
    assert "[0, 30)" not in set(gaps["group"])


def test_macro_values_compare_groups_on_the_same_labels():
    three = {**THRESHOLDS, "edema": 0.5}
    frame = predictions()
    rng = np.random.default_rng(9)
    frame["true_edema"] = (rng.random(len(frame)) < 0.3).astype(int)
    frame["score_edema"] = rng.random(len(frame))
    frame.loc[(frame["age"] < 30) & (frame["split"] == "test"), "true_nodule"] = 0  # no nodule positives there
    table = group_metrics(frame, three, SPEC, n_bootstrap=20, seed=5)
    macro = rows(table, attribute="age", label="macro", metric="auroc").set_index("group")
    assert (macro["reason"] == "mean over 2 of 3 labels (not: nodule)").all()
    older = rows(table, attribute="age", group="[60, 70)", metric="auroc").set_index("label")["value"]
    assert older["macro"] == pytest.approx((older["effusion"] + older["edema"]) / 2)
    assert (rows(table, attribute="sex", label="macro", metric="auroc")["reason"] == "").all()


def test_a_single_label_task_is_not_grouped_by_comorbidity():
    frame = predictions().drop(columns=["true_nodule", "score_nodule"])
    table = group_metrics(frame, {"effusion": 0.5}, SPEC, n_bootstrap=20, seed=5)
    assert "comorbidity" not in set(table["attribute"]) and "age×sex" in set(table["attribute"])
    assert attribute_notes(table, SPEC, "ct") == [
        "ct: comorbidity left out: with a single label, the number of positive findings is the label"
    ]
    assert "any" not in set(table["label"])  # no underdiagnosis rate without several findings


def test_subgroup_resamples_are_the_evaluation_resamples(metrics):
    """The overall AUROC of every resample equals evaluate_predictions': one paired bootstrap for everything."""
    _, bootstrap = evaluate_predictions(predictions(), n_bootstrap=200, seed=5)
    for label in LABELS:
        ours = rows(metrics, attribute="overall", label=label, metric="auroc")["bootstrap"].iloc[0]
        theirs = bootstrap[bootstrap["label"] == label].sort_values("resample")["auroc"].to_numpy()
        np.testing.assert_allclose(ours, theirs, rtol=1e-6)


def test_row_order_does_not_change_the_result(metrics):
    shuffled = predictions().sample(frac=1.0, random_state=3)
    again = group_metrics(shuffled, THRESHOLDS, SPEC, n_bootstrap=200, seed=5)
    np.testing.assert_allclose(again["value"], metrics["value"])
    np.testing.assert_allclose(np.stack(again["bootstrap"]), np.stack(metrics["bootstrap"]))


def test_a_planted_gap_is_flagged_and_its_dp_change_is_paired():
    fair = run_quantities(group_metrics(predictions(), THRESHOLDS, SPEC, n_bootstrap=300, seed=5))
    unfair = run_quantities(group_metrics(predictions(effect=0.6), THRESHOLDS, SPEC, n_bootstrap=300, seed=5))
    quantities = {("d", "scratch", math.inf, 1): fair, ("d", "scratch", 1.0, 1): unfair}
    summary = summarise(quantities, ci=0.95, correction="holm", alpha=0.05)
    sex_gap = rows(summary, kind="gap", attribute="sex", label="effusion", metric="auroc").set_index("epsilon")
    assert not sex_gap.loc[math.inf, "flagged"]
    assert sex_gap.loc[1.0, "flagged"] and sex_gap.loc[1.0, "mean"] < -0.1
    assert sex_gap.loc[1.0, "diff"] == pytest.approx(sex_gap.loc[1.0, "mean"] - sex_gap.loc[math.inf, "mean"])
    assert sex_gap.loc[1.0, "diff_ci_high"] < 0 and sex_gap.loc[1.0, "diff_flagged"]
    nodule = rows(summary, kind="gap", attribute="sex", label="nodule", metric="auroc").set_index("epsilon")
    assert not nodule["flagged"].any()
    # Only gaps are tested against zero: group metrics are levels, and spreads across groups cannot be negative.
    assert summary.loc[summary["kind"] != "gap", "p_zero"].isna().all()


def test_training_counts_and_correlations():
    manifest = pd.DataFrame(
        {
            "image_id": [f"i{k}" for k in range(6)],
            "age": [20, 40, 40, 65, 90, 90],
            "sex": ["F", "M", "F", "M", "F", "F"],
            "comorbidity": [0, 1, 2, 0, 1, 1],
            "label_effusion": [1, 0, 1, 1, 0, 1],
            "label_nodule": [0, 0, 1, 0, 0, 0],
        }
    )
    split = pd.DataFrame({"image_id": manifest["image_id"], "split": ["train"] * 5 + ["test"]})
    counts = training_counts(manifest, split, SPEC)
    labels = counts[counts["counted"] == "label"].set_index("label")["n_train"]
    groups = counts[counts["counted"] == "group"].set_index(["attribute", "group"])["n_train"]
    assert labels["effusion"] == 3 and labels["nodule"] == 1
    assert groups[("sex", "F")] == 3 and groups[("age", "[30, 60)")] == 2

    quantities = {
        ("d", "scratch", eps, seed): run_quantities(
            group_metrics(predictions(seed, effect=e), THRESHOLDS, SPEC, n_bootstrap=50, seed=5)
        )
        for eps, e in ((1.0, 0.6), (4.0, 0.3), (8.0, 0.0), (math.inf, 0.0))
        for seed in (1, 2)
    }
    summary = summarise(quantities, ci=0.95, correction="benjamini_hochberg", alpha=0.05)
    relations = correlations(summary, {"d": training_counts(manifest, split, SPEC)}, ci=0.95)
    sex = rows(relations, relation="epsilon_vs_gap", attribute="sex", label="effusion", metric="auroc").iloc[0]
    assert sex["n_points"] == 3 and sex["r"] > 0.5  # one point per budget (seed mean); the gap closes as ε grows
    per_label = rows(relations, relation="auroc_drop_vs_training_positives")
    assert (per_label["reason"] == "needs at least 3 points, has 2").all()


def test_a_dataset_without_demographics_is_said_to_have_nothing_to_group_by():
    frame = predictions().drop(columns=["age", "sex"])  # e.g. MedMNIST
    table = group_metrics(frame, THRESHOLDS, SPEC, n_bootstrap=20, seed=5)
    assert unrecorded_attributes(table) == ["sex", "age", "age×sex"]
    notes = attribute_notes(table, SPEC, "medmnist")
    assert (
        len(notes) == 1
        and notes[0].startswith("medmnist: sex, age, age×sex not recorded")
        and "nothing to group by" in notes[0]
    )
    derived = derived_quantities(table)
    assert set(derived["attribute"]) == {"comorbidity"}
