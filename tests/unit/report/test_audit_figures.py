"""The membership-audit figure: every run drawn, the diagonal, and both files written."""

from __future__ import annotations

import math

import pandas as pd

from privfair.report.audit_figures import DIAGONAL, plot_membership_audit


def audit_table(inits=("scratch",)):
    rows = [
        {
            "dataset": dataset,
            "init": init,
            "epsilon": epsilon,
            "seed": seed,
            "attack": attack,
            "epsilon_lower": lower,
            "epsilon_central": lower + 0.4,
            "epsilon_lower_max": 4.2,
            "confidence": 0.95,
        }
        for dataset in ("chest", "ct")
        for init in inits
        for epsilon, lower in ((1.0, 0.0), (8.0, 0.1), (math.inf, 1.5))
        for seed in (1, 2)
        for attack in ("Loss", "Label-calibrated loss")
    ]
    return pd.DataFrame(rows)


def test_membership_audit_figure_has_a_panel_per_attack_and_the_claim_diagonal(tmp_path, saved):
    plot_membership_audit(audit_table(), tmp_path / "a.png", tmp_path / "a.pdf")
    assert (tmp_path / "a.png").stat().st_size > 0 and (tmp_path / "a.pdf").stat().st_size > 0
    axes = [ax for ax in saved[0].axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["Loss", "Label-calibrated loss"]
    legend = [text.get_text() for text in saved[0].legends[0].get_texts()]
    assert DIAGONAL in legend and {"chest", "ct", "seed 1", "seed 2"} <= set(legend)
    assert [tick.get_text() for tick in axes[0].get_xticklabels()] == ["1", "8", "∞"]


def test_each_init_of_a_dataset_has_a_colour_of_its_own(tmp_path, saved):
    plot_membership_audit(audit_table(("scratch", "synth_cxr_public")), tmp_path / "a.png", tmp_path / "a.pdf")
    legend = [text.get_text() for text in saved[0].legends[0].get_texts()]
    series = ["chest · scratch", "chest · synth_cxr_public", "ct · scratch", "ct · synth_cxr_public"]
    assert legend[1:5] == series  # after the diagonal
    colours = {line.get_color() for line in saved[0].axes[0].lines if line.get_marker() == "_"}
    assert len(colours) == len(series)
