import pandas as pd

from privfair.fairness_plots import plot_auroc_vs_training_count
from privfair.steps import run_step


def main(snakemake):
    read = {"keep_default_na": False, "na_values": [""]}
    plot_auroc_vs_training_count(
        pd.read_csv(snakemake.input.summary, **read),
        pd.read_csv(snakemake.input.counts, **read),
        snakemake.output.png,
        snakemake.output.pdf,
    )


run_step(snakemake, main)
