from privfair.core.step import run_step
from privfair.data.adapters import get_adapter


def main(snakemake):
    get_adapter(snakemake.params.adapter).generate(snakemake.output[0], **snakemake.params.synthetic)


run_step(snakemake, main)
