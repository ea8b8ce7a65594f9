"""The fairness statistics across the grid: seed means and SDs, paired CIs, p-values and their families, and
Pearson's r of ε against the gaps and of the AUROC change against training counts; each checked against numpy,
scipy or statsmodels on the same inputs."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from helpers.rows import group_metric_row
from scipy.stats import norm, pearsonr
from statsmodels.stats.multitest import multipletests

from privfair.fairness.analysis import correlations, run_quantities, summarise, training_counts
from privfair.fairness.metrics import group_metrics
from privfair.fairness.tables import correlation_table

SPEC = {
    "attributes": {"sex": {}, "age": {"bins": [0, 40, 60, 80, 100]}},
    "intersections": [],
    "min_group_size": {"positives": 5, "negatives": 5},
    "ece_bins": 10,
}
THRESHOLDS = {"effusion": 0.5, "nodule": 0.45}
SEEDS = (1, 2)
# Budget -> how much weaker the effusion signal is in women (DP widens the sex gap).
EFFECT = {1.0: 0.6, 4.0: 0.3, math.inf: 0.0}
N_BOOTSTRAP = 100
KEY = ["kind", "attribute", "group", "label", "metric"]
# The documented families of tests: "this gap is zero" per (dataset, init, ε, kind, label, metric), "DP changed it"
# per (dataset, init, kind, label, metric) across every group, attribute and budget.
ZERO_FAMILY = ["dataset", "init", "epsilon", "kind", "label", "metric"]
DIFF_FAMILY = ["dataset", "init", "kind", "label", "metric"]
PUBLIC = "synth_cxr_public"


def predictions(seed: int, effect: float, n: int = 800) -> pd.DataFrame:
    """Test rows of a two-label model over fixed patients; ``effect`` weakens the effusion signal in women."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "image_id": [f"img{i:04d}" for i in range(n)],
            "patient_id": [f"pat{i // 2:04d}" for i in range(n)],
            "split": "test",
            "age": rng.integers(20, 95, n).astype(float),
            "sex": rng.choice(["F", "M"], n),
        }
    )
    model = np.random.default_rng([seed, int(effect * 10)])
    for label in THRESHOLDS:
        y = (rng.random(n) < 0.35).astype(int)
        signal = 1.0 - (effect * (frame["sex"] == "F") if label == "effusion" else 0.0)
        frame[f"true_{label}"] = y
        frame[f"score_{label}"] = 1 / (1 + np.exp(-(signal * (2 * y - 1) + 0.7 * model.normal(size=n))))
    return frame


@pytest.fixture(scope="module")
def grid():
    """(quantities, summary) of one dataset over 2 seeds × ε ∈ {1, 4, ∞}."""
    quantities = {
        ("chest", "scratch", epsilon, seed): run_quantities(
            group_metrics(predictions(seed, effect), THRESHOLDS, SPEC, n_bootstrap=N_BOOTSTRAP, seed=5)
        )
        for epsilon, effect in EFFECT.items()
        for seed in SEEDS
    }
    return quantities, summarise(quantities, ci=0.9, correction="holm", alpha=0.05)


@pytest.fixture(scope="module")
def indexed(grid):
    """The grid's run tables indexed by quantity, for looking values up."""
    return {run: table.set_index(KEY).sort_index() for run, table in grid[0].items()}


def per_seed(indexed: dict, epsilon: float, key: tuple) -> tuple[np.ndarray, np.ndarray]:
    """(value of each seed, seed × resample array) of one quantity, read straight from the run tables."""
    found = [table.loc[key] for (_, _, e, _), table in sorted(indexed.items()) if e == epsilon]
    return np.array([f["value"] for f in found]), np.stack([np.asarray(f["bootstrap"], dtype=float) for f in found])


def select(summary: pd.DataFrame, **key) -> pd.DataFrame:
    mask = np.ones(len(summary), dtype=bool)
    for column, value in key.items():
        mask &= summary[column] == value
    return summary[mask]


# --- seed means, CIs, p-values -------------------------------------------------------------------------------------


