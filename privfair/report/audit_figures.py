"""The membership-audit figure (rule ``plot_membership_audit``): empirical ε lower bound vs the claimed ε.

One panel per attack. Each run is a marker at its claimed budget (the non-private model at the "∞" tick of the shared
ε axis, :mod:`privfair.core.style`), coloured by dataset (by dataset and init where the study has inits other than
scratch), shaped by seed and nudged sideways so that seeds do not hide
each other: the marker is the central estimate, and its error bar reaches down to the lower bound. The dotted diagonal
y = x is the claimed per-image ε: a lower bound above it is a reason to look at the run, not proof of a broken claim
(docs/methods.md, "Membership inference"). A dash in the run's colour marks
the bound a perfect attack would reach on the audit's sample sizes: no bound can rise above it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from privfair.core.style import (
    MARKERS,
    NON_PRIVATE_COLOR,
    epsilon_axis,
    epsilon_positions,
    figure_legend,
    palette,
    panel_figure,
)
from privfair.evaluate.runs import SCRATCH, init_order

DIAGONAL = "y = x: the claimed per-image ε"
ATTAINABLE = "most the audited images can show"
# Sideways nudge between neighbouring (dataset, init, seed) markers, as a factor on the log ε axis.
NUDGE = 1.12


def plot_membership_audit(table: pd.DataFrame, path_png, path_pdf) -> None:
    """Empirical ε vs claimed ε from :func:`privfair.audit.membership.membership_audit_table`.

    Args:
        table: one row per (dataset, init, ε, seed, attack) with ``epsilon``, ``epsilon_lower``,
            ``epsilon_central``, ``epsilon_lower_max`` and ``confidence``.
        path_png: the PNG to write (300 dpi).
        path_pdf: the PDF to write.
    """
    attacks = list(dict.fromkeys(table["attack"]))
    datasets = list(dict.fromkeys(table["dataset"]))
    # One colour per (dataset, init); named by the dataset alone while every run is scratch.
    series = [(d, i) for d in datasets for i in init_order(table.loc[table["dataset"] == d, "init"])]
    names = {key: key[0] if init_order(table["init"]) == [SCRATCH] else f"{key[0]} · {key[1]}" for key in series}
    seeds = sorted(table["seed"].unique())
    colours = dict(zip(series, palette(len(series)), strict=False))
    markers = {seed: MARKERS[i % len(MARKERS)] for i, seed in enumerate(seeds)}
    points = [(d, i, s) for d, i in series for s in seeds]
    nudges = {point: NUDGE ** (i - (len(points) - 1) / 2) for i, point in enumerate(points)}
    positions = epsilon_positions(table["epsilon"])
    finite = sorted(e for e in positions if np.isfinite(e))
    shown = table[["epsilon_central", "epsilon_lower_max"]].to_numpy().max()
    top = max(shown * 1.15, min(finite, default=0.0) * 1.5, 0.5)
    level = f"{table['confidence'].iloc[0] * 100:.10g}%"
    with panel_figure(attacks, path_png, path_pdf, sharey=True) as panels:
        for attack, ax in panels.items():
            if finite:
                x = np.geomspace(min(positions.values()) / 1.5, finite[-1] * 1.2, 50)
                ax.plot(x, x, color="0.2", linestyle=":", linewidth=1.0, label=DIAGONAL)
            runs = table[table["attack"] == attack].groupby(["dataset", "init", "seed"], sort=False)
            for (dataset, init, seed), rows in runs:
                colour = colours[(dataset, init)]
                x = rows["epsilon"].map(positions).to_numpy(dtype=float) * nudges[(dataset, init, seed)]
                central, lower = rows["epsilon_central"].to_numpy(), rows["epsilon_lower"].to_numpy()
                ax.plot(x, rows["epsilon_lower_max"], color=colour, marker="_", markersize=9, linestyle="none")
                ax.errorbar(
                    x,
                    central,
                    yerr=[central - lower, np.zeros_like(central)],
                    color=colour,
                    marker=markers[seed],
                    linestyle="none",
                    capsize=2,
                )
            epsilon_axis(ax, positions, "Empirical ε (membership inference)")
            ax.set_ylim(-0.03 * top, top)  # a bound of 0 stays visible above the axis
        for key in series:
            ax.plot([], [], color=colours[key], marker="o", linestyle="none", label=names[key])
        for seed in seeds:
            ax.plot([], [], color=NON_PRIVATE_COLOR, marker=markers[seed], linestyle="none", label=f"seed {seed}")
        ax.plot([], [], color=NON_PRIVATE_COLOR, marker="_", markersize=9, linestyle="none", label=ATTAINABLE)
        ax.errorbar(
            [],
            [],
            yerr=[],
            color=NON_PRIVATE_COLOR,
            marker="o",
            capsize=2,
            label=f"central estimate, bar down to the {level} lower bound",
        )
        figure_legend(panels, ncol=2)
