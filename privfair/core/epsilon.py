"""Privacy budgets as the config writes them, as paths label them, and back."""

from __future__ import annotations

import math

from privfair.core.errors import ConfigError


def epsilon_label(epsilon) -> str:
    """The ε as it appears in paths: ``1``, ``2.5``, ``inf`` (non-private)."""
    value = parse_epsilon(epsilon)
    return "inf" if math.isinf(value) else f"{value:g}"


def parse_epsilon(epsilon) -> float:
    value = float(epsilon)
    if not value > 0:
        raise ConfigError(f"study.epsilons: ε must be > 0 or inf, got {epsilon!r}")
    return value