def test_mean_sd_and_ci_are_numpys_over_seeds_and_seed_mean_resamples(grid, indexed):
    _, summary = grid
    checked = set()
    for _, row in summary.iterrows():
        values, resamples = per_seed(indexed, row["epsilon"], tuple(row[KEY]))
        seed_means = resamples.mean(axis=0)
        if not (np.isfinite(values).all() and np.isfinite(seed_means).all()):
            continue
        assert row["n_seeds"] == len(SEEDS) and row["n_valid"] == N_BOOTSTRAP
        assert row["mean"] == pytest.approx(np.mean(values))
        assert row["sd"] == pytest.approx(np.std(values, ddof=1))
        assert (row["ci_low"], row["ci_high"]) == pytest.approx(tuple(np.percentile(seed_means, [5.0, 95.0])))
        checked.add(row["kind"])
    assert checked == {"group", "gap", "fairness"}


def test_p_zero_is_a_wald_test_of_the_gaps_only(grid, indexed):
    _, summary = grid
    gaps = select(summary, kind="gap").dropna(subset=["p_zero"])
    assert len(gaps) > 10
    for _, row in gaps.iterrows():
        _, resamples = per_seed(indexed, row["epsilon"], tuple(row[KEY]))
        standard_error = np.std(resamples.mean(axis=0), ddof=1)
        assert row["p_zero"] == pytest.approx(2 * norm.sf(abs(row["mean"]) / standard_error))
    assert summary.loc[summary["kind"] != "gap", ["p_zero", "p_zero_adjusted"]].isna().all().all()
    assert not summary.loc[summary["kind"] != "gap", "flagged"].any()


def test_the_change_from_non_private_is_dp_minus_non_private(grid, indexed):
    _, summary = grid
    key = ("gap", "sex", "F − M", "effusion", "auroc")
    for epsilon in (1.0, 4.0):
        row = select(summary, epsilon=epsilon, **dict(zip(KEY, key))).iloc[0]
        dp_values, dp_resamples = per_seed(indexed, epsilon, key)
        np_values, np_resamples = per_seed(indexed, math.inf, key)
        assert row["diff"] == pytest.approx(dp_values.mean() - np_values.mean())
        change = dp_resamples.mean(axis=0) - np_resamples.mean(axis=0)
        assert (row["diff_ci_low"], row["diff_ci_high"]) == pytest.approx(tuple(np.percentile(change, [5.0, 95.0])))
    # Women lose more of the effusion signal at the stricter budget: a gap that widens is a negative change.
    assert select(summary, epsilon=1.0, **dict(zip(KEY, key)))["diff"].iloc[0] < 0
    assert select(summary, epsilon=math.inf)["diff"].isna().all()


@pytest.mark.parametrize(("correction", "statsmodels_method"), [("holm", "holm"), ("benjamini_hochberg", "fdr_bh")])
def test_p_values_are_adjusted_within_the_documented_families(grid, correction, statsmodels_method):
    quantities, _ = grid
    summary = summarise(quantities, ci=0.9, correction=correction, alpha=0.05)
    for p, family in (("p_zero", ZERO_FAMILY), ("p_diff", DIFF_FAMILY)):
        tested = summary.dropna(subset=[p])
        assert len(tested) > 0
        # The AUROC families (statsmodels' multipletests is slow to call, so not every metric's).
        for _, members in tested[tested["metric"] == "auroc"].groupby(family):
            expected = multipletests(members[p].to_numpy(), method=statsmodels_method)[1]
            np.testing.assert_allclose(members[f"{p}_adjusted"], expected, err_msg=f"{p} {family}")
        assert summary.loc[summary[p].isna(), f"{p}_adjusted"].isna().all()
    flagged = summary.dropna(subset=["p_zero_adjusted"])
    assert (flagged["flagged"] == (flagged["p_zero_adjusted"] < 0.05)).all()


def test_a_family_spans_groups_attributes_and_for_changes_budgets(grid):
    _, summary = grid
    zero = select(summary, epsilon=1.0, kind="gap", label="macro", metric="auroc").dropna(subset=["p_zero"])
    assert set(zero["attribute"]) == {"sex", "age"} and len(zero) >= 4
    expected = multipletests(zero["p_zero"].to_numpy(), method="holm")[1]
    np.testing.assert_allclose(zero["p_zero_adjusted"], expected)
    # Holm's first step multiplies the smallest p by the size of the whole family, not of its attribute alone.
    smallest = zero.loc[zero["p_zero"].idxmin()]
    assert smallest["p_zero_adjusted"] == pytest.approx(min(1.0, len(zero) * smallest["p_zero"]))

    change = select(summary, kind="group", label="macro", metric="auroc").dropna(subset=["p_diff"])
    assert set(change["epsilon"]) == {1.0, 4.0} and {"overall", "sex", "age"} <= set(change["attribute"])
    np.testing.assert_allclose(change["p_diff_adjusted"], multipletests(change["p_diff"].to_numpy(), method="holm")[1])


