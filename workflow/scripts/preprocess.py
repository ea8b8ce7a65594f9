import pandas as pd

from privfair.preprocess import build_cache
from privfair.steps import run_step


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
