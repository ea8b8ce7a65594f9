"""The study's privacy-utility tables (rule ``aggregate``): per-run metrics combined across the grid.

A run is (dataset, init, ε, seed) (:mod:`privfair.evaluate.runs`). Seed means, the change from non-private (DP −
non-private, against the non-private run of the same init) and the gain from pretraining (pretrained − scratch, at the
same ε) are paired bootstrap quantities, formed by :mod:`privfair.evaluate.paired`.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from privfair.core.stats import percentile_ci
from privfair.core.tables import (
    CI_DIGITS,
    UNRELIABLE,
    ci_header,
    few_resamples,
    few_resamples_note,
    fmt_change,
    fmt_ci,
    fmt_epsilon,
    fmt_mean_sd,
    fmt_number,
    mark_few_resamples,
    view,
)
from privfair.evaluate.metrics import MACRO
from privfair.evaluate.paired import change_from_non_private, gain_from_pretraining, seed_mean
from privfair.evaluate.runs import RUN_KEYS, SCRATCH, run_init, run_key, sort_key

RECORD_COLUMNS = ["epsilon_spent", "delta", "noise_multiplier"]
PRIVACY_UTILITY_COLUMNS = [
    "dataset",
    "init",
    "epsilon",
    "n_seeds",
    "auroc_mean",
    "auroc_sd",
    "ci_low",
    "ci_high",
    "drop",
    "drop_ci_low",
    "drop_ci_high",
    "gain",
    "gain_ci_low",
    "gain_ci_high",
    "epsilon_spent_max",
    "delta",
    "noise_multiplier_mean",
    "ci_level",
    "n_valid",
    "drop_n_valid",
    "gain_n_valid",
    "n_resamples",
    "n_labels",
    "labels",
]
PER_LABEL_COLUMNS = ["dataset", "init", "epsilon", "label", "n_seeds", "auroc_mean", "auroc_sd", "ci_low", "ci_high"]
# Added by per_label_table(..., reliability=True): what the marks of the per-label table are judged on.
RELIABILITY_COLUMNS = ["n_valid", "n_resamples", "n_pos", "n_pos_patients"]
# A label's test AUROC is marked unreliable (‡) with fewer test positives, or fewer distinct patients among them,
# than these: the AUROC is a mean over the positives, so under 10 positives each carries more than a tenth of it;
# and a patient bootstrap over fewer than 5 positive patients draws so few distinct sets of positives that its CI
# looks narrower than the truth (docs/methods.md, "What the marks mean").
MIN_TEST_POSITIVES = 10
MIN_POSITIVE_PATIENTS = 5
WHY_FEW_RESAMPLES = "lacked a positive or a negative of some label"
GAIN_HEADER = "Gain from pretraining"


def _as_float(value) -> float:
    """Record numbers may arrive as None (e.g. delta of a non-private run) or as strings like "inf"."""
    return math.nan if value is None else float(value)


def run_table(summaries: list[pd.DataFrame], records: list[dict]) -> pd.DataFrame:
    """Stack per-run summaries (from ``evaluate_predictions``), each tagged with its privacy record.

    Args:
        summaries: one ``summary`` of :func:`privfair.evaluate.metrics.evaluate_predictions` per run.
        records: the runs' privacy records (:func:`privfair.train.privacy.read_record`), in the same order; each
            needs ``dataset``, ``epsilon`` and ``seed``, may have ``init`` ("scratch" when absent:
            :func:`privfair.evaluate.runs.run_init`), and may have ``epsilon_spent``, ``delta`` and
            ``noise_multiplier`` (NaN when absent or None).

    Returns:
        One row per (run, label, metric): columns ``dataset, init, epsilon, seed`` + the summary columns +
        ``epsilon_spent, delta, noise_multiplier``.
    """
    if len(summaries) != len(records):
        raise ValueError(f"got {len(summaries)} summaries but {len(records)} privacy records")
    if not summaries:
        raise ValueError("run_table needs at least one run")
    tags = [
        {
            **dict(zip(RUN_KEYS, run_key(record))),
            **{key: _as_float(record.get(key)) for key in RECORD_COLUMNS},
        }
        for record in records
    ]
    keys = pd.DataFrame(tags)[RUN_KEYS]
    duplicated = keys[keys.duplicated()]
    if not duplicated.empty:
        raise ValueError(f"duplicate runs (dataset, init, epsilon, seed): {duplicated.to_dict('records')}")
    runs = pd.concat([summary.assign(**tag) for summary, tag in zip(summaries, tags)], ignore_index=True)
    summary_columns = [c for c in summaries[0].columns if c not in RUN_KEYS + RECORD_COLUMNS]
    return runs[RUN_KEYS + summary_columns + RECORD_COLUMNS]


def _macro_auroc(runs: pd.DataFrame) -> pd.DataFrame:
    return runs[(runs["label"] == MACRO) & (runs["metric"] == "auroc")]


def _seed_averaged_bootstrap(
    bootstraps: dict, dataset: str, init: str, epsilon: float, seeds, label: str = MACRO
) -> pd.Series:
    """Per-resample AUROC of ``label`` averaged over seeds (NaN where any seed's resample is undefined)."""
    per_seed = []
    for seed in seeds:
        key = (dataset, init, epsilon, seed)
        if key not in bootstraps:
            raise KeyError(f"no bootstrap table for run {key}")
        boot = bootstraps[key]
        per_seed.append(boot.loc[boot["label"] == label].set_index("resample")["auroc"].sort_index())
    reference = per_seed[0].index
    if any(not s.index.equals(reference) for s in per_seed):
        raise ValueError(f"bootstrap resamples differ between seeds of {dataset!r} ({init}) at epsilon={epsilon}")
    return pd.Series(seed_mean([s.to_numpy() for s in per_seed]), index=reference)


def _paired(difference, key: tuple, reference: tuple, means: pd.Series, seed_avg: dict, ci: float) -> dict:
    """A paired difference of seed-averaged macro AUROCs, ``key`` minus ``reference`` (both (dataset, init, ε)):
    the difference of the seed means and the percentile CI of the per-resample difference (``difference``, from
    :mod:`privfair.evaluate.paired`), with its count of valid resamples. Each side is averaged over its own seeds, so
    the two need not have the same seeds; with the same seeds this equals pairing seed by seed."""
    boot, ref_boot = seed_avg[key], seed_avg[reference]
    if not boot.index.equals(ref_boot.index):
        raise ValueError(f"bootstrap resamples differ between {key} and {reference}")
    change = difference(boot.to_numpy(), ref_boot.to_numpy())
    low, high = percentile_ci(change, ci)
    value = float(difference(means[key], means[reference]))
    return {"value": value, "ci_low": low, "ci_high": high, "n_valid": int(np.isfinite(change).sum())}


def macro_labels(runs: pd.DataFrame) -> dict[str, list[str]]:
    """The labels each dataset's macro AUROC averages: every label of its evaluation (each needs both classes in
    the test split, or the evaluation stops), in their order of appearance.

    Args:
        runs: a :func:`run_table`.

    Returns:
        ``{dataset: [label, ...]}``.
    """
    auroc = runs[(runs["metric"] == "auroc") & (runs["label"] != MACRO)]
    return {dataset: list(pd.unique(block["label"])) for dataset, block in auroc.groupby("dataset", sort=True)}


def privacy_utility_table(runs: pd.DataFrame, bootstraps: dict, *, ci: float = 0.95) -> pd.DataFrame:
    """Macro AUROC per (dataset, init, epsilon) with paired bootstrap CIs for the drop versus non-private and the
    gain from pretraining.

    ``drop`` = auroc_mean - auroc_mean of the epsilon=inf row of the same dataset and init (0 for that row itself, NaN
    when there is none); ``gain`` = auroc_mean - auroc_mean of the scratch row of the same dataset and epsilon (NaN
    for scratch rows and where there is no scratch run at that epsilon). Their CIs come from the per-resample
    difference of seed-averaged macro AUROCs, which is valid because every model of a dataset shares the resamples.

    Args:
        runs: a :func:`run_table`.
        bootstraps: ``(dataset, init, epsilon, seed)`` -> that run's ``bootstrap`` table (``resample, label,
            auroc``).
        ci: level of the percentile intervals, in (0, 1).

    Returns:
        One row per (dataset, init, epsilon), sorted by dataset, init (scratch first), then epsilon (inf last), with
        columns ``dataset, init, epsilon, n_seeds, auroc_mean, auroc_sd`` (ddof=1), ``ci_low, ci_high`` (of the
        seed-averaged macro AUROC), ``drop, drop_ci_low, drop_ci_high, gain, gain_ci_low, gain_ci_high,
        epsilon_spent_max, delta, noise_multiplier_mean, ci_level``, then ``n_valid`` (resamples behind the CI: valid
        only where every seed's is), ``drop_n_valid`` (behind the drop's CI: valid where both budgets' are; NaN
        without a drop), ``gain_n_valid`` (the same for the gain), ``n_resamples`` (drawn), ``n_labels`` and
        ``labels`` (the labels the macro AUROC averages, comma-separated).
    """
    groups = _macro_auroc(runs).groupby(["dataset", "init", "epsilon"], sort=True)
    means = groups["value"].mean()
    seed_avg = {key: _seed_averaged_bootstrap(bootstraps, *key, group["seed"]) for key, group in groups}
    labels = macro_labels(runs)
    rows = []
    for (dataset, init, epsilon), group in groups:
        key = (dataset, init, epsilon)
        boot = seed_avg[key]
        row = {
            "dataset": dataset,
            "init": init,
            "epsilon": epsilon,
            "n_seeds": len(group),
            "auroc_mean": means[key],
            "auroc_sd": group["value"].std(ddof=1),
            "drop": np.nan,
            "drop_ci_low": np.nan,
            "drop_ci_high": np.nan,
            "gain": np.nan,
            "gain_ci_low": np.nan,
            "gain_ci_high": np.nan,
            "epsilon_spent_max": group["epsilon_spent"].max(),
            # delta is fixed per dataset by the training config; max just skips non-private NaNs.
            "delta": group["delta"].max(),
            "noise_multiplier_mean": group["noise_multiplier"].mean(),
            "ci_level": ci,  # so that tables and figures label their intervals truthfully
            # A seed-mean resample is valid only where every seed's is (seed_mean keeps NaN).
            "n_valid": int(np.isfinite(boot.to_numpy()).sum()),
            "drop_n_valid": np.nan,
            "gain_n_valid": np.nan,
            "n_resamples": len(boot),
            "n_labels": len(labels[dataset]),
            "labels": ", ".join(labels[dataset]),
        }
        row["ci_low"], row["ci_high"] = percentile_ci(boot.to_numpy(), ci)
        comparisons = (
            ("drop", change_from_non_private, (dataset, init, math.inf), True),
            ("gain", gain_from_pretraining, (dataset, SCRATCH, epsilon), init != SCRATCH),
        )
        for name, difference, reference, applies in comparisons:
            if applies and reference in seed_avg:
                paired = _paired(difference, key, reference, means, seed_avg, ci)
                row[name], row[f"{name}_n_valid"] = paired["value"], paired["n_valid"]
                row[f"{name}_ci_low"], row[f"{name}_ci_high"] = paired["ci_low"], paired["ci_high"]
        rows.append(row)
    table = pd.DataFrame(rows, columns=PRIVACY_UTILITY_COLUMNS)
    return table.sort_values(["dataset", "init", "epsilon"], key=sort_key, kind="stable", ignore_index=True)


def per_label_table(
    runs: pd.DataFrame, bootstraps: dict, *, ci: float = 0.95, reliability: bool = False
) -> pd.DataFrame:
    """Test AUROC per (dataset, init, epsilon, label) over seeds (macro excluded).

    Args:
        runs: a :func:`run_table`.
        bootstraps: ``(dataset, init, epsilon, seed)`` -> that run's ``bootstrap`` table (``resample, label,
            auroc``).
        ci: level of the percentile intervals, in (0, 1).
        reliability: also give what the table's marks are judged on (the ``aggregate`` rule does): ``n_valid``
            (resamples behind the CI, valid only where every seed's is), ``n_resamples`` (drawn), ``n_pos`` and
            ``n_pos_patients`` (test positives of the label and distinct patients among them; NaN for summaries
            written before they were recorded).

    Returns:
        Columns ``dataset, init, epsilon, label, n_seeds, auroc_mean, auroc_sd`` (ddof=1) and ``ci_low, ci_high``:
        percentile CI of the per-resample AUROC averaged over seeds, as for the macro AUROC; with ``reliability``,
        then :data:`RELIABILITY_COLUMNS`. Rows are sorted by dataset, init (scratch first), then epsilon; labels keep
        their order of appearance (the predictions' column order).
    """
    auroc = runs[(runs["metric"] == "auroc") & (runs["label"] != MACRO)]
    groups = auroc.groupby(["dataset", "init", "epsilon", "label"], sort=False)
    table = groups.agg(
        n_seeds=("value", "size"),
        auroc_mean=("value", "mean"),
        auroc_sd=("value", lambda v: v.std(ddof=1)),
    ).reset_index()
    averaged = [
        _seed_averaged_bootstrap(bootstraps, dataset, init, epsilon, group["seed"], label).to_numpy()
        for (dataset, init, epsilon, label), group in groups
    ]
    table["ci_low"], table["ci_high"] = zip(*(percentile_ci(values, ci) for values in averaged))
    columns = PER_LABEL_COLUMNS
    if reliability:
        columns = PER_LABEL_COLUMNS + RELIABILITY_COLUMNS
        table["n_valid"] = [int(np.isfinite(values).sum()) for values in averaged]
        table["n_resamples"] = [len(values) for values in averaged]
        # Every model of a dataset is measured on the same test split: its counts are those of any seed.
        keys, counted = ["dataset", "init", "epsilon", "label"], ["n_pos", "n_pos_patients"]
        counts = auroc.reindex(columns=keys + counted).groupby(keys, sort=False)[counted].first()
        table[counted] = counts.to_numpy(dtype=float)
    # Stable sort: label order within each (dataset, init, epsilon) stays as it first appeared.
    return table.sort_values(["dataset", "init", "epsilon"], key=sort_key, kind="stable", ignore_index=True)[columns]


def unreliable(row) -> bool:
    """Whether a per-label row has fewer test positives than :data:`MIN_TEST_POSITIVES` or fewer distinct positive
    patients than :data:`MIN_POSITIVE_PATIENTS` (False where the counts are missing).

    Args:
        row: a row of :func:`per_label_table` made with ``reliability=True`` (a mapping with ``n_pos`` and
            ``n_pos_patients``).

    Returns:
        True when either count is below its threshold.
    """
    n_pos, n_patients = (_as_float(row.get(key)) for key in ("n_pos", "n_pos_patients"))
    return (not math.isnan(n_pos) and n_pos < MIN_TEST_POSITIVES) or (
        not math.isnan(n_patients) and n_patients < MIN_POSITIVE_PATIENTS
    )


def utility_notes(table: pd.DataFrame) -> list[str]:
    """The notes of a :func:`privacy_utility_table` or :func:`per_label_table`: the labels each macro AUROC averages,
    and what the marks of :func:`utility_view` mean, each only where the table has such a mark.

    Args:
        table: either table.

    Returns:
        Sentences without a final full stop (``notes`` of :func:`privfair.core.tables.write_table`).
    """
    notes = []
    if "labels" in table.columns:
        for dataset, block in table.groupby("dataset", sort=True):
            first = block.iloc[0]
            count = "its one label" if first["n_labels"] == 1 else f"its {first['n_labels']} labels"
            notes.append(f"{dataset}: the macro AUROC averages {count} ({first['labels']})")
    if shows_gain(table):
        notes.append(
            f"{GAIN_HEADER.lower()}: macro AUROC of the pretrained model minus that of the model trained from "
            "scratch on the same dataset at the same ε (means over seeds; positive when pretraining helps); its CI is "
            "a paired bootstrap: per test-set resample, the seed-averaged macro AUROC of the one minus that of the "
            "other; — where there is no scratch run at that ε"
        )
    pairs = [("n_valid", "n_resamples"), ("drop_n_valid", "n_resamples"), ("gain_n_valid", "n_resamples")]
    fired = [
        few_resamples(row[valid], row[drawn])
        for _, row in table.iterrows()
        for valid, drawn in pairs
        if valid in table.columns and drawn in table.columns
    ]
    if any(fired):
        notes.append(few_resamples_note(table["n_resamples"], WHY_FEW_RESAMPLES))
    if "n_pos" in table.columns and any(unreliable(row) for _, row in table.iterrows()):
        notes.append(
            f"{UNRELIABLE} fewer than {MIN_TEST_POSITIVES} test positives or fewer than {MIN_POSITIVE_PATIENTS} "
            "distinct positive patients: the AUROC and its CI are not reliable"
        )
    return notes


def shows_gain(table: pd.DataFrame) -> bool:
    """Whether :func:`utility_view` shows the gain from pretraining: the table has it and a run that is not scratch.

    Args:
        table: a :func:`privacy_utility_table` or :func:`per_label_table`.

    Returns:
        True when there is a gain column and an init other than scratch.
    """
    return "gain" in table.columns and "init" in table.columns and bool((table["init"] != SCRATCH).any())


def _gain_cell(row, pretrained: set) -> str:
    """The gain from pretraining with its CI; "reference" for the scratch rows of a dataset with pretrained runs."""
    if row["init"] == SCRATCH:
        return "reference" if row["dataset"] in pretrained else "—"
    if math.isnan(_as_float(row["gain"])):
        return "—"
    cell = f"{row['gain']:+.3f} {fmt_ci(row['gain_ci_low'], row['gain_ci_high'], CI_DIGITS)}"
    return mark_few_resamples(cell, *_counts(row, "gain_n_valid"))


def utility_view(table: pd.DataFrame) -> pd.DataFrame:
    """A :func:`privacy_utility_table` or :func:`per_label_table` as formatted cells with readable headers.

    Args:
        table: either table; a header is shown only when the column it formats is present.

    Returns:
        One row per row of ``table``, all cells strings; the CI header names the level when ``ci_level`` is
        present (e.g. "95% CI"), and the non-private row's change reads "reference". The init is shown as it is
        ("scratch", the public dataset's name), also when every run is scratch; the gain from pretraining only where
        some run is not scratch (:func:`shows_gain`), "reference" in the scratch rows. Where the table has the counts,
        a CI or change resting on fewer than ``FEW_RESAMPLES_SHARE`` of the resamples is marked "† valid/drawn", and
        a label's AUROC with too few test positives or positive patients "‡" (:func:`unreliable`); see
        :func:`utility_notes`.
    """
    ci = ci_header(table)
    pretrained = set(table.loc[table["init"] != SCRATCH, "dataset"]) if "init" in table.columns else set()
    # (header, column that must be present for it to be shown, cell formatter)
    columns = [
        ("Dataset", "dataset", lambda r: str(r["dataset"])),
        ("Init", "init", lambda r: str(r["init"])),
        ("Label", "label", lambda r: str(r["label"])),
        ("ε", "epsilon", lambda r: fmt_epsilon(r["epsilon"])),
        ("Seeds", "n_seeds", lambda r: str(r["n_seeds"])),
        ("AUROC (mean ± SD)", "auroc_mean", lambda r: _marked_auroc(r)),
        (ci, "ci_low", lambda r: mark_few_resamples(fmt_ci(r["ci_low"], r["ci_high"]), *_counts(r, "n_valid"))),
        (
            f"Δ vs non-private [{ci}]",
            "drop",
            lambda r: mark_few_resamples(fmt_change(r, "drop"), *_counts(r, "drop_n_valid")),
        ),
        (f"{GAIN_HEADER} ({ci})", "gain" if shows_gain(table) else None, lambda r: _gain_cell(r, pretrained)),
        ("ε spent (max)", "epsilon_spent_max", lambda r: fmt_number(r["epsilon_spent_max"], ".3g")),
        ("δ", "delta", lambda r: fmt_number(r["delta"], ".1e")),
        ("Noise σ (mean)", "noise_multiplier_mean", lambda r: fmt_number(r["noise_multiplier_mean"], ".2f")),
    ]
    shown = {header: fmt for header, column, fmt in columns if column in table.columns}
    return pd.DataFrame({header: [fmt(row) for _, row in table.iterrows()] for header, fmt in shown.items()})


def _counts(row, valid: str) -> tuple[float, float]:
    return _as_float(row.get(valid)), _as_float(row.get("n_resamples"))


def _marked_auroc(row) -> str:
    cell = fmt_mean_sd(row["auroc_mean"], row["auroc_sd"])
    return f"{cell} {UNRELIABLE}" if unreliable(row) else cell


def privacy_record_table(records: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per trained model: the privacy it spent, as recorded during training.

    Args:
        records: the runs' privacy records (:func:`privfair.train.privacy.read_record`), each with ``dataset``
            and ``seed``, and ``init`` ("scratch" when absent: :func:`privfair.evaluate.runs.run_init`).

    Returns:
        ``(numbers, view)`` for :func:`privfair.core.tables.write_table`: ``numbers`` sorted by dataset, init
        (scratch first), epsilon and seed, with columns ``dataset, init, epsilon, seed, noise_mode, epsilon_spent,
        epsilon_pld, delta, noise_multiplier, sample_rate, steps, epochs, accountant, max_grad_norm, n_train,
        max_images_per_patient, patient_epsilon, patient_delta`` (NaN where a record lacks one; ``epsilon_spent`` is
        by Opacus' accountant, ``epsilon_pld`` by dp-accounting's PLD, the check); ``view`` the same rows formatted,
        without ``epochs`` and ``n_train``, the noise mode shown as "seeded (not for release)" or "secure".
    """
    columns = [
        "dataset",
        "init",
        "epsilon",
        "seed",
        "noise_mode",
        "epsilon_spent",
        "epsilon_pld",
        "delta",
        "noise_multiplier",
        "sample_rate",
        "steps",
        "epochs",
        "accountant",
        "max_grad_norm",
        "n_train",
        "max_images_per_patient",
        "patient_epsilon",
        "patient_delta",
    ]
    noise_modes = {"seeded": "seeded (not for release)", "secure": "secure"}
    rows = pd.DataFrame([{**record, "init": run_init(record)} for record in records]).reindex(columns=columns)
    rows = rows.sort_values(["dataset", "init", "epsilon", "seed"], key=sort_key, kind="stable", ignore_index=True)

    return rows, view(
        rows,
        {
            "Dataset": lambda r: r["dataset"],
            "Init": lambda r: r["init"],
            "ε target": lambda r: fmt_epsilon(float(r["epsilon"])),
            "Seed": lambda r: str(r["seed"]),
            "Noise": lambda r: noise_modes.get(r["noise_mode"], "—"),
            "ε spent": lambda r: fmt_number(r["epsilon_spent"], ".3g"),
            "ε (PLD check)": lambda r: fmt_number(r["epsilon_pld"], ".3g"),
            "δ": lambda r: fmt_number(r["delta"], ".2e"),
            "Noise σ": lambda r: fmt_number(r["noise_multiplier"], ".3f"),
            "Sampling rate q": lambda r: fmt_number(r["sample_rate"], ".4f"),
            "Steps": lambda r: str(r["steps"]),
            "Accountant": lambda r: r["accountant"] if isinstance(r["accountant"], str) else "—",
            "Clip": lambda r: fmt_number(r["max_grad_norm"], "g"),
            "Images per patient (max)": lambda r: str(r["max_images_per_patient"]),
            "Patient ε (kε)": lambda r: fmt_number(r["patient_epsilon"], ".3g"),
            "Patient δ (k·e^((k−1)ε)·δ)": lambda r: (
                fmt_number(r["patient_delta"], ".2e")
                + (" (no guarantee)" if _as_float(r["patient_delta"]) >= 1 else "")
            ),
        },
    )
