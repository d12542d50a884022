"""Child processes that talk to us over a socket (isolated chains, the flag worker), and
the process settings real-time work needs.

Plain ``subprocess`` + ``python -m MODULE`` rather than multiprocessing's
spawn, so that nothing depends on how the parent's main module was started
(multiprocessing re-imports it in the child, which fails for scripts without
a ``__main__`` guard).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import subprocess
import sys
from collections.abc import Sequence
from multiprocessing.connection import Connection

__all__ = ["alive", "huge_pages", "kill", "start_module"]


def start_module(
    module: str, args: Sequence[str] = (), pass_fds: Sequence[int] = ()
) -> tuple[subprocess.Popen, Connection]:
    """Run ``python -m module CONN_FD *args``; return the process and our end of the socket.

    The child reads its end with ``multiprocessing.connection.Connection(int(argv[1]))``.
    """
    ours, theirs = socket.socketpair()
    proc = subprocess.Popen(
        [sys.executable, "-m", module, str(theirs.fileno()), *args],
        pass_fds=(theirs.fileno(), *pass_fds),
        stdin=subprocess.DEVNULL,
    )
    theirs.close()
    return proc, Connection(ours.detach())


def kill(proc: subprocess.Popen) -> None:
    """Kill a child and reap it (never raises)."""
    with contextlib.suppress(OSError):
        proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(2.0)


def alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (one owned by another user counts; pid <= 0 never)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_PR_SET_THP_DISABLE = 41


def huge_pages(allowed: bool) -> bool:
    """Allow or forbid transparent huge pages for this process (Linux; False elsewhere).

    NumPy asks for huge pages on large arrays (madvise), and the kernel's
    khugepaged then collapses them in the background: traced here (perf sched)
    running 6-7 ms at a stretch without preemption, while the JACK server's
    real-time thread waited 5-6 ms for that CPU and earmark's callback started
    7 ms late. Forbidden while streaming, khugepaged leaves this process alone.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_THP_DISABLE, 0 if allowed else 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False
