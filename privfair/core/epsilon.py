"""Privacy budgets as the config writes them, as paths label them, and back.

A label must survive the round trip config → path → wildcard → float exactly: the training job reads its ε from
the path. Whole numbers keep their short form (``1``, ``8``), others the shortest text that parses back to the same
float (``2.5``, ``1e-05``), and the wildcard pattern accepts exactly those labels.
"""

from __future__ import annotations

import math

from privfair.core.errors import ConfigError

NON_PRIVATE = "inf"
# Every label that epsilon_label gives, and nothing else a path could be confused with.
FINITE_EPSILON_WILDCARD = r"[0-9]+(\.[0-9]+)?(e[-+][0-9]+)?"
EPSILON_WILDCARD = f"{NON_PRIVATE}|{FINITE_EPSILON_WILDCARD}"
# Whole numbers up to here are written without a decimal point or exponent (beyond, floats are not exact integers).
_WHOLE = 2**53


def epsilon_label(epsilon) -> str:
    """The ε as it appears in paths.

    Args:
        epsilon: a budget as the config gives it (number, ``.inf`` or ``"inf"``).

    Returns:
        ``"inf"`` for the non-private model; ``"8"`` for a whole number; otherwise the shortest text that parses back
        to the same float (``"2.5"``, ``"1e-05"``).

    Raises:
        ConfigError: the budget is not a positive number.
    """
    value = parse_epsilon(epsilon)
    if math.isinf(value):
        return NON_PRIVATE
    if value.is_integer() and value < _WHOLE:
        return str(int(value))
    return repr(value)


def parse_epsilon(epsilon) -> float:
    """A budget as a float (``math.inf`` for the non-private model).

    Raises:
        ConfigError: not a number, NaN, or not above zero (naming ``study.epsilons``).
    """
    try:
        value = float(epsilon)
    except (TypeError, ValueError):
        raise ConfigError(f"study.epsilons: ε must be a number > 0 or inf, got {epsilon!r}") from None
    if not value > 0:
        raise ConfigError(f"study.epsilons: ε must be > 0 or inf, got {epsilon!r}")
    return value
