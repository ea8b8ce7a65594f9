import pandas as pd

from privfair.core.epsilon import parse_epsilon
from privfair.core.step import run_step
from privfair.fairness.metrics import thresholds_from_summary
from privfair.report.fairness_figures import plot_roc_curves


def main(snakemake):
    models = {
        parse_epsilon(epsilon): (pd.read_parquet(predictions), thresholds_from_summary(pd.read_parquet(evaluation)))
        for epsilon, predictions, evaluation in zip(
            snakemake.params.epsilons, snakemake.input.predictions, snakemake.input.evaluations
        )
    }
    plot_roc_curves(models, snakemake.wildcards.dataset, snakemake.output.png, snakemake.output.pdf)


run_step(snakemake, main)
