"""Membership-inference audit of every model of the grid (rules ``audit_membership``, ``aggregate_audit``).

The privacy unit is one image. Members are a seeded sample of the training images; non-members as many test images
(the patient split keeps their patients out of training), both drawn without replacement and capped by what the
smaller split holds. Each audited image gets two scores, both losses (lower: more likely a member):

- ``loss``: the training loss of the image, :func:`privfair.train.loop.per_sample_loss` (the weighted BCE averaged
  over its known labels, positives weighted as in training by the validation split's negative/positive ratio): the
  attack of Yeom et al. (2018).
- ``calibrated_loss``: the loss calibrated for how hard the image's labels are, as difficulty-calibrated attacks do
  (Watson et al. 2022), but per label and class instead of per image with reference models, which would need
  retraining: each label's loss is z-scored against the losses of that label on reference images with the same value
  of it, and the z-scores are averaged over the image's known labels (0 when none is known). The reference images are
  a seeded sample of the validation split, at most as many as the members: population data an attacker could hold,
  on which the model never took a gradient step. The attacker thus uses the model's outputs, the audited image with
  its labels (as any loss attack does) and that reference sample, nothing else of the training data.

The empirical ε lower bound. A model trained with (ε, δ)-DP bounds every membership test: TPR ≤ e^ε FPR + δ and
1 − FPR ≤ e^ε (1 − TPR) + δ, so at every threshold ε ≥ ln((TPR − δ)/FPR) and ε ≥ ln((1 − FPR − δ)/(1 − TPR)).
Rates measured on a sample would overstate ε, so the bound takes Clopper–Pearson one-sided bounds, TPR from below and
FPR from above, each at (1 − confidence)/2: both hold at once with probability ≥ ``confidence`` (union bound). The
best threshold chosen on the same images would void that confidence, so the audited images are split, seeded, into
a selection half, on which the threshold and the form are chosen, and an evaluation half, on which the bound is
computed once. δ is the run's; a non-private run has none and takes the training default 0.1/N_train
(:func:`privfair.train.privacy.resolve_delta`). With n evaluation images per side no bound can exceed about ln(n):
a few hundred images bound ε by a few units at most, and a small bound says little. Nor does a large one prove a
broken claim by itself: members and non-members are whole patients (protected at the group-privacy kε, not ε), an
official split is no random inclusion, and one run's images are no independent trials; the canary audit
(:mod:`privfair.audit.canary`) is the test the theory backs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from scipy.stats import beta
from sklearn.metrics import roc_auc_score, roc_curve

from privfair.core.errors import PrivfairError
from privfair.core.tables import fmt_epsilon, fmt_number, view
from privfair.data.cache import CachedImages, load_splits
from privfair.data.manifest import label_names
from privfair.evaluate.runs import run_init, sort_key
from privfair.train.loop import per_sample_loss, positive_class_weights
from privfair.train.predict import load_model, predict_logits
from privfair.train.privacy import resolve_delta

# Score column of audit.parquet -> the attack's name in tables and figures.
SCORES = {"loss": "Loss", "calibrated_loss": "Label-calibrated loss"}
SCORE_COLUMNS = ["image_id", "member", "half", *SCORES]
TARGET_FPRS = (0.01, 0.001)
SELECTION, EVALUATION = "selection", "evaluation"
RECORD_KEYS = ("dataset", "seed", "epsilon", "epsilon_spent", "delta", "n_train")


class AuditError(PrivfairError, ValueError):
    """An audit cannot be made from its inputs; the message names the file."""


def sample_audit_images(manifest: pd.DataFrame, n_members: int, seed: int, source="the split") -> pd.DataFrame:
    """The audited images: members from the training split, as many non-members from the test split.

    Args:
        manifest: the cache manifest joined with the split (``image_id``, ``split``), as from
            :func:`privfair.data.cache.load_splits`.
        n_members: the members wanted; fewer when the training or the test split is smaller.
        seed: seeds the draw and the halves, so every run of a dataset audits the same images.
        source: the split file, named in errors.

    Returns:
        One row per audited image: ``image_id``, ``member`` (bool) and ``half`` (``selection`` or ``evaluation``,
        half of the members and half of the non-members each, the odd one to evaluation), members first.

    Raises:
        AuditError: fewer than 2 training or test images.
    """
    rng = np.random.default_rng(seed)
    pools = {
        split: np.sort(manifest.loc[manifest["split"] == split, "image_id"].to_numpy()) for split in ("train", "test")
    }
    n = min(n_members, *(len(pool) for pool in pools.values()))
    if n < 2:
        sizes = ", ".join(f"{split}: {len(pool)}" for split, pool in pools.items())
        raise AuditError(f"{source}: a membership audit needs 2 training and 2 test images at least ({sizes})")
    parts = []
    for split, member in (("train", True), ("test", False)):
        chosen = rng.choice(pools[split], size=n, replace=False)
        half = np.where(np.arange(n) < n // 2, SELECTION, EVALUATION)
        parts.append(pd.DataFrame({"image_id": chosen, "member": member, "half": half}))
    return pd.concat(parts, ignore_index=True)


def image_losses(model, images: CachedImages, pos_weight: torch.Tensor, batch_size: int, device) -> tuple:
    """The training loss of each image, and its part from each label.

    Args:
        model: the network, on ``device``.
        images: the images to score.
        pos_weight: the positives' weight per label, as in training.
        batch_size: images per forward pass.
        device: where the batches go.

    Returns:
        ``(loss, per_label)``: the n losses of :func:`privfair.train.loop.per_sample_loss`, and an (n, labels) array
        of each label's weighted BCE, NaN where the label is unknown.
    """
    logits = predict_logits(model, images, batch_size, device)
    target = images.labels
    per_label = torch.stack(
        [per_sample_loss(logits[:, [j]], target[:, [j]], pos_weight[[j]]) for j in range(target.shape[1])], dim=1
    )
    per_label[torch.isnan(target)] = float("nan")
    return per_sample_loss(logits, target, pos_weight).numpy(), per_label.numpy()


def calibrate(per_label: np.ndarray, labels: np.ndarray, reference: np.ndarray, reference_labels: np.ndarray):
    """Label-calibrated losses: each label's loss z-scored against the reference images with the same value of it,
    averaged over the known labels.

    Args:
        per_label: (n, labels) per-label losses of the images scored, NaN where unknown.
        labels: (n, labels) their 0/1 labels, NaN where unknown.
        reference: (m, labels) per-label losses of the reference images.
        reference_labels: (m, labels) their labels.

    Returns:
        The n calibrated losses; 0 for an image without a known label. A (label, value) with fewer than 2 reference
        losses, or all equal, is centred and scaled by nothing (mean 0, SD 1).
    """
    z = np.full(per_label.shape, np.nan)
    for j in range(per_label.shape[1]):
        for value in (0.0, 1.0):
            ref = reference[reference_labels[:, j] == value, j]
            ref = ref[np.isfinite(ref)]
            mean, sd = (ref.mean(), ref.std(ddof=1)) if len(ref) >= 2 else (0.0, 1.0)
            rows = labels[:, j] == value
            z[rows, j] = (per_label[rows, j] - mean) / (sd if sd > 0 else 1.0)
    known = np.isfinite(z)
    return np.where(known, z, 0.0).sum(axis=1) / np.maximum(known.sum(axis=1), 1)


def score_run(model_path, cache_path, manifest_path, split_path, n_members: int, seed: int, batch_size: int, device):
    """Score the audited images of one run with both attacks.

    Args:
        model_path: the run's ``model.pt``.
        cache_path: the dataset's cache (``.npy``).
        manifest_path: the cache's manifest.
        split_path: the patient split.
        n_members: members wanted (``audit.membership.n_members``).
        seed: the audit's seed (``audit.membership.seed``): the sample and the halves.
        batch_size: images per forward pass.
        device: where the model runs.

    Returns:
        One row per audited image: ``image_id``, ``member``, ``half``, ``loss``, ``calibrated_loss``.

    Raises:
        AuditError: too few images, or the model's labels differ from the cache's.
        CheckpointError: the model file is not a safe, readable checkpoint.
        ManifestError: images of the split are missing from the cache.
    """
    model, checkpoint = load_model(model_path, device)
    manifest, data = load_splits(cache_path, manifest_path, split_path, splits=("val",))
    if checkpoint["model"]["labels"] != label_names(manifest):
        raise AuditError(
            f"{model_path}: its labels {checkpoint['model']['labels']} are not the cache's {manifest_path}"
        )
    audited = sample_audit_images(manifest, n_members, seed, split_path)
    val = data["val"]
    pos_weight = positive_class_weights(val.labels)  # as in training
    rng = np.random.default_rng([seed, 1])  # a stream of its own: the audited sample stays as it is
    reference_ids = rng.choice(val.rows["image_id"], size=min(len(val), n_members), replace=False)
    scored = {}
    for split, ids in (
        ("train", audited.loc[audited["member"], "image_id"]),
        ("test", audited.loc[~audited["member"], "image_id"]),
        ("val", reference_ids),
    ):
        images = CachedImages(cache_path, manifest[manifest["image_id"].isin(ids)], split)
        scored[split] = (
            images.rows["image_id"],
            images.labels.numpy(),
            *image_losses(model, images, pos_weight, batch_size, device),
        )
    _, reference_labels, _, reference = scored.pop("val")
    tables = [
        pd.DataFrame(
            {
                "image_id": ids,
                "loss": loss,
                "calibrated_loss": calibrate(per_label, labels, reference, reference_labels),
            }
        )
        for ids, labels, loss, per_label in scored.values()
    ]
    return audited.merge(pd.concat(tables), on="image_id", how="left", validate="one_to_one")[SCORE_COLUMNS]


def clopper_pearson(successes, trials, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """One-sided Clopper–Pearson bounds of a binomial proportion, each holding with probability ≥ 1 − ``alpha``.

    Args:
        successes: counts (array-like).
        trials: the trials of each count.
        alpha: the error of each bound.

    Returns:
        ``(low, high)``: 0 as the lower bound of 0 successes, 1 as the upper bound of ``trials`` successes.
    """
    k, n = np.asarray(successes, dtype=float), np.asarray(trials, dtype=float)
    low = np.where(k > 0, beta.ppf(alpha, np.maximum(k, 1), n - k + 1), 0.0)
    high = np.where(k < n, beta.ppf(1 - alpha, k + 1, np.maximum(n - k, 1)), 1.0)
    return low, high


def epsilon_from_rates(tpr, fpr, delta: float) -> np.ndarray:
    """The ε that an attack with these rates proves: max of ln((TPR − δ)/FPR) and ln((1 − FPR − δ)/(1 − TPR)).

    Args:
        tpr: true-positive rates (array-like).
        fpr: false-positive rates, one per TPR.
        delta: the δ of the claim.

    Returns:
        One ε per pair; −inf where neither form is defined, +inf where a form divides by a zero rate.
    """
    tpr, fpr = np.asarray(tpr, dtype=float), np.asarray(fpr, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        forms = [np.log(tpr - delta) - np.log(fpr), np.log(1 - fpr - delta) - np.log(1 - tpr)]
    return np.fmax(*(np.where(np.isnan(form), -np.inf, form) for form in forms))


def _counts(member_scores: np.ndarray, nonmember_scores: np.ndarray, thresholds: np.ndarray) -> tuple:
    """Members and non-members called members (attack score ≥ threshold) at each threshold."""
    return tuple(
        len(s) - np.searchsorted(np.sort(s), thresholds, side="left") for s in (member_scores, nonmember_scores)
    )


def epsilon_lower_bound(attack: np.ndarray, member: np.ndarray, half: np.ndarray, delta: float, confidence: float):
    """The empirical ε lower bound of one attack, threshold chosen on the selection half, bound on the evaluation half.

    Args:
        attack: attack scores (higher: more likely a member), one per audited image.
        member: whether each image is a member.
        half: ``selection`` or ``evaluation`` per image.
        delta: the run's δ.
        confidence: the joint level of the two Clopper–Pearson bounds.

    Returns:
        ``epsilon_lower`` (the bound at ``confidence``, 0 when it proves nothing), ``epsilon_central`` (the same with
        median-unbiased bounds, each at 50%: a central estimate, not a bound), ``epsilon_lower_max`` (the bound a
        perfect attack would reach on these sample sizes), ``threshold``, and ``n_evaluation_members`` and
        ``n_evaluation_nonmembers``.
    """
    alpha = (1 - confidence) / 2
    selection = half == SELECTION
    groups = {
        name: (attack[rows & member], attack[rows & ~member])
        for name, rows in (("selection", selection), ("evaluation", ~selection))
    }
    chosen = groups["selection"]
    thresholds = np.unique(np.concatenate(chosen))
    tp, fp = _counts(*chosen, thresholds)
    tpr_low, _ = clopper_pearson(tp, len(chosen[0]), alpha)
    _, fpr_high = clopper_pearson(fp, len(chosen[1]), alpha)
    threshold = thresholds[np.argmax(epsilon_from_rates(tpr_low, fpr_high, delta))]
    members, nonmembers = groups["evaluation"]
    tp, fp = _counts(members, nonmembers, np.array([threshold]))
    n = (len(members), len(nonmembers))
    result = {"threshold": float(threshold), "n_evaluation_members": n[0], "n_evaluation_nonmembers": n[1]}
    # The most these sample sizes can show: every member called a member, no non-member.
    for name, counts, level in (
        ("epsilon_lower", (tp, fp), alpha),
        ("epsilon_central", (tp, fp), 0.5),
        ("epsilon_lower_max", (n[0], 0), alpha),
    ):
        tpr_low, _ = clopper_pearson(counts[0], n[0], level)
        _, fpr_high = clopper_pearson(counts[1], n[1], level)
        result[name] = max(0.0, float(np.max(epsilon_from_rates(tpr_low, fpr_high, delta))))
    return result


def tpr_at_fpr(attack: np.ndarray, member: np.ndarray, fpr: float) -> float:
    """The highest TPR of any threshold whose FPR is at most ``fpr`` (on all audited images).

    Args:
        attack: attack scores (higher: more likely a member).
        member: whether each image is a member.
        fpr: the largest false-positive rate allowed.

    Returns:
        The TPR; with fewer than 1/``fpr`` non-members only FPR = 0 qualifies.
    """
    fprs, tprs, _ = roc_curve(member, attack, drop_intermediate=False)
    return float(tprs[fprs <= fpr].max())


def run_delta(record: dict) -> float:
    """The δ an audit tests a run against: the run's, or the training default 0.1/N_train for a non-private run."""
    return record["delta"] if record["delta"] is not None else resolve_delta(None, record["n_train"])


