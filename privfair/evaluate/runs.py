"""Which run a privacy record belongs to: its key (dataset, init, ε, seed) in every table and statistic.

``init`` is how the model was initialised: ``scratch`` (random initialisation), the name of the public dataset it was
pretrained on, or ``file-<stem>`` for an external checkpoint. Records written before the study had an initialisation
axis carry no ``init``: they are read as ``scratch`` here, and only here, so that old results folders still aggregate.
"""

from __future__ import annotations

import math

import pandas as pd

SCRATCH = "scratch"
RUN_KEYS = ["dataset", "init", "epsilon", "seed"]


def run_init(record: dict) -> str:
    """The run's initialisation: its record's ``init``, or ``scratch`` when the record has none (older records).

    Args:
        record: a privacy record (:func:`privfair.train.privacy.read_record`).

    Returns:
        The init label, e.g. "scratch" or "synth_cxr_public".
    """
    init = record.get("init")
    return SCRATCH if init is None or (isinstance(init, float) and math.isnan(init)) or init == "" else str(init)


def run_key(record: dict) -> tuple[str, str, float, int]:
    """The run's key ``(dataset, init, epsilon, seed)``, as the bootstrap and quantity dicts are keyed.

    Args:
        record: a privacy record with ``dataset``, ``epsilon`` (a number, ``math.inf`` or "inf") and ``seed``.

    Returns:
        ``(dataset, init, epsilon, seed)`` with ``epsilon`` a float and ``seed`` an int.
    """
    return str(record["dataset"]), run_init(record), float(record["epsilon"]), int(record["seed"])


def init_order(inits) -> list[str]:
    """The inits of a table in display order: ``scratch`` first (the reference of the gain from pretraining), then
    the others alphabetically.

    Args:
        inits: init labels, repeats allowed.

    Returns:
        Each label once, in display order.
    """
    return sorted(set(inits), key=lambda init: (init != SCRATCH, init))


def sort_key(column: pd.Series) -> pd.Series:
    """A ``key`` for ``DataFrame.sort_values`` that puts ``scratch`` first in an ``init`` column (other columns as
    they are)."""
    if column.name != "init":
        return column
    return column.map(lambda init: ("0" if init == SCRATCH else "1") + str(init))
