import yaml

from privfair.core.io import atomic_output
from privfair.core.step import run_step


def main(snakemake):
    # The config as the study used it: the --configfile file(s) with every schema default filled in (memory and
    # speed settings left out: they change no result).
    with atomic_output(snakemake.output[0]) as path:
        path.write_text(yaml.safe_dump(snakemake.params.config, sort_keys=False, allow_unicode=True))
    print(f"the study's config, defaults included: {snakemake.output[0]}")


run_step(snakemake, main)
