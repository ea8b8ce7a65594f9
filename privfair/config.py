"""Study-grid helpers shared by the Snakefile and the scripts: ε labels and checks a JSON schema cannot express."""

from __future__ import annotations

import math

from privfair.errors import ConfigError


def epsilon_label(epsilon) -> str:
    """The ε as it appears in paths: ``1``, ``2.5``, ``inf`` (non-private)."""
    value = parse_epsilon(epsilon)
    return "inf" if math.isinf(value) else f"{value:g}"


def parse_epsilon(epsilon) -> float:
    value = float(epsilon)
    if not value > 0:
        raise ConfigError(f"study.epsilons: ε must be > 0 or inf, got {epsilon!r}")
    return value


def check_study(config: dict) -> None:
    """Cross-references in the config: every dataset of the grid is defined; ε values are unique."""
    study = config["study"]
    for i, name in enumerate(study["datasets"]):
        if name not in config["datasets"]:
            raise ConfigError(f"study.datasets[{i}]: '{name}' has no entry under 'datasets' (defined: {sorted(config['datasets'])})")
    labels = [epsilon_label(e) for e in study["epsilons"]]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"study.epsilons: duplicate values {study['epsilons']}")
