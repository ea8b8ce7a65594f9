import pandas as pd

from privfair.plots import plot_per_label
from privfair.steps import run_step


def main(snakemake):
    plot_per_label(pd.read_csv(snakemake.input[0]), snakemake.output.png, snakemake.output.pdf)


run_step(snakemake, main)