# --- too few valid resamples ---------------------------------------------------------------------------------------


def test_below_half_valid_resamples_there_is_no_ci_or_p_value():
    rng = np.random.default_rng(3)
    resamples = 100

    def gap(group, undefined: int, seed: int) -> dict:
        values = rng.normal(0.05, 0.02, resamples)
        if seed == SEEDS[0]:
            values[:undefined] = np.nan  # e.g. a small group missing from these resamples of one seed
        return group_metric_row("gap", "age", group, "macro", "auroc", values, value=0.05)

    undefined = {"below half": 51, "exactly half": 50, "all": 0}
    quantities = {
        ("d", "scratch", math.inf, seed): pd.DataFrame([gap(group, n, seed) for group, n in undefined.items()])
        for seed in SEEDS
    }
    summary = summarise(quantities, ci=0.95, correction="holm", alpha=0.05).set_index("group")
    assert summary["n_valid"].to_dict() == {"below half": 49, "exactly half": 50, "all": 100}
    assert summary.loc["below half", ["ci_low", "ci_high", "p_zero"]].isna().all()
    assert summary.loc["below half", "mean"] == pytest.approx(0.05)  # the point estimate is still given
    for group in ("exactly half", "all"):
        seed_means = np.mean(
            [quantities[("d", "scratch", math.inf, s)].set_index("group").loc[group, "bootstrap"] for s in SEEDS], 0
        )
        finite = seed_means[np.isfinite(seed_means)]
        assert (summary.loc[group, "ci_low"], summary.loc[group, "ci_high"]) == pytest.approx(
            tuple(np.percentile(finite, [2.5, 97.5]))
        )
        assert np.isfinite(summary.loc[group, "p_zero"])
    # The untestable row takes no part in the family: the others are adjusted as a family of two.
    tested = summary.dropna(subset=["p_zero"])
    np.testing.assert_allclose(tested["p_zero_adjusted"], multipletests(tested["p_zero"], method="holm")[1])


# --- correlations --------------------------------------------------------------------------------------------------

BUDGETS = (1.0, 2.0, 4.0, 8.0, math.inf)
LABEL_POSITIVES = {"rare": 10, "uncommon": 40, "common": 160, "frequent": 640}
GROUP_IMAGES = {"[0, 40)": 60, "[40, 60)": 150, "[60, 80)": 300, "[80, 100)": 500}


def hand_auroc(epsilon: float, count: int, seed: int, init: str = "scratch") -> float:
    """Non-private 0.9; from scratch, DP loses more for a smaller training count and a stricter budget (plus seed
    noise); pretrained, it loses a little, and more for a larger count (so the r of drop vs count turns negative)."""
    if math.isinf(epsilon):
        loss = 0.0
    elif init == "scratch":
        loss = 0.5 / (epsilon * math.sqrt(count))
    else:
        loss = 0.001 * math.sqrt(count) / epsilon
    return 0.9 - loss + 0.002 * (seed - 1.5) * (1 + count % 7)


def hand_gap(epsilon: float, seed: int, init: str = "scratch") -> float:
    """From scratch the gap shrinks as ε grows; pretrained it widens (opposite signs of r against ε)."""
    sign = -1.0 if init == "scratch" else 0.5
    return sign * 0.08 / epsilon + 0.004 * seed * math.log(epsilon) if math.isfinite(epsilon) else 0.01 * seed


