from privfair.core.io import atomic_output
from privfair.core.step import run_step
from privfair.data.ingest import ingest


def main(snakemake):
    source = snakemake.params.source
    manifest, dropped = ingest(source["adapter"], snakemake.input[0], source)
    print(f"{len(manifest)} images of {manifest['patient_id'].nunique()} patients")
    if len(dropped):
        print("dropped or kept as unknown (source.on_invalid, labels, min_positive_patients):")
        print(dropped.to_string(index=False))
    with atomic_output(snakemake.output.manifest) as path:
        manifest.to_parquet(path, index=False)
    with atomic_output(snakemake.output.dropped) as path:
        dropped.to_csv(path, index=False)


run_step(snakemake, main)
