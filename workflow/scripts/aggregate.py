import pandas as pd

from privfair.aggregate import per_label_table, privacy_utility_table, run_table, to_markdown
from privfair.privacy import read_record
from privfair.steps import run_step
from privfair.tables import privacy_record_table, write_table


def main(snakemake):
    records = [read_record(path) for path in snakemake.input.privacy]
    runs = run_table([pd.read_parquet(path) for path in snakemake.input.summaries], records)
    bootstraps = {(r["dataset"], r["epsilon"], r["seed"]): pd.read_parquet(path)
                  for r, path in zip(records, snakemake.input.bootstraps)}
    table = privacy_utility_table(runs, bootstraps, ci=snakemake.params.ci)
    runs.to_csv(snakemake.output.runs, index=False)
    table.to_csv(snakemake.output.table, index=False)
    per_label_table(runs, bootstraps, ci=snakemake.params.ci).to_csv(snakemake.output.per_label, index=False)
    with open(snakemake.output.markdown, "w") as f:
        f.write(to_markdown(table))
    numbers, view = privacy_record_table(records)
    write_table(numbers, view, {fmt: snakemake.output[f"privacy_records_{fmt}"] for fmt in ("csv", "md", "tex")},
                caption="Privacy spent by each model.", text_columns=("Dataset", "Accountant"))


run_step(snakemake, main)
