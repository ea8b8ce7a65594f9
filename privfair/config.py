"""The study config's checks that a JSON schema cannot express, run by the workflow before any job starts."""

from __future__ import annotations

import functools
import math
import re
from pathlib import Path

import jsonschema
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from privfair.core.epsilon import epsilon_label
from privfair.core.errors import ConfigError
from privfair.data.adapters import get_adapter
from privfair.fairness.subgroups import check_fairness_spec
from privfair.train.transfer import SCRATCH, check_init_preprocessing, init_file, init_label

# The config schema: each adapter's keys live there (``$defs/source_<adapter>``), nowhere else.
SCHEMA = Path(__file__).resolve().parents[1] / "config" / "schema.yaml"


@functools.cache
def adapter_schemas() -> dict[str, dict]:
    """Each adapter's ``source`` schema, read from ``config/schema.yaml``.

    Returns:
        Adapter name (the schema's ``source.adapter`` enum, in its order) -> its ``$defs/source_<adapter>`` entry.
    """
    if not SCHEMA.is_file():  # privfair runs from its checkout (pip install -e .), where the workflow lives
        raise ConfigError(f"{SCHEMA} not found: install privfair from its checkout with `pip install -e .`")
    schema = yaml.safe_load(SCHEMA.read_text())
    names = schema["$defs"]["dataset"]["properties"]["source"]["properties"]["adapter"]["enum"]
    return {name: schema["$defs"][f"source_{name}"] for name in names}


def validate_config(config: dict, schema_path=SCHEMA) -> None:
    """Validate ``config`` against the schema and fill in its defaults (in place), as ``snakemake.utils.validate``.

    Raises:
        ConfigError: one line naming the key at fault and what is allowed, instead of the schema dump that
            Snakemake's validation error carries.
    """
    try:
        validate(config, str(schema_path))
    except WorkflowError:
        schema = yaml.safe_load(Path(schema_path).read_text())
        validator = jsonschema.Draft202012Validator(schema)
        error = jsonschema.exceptions.best_match(validator.iter_errors(config))
        if error is None:
            raise
        key = ".".join(str(part) for part in error.absolute_path) or "the config's top level"
        raise ConfigError(f"{key}: {error.message}") from None


def check_study(config: dict) -> None:
    """What a JSON schema cannot express: cross-references and dependent keys, checked before any job starts."""
    study = config["study"]
    for i, name in enumerate(study["datasets"]):
        if name not in config["datasets"]:
            raise ConfigError(
                f"study.datasets[{i}]: '{name}' has no entry under 'datasets' (defined: {sorted(config['datasets'])})"
            )
        if "public" in config["datasets"][name]:
            raise ConfigError(
                f"study.datasets[{i}]: '{name}' is public (datasets.{name}.public): it initialises study datasets "
                f"through study.init, and is not one"
            )
        check_dataset(name, config["datasets"][name])
        check_inits(config, name)
    for name in public_datasets(config):
        check_dataset(name, config["datasets"][name])
    labels = [epsilon_label(e) for e in study["epsilons"]]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"study.epsilons: duplicate values {study['epsilons']}")
    check_fairness_spec(config["fairness"])


def public_datasets(config: dict) -> list[str]:
    """The datasets declared public, in config order: each is pretrained on once (rule ``pretrain``)."""
    return [name for name, dataset in config["datasets"].items() if "public" in dataset]


def dataset_inits(config: dict, name: str) -> list[str]:
    """The inits of a study dataset: its own ``init`` list, else ``study.init`` (entries as configured)."""
    return config["datasets"][name].get("init", config["study"].get("init", [SCRATCH]))


def check_inits(config: dict, name: str) -> None:
    """Each init of dataset ``name`` exists and fits it: a public dataset preprocessed alike, or a checkpoint file."""
    key = f"datasets.{name}.init" if "init" in config["datasets"][name] else "study.init"
    inits = dataset_inits(config, name)
    for i, init in enumerate(inits):
        path = init_file(init)
        if init == SCRATCH:
            continue
        if path is not None:
            if not Path(path).is_file():
                raise ConfigError(f"{key}[{i}]: checkpoint '{path}' not found (relative to the workflow's directory)")
            continue
        if init not in config["datasets"] or "public" not in config["datasets"][init]:
            public = public_datasets(config)
            raise ConfigError(
                f"{key}[{i}]: '{init}' is neither scratch, file:<path> nor a public dataset (datasets with 'public': "
                f"{public or 'none'})"
            )
        check_init_preprocessing(init, config["datasets"][init], name, config["datasets"][name])
    labels = [init_label(init) for init in inits]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"{key}: two inits have the same name in paths and tables: {labels}")


