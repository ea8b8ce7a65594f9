"""One-run canary audit (Steinke, Nasr & Jagielski 2023, "Privacy auditing with one (1) training run").

m canaries are made once per dataset; for each audited run every canary joins the training split independently with
probability ½ (seeded), the model is trained by the unchanged training code (:func:`privfair.train.job.train_and_write`,
which calibrates σ for the run's own training-set size), and the auditor, seeing only the trained model, guesses which
canaries were in. Correct guesses beyond what (ε, δ)-DP allows refute the claimed ε.

Canary design. The model is a black box here (only its outputs are seen, as for a released model), so the canaries
are crafted inputs: each is an image of independent salt-and-pepper pixels at the cache's extremes (0 and full
intensity) with a label vector drawn uniformly at random (each label 0 or 1 with probability ½, none masked). Such an
image is far out of the distribution of any medical image, so no training image teaches the model anything about it,
and two canaries are nearly orthogonal, so learning one says nothing about another; and a random label vector cannot
be predicted from the image, so the model fits a canary's labels only by having trained on it. That is the memorisation
signal the audit needs, and it is stronger than that of in-distribution canaries (mislabelled copies), whose labels
the rest of the training data argues against. Each canary is its own patient, so the split stays patient-level and the
privacy unit (one image) is one canary.

Scoring and guesses. A canary's score is minus its unweighted binary cross-entropy on its assigned labels, averaged
over the labels (higher: better fitted, more likely included). The auditor guesses "included" for the k₊ highest
scores, "excluded" for the k₋ lowest, and abstains on the rest; k₊ + k₋ = r (``audit.canary.guesses``) is fixed in the
config before any run, k₊ = ⌈r/2⌉ and k₋ = ⌊r/2⌋, so no choice is made after seeing the scores and the confidence
needs no correction for a search over k.

The bound (the paper's Theorem 5.2, with its δ term). If training is (ε, δ)-DP with respect to adding or removing one
image, the number W of correct guesses among r satisfies P[W ≥ v] ≤ f(v) + 2mδ·max_{i=1..v} (f(v − i) − f(v))/i,
where f(v) = P[Binomial(r, e^ε/(e^ε + 1)) ≥ v]. That right-hand side is a p-value for "the run is (ε, δ)-DP"; the
lower bound is the smallest ε at which it reaches β = 1 − confidence, so that every smaller ε is refuted at level β.
δ is the run's own (the accountant's); the non-private run has none and takes the training default 0.1/N_train.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch.nn.functional as F
from scipy.optimize import brentq
from scipy.stats import binom

from privfair.core.errors import ConfigError, ManifestError
from privfair.core.io import atomic_output
from privfair.core.tables import fmt_epsilon, fmt_number, view
from privfair.data.cache import UINT8_MAX, CachedImages
from privfair.data.manifest import label_columns
from privfair.train.predict import predict_logits
from privfair.train.privacy import resolve_delta

CANARY_PREFIX = "canary-"
CANARY_SPLIT = "canary"  # the split name under which every canary, included or not, is scored
GUESS_COLUMNS = ["image_id", "included", "score", "guess", "correct"]
RECORD_KEYS = ("dataset", "seed", "epsilon", "epsilon_spent", "delta", "n_train")
# Grid steps over [0, ε where the binomial tail alone reaches β]: the first crossing lies between two of them.
GRID_POINTS = 200
COPY_ROWS = 1024  # images copied at a time from the study's cache into the audit's


def check_canary_config(canary: dict) -> None:
    """What the schema cannot check of ``audit.canary``: guesses among the canaries there are.

    Args:
        canary: the ``audit.canary`` block, defaults filled in.

    Raises:
        ConfigError: ``guesses`` exceeds ``n_canaries``.
    """
    if canary["guesses"] > canary["n_canaries"]:
        raise ConfigError(
            f"audit.canary.guesses = {canary['guesses']} must be at most audit.canary.n_canaries = "
            f"{canary['n_canaries']}"
        )


def make_canaries(image_shape: tuple, dtype, labels: list[str], n_canaries: int, seed: int) -> tuple:
    """The m canaries: salt-and-pepper images at the cache's extremes, each with a random label vector.

    Args:
        image_shape: one cached image's shape, ``(channels, *spatial)``.
        dtype: the cache's dtype; uint8 caches hold full intensity as 255, float caches as 1.
        labels: the dataset's label columns (``label_<name>``).
        n_canaries: m.
        seed: seeds the images and labels.

    Returns:
        ``(images, rows)``: an array (m, *image_shape) of ``dtype``, and one manifest row per canary
        (``image_id``, ``patient_id`` and ``study_id`` all ``canary-<i>``, the label columns as int8).
    """
    rng = np.random.default_rng(seed)
    full = UINT8_MAX if np.dtype(dtype) == np.uint8 else 1
    images = (rng.integers(0, 2, size=(n_canaries, *image_shape)) * full).astype(dtype)
    ids = [f"{CANARY_PREFIX}{i:05d}" for i in range(n_canaries)]
    rows = pd.DataFrame({"image_id": ids, "patient_id": ids, "study_id": ids})
    for column in labels:
        rows[column] = rng.integers(0, 2, size=n_canaries).astype("int8")
    return images, rows


def build_canary_cache(cache_path, manifest_path, out_cache, out_manifest, n_canaries: int, seed: int) -> None:
    """The audit's cache: the study's images, then m canaries; its manifest marks them with ``canary``.

    The images are copied in blocks through memory maps, so the cache never has to fit in memory.

    Args:
        cache_path: the study's ``cache.npy``.
        manifest_path: its manifest (``cache.parquet``).
        out_cache: the audit's cache to write.
        out_manifest: the audit's manifest to write: the study's rows (``canary`` False) and one per canary.
        n_canaries: m (``audit.canary.n_canaries``).
        seed: seeds the canaries (``audit.canary.seed``).

    Raises:
        ConfigError: m is below 2 or above the number of cached images (an audit run that is mostly canaries would
            not train by the study's recipe).
        ManifestError: the cache already holds canary ids.
    """
    source = np.load(cache_path, mmap_mode="r")
    manifest = pd.read_parquet(manifest_path)
    if not 2 <= n_canaries <= len(source):
        raise ConfigError(
            f"audit.canary.n_canaries = {n_canaries} must be between 2 and the {len(source)} images of {cache_path}"
        )
    if manifest["image_id"].astype(str).str.startswith(CANARY_PREFIX).any():
        raise ManifestError(f"{manifest_path}: image ids starting with '{CANARY_PREFIX}' clash with the canaries'")
    images, rows = make_canaries(source.shape[1:], source.dtype, label_columns(manifest), n_canaries, seed)
    rows["cache_index"] = len(source) + np.arange(n_canaries)
    with atomic_output(out_cache) as partial:
        shape = (len(source) + n_canaries, *source.shape[1:])
        target = np.lib.format.open_memmap(partial, mode="w+", dtype=source.dtype, shape=shape)
        for start in range(0, len(source), COPY_ROWS):
            stop = min(start + COPY_ROWS, len(source))
            target[start:stop] = source[start:stop]
        target[len(source) :] = images
        target.flush()
        del target
    table = pd.concat([manifest.assign(canary=False), rows.assign(canary=True)], ignore_index=True)
    with atomic_output(out_manifest) as partial:
        table.to_parquet(partial, index=False)


def include_canaries(split_path, canary_manifest_path, out_split, seed) -> pd.DataFrame:
    """The audited run's split: the study's split plus each canary in ``train`` independently with probability ½.

    Args:
        split_path: the study's ``split.parquet``.
        canary_manifest_path: the audit's manifest (:func:`build_canary_cache`).
        out_split: the split to write, with the columns :func:`privfair.data.cache.load_splits` reads (``image_id``,
            ``split``); excluded canaries are not in it, so training never sees them.
        seed: seeds the draw, as :func:`numpy.random.default_rng` takes it; the rule passes the audit's seed and the
            run's.

    Returns:
        The inclusion, as :func:`read_inclusion` reads it back from ``out_split``.
    """
    split = pd.read_parquet(split_path, columns=["image_id", "split"])
    ids = _canary_ids(canary_manifest_path)
    chosen = ids[np.random.default_rng(seed).random(len(ids)) < 0.5]
    with atomic_output(out_split) as partial:
        pd.concat([split, pd.DataFrame({"image_id": chosen, "split": "train"})], ignore_index=True).to_parquet(
            partial, index=False
        )
    return pd.DataFrame({"image_id": ids, "included": np.isin(ids, chosen)})


def read_inclusion(split_path, canary_manifest_path) -> pd.DataFrame:
    """Which canaries an audited run trained on: those in its split (:func:`include_canaries`).

    Args:
        split_path: the audited run's split.
        canary_manifest_path: the audit's manifest.

    Returns:
        One row per canary, in cache order: ``image_id`` and ``included`` (bool).
    """
    ids = _canary_ids(canary_manifest_path)
    in_split = pd.read_parquet(split_path, columns=["image_id"])["image_id"]
    return pd.DataFrame({"image_id": ids, "included": np.isin(ids, in_split)})


def _canary_ids(canary_manifest_path) -> np.ndarray:
    manifest = pd.read_parquet(canary_manifest_path, columns=["image_id", "canary"])
    return manifest.loc[manifest["canary"], "image_id"].to_numpy()


def canary_scores(model, canary_manifest_path, cache_path, batch_size: int, device) -> pd.DataFrame:
    """Each canary's score: minus its mean binary cross-entropy on its assigned labels (higher: better fitted).

    Args:
        model: the audited network, on ``device``.
        canary_manifest_path: the audit's manifest (:func:`build_canary_cache`).
        cache_path: the audit's cache.
        batch_size: images per forward pass.
        device: where the batches go.

    Returns:
        ``image_id`` and ``score``, one row per canary in cache order.
    """
    manifest = pd.read_parquet(canary_manifest_path)
    manifest = manifest[manifest["canary"]].assign(split=CANARY_SPLIT)
    images = CachedImages(cache_path, manifest, CANARY_SPLIT)
    logits = predict_logits(model, images, batch_size, device)
    loss = F.binary_cross_entropy_with_logits(logits, images.labels, reduction="none").mean(dim=1)
    return pd.DataFrame({"image_id": images.rows["image_id"], "score": (-loss).numpy()})


def guess(scores: pd.DataFrame, included: pd.DataFrame, n_guesses: int) -> pd.DataFrame:
    """Guess "included" (+1) for the ⌈r/2⌉ highest scores, "excluded" (−1) for the ⌊r/2⌋ lowest, abstain (0) else.

    Args:
        scores: ``image_id``, ``score`` (:func:`canary_scores`).
        included: ``image_id``, ``included`` (:func:`include_canaries`), the truth.
        n_guesses: r (``audit.canary.guesses``).

    Returns:
        One row per canary: ``image_id, included, score, guess, correct`` (``correct`` False on abstentions).

    Raises:
        ConfigError: r is not in [1, m].
    """
    m = len(scores)
    if not 1 <= n_guesses <= m:
        raise ConfigError(f"audit.canary.guesses = {n_guesses} must be between 1 and n_canaries = {m}")
    table = scores.merge(included, on="image_id", how="inner", validate="one_to_one")
    if len(table) != m:
        raise ManifestError(f"the scores of {m} canaries match {len(table)} of the inclusion draw")
    # Stable sort: ties keep cache order, which is independent of the inclusion draw.
    order = np.argsort(-table["score"].to_numpy(), kind="stable")
    n_in, n_out = n_guesses - n_guesses // 2, n_guesses // 2
    guesses = np.zeros(m, dtype="int8")
    guesses[order[:n_in]] = 1
    guesses[order[m - n_out :]] = -1
    table["guess"] = guesses
    table["correct"] = guesses == np.where(table["included"], 1, -1)
    return table[GUESS_COLUMNS]


def p_value(m: int, r: int, v: int, epsilon: float, delta: float) -> float:
    """The paper's bound on P[at least v of r guesses correct] for an (ε, δ)-DP run with m canaries.

    f(v) + 2mδ·max_{i=1..v} (f(v − i) − f(v))/i with f(u) = P[Binomial(r, e^ε/(e^ε + 1)) ≥ u] (Theorem 5.2).

    Args:
        m: canaries, each included with probability ½.
        r: guesses made (abstentions excluded).
        v: correct guesses.
        epsilon: the ε under test, ≥ 0.
        delta: the δ under test, in [0, 1].

    Returns:
        The p-value, at most 1.

    Raises:
        ValueError: not 0 ≤ v ≤ r ≤ m, ε < 0, or δ outside [0, 1].
    """
    if not 0 <= v <= r <= m or epsilon < 0 or not 0 <= delta <= 1:
        raise ValueError(f"need 0 ≤ v ≤ r ≤ m, ε ≥ 0 and δ in [0, 1]; got m={m}, r={r}, v={v}, ε={epsilon}, δ={delta}")
    q = 1 / (1 + math.exp(-epsilon))  # accuracy of ε-DP randomised response
    tail = binom.sf(v - 1, r, q)
    if delta == 0 or v == 0:
        return min(tail, 1.0)
    below = np.cumsum(binom.pmf(v - np.arange(1, v + 1), r, q))  # f(v − i) − f(v) = P[v − i ≤ Binomial < v]
    alpha = np.max(below / np.arange(1, v + 1))
    return min(tail + 2 * m * delta * alpha, 1.0)


def epsilon_lower_bound(m: int, r: int, v: int, delta: float, confidence: float) -> float:
    """The smallest ε whose p-value (:func:`p_value`) reaches 1 − confidence: every smaller ε is refuted.

    The binomial tail grows with ε but the δ term need not, so the first crossing is bracketed on a grid from 0 to
    the ε at which the tail alone reaches β (the crossing lies below it), then found by Brent's method.

    Args:
        m: canaries.
        r: guesses.
        v: correct guesses.
        delta: the run's δ.
        confidence: 1 − β, in (0, 1).

    Returns:
        The lower bound, ≥ 0 (0 when even ε = 0 cannot be refuted).

    Raises:
        ValueError: bad counts, δ or confidence.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    beta = 1 - confidence

    def excess(eps):
        return p_value(m, r, v, eps, delta) - beta

    if excess(0.0) >= 0:
        return 0.0
    # The tail alone tends to 1 (> β) as ε grows, and the p-value is at least the tail: double until it passes β.
    ceiling = 1.0
    while binom.sf(v - 1, r, 1 / (1 + math.exp(-ceiling))) < beta:
        ceiling *= 2
    grid = np.linspace(0, ceiling, GRID_POINTS + 1)
    above = next(i for i, eps in enumerate(grid) if excess(eps) >= 0)
    return brentq(excess, grid[above - 1], grid[above], xtol=1e-9)


def audit_summary(guesses: pd.DataFrame, record: dict, confidence: float) -> dict:
    """The audit of one run: counts, the ε lower bound and the claimed ε.

    Args:
        guesses: the run's guesses (:func:`guess`).
        record: the run's privacy record (:func:`privfair.train.privacy.read_record`).
        confidence: the bound's level (``audit.canary.confidence``).

    Returns:
        The record's ``dataset, seed, epsilon, epsilon_spent, delta, n_train``, then ``m``, ``n_included``,
        ``r``, ``v``, ``confidence`` and ``epsilon_lower_bound``; ``delta`` is the one used (0.1/N_train for the
        non-private run).
    """
    delta = record["delta"] if record["delta"] is not None else resolve_delta(None, record["n_train"])
    m, r, v = len(guesses), int((guesses["guess"] != 0).sum()), int(guesses["correct"].sum())
    return {
        **{key: record[key] for key in RECORD_KEYS},
        "delta": delta,
        "m": m,
        "n_included": int(guesses["included"].sum()),
        "r": r,
        "v": v,
        "confidence": confidence,
        "epsilon_lower_bound": epsilon_lower_bound(m, r, v, delta, confidence),
    }


def canary_audit_table(summaries: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """The ``canary_audit`` table: one row per audited run, with its claimed ε and the lower bound.

    Args:
        summaries: one :func:`audit_summary` per run.

    Returns:
        ``(numbers, view, notes)`` for :func:`privfair.core.tables.write_table`; ``refuted`` is True where the lower
        bound exceeds the ε the run's accountant spent.
    """
    numbers = pd.DataFrame(summaries).sort_values(["dataset", "epsilon", "seed"], ignore_index=True)
    numbers["refuted"] = numbers["epsilon_lower_bound"] > numbers["epsilon_spent"]
    cells = {
        "Dataset": lambda row: row["dataset"],
        "ε (budget)": lambda row: fmt_epsilon(row["epsilon"]),
        "Seed": lambda row: str(row["seed"]),
        "ε spent": lambda row: fmt_number(row["epsilon_spent"], ".3f"),
        "Canaries (in)": lambda row: f"{row['m']} ({row['n_included']})",
        "Correct / guesses": lambda row: f"{row['v']} / {row['r']}",
        "ε lower bound": lambda row: fmt_number(row["epsilon_lower_bound"], ".3f"),
        "Refuted": lambda row: "yes" if row["refuted"] else "no",
    }
    level = f"{numbers['confidence'].iloc[0] * 100:.10g}%" if len(numbers) else "the configured"
    notes = [
        (
            f"the lower bound holds with {level} confidence (Steinke, Nasr & Jagielski 2023, Theorem 5.2, with the "
            "run's δ); it shows that ε is at least this much, never that the claimed ε holds"
        )
    ]
    return numbers, view(numbers, cells), notes
