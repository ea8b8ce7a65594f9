"""Statistics that admit their limits: resamples behind every CI carried from the evaluation to the tables and marked
below 80%, labels with too few test positives or positive patients marked, and the labels behind the macro AUROC
named."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from privfair.core.tables import FEW_RESAMPLES_SHARE, latex_table, markdown_table
from privfair.evaluate.aggregate import (
    MIN_POSITIVE_PATIENTS,
    MIN_TEST_POSITIVES,
    per_label_table,
    privacy_utility_table,
    run_table,
    unreliable,
    utility_notes,
    utility_view,
)
from privfair.evaluate.metrics import evaluate_predictions

N_BOOT = 200


def predictions(seed: int, noise: float, *, rare_positives: int = 2, rare_patients: int = 1) -> pd.DataFrame:
    """60 test patients of 2 images. Label ``common`` is frequent; label ``rare`` has ``rare_positives`` test
    positives among ``rare_patients`` patients, so many resamples lack a positive of it."""
    rng = np.random.default_rng(0)
    parts = []
    for split, n_patients in (("val", 40), ("test", 60)):
        patients = np.repeat(np.arange(n_patients), 2)
        n = len(patients)
        part = pd.DataFrame(
            {
                "image_id": [f"{split}{i:03d}" for i in range(n)],
                "patient_id": [f"{split}p{p:03d}" for p in patients],
                "split": split,
            }
        )
        rare = np.zeros(n, dtype=int)
        if split == "test":
            # Positive images spread over the first rare_patients patients (both their images, then one more each).
            rows = [2 * p + k for k in (0, 1) for p in range(rare_patients)][:rare_positives]
            rows += [2 * p for p in range(rare_patients, rare_patients + rare_positives - len(rows))]
            rare[rows] = 1
        else:
            rare[: n // 4] = 1
        truth = {"common": (rng.random(n) < 0.4).astype(int), "rare": rare}
        model = np.random.default_rng([seed, int(noise * 10), len(split)])
        for label, y in truth.items():
            part[f"true_{label}"] = y
            part[f"score_{label}"] = 1 / (1 + np.exp(-(2 * y - 1 + noise * model.normal(size=n))))
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def record(epsilon: float, seed: int) -> dict:
    private = math.isfinite(epsilon)
    return {
        "dataset": "small",
        "epsilon": epsilon,
        "seed": seed,
        "epsilon_spent": epsilon if private else math.inf,
        "delta": 1e-5 if private else None,
        "noise_multiplier": 1.0 if private else 0.0,
    }


@pytest.fixture(scope="module")
def study():
    grid = [(epsilon, seed) for epsilon in (2.0, math.inf) for seed in (0, 1)]
    evaluated = [
        evaluate_predictions(predictions(seed, 1.0 if math.isfinite(eps) else 0.5), n_bootstrap=N_BOOT, seed=9)
        for eps, seed in grid
    ]
    runs = run_table([summary for summary, _ in evaluated], [record(*key) for key in grid])
    bootstraps = {("small", "scratch", *key): boot for key, (_, boot) in zip(grid, evaluated)}
    return runs, bootstraps


def test_evaluation_counts_test_positives_and_their_patients():
    summary, boot = evaluate_predictions(predictions(0, 1.0), n_bootstrap=N_BOOT, seed=9)
    rare = summary[summary["label"] == "rare"]
    assert (rare["n_pos"] == 2).all() and (rare["n_pos_patients"] == 1).all()  # both images of one patient
    spread = evaluate_predictions(predictions(0, 1.0, rare_positives=3), n_bootstrap=N_BOOT, seed=9)[0]
    counts = spread.loc[spread["label"] == "rare", ["n_pos", "n_pos_patients"]].drop_duplicates()
    assert counts.to_numpy().tolist() == [[3, 2]]  # two images of one patient, one of another
    common = summary[summary["label"] == "common"]
    test = predictions(0, 1.0).query("split == 'test'")
    assert (common["n_pos"] == test["true_common"].sum()).all()
    assert (common["n_pos_patients"] == test.loc[test["true_common"] == 1, "patient_id"].nunique()).all()
    macro = summary[summary["label"] == "macro"].iloc[0]
    assert math.isnan(macro["n_pos"]) and macro["n_resamples"] == N_BOOT
    rare_boot = boot[boot["label"] == "rare"]["auroc"]
    assert summary.query("label == 'rare' and metric == 'auroc'")["n_valid"].iloc[0] == rare_boot.notna().sum()
    assert rare_boot.isna().any()  # the premise: some resamples lack a positive


def test_n_valid_is_carried_and_valid_only_where_every_seed_is(study):
    runs, bootstraps = study
    # Undefine different resamples in the two seeds of ε = 2: the seed mean loses both sets.
    bootstraps = {key: boot.copy() for key, boot in bootstraps.items()}
    for seed, resamples in ((0, [0, 1, 2]), (1, [2, 3])):
        boot = bootstraps[("small", "scratch", 2.0, seed)]
        boot.loc[(boot["label"] == "macro") & boot["resample"].isin(resamples), "auroc"] = np.nan
    table = privacy_utility_table(runs, bootstraps).set_index("epsilon")
    macro = {key: b[b["label"] == "macro"].set_index("resample")["auroc"] for key, b in bootstraps.items()}
    valid = {
        eps: (macro[("small", "scratch", eps, 0)].notna() & macro[("small", "scratch", eps, 1)].notna())
        for eps in (2.0, math.inf)
    }
    assert table.loc[2.0, "n_valid"] == valid[2.0].sum()
    assert table.loc[math.inf, "n_valid"] == valid[math.inf].sum()
    assert table.loc[2.0, "drop_n_valid"] == (valid[2.0] & valid[math.inf]).sum()
    assert table.loc[math.inf, "drop_n_valid"] == valid[math.inf].sum()  # the reference against itself
    assert (table["n_resamples"] == N_BOOT).all()

    per_label = per_label_table(runs, bootstraps, reliability=True)
    rare = per_label[(per_label["label"] == "rare") & (per_label["epsilon"] == 2.0)].iloc[0]
    rare_boot = [bootstraps[("small", "scratch", 2.0, s)].query("label == 'rare'")["auroc"].to_numpy() for s in (0, 1)]
    assert rare["n_valid"] == (np.isfinite(rare_boot[0]) & np.isfinite(rare_boot[1])).sum()
    assert (rare["n_pos"], rare["n_pos_patients"], rare["n_resamples"]) == (2, 1, N_BOOT)


def test_the_marks_show_and_the_notes_explain_them(study):
    runs, bootstraps = study
    table = privacy_utility_table(runs, bootstraps)
    assert (table["n_valid"] < FEW_RESAMPLES_SHARE * N_BOOT).all()  # the premise: the rare label empties resamples
    md = markdown_table(utility_view(table))
    row = table.iloc[0]
    assert f"[{row['ci_low']:.2f}, {row['ci_high']:.2f}] † {row['n_valid']}/{N_BOOT}" in md
    notes = utility_notes(table)
    assert notes[0] == "small: the macro AUROC averages its 2 labels (common, rare)"
    assert notes[1].startswith(f"† CI from fewer than 80% of the {N_BOOT} resamples")
    assert "lacked a positive or a negative" in notes[1]
    assert r"\dag{}" in latex_table(utility_view(table), "caption")

    per_label = per_label_table(runs, bootstraps, reliability=True)
    view = utility_view(per_label)
    rare = per_label["label"] == "rare"
    assert view.loc[rare, "AUROC (mean ± SD)"].str.endswith(" ‡").all()
    assert not view.loc[~rare, "AUROC (mean ± SD)"].str.contains("‡").any()
    assert any(
        note.startswith("‡ fewer than 10 test positives or fewer than 5 distinct") for note in utility_notes(per_label)
    )


def test_without_counts_nothing_is_marked(study):
    runs, bootstraps = study
    plain = per_label_table(runs, bootstraps)
    assert not markdown_table(utility_view(plain)).count("‡") and utility_notes(plain) == []


def one_row(**counts) -> pd.DataFrame:
    row = {"dataset": "d", "epsilon": math.inf, "label": "x", "n_seeds": 1, "auroc_mean": 0.8, "auroc_sd": math.nan}
    row |= {"ci_low": 0.7, "ci_high": 0.9, "n_valid": 1000, "n_resamples": 1000, "n_pos": 50, "n_pos_patients": 40}
    return pd.DataFrame([row | counts])


@pytest.mark.parametrize(
    ("counts", "few", "unreliable_label"),
    [
        ({"n_valid": 800}, False, False),
        ({"n_valid": 799}, True, False),
        ({"n_pos": MIN_TEST_POSITIVES}, False, False),
        ({"n_pos": MIN_TEST_POSITIVES - 1}, False, True),
        ({"n_pos_patients": MIN_POSITIVE_PATIENTS}, False, False),
        ({"n_pos_patients": MIN_POSITIVE_PATIENTS - 1}, False, True),
    ],
)
def test_marks_fire_exactly_at_the_thresholds(counts, few, unreliable_label):
    table = one_row(**counts)
    view = utility_view(table).iloc[0]
    assert ("†" in view["95% CI" if "ci_level" in table else "CI"]) is few
    assert view["AUROC (mean ± SD)"].endswith("‡") is unreliable_label
    assert unreliable(table.iloc[0]) is unreliable_label
    assert len(utility_notes(table)) == few + unreliable_label
    if few:
        assert view["CI"] == "[0.70, 0.90] † 799/1000"


def test_a_well_populated_study_has_no_marks():
    grid = [(epsilon, 0) for epsilon in (2.0, math.inf)]
    evaluated = [
        evaluate_predictions(predictions(0, 1.0, rare_positives=20, rare_patients=12), n_bootstrap=N_BOOT, seed=9)
        for _ in grid
    ]
    runs = run_table([s for s, _ in evaluated], [record(*key) for key in grid])
    bootstraps = {("small", "scratch", *key): boot for key, (_, boot) in zip(grid, evaluated)}
    for table in (privacy_utility_table(runs, bootstraps), per_label_table(runs, bootstraps, reliability=True)):
        md = markdown_table(utility_view(table))
        assert "†" not in md and "‡" not in md
    assert utility_notes(privacy_utility_table(runs, bootstraps)) == [
        "small: the macro AUROC averages its 2 labels (common, rare)"
    ]
