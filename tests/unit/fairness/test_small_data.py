"""Fairness on small data: per-label gaps where no macro gap is available, unknown and unbinned groups kept out of
every test family and of the p-value table, the labels behind each macro value named, and marks of CIs resting on
few resamples."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from helpers.rows import group_metric_row
from statsmodels.stats.multitest import multipletests

from privfair.core.tables import few_resamples_note, markdown_table
from privfair.fairness.analysis import run_quantities, summarise
from privfair.fairness.metrics import group_metrics
from privfair.fairness.subgroups import KEPT_APART
from privfair.fairness.tables import (
    fairness_metric_table,
    macro_label_sets,
    p_value_table,
    performance_gap_table,
    table_notes,
)

SPEC = {
    "attributes": {"sex": {}, "age": {"bins": [0, 50, 100]}},
    "intersections": [["age", "sex"]],
    "min_group_size": {"positives": 5, "negatives": 5},
    "ece_bins": 10,
}
LABELS = ("common", "rare_f", "rare_m", "scarce")
THRESHOLDS = dict.fromkeys(LABELS, 0.5)
N_BOOTSTRAP = 60
NOISE = {1.0: 1.2, math.inf: 0.6}
SEEDS = (1, 2)


def predictions(seed: int, noise: float, *, demographics: bool = True, n_patients: int = 120) -> pd.DataFrame:
    """Test rows of 2 images per patient. Women alone have ``rare_f``, men alone ``rare_m``, and ``scarce`` has 3
    positives in all: each sex has 2 of the 4 labels (not more than half), so no sex has a macro AUROC; a fifth of
    the patients have no recorded sex and a tenth no age."""
    rng = np.random.default_rng(0)
    sex = rng.choice(["F", "M"], n_patients).astype(object)
    sex[rng.random(n_patients) < 0.2] = None
    age = rng.integers(20, 90, n_patients).astype(float)
    age[rng.random(n_patients) < 0.1] = np.nan
    patient = np.repeat(np.arange(n_patients), 2)
    n = len(patient)
    frame = pd.DataFrame(
        {
            "image_id": [f"img{i:04d}" for i in range(n)],
            "patient_id": [f"pat{p:04d}" for p in patient],
            "split": "test",
        }
    )
    if demographics:
        frame["sex"], frame["age"] = sex[patient], age[patient]
    is_f, is_m = sex[patient] == "F", sex[patient] == "M"
    truth = {
        "common": rng.random(n) < 0.3,
        "rare_f": is_f & (rng.random(n) < 0.3),
        "rare_m": is_m & (rng.random(n) < 0.3),
        "scarce": np.isin(np.arange(n), [0, 50, 100]),
    }
    model = np.random.default_rng([seed, int(noise * 10)])
    for label in LABELS:
        y = truth[label].astype(int)
        frame[f"true_{label}"] = y
        frame[f"score_{label}"] = 1 / (1 + np.exp(-((2 * y - 1) + noise * model.normal(size=n))))
    return frame


def grid_summary(correction: str = "holm", **options) -> pd.DataFrame:
    quantities = {
        ("small", "scratch", epsilon, seed): run_quantities(
            group_metrics(predictions(seed, noise, **options), THRESHOLDS, SPEC, n_bootstrap=N_BOOTSTRAP, seed=3)
        )
        for epsilon, noise in NOISE.items()
        for seed in SEEDS
    }
    return summarise(quantities, ci=0.95, correction=correction, alpha=0.05)


@pytest.fixture(scope="module")
def summary():
    return grid_summary()


def test_without_a_macro_gap_the_gap_table_falls_back_to_per_label_gaps(summary):
    gaps = summary[(summary["kind"] == "gap") & (summary["metric"] == "auroc")]
    assert gaps[(gaps["attribute"] == "sex") & (gaps["label"] == "macro")].empty  # the premise: no sex macro gap
    numbers, view = performance_gap_table(summary)
    sex = numbers[numbers["attribute"] == "sex"]
    assert not sex.empty and set(sex["label"]) == {"common"} and set(sex["group"]) == {"F − M"}
    assert len(sex) == len(NOISE)  # one row per budget
    assert "Label" in view.columns and list(view.columns).index("Label") == list(view.columns).index("Group") + 1
    assert (view.loc[numbers["attribute"].to_numpy() == "sex", "Label"] == "common").all()
    # Attributes that do have a macro gap keep only it.
    with_macro = set(gaps.loc[gaps["label"] == "macro", "attribute"])
    assert (numbers.loc[numbers["attribute"].isin(with_macro), "label"] == "macro").all()
    notes = table_notes("performance_gaps", summary, numbers)
    fallback = [note for note in notes if note.startswith("small, sex: no macro AUROC gap")]
    assert len(fallback) == 1 and fallback[0].endswith(": common")


def test_every_fairness_table_shows_the_init_right_after_the_dataset(summary):
    for _, view in (performance_gap_table(summary), fairness_metric_table(summary), p_value_table(summary, "holm")):
        assert list(view.columns[:2]) == ["Dataset", "Init"] and set(view["Init"]) == {"scratch"}


def test_with_macro_gaps_everywhere_there_is_no_label_column():
    rng = np.random.default_rng(1)
    rows = []
    for epsilon in (1.0, math.inf):
        for label in ("macro", "common"):
            boot = rng.normal(0.01, 0.01, 50)
            rows.append(hand_row("gap", "sex", "F − M", label, "auroc", epsilon, boot))
    numbers, view = performance_gap_table(summarise_hand(rows))
    assert set(numbers["label"]) == {"macro"} and "Label" not in view.columns


def test_unknown_groups_are_in_no_test_family(summary):
    apart = summary["group"].isin(KEPT_APART)
    # The premise: unknown groups have p-values of their own.
    assert summary.loc[apart, "p_diff"].notna().any() and summary.loc[apart, "p_zero"].isna().all()
    assert summary.loc[apart, "p_diff_adjusted"].isna().all() and not summary.loc[apart, "diff_flagged"].any()
    tested = summary[~apart].dropna(subset=["p_diff"])
    for _, members in tested[tested["metric"] == "auroc"].groupby(["dataset", "init", "kind", "label", "metric"]):
        expected = multipletests(members["p_diff"].to_numpy(), method="holm")[1]
        np.testing.assert_allclose(members["p_diff_adjusted"], expected)
    zero = summary.dropna(subset=["p_zero"])
    for _, members in zero[zero["metric"] == "auroc"].groupby(
        ["dataset", "init", "epsilon", "kind", "label", "metric"]
    ):
        np.testing.assert_allclose(members["p_zero_adjusted"], multipletests(members["p_zero"], method="holm")[1])


def test_unknown_groups_are_not_in_the_p_value_table(summary):
    numbers, view = p_value_table(summary, "holm")
    assert not numbers.empty and not numbers["group"].isin(KEPT_APART).any()
    assert not view["Group"].isin(KEPT_APART).any()
    assert any("in no test family" in note for note in table_notes("p_values", summary, numbers))


def test_a_dataset_without_demographics_has_no_unknown_rows_in_p_values():
    summary = grid_summary(demographics=False)
    numbers, _ = p_value_table(summary, "holm")
    assert set(numbers["attribute"]) == {"overall"} and set(numbers["group"]) == {"all"}
    assert summary.loc[summary["group"].isin(KEPT_APART), "p_diff_adjusted"].isna().all()
    assert not summary["diff_flagged"][summary["group"].isin(KEPT_APART)].any()


def test_macro_values_name_the_labels_they_average(summary):
    sets = macro_label_sets(summary)
    labels, overall = sets[("small", "overall")]
    assert labels == list(LABELS) and overall == ["common", "rare_f", "rare_m"]  # scarce: 3 positives < 5
    assert sets[("small", "sex")][1] is None
    numbers, _ = p_value_table(summary, "holm")
    notes = table_notes("p_values", summary, numbers)
    assert any(
        note.startswith("small: the macro AUROC of overall")
        and "averages 3 of the 4 labels (common, rare_f, rare_m)" in note
        and "privacy-utility table's macro AUROC also averages scarce" in note
        for note in notes
    )


# --- marks of CIs on few resamples ---------------------------------------------------------------------------------


def hand_row(kind, attribute, group, label, metric, epsilon, bootstrap) -> dict:
    return {**group_metric_row(kind, attribute, group, label, metric, bootstrap, n_groups=2), "epsilon": epsilon}


def summarise_hand(rows: list[dict]) -> pd.DataFrame:
    quantities = {}
    for row in rows:
        quantities.setdefault(("d", row.pop("init", "scratch"), row.pop("epsilon"), 1), []).append(row)
    return summarise(
        {key: pd.DataFrame(value) for key, value in quantities.items()}, ci=0.95, correction="holm", alpha=0.05
    )


@pytest.mark.parametrize(("undefined", "marked"), [(20, False), (21, True)])
def test_fairness_cis_are_marked_below_80_percent_of_the_resamples(undefined, marked):
    rng = np.random.default_rng(2)
    rows = []
    for epsilon in (1.0, math.inf):
        boot = rng.normal(0.05, 0.02, 100)
        if epsilon == 1.0:
            boot[:undefined] = np.nan
        rows.append(hand_row("gap", "sex", "F − M", "macro", "auroc", epsilon, boot))
        rows.append(hand_row("fairness", "sex", "all", "macro", "auroc_gap", epsilon, np.abs(boot)))
    summary = summarise_hand(rows)
    dp = summary[summary["epsilon"] == 1.0]
    assert set(dp["n_valid"]) == {100 - undefined} and set(dp["diff_n_valid"]) == {100 - undefined}
    assert set(summary["n_resamples"]) == {100}
    for table, name in ((performance_gap_table, "performance_gaps"), (fairness_metric_table, "fairness_metrics")):
        numbers, view = table(summary)
        md = markdown_table(view)
        assert (f"† {100 - undefined}/100" in md) is marked
        assert md.count("†") == (2 if marked else 0)  # the DP row's CI and change; the reference row is whole
        note = few_resamples_note([100], "")
        assert any(n.startswith(note.split(":")[0]) for n in table_notes(name, summary, numbers)) is marked
