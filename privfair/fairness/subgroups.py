"""Patient subgroups from the ``fairness`` config: sex, binned age, binned co-morbidity and their intersections.

A subgroup assignment is one string column per attribute. Rows whose attribute is not recorded fall in
``UNKNOWN`` and rows outside every bin in ``NOT_BINNED``: both are reported, but kept apart from the recorded
groups when gaps and fairness differences are formed, since they are not a patient population.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd

from privfair.core.errors import ConfigError
from privfair.data.manifest import SEXES, UNKNOWN

NOT_BINNED = "not binned"
KEPT_APART = (UNKNOWN, NOT_BINNED)
INTERSECTION = "×"
GROUP_JOIN = " & "  # between the parts of an intersection's group name


def bin_labels(edges: list[float]) -> list[str]:
    """ "[30, 60)" for each pair of edges; an open last bin reads "≥2"."""
    return [f"≥{lo:g}" if math.isinf(hi) else f"[{lo:g}, {hi:g})" for lo, hi in itertools.pairwise(edges)]


def group_order(spec: dict, attribute: str) -> list[str]:
    """The recorded groups of ``attribute`` in display order (bins low to high, F before M)."""
    if INTERSECTION in attribute:
        parts = [group_order(spec, part) for part in attribute.split(INTERSECTION)]
        return [GROUP_JOIN.join(combo) for combo in _product(parts)]
    if attribute == "sex":
        return list(SEXES)
    options = spec["attributes"][attribute]
    return list(options.get("labels") or bin_labels(options["bins"]))


def _product(parts: list[list[str]]) -> list[tuple[str, ...]]:
    combos = [()]
    for part in parts:
        combos = [combo + (group,) for combo in combos for group in part]
    return combos


def intersection_name(attributes: list[str]) -> str:
    return INTERSECTION.join(attributes)


def attribute_names(spec: dict) -> list[str]:
    """Single attributes in the order of ``spec``, then the intersections."""
    return list(spec["attributes"]) + [intersection_name(i) for i in spec.get("intersections", [])]


def _binned(values: pd.Series, options: dict) -> pd.Series:
    edges = options["bins"]
    labels = options.get("labels") or bin_labels(edges)
    numeric = pd.to_numeric(values, errors="coerce")
    binned = pd.cut(numeric, bins=edges, labels=labels, right=False).astype(object)
    return binned.where(numeric.isna() | binned.notna(), NOT_BINNED).fillna(UNKNOWN).astype(str)


def _sex(values: pd.Series) -> pd.Series:
    return values.where(values.isin(SEXES), UNKNOWN).astype(str)


def assign_groups(rows: pd.DataFrame, spec: dict) -> pd.DataFrame:
    """One column per attribute of ``spec`` (intersections included), holding each row's group name.

    An attribute column missing from ``rows`` (e.g. a dataset without demographics) gives ``UNKNOWN`` throughout.
    """
    groups = pd.DataFrame(index=rows.index)
    for attribute, options in spec["attributes"].items():
        if attribute not in rows.columns:
            groups[attribute] = UNKNOWN
        elif attribute == "sex":
            groups[attribute] = _sex(rows[attribute])
        else:
            groups[attribute] = _binned(rows[attribute], options)
    for parts in spec.get("intersections", []):
        name = intersection_name(parts)
        joined = groups[parts].agg(GROUP_JOIN.join, axis=1)
        apart = groups[parts].isin(KEPT_APART).any(axis=1)
        groups[name] = joined.where(~apart, UNKNOWN)
    return groups


def check_fairness_spec(spec: dict) -> None:
    """What the schema cannot say: increasing bins, matching labels, intersections of declared attributes."""
    for attribute, options in spec["attributes"].items():
        key = f"fairness.attributes.{attribute}"
        if attribute == "sex":
            continue
        if "bins" not in options:
            raise ConfigError(f"{key}.bins is required (bin edges, e.g. [0, 30, 60, 70, 80, 100])")
        edges = np.asarray(options["bins"], dtype=float)
        if len(edges) < 3 or not np.all(np.diff(edges) > 0):
            raise ConfigError(f"{key}.bins must be at least 3 strictly increasing edges, got {options['bins']}")
        labels = options.get("labels")
        if labels is not None and len(labels) != len(edges) - 1:
            raise ConfigError(f"{key}.labels needs {len(edges) - 1} names (one per bin), got {len(labels)}")
        if labels is not None and (
            set(labels) & set(KEPT_APART)
            or len(set(labels)) != len(labels)
            or any(GROUP_JOIN.strip() in label for label in labels)
        ):
            raise ConfigError(
                f"{key}.labels must be distinct, must not contain '{GROUP_JOIN.strip()}' and must not "
                f"be one of the reserved names {list(KEPT_APART)}; got {labels}"
            )
    for i, parts in enumerate(spec.get("intersections", [])):
        unknown = [p for p in parts if p not in spec["attributes"]]
        if unknown:
            raise ConfigError(f"fairness.intersections[{i}]: {unknown} not under fairness.attributes")
