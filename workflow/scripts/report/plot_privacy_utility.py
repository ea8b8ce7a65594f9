import pandas as pd

from privfair.core.step import run_step
from privfair.report.utility_figures import plot_privacy_utility


def main(snakemake):
    plot_privacy_utility(pd.read_csv(snakemake.input[0]), snakemake.output.png, snakemake.output.pdf)


run_step(snakemake, main)