@pytest.fixture(scope="module")
def hand_grid():
    """Run tables built by hand, 2 seeds × ε ∈ {1, 2, 4, 8, ∞} × init ∈ {scratch, pretrained}, with the training
    counts they relate to."""
    rng = np.random.default_rng(7)

    def noisy(value):
        return value + rng.normal(0.0, 0.01, 50)

    quantities = {}
    for init, epsilon, seed in itertools.product(("scratch", PUBLIC), BUDGETS, SEEDS):
        gap = hand_gap(epsilon, seed, init)
        rows = [group_metric_row("gap", "sex", "F − M", "macro", "auroc", noisy(gap), value=gap)]
        for label, count in LABEL_POSITIVES.items():
            value = hand_auroc(epsilon, count, seed, init)
            rows.append(group_metric_row("group", "overall", "all", label, "auroc", noisy(value), value=value))
        rows.append(group_metric_row("group", "overall", "all", "macro", "auroc", noisy(0.5), value=0.5))  # not a label
        for group, count in {**GROUP_IMAGES, "unknown": 5}.items():
            value = hand_auroc(epsilon, count, seed, init)
            rows.append(group_metric_row("group", "age", group, "macro", "auroc", noisy(value), value=value))
        quantities[("d", init, epsilon, seed)] = pd.DataFrame(rows)
    counts = pd.DataFrame(
        [
            {"counted": "label", "attribute": None, "group": None, "label": k, "n_train": v}
            for k, v in LABEL_POSITIVES.items()
        ]
        + [
            {"counted": "group", "attribute": "age", "group": k, "label": None, "n_train": v}
            for k, v in {**GROUP_IMAGES, "unknown": 5}.items()
        ]
    )
    summary = summarise(quantities, ci=0.95, correction="holm", alpha=0.05)
    return summary, correlations(summary, {"d": counts}, ci=0.95)


def test_epsilon_vs_gap_is_pearsons_r_of_the_seed_means_per_budget(hand_grid):
    _, relations = hand_grid
    row = select(relations, relation="epsilon_vs_gap", attribute="sex", init="scratch").iloc[0]
    finite = [e for e in BUDGETS if math.isfinite(e)]
    seed_means = [np.mean([hand_gap(e, s) for s in SEEDS]) for e in finite]
    expected = pearsonr(finite, seed_means)
    assert row["n_points"] == len(finite)  # one point per DP budget; ∞ is not a point
    assert row["r"] == pytest.approx(expected.statistic)
    assert row["p_value"] == pytest.approx(expected.pvalue)
    assert row["r_ci_low"] < row["r"] < row["r_ci_high"]


def test_a_label_that_loses_more_with_fewer_positives_gives_a_positive_r(hand_grid):
    summary, relations = hand_grid
    per_label = select(relations, relation="auroc_drop_vs_training_positives", init="scratch").set_index("epsilon")
    assert sorted(per_label.index) == [1.0, 2.0, 4.0, 8.0]
    for epsilon in (1.0, 8.0):
        drops = [
            np.mean([hand_auroc(epsilon, c, s) for s in SEEDS]) - np.mean([hand_auroc(math.inf, c, s) for s in SEEDS])
            for c in LABEL_POSITIVES.values()
        ]
        assert max(drops) < 0  # DP − non-private: every label loses
        expected = pearsonr(list(LABEL_POSITIVES.values()), drops)
        assert per_label.loc[epsilon, "n_points"] == len(LABEL_POSITIVES)  # the macro row is no label
        assert per_label.loc[epsilon, "r"] == pytest.approx(expected.statistic)
        assert per_label.loc[epsilon, "r"] > 0
    # The summary's diff is the same DP − non-private that the relation used.
    rare = select(summary, kind="group", attribute="overall", label="rare", epsilon=1.0, init="scratch")["diff"].iloc[0]
    assert rare == pytest.approx(np.mean([hand_auroc(1.0, 10, s) - hand_auroc(math.inf, 10, s) for s in SEEDS]))
    assert rare < 0


def test_a_group_that_loses_more_with_fewer_training_images_gives_a_positive_r(hand_grid):
    _, relations = hand_grid
    row = select(relations, relation="auroc_drop_vs_training_images", attribute="age", epsilon=2.0, init="scratch")
    row = row.iloc[0]
    drops = [
        np.mean([hand_auroc(2.0, c, s) - hand_auroc(math.inf, c, s) for s in SEEDS]) for c in GROUP_IMAGES.values()
    ]
    assert row["n_points"] == len(GROUP_IMAGES)  # the "unknown" group is kept apart
    assert row["r"] == pytest.approx(pearsonr(list(GROUP_IMAGES.values()), drops).statistic)
    assert row["r"] > 0


