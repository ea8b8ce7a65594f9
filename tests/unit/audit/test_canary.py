"""The one-run canary audit: the bound itself, and an audit that fails when the DP noise is switched off."""

from __future__ import annotations

import itertools
import math

import numpy as np
import opacus.optimizers
import pandas as pd
import pytest
import torch
from scipy.stats import binom

from privfair.audit import canary
from privfair.core.errors import ConfigError
from privfair.train.job import train_and_write
from privfair.train.predict import load_model
from privfair.train.privacy import read_record

NOISE_MODULES = [
    module
    for name, module in vars(opacus.optimizers).items()
    if not name.startswith("_") and hasattr(module, "_generate_noise")
]
CLAIMED_EPSILON = 1.0
N_CANARIES, N_GUESSES = 64, 32
LABELS = ("a", "b", "c", "d")
EPOCHS = 24


def quiet(_):
    pass


@pytest.mark.parametrize("r", [10, 32, 100])
def test_all_correct_matches_the_closed_form(r):
    # With δ = 0 and r correct of r: P[Binomial(r, p) = r] = p^r = β, so ε = ln(p / (1 − p)) with p = β^(1/r).
    p = 0.05 ** (1 / r)
    assert canary.epsilon_lower_bound(r, r, r, 0.0, 0.95) == pytest.approx(math.log(p / (1 - p)), abs=1e-7)


def test_matches_a_hand_computed_tail():
    m, r, v, delta = 200, 50, 40, 1e-4
    bound = canary.epsilon_lower_bound(m, r, v, delta, 0.95)
    q = 1 / (1 + math.exp(-bound))
    tail = sum(math.comb(r, k) * q**k * (1 - q) ** (r - k) for k in range(v, r + 1))
    pmf = [math.comb(r, k) * q**k * (1 - q) ** (r - k) for k in range(r + 1)]
    alpha = max(sum(pmf[v - j] for j in range(1, i + 1)) / i for i in range(1, v + 1))
    assert tail + 2 * m * delta * alpha == pytest.approx(0.05, abs=1e-9)
    assert binom.sf(v - 1, r, q) == pytest.approx(tail)


def test_half_correct_proves_nothing():
    assert canary.epsilon_lower_bound(1000, 1000, 500, 1e-6, 0.95) == 0.0
    assert canary.epsilon_lower_bound(1000, 1000, 540, 0.0, 0.95) < 0.1


def test_monotone_in_correct_guesses_and_guesses():
    by_v = [canary.epsilon_lower_bound(500, 100, v, 1e-5, 0.95) for v in range(60, 101, 5)]
    assert all(a < b for a, b in itertools.pairwise(by_v))
    by_r = [canary.epsilon_lower_bound(500, r, r, 1e-5, 0.95) for r in (10, 20, 50, 100, 200)]
    assert all(a < b for a, b in itertools.pairwise(by_r))


def test_delta_weakens_the_bound():
    assert canary.epsilon_lower_bound(100, 50, 50, 1e-3, 0.95) < canary.epsilon_lower_bound(100, 50, 50, 0.0, 0.95)


def test_bad_counts_are_refused():
    with pytest.raises(ValueError, match="v ≤ r ≤ m"):
        canary.p_value(10, 20, 5, 1.0, 0.0)
    with pytest.raises(ValueError, match="confidence"):
        canary.epsilon_lower_bound(10, 10, 10, 0.0, 1.0)


def test_config_errors_name_the_key(make_cache, tmp_path):
    cache, manifest, _ = make_cache()
    with pytest.raises(ConfigError, match="audit.canary.n_canaries"):
        canary.build_canary_cache(cache, manifest, tmp_path / "c.npy", tmp_path / "c.parquet", 10_000, seed=1)
    with pytest.raises(ConfigError, match="audit.canary.guesses = 30 must be at most audit.canary.n_canaries = 20"):
        canary.check_canary_config({"n_canaries": 20, "guesses": 30})
    scores = pd.DataFrame({"image_id": ["x", "y"], "score": [0.0, 1.0]})
    with pytest.raises(ConfigError, match="audit.canary.guesses"):
        canary.guess(scores, scores.assign(included=True)[["image_id", "included"]], 3)


def test_guesses_take_the_extremes():
    scores = pd.DataFrame({"image_id": list("abcde"), "score": [5.0, 1.0, 3.0, 4.0, 2.0]})
    included = pd.DataFrame({"image_id": list("abcde"), "included": [True, False, True, False, False]})
    table = canary.guess(scores, included, 3).set_index("image_id")
    assert table["guess"].to_dict() == {"a": 1, "b": -1, "c": 0, "d": 1, "e": 0}
    assert table["correct"].to_dict() == {"a": True, "b": True, "c": False, "d": False, "e": False}


