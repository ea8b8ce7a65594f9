import pandas as pd

from privfair.core.io import atomic_output
from privfair.core.step import run_step
from privfair.data.split import split_patients


def main(snakemake):
    options = snakemake.params.split
    manifest = pd.read_parquet(snakemake.input[0])
    split = split_patients(manifest, options["fractions"], options["seed"], source=snakemake.input[0])
    print(split.groupby("split").agg(images=("image_id", "size"), patients=("patient_id", "nunique")))
    with atomic_output(snakemake.output[0]) as path:
        split.to_parquet(path, index=False)


run_step(snakemake, main)