def membership_metrics(scores: pd.DataFrame, delta: float, confidence: float) -> pd.DataFrame:
    """Both attacks' metrics on one run's audited images.

    Args:
        scores: the run's ``audit.parquet`` (:func:`score_run`).
        delta: the run's δ (:func:`run_delta`).
        confidence: the level of the ε lower bound.

    Returns:
        One row per attack: ``attack``, ``n_members``, ``n_nonmembers``, ``auroc``, ``tpr_at_fpr_0.01``,
        ``tpr_at_fpr_0.001`` and the fields of :func:`epsilon_lower_bound`.
    """
    member, half = scores["member"].to_numpy(dtype=bool), scores["half"].to_numpy()
    rows = []
    for column, attack_name in SCORES.items():
        attack = -scores[column].to_numpy(dtype=float)  # a lower loss: more likely a member
        rows.append(
            {
                "attack": attack_name,
                "n_members": int(member.sum()),
                "n_nonmembers": int((~member).sum()),
                "auroc": float(roc_auc_score(member, attack)),
                **{f"tpr_at_fpr_{fpr:g}": tpr_at_fpr(attack, member, fpr) for fpr in TARGET_FPRS},
                **epsilon_lower_bound(attack, member, half, delta, confidence),
            }
        )
    return pd.DataFrame(rows)


