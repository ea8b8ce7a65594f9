rule evaluate:
    input:
        f"{RUN_DIR}/predictions.parquet",
    output:
        summary=f"{RUN_DIR}/metrics.parquet",
        bootstrap=f"{RUN_DIR}/bootstrap.parquet",
    log:
        "<results>/logs/evaluate/{dataset}/{init}/eps-{epsilon}_seed-{seed}.log",
    conda:
        ENV
    params:
        evaluation=sorted_keys(config["evaluation"]),
    script:
        "../scripts/evaluate/evaluate.py"


# Aggregation, tables and figures are light: they run on the submitting machine, never as cluster jobs.
localrules:
    aggregate,


rule aggregate:
    input:
        summaries=get_grid_files("metrics.parquet"),
        bootstraps=get_grid_files("bootstrap.parquet"),
        privacy=get_grid_files("privacy.json"),
    output:
        **table_outputs("privacy_utility", "per_label_auroc", "privacy_records", category="Privacy-utility"),
        runs="<results>/tables/run_metrics.csv",
    log:
        "<results>/logs/aggregate.log",
    conda:
        ENV
    params:
        ci=config["evaluation"]["ci"],
    script:
        "../scripts/evaluate/aggregate.py"
