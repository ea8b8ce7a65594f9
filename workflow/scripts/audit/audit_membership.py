import torch

from privfair.audit.membership import score_run
from privfair.core.io import atomic_output
from privfair.core.step import run_step
from privfair.train.predict import device_for_run


def main(snakemake):
    torch.set_num_threads(snakemake.threads)
    # From the config, not params: the batch size changes memory use, not the scores.
    batch_size = snakemake.config["datasets"][snakemake.wildcards.dataset]["training"]["physical_batch_size"]
    membership = snakemake.params.membership
    scores = score_run(
        snakemake.input.model,
        snakemake.input.cache,
        snakemake.input.manifest,
        snakemake.input.split,
        n_members=membership["n_members"],
        seed=membership["seed"],
        batch_size=batch_size,
        device=device_for_run(),
    )
    with atomic_output(snakemake.output[0]) as partial:
        scores.to_parquet(partial, index=False)


run_step(snakemake, main)
