rule evaluate:
    input:
        f"{RUN_DIR}/predictions.parquet",
    output:
        summary=f"{RUN_DIR}/metrics.parquet",
        bootstrap=f"{RUN_DIR}/bootstrap.parquet",
    params:
        evaluation=sorted_keys(config["evaluation"]),
    log:
        "results/logs/evaluate/{dataset}/eps-{epsilon}_seed-{seed}.log",
    conda:
        ENV
    script:
        "../scripts/evaluate.py"


# Aggregation, tables and figures are light: they run on the submitting machine, never as cluster jobs.
localrules:
    aggregate,


rule aggregate:
    input:
        summaries=get_grid_files("metrics.parquet"),
        bootstraps=get_grid_files("bootstrap.parquet"),
        privacy=get_grid_files("privacy.json"),
    output:
        runs="results/tables/run_metrics.csv",
        **table_outputs("privacy_utility", "per_label_auroc", "privacy_records", category="Privacy-utility"),
    params:
        ci=config["evaluation"]["ci"],
    log:
        "results/logs/aggregate.log",
    conda:
        ENV
    script:
        "../scripts/aggregate.py"
