import torch

from privfair.audit.canary import include_canaries
from privfair.core.epsilon import parse_epsilon
from privfair.core.provenance import provenance
from privfair.core.step import run_step
from privfair.train.job import train_and_write
from privfair.train.settings import execution_settings


def main(snakemake):
    torch.set_num_threads(snakemake.threads)
    w = snakemake.wildcards
    seed = int(w.seed)
    included = include_canaries(
        snakemake.input.split, snakemake.input.manifest, snakemake.output.split, seed=(snakemake.params.seed, seed)
    )
    print(f"{int(included['included'].sum())} of {len(included)} canaries join the training split")
    # As rule train: memory and speed settings come from the config, not params.
    execution = execution_settings(snakemake.config["datasets"][w.dataset]["training"])
    train_and_write(
        snakemake.input.cache,
        snakemake.input.manifest,
        snakemake.output.split,
        {**snakemake.params.training, **execution},
        epsilon=parse_epsilon(w.epsilon),
        seed=seed,
        outputs={name: snakemake.output[name] for name in ("model", "history", "privacy")},
        run={"dataset": w.dataset, "init": "scratch", "seed": seed},
        provenance=provenance(),
        # The canaries change N_train, so σ is calibrated in this job for this run's N (rule calibrate_noise's file
        # is for the study's N and would be refused).
        calibration_path=None,
    )


run_step(snakemake, main)
