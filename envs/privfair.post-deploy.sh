#!/usr/bin/env bash
# Installs privfair itself into the conda environment of envs/privfair.yaml (the env file holds its dependencies).
# `snakemake --sdm conda` runs this once, inside the new environment ($CONDA_PREFIX), right after creating it.
#
# Why a post-deploy script and not `-e ..` under `pip:` in the env file: Snakemake copies both files to
# <conda-prefix>/<hash>.yaml and <hash>.post-deploy.sh (.snakemake/conda/ by default) before using them, so a
# relative path in either would point into that folder, not at this checkout. The script runs from Snakemake's
# working directory instead, and finds the checkout as
#   1. $PRIVFAIR_ROOT, when set (the workflow sets it to the checkout holding the Snakefile), else
#   2. the working directory, when it is the checkout (`snakemake --sdm conda` from the repository root).
# By hand (`conda env create -f envs/privfair.yaml`, then `conda activate privfair`): bash envs/privfair.post-deploy.sh
set -euo pipefail

root="${PRIVFAIR_ROOT:-$PWD}"
if [[ ! -f "$root/privfair/__init__.py" ]] || ! grep -q '^name = "privfair"' "$root/pyproject.toml" 2>/dev/null; then
    echo "privfair post-deploy: '$root' is not the privfair checkout; set PRIVFAIR_ROOT=/path/to/privfair" >&2
    exit 1
fi
python="${CONDA_PREFIX:?privfair post-deploy: run inside the environment (CONDA_PREFIX is unset)}/bin/python"

# Editable: jobs run the checkout's code, as .venv does; the environment's hash covers only the env file and this
# script, so a copy of the package would go stale unnoticed. --no-deps: the dependencies are the env file's pins.
# --no-build-isolation: build with the environment's setuptools rather than download one (compute nodes are
# often offline).
"$python" -m pip install --quiet --no-deps --no-build-isolation --editable "$root"
"$python" -c 'import privfair; print(f"privfair {privfair.__version__} from {privfair.__path__[0]}")'
