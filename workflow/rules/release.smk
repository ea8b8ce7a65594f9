# What may leave the building: `snakemake release` collects the shareable results into results/<study>/release/ and scans
# them for every identifier of every dataset's manifest. Not part of `all`: a release is made on purpose.
localrules:
    release,


rule release:
    input:
        # Everything `all` makes is an aggregate (tables, figures, dataset summaries), as are these tables.
        shared=[
            *get_final_outputs(),
            *expand(
                "<results>/tables/{table}.csv",
                table=["run_metrics", "fairness_summary", "correlations", "training_counts"],
            ),
        ],
        models=get_grid_files("model.pt"),
        privacy=get_grid_files("privacy.json"),
        # Public datasets' identifiers too: their summaries are released beside the study's.
        manifests=expand("<results>/data/{dataset}/manifest.parquet", dataset=config["study"]["datasets"] + PUBLIC),
    output:
        directory("<results>/release"),
    log:
        "<results>/logs/release.log",
    conda:
        ENV
    params:
        datasets=config["study"]["datasets"] + PUBLIC,
    script:
        "../scripts/report/release.py"
