"""The Snakemake workflow as users run it: lint, schema, dry-runs of the paper grid, and the DAG end to end."""

from __future__ import annotations

import json
import re
import subprocess

import pandas as pd
import pytest
import yaml
from helpers.workflow import GROUND_TRUTH, REPO, SCENARIO, planned_jobs, snakemake, write_config

import privfair


def test_lint_is_clean():
    result = snakemake("--lint")
    assert "Lints for" not in result.stdout + result.stderr


def paper_roots(tmp_path) -> str:
    """A config file pointing config/paper.yaml's datasets at empty folders: enough to plan its jobs."""
    paper = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    roots = {}
    for name in paper["datasets"]:
        (tmp_path / "data" / name).mkdir(parents=True)
        roots[name] = {"source": {"root": str(tmp_path / "data" / name)}}
    return str(write_config(tmp_path / "roots.yaml", {"datasets": roots}))


def grid_size(config: dict) -> int:
    """Training jobs of a study: one per (dataset, init, ε, seed), each dataset with its own inits or study.init."""
    study = config["study"]
    inits = sum(len(config["datasets"][d].get("init", study["init"])) for d in study["datasets"])
    return inits * len(study["epsilons"]) * len(study["seeds"])


def test_paper_config_pretrains_once_and_fine_tunes_at_every_grid_point(tmp_path):
    paper = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    study = paper["study"]
    assert len(study["datasets"]) >= 2 and len([e for e in study["epsilons"] if e != float("inf")]) >= 6
    hospital = paper["datasets"]["hospital"]["training"]
    assert hospital["model"]["activation"] == "mish" and hospital["privacy"]["max_grad_norm"] == 1.5
    assert (hospital["logical_batch_size"], hospital["physical_batch_size"]) == (128, 32)
    config = str(REPO / "config" / "paper.yaml")
    jobs = planned_jobs(snakemake("-n", "--configfile", config, paper_roots(tmp_path), workdir=tmp_path))
    assert jobs["train"] == jobs["predict"] == jobs["evaluate"] == grid_size(paper)
    assert jobs["pretrain"] == 1  # one public dataset, pretrained once for every fine-tuning run
    assert jobs["preprocess"] == len(paper["datasets"]) and jobs["aggregate"] == 1


def planned_resources(result: subprocess.CompletedProcess) -> list[tuple[str, dict]]:
    """(rule, resources) of every job of a dry-run."""
    jobs = re.finditer(r"^rule (\w+):\n((?:    .*\n)+)", result.stdout + result.stderr, re.MULTILINE)
    return [
        (m[1], dict(item.split("=", 1) for item in re.search(r"resources: (.*)", m[2])[1].split(", "))) for m in jobs
    ]


def test_paper_grid_through_the_slurm_profile_requests_a_gpu_for_training(tmp_path):
    # `--profile slurm` resolves to ./slurm, the profile users submit with; nothing is submitted in a dry-run.
    paper, grid = REPO / "config" / "paper.yaml", REPO / "config" / "paper_grid.yaml"
    result = snakemake(
        "-n", "--profile", "slurm", "--configfile", str(paper), str(grid), paper_roots(tmp_path), workdir=tmp_path
    )
    study = yaml.safe_load(grid.read_text())["study"]
    assert len(study["datasets"]) >= 2 and len(study["epsilons"]) - 1 >= 8 and len(study["seeds"]) >= 5
    config = yaml.safe_load(paper.read_text())
    config["study"].update(study)
    jobs = planned_resources(result)
    by_rule = {rule: [r for name, r in jobs if name == rule] for rule, _ in jobs}
    assert len(by_rule["train"]) == len(by_rule["predict"]) == len(by_rule["evaluate"]) == grid_size(config)
    assert len(by_rule["pretrain"]) == 1
    for resources in by_rule["train"] + by_rule["pretrain"]:
        assert resources["gpu"] == "1" and resources["slurm_extra"].startswith("--signal=USR1@")
        assert int(resources["runtime"]) >= 60 * 12
    assert all("gpu" not in r for rule, r in jobs if rule not in ("pretrain", "train", "predict"))


