from snakemake.utils import min_version, validate

from privfair.config import check_study, epsilon_label

min_version("9.0")


validate(config, "../../config/schema.yaml")
check_study(config)


RUN_DIR = "results/runs/{dataset}/eps-{epsilon}/seed-{seed}"
ENV = "../../envs/privfair.yaml"


wildcard_constraints:
    dataset="|".join(config["datasets"]),
    epsilon=r"inf|[0-9]+(\.[0-9]+)?",
    seed=r"[0-9]+",


def get_dataset(wildcards):
    return config["datasets"][wildcards.dataset]


def get_source_dir(wildcards):
    """Synthetic datasets are generated under results/raw; real ones are read where they lie."""
    source = get_dataset(wildcards)["source"]
    if "synthetic" in source:
        return f"results/raw/{wildcards.dataset}"
    return source["root"]


def get_grid_files(filename):
    """One path per (dataset, epsilon, seed) point of the study grid."""
    study = config["study"]
    return expand(
        f"{RUN_DIR}/{filename}",
        dataset=study["datasets"],
        epsilon=[epsilon_label(e) for e in study["epsilons"]],
        seed=study["seeds"],
    )


def get_final_outputs():
    return [
        "results/tables/privacy_utility.csv",
        "results/tables/privacy_utility.md",
        "results/tables/per_label_auroc.csv",
        "results/figures/privacy_utility.png",
        "results/figures/privacy_utility.pdf",
        "results/figures/per_label_auroc.png",
        "results/figures/per_label_auroc.pdf",
    ]