def check_dataset(name: str, dataset: dict) -> None:
    key = f"datasets.{name}"
    source = dataset["source"]
    # The schema requires these as well; repeated (from the schema's list) for a config checked without validate().
    for option in adapter_schemas().get(source["adapter"], {}).get("required", ()):
        if option not in source:
            raise ConfigError(f"{key}.source.{option} is required by adapter '{source['adapter']}'")
    fractions = dataset["split"]["fractions"]
    if not math.isclose(sum(fractions.values()), 1.0, abs_tol=1e-9):
        raise ConfigError(
            f"{key}.split.fractions: train + val + test must be 1, got "
            f"{' + '.join(f'{v:g}' for v in fractions.values())} = {sum(fractions.values()):g}"
        )
    preprocess = dataset["preprocess"]
    dims = get_adapter(source["adapter"]).dims
    if len(preprocess["spatial_size"]) not in dims:
        kinds = " or ".join({2: "2-D images (2 entries)", 3: "3-D volumes (3 entries)"}[d] for d in dims)
        raise ConfigError(
            f"{key}.preprocess.spatial_size: adapter '{source['adapter']}' reads {kinds}, got "
            f"{preprocess['spatial_size']}"
        )
    if len(preprocess["spatial_size"]) == 3 and ("pixdim" in preprocess) != ("hu_window" in preprocess):
        raise ConfigError(
            f"{key}.preprocess: CT needs both pixdim and hu_window (volumes without a physical "
            f"spacing, e.g. MedMNIST 3D, need neither)"
        )
    model = dataset["training"]["model"]
    if model["width"] % model["num_groups"]:
        raise ConfigError(
            f"{key}.training.model.num_groups ({model['num_groups']}) must divide width ({model['width']})"
        )
    # Averaging K views' per-sample gradients needs them; ghost clipping never computes them (privfair.train.augment).
    views = dataset["training"].get("augmentation", {}).get("multiplicity", 1)
    if views > 1 and dataset["training"].get("privacy", {}).get("grad_sample_mode") == "ghost":
        raise ConfigError(
            f"{key}.training.augmentation.multiplicity: {views} views need per-sample gradients, which "
            "training.privacy.grad_sample_mode 'ghost' does not compute"
        )


# A folder name that is the same on every file system and shell: no spaces, slashes or leading dot.
STUDY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def study_name(config: dict, configfiles=()) -> str:
    """The study's name, which gives its results folder ``results/<name>/``.

    Args:
        config: the validated config; ``study.name`` wins when set.
        configfiles: the ``--configfile`` paths, in order; without ``study.name`` the last one's stem is the name
            (``config/nih.yaml`` -> ``nih``), so that two studies from one checkout never share a folder.

    Raises:
        ConfigError: the name (given or derived) is not a plain folder name.
    """
    name = config["study"].get("name")
    key = "study.name"
    if name is None:
        if not configfiles:
            raise ConfigError("study.name is required when the config comes from no --configfile")
        name = Path(configfiles[-1]).stem
        key = f"study.name (not set, so taken from the config file's name '{Path(configfiles[-1]).name}')"
    if not STUDY_NAME.fullmatch(name):
        raise ConfigError(
            f"{key}: '{name}' is not a plain folder name (letters, digits, '.', '_' and '-', not starting with "
            f"'.' or '-'); set study.name"
        )
    return name


def load_study(paths) -> dict:
    """The study config as ``snakemake --configfile <paths>`` builds it: later files update earlier ones, key by key.

    Raises:
        ConfigError: a file is missing or is not valid YAML (naming the file, line and column, which Snakemake's own
            loader leaves out).
    """
    config: dict = {}
    for path in paths:
        try:
            loaded = yaml.safe_load(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError(f"{path}: config file not found") from None
        except yaml.MarkedYAMLError as error:
            mark = error.problem_mark
            raise ConfigError(f"{path}: line {mark.line + 1}, column {mark.column + 1}: {error.problem}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(
                f"{path}: a config is a mapping of keys (study, datasets, ...), got {type(loaded).__name__}"
            )
        _update(config, loaded)
    return config


def _update(config: dict, overrides: dict) -> None:
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            _update(config[key], value)
        else:
            config[key] = value


def main(argv=None) -> int:
    """``python -m privfair.config STUDY.yaml [MORE.yaml ...]``: check a study config as the workflow will, without
    Snakemake (a YAML syntax error gets its line and column here)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m privfair.config", description=main.__doc__)
    parser.add_argument("configfiles", nargs="+", help="the files given to snakemake --configfile, in that order")
    arguments = parser.parse_args(argv)
    try:
        config = load_study(arguments.configfiles)
        validate_config(config)
        check_study(config)
        name = study_name(config, arguments.configfiles)
    except ConfigError as error:
        print(f"privfair: {error}")
        return 1
    print(
        f"privfair: {' + '.join(arguments.configfiles)}: valid ({len(config['study']['datasets'])} dataset(s)), "
        f"results in results/{name}/"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
