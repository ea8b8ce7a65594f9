"""Running a workflow step: its output goes to the rule's log, and a user error ends it with one clear line."""

from __future__ import annotations

import sys
import traceback
from contextlib import redirect_stderr, redirect_stdout

from privfair.core.errors import PrivfairError


def run_step(snakemake, main) -> None:
    """Call ``main(snakemake)`` with stdout/stderr in ``snakemake.log[0]``.

    A ``PrivfairError`` is reported as its message alone (in the log and on the console), since it already says
    what to fix; any other exception keeps its traceback in the log.

    Args:
        snakemake: the ``snakemake`` object Snakemake injects into a rule's script; its first log file is
            overwritten.
        main: the step itself, called with ``snakemake`` as its only argument.

    Raises:
        SystemExit: exit status 1 after a ``PrivfairError``, printed as ``privfair: <message>`` with no traceback.
            Any other exception is re-raised once its traceback is in the log.
    """
    with open(snakemake.log[0], "w") as log, redirect_stdout(log), redirect_stderr(log):
        try:
            main(snakemake)
        except PrivfairError as error:
            message = f"privfair: {error}"
            print(message, file=log)
            print(message, file=sys.__stderr__)
            raise SystemExit(1) from None
        except Exception:
            traceback.print_exc(file=log)
            raise
