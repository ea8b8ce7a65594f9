import pandas as pd

from privfair.core.step import run_step
from privfair.core.tables import write_table
from privfair.evaluate.runs import run_key
from privfair.fairness.analysis import correlations, run_quantities, summarise, training_counts
from privfair.fairness.metrics import attribute_notes
from privfair.fairness.tables import (
    correlation_table,
    fairness_metric_table,
    p_value_table,
    performance_gap_table,
    table_notes,
)
from privfair.train.privacy import read_record


def main(snakemake):
    spec, statistics = snakemake.params.subgroups, snakemake.params.statistics
    quantities, notes = {}, {}
    for record_path, path in zip(snakemake.input.privacy, snakemake.input.metrics):
        record = read_record(record_path)
        metrics = pd.read_parquet(path)
        notes[record["dataset"]] = attribute_notes(metrics, spec, record["dataset"])
        quantities[run_key(record)] = run_quantities(metrics)
    notes = [note for dataset_notes in notes.values() for note in dataset_notes]
    for note in notes:
        print(f"privfair: {note}")
    summary = summarise(
        quantities, ci=statistics["ci"], correction=statistics["multiple_testing"], alpha=statistics["alpha"]
    )
    counts = {
        dataset: training_counts(pd.read_parquet(manifest_path), pd.read_parquet(split_path), spec)
        for dataset, manifest_path, split_path in zip(
            snakemake.params.datasets, snakemake.input.manifests, snakemake.input.splits
        )
    }
    relations = correlations(summary, counts, ci=statistics["ci"])
    summary.to_csv(snakemake.output.summary, index=False)
    relations.to_csv(snakemake.output.correlations, index=False)
    pd.concat([table.assign(dataset=dataset) for dataset, table in counts.items()]).to_csv(
        snakemake.output.counts, index=False
    )
    text = ("Dataset", "Init", "Attribute", "Group", "Metric", "Quantity", "Relation", "Note")
    method = statistics["multiple_testing"]
    for name, (numbers, view), caption in (
        (
            "performance_gaps",
            performance_gap_table(summary),
            "Macro-AUROC performance gap per subgroup, init and budget.",
        ),
        (
            "fairness_metrics",
            fairness_metric_table(summary),
            "Standard fairness differences per attribute, init and budget.",
        ),
        ("p_values", p_value_table(summary, method), f"DP vs non-private: paired bootstrap p-values ({method})."),
        (
            "pearson",
            correlation_table(relations),
            "Pearson's r per initialisation: budget vs gaps, AUROC change (DP − non-private) vs training count.",
        ),
    ):
        write_table(
            numbers,
            view,
            snakemake.output,
            name,
            caption=caption,
            text_columns=(*text, "Label"),
            notes=[*notes, *table_notes(name, summary, numbers)],
        )


run_step(snakemake, main)