def test_invalid_config_fails_before_any_job_naming_the_key(tmp_path):
    config = yaml.safe_load(SCENARIO.read_text())
    config["datasets"]["synth_cxr"]["training"]["privacy"]["max_grad_norm"] = -1
    result = snakemake(
        "-n", "--configfile", str(write_config(tmp_path / "bad.yaml", config)), workdir=tmp_path, check=False
    )
    assert result.returncode != 0
    assert "max_grad_norm" in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()


def test_a_study_config_is_the_whole_config_with_schema_defaults_and_no_demo_value(tmp_path):
    config = yaml.safe_load(SCENARIO.read_text())
    del config["evaluation"], config["fairness"]  # a minimal study: the schema's defaults apply, not the demo's
    del config["study"]["name"]  # so the config file's name names the study
    config["study"].update(datasets=["synth_cxr"], init=["scratch"])
    config["datasets"] = {"synth_cxr": config["datasets"]["synth_cxr"]}
    snakemake(
        "results/study/config.yaml",
        "--cores",
        "1",
        "--configfile",
        str(write_config(tmp_path / "study.yaml", config)),
        workdir=tmp_path,
    )
    used = yaml.safe_load((tmp_path / "results" / "study" / "config.yaml").read_text())
    demo = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    assert demo["fairness"]["min_group_size"] == {"positives": 5, "negatives": 5}
    assert used["fairness"]["min_group_size"] == {"positives": 10, "negatives": 10}  # the schema's default
    assert used["evaluation"] == {"n_bootstrap": 1000, "seed": 20240201, "ci": 0.95}
    assert list(used["datasets"]) == ["synth_cxr"]  # the demo's synth_ct does not creep in
    assert used["study"]["name"] == "study"


def test_two_studies_from_one_checkout_write_to_separate_folders(tmp_path):
    config = yaml.safe_load(SCENARIO.read_text())
    config["study"].update(datasets=["synth_cxr"], init=["scratch"])
    config["datasets"] = {"synth_cxr": config["datasets"]["synth_cxr"]}
    del config["study"]["name"]
    first, second = write_config(tmp_path / "first.yaml", config), write_config(tmp_path / "second.yaml", config)
    # Every planned output of each study lies in its own folder.
    for path in (first, second):
        planned = snakemake("-n", "--configfile", str(path), "--printshellcmds", workdir=tmp_path)
        paths = set(re.findall(r"results/[^\s,'\"]+", planned.stdout + planned.stderr))
        assert paths and all(p.startswith(f"results/{path.stem}/") for p in paths), paths
    split = "results/{}/data/synth_cxr/split.parquet"
    snakemake(split.format("first"), "--cores", "1", "--configfile", str(first), workdir=tmp_path)
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "results" / "first").rglob("*")}
    snakemake(split.format("second"), "--cores", "1", "--configfile", str(second), workdir=tmp_path)
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "results" / "first").rglob("*")} == before
    assert (tmp_path / split.format("second")).is_file()
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == ["first", "second"]


def test_a_canary_audit_plans_its_own_runs_beside_the_study_and_none_without_it(tmp_path):
    config = yaml.safe_load(SCENARIO.read_text())
    study = config["study"]
    assert not planned_jobs(snakemake("-n", "--configfile", str(SCENARIO), workdir=tmp_path)).get("canary_train")
    config["audit"] = {"canary": {"n_canaries": 20, "guesses": 10, "epsilons": [4]}}
    jobs = planned_jobs(
        snakemake("-n", "--configfile", str(write_config(tmp_path / "c.yaml", config)), workdir=tmp_path)
    )
    audited = len(study["datasets"]) * len(study["seeds"])  # one budget audited
    assert jobs["canary_train"] == jobs["canary_score"] == audited and jobs["canary_cache"] == len(study["datasets"])
    assert jobs["train"] == grid_size(config)  # the study's runs, unchanged
    config["audit"]["canary"]["guesses"] = 21
    result = snakemake(
        "-n", "--configfile", str(write_config(tmp_path / "bad.yaml", config)), workdir=tmp_path, check=False
    )
    assert result.returncode != 0 and "audit.canary.guesses" in result.stdout + result.stderr


