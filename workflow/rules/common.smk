from snakemake.utils import min_version, validate

from privfair.config import check_study, epsilon_label, model_settings

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


def sorted_keys(value):
    """Snakemake compares params by their repr: sorting keys makes reordering a config file rerun nothing."""
    if isinstance(value, dict):
        return {key: sorted_keys(value[key]) for key in sorted(value)}
    return value


def get_setting(*path):
    """A params function giving one slice of the dataset's config, e.g. get_setting("training")."""

    def setting(wildcards):
        value = get_dataset(wildcards)
        for key in path:
            value = value[key]
        return sorted_keys(value)

    return setting


def get_training_settings(wildcards):
    """The training settings that change the model; memory and speed settings are left out (see EXECUTION_KEYS)."""
    return sorted_keys(model_settings(get_dataset(wildcards)["training"]))


def get_source_dir(wildcards):
    """The dataset's export; the embedded datasets are generated there."""
    return f"results/raw/{wildcards.dataset}"


def get_ingest_options(wildcards):
    """The adapter's settings; the generator's own settings reach ingest through its input, not its params."""
    return sorted_keys({k: v for k, v in get_dataset(wildcards)["source"].items() if k != "synthetic"})


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
