from privfair.audit.canary import canary_audit_table
from privfair.core.step import run_step
from privfair.core.tables import write_table
from privfair.train.privacy import read_record

CAPTION = "One-run canary audit: correct guesses on the canaries and the empirical ε lower bound of each audited run."


def main(snakemake):
    summaries = [read_record(path) for path in snakemake.input]
    numbers, view, notes = canary_audit_table(summaries)
    write_table(
        numbers, view, snakemake.output, "canary_audit", caption=CAPTION, text_columns=("Dataset",), notes=notes
    )


run_step(snakemake, main)
