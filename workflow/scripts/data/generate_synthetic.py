from privfair.core.step import run_step
from privfair.data.synth import GENERATORS


def main(snakemake):
    GENERATORS[snakemake.params.adapter](snakemake.output[0], **snakemake.params.synthetic)


run_step(snakemake, main)
