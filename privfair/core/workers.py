"""Worker processes that cannot outlive the job that started them.

A data-loader worker is a child process. When its parent is killed outright (``kill -9``, the OOM killer, a
scheduler's hard limit), nothing in Python runs to stop it, so it would go on reading images into a job that no longer
exists. On Linux the kernel can send the child a signal the moment its parent dies (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def die_with_parent(*_) -> bool:
    """Ask the kernel to SIGKILL this process when its parent dies (usable as a ``worker_init_fn``).

    Returns:
        True where the request was made (Linux), False elsewhere (the worker then relies on its parent's cleanup).
    """
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    # The parent may have died between fork and prctl: then this process was already re-parented.
    if os.getppid() == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return True
