"""Writing outputs whole or not at all: a failed step must leave no half-written file behind."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_output(path: str | Path):
    """Yield a temporary path beside ``path``; rename it to ``path`` on success, delete it on any error.

    Args:
        path: the file to write. The temporary file, ``.partial-<name>``, is in the same folder (so the rename is
            atomic) and keeps the suffix (so writers that infer the format from it still work).

    Yields:
        The temporary path (a ``Path``) to write to.
    """
    path = Path(path)
    temporary = path.with_name(f".partial-{path.name}")  # same suffix: writers infer the format from it
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
