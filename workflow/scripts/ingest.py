from privfair.ingest import ingest
from privfair.steps import run_step


def main(snakemake):
    manifest = ingest(snakemake.params.adapter, snakemake.input[0], snakemake.params.options)
    print(f"{len(manifest)} images of {manifest['patient_id'].nunique()} patients")
    manifest.to_parquet(snakemake.output[0], index=False)


run_step(snakemake, main)
