"""Instances die with the gateway, even when it is SIGKILLed (no orphans).

A graceful stop (SIGINT/SIGTERM) stops every instance in order; a SIGKILL gives
the gateway no chance to, and instances run in their own session, so nothing
else would reach them. On Linux the kernel can: ``PR_SET_PDEATHSIG`` asks it to
SIGKILL the child when its parent dies. Elsewhere this is a no-op.
"""

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(parent_pid: int) -> None:
    """``preexec_fn`` for instance processes: SIGKILL me when ``parent_pid`` exits."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)
