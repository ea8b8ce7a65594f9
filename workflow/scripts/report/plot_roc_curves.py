import pandas as pd

from privfair.core.epsilon import parse_epsilon
from privfair.core.step import run_step
from privfair.fairness.metrics import thresholds_from_summary
from privfair.report.fairness_figures import plot_roc_curves


def main(snakemake):
    # params.runs: one {"init", "epsilon"} per model, aligned with input.predictions and input.evaluations.
    runs = snakemake.params.runs
    if not len(runs) == len(snakemake.input.predictions) == len(snakemake.input.evaluations):
        raise ValueError(
            f"plot_roc_curves: {len(runs)} runs but {len(snakemake.input.predictions)} predictions and "
            f"{len(snakemake.input.evaluations)} evaluations"
        )
    models = {
        (str(run["init"]), parse_epsilon(run["epsilon"])): (
            pd.read_parquet(predictions),
            thresholds_from_summary(pd.read_parquet(evaluation)),
        )
        for run, predictions, evaluation in zip(runs, snakemake.input.predictions, snakemake.input.evaluations)
    }
    plot_roc_curves(models, snakemake.wildcards.dataset, snakemake.output.png, snakemake.output.pdf)


run_step(snakemake, main)
