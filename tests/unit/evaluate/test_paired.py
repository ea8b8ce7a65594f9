"""The paired helper: seed means of resamples, the change from non-private (DP − non-private), and that the
privacy-utility tables and the fairness statistics use it alike."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from helpers.predictions import model_predictions

from privfair.evaluate import aggregate
from privfair.evaluate.aggregate import privacy_utility_table, run_table
from privfair.evaluate.metrics import evaluate_predictions
from privfair.evaluate.paired import change_from_non_private, seed_mean
from privfair.fairness import analysis
from privfair.fairness.analysis import run_quantities, summarise
from privfair.fairness.metrics import group_metrics, thresholds_from_summary

SPEC = {
    "attributes": {"sex": {}},
    "intersections": [],
    "min_group_size": {"positives": 1, "negatives": 1},
    "ece_bins": 10,
}
LABELS = ("effusion", "nodule")
# Score noise per budget: the DP model is much noisier than the non-private one.
NOISE = {1.0: 2.5, math.inf: 0.4}
N_BOOTSTRAP, BOOTSTRAP_SEED = 150, 11


# --- seed_mean -----------------------------------------------------------------------------------------------------


def test_seed_mean_is_the_per_resample_mean_over_seeds():
    rng = np.random.default_rng(1)
    per_seed = [rng.random((3, 20)) for _ in range(4)]  # keys × resamples, as the fairness statistics pass them
    np.testing.assert_allclose(seed_mean(per_seed), (per_seed[0] + per_seed[1] + per_seed[2] + per_seed[3]) / 4)
    one = rng.random(5)
    np.testing.assert_array_equal(seed_mean([one]), one)


def test_a_resample_undefined_for_any_seed_is_undefined_for_the_mean():
    first, second = np.array([0.6, np.nan, 0.8, 0.7]), np.array([0.8, 0.9, 0.6, np.nan])
    result = seed_mean([first, second])
    np.testing.assert_array_equal(np.isnan(result), [False, True, False, True])
    np.testing.assert_allclose(result[[0, 2]], [0.7, 0.7])


@pytest.mark.parametrize("shapes", [[(10,), (9,)], [(2, 10), (10,)], [(2, 10), (3, 10)]])
def test_seed_mean_refuses_seeds_with_different_resamples(shapes):
    with pytest.raises(ValueError, match="different bootstrap resamples"):
        seed_mean([np.zeros(shape) for shape in shapes])


def test_seed_mean_refuses_no_seeds():
    with pytest.raises(ValueError):
        seed_mean([])


# --- change_from_non_private ---------------------------------------------------------------------------------------


def test_change_is_dp_minus_non_private_and_negative_when_dp_is_worse():
    private, non_private = np.array([0.70, 0.75, 0.80]), np.array([0.90, 0.85, 0.95])
    change = change_from_non_private(private, non_private)
    np.testing.assert_allclose(change, [-0.20, -0.10, -0.15])
    assert (change < 0).all()
    assert (change_from_non_private(non_private, private) > 0).all()  # the arguments are not interchangeable


def test_change_keeps_undefined_resamples_undefined():
    change = change_from_non_private([0.7, np.nan], [0.8, 0.9])
    assert change[0] == pytest.approx(-0.1) and np.isnan(change[1])


@pytest.mark.parametrize(("private", "non_private"), [((5,), (4,)), ((2, 5), (5,)), ((2, 5), (3, 5))])
def test_change_refuses_unpaired_shapes(private, non_private):
    with pytest.raises(ValueError, match="cannot pair"):
        change_from_non_private(np.zeros(private), np.zeros(non_private))


# --- one helper, one sign, in both stages --------------------------------------------------------------------------


def test_both_stages_use_the_one_paired_helper():
    assert aggregate.change_from_non_private is change_from_non_private is analysis.change_from_non_private
    assert aggregate.seed_mean is seed_mean is analysis.seed_mean


@pytest.fixture(scope="module")
def both_stages():
    """The privacy-utility table and the fairness summary of one grid (2 seeds × {1, ∞}), from the same resamples:
    the evaluation's macro AUROC resamples are the subgroup metrics' overall macro AUROC resamples."""
    summaries, records, bootstraps, quantities = [], [], {}, {}
    for epsilon, noise in NOISE.items():
        for seed in (0, 1):
            frame = model_predictions(LABELS, noise, seed)
            summary, bootstrap = evaluate_predictions(frame, n_bootstrap=N_BOOTSTRAP, seed=BOOTSTRAP_SEED)
            summaries.append(summary)
            records.append({"dataset": "chest", "epsilon": epsilon, "seed": seed})
            bootstraps[("chest", "scratch", epsilon, seed)] = bootstrap
            metrics = group_metrics(
                frame, thresholds_from_summary(summary), SPEC, n_bootstrap=N_BOOTSTRAP, seed=BOOTSTRAP_SEED
            )
            quantities[("chest", "scratch", epsilon, seed)] = run_quantities(metrics)
    utility = privacy_utility_table(run_table(summaries, records), bootstraps)
    fairness = summarise(quantities, ci=0.95, correction="holm", alpha=0.05)
    return utility, fairness, bootstraps


def overall_macro_auroc(fairness: pd.DataFrame, epsilon: float) -> pd.Series:
    key = (
        (fairness["kind"] == "group")
        & (fairness["attribute"] == "overall")
        & (fairness["label"] == "macro")
        & (fairness["metric"] == "auroc")
        & (fairness["epsilon"] == epsilon)
    )
    (index,) = np.flatnonzero(key)
    return fairness.iloc[index]


def test_the_drop_ci_and_the_fairness_diff_ci_agree_on_the_same_resamples(both_stages):
    utility, fairness, bootstraps = both_stages
    drop = utility[utility["epsilon"] == 1.0].iloc[0]
    diff = overall_macro_auroc(fairness, 1.0)
    # Subgroup resamples are stored as float32: agreement to single precision.
    assert diff["diff"] == pytest.approx(drop["drop"], rel=1e-5)
    assert diff["diff_ci_low"] == pytest.approx(drop["drop_ci_low"], rel=1e-5)
    assert diff["diff_ci_high"] == pytest.approx(drop["drop_ci_high"], rel=1e-5)
    assert (diff["ci_low"], diff["ci_high"]) == pytest.approx((drop["ci_low"], drop["ci_high"]), rel=1e-5)

    # And both are the percentiles of DP − non-private, formed here by hand from the evaluation's resamples.
    def macro(epsilon):
        return np.mean(
            [
                bootstraps[("chest", "scratch", epsilon, s)].query("label == 'macro'")["auroc"].to_numpy()
                for s in (0, 1)
            ],
            axis=0,
        )

    expected = np.percentile(macro(1.0) - macro(math.inf), [2.5, 97.5])
    assert (drop["drop_ci_low"], drop["drop_ci_high"]) == pytest.approx(tuple(expected))


def test_a_dp_model_worse_on_every_resample_has_a_negative_change_in_both_stages(both_stages):
    utility, fairness, bootstraps = both_stages
    change = [
        bootstraps[("chest", "scratch", 1.0, s)].query("label == 'macro'")["auroc"].to_numpy()
        - bootstraps[("chest", "scratch", math.inf, s)].query("label == 'macro'")["auroc"].to_numpy()
        for s in (0, 1)
    ]
    assert (np.stack(change) < 0).all(), "the synthetic DP model should lose on every resample"
    drop = utility[utility["epsilon"] == 1.0].iloc[0]
    diff = overall_macro_auroc(fairness, 1.0)
    assert drop["drop"] < 0 and drop["drop_ci_high"] < 0
    assert diff["diff"] < 0 and diff["diff_ci_high"] < 0
    # The non-private row is the reference of both: no change from itself.
    assert utility.loc[utility["epsilon"] == math.inf, "drop"].iloc[0] == 0.0
    assert np.isnan(overall_macro_auroc(fairness, math.inf)["diff"])
