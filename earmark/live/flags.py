"""Live flags: one Detector per path, fed each path's new 10 Hz history rows.

:class:`FlagService` is a session service (``LiveSession.add_service``): on every
tick (10 Hz, on the session thread, never the audio thread) it reads only the rows
each path's MeterBank completed since the last tick (``MeterBank.history(since=)``)
and feeds them to that path's :class:`~earmark.meters.detectors.Detector` — the
same code ``earmark analyze`` runs on a file, so the same audio gives the same flags.
``session.flags`` then holds every flag of every path as DESIGN.md's dicts plus
``path`` (the path's index) and ``open`` (the problem is still going on). A flag
is one code (and band) and episode: when the problem comes back within
``EPISODE_GAP_S`` the same flag grows (a new entry in its ``occurrences``, its
start and band unchanged, so the session log updates it in place), as
``analyze`` groups the same occurrences offline.

A path may be compared with a BEFORE path (``befores={1: 0}``: the chain's output
against the dry input, which the engine delays by the chain's latency so that
their rows line up): its crushed-transient and harsh-highs flags then use the
BEFORE version as evidence, as ``earmark diff`` does.

Programme flags (``loudness_target``, ``collapsed_dynamics``) are provisional while
the session runs and final when it stops. Resetting a path's meters starts its
detector afresh.

The detectors run in a worker process (``earmark.live.flags_worker``), not in the
audio process: their numpy work is about 2 ms of GIL-holding Python per tick for
three paths, and every such millisecond delays the audio callback (measured with
``bench/realtime.py --services``: 283 xruns in 45 s in-process against 28
without). The session thread only reads the new rows, sends them, and waits for
the answer with the GIL released; the rows and the detector code are the same,
so the flags are too.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from typing import Any

from earmark.engine.childproc import kill, signal_name, start_module, stop_signals_held
from earmark.meters.profile import Profile

__all__ = ["FlagService"]

_REPLY_TIMEOUT_S = 5.0
_FINISH_TIMEOUT_S = 30.0


class FlagService:
    """Keep ``session.flags`` current from every path's meters (see the module docstring).

    Args:
        profile: a Profile, a name or file, or None for the session's profile
            (``session.profile``), else the default profile.
        befores: path index -> index of the path holding its BEFORE version.
    """

    tick_hz = 10.0

    def __init__(
        self,
        profile: Profile | str | os.PathLike[str] | None = None,
        befores: Mapping[int, int] | None = None,
    ) -> None:
        self._profile_arg = profile
        self.befores = dict(befores or {})
        self.profile: Profile | None = None
        self.rows_sent: list[int] = []  # per path: history rows handed to its detector
        self._before_sent: list[int] = []
        self._rows_seen: list[int] = []
        self._proc: Any = None
        self._conn: Any = None
        self._init_pending = False
        self._failed = False
        self._pace: Any = None  # Engine.after_callback: unpickle replies between callbacks

    # -- service ------------------------------------------------------------------------

    def start(self, session: Any) -> None:
        """Resolve the profile (published as ``session.profile``); start the worker."""
        from earmark.profiles import resolve_profile

        arg = self._profile_arg if self._profile_arg is not None else session.profile
        self.profile = resolve_profile(arg)
        session.profile = self.profile
        n = len(session.engine.paths)
        for path, before in self.befores.items():
            if not (0 <= path < n and 0 <= before < n and path != before):
                raise ValueError(f"befores: no paths {path} and {before} among {n}")
        self.rows_sent, self._before_sent, self._rows_seen = [0] * n, [0] * n, [0] * n
        banks = [(p.bank.sample_rate, p.bank.channels) for p in session.engine.paths]
        # Started with the session's stop signals held: a process-group SIGTERM or
        # SIGHUP must not end the worker before it has given the final flags.
        with stop_signals_held():
            self._proc, self._conn = start_module("earmark.live.flags_worker")
        # The worker loads the detectors (~0.5 s) while the session starts: its
        # answer is collected before the first tick's.
        self._pace = session.engine.after_callback
        self._conn.send(("init", self.profile, banks))
        self._init_pending = True

    def wait_ready(self, timeout_s: float = _FINISH_TIMEOUT_S) -> None:
        """Wait until the worker has loaded the detectors (its answer to init).

        A session never needs this (ticks send nothing until then, and the rows wait);
        a caller that runs the engine faster than real time, as the tests do, calls it
        so that the first ticks already judge.
        """
        if self._init_pending and not self._failed:
            self._init_pending = False
            self._receive(timeout_s)

    def tick(self, session: Any, state: Any) -> None:
        """Hand the rows completed since the last tick to the worker; refresh ``session.flags``."""
        # Until the worker has loaded the detectors (its answer to init), the rows wait
        # in the banks' history and the next tick sends them all: the session thread
        # never waits for a worker that is still starting (on a loaded machine that can
        # take seconds, and every other service ticks on the same thread).
        if self._failed or (self._init_pending and not self._conn.poll(0)):
            return
        self._send_rows(session)

    def _send_rows(self, session: Any) -> None:
        engine = session.engine
        n = len(engine.paths)
        rows: list[Any] = [None] * n
        resets = [False] * n
        sent_before = list(self.rows_sent)  # where each path's rows start this tick
        for i, path in enumerate(engine.paths):
            engine.after_callback()  # one path's rows per gap between audio callbacks
            bank = path.bank
            total = bank.history_rows
            resets[i] = total < self._rows_seen[i]  # meters reset: a new programme
            if resets[i]:
                self.rows_sent[i] = self._before_sent[i] = sent_before[i] = 0
            self._rows_seen[i] = total
            if total > self.rows_sent[i]:
                rows[i] = bank.history(since=self.rows_sent[i])
                self.rows_sent[i] += len(rows[i].t_s)
        work = []
        for i in range(n):
            before_rows: Any = None
            before = self.befores.get(i)
            if before is not None:
                if self._before_sent[i] == sent_before[before]:
                    # In step with the BEFORE path's own rows (the usual case): the
                    # worker takes them from this tick's work instead of a second copy.
                    if rows[before] is not None:
                        before_rows = before
                    self._before_sent[i] = self.rows_sent[before]
                else:  # out of step (this path's meters were reset alone): catch up
                    before_bank = engine.paths[before].bank
                    if before_bank.history_rows >= self._before_sent[i]:
                        before_rows = before_bank.history(since=self._before_sent[i])
                        self._before_sent[i] += len(before_rows.t_s)
            if resets[i] or rows[i] is not None or before_rows is not None:
                work.append((i, resets[i], rows[i], before_rows))
        if work:
            self._update(session, ("tick", work), _REPLY_TIMEOUT_S)

    def stop(self, session: Any) -> None:
        """The programme ended: final flags (programme measures judged on the whole)."""
        try:
            if not self._failed:
                # The rows since the last tick first (waiting for the worker if it is
                # still starting): the final flags judge everything that played.
                self._send_rows(session)
                self._update(session, ("finish",), _FINISH_TIMEOUT_S)
        finally:
            self._stop_worker()

    # -- the worker -------------------------------------------------------------------------

    def _update(self, session: Any, message: tuple, timeout: float) -> None:
        reply = self._request(message, timeout)
        if reply is not None and reply[0] == "flags" and reply[1]:
            session.flags = reply[2]

    def _request(self, message: tuple, timeout: float) -> Any:
        """Send, then wait for the answer (the GIL is free while waiting)."""
        if self._init_pending:  # the worker's answer to init comes first
            self._init_pending = False
            self._receive(_FINISH_TIMEOUT_S)
        try:
            self._conn.send(message)
        except (OSError, ValueError) as exc:
            self._fail(exc)
        return self._receive(timeout)

    def _receive(self, timeout: float) -> Any:
        try:
            if not self._conn.poll(timeout):
                raise TimeoutError(f"the flag worker did not answer within {timeout:.0f} s")
            if self._pace is not None:
                self._pace()
            reply = self._conn.recv()
        except (OSError, EOFError, TimeoutError) as exc:
            self._fail(exc)
        if reply[0] == "error":
            self._failed = True
            self._stop_worker()
            raise reply[1]
        return reply

    def _fail(self, exc: BaseException) -> None:
        self._failed = True
        ended = _ended(self._proc)  # a dead worker explains the broken pipe
        self._stop_worker()
        raise RuntimeError(f"live flags stopped: {ended or exc or type(exc).__name__}") from None

    def _stop_worker(self) -> None:
        proc, conn = self._proc, self._conn
        self._proc = self._conn = None
        if conn is not None:
            with contextlib.suppress(OSError, ValueError):
                conn.send(("quit",))
            conn.close()
        if proc is not None:
            try:
                proc.wait(2.0)
            except Exception:
                kill(proc)


def _ended(proc: Any) -> str | None:
    """How the worker ended ("the flag worker was killed by SIGKILL"); None if it runs."""
    code = None if proc is None else proc.poll()
    if code is None:
        return None
    how = f"killed by {signal_name(-code)}" if code < 0 else f"exited with status {code}"
    return f"the flag worker was {how}"
