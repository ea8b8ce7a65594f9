import pandas as pd

from privfair.core.step import run_step
from privfair.report.fairness_figures import plot_auroc_vs_training_count


def main(snakemake):
    read = {"keep_default_na": False, "na_values": [""]}
    plot_auroc_vs_training_count(
        pd.read_csv(snakemake.input.summary, **read),
        pd.read_csv(snakemake.input.counts, **read),
        snakemake.output.png,
        snakemake.output.pdf,
    )


run_step(snakemake, main)
