import pandas as pd

from privfair.core.step import run_step
from privfair.report.fairness_figures import plot_gaps


def main(snakemake):
    plot_gaps(
        pd.read_csv(snakemake.input[0], keep_default_na=False, na_values=[""]),
        snakemake.wildcards.attribute,
        snakemake.output.png,
        snakemake.output.pdf,
    )


run_step(snakemake, main)
