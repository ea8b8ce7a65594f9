localrules:
    plot_privacy_utility,
    plot_per_label,


rule plot_privacy_utility:
    input:
        "results/tables/privacy_utility.csv",
    output:
        png=report(
            "results/figures/privacy_utility.png", caption="../report/privacy_utility.rst", category="Privacy-utility"
        ),
        pdf="results/figures/privacy_utility.pdf",
    log:
        "results/logs/plot_privacy_utility.log",
    conda:
        ENV
    script:
        "../scripts/plot_privacy_utility.py"


rule plot_per_label:
    input:
        "results/tables/per_label_auroc.csv",
    output:
        png=report(
            "results/figures/per_label_auroc.png", caption="../report/per_label_auroc.rst", category="Privacy-utility"
        ),
        pdf="results/figures/per_label_auroc.pdf",
    log:
        "results/logs/plot_per_label.log",
    conda:
        ENV
    script:
        "../scripts/plot_per_label.py"
