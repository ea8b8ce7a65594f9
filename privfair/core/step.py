"""Running a workflow step: its output goes to the rule's log, and a user error ends it with one clear line."""

from __future__ import annotations

import sys
import traceback
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

from privfair.core.errors import PrivfairError

INTERRUPTED = "interrupted (Ctrl-C): this attempt saved nothing and wrote no output; rerun the step"


def remove_stale_partials(outputs) -> list[Path]:
    """Delete the ``.partial-<name>`` files (:func:`privfair.core.io.atomic_output`) a killed run left beside outputs.

    Args:
        outputs: the step's output paths.

    Returns:
        The files deleted.
    """
    stale = [Path(out).with_name(f".partial-{Path(out).name}") for out in outputs]
    stale = [path for path in stale if path.is_file() or path.is_symlink()]
    for path in stale:
        path.unlink()
    return stale


def _report(message: str, log) -> None:
    print(message, file=log)
    print(message, file=sys.__stderr__, flush=True)


def run_step(snakemake, main) -> None:
    """Call ``main(snakemake)`` with stdout/stderr in ``snakemake.log[0]``.

    The log is line-buffered, so a step killed outright (``kill -9``, the OOM killer) leaves every line it printed.
    Temporary files of the step's outputs left by a killed earlier attempt are deleted first. A ``PrivfairError`` is
    reported as its message alone (in the log and on the console), since it already says what to fix; so is Ctrl-C
    (``KeyboardInterrupt``), as one line; any other exception keeps its traceback in the log.

    Args:
        snakemake: the ``snakemake`` object Snakemake injects into a rule's script; its first log file is
            overwritten.
        main: the step itself, called with ``snakemake`` as its only argument.

    Raises:
        SystemExit: exit status 1 after a ``PrivfairError``, printed as ``privfair: <message>`` with no traceback;
            130 after Ctrl-C, printed as one line. Any other exception is re-raised once its traceback is in the log.
    """
    with open(snakemake.log[0], "w", buffering=1) as log, redirect_stdout(log), redirect_stderr(log):
        for path in remove_stale_partials(snakemake.output):
            print(f"removed {path}, left by an earlier attempt that was killed")
        try:
            main(snakemake)
        except PrivfairError as error:
            _report(f"privfair: {error}", log)
            raise SystemExit(1) from None
        except KeyboardInterrupt:
            _report(f"privfair: {INTERRUPTED}", log)
            raise SystemExit(130) from None
        except Exception:
            traceback.print_exc(file=log)
            raise
