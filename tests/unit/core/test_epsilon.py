"""ε labels: every positive budget survives config → path → wildcard → float exactly."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from privfair.core.epsilon import EPSILON_WILDCARD, epsilon_label, parse_epsilon
from privfair.core.errors import ConfigError

BUDGETS = [1, 2.5, 8.0, 1e6, 1e-5, 0.1, 1 / 3, 2**60, 1e300, 5e-324, math.inf, "inf"]


@pytest.mark.parametrize("epsilon", BUDGETS, ids=str)
def test_a_label_matches_the_wildcard_and_parses_back_to_the_same_budget(epsilon):
    label = epsilon_label(epsilon)
    assert re.fullmatch(EPSILON_WILDCARD, label)
    assert parse_epsilon(label) == float(epsilon)


def test_random_budgets_round_trip():
    rng = np.random.default_rng(0)
    for epsilon in 10 ** rng.uniform(-8, 8, size=2000):
        label = epsilon_label(float(epsilon))
        assert re.fullmatch(EPSILON_WILDCARD, label) and parse_epsilon(label) == epsilon, label


def test_existing_paths_keep_their_labels():
    assert [epsilon_label(e) for e in (1, 3, 8.0, 2.5, math.inf)] == ["1", "3", "8", "2.5", "inf"]


@pytest.mark.parametrize("bad", [0, -1, "nan", "eight", None])
def test_a_budget_that_is_not_positive_is_named(bad):
    with pytest.raises(ConfigError, match="study.epsilons"):
        parse_epsilon(bad)