def membership_audit_table(records: list[dict], scores: list[pd.DataFrame], confidence: float, runs=None):
    """The ``membership_audit`` table: both attacks on every run, and no identifier of any image.

    Args:
        records: each run's privacy record (:func:`privfair.train.privacy.read_record`); only ``dataset``, ``init``
            ("scratch" when absent: :func:`privfair.evaluate.runs.run_init`), ``seed``, ``epsilon``,
            ``epsilon_spent``, ``delta`` and ``n_train`` are read.
        scores: each run's ``audit.parquet``, in the order of ``records``.
        confidence: the level of the ε lower bound (``audit.membership.confidence``).
        runs: each run's folder, named in errors (default: its position).

    Returns:
        ``(numbers, view, notes)``: one row per (dataset, init, ε, seed, attack) with the claim (``epsilon``,
        ``epsilon_spent``, ``delta``), the metrics of :func:`membership_metrics` and ``confidence``; the formatted
        view; the table's notes.

    Raises:
        AuditError: a record lacks a key, or an ``audit.parquet`` lacks a column.
    """
    runs = runs or [f"run {i}" for i in range(len(records))]
    rows = []
    for record, table, run in zip(records, scores, runs, strict=True):
        for name, missing in (
            ("privacy.json", [key for key in RECORD_KEYS if key not in record]),
            ("audit.parquet", [column for column in SCORE_COLUMNS if column not in table.columns]),
        ):
            if missing:
                raise AuditError(f"{run}: {name} lacks {missing}, which the membership audit needs")
        delta = run_delta(record)
        metrics = membership_metrics(table, delta, confidence)
        claim = {
            "dataset": record["dataset"],
            "init": run_init(record),
            "epsilon": float(record["epsilon"]),
            "seed": int(record["seed"]),
        }
        spent = record["epsilon_spent"] if record["epsilon_spent"] is not None else record["epsilon"]
        rows.append(metrics.assign(**claim, epsilon_spent=float(spent), delta=delta, confidence=confidence))
    numbers = pd.concat(rows, ignore_index=True)
    first = ["dataset", "init", "epsilon", "epsilon_spent", "delta", "seed", "attack"]
    numbers = numbers[first + [c for c in numbers.columns if c not in first]]
    attack_order = numbers["attack"].map({name: i for i, name in enumerate(SCORES.values())})
    numbers = numbers.assign(_order=attack_order).sort_values(
        ["dataset", "init", "epsilon", "seed", "_order"], key=sort_key, kind="stable"
    )
    numbers = numbers.drop(columns="_order").reset_index(drop=True)
    level = f"{confidence * 100:.10g}%"
    cells = {
        "Dataset": lambda r: r["dataset"],
        "Init": lambda r: r["init"],
        "ε (claimed)": lambda r: fmt_epsilon(r["epsilon"]),
        "Seed": lambda r: str(r["seed"]),
        "Attack": lambda r: r["attack"],
        "Members / non-members": lambda r: f"{r['n_members']} / {r['n_nonmembers']}",
        "AUROC": lambda r: fmt_number(r["auroc"], ".3f"),
        **{
            f"TPR at {fpr:.1%} FPR": (lambda r, f=fpr: fmt_number(r[f"tpr_at_fpr_{f:g}"], ".3f")) for fpr in TARGET_FPRS
        },
        f"ε lower bound ({level})": lambda r: fmt_number(r["epsilon_lower"], ".2f"),
        "ε central": lambda r: fmt_number(r["epsilon_central"], ".2f"),
        "ε attainable": lambda r: fmt_number(r["epsilon_lower_max"], ".2f"),
    }
    notes = [
        (
            f"the ε lower bound holds with {level} confidence (Clopper–Pearson; threshold chosen on half the images, "
            "bound computed on the other half). It is indicative: it never shows that a model is private, and a bound "
            "above the claimed ε is a reason to look, not proof (members are whole patients, protected at the "
            "patient-level ε; a split is no random inclusion); ε attainable is the bound a perfect attack would reach "
            "on these sample sizes"
        ),
        "ε central uses median-unbiased rates: an estimate, not a bound",
        "TPR at an FPR below 1/(non-members) is the TPR at FPR = 0",
    ]
    return numbers, view(numbers, cells), notes