def test_canary_cache_keeps_the_study_and_its_split(make_cache, tmp_path):
    cache, manifest, split = make_cache(labels=LABELS)
    out = tmp_path / "audit"
    out.mkdir()
    canary.build_canary_cache(cache, manifest, out / "cache.npy", out / "cache.parquet", 20, seed=3)
    included = canary.include_canaries(split, out / "cache.parquet", out / "split.parquet", seed=(4, 1))
    pd.testing.assert_frame_equal(canary.read_inclusion(out / "split.parquet", out / "cache.parquet"), included)
    images, study = np.load(out / "cache.npy"), np.load(cache)
    assert images.shape == (len(study) + 20, *study.shape[1:]) and images.dtype == study.dtype
    np.testing.assert_array_equal(images[: len(study)], study)
    assert set(np.unique(images[len(study) :])) <= {0, 1}
    audit_split = pd.read_parquet(out / "split.parquet")
    added = audit_split[audit_split["image_id"].str.startswith(canary.CANARY_PREFIX)]
    assert set(added["image_id"]) == set(included.loc[included["included"], "image_id"])
    assert (added["split"] == "train").all()
    study_split = pd.read_parquet(split, columns=["image_id", "split"])
    assert audit_split.iloc[: len(study_split)].equals(study_split)


def memorisation_cache(make_cache):
    """A study whose validation images are copies of its training images, labels random and unrelated to the image.

    The recipe keeps the epoch with the best validation AUROC; here that is the epoch that fits the training data best,
    the one whose leak the audit must catch (on a learnable task validation peaks before the canaries are learnt).
    """
    cache_path, manifest_path, split_path = make_cache(n_per_split=(64, 64, 8), labels=LABELS)
    rng = np.random.default_rng(7)
    images = rng.integers(0, 2, size=np.load(cache_path).shape).astype(np.float16)
    images[64:128] = images[:64]
    np.save(cache_path, images)
    for path in (manifest_path, split_path):
        table = pd.read_parquet(path)
        for label in LABELS:
            column = table[f"label_{label}"].to_numpy().copy()
            column[64:128] = column[:64]
            table[f"label_{label}"] = column
        table.to_parquet(path, index=False)
    return cache_path, manifest_path, split_path


def audit_run(directory, study, settings) -> dict:
    """Build the audit's cache and split, train with the unchanged job, score, guess and bound; the summary."""
    cache_path, manifest_path, split_path = study
    canary.build_canary_cache(
        cache_path, manifest_path, directory / "cache.npy", directory / "cache.parquet", N_CANARIES, seed=1
    )
    included = canary.include_canaries(split_path, directory / "cache.parquet", directory / "split.parquet", seed=2)
    outputs = {name: directory / f"{name}.out" for name in ("model", "history", "privacy")}
    train_and_write(
        directory / "cache.npy",
        directory / "cache.parquet",
        directory / "split.parquet",
        settings,
        epsilon=CLAIMED_EPSILON,
        seed=0,
        outputs=outputs,
        run={"dataset": "memorise", "seed": 0},
        provenance={},
        log=quiet,
    )
    model, _ = load_model(outputs["model"], torch.device("cpu"))
    scores = canary.canary_scores(model, directory / "cache.parquet", directory / "cache.npy", 64, torch.device("cpu"))
    guesses = canary.guess(scores, included, N_GUESSES)
    return canary.audit_summary(guesses, read_record(outputs["privacy"]), confidence=0.95)


@pytest.fixture
def one_thread():
    """One intra-op thread: the tiny network's convolutions run several times slower when threads contend."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def audit_settings(training_settings):
    training_settings["privacy"].update(accountant="rdp", delta=1e-5)  # RDP calibrates σ in milliseconds
    # Small logical batches: many steps, so that without noise the tiny network memorises its training images.
    training_settings.update(epochs=EPOCHS, logical_batch_size=8, physical_batch_size=8)
    training_settings["optimizer"]["lr"] = 0.01
    return training_settings


def no_noise(std, reference, generator=None, secure_mode=False):
    """Opacus' noise function with the noise switched off (both the plain and the secure-mode path go through it)."""
    return torch.zeros_like(reference)


@pytest.mark.usefixtures("one_thread")
def test_audit_refutes_training_without_noise_and_passes_with_it(make_cache, tmp_path, audit_settings, monkeypatch):
    study = memorisation_cache(make_cache)
    (tmp_path / "dp").mkdir()
    private = audit_run(tmp_path / "dp", study, audit_settings)
    assert private["epsilon_spent"] <= CLAIMED_EPSILON
    assert private["epsilon_lower_bound"] <= private["epsilon_spent"]

    # A test-only hook: every DP optimiser looks the function up in its module at each step; the module of the
    # plain DPOptimizer and those that import it by name (ghost clipping, per-layer clipping) are all patched.
    for module in NOISE_MODULES:
        monkeypatch.setattr(module, "_generate_noise", no_noise)
    (tmp_path / "no-noise").mkdir()
    broken = audit_run(tmp_path / "no-noise", study, audit_settings)
    assert broken["epsilon_spent"] == pytest.approx(private["epsilon_spent"])  # the accountant does not notice
    assert broken["epsilon_lower_bound"] > broken["epsilon_spent"], broken
