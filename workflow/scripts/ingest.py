from privfair.ingest import ingest
from privfair.steps import run_step


def main(snakemake):
    source = snakemake.params.source
    manifest = ingest(source["adapter"], snakemake.input[0], source)
    print(f"{len(manifest)} images of {manifest['patient_id'].nunique()} patients")
    manifest.to_parquet(snakemake.output[0], index=False)


run_step(snakemake, main)
