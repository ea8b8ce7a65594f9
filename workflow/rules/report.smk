# Figures are light: they run on the submitting machine, never as cluster jobs.
localrules:
    save_config,
    plot_privacy_utility,
    plot_per_label,
    plot_fairness_gaps,
    plot_fairness_metrics,
    plot_auroc_vs_training_count,
    plot_roc_curves,


rule plot_privacy_utility:
    input:
        "<results>/tables/privacy_utility.csv",
    output:
        png=report(
            "<results>/figures/privacy_utility.png",
            caption="../report/privacy_utility.rst",
            category="Privacy-utility",
        ),
        pdf="<results>/figures/privacy_utility.pdf",
    log:
        "<results>/logs/plot_privacy_utility.log",
    conda:
        ENV
    script:
        "../scripts/report/plot_privacy_utility.py"


rule plot_per_label:
    input:
        "<results>/tables/per_label_auroc.csv",
    output:
        png=report(
            "<results>/figures/per_label_auroc.png",
            caption="../report/per_label_auroc.rst",
            category="Privacy-utility",
        ),
        pdf="<results>/figures/per_label_auroc.pdf",
    log:
        "<results>/logs/plot_per_label.log",
    conda:
        ENV
    script:
        "../scripts/report/plot_per_label.py"


rule plot_fairness_gaps:
    input:
        "<results>/tables/fairness_summary.csv",
    output:
        png=report(
            "<results>/figures/fairness_gap_{attribute}.png",
            caption="../report/fairness_gap.rst",
            category="Fairness",
            labels={"figure": "performance gap", "attribute": "{attribute}"},
        ),
        pdf="<results>/figures/fairness_gap_{attribute}.pdf",
    log:
        "<results>/logs/plot_fairness_gaps/{attribute}.log",
    conda:
        ENV
    script:
        "../scripts/report/plot_fairness_gaps.py"


rule plot_fairness_metrics:
    input:
        "<results>/tables/fairness_summary.csv",
    output:
        png=report(
            "<results>/figures/fairness_metrics.png",
            caption="../report/fairness_metrics_figure.rst",
            category="Fairness",
            labels={"figure": "fairness metrics"},
        ),
        pdf="<results>/figures/fairness_metrics.pdf",
    log:
        "<results>/logs/plot_fairness_metrics.log",
    conda:
        ENV
    script:
        "../scripts/report/plot_fairness_metrics.py"


rule plot_auroc_vs_training_count:
    input:
        summary="<results>/tables/fairness_summary.csv",
        counts="<results>/tables/training_counts.csv",
    output:
        png=report(
            "<results>/figures/auroc_vs_training_count.png",
            caption="../report/auroc_vs_training_count.rst",
            category="Privacy-utility",
            labels={"figure": "AUROC vs training count"},
        ),
        pdf="<results>/figures/auroc_vs_training_count.pdf",
    log:
        "<results>/logs/plot_auroc_vs_training_count.log",
    conda:
        ENV
    script:
        "../scripts/report/plot_auroc_vs_training_count.py"


rule plot_roc_curves:
    input:
        predictions=get_roc_runs("predictions.parquet"),
        evaluations=get_roc_runs("metrics.parquet"),
    output:
        png=report(
            "<results>/figures/roc_{dataset}.png",
            caption="../report/roc_curves.rst",
            category="Privacy-utility",
            labels={"figure": "ROC curves", "dataset": "{dataset}"},
        ),
        pdf="<results>/figures/roc_{dataset}.pdf",
    log:
        "<results>/logs/plot_roc_curves/{dataset}.log",
    conda:
        ENV
    params:
        runs=get_roc_models,
    script:
        "../scripts/report/plot_roc_curves.py"


rule save_config:
    output:
        "<results>/config.yaml",
    log:
        "<results>/logs/save_config.log",
    conda:
        ENV
    params:
        config=get_result_config(),
    script:
        "../scripts/report/save_config.py"
