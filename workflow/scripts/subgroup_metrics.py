import pandas as pd

from privfair.fairness import group_metrics, nothing_to_group_by, thresholds_from_summary, unrecorded_attributes
from privfair.steps import run_step


def main(snakemake):
    predictions = pd.read_parquet(snakemake.input.predictions)
    thresholds = thresholds_from_summary(pd.read_parquet(snakemake.input.evaluation))
    table = group_metrics(predictions, thresholds, snakemake.params.subgroups, **snakemake.params.bootstrap)
    unrecorded = unrecorded_attributes(table)
    if unrecorded:
        print(f"privfair: {nothing_to_group_by(unrecorded, snakemake.wildcards.dataset)}")
    print(table.drop(columns="bootstrap").to_string())
    table.to_parquet(snakemake.output[0], index=False)


run_step(snakemake, main)