def test_pearsons_r_is_computed_per_init_and_tells_them_apart(hand_grid):
    summary, relations = hand_grid
    finite = [e for e in BUDGETS if math.isfinite(e)]
    r = {}
    for init in ("scratch", PUBLIC):
        row = select(relations, relation="epsilon_vs_gap", attribute="sex", init=init).iloc[0]
        seed_means = [np.mean([hand_gap(e, s, init) for s in SEEDS]) for e in finite]
        assert row["n_points"] == len(finite)  # the inits are not pooled
        assert row["r"] == pytest.approx(pearsonr(finite, seed_means).statistic)
        drops = [
            np.mean([hand_auroc(1.0, c, s, init) - hand_auroc(math.inf, c, s, init) for s in SEEDS])
            for c in LABEL_POSITIVES.values()
        ]
        drop = select(relations, relation="auroc_drop_vs_training_positives", init=init, epsilon=1.0).iloc[0]
        assert drop["r"] == pytest.approx(pearsonr(list(LABEL_POSITIVES.values()), drops).statistic)
        r[init] = (row["r"], drop["r"])
    assert r["scratch"][0] > 0 > r[PUBLIC][0] and r["scratch"][1] > 0 > r[PUBLIC][1]
    # Each init's DP models are compared with its own non-private model, and tested in families of their own.
    pretrained = select(summary, kind="group", attribute="overall", label="rare", epsilon=1.0, init=PUBLIC)
    assert pretrained["diff"].iloc[0] == pytest.approx(
        np.mean([hand_auroc(1.0, 10, s, PUBLIC) - hand_auroc(math.inf, 10, s, PUBLIC) for s in SEEDS])
    )
    shown = correlation_table(relations)[1]
    assert list(shown.columns[:2]) == ["Dataset", "Init"] and list(dict.fromkeys(shown["Init"])) == ["scratch", PUBLIC]
    tested = summary[summary["group"] != "unknown"].dropna(subset=["p_diff"])  # unknown: in no family
    assert set(tested["init"]) == {"scratch", PUBLIC}
    for _, members in tested.groupby(DIFF_FAMILY):
        expected = multipletests(members["p_diff"].to_numpy(), method="holm")[1]
        np.testing.assert_allclose(members["p_diff_adjusted"], expected)


# --- training counts -----------------------------------------------------------------------------------------------


def test_training_counts_count_the_training_split_only():
    manifest = pd.DataFrame(
        {
            "image_id": [f"i{k}" for k in range(8)],
            "age": [25, 45, 45, 70, 90, np.nan, 30, 30],
            "sex": ["F", "M", "F", "M", "F", "F", "M", "M"],
            "label_effusion": [1, 0, 1, 1, 0, 1, 1, 1],
            "label_nodule": [0, 0, 1, 0, 0, 0, 1, 1],
        }
    )
    split = pd.DataFrame({"image_id": manifest["image_id"], "split": ["train"] * 6 + ["val", "test"]})
    counts = training_counts(manifest, split, SPEC)
    train = manifest.iloc[:6]
    labels = counts[counts["counted"] == "label"].set_index("label")["n_train"].to_dict()
    assert labels == {"effusion": int(train["label_effusion"].sum()), "nodule": int(train["label_nodule"].sum())}
    groups = counts[counts["counted"] == "group"].set_index(["attribute", "group"])["n_train"]
    assert groups[("sex", "F")] == 4 and groups[("sex", "M")] == 2
    assert groups[("age", "[40, 60)")] == 2 and groups[("age", "unknown")] == 1
    assert groups.groupby(level="attribute").sum().to_dict() == {"age": 6, "sex": 6}


def test_the_resamples_behind_every_ci_are_reported(grid):
    _, summary = grid
    assert (summary["n_resamples"] == N_BOOTSTRAP).all()
    assert summary.loc[summary["epsilon"] == math.inf, "diff_n_valid"].isna().all()
    private = summary[np.isfinite(summary["epsilon"]) & summary["diff"].notna()]
    assert not private.empty and (private["diff_n_valid"] <= private["n_valid"]).all()
