import pandas as pd

from privfair.preprocess import build_cache
from privfair.steps import run_step


def main(snakemake):
    split = pd.read_parquet(snakemake.input[0])
    build_cache(split, snakemake.params.preprocess, snakemake.output.cache, snakemake.output.manifest,
                num_workers=snakemake.threads - 1)


run_step(snakemake, main)
