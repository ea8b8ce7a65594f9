from privfair.audit.canary import build_canary_cache
from privfair.core.step import run_step


def main(snakemake):
    canaries = snakemake.params.canaries
    build_canary_cache(
        snakemake.input.cache,
        snakemake.input.manifest,
        snakemake.output.cache,
        snakemake.output.manifest,
        n_canaries=canaries["n_canaries"],
        seed=canaries["seed"],
    )


run_step(snakemake, main)
