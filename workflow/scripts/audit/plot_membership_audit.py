import pandas as pd

from privfair.core.step import run_step
from privfair.report.audit_figures import plot_membership_audit


def main(snakemake):
    plot_membership_audit(pd.read_csv(snakemake.input[0]), snakemake.output.png, snakemake.output.pdf)


run_step(snakemake, main)
