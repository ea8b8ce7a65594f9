localrules:
    analyse_fairness,
    plot_fairness_gaps,
    plot_fairness_metrics,
    plot_auroc_vs_training_count,
    plot_roc_curves,


rule subgroup_metrics:
    input:
        predictions=f"{RUN_DIR}/predictions.parquet",
        evaluation=f"{RUN_DIR}/metrics.parquet",
    output:
        f"{RUN_DIR}/subgroup_metrics.parquet",
    log:
        "results/logs/subgroup_metrics/{dataset}/eps-{epsilon}_seed-{seed}.log",
    conda:
        ENV
    params:
        subgroups=get_subgroup_spec(),
        bootstrap=get_bootstrap_spec(),
    script:
        "../scripts/subgroup_metrics.py"


rule analyse_fairness:
    input:
        metrics=get_grid_files("subgroup_metrics.parquet"),
        privacy=get_grid_files("privacy.json"),
        manifests=expand("results/data/{dataset}/manifest.parquet", dataset=config["study"]["datasets"]),
        splits=expand("results/data/{dataset}/split.parquet", dataset=config["study"]["datasets"]),
    output:
        **table_outputs("performance_gaps", "fairness_metrics", "p_values", "pearson"),
        summary="results/tables/fairness_summary.csv",
        correlations="results/tables/correlations.csv",
        counts="results/tables/training_counts.csv",
    log:
        "results/logs/analyse_fairness.log",
    conda:
        ENV
    params:
        datasets=config["study"]["datasets"],
        subgroups=get_subgroup_spec(),
        statistics=get_statistics_spec(),
    script:
        "../scripts/analyse_fairness.py"


rule plot_fairness_gaps:
    input:
        "results/tables/fairness_summary.csv",
    output:
        png=report(
            "results/figures/fairness_gap_{attribute}.png",
            caption="../report/fairness_gap.rst",
            category="Fairness",
            labels={"figure": "performance gap", "attribute": "{attribute}"},
        ),
        pdf="results/figures/fairness_gap_{attribute}.pdf",
    log:
        "results/logs/plot_fairness_gaps/{attribute}.log",
    conda:
        ENV
    script:
        "../scripts/plot_fairness_gaps.py"


rule plot_fairness_metrics:
    input:
        "results/tables/fairness_summary.csv",
    output:
        png=report(
            "results/figures/fairness_metrics.png",
            caption="../report/fairness_metrics_figure.rst",
            category="Fairness",
            labels={"figure": "fairness metrics"},
        ),
        pdf="results/figures/fairness_metrics.pdf",
    log:
        "results/logs/plot_fairness_metrics.log",
    conda:
        ENV
    script:
        "../scripts/plot_fairness_metrics.py"


rule plot_auroc_vs_training_count:
    input:
        summary="results/tables/fairness_summary.csv",
        counts="results/tables/training_counts.csv",
    output:
        png=report(
            "results/figures/auroc_vs_training_count.png",
            caption="../report/auroc_vs_training_count.rst",
            category="Privacy-utility",
            labels={"figure": "AUROC vs training count"},
        ),
        pdf="results/figures/auroc_vs_training_count.pdf",
    log:
        "results/logs/plot_auroc_vs_training_count.log",
    conda:
        ENV
    script:
        "../scripts/plot_auroc_vs_training_count.py"


rule plot_roc_curves:
    input:
        predictions=get_roc_runs("predictions.parquet"),
        evaluations=get_roc_runs("metrics.parquet"),
    output:
        png=report(
            "results/figures/roc_{dataset}.png",
            caption="../report/roc_curves.rst",
            category="Privacy-utility",
            labels={"figure": "ROC curves", "dataset": "{dataset}"},
        ),
        pdf="results/figures/roc_{dataset}.pdf",
    log:
        "results/logs/plot_roc_curves/{dataset}.log",
    conda:
        ENV
    params:
        epsilons=get_roc_epsilons,
    script:
        "../scripts/plot_roc_curves.py"
