import pandas as pd

from privfair.core.step import run_step
from privfair.data.preprocess import build_cache


def main(snakemake):
    manifest = pd.read_parquet(snakemake.input[0])
    build_cache(
        manifest,
        snakemake.params.preprocess,
        snakemake.output.cache,
        snakemake.output.manifest,
        num_workers=snakemake.threads - 1,
    )


run_step(snakemake, main)
