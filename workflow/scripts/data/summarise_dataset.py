import pandas as pd

from privfair.core.io import atomic_output
from privfair.core.step import run_step
from privfair.data.summary import plot_summary, summary_table, to_latex, to_markdown


def main(snakemake):
    manifest = pd.read_parquet(snakemake.input.split)
    dropped = pd.read_csv(snakemake.input.dropped)
    if len(dropped):
        print(f"rows dropped at ingest (source.on_invalid):\n{dropped.to_string(index=False)}")
    table = summary_table(manifest, dropped)
    outputs = {
        snakemake.output.csv: lambda p: table.to_csv(p, index=False),
        snakemake.output.md: lambda p: p.write_text(to_markdown(table, snakemake.wildcards.dataset)),
        snakemake.output.tex: lambda p: p.write_text(
            to_latex(table, f"What went into {snakemake.wildcards.dataset}, per split.")
        ),
    }
    for path, write in outputs.items():
        with atomic_output(path) as partial:
            write(partial)
    plot_summary(manifest, snakemake.wildcards.dataset, snakemake.output.png, snakemake.output.pdf)


run_step(snakemake, main)
