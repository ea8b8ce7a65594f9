"""Running a data-stage step as Snakemake runs it: the rule's script, with its inputs, outputs, params and log."""

from __future__ import annotations

import runpy
from pathlib import Path
from types import SimpleNamespace

import pytest

SCRIPTS = Path(__file__).resolve().parents[3] / "workflow" / "scripts" / "data"


class Files(list):
    """Snakemake's input/output lists: positional, and by name."""

    def __init__(self, *positional, **named):
        super().__init__([*map(str, positional), *map(str, named.values())])
        for name, path in named.items():
            setattr(self, name, str(path))


@pytest.fixture
def run_step_script(tmp_path):
    """``run_step_script(rule, inputs, outputs, **params)`` runs ``workflow/scripts/data/<rule>.py`` with the input
    paths ``inputs`` and the named outputs ``outputs``, and returns its exit status (None on success) and its log's
    lines."""

    def run(rule: str, inputs: list, outputs: dict, threads: int = 1, **params) -> tuple[int | None, list[str]]:
        log = tmp_path / f"{rule}.log"
        snakemake = SimpleNamespace(
            input=Files(*inputs),
            output=Files(**outputs),
            params=SimpleNamespace(**params),
            threads=threads,
            log=[str(log)],
        )
        try:
            runpy.run_path(str(SCRIPTS / f"{rule}.py"), init_globals={"snakemake": snakemake})
        except SystemExit as exit:
            return exit.code, log.read_text().splitlines()
        return None, log.read_text().splitlines()

    return run
