import pandas as pd

from privfair.core.step import run_step
from privfair.core.tables import write_table
from privfair.evaluate.aggregate import (
    per_label_table,
    privacy_record_table,
    privacy_utility_table,
    run_table,
    utility_notes,
    utility_view,
)
from privfair.evaluate.runs import run_key
from privfair.train.privacy import read_record

CAPTIONS = {
    "privacy_utility": (
        "Test macro AUROC per initialisation and budget, its paired change from non-private, the paired gain from "
        "pretraining, and the privacy spent."
    ),
    "per_label_auroc": "Test AUROC of every finding per initialisation and budget.",
    "privacy_records": "Privacy spent by each model.",
}


def main(snakemake):
    records = [read_record(path) for path in snakemake.input.privacy]
    runs = run_table([pd.read_parquet(path) for path in snakemake.input.summaries], records)
    bootstraps = {run_key(r): pd.read_parquet(path) for r, path in zip(records, snakemake.input.bootstraps)}
    runs.to_csv(snakemake.output.runs, index=False)
    utility = privacy_utility_table(runs, bootstraps, ci=snakemake.params.ci)
    per_label = per_label_table(runs, bootstraps, ci=snakemake.params.ci, reliability=True)
    tables = {
        "privacy_utility": (utility, utility_view(utility)),
        "per_label_auroc": (per_label, utility_view(per_label)),
        "privacy_records": privacy_record_table(records),
    }
    notes = {"privacy_utility": utility_notes(utility), "per_label_auroc": utility_notes(per_label)}
    for name, (numbers, view) in tables.items():
        write_table(
            numbers,
            view,
            snakemake.output,
            name,
            caption=CAPTIONS[name],
            text_columns=("Dataset", "Init", "Label", "Accountant"),
            notes=notes.get(name, ()),
        )


run_step(snakemake, main)
