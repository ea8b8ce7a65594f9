import math

import torch

from privfair.core.provenance import provenance
from privfair.core.step import run_step
from privfair.train.job import train_and_write
from privfair.train.settings import execution_settings


def main(snakemake):
    torch.set_num_threads(snakemake.threads)
    public = snakemake.wildcards.public
    # Public data: trained without privacy, on its own patient split, the checkpoint chosen on its own validation set.
    train_and_write(
        snakemake.input.cache,
        snakemake.input.manifest,
        snakemake.input.split,
        {**snakemake.params.training, **execution_settings(snakemake.config["datasets"][public]["training"])},
        epsilon=math.inf,
        seed=snakemake.params.seed,
        outputs={
            "model": snakemake.output.model,
            "history": snakemake.output.history,
            "privacy": snakemake.output.record,
        },
        run={"dataset": public, "public": True, "seed": snakemake.params.seed},
        provenance=provenance(),
    )


run_step(snakemake, main)
