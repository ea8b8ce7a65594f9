"""Figures as drawn, for the figure tests to inspect."""

from __future__ import annotations

import pytest

from privfair.core import style
from privfair.data import summary as data_summary


@pytest.fixture
def saved(monkeypatch) -> list:
    """The figures saved during the test, drawn (saving draws them) and still open for inspection."""
    figures, save = [], style.save_figure

    def save_and_keep(fig, path_png, path_pdf, dpi=300):
        save(fig, path_png, path_pdf, dpi)
        figures.append(fig)

    monkeypatch.setattr(style, "save_figure", save_and_keep)
    monkeypatch.setattr(data_summary, "save_figure", save_and_keep)
    return figures
