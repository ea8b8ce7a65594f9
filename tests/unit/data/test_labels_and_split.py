"""Label choice at ingest (``source.labels``, ``source.min_positive_patients``) and the stratified patient split."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from privfair.core.errors import ConfigError, ManifestError
from privfair.data.ingest import FINDING_DROPPED, ingest
from privfair.data.split import split_patients, split_sizes
from privfair.data.summary import summary_table
from tests.helpers.exports import nih_lines, write_nih

REPO = Path(__file__).resolve().parents[3]
FRACTIONS = {"train": 0.7, "val": 0.15, "test": 0.15}


@pytest.fixture(scope="module")
def nih(tmp_path_factory):
    """Real NIH rows: 4 patients per finding (at most 2 images each), 32-pixel PNGs."""
    return write_nih(tmp_path_factory.mktemp("nih"), nih_lines(n_per_finding=4, max_images=2))


def positive_patients(manifest: pd.DataFrame) -> pd.Series:
    labels = manifest.filter(like="label_")
    return (labels == 1).groupby(manifest["patient_id"]).any().sum()


def test_labels_keep_the_named_findings_by_either_name_and_record_the_others(nih, capsys):
    full, _ = ingest("nih_cxr14", nih, {})
    manifest, dropped = ingest("nih_cxr14", nih, {"labels": ["Effusion", "Pleural_Thickening", "cardiomegaly"]})
    # manifest order (the adapter's), whatever the order of the list
    assert list(manifest.filter(like="label_")) == ["label_cardiomegaly", "label_effusion", "label_pleural_thickening"]
    assert manifest["comorbidity"].equals(full["comorbidity"])  # co-morbidity still counts every finding
    findings = dropped[dropped["action"] == FINDING_DROPPED]
    assert len(findings) == 11 and set(findings["check"]) == {"labels"} and (findings["rows"] == 1).all()
    assert "finding 'hernia': not selected by source.labels" in set(findings["problem"])
    assert f"{nih}: finding dropped 'hernia': not selected by source.labels" in capsys.readouterr().out


def test_min_positive_patients_drops_rare_findings_with_their_counts(nih, capsys):
    counts = positive_patients(ingest("nih_cxr14", nih, {})[0])
    threshold = int(counts.sort_values().iloc[3]) + 1  # at least four findings fall below it
    rare = counts[counts < threshold]
    manifest, dropped = ingest("nih_cxr14", nih, {"min_positive_patients": threshold})
    assert set(manifest.filter(like="label_")) == set(counts.index[counts >= threshold])
    findings = dropped[dropped["check"] == "min_positive_patients"]
    expected = {
        f"finding '{c.removeprefix('label_')}': {n} positive patient(s), fewer than "
        f"source.min_positive_patients ({threshold})"
        for c, n in rare.items()
    }
    assert set(findings["problem"]) == expected and (findings["action"] == FINDING_DROPPED).all()
    log = capsys.readouterr().out
    assert all(f"finding dropped '{c.removeprefix('label_')}': {n} positive patient(s)" in log for c, n in rare.items())
    # the dataset summary counts them, like the rows that on_invalid drops
    summary = summary_table(manifest.assign(split="train"), dropped)
    row = summary[(summary["variable"] == FINDING_DROPPED) & (summary["statistic"] == "min_positive_patients")]
    assert row["value"].tolist() == [len(rare)]
    # both keys together: labels first, then the count among the chosen ones
    chosen = [rare.index[0].removeprefix("label_"), counts.idxmax().removeprefix("label_")]
    manifest, dropped = ingest("nih_cxr14", nih, {"labels": chosen, "min_positive_patients": threshold})
    assert list(manifest.filter(like="label_")) == [f"label_{chosen[1]}"]
    assert dropped["check"].value_counts().to_dict() == {"labels": 12, "min_positive_patients": 1}
    with pytest.raises(ManifestError, match="no labels left"):
        ingest("nih_cxr14", nih, {"labels": chosen[:1], "min_positive_patients": threshold})


def test_an_unknown_label_is_named_with_the_known_ones(nih):
    with pytest.raises(ConfigError, match=r"source\.labels: unknown finding 'Efusion'; .*'effusion'.*'hernia'"):
        ingest("nih_cxr14", nih, {"labels": ["Effusion", "Efusion"]})


def test_the_schema_takes_the_keys_in_the_multi_label_adapters_only():
    schema = str(REPO / "config" / "schema.yaml")
    config = yaml.safe_load((REPO / "config" / "examples" / "nih_cxr14.yaml").read_text())
    name = next(iter(config["datasets"]))
    good = copy.deepcopy(config)
    good["datasets"][name]["source"].update(labels=["Effusion", "Hernia"], min_positive_patients=5)
    validate(good, schema)
    for wrong in ({"labels": []}, {"labels": "Effusion"}, {"min_positive_patients": 0}):
        bad = copy.deepcopy(config)
        bad["datasets"][name]["source"].update(wrong)
        with pytest.raises(WorkflowError):
            validate(bad, schema)
    ct = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    ct["datasets"]["synth_ct"]["source"]["min_positive_patients"] = 5
    with pytest.raises(WorkflowError):
        validate(ct, schema)


def rare_label_manifest(n_patients: int = 300, n_rare: int = 3, seed: int = 0) -> pd.DataFrame:
    """1-3 images per patient; ``label_rare`` is positive in every image of ``n_rare`` patients, ``label_common`` in
    about a third of the images."""
    rng = np.random.default_rng(seed)
    rare = set(rng.choice(n_patients, n_rare, replace=False))
    rows = [
        {"image_id": f"P{p:03d}_{i}", "patient_id": f"P{p:03d}", "label_rare": int(p in rare)}
        for p in range(n_patients)
        for i in range(rng.integers(1, 4))
    ]
    manifest = pd.DataFrame(rows)
    manifest["label_common"] = (rng.random(len(manifest)) < 0.3).astype(int)
    return manifest


def covered(split: pd.DataFrame) -> bool:
    return all(split.loc[split["split"] == s, "label_rare"].nunique() == 2 for s in FRACTIONS)


def test_stratification_puts_a_rare_label_in_every_split_where_a_shuffle_often_fails():
    manifest = rare_label_manifest()  # 3 positive patients among 300
    patients = np.sort(manifest["patient_id"].unique())
    sizes = split_sizes(len(patients), list(FRACTIONS.values()))
    plain_failures = 0
    for seed in range(20):
        # the plain patient shuffle (the split before stratification): permute, cut by the fractions
        shuffled = np.random.default_rng(seed).permutation(patients)
        cut = dict(zip(shuffled, np.repeat(list(FRACTIONS), sizes)))
        plain_failures += not covered(manifest.assign(split=manifest["patient_id"].map(cut)))
        split = split_patients(manifest, FRACTIONS, seed=seed)  # raises if any split lacked a class
        assert covered(split)
        per_split = split.groupby("split")["patient_id"].nunique()
        assert per_split.to_dict() == dict(zip(FRACTIONS, sizes.tolist()))  # the fractions, exactly as a plain cut
        assert (split.groupby("patient_id")["split"].nunique() == 1).all()
    # P(one positive patient in each split) = 3! * 0.7 * 0.15 * 0.15 = 0.09: the shuffle fails about 18 times in 20
    assert plain_failures >= 15


def test_the_stratified_split_is_seeded_and_ignores_row_order():
    manifest = rare_label_manifest(seed=1)
    split = split_patients(manifest, FRACTIONS, seed=5)
    shuffled = split_patients(manifest.sample(frac=1, random_state=2), FRACTIONS, seed=5)
    assert (
        shuffled.set_index("image_id")["split"].sort_index().equals(split.set_index("image_id")["split"].sort_index())
    )
    assert split_patients(manifest, FRACTIONS, seed=5)["split"].equals(split["split"])
    assert not split_patients(manifest, FRACTIONS, seed=6)["split"].equals(split["split"])


def test_the_official_test_split_stays_and_validation_is_stratified_from_official_training():
    manifest = rare_label_manifest(n_rare=3, seed=2)
    rare_patients = sorted(manifest.loc[manifest["label_rare"] == 1, "patient_id"].unique())
    test_patients = set(manifest["patient_id"].unique()[::5]) - set(rare_patients[1:]) | {rare_patients[0]}
    manifest["official_split"] = np.where(manifest["patient_id"].isin(test_patients), "test", "train")
    n_train = manifest.loc[manifest["official_split"] == "train", "patient_id"].nunique()
    for seed in range(10):
        split = split_patients(manifest, FRACTIONS, seed=seed)
        assert set(split.loc[split["split"] == "test", "patient_id"]) == test_patients
        assert split.loc[split["split"] == "val", "patient_id"].nunique() == split_sizes(n_train, [0.7, 0.15])[1]
        assert covered(split)  # the two official-training positives: one in train, one in validation


def test_every_label_that_cannot_be_represented_is_named_in_one_message():
    manifest = rare_label_manifest(n_rare=2)
    manifest["label_single"] = (manifest["patient_id"] == "P007").astype(int)
    manifest["label_none"] = 0
    with pytest.raises(ManifestError) as error:
        split_patients(manifest, FRACTIONS, seed=0, source="split.parquet")
    message = str(error.value)
    assert message.startswith("split.parquet: 3 label(s) cannot have both classes in every split: ")
    assert "for 'label_rare' in the " in message and "(2 positive patient(s) of 300)" in message
    assert (
        "fewer than two classes [0] for 'label_single' in the " in message
        and "(1 positive patient(s) of 300)" in message
    )
    assert "fewer than two classes [0] for 'label_none' in the train, val and test splits (0 positive" in message
    assert "label_common" not in message and "seed" not in message and "\n" not in message
    assert "source.labels" in message and "source.min_positive_patients" in message and "more patients" in message


def test_a_rare_nih_finding_fails_the_split_until_min_positive_patients_drops_it(tmp_path):
    lines = nih_lines(n_per_finding=6, max_images=2)
    header, rows = lines[0], lines[1:]
    hernia = list(dict.fromkeys(r.split(",")[3] for r in rows if "Hernia" in r.split(",")[1]))
    rows = [r for r in rows if r.split(",")[3] not in hernia[2:]]  # Hernia in 2 patients, as in a partial download
    root = write_nih(tmp_path / "nih", [header, *rows])
    manifest, _ = ingest("nih_cxr14", root, {})
    assert positive_patients(manifest)["label_hernia"] == 2
    with pytest.raises(ManifestError, match=r"for 'label_hernia' in the (val|test) split \(2 positive patient\(s\)"):
        split_patients(manifest, FRACTIONS, seed=0)
    manifest, dropped = ingest("nih_cxr14", root, {"min_positive_patients": 3})
    assert "label_hernia" not in manifest and "finding 'hernia': 2 positive patient(s)" in dropped["problem"].iloc[-1]
    for seed in range(5):
        split_patients(manifest, FRACTIONS, seed=seed)
