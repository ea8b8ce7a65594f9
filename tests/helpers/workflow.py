"""Running the workflow as users run it: the Snakefile of this checkout, in a folder of the test's own."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
SCENARIO = REPO / "tests" / "scenario" / "config.yaml"
GROUND_TRUTH = REPO / "tests" / "scenario" / "ground_truth.yaml"


def snakemake(*args, workdir: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), *args]
    if workdir is not None:
        command += ["--directory", str(workdir)]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def planned_jobs(result: subprocess.CompletedProcess) -> dict[str, int]:
    """Rule name -> job count, from the 'Job stats' table of a dry-run ({} when there is nothing to do)."""
    text = result.stdout + result.stderr
    if "Job stats" not in text:
        return {}
    table = text.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.MULTILINE) if m[1] != "total"}


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config))
    return path
