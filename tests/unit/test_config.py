"""The config schema and the grid helpers: every shipped config is valid; mistakes are named before any job."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from privfair.config import adapter_schemas, check_study, load_study, study_name
from privfair.config import main as config_main
from privfair.core.epsilon import epsilon_label, parse_epsilon
from privfair.core.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
SCHEMA = str(REPO / "config" / "schema.yaml")
CONFIGS = [
    REPO / "config" / "config.yaml",
    REPO / "config" / "paper.yaml",
    REPO / "tests" / "scenario" / "config.yaml",
    REPO / "tests" / "scenario" / "ground_truth.yaml",
]
EXAMPLES = sorted((REPO / "config" / "examples").glob("*.yaml"))


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


@pytest.mark.parametrize("path", CONFIGS + EXAMPLES, ids=lambda p: p.name)
def test_shipped_configs_are_valid(path):
    config = load(path)
    validate(config, SCHEMA)
    check_study(config)


def test_an_unknown_key_is_named():
    config = load(CONFIGS[0])
    config["datasets"]["synth_cxr"]["training"]["epochz"] = 3
    with pytest.raises(WorkflowError, match="epochz"):
        validate(config, SCHEMA)


@pytest.mark.parametrize(
    "path, value",
    [
        (("study", "epsilons"), [0, 1]),
        (("datasets", "synth_cxr", "training", "privacy", "accountant"), "moments"),
        (("datasets", "synth_cxr", "preprocess", "spatial_size"), [64]),
        (("evaluation", "ci"), 1.5),
    ],
)
def test_bad_values_are_refused(path, value):
    config = copy.deepcopy(load(CONFIGS[0]))
    node = config
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(WorkflowError, match=path[-1]):
        validate(config, SCHEMA)


def test_grid_datasets_must_be_defined():
    config = load(CONFIGS[0])
    config["study"]["datasets"].append("mimic")
    with pytest.raises(ConfigError, match=r"study\.datasets\[2\]: 'mimic'"):
        check_study(config)


def test_epsilon_labels_round_trip():
    assert [epsilon_label(e) for e in (1, 2.5, 8.0, math.inf, "inf")] == ["1", "2.5", "8", "inf", "inf"]
    assert parse_epsilon("inf") == math.inf and parse_epsilon("2.5") == 2.5
    config = load(CONFIGS[0])
    config["study"]["epsilons"] = [1, 1.0]
    with pytest.raises(ConfigError, match="duplicate"):
        check_study(config)


@pytest.mark.parametrize(
    "path, value, message",
    [
        (("training", "model", "num_groups"), 3, r"synth_cxr\.training\.model\.num_groups \(3\) must divide width"),
        (("source", "positive_grades"), None, r"synth_cxr\.source\.positive_grades is required"),
    ],
)
def test_dependent_keys_are_checked_before_any_job(path, value, message):
    config = load(CONFIGS[0])
    node = config["datasets"]["synth_cxr"]
    for key in path[:-1]:
        node = node[key]
    if value is None:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    with pytest.raises(ConfigError, match=message):
        check_study(config)


def test_ct_needs_a_voxel_spacing_and_window():
    config = load(CONFIGS[0])
    del config["datasets"]["synth_ct"]["preprocess"]["pixdim"]
    with pytest.raises(ConfigError, match=r"synth_ct\.preprocess: CT needs both pixdim and hu_window"):
        check_study(config)


@pytest.mark.parametrize(
    "example, edit, named",
    [
        ("nih_cxr14", lambda s: s.pop("root"), "root"),
        ("nih_cxr14", lambda s: s.update(synthetic={"n_patients": 10, "seed": 0}), "synthetic"),
        ("hospital", lambda s: s.pop("columns"), "columns"),
        ("chexpert", lambda s: s.update(uncertain="maybe"), "maybe"),
        ("medmnist", lambda s: s.update(labels={"a": "b"}), "labels"),
    ],
)
def test_each_adapter_gets_the_options_it_needs(example, edit, named):
    config = load(REPO / "config" / "examples" / f"{example}.yaml")
    edit(next(iter(config["datasets"].values()))["source"])
    with pytest.raises(WorkflowError, match=named):
        validate(config, SCHEMA)


@pytest.mark.parametrize(
    "example, edit, message",
    [
        ("config", lambda s: s.update(adapter="nih"), r"'nih' is not one of \['synth_cxr'"),
        ("config", lambda s: s.update(uncertain="zeros"), r"'uncertain' was unexpected"),
        ("config", lambda s: s.update(on_invalid={"age": "drop"}), r"'on_invalid' was unexpected"),
        ("config", lambda s: s["synthetic"].update(shape=[8, 8, 8]), r"'shape' was unexpected"),
        ("nih_cxr14", lambda s: s.update(positive_grades=[3, 4]), r"'positive_grades' was unexpected"),
        ("chexpert", lambda s: s.update(rater_vote="any"), r"'rater_vote' was unexpected"),
        ("medmnist", lambda s: s.update(tumour_class=2), r"'tumour_class' was unexpected"),
        ("config", lambda s: s.pop("positive_grades"), r"'positive_grades' is a required property"),
        ("config", lambda s: s.pop("synthetic"), r"'synthetic' is a required property"),
        ("hospital", lambda s: s.pop("table"), r"'table' is a required property"),
        ("medmnist", lambda s: s.pop("file"), r"'file' is a required property"),
    ],
)
def test_the_schema_names_a_key_of_another_adapter_or_a_missing_one(example, edit, message):
    path = CONFIGS[0] if example == "config" else REPO / "config" / "examples" / f"{example}.yaml"
    config = load(path)
    edit(next(iter(config["datasets"].values()))["source"])
    with pytest.raises(WorkflowError, match=message):
        validate(config, SCHEMA)


def test_check_study_takes_the_required_keys_from_the_schema():
    assert "columns" in adapter_schemas()["manifest"]["required"]
    config = load(REPO / "config" / "examples" / "hospital.yaml")
    del config["datasets"]["hospital"]["source"]["columns"]
    with pytest.raises(ConfigError, match=r"hospital\.source\.columns is required by adapter 'manifest'"):
        check_study(config)


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda d: d["split"]["fractions"].update(train=0.8),
            r"synth_cxr\.split\.fractions: train \+ val \+ test must be 1, got 0\.8 \+ 0\.1 \+ 0\.2 = 1\.1",
        ),
        (
            lambda d: d["preprocess"].update(spatial_size=[48, 48, 48]),
            (
                r"synth_cxr\.preprocess\.spatial_size: adapter 'synth_cxr' reads 2-D images \(2 entries\), "
                r"got \[48, 48, 48\]"
            ),
        ),
    ],
)
def test_what_can_be_checked_before_a_job_runs_is(edit, message):
    config = load(CONFIGS[0])
    edit(config["datasets"]["synth_cxr"])
    validate(config, SCHEMA)  # the schema alone lets both through
    with pytest.raises(ConfigError, match=message):
        check_study(config)


def test_a_seed_beyond_what_numpy_and_torch_take_is_refused_by_the_schema():
    config = load(CONFIGS[0])
    config["study"]["seeds"] = [1, 2**32]
    with pytest.raises(WorkflowError, match="4294967296 is greater than the maximum"):
        validate(config, SCHEMA)


def test_checking_a_config_by_hand_names_the_yaml_line_of_a_syntax_error(tmp_path, capsys):
    bad = tmp_path / "study.yaml"
    bad.write_text("study:\n  datasets: [synth_cxr\n  seeds: [1]\n")
    assert config_main([str(bad)]) == 1
    assert capsys.readouterr().out.strip() == f"privfair: {bad}: line 3, column 8: expected ',' or ']', but got ':'"


def test_checking_a_config_by_hand_merges_files_as_snakemake_does():
    paper, grid = REPO / "config" / "paper.yaml", REPO / "config" / "paper_grid.yaml"
    merged = load_study([paper, grid])
    assert merged["study"] == {**load(paper)["study"], **load(grid)["study"]}  # key by key: paper's init stays
    assert merged["datasets"] == load(paper)["datasets"]
    assert config_main([str(paper), str(grid)]) == 0


@pytest.mark.parametrize(
    "name, files, expected",
    [
        ("chexpert-2024", ["config/paper.yaml"], "chexpert-2024"),  # study.name wins
        (None, ["config/paper.yaml", "studies/nih.v2.yaml"], "nih.v2"),  # else the last config file's stem
    ],
)
def test_the_study_name_gives_the_results_folder(name, files, expected):
    config = {"study": {} if name is None else {"name": name}}
    assert study_name(config, files) == expected


@pytest.mark.parametrize(
    "files, message",
    [
        (["my study.yaml"], r"study.name \(not set, so taken from the config file's name 'my study.yaml'\)"),
        ([".hidden.yaml"], "'.hidden' is not a plain folder name"),
        ([], "study.name is required"),
    ],
)
def test_a_study_name_that_is_no_plain_folder_name_is_refused(files, message):
    with pytest.raises(ConfigError, match=message):
        study_name({"study": {}}, files)


def test_the_schema_refuses_a_study_name_with_a_path_in_it():
    config = load(CONFIGS[0])
    config["study"]["name"] = "../other"
    with pytest.raises(WorkflowError, match="does not match"):
        validate(config, SCHEMA)


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda c: c["datasets"]["synth_cxr_public"]["preprocess"].update(spatial_size=[64, 64]),
            (
                r"datasets\.synth_cxr\.preprocess\.spatial_size is \[32, 32\], but datasets\.synth_cxr_public\."
                r"preprocess\.spatial_size \(its init 'synth_cxr_public'\) is \[64, 64\]"
            ),
        ),
        (
            lambda c: c["datasets"]["synth_cxr_public"]["preprocess"].update(histogram_equalize=True),
            r"datasets\.synth_cxr\.preprocess\.histogram_equalize is None, but",
        ),
        (
            lambda c: c["datasets"]["synth_cxr_public"]["training"]["model"].update(activation="mish"),
            r"datasets\.synth_cxr\.training\.model is .* but its init 'synth_cxr_public' trains",
        ),
        (
            lambda c: c["datasets"]["synth_ct"].pop("init"),  # CT volumes cannot start from a radiograph model
            r"datasets\.synth_ct\.preprocess\.spatial_size is \[12, 12, 12\], but .*set datasets\.synth_ct\.init",
        ),
        (
            lambda c: c["study"].update(init=["scratch", "synth_ct"]),
            r"study\.init\[1\]: 'synth_ct' is neither scratch, file:<path> nor a public dataset",
        ),
        (
            lambda c: c["study"].update(init=["file:/nowhere/mimic.pt"]),
            r"study\.init\[0\]: checkpoint '/nowhere/mimic\.pt' not found",
        ),
        (
            lambda c: c["study"].update(datasets=["synth_cxr", "synth_cxr_public"]),
            r"study\.datasets\[1\]: 'synth_cxr_public' is public",
        ),
    ],
)
def test_an_init_that_cannot_initialise_a_dataset_is_named_before_any_job(edit, message):
    config = load(CONFIGS[2])  # the scenario: synth_cxr from scratch and from the public synth_cxr_public
    edit(config)
    validate(config, SCHEMA)
    with pytest.raises(ConfigError, match=message):
        check_study(config)


def test_two_checkpoint_files_of_one_name_are_refused(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "resnet9.pt").write_bytes(b"")
    config = load(CONFIGS[2])
    config["study"]["init"] = [f"file:{tmp_path / 'a' / 'resnet9.pt'}", f"file:{tmp_path / 'b' / 'resnet9.pt'}"]
    with pytest.raises(ConfigError, match=r"study\.init: two inits have the same name .*file-resnet9"):
        check_study(config)


def test_a_public_dataset_needs_no_privacy_settings_a_private_one_does():
    config = load(CONFIGS[2])
    assert "privacy" not in config["datasets"]["synth_cxr_public"]["training"]
    validate(config, SCHEMA)
    del config["datasets"]["synth_cxr"]["training"]["privacy"]
    with pytest.raises(WorkflowError, match="privacy"):
        validate(config, SCHEMA)
