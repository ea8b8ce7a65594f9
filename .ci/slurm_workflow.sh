#!/usr/bin/env bash
# The tiny scenario's whole DAG through a real one-node SLURM cluster, submitted as users submit it:
# `snakemake --profile <the real profile + CI overrides>`. Asserts through sacct that every training job ran under
# SLURM with one GPU requested and that every job completed; then stops the daemons it started.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"   # jobs run `python -m snakemake` from the submitting environment
WORK=$(mktemp -d /tmp/privfair-slurm-ci.XXXXXX)
python .ci/ci_profile.py slurm/config.yaml .ci/slurm_profile_overrides.yaml "$WORK/profile"

bash .ci/slurm_cluster.sh start
trap 'bash .ci/slurm_cluster.sh stop' EXIT
since=$(date +%Y-%m-%dT%H:%M:%S)

t0=$SECONDS
timeout -k 30 900 snakemake --profile "$WORK/profile" --configfile tests/scenario/config.yaml --directory "$WORK/study"
echo "slurm-ci: tiny scenario through SLURM in $(( SECONDS - t0 )) s"

sacct -X -P -n -S "$since" -o JobID,Comment,State,ReqTRES > "$WORK/sacct.txt"
python .ci/check_sacct.py "$WORK/sacct.txt" tests/scenario/config.yaml
