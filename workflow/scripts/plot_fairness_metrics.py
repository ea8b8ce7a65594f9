import pandas as pd

from privfair.fairness_plots import plot_fairness_metrics
from privfair.steps import run_step


def main(snakemake):
    plot_fairness_metrics(
        pd.read_csv(snakemake.input[0], keep_default_na=False, na_values=[""]),
        snakemake.output.png,
        snakemake.output.pdf,
    )


run_step(snakemake, main)
