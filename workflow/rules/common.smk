import os

from snakemake.utils import min_version

from privfair.config import check_study, dataset_inits, public_datasets, study_name, validate_config
from privfair.core.epsilon import EPSILON_WILDCARD, FINITE_EPSILON_WILDCARD, NON_PRIVATE, epsilon_label
from privfair.train.settings import model_settings
from privfair.train.transfer import SCRATCH, init_file, init_label

min_version("9.0")


validate_config(config)
check_study(config)

# One folder per study: `<results>` in every path below is results/<study.name>/, so two studies from one checkout
# never touch each other's outputs.
STUDY = study_name(config, workflow.overwrite_configfiles)
RESULTS = f"results/{STUDY}"


pathvars:
    results=RESULTS,


RUN_DIR = "<results>/runs/{dataset}/{init}/eps-{epsilon}/seed-{seed}"
# One non-private pretraining per public dataset, shared by every fine-tuning run that starts from it.
PRETRAINED_DIR = "<results>/pretrained/{public}"
# One noise calibration per (dataset, ε), shared by the seeds.
NOISE_FILE = "<results>/runs/{dataset}/eps-{epsilon}/noise.json"
ENV = "../../envs/privfair.yaml"
# Where envs/privfair.post-deploy.sh finds the checkout to install privfair from, whatever --directory is (always
# this workflow's own checkout: a value exported for another clone must not install that clone's code).
os.environ.update(PRIVFAIR_ROOT=workflow.basedir)
# <results> holds patient-level data (ids, demographics, per-image scores): private (0600/0700) until released.
os.umask(0o077)


# Every init's name in paths and tables: scratch, a public dataset's name, file-<stem> (privfair.train.transfer).
INITS = {name: {init_label(init): init for init in dataset_inits(config, name)} for name in config["study"]["datasets"]}
# The public datasets the study pretrains on (a public dataset no init names is left alone).
PUBLIC = [name for name in public_datasets(config) if any(name in inits for inits in INITS.values())]


wildcard_constraints:
    dataset="|".join(config["datasets"]),
    init="|".join({label for inits in INITS.values() for label in inits}),
    public="|".join(PUBLIC) or "(?!)",
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
    """The training settings that change the model; memory and speed settings are left out (see EXECUTION_KEYS).
    A run from scratch has nothing to fine-tune: editing ``fine_tune`` retrains the pretrained inits' runs only."""
    settings = model_settings(get_dataset(wildcards)["training"])
    if getattr(wildcards, "init", SCRATCH) == SCRATCH:
        settings.pop("fine_tune", None)
    return sorted_keys(settings)


def get_pretraining_settings(wildcards):
    """The public dataset's training settings: its pretraining, non-private whatever its privacy block says."""
    settings = model_settings(config["datasets"][wildcards.public]["training"])
    settings.pop("privacy", None)
    return sorted_keys(settings)


def get_init_checkpoint(wildcards):
    """The weights a run starts from: the public dataset's pretrained model or a checkpoint file; none from scratch."""
    init = INITS[wildcards.dataset][wildcards.init]
    if init == SCRATCH:
        return {}
    return {"init": init_file(init) or f"{PRETRAINED_DIR}/model.pt".format(public=init)}


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
    """One path per (dataset, init, epsilon, seed) point of the study grid; each dataset has its own inits."""
    study = config["study"]
    return [
        path
        for dataset in study["datasets"]
        for path in expand(
            f"{RUN_DIR}/{filename}",
            dataset=dataset,
            init=INITS[dataset],
            epsilon=[epsilon_label(e) for e in study["epsilons"]],
            seed=study["seeds"],
        )
    ]


def get_roc_models(wildcards):
    """The ROC figure's models of one dataset: the first seed's run at every (init, budget), in this order."""
    return [
        {"init": init, "epsilon": epsilon_label(epsilon)}
        for init in INITS[wildcards.dataset]
        for epsilon in config["study"]["epsilons"]
    ]


def get_roc_runs(filename):
    """The files of :func:`get_roc_models`' runs, in the same order."""

    def runs(wildcards):
        seed = config["study"]["seeds"][0]
        run = f"{RUN_DIR}/{filename}"
        return [run.format(dataset=wildcards.dataset, seed=seed, **model) for model in get_roc_models(wildcards)]

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
            dataset=config["study"]["datasets"] + PUBLIC,
            ext=["csv", "md", "tex", "png", "pdf"],
        ),
        *expand("<results>/tables/{table}.{ext}", table=tables, ext=["csv", "md", "tex"]),
        *expand("<results>/figures/{figure}.{ext}", figure=figures, ext=["png", "pdf"]),
    ]
