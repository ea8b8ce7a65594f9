import pandas as pd

from privfair.core.step import run_step
from privfair.fairness.metrics import attribute_notes, group_metrics, thresholds_from_summary


def main(snakemake):
    predictions = pd.read_parquet(snakemake.input.predictions)
    thresholds = thresholds_from_summary(pd.read_parquet(snakemake.input.evaluation))
    table = group_metrics(predictions, thresholds, snakemake.params.subgroups, **snakemake.params.bootstrap)
    for note in attribute_notes(table, snakemake.params.subgroups, snakemake.wildcards.dataset):
        print(f"privfair: {note}")
    print(table.drop(columns="bootstrap").to_string())
    table.to_parquet(snakemake.output[0], index=False)


run_step(snakemake, main)
