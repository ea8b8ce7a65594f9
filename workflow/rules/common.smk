import os

from snakemake.utils import min_version

from privfair.config import check_study, study_name, validate_config
from privfair.core.epsilon import EPSILON_WILDCARD, FINITE_EPSILON_WILDCARD, NON_PRIVATE, epsilon_label
from privfair.train.settings import model_settings

min_version("9.0")


validate_config(config)
check_study(config)

# One folder per study: `<results>` in every path below is results/<study.name>/, so two studies from one checkout
# never touch each other's outputs.
STUDY = study_name(config, workflow.overwrite_configfiles)
RESULTS = f"results/{STUDY}"


pathvars:
    results=RESULTS,


RUN_DIR = "<results>/runs/{dataset}/eps-{epsilon}/seed-{seed}"
# One noise calibration per (dataset, ε), shared by the seeds.
NOISE_FILE = "<results>/runs/{dataset}/eps-{epsilon}/noise.json"
ENV = "../../envs/privfair.yaml"
# Where envs/privfair.post-deploy.sh finds the checkout to install privfair from, whatever --directory is (always
# this workflow's own checkout: a value exported for another clone must not install that clone's code).
os.environ.update(PRIVFAIR_ROOT=workflow.basedir)
# <results> holds patient-level data (ids, demographics, per-image scores): private (0600/0700) until released.
os.umask(0o077)


wildcard_constraints:
    dataset="|".join(config["datasets"]),
    epsilon=EPSILON_WILDCARD,
    seed=r"[0-9]+",
    attribute="|".join(config["fairness"]["attributes"]),


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


def get_calibration_settings(wildcards):
    """What the noise calibration depends on: the schedule and the accountant, not the model or the optimiser."""
    training = get_dataset(wildcards)["training"]
    privacy = training["privacy"]
    return {
        "logical_batch_size": training["logical_batch_size"],
        "epochs": training["epochs"],
        "privacy": {"accountant": privacy["accountant"], "delta": privacy.get("delta")},
    }


def get_noise_calibration(wildcards):
    """A DP run waits for its budget's calibration; the non-private run has none."""
    return {} if wildcards.epsilon == NON_PRIVATE else {"noise": NOISE_FILE.format(**wildcards)}


def get_result_config():
    """The config as it determines the results: memory and speed settings (EXECUTION_KEYS) left out, so that
    editing them rewrites nothing, as it retrains nothing."""
    result = sorted_keys(config)
    result["study"]["name"] = STUDY
    for dataset in result["datasets"].values():
        dataset["training"] = model_settings(dataset["training"])
    return result


def get_training_settings(wildcards):
    """The training settings that change the model; memory and speed settings are left out (see EXECUTION_KEYS)."""
    return sorted_keys(model_settings(get_dataset(wildcards)["training"]))


def get_source_dir(wildcards):
    """The dataset's folder: the configured ``root`` of a real dataset, or where the embedded one is generated."""
    source = get_dataset(wildcards)["source"]
    return source["root"] if "root" in source else f"<results>/raw/{wildcards.dataset}"


def get_ingest_options(wildcards):
    """The adapter's settings; the folder and the generator's settings reach ingest through its input instead."""
    return sorted_keys({k: v for k, v in get_dataset(wildcards)["source"].items() if k not in ("synthetic", "root")})


def get_subgroup_spec():
    """The subgroup definitions: editing them re-runs the fairness rules only."""
    statistics = ("multiple_testing", "alpha")
    return sorted_keys({k: v for k, v in config["fairness"].items() if k not in statistics})


def get_bootstrap_spec():
    """The resampling that every per-run statistic shares (the CI level is applied later, across runs)."""
    return {key: config["evaluation"][key] for key in ("n_bootstrap", "seed")}


def get_statistics_spec():
    return {"ci": config["evaluation"]["ci"], **{k: config["fairness"][k] for k in ("multiple_testing", "alpha")}}


def table_outputs(*names, category="Fairness"):
    """Each named table as CSV (in the report, with its caption), Markdown and LaTeX."""
    outputs = {}
    for name in names:
        outputs[f"{name}_csv"] = report(
            f"<results>/tables/{name}.csv", caption=f"../report/tables/{name}.rst", category=category
        )
        outputs[f"{name}_md"] = f"<results>/tables/{name}.md"
        outputs[f"{name}_tex"] = f"<results>/tables/{name}.tex"
    return outputs


def get_grid_files(filename):
    """One path per (dataset, epsilon, seed) point of the study grid."""
    study = config["study"]
    return expand(
        f"{RUN_DIR}/{filename}",
        dataset=study["datasets"],
        epsilon=[epsilon_label(e) for e in study["epsilons"]],
        seed=study["seeds"],
    )


def get_roc_epsilons(wildcards):
    return [epsilon_label(e) for e in config["study"]["epsilons"]]


def get_roc_runs(filename):
    """The first seed's run at every budget of one dataset: the ROC figure shows one model per budget."""

    def runs(wildcards):
        return expand(
            f"{RUN_DIR}/{filename}",
            dataset=wildcards.dataset,
            epsilon=get_roc_epsilons(wildcards),
            seed=config["study"]["seeds"][0],
        )

    return runs


def get_single_attributes():
    return list(config["fairness"]["attributes"])


def get_final_outputs():
    tables = [
        "privacy_utility",
        "per_label_auroc",
        "performance_gaps",
        "fairness_metrics",
        "p_values",
        "pearson",
        "privacy_records",
        "membership_audit",
    ]
    if "canary" in config["audit"]:  # the one-run canary audit is optional: dedicated runs (canary.smk)
        tables.append("canary_audit")
    figures = ["privacy_utility", "per_label_auroc", "auroc_vs_training_count", "fairness_metrics", "membership_audit"]
    figures += expand("fairness_gap_{attribute}", attribute=get_single_attributes())
    figures += expand("roc_{dataset}", dataset=config["study"]["datasets"])
    return [
        "<results>/config.yaml",
        *expand(
            "<results>/datasets/{dataset}/summary.{ext}",
            dataset=config["study"]["datasets"],
            ext=["csv", "md", "tex", "png", "pdf"],
        ),
        *expand("<results>/tables/{table}.{ext}", table=tables, ext=["csv", "md", "tex"]),
        *expand("<results>/figures/{figure}.{ext}", figure=figures, ext=["png", "pdf"]),
    ]
