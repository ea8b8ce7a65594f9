import pandas as pd

from privfair.config import parse_epsilon
from privfair.fairness import thresholds_from_summary
from privfair.fairness_plots import plot_roc_curves
from privfair.steps import run_step


def main(snakemake):
    models = {
        parse_epsilon(epsilon): (pd.read_parquet(predictions), thresholds_from_summary(pd.read_parquet(evaluation)))
        for epsilon, predictions, evaluation in zip(
            snakemake.params.epsilons, snakemake.input.predictions, snakemake.input.evaluations
        )
    }
    plot_roc_curves(models, snakemake.wildcards.dataset, snakemake.output.png, snakemake.output.pdf)


run_step(snakemake, main)
