"""`snakemake release` on the tiny scenario: what may leave the building is shared, scanned and listed; the rest of
results/ stays private (the workflow's umask)."""

from __future__ import annotations

import stat
import subprocess
import sys

import pandas as pd
import pytest
import yaml
from helpers.workflow import SCENARIO, snakemake, write_config


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def scan(workdir) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "privfair.report.release", "scan", "results/scenario/release"]
    return subprocess.run(command, cwd=workdir, capture_output=True, text=True, check=False)


@pytest.mark.workflow
def test_release_shares_aggregates_leaves_out_seeded_models_and_the_rest_stays_private(tmp_path):
    # The tiny scenario, one dataset of it (the radiographs: patient, study and image ids and file names), to keep
    # the test short.
    config = yaml.safe_load(SCENARIO.read_text())
    config["study"].update(datasets=["synth_cxr"], init=["scratch"])
    scenario = str(write_config(tmp_path / "scenario.yaml", config))
    workdir = tmp_path / "study"
    snakemake("release", "--cores", "2", "--configfile", scenario, workdir=workdir)
    results = workdir / "results" / "scenario"
    folder = results / "release"
    released = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    for name in (
        "MANIFEST.md",
        "tables/privacy_utility.csv",
        "tables/privacy_records.tex",
        "tables/fairness_summary.csv",
        "tables/run_metrics.csv",
        "tables/training_counts.csv",
        "figures/roc_synth_cxr.pdf",
        "figures/fairness_gap_sex.png",
        "datasets/synth_cxr/summary.md",
    ):
        assert name in released, name
    # The scenario's DP runs are seeded: no model leaves, and each one left out is listed with its reason.
    assert not any(name.startswith("models/") for name in released)
    manifest = (folder / "MANIFEST.md").read_text()
    assert "| `synth_cxr/scratch/eps-4/seed-1` | seeded DP noise: reproducible research run" in manifest
    assert "| `synth_cxr/scratch/eps-inf/seed-1` | non-private model" in manifest
    assert "| synth_cxr patient_id | 90 | 0 |" in manifest
    log = (results / "logs" / "release.log").read_text()
    assert "scan: no identifier found" in log and "synth_cxr patient_id: 90 scanned for, 0 not scannable" in log
    # Shared files are readable by all; everything else under results/ is the owner's alone.
    assert mode(folder) == 0o755
    for path in folder.rglob("*"):
        if path.name != ".snakemake_timestamp":  # Snakemake's empty marker of a directory output
            assert mode(path) == (0o755 if path.is_dir() else 0o644), path
    runs = list((results / "runs").rglob("*"))
    assert any(p.name == "model.pt" for p in runs)
    for path in [*runs, *(results / "data").rglob("*")]:
        assert mode(path) == (0o700 if path.is_dir() else 0o600), path

    # Snakemake's HTML report cannot be a rule output: added by hand, it is scanned by hand, embedded files included.
    snakemake("--report", "results/scenario/release/report.html", "--configfile", scenario, workdir=workdir)
    result = scan(workdir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no identifier found" in result.stdout
    # A real id of the scenario planted in the release is found, and shown masked.
    patient = pd.read_parquet(results / "data" / "synth_cxr" / "manifest.parquet")["patient_id"].iloc[0]
    (folder / "notes.md").write_text(f"Case {patient} was excluded.\n")
    result = scan(workdir)
    assert result.returncode == 1 and "notes.md: synth_cxr patient_id" in result.stderr
    assert patient not in result.stdout + result.stderr
