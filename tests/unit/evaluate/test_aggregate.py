import math

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from privfair.core.tables import markdown_table
from privfair.evaluate.aggregate import (
    per_label_table,
    privacy_record_table,
    privacy_utility_table,
    run_table,
    utility_notes,
    utility_view,
)
from privfair.evaluate.metrics import evaluate_predictions
from privfair.report.utility_figures import plot_per_label, plot_privacy_utility

N_BOOT = 300
# Score noise per epsilon: smaller budgets train noisier models.
NOISE = {1.0: 2.5, 10.0: 1.2, math.inf: 0.8}
DATASETS = {"chest": ["effusion", "edema"], "knee": ["lesion"]}


def dataset_truth(dataset: str, labels: list[str]) -> dict:
    """{split: {label: (y, difficulty)}} shared by every model of a dataset (same val/test images).

    The per-image difficulty enters every model's score, as hard cases do in practice, so the
    models' errors are correlated; that correlation is what a paired bootstrap exploits.
    """
    rng = np.random.default_rng(len(dataset))
    return {
        split: {k: ((rng.random(n) < 0.35).astype(int), rng.normal(size=n)) for k in labels}
        for split, n in (("val", 200), ("test", 400))
    }


def predictions(dataset: str, labels: list[str], noise: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng([seed, int(noise * 10)])
    parts = []
    for split, truth in dataset_truth(dataset, labels).items():
        n = len(next(iter(truth.values()))[0])
        part = pd.DataFrame(
            {
                "image_id": [f"{split}{i}" for i in range(n)],
                "patient_id": [f"p{i}" for i in range(n)],
                "split": split,
                "age": 60.0,
                "sex": "M",
                "comorbidity": 1,
            }
        )
        for k, (y, _) in truth.items():
            part[f"true_{k}"] = y
        for k, (y, difficulty) in truth.items():
            part[f"score_{k}"] = 1 / (1 + np.exp(-(2.0 * y + difficulty + noise * rng.normal(size=n))))
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def record(dataset: str, epsilon: float, seed: int) -> dict:
    private = math.isfinite(epsilon)
    return {
        "dataset": dataset,
        "epsilon": epsilon,
        "seed": seed,
        "private": private,
        "epsilon_spent": epsilon * (0.97 + 0.01 * seed) if private else math.inf,
        "delta": 1e-5 if private else None,
        "noise_multiplier": 8.0 / epsilon if private else 0.0,
        "sample_rate": 0.01,
        "steps": 1000,
        "epochs": 10,
        "accountant": "rdp" if private else None,
        "max_grad_norm": 1.0 if private else None,
        "n_train": 1000,
    }


@pytest.fixture(scope="module")
def study():
    """chest: epsilon 1, 10, inf x 3 seeds; knee: epsilon 10 (1 seed) and inf (2 seeds)."""
    grid = [("chest", eps, seed) for eps in NOISE for seed in range(3)]
    grid += [("knee", 10.0, 0), ("knee", math.inf, 0), ("knee", math.inf, 1)]
    summaries, records, bootstraps = [], [], {}
    for dataset, eps, seed in grid:
        # Same bootstrap seed for every run of a dataset: that is what pairs them.
        summary, boot = evaluate_predictions(
            predictions(dataset, DATASETS[dataset], NOISE[eps], seed), n_bootstrap=N_BOOT, seed=123
        )
        summaries.append(summary)
        records.append(record(dataset, eps, seed))
        bootstraps[(dataset, "scratch", eps, seed)] = boot
    runs = run_table(summaries, records)
    return runs, bootstraps, privacy_utility_table(runs, bootstraps)


def row(table: pd.DataFrame, dataset: str, epsilon: float, init: str = "scratch") -> pd.Series:
    return table[(table["dataset"] == dataset) & (table["epsilon"] == epsilon) & (table["init"] == init)].iloc[0]


def test_run_table_tags_summary_rows(study):
    runs, _, _ = study
    assert list(runs.columns[:4]) == ["dataset", "init", "epsilon", "seed"]
    assert (runs["init"] == "scratch").all()  # the records have no init: written before there were inits
    assert list(runs.columns[-3:]) == ["epsilon_spent", "delta", "noise_multiplier"]
    # chest: 9 runs x (2 labels x 5 metrics + macro); knee: 3 runs x (1 x 5 + 1)
    assert len(runs) == 9 * 11 + 3 * 6
    non_private = runs[runs["epsilon"] == math.inf]
    assert non_private["delta"].isna().all() and (non_private["noise_multiplier"] == 0).all()


def test_run_table_rejects_duplicates_and_length_mismatch(study):
    summary = evaluate_predictions(predictions("knee", ["lesion"], 1.0, 0), n_bootstrap=10, seed=0)[0]
    with pytest.raises(ValueError, match="duplicate runs"):
        run_table([summary, summary], [record("knee", 1.0, 0)] * 2)
    with pytest.raises(ValueError, match="1 summaries but 2"):
        run_table([summary], [record("knee", 1.0, 0)] * 2)


def test_privacy_utility_table_shape_and_order(study):
    _, _, table = study
    assert list(zip(table["dataset"], table["epsilon"])) == [
        ("chest", 1.0),
        ("chest", 10.0),
        ("chest", math.inf),
        ("knee", 10.0),
        ("knee", math.inf),
    ]
    assert list(table["n_seeds"]) == [3, 3, 3, 1, 2]
    assert np.isnan(row(table, "knee", 10.0)["auroc_sd"])
    assert row(table, "chest", 1.0)["epsilon_spent_max"] == pytest.approx(1.0 * 0.99)
    assert row(table, "chest", 1.0)["noise_multiplier_mean"] == pytest.approx(8.0)
    assert row(table, "chest", 1.0)["delta"] == 1e-5
    assert np.isnan(row(table, "chest", math.inf)["delta"])


def test_noisier_model_has_negative_drop_with_ci_below_zero(study):
    runs, bootstraps, table = study
    low, reference = row(table, "chest", 1.0), row(table, "chest", math.inf)
    macro = runs[(runs["label"] == "macro") & (runs["metric"] == "auroc") & (runs["dataset"] == "chest")]
    assert low["auroc_mean"] == pytest.approx(macro.loc[macro["epsilon"] == 1.0, "value"].mean())
    assert low["auroc_sd"] == pytest.approx(macro.loc[macro["epsilon"] == 1.0, "value"].std(ddof=1))
    assert low["drop"] == pytest.approx(low["auroc_mean"] - reference["auroc_mean"])
    assert low["drop"] < 0 and low["drop_ci_high"] < 0
    assert low["drop_ci_low"] < low["drop"] < low["drop_ci_high"]
    assert (reference["drop"], reference["drop_ci_low"], reference["drop_ci_high"]) == (0.0, 0.0, 0.0)

    # Recompute the paired CI by hand: per resample, seed-averaged macro AUROC at eps minus at inf.
    def seed_avg(eps):
        return np.mean(
            [bootstraps[("chest", "scratch", eps, s)].query("label == 'macro'")["auroc"].to_numpy() for s in range(3)],
            axis=0,
        )

    diff = seed_avg(1.0) - seed_avg(math.inf)
    assert (low["drop_ci_low"], low["drop_ci_high"]) == pytest.approx(tuple(np.percentile(diff, [2.5, 97.5])))
    assert (low["ci_low"], low["ci_high"]) == pytest.approx(tuple(np.percentile(seed_avg(1.0), [2.5, 97.5])))


def test_pairing_narrows_the_drop_ci(study):
    runs, bootstraps, table = study
    low = row(table, "chest", 1.0)
    # Unpaired: relabel the reference's resamples so they no longer match the private runs'.
    perm = np.random.default_rng(0).permutation(N_BOOT)
    unpaired = {k: b.assign(resample=perm[b["resample"]]) if k[2] == math.inf else b for k, b in bootstraps.items()}
    shuffled = row(privacy_utility_table(runs, unpaired), "chest", 1.0)
    assert low["drop_ci_high"] - low["drop_ci_low"] < shuffled["drop_ci_high"] - shuffled["drop_ci_low"]


def test_drop_is_nan_without_non_private_run(study):
    runs, bootstraps, _ = study
    table = privacy_utility_table(runs[runs["epsilon"] != math.inf], bootstraps)
    assert table[["drop", "drop_ci_low", "drop_ci_high"]].isna().all().all()


def test_missing_or_mismatched_bootstrap_is_rejected(study):
    runs, bootstraps, _ = study
    with pytest.raises(KeyError, match="knee"):
        privacy_utility_table(runs, {k: v for k, v in bootstraps.items() if k != ("knee", "scratch", 10.0, 0)})
    short = dict(bootstraps)
    short[("knee", "scratch", math.inf, 1)] = bootstraps[("knee", "scratch", math.inf, 1)].query("resample < 100")
    with pytest.raises(ValueError, match="resamples differ"):
        privacy_utility_table(runs, short)


def test_per_label_table(study):
    runs, bootstraps, _ = study
    table = per_label_table(runs, bootstraps)
    assert list(table.columns) == [
        "dataset",
        "init",
        "epsilon",
        "label",
        "n_seeds",
        "auroc_mean",
        "auroc_sd",
        "ci_low",
        "ci_high",
    ]
    assert list(table.loc[table["dataset"] == "chest", "label"][:2]) == ["effusion", "edema"]
    assert len(table) == 3 * 2 + 2 * 1 and "macro" not in set(table["label"])
    edema = runs[(runs["label"] == "edema") & (runs["metric"] == "auroc") & (runs["epsilon"] == 10.0)]
    got = table[(table["label"] == "edema") & (table["epsilon"] == 10.0)].iloc[0]
    assert got["auroc_mean"] == pytest.approx(edema["value"].mean())
    # The CI is that of the seed mean: inside the spread of the per-run CIs, narrower than their average.
    assert edema["ci_low"].min() <= got["ci_low"] and got["ci_high"] <= edema["ci_high"].max()
    assert got["ci_high"] - got["ci_low"] < (edema["ci_high"] - edema["ci_low"]).mean()


def to_markdown(table):
    return markdown_table(utility_view(table))


def test_to_markdown(study):
    runs, bootstraps, table = study
    md = to_markdown(table)
    lines = md.strip().splitlines()
    assert len(lines) == 2 + len(table)
    assert "∞ (non-private)" in md and "reference" in md
    chest_1 = row(table, "chest", 1.0)
    assert f"{chest_1['auroc_mean']:.3f} ± {chest_1['auroc_sd']:.3f}" in lines[2]
    assert f"[{chest_1['ci_low']:.2f}, {chest_1['ci_high']:.2f}]" in lines[2]
    assert "| Label |" in to_markdown(per_label_table(runs, bootstraps))
    assert "| 95% CI |" in md
    # A study of scratch runs only still shows the init, but no gain from pretraining.
    assert md.startswith("| Dataset | Init | ε |") and "| chest | scratch |" in md and "Gain" not in md


def test_the_configured_ci_level_is_used_and_labelled(study):
    runs, bootstraps, table = study
    narrow = privacy_utility_table(runs, bootstraps, ci=0.5)
    assert (narrow["ci_high"] - narrow["ci_low"] < table["ci_high"] - table["ci_low"]).all()
    assert "| 50% CI |" in to_markdown(narrow) and "[50% CI]" in to_markdown(narrow)


def assert_figures(tmp_path, name):
    png, pdf = tmp_path / f"{name}.png", tmp_path / f"{name}.pdf"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and pdf.read_bytes()[:5] == b"%PDF-"
    return imread(png)


def test_figures_for_two_datasets(study, tmp_path):
    runs, bootstraps, table = study
    plot_privacy_utility(table, tmp_path / "pu.png", tmp_path / "pu.pdf")
    image = assert_figures(tmp_path, "pu")
    assert image.shape[1] > 1500  # two 3.5-inch panels at 300 dpi
    plot_per_label(per_label_table(runs, bootstraps), tmp_path / "labels.png", tmp_path / "labels.pdf")
    assert_figures(tmp_path, "labels")


def test_figures_with_only_non_private_runs(study, tmp_path):
    runs, bootstraps, _ = study
    inf_runs = runs[(runs["epsilon"] == math.inf) & (runs["dataset"] == "knee")]
    plot_privacy_utility(privacy_utility_table(inf_runs, bootstraps), tmp_path / "pu.png", tmp_path / "pu.pdf")
    assert_figures(tmp_path, "pu")
    plot_per_label(per_label_table(inf_runs, bootstraps), tmp_path / "labels.png", tmp_path / "labels.pdf")
    assert_figures(tmp_path, "labels")


def test_privacy_records_show_the_noise_mode_and_the_patient_level_guarantee():
    base = {"dataset": "chest", "noise_multiplier": 1.0, "sample_rate": 0.1, "steps": 30, "epochs": 3}
    records = [
        {
            **base,
            "epsilon": 2.0,
            "seed": 1,
            "noise_mode": "secure",
            "epsilon_spent": 1.98,
            "epsilon_pld": 1.97,
            "delta": 1e-5,
            "max_images_per_patient": 2,
            "patient_epsilon": 3.96,
            "patient_delta": 2 * math.exp(1.98) * 1e-5,
        },
        {
            **base,
            "epsilon": 8.0,
            "seed": 0,
            "noise_mode": "seeded",
            "epsilon_spent": 7.9,
            "epsilon_pld": 7.89,
            "delta": 1e-5,
            "max_images_per_patient": 4,
            "patient_epsilon": 31.6,
            "patient_delta": 4 * math.exp(23.7) * 1e-5,
        },
        {
            **base,
            "epsilon": math.inf,
            "seed": 0,
            "noise_mode": None,
            "epsilon_spent": math.inf,
            "epsilon_pld": None,
            "delta": None,
            "max_images_per_patient": 4,
            "patient_epsilon": math.inf,
            "patient_delta": None,
        },
        # A record written before noise modes and patient-level fields existed.
        {**base, "epsilon": 1.0, "seed": 0, "epsilon_spent": 0.99, "delta": 1e-5, "max_images_per_patient": 1},
    ]
    numbers, shown = privacy_record_table(records)
    assert {"noise_mode", "patient_epsilon", "patient_delta"} <= set(numbers.columns)
    assert list(shown.columns[:3]) == ["Dataset", "Init", "ε target"] and set(shown["Init"]) == {"scratch"}
    assert list(shown["Noise"]) == ["—", "secure", "seeded (not for release)", "—"]
    assert list(shown["ε (PLD check)"]) == ["—", "1.97", "7.89", "—"]  # the oldest record predates the check
    assert list(shown["Patient ε (kε)"]) == ["—", "3.96", "31.6", "∞"]
    delta = list(shown["Patient δ (k·e^((k−1)ε)·δ)"])
    assert delta[0] == "—" and delta[1] == "1.45e-04" and delta[2].endswith("(no guarantee)") and delta[3] == "—"
    only_non_private = privacy_record_table(records[2:3])[1]
    assert list(only_non_private["Patient δ (k·e^((k−1)ε)·δ)"]) == ["—"]


# --- the initialisation axis: a pretrained chest model beside the scratch ones -------------------------------------

PUBLIC = "synth_cxr_public"
# (dataset, ε, seed, score noise) of the pretrained runs: better than scratch at ε = 1, on other seeds than scratch's
# (0, 1, 2); knee has no scratch run at ε = 1, so no gain there.
PRETRAINED = [("chest", 1.0, 0, 1.5), ("chest", 1.0, 5, 1.5), ("chest", math.inf, 0, 0.6), ("knee", 1.0, 0, 1.5)]


@pytest.fixture(scope="module")
def with_pretrained(study):
    runs, bootstraps, _ = study
    summaries, records, bootstraps = [], [], dict(bootstraps)
    for dataset, eps, seed, noise in PRETRAINED:
        summary, boot = evaluate_predictions(
            predictions(dataset, DATASETS[dataset], noise, seed), n_bootstrap=N_BOOT, seed=123
        )
        summaries.append(summary)
        records.append({**record(dataset, eps, seed), "init": PUBLIC})
        bootstraps[(dataset, PUBLIC, eps, seed)] = boot
    runs = pd.concat([runs, run_table(summaries, records)], ignore_index=True)
    return runs, bootstraps, privacy_utility_table(runs, bootstraps)


def test_runs_of_two_inits_at_one_budget_and_seed_are_no_duplicates(with_pretrained):
    runs, _, table = with_pretrained
    assert len(runs[(runs["dataset"] == "chest") & (runs["epsilon"] == 1.0) & (runs["seed"] == 0)]) == 2 * 11
    # scratch first within each dataset, then epsilon
    assert list(zip(table["dataset"], table["init"], table["epsilon"])) == [
        ("chest", "scratch", 1.0),
        ("chest", "scratch", 10.0),
        ("chest", "scratch", math.inf),
        ("chest", PUBLIC, 1.0),
        ("chest", PUBLIC, math.inf),
        ("knee", "scratch", 10.0),
        ("knee", "scratch", math.inf),
        ("knee", PUBLIC, 1.0),
    ]


def test_gain_from_pretraining_and_its_paired_ci_by_hand(with_pretrained):
    _, bootstraps, table = with_pretrained
    pretrained, scratch = row(table, "chest", 1.0, PUBLIC), row(table, "chest", 1.0)
    assert pretrained["gain"] == pytest.approx(pretrained["auroc_mean"] - scratch["auroc_mean"])
    assert pretrained["gain"] > 0 and pretrained["gain_ci_low"] > 0

    # Each side averaged over its own seeds (pretrained: 0 and 5; scratch: 0, 1, 2), then differenced per resample.
    def seed_avg(init, seeds):
        macro = [bootstraps[("chest", init, 1.0, s)].query("label == 'macro'")["auroc"].to_numpy() for s in seeds]
        return np.mean(macro, axis=0)

    gain = seed_avg(PUBLIC, (0, 5)) - seed_avg("scratch", (0, 1, 2))
    assert (pretrained["gain_ci_low"], pretrained["gain_ci_high"]) == pytest.approx(
        tuple(np.percentile(gain, [2.5, 97.5]))
    )
    assert pretrained["gain_n_valid"] == N_BOOT
    # The drop stays relative to the same init's non-private model.
    reference = row(table, "chest", math.inf, PUBLIC)
    assert pretrained["drop"] == pytest.approx(pretrained["auroc_mean"] - reference["auroc_mean"])
    assert reference["gain"] == pytest.approx(reference["auroc_mean"] - row(table, "chest", math.inf)["auroc_mean"])


def test_gain_is_nan_for_scratch_and_without_a_scratch_run_at_that_budget(with_pretrained):
    _, _, table = with_pretrained
    gain = ["gain", "gain_ci_low", "gain_ci_high", "gain_n_valid"]
    assert table.loc[table["init"] == "scratch", gain].isna().all().all()
    assert row(table, "knee", 1.0, PUBLIC)[gain].isna().all()
    assert np.isnan(row(table, "knee", 1.0, PUBLIC)["drop"])  # nor a non-private pretrained knee model


def test_the_view_shows_the_init_and_the_gain_with_a_note(with_pretrained):
    _, _, table = with_pretrained
    shown = utility_view(table)
    assert list(shown.columns[:3]) == ["Dataset", "Init", "ε"]
    gain = shown["Gain from pretraining (95% CI)"]
    chest = row(table, "chest", 1.0, PUBLIC)
    assert list(gain[table["dataset"] == "chest"])[:3] == ["reference"] * 3
    assert gain[(table["init"] == PUBLIC) & (table["epsilon"] == 1.0) & (table["dataset"] == "chest")].iloc[0] == (
        f"{chest['gain']:+.3f} [{chest['gain_ci_low']:.3f}, {chest['gain_ci_high']:.3f}]"
    )
    assert list(gain[table["dataset"] == "knee"]) == ["reference", "reference", "—"]  # no scratch run at ε = 1
    assert any(note.startswith("gain from pretraining:") for note in utility_notes(table))
