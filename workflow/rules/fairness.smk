localrules:
    analyse_fairness,


rule subgroup_metrics:
    input:
        predictions=f"{RUN_DIR}/predictions.parquet",
        evaluation=f"{RUN_DIR}/metrics.parquet",
    output:
        f"{RUN_DIR}/subgroup_metrics.parquet",
    log:
        "<results>/logs/subgroup_metrics/{dataset}/{init}/eps-{epsilon}_seed-{seed}.log",
    conda:
        ENV
    params:
        subgroups=get_subgroup_spec(),
        bootstrap=get_bootstrap_spec(),
    script:
        "../scripts/fairness/subgroup_metrics.py"


rule analyse_fairness:
    input:
        metrics=get_grid_files("subgroup_metrics.parquet"),
        privacy=get_grid_files("privacy.json"),
        manifests=expand("<results>/data/{dataset}/manifest.parquet", dataset=config["study"]["datasets"]),
        splits=expand("<results>/data/{dataset}/split.parquet", dataset=config["study"]["datasets"]),
    output:
        **table_outputs("performance_gaps", "fairness_metrics", "p_values", "pearson"),
        summary="<results>/tables/fairness_summary.csv",
        correlations="<results>/tables/correlations.csv",
        counts="<results>/tables/training_counts.csv",
    log:
        "<results>/logs/analyse_fairness.log",
    conda:
        ENV
    params:
        datasets=config["study"]["datasets"],
        subgroups=get_subgroup_spec(),
        statistics=get_statistics_spec(),
    script:
        "../scripts/fairness/analyse_fairness.py"
