#!/usr/bin/env bash
# The tiny scenario's whole DAG through a real one-node SLURM cluster, submitted as users submit it:
# `snakemake --profile <the real profile + CI overrides>`. Asserts through sacct that every training job ran under
# SLURM with one GPU requested and that every job completed; then stops the daemons it started.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"   # as after `source .venv/bin/activate`; jobs inherit the environment
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

# Preemption: a training job that receives SLURM's warning signal (as `--signal=USR1@…` sends it, to the job's
# steps) saves its state and fails; Snakemake resubmits it with a longer time limit and the new job resumes.
python .ci/preempt_config.py tests/scenario/config.yaml "$WORK/preempt.yaml"
run=results/scenario/runs/synth_cxr/scratch/eps-4/seed-1
since=$(date +%Y-%m-%dT%H:%M:%S)
t0=$SECONDS
timeout -k 30 600 snakemake --profile "$WORK/profile" --configfile "$WORK/preempt.yaml" --directory "$WORK/study" \
  "$run/privacy.json" > "$WORK/preempt.log" 2>&1 &
snakemake_pid=$!
for _ in $(seq 300); do [ -e "$WORK/study/$run/resume.pt" ] && break; sleep 0.5; done   # after epoch 1
job=$(squeue -h -t R -o '%i %k' | awk '$2 == "rule_train_wildcards_synth_cxr_scratch_4_1" {print $1}')
[ -n "$job" ] || { cat "$WORK/preempt.log"; echo "no running training job to signal"; exit 1; }
scancel --signal=USR1 "$job"
wait "$snakemake_pid" || { cat "$WORK/preempt.log"; echo "the preempted run did not complete"; exit 1; }
echo "slurm-ci: preempted and resumed run in $(( SECONDS - t0 )) s"
grep -h "received SIGUSR1" "$WORK/study/.snakemake/slurm_logs/rule_train/synth_cxr_scratch_4_1/$job.log"
grep "resumed from" "$WORK/study/results/scenario/logs/train/synth_cxr/scratch/eps-4_seed-1.log"
[ ! -e "$WORK/study/$run/resume.pt" ] || { echo "resume.pt left behind"; exit 1; }
states=$(sacct -X -P -n -S "$since" -o Comment,State,ReqTRES | awk -F'|' '$1 ~ /^rule_train/ {print $2 "," $3}' | tr '\n' ' ')
echo "training jobs: $states"
[[ $states =~ ^FAILED,.*gres/gpu=1.*\ COMPLETED,.*gres/gpu=1.*\ $ ]] || { echo "expected a failed then a completed training job"; exit 1; }
python - "$WORK/study/$run/privacy.json" <<'PY'
import json, sys
record = json.load(open(sys.argv[1]))
steps_per_epoch = round(1 / record["sample_rate"])
assert record["steps"] == record["epochs"] * steps_per_epoch == 6 * steps_per_epoch, record
print(f"privacy record after resume: {record['steps']} steps, sigma {record['noise_multiplier']:.4f}, "
      f"epsilon spent {record['epsilon_spent']:.3f}")
PY
