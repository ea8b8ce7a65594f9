"""Which code produced a run: the privfair version and the git commit, recorded in the run's outputs.

They are recorded, not made Snakemake params: a new commit must not rerun the study.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import privfair

UNKNOWN = "unknown"


def git_commit(directory=Path(privfair.__file__).parent) -> str:
    """The commit of the checkout holding ``directory`` ("-dirty" with uncommitted changes), else "unknown"."""
    try:
        result = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=40"],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):  # no git, or a hung file system: provenance must not fail a run
        return UNKNOWN
    return result.stdout.strip() if result.returncode == 0 and result.stdout.strip() else UNKNOWN


def provenance() -> dict:
    """Which code is running, to record in a run's outputs (not to make a Snakemake param of).

    Returns:
        ``{"privfair_version": ..., "git_commit": ...}``; the commit is that of :func:`git_commit` ("unknown" when
        git cannot tell, "-dirty" appended with uncommitted changes).
    """
    return {"privfair_version": privfair.__version__, "git_commit": git_commit()}
