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
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, Sequence
from multiprocessing.connection import Connection

__all__ = [
    "SESSION_STOP_SIGNALS",
    "alive",
    "huge_pages",
    "kill",
    "shield_resource_tracker",
    "start_module",
    "stop_signals_held",
]

# What stops a live session: Ctrl-C, SIGTERM, a closed terminal or dropped SSH
# connection (SIGHUP). Sent to the whole process group (a terminal, `kill -- -PGID`,
# a shell hanging up its jobs) they reach the session's helper processes too, which
# must outlive them until the session has stopped them in order.
SESSION_STOP_SIGNALS: tuple[int, ...] = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


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


def how_ended(code: int | None) -> str:
    """A child's return code in words: "killed by SIGSEGV", "exit code 3", "still running"."""
    if code is None:
        return "still running"
    if code < 0:
        return f"killed by {signal_name(-code)}"
    return f"exit code {code}"


def signal_name(signum: int) -> str:
    """``SIGSEGV`` for 11; ``signal 99`` for a number with no name here."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


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


@contextlib.contextmanager
def stop_signals_held() -> Iterator[None]:
    """Block SESSION_STOP_SIGNALS in this thread while child processes are started.

    A child inherits the blocked set through fork and exec: a signal sent to the
    process group before the child has set its own dispositions stays pending (and
    is discarded once it ignores it) instead of killing it during its start-up; a
    child that never unblocks one is immune to it. This process still gets its own
    copy: another thread takes it, or this one as soon as the set is unblocked.
    """
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, SESSION_STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def ignore_stop_signals() -> None:
    """In a child started under :func:`stop_signals_held`: leave stopping to the parent.

    Ctrl-C, SIGTERM and SIGHUP sent to the process group (a terminal closing,
    ``kill -- -PGID``) must not end a helper before the session has stopped it in
    order; the session asks it to quit, and a session that dies closes its socket.
    Ignoring them discards any that arrived while they were blocked.
    """
    for signum in SESSION_STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, SESSION_STOP_SIGNALS)


def shield_resource_tracker() -> None:
    """Start multiprocessing's resource tracker now, out of reach of a hangup.

    The tracker (started by the first ``SharedMemory``: the isolated chains, the
    state frame) ignores SIGINT and SIGTERM but not SIGHUP: a terminal closing
    killed it mid-session, and the session's end then printed "resource_tracker:
    process died unexpectedly" and KeyError tracebacks. Started with the stop
    signals held, it keeps SIGHUP blocked for good.
    """
    from multiprocessing import resource_tracker

    with stop_signals_held():
        resource_tracker.ensure_running()
