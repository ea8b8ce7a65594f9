import pandas as pd

from privfair.core.step import run_step
from privfair.evaluate.metrics import evaluate_predictions


def main(snakemake):
    options = snakemake.params.evaluation
    summary, bootstrap = evaluate_predictions(
        pd.read_parquet(snakemake.input[0]), n_bootstrap=options["n_bootstrap"], seed=options["seed"], ci=options["ci"]
    )
    print(summary.to_string())
    summary.to_parquet(snakemake.output.summary, index=False)
    bootstrap.to_parquet(snakemake.output.bootstrap, index=False)


run_step(snakemake, main)
