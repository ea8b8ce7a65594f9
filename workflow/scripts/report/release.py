from pathlib import Path

from privfair.core.step import run_step
from privfair.report.release import build_release


def main(snakemake):
    build_release(
        snakemake.output[0],
        files=snakemake.input.shared,
        runs=list(zip(snakemake.input.models, snakemake.input.privacy)),
        manifests=dict(zip(snakemake.params.datasets, snakemake.input.manifests)),
        root=Path(snakemake.output[0]).parent,  # the study's results folder
    )


run_step(snakemake, main)