def test_a_study_name_that_is_no_folder_name_is_refused(tmp_path):
    config = yaml.safe_load(SCENARIO.read_text())
    config["study"]["name"] = "../elsewhere"
    result = snakemake(
        "-n", "--configfile", str(write_config(tmp_path / "bad.yaml", config)), workdir=tmp_path, check=False
    )
    assert result.returncode != 0 and "study.name" in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize(
    "edit, key",
    [
        (
            lambda c: c.update(studdy=c.pop("study")),
            "the config's top level: Additional properties are not allowed ('studdy' was unexpected)",
        ),
        (lambda c: c["datasets"]["synth_cxr"]["training"].update(epochz=3), "datasets.synth_cxr.training: "),
    ],
)
def test_a_config_error_is_one_line_naming_the_key(tmp_path, edit, key):
    config = yaml.safe_load(SCENARIO.read_text())
    edit(config)
    result = snakemake(
        "-n", "--configfile", str(write_config(tmp_path / "bad.yaml", config)), workdir=tmp_path, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0 and key in output
    assert len(output) < 2000  # not the schema dump (tens of KB) that Snakemake's validation error carries


@pytest.mark.workflow
def test_any_positive_budget_plans_and_an_unreachable_one_stops_before_training(tmp_path):
    config = yaml.safe_load(SCENARIO.read_text())
    config["study"].update(datasets=["synth_cxr"], epsilons=[1e-5, 1e6, float("inf")], init=["scratch"])
    path = write_config(tmp_path / "budgets.yaml", config)
    jobs = planned_jobs(snakemake("-n", "--configfile", str(path), workdir=tmp_path))
    assert jobs["train"] == 3 and jobs["calibrate_noise"] == 2
    # The target first: --configfile takes several files.
    target = "results/scenario/runs/synth_cxr/scratch/eps-1e-05/seed-1/model.pt"
    result = snakemake(target, "--cores", "2", "--configfile", str(path), workdir=tmp_path, check=False)
    assert result.returncode != 0
    message = "study.epsilons: ε = 1e-05 cannot be reached for datasets.synth_cxr"
    assert message in result.stderr and "smallest ε that works" in result.stderr
    assert not list((tmp_path / "results" / "scenario" / "runs").rglob("*.json"))  # nothing partial, no model
    assert "Traceback" not in (tmp_path / "results/scenario/logs/calibrate_noise/synth_cxr/eps-1e-05.log").read_text()


@pytest.mark.workflow
def test_scenario_runs_end_to_end_and_reruns_only_what_changed(tmp_path):
    workdir = tmp_path / "study"
    snakemake("--cores", "2", "--configfile", str(SCENARIO), workdir=workdir)
    results = workdir / "results" / "scenario"
    tables = [
        "privacy_utility",
        "per_label_auroc",
        "performance_gaps",
        "fairness_metrics",
        "p_values",
        "pearson",
        "privacy_records",
        "membership_audit",
    ]
    figures = [
        "privacy_utility",
        "per_label_auroc",
        "auroc_vs_training_count",
        "fairness_metrics",
        "membership_audit",
        "fairness_gap_sex",
        "fairness_gap_age",
        "fairness_gap_comorbidity",
        "roc_synth_cxr",
        "roc_synth_ct",
    ]
    for name in [f"tables/{t}.{ext}" for t in tables for ext in ("csv", "md", "tex")] + [
        f"figures/{f}.{ext}" for f in figures for ext in ("png", "pdf")
    ]:
        assert (results / name).stat().st_size > 0, name
    assert planned_jobs(snakemake("-n", "--configfile", str(SCENARIO), workdir=workdir)) == {}

    table = pd.read_csv(results / "tables" / "privacy_utility.csv")
    assert set(table["dataset"]) == {"synth_cxr", "synth_ct"}
    assert set(zip(table["dataset"], table["init"])) == {
        ("synth_cxr", "scratch"),
        ("synth_cxr", "synth_cxr_public"),
        ("synth_ct", "scratch"),
    }
    assert len(table) == 6

    # A new bootstrap count re-evaluates every run but retrains and re-predicts nothing.
    config = yaml.safe_load(SCENARIO.read_text())
    config["evaluation"]["n_bootstrap"] = 60
    changed = write_config(tmp_path / "changed.yaml", config)
    jobs = planned_jobs(snakemake("-n", "--configfile", str(changed), workdir=workdir))
    assert jobs.get("evaluate") == 6 and jobs.get("aggregate") == 1
    assert not {"generate_synthetic", "ingest", "split", "preprocess", "train", "predict"} & set(jobs)

    # New age bins re-run the fairness rules only: no training, prediction or evaluation.
    config = yaml.safe_load(SCENARIO.read_text())
    config.setdefault("fairness", {})["attributes"] = {
        "sex": {},
        "age": {"bins": [0, 50, 100]},
        "comorbidity": {"bins": [0, 1, 2, float("inf")]},
    }
    jobs = planned_jobs(
        snakemake("-n", "--configfile", str(write_config(tmp_path / "bins.yaml", config)), workdir=workdir)
    )
    assert jobs.get("subgroup_metrics") == 6 and jobs.get("analyse_fairness") == 1
    assert not {"train", "predict", "evaluate", "aggregate", "preprocess"} & set(jobs)

    # A new audit sample re-scores every model, and a new confidence only re-aggregates: nothing else but the
    # record of the config as used.
    audit_rules = {"audit_membership", "aggregate_audit", "plot_membership_audit", "save_config", "all"}
    for membership, audited in (({"n_members": 20}, 6), ({"confidence": 0.9}, None)):
        config = yaml.safe_load(SCENARIO.read_text())
        config["audit"] = {"membership": membership}
        jobs = planned_jobs(
            snakemake("-n", "--configfile", str(write_config(tmp_path / "audit.yaml", config)), workdir=workdir)
        )
        assert jobs.get("audit_membership") == audited and jobs.get("aggregate_audit") == 1
        assert set(jobs) <= audit_rules, jobs

    # The HTML report holds every figure and table; no patient identifier appears in any table or the report.
    report = workdir / "report.html"
    snakemake("--report", str(report), "--configfile", str(SCENARIO), workdir=workdir)
    html = report.read_text()
    for caption in ("performance gap", "paired-bootstrap p-values", "operating point chosen on validation"):
        assert caption in html, caption
    patients = set(pd.read_parquet(results / "data" / "synth_cxr" / "manifest.parquet")["patient_id"])
    patients |= set(pd.read_parquet(results / "data" / "synth_ct" / "manifest.parquet")["patient_id"])
    for path in [report, *(results / "tables").iterdir()]:
        # Whole tokens: embedded base64 images contain any short string somewhere.
        tokens = set(re.findall(r"[A-Za-z0-9_]+", path.read_text()))
        assert not patients & tokens, path

    # Changing one dataset's training settings retrains that dataset only.
    config = yaml.safe_load(SCENARIO.read_text())
    config["datasets"]["synth_ct"]["training"]["epochs"] = 2
    jobs = planned_jobs(
        snakemake("-n", "--configfile", str(write_config(tmp_path / "ct.yaml", config)), workdir=workdir)
    )
    assert jobs.get("train") == 2 and "preprocess" not in jobs
    assert not {"generate_synthetic", "ingest", "split", "preprocess", "summarise_dataset", "pretrain"} & set(jobs)

    # A pretraining setting reruns that pretraining and the fine-tuning runs built on it; the runs from scratch and
    # the public dataset's data stay.
    config = yaml.safe_load(SCENARIO.read_text())
    config["datasets"]["synth_cxr_public"]["training"]["epochs"] = 2
    result = snakemake("-n", "--configfile", str(write_config(tmp_path / "pre.yaml", config)), workdir=workdir)
    jobs = planned_jobs(result)
    assert jobs.get("pretrain") == 1 and jobs.get("train") == 2
    retrained = re.findall(r"output: \S*?runs/(\w+/\w+)/eps-[^/]+/seed-1/model\.pt", result.stdout)
    assert retrained == ["synth_cxr/synth_cxr_public"] * 2
    assert not {"generate_synthetic", "ingest", "split", "preprocess", "calibrate_noise"} & set(jobs)

    # The fine-tuning scope concerns the pretrained inits' runs only.
    config = yaml.safe_load(SCENARIO.read_text())
    config["datasets"]["synth_cxr"]["training"]["fine_tune"] = {"last_blocks": 2}
    jobs = planned_jobs(
        snakemake("-n", "--configfile", str(write_config(tmp_path / "tune.yaml", config)), workdir=workdir)
    )
    assert jobs.get("train") == 2 and "pretrain" not in jobs

    # Memory and speed settings change no model: nothing is retrained or re-predicted.
    config = yaml.safe_load(SCENARIO.read_text())
    for dataset in config["datasets"].values():
        dataset["training"].update(physical_batch_size=4, num_workers=1, checkpoint_every_epochs=3)
    assert (
        planned_jobs(snakemake("-n", "--configfile", str(write_config(tmp_path / "mem.yaml", config)), workdir=workdir))
        == {}
    )

    # A new ε trains only its own runs (one per dataset and seed); the others are reused by the aggregation.
    config = yaml.safe_load(SCENARIO.read_text())
    config["study"]["epsilons"].append(8)
    jobs = planned_jobs(
        snakemake("-n", "--configfile", str(write_config(tmp_path / "eps.yaml", config)), workdir=workdir)
    )
    assert jobs.get("train") == jobs.get("predict") == jobs.get("evaluate") == 3 and jobs.get("aggregate") == 1
    assert not {"generate_synthetic", "ingest", "split", "preprocess"} & set(jobs)

    # Every run records the code that produced it; the resumable state is gone once the run is complete.
    run = results / "runs" / "synth_cxr" / "synth_cxr_public" / "eps-4" / "seed-1"
    record = json.loads((run / "privacy.json").read_text())
    assert record["privfair_version"] == privfair.__version__ and record["git_commit"]
    assert record["init"] == "synth_cxr_public" and record["steps"] > 0
    assert not (run / "resume.pt").exists()


@pytest.mark.workflow
def test_fairness_analysis_finds_the_planted_subgroup_effect_and_nothing_without_it(tmp_path):
    """Two copies of the embedded CT data, one with the lesion invisible under 60 (tests/scenario/ground_truth.yaml)."""
    snakemake("--cores", "2", "--configfile", str(GROUND_TRUTH), workdir=tmp_path)
    summary = pd.read_csv(
        tmp_path / "results" / "ground_truth" / "tables" / "fairness_summary.csv", keep_default_na=False, na_values=[""]
    )
    gaps = summary[(summary["kind"] == "gap") & (summary["metric"] == "auroc") & (summary["label"] == "macro")]
    planted = gaps[(gaps["dataset"] == "ct_effect") & (gaps["attribute"] == "age") & (gaps["group"] == "[0, 60)")]
    assert planted["flagged"].all() and (planted["ci_high"] < 0).all()
    null = gaps[gaps["dataset"] == "ct_null"]
    assert len(null) and not null["flagged"].any()
