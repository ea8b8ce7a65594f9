"""Assert, from `sacct -X -P -n -o JobID,Comment,State,ReqTRES`, how the scenario ran on SLURM.

Every grid point's training job (one per dataset, init, ε and seed) went through SLURM with one GPU requested,
CPU-only rules requested none, local rules (aggregation, tables, figures) never became jobs, and every job completed.
Usage: python .ci/check_sacct.py SACCT_OUTPUT CONFIG
"""

import re
import sys
from collections import Counter
from pathlib import Path

import yaml

GPU_RULES = {"pretrain", "train", "predict"}
LOCAL_RULES = {
    "all",
    "aggregate",
    "plot_privacy_utility",
    "plot_per_label",
    "summarise_dataset",
    "analyse_fairness",
    "plot_fairness_gaps",
    "plot_fairness_metrics",
    "plot_auroc_vs_training_count",
    "plot_roc_curves",
}


def main(sacct_path, config_path):
    config = yaml.safe_load(Path(config_path).read_text())
    study = config["study"]
    inits = sum(len(config["datasets"][d].get("init", study.get("init", ["scratch"]))) for d in study["datasets"])
    grid = inits * len(study["epsilons"]) * len(study["seeds"])
    rows = [line.split("|") for line in Path(sacct_path).read_text().splitlines() if line.strip()]
    problems, rules = [], Counter()
    for job_id, comment, state, tres in rows:
        rule = re.match(r"rule_(.+?)(_wildcards_|$)", comment)
        if not rule:
            continue  # not a Snakemake job
        rule = rule[1]
        rules[rule] += 1
        if state != "COMPLETED":
            problems.append(f"job {job_id} ({comment}) is {state}")
        if ("gres/gpu=1" in tres) != (rule in GPU_RULES):
            problems.append(f"job {job_id} ({comment}) requested {tres!r}")
    print("SLURM jobs per rule:", dict(sorted(rules.items())))
    if rules["train"] != grid:
        problems.append(f"{rules['train']} training jobs went through SLURM, expected {grid}")
    if LOCAL_RULES & set(rules):
        problems.append(f"local rules ran as SLURM jobs: {sorted(LOCAL_RULES & set(rules))}")
    if problems:
        sys.exit("sacct check failed:\n  " + "\n  ".join(problems))
    print(f"sacct check passed: {len(rows)} jobs completed, {grid} training jobs with gres/gpu=1")


if __name__ == "__main__":
    main(*sys.argv[1:])
