from pathlib import Path

import pandas as pd

from privfair.audit.membership import membership_audit_table
from privfair.core.step import run_step
from privfair.core.tables import write_table
from privfair.train.privacy import read_record

CAPTION = "Membership-inference audit of every model: attack AUROC, TPR at low FPR and the empirical ε lower bound."


def main(snakemake):
    numbers, view, notes = membership_audit_table(
        [read_record(path) for path in snakemake.input.privacy],
        [pd.read_parquet(path) for path in snakemake.input.scores],
        confidence=snakemake.params.confidence,
        runs=[Path(path).parent for path in snakemake.input.privacy],
    )
    write_table(
        numbers,
        view,
        snakemake.output,
        "membership_audit",
        caption=CAPTION,
        text_columns=("Dataset", "Init", "Attack"),
        notes=notes,
    )


run_step(snakemake, main)
