"""The membership-inference audit: its sample, scores, metrics and ε lower bound against hand-made cases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest

from privfair.audit.membership import (
    EVALUATION,
    SCORE_COLUMNS,
    SELECTION,
    AuditError,
    calibrate,
    clopper_pearson,
    epsilon_from_rates,
    epsilon_lower_bound,
    membership_audit_table,
    sample_audit_images,
    score_run,
    tpr_at_fpr,
)
from privfair.report.release import IDENTIFIER_COLUMNS
from privfair.train.loop import save_checkpoint, train_model


def audit_sample(member_scores, nonmember_scores, seed=0):
    """Attack scores, membership and seeded halves, as epsilon_lower_bound takes them."""
    attack = np.concatenate([member_scores, nonmember_scores])
    member = np.arange(len(attack)) < len(member_scores)
    half = np.where(np.random.default_rng(seed).random(len(attack)) < 0.5, SELECTION, EVALUATION)
    return attack, member, half


def test_clopper_pearson_matches_scipys_exact_interval():
    for k, n in [(0, 50), (3, 50), (50, 50), (17, 200)]:
        low, high = clopper_pearson(k, n, 0.025)
        exact = binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
        assert low == pytest.approx(exact.low) and high == pytest.approx(exact.high)


def test_epsilon_from_rates_takes_the_larger_of_both_forms():
    assert epsilon_from_rates(0.5, 0.05, 0.0) == pytest.approx(math.log(10))
    assert epsilon_from_rates(0.95, 0.5, 0.0) == pytest.approx(math.log(0.5 / 0.05))  # the second form
    assert epsilon_from_rates(0.5, 0.5, 0.0) == pytest.approx(0.0)
    assert epsilon_from_rates(1e-9, 0.5, 1e-3) == pytest.approx(math.log(0.5 - 1e-3) - math.log(1 - 1e-9))


def test_separable_scores_reach_the_attainable_bound_and_identical_ones_prove_nothing():
    rng = np.random.default_rng(1)
    separable = epsilon_lower_bound(*audit_sample(rng.normal(10, 1, 500), rng.normal(0, 1, 500)), 1e-5, 0.95)
    assert separable["epsilon_lower"] == pytest.approx(separable["epsilon_lower_max"])
    assert 4.0 < separable["epsilon_lower"] < math.log(separable["n_evaluation_nonmembers"])

    same = epsilon_lower_bound(*audit_sample(rng.normal(0, 1, 500), rng.normal(0, 1, 500)), 1e-5, 0.95)
    assert same["epsilon_lower"] < 0.1
    assert same["epsilon_lower"] <= same["epsilon_central"] < separable["epsilon_central"]


def test_clopper_pearson_bound_is_below_the_plug_in_at_the_chosen_threshold():
    rng = np.random.default_rng(2)
    attack, member, half = audit_sample(rng.normal(1.5, 1, 400), rng.normal(0, 1, 400))
    result = epsilon_lower_bound(attack, member, half, 1e-5, 0.95)
    evaluation = half == EVALUATION
    called = attack >= result["threshold"]
    tpr = called[evaluation & member].mean()
    fpr = called[evaluation & ~member].mean()
    plug_in = float(epsilon_from_rates(tpr, fpr, 1e-5))
    assert 0 < result["epsilon_lower"] < result["epsilon_central"] < plug_in
    assert result["epsilon_lower"] < 0.95 * plug_in


def test_tpr_at_fpr_on_a_known_case():
    nonmembers = np.arange(100.0)
    members = np.array([99.5, 98.5, 50.0, 10.0])
    attack = np.concatenate([members, nonmembers])
    member = np.arange(len(attack)) < len(members)
    assert tpr_at_fpr(attack, member, 0.01) == 0.5  # threshold 98.5 calls one non-member (99) of 100
    assert tpr_at_fpr(attack, member, 0.001) == 0.25  # FPR 0: only 99.5


def split_manifest(n_train, n_test, n_val=5):
    splits = ["train"] * n_train + ["test"] * n_test + ["val"] * n_val
    return pd.DataFrame({"image_id": [f"img{i}" for i in range(len(splits))], "split": splits})


def test_audit_sample_is_seeded_disjoint_balanced_and_capped():
    manifest = split_manifest(40, 30)
    sample = sample_audit_images(manifest, 25, seed=7)
    pd.testing.assert_frame_equal(sample, sample_audit_images(manifest, 25, seed=7))
    assert not sample.equals(sample_audit_images(manifest, 25, seed=8))
    split = manifest.set_index("image_id")["split"]
    assert (split[sample.loc[sample["member"], "image_id"]] == "train").all()
    assert (split[sample.loc[~sample["member"], "image_id"]] == "test").all()
    assert sample["image_id"].is_unique and sample["member"].sum() == 25 == (~sample["member"]).sum()
    counts = sample.groupby(["member", "half"]).size()
    assert counts[(True, SELECTION)] == counts[(False, SELECTION)] == 12
    assert counts[(True, EVALUATION)] == counts[(False, EVALUATION)] == 13
    assert len(sample_audit_images(manifest, 500, seed=7)) == 2 * 30  # capped by the test split
    with pytest.raises(AuditError, match="split.parquet: .*train: 1, test: 30"):
        sample_audit_images(split_manifest(1, 30), 10, seed=0, source="split.parquet")


def test_calibration_z_scores_each_label_against_references_of_its_class():
    reference = np.array([[1.0], [3.0], [10.0], [10.0]])
    reference_labels = np.array([[1.0], [1.0], [0.0], [0.0]])  # class 0: SD 0, so centred only
    per_label = np.array([[2.0 + math.sqrt(2)], [12.0], [np.nan]])
    labels = np.array([[1.0], [0.0], [np.nan]])
    assert calibrate(per_label, labels, reference, reference_labels) == pytest.approx([1.0, 2.0, 0.0])


def fake_scores(n=40, seed=0):
    rng = np.random.default_rng(seed)
    member = np.arange(2 * n) < n
    return pd.DataFrame(
        {
            "image_id": [f"img{i}" for i in range(2 * n)],
            "member": member,
            "half": np.tile([SELECTION, EVALUATION], n),
            "loss": rng.gamma(2.0, 0.3, 2 * n) + np.where(member, 0.0, 0.3),
            "calibrated_loss": rng.normal(0, 1, 2 * n),
        }
    )


RECORD = {"dataset": "chest", "seed": 1, "epsilon": 4.0, "epsilon_spent": 3.99, "delta": 1e-4, "n_train": 100}


def test_table_holds_every_run_and_attack_and_no_identifier():
    records = [RECORD, {**RECORD, "epsilon": math.inf, "epsilon_spent": math.inf, "delta": None}]
    numbers, view, notes = membership_audit_table(records, [fake_scores(), fake_scores(seed=1)], 0.95)
    assert len(numbers) == len(view) == 4 and set(numbers["attack"]) == {"Loss", "Label-calibrated loss"}
    assert numbers.loc[numbers["epsilon"] == math.inf, "delta"].eq(0.1 / 100).all()  # the training default
    assert (numbers["epsilon_lower"] <= numbers["epsilon_lower_max"]).all()
    assert not set(IDENTIFIER_COLUMNS) & set(numbers.columns)
    text = numbers.to_csv() + view.to_csv() + " ".join(notes)
    assert "img" not in text


def test_the_table_shows_each_runs_init_and_reads_a_record_without_one_as_scratch():
    records = [{**RECORD, "init": "synth_cxr_public"}, RECORD]  # RECORD predates inits
    numbers, view, _ = membership_audit_table(records, [fake_scores(), fake_scores(seed=1)], 0.95)
    assert list(numbers["init"]) == ["scratch", "scratch", "synth_cxr_public", "synth_cxr_public"]  # scratch first
    assert list(view.columns[:2]) == ["Dataset", "Init"] and list(view["Init"]) == list(numbers["init"])
    with pytest.raises(AuditError, match="runs/x: privacy.json lacks \\['delta'\\]"):
        membership_audit_table([{k: v for k, v in RECORD.items() if k != "delta"}], [fake_scores()], 0.95, ["runs/x"])


def test_a_trained_model_is_scored_end_to_end(make_cache, training_settings, tmp_path):
    cache = make_cache(n_per_split=(48, 16, 20))
    training_settings["epochs"] = 1
    model = tmp_path / "model.pt"
    save_checkpoint(model, train_model(*cache, training_settings, epsilon=math.inf, seed=0, log=lambda _: None))
    scores = score_run(model, *cache, n_members=30, seed=3, batch_size=8, device="cpu")
    assert list(scores.columns) == SCORE_COLUMNS and len(scores) == 2 * 20  # capped by the 20 test images
    assert scores[["loss", "calibrated_loss"]].notna().all().all() and (scores["loss"] > 0).all()
    split = pd.read_parquet(cache[2]).set_index("image_id")["split"]
    assert set(split[scores.loc[scores["member"], "image_id"]]) == {"train"}
    numbers, _, _ = membership_audit_table([RECORD], [scores], 0.95)
    assert numbers["auroc"].between(0, 1).all() and (numbers["epsilon_lower"] >= 0).all()
