"""A live session: the engine streaming, plus everything that runs beside it.

The audio callback only runs the engine. Everything else a session does — the
views, the detectors, the session log and snapshots, the MIDI surface, the
control socket, the dashboard's state frame — is a *service* ticked by one
session thread, off the audio thread, at a modest rate. One thread rather than
one per feature, because every busy Python thread in the audio process steals
the GIL from the callback for up to the switch interval.

Commands come from everywhere (keys, dashboard, controller, CLI socket) and go
through :meth:`LiveSession.post`:

- engine commands (``select``, ``compare``, ``match``, ``gains``, ``monitor``,
  ``seek``, ``play``, ``reset_meters``; see ``engine.Engine._apply``) are queued for
  the next block boundary;
- session commands (``marker``, ``bypass``, ``parameter``, and whatever
  services register with :meth:`LiveSession.handle`, such as ``snapshot``) are
  queued for the session thread, which runs their handlers in order.
  :meth:`LiveSession.call` waits for the result (the snapshot id, say).

Chain edits (``bypass``, ``parameter``) are session commands so that every
control (dashboard, MIDI controller, socket) changes a chain the same way, on
the one thread that edits chains, with one memory of "the whole chain bypassed".
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from earmark.engine.drivers import AudioDriver
from earmark.engine.engine import Engine, EngineState
from earmark.errors import EarmarkError, one_line
from earmark.meters import History

__all__ = ["AudioStartError", "LiveSession", "Service", "Status"]

_MAX_PENDING = 256
_MAX_STATUS = 50


class AudioStartError(EarmarkError, RuntimeError):
    """The session's audio driver would not start (the device is busy or went away)."""


class Service(Protocol):
    """Something that runs beside the audio: started, ticked, stopped by the session.

    ``tick`` runs on the session thread at ``tick_hz`` (default: the session's rate).
    It must return quickly; slow work (disk, network) belongs on a thread the
    service owns. An exception in a service is reported once and the service is
    dropped; the audio and the other services go on.
    """

    def start(self, session: LiveSession) -> None: ...

    def tick(self, session: LiveSession, state: EngineState) -> None: ...

    def stop(self, session: LiveSession) -> None: ...


@dataclass(frozen=True)
class Status:
    """One status line (device lost, controller reconnected, snapshot stored ...)."""

    time: float  # time.time()
    source: str
    text: str


@dataclass
class _Pending:
    command: tuple
    future: Future | None = None


@dataclass
class _Slot:
    service: Any
    period_s: float
    due: float = 0.0
    name: str = field(default="")


class LiveSession:
    """The engine, its driver, the services around them, and the session's command queue.

    Args:
        engine: the running (or about to run) engine.
        driver: the audio driver streaming it (stopped when the session stops).
        name: the session's name (``--session``); a dated default otherwise.
        profile: the detectors' profile (``--profile``), or None.
        tick_hz: how often the session thread refreshes the state and ticks services.
        say: where status lines are also printed (stderr by default; None to keep quiet).
    """

    def __init__(
        self,
        engine: Engine,
        driver: AudioDriver | None = None,
        *,
        name: str | None = None,
        profile: Any = None,
        tick_hz: float = 10.0,
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.engine = engine
        self.driver = driver
        self.name = name or datetime.now().strftime("%Y-%m-%d %H:%M")
        self.profile = profile
        self.tick_hz = float(tick_hz)
        # Open and recent flags (dicts, DESIGN.md, with "path" and "open"); one per code,
        # band and episode, its "occurrences" growing as the problem comes back.
        self.flags: list[dict] = []
        self.markers: list[dict] = []
        self.status: deque[Status] = deque(maxlen=_MAX_STATUS)
        # The platform monitor service (earmark.live.platform_monitor) once it has
        # started: the views and snapshots read its mode and outcomes here.
        self.platform_monitor: Any = None
        # The codec monitor (engine.codec_host.CodecMonitor) when --codec-monitor gave one;
        # its service (earmark.live.codec_monitor) sets it.
        self.codec_monitor: Any = None
        self._say = say
        self._slots: list[_Slot] = []
        self._handlers: dict[str, list[Callable[..., Any]]] = {
            "marker": [_add_marker],
            "restart_chain": [_restart_chain],
            "bypass": [_bypass],
            "parameter": [_set_parameter],
        }
        self._pending: deque[_Pending] = deque()
        self._state: EngineState | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.dropped_commands = 0
        if driver is not None and hasattr(driver, "on_event"):
            # Stream lost / reopened: a status line for the views, not just stderr.
            driver.on_event = lambda text: self.note("audio", text)

    # -- reading --------------------------------------------------------------------------

    def state(self) -> EngineState:
        """The latest engine state (refreshed by the session thread; computed now if none)."""
        state = self._state
        if state is None:
            state = self._state = self.engine.state()
        return state

    def history(self, path: int) -> History:
        """The 10 Hz meter curves of path ``path``."""
        return self.engine.paths[path].bank.history()

    def chains(self) -> list[Any]:
        """Per path: its chain (``engine.chains.Chain`` or another processor), or None."""
        return [p.chain for p in self.engine.paths]

    @property
    def position_s(self) -> float:
        """Where the session's transport is, in seconds."""
        return self.engine.transport.pos / self.engine.sample_rate

    # -- commands ---------------------------------------------------------------------------

    def handle(self, kind: str, handler: Callable[..., Any]) -> None:
        """Register ``handler(session, *args)`` for the session command ``kind``.

        Several handlers may share a kind; they run in registration order and
        :meth:`call` returns the last result that is not None.
        """
        self._handlers.setdefault(kind, []).append(handler)

    def handles(self, kind: str) -> bool:
        """True when ``kind`` is a session command (it has a handler)."""
        return kind in self._handlers

    def post(self, *command: object) -> bool:
        """Queue a command (engine or session); never blocks. False when dropped."""
        if not command:
            return False
        if command[0] in self._handlers:
            return self._enqueue(_Pending(tuple(command)))
        return self.engine.post(*command)

    def call(self, *command: object, timeout: float | None = 5.0) -> Any:
        """Run a session command on the session thread and return its result.

        Raises TimeoutError if the session thread does not run it in time, and
        re-raises what the handler raised.
        """
        if not command or command[0] not in self._handlers:
            raise ValueError(f"not a session command: {command[:1]!r}")
        future: Future = Future()
        if not self._enqueue(_Pending(tuple(command), future)):
            raise RuntimeError("too many session commands pending")
        if self._thread is None:  # not running: run it here
            self._run_commands()
        return future.result(timeout=timeout)

    def _enqueue(self, pending: _Pending) -> bool:
        if len(self._pending) >= _MAX_PENDING:
            self.dropped_commands += 1
            return False
        self._pending.append(pending)
        self._wake.set()
        return True

    def note(self, source: str, text: str) -> None:
        """Add a status line (shown by the views, printed if the session prints)."""
        self.status.append(Status(time.time(), source, text))
        if self._say is not None:
            self._say(f"earmark: {text}")

    # -- services ---------------------------------------------------------------------------

    def add_service(self, service: Any, name: str | None = None) -> None:
        """Add a service; started now if the session is running."""
        hz = float(getattr(service, "tick_hz", self.tick_hz) or self.tick_hz)
        slot = _Slot(service, 1.0 / hz, name=name or type(service).__name__)
        self._slots.append(slot)
        if self._thread is not None:
            self._start_slot(slot)

    def _start_slot(self, slot: _Slot) -> bool:
        try:
            slot.service.start(self)
            return True
        except Exception as exc:
            self._drop(slot, "could not start", exc)
            return False

    def _drop(self, slot: _Slot, what: str, exc: BaseException) -> None:
        if slot in self._slots:
            self._slots.remove(slot)
        self.note(slot.name, f"{slot.name} {what} and was stopped: {one_line(exc, name=True)}")

    # -- running ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the services, then the driver (unless its opener already did), then
        the session thread.

        Services start before the audio: their start-up (worker processes, MIDI
        ports joining the JACK graph, opening the store) holds the GIL and the
        CPU in bursts that, while streaming, cost xruns in the first seconds
        (bench/realtime.py: one 56 ms stall at a session's start).
        """
        if self._thread is not None:
            return
        for slot in list(self._slots):
            self._start_slot(slot)
        driver = self.driver
        if driver is not None and driver.status == "stopped":
            try:
                driver.start()
            except Exception as exc:
                self._stop_services()
                raise AudioStartError(
                    f"the audio stream did not start ({driver.name}): {one_line(exc, name=True)}"
                ) from exc
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="earmark-session", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the session thread and the driver, then the services (in reverse).

        The audio stops first, so that what services do at the end (final flags,
        the session-end snapshot) describes exactly what played, and a slow
        service cannot make the audio outlive ``--seconds``.
        """
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            self._wake.set()
            thread.join(timeout=5.0)
        if self.driver is not None:
            self.driver.stop()
        self._run_commands()  # what was acknowledged-in-flight still runs
        self._stop_services()

    def _stop_services(self) -> None:
        """Stop every service, the last added first; a failure is reported, not raised."""
        for slot in reversed(list(self._slots)):
            try:
                slot.service.stop(self)
            except Exception as exc:
                self.note(
                    slot.name, f"{slot.name} failed to stop cleanly: {one_line(exc, name=True)}"
                )

    def __enter__(self) -> LiveSession:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def run(self, seconds: float | None = None, view: Callable[[LiveSession], None] | None = None):
        """Start, show ``view(session)`` (or just wait ``seconds``), stop on return or Ctrl-C.

        SIGTERM and SIGHUP (a closed terminal, a dropped SSH connection) end it like
        Ctrl-C (a clean stop: the final flags, the session log and its last snapshot
        are written, the services stop in order) when called from the main thread.
        """
        previous = _stop_signals_as_interrupt()
        self.start()
        try:
            if view is not None:
                view(self)
            else:
                end = None if seconds is None else time.monotonic() + seconds
                while end is None or time.monotonic() < end:
                    time.sleep(0.1 if end is None else max(0.0, min(0.1, end - time.monotonic())))
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _loop(self) -> None:
        next_state = 0.0
        while not self._stop.is_set():
            period = min([s.period_s for s in self._slots] + [1.0 / self.tick_hz])
            self._run_commands()
            now = time.monotonic()
            if now >= next_state:
                self._state = self.engine.state()
                next_state = now + 1.0 / self.tick_hz
                self._watch_chains()
            for slot in list(self._slots):
                if now < slot.due:
                    continue
                slot.due = now + slot.period_s
                # Each piece of Python work starts in the gap after an audio callback
                # (see Engine.after_callback), so it rarely holds the GIL when one is due.
                self.engine.after_callback()
                try:
                    slot.service.tick(self, self._state)
                except Exception as exc:
                    self._drop(slot, "failed", exc)
            self._wake.wait(period)
            self._wake.clear()

    def _watch_chains(self) -> None:
        """Report isolated chains whose host died (their paths are already silent), and
        what the engine's guards muted (the output, a path with a faulty chain)."""
        for line in self.engine.poll_status():
            self.note("engine", line)
        for path in self.engine.paths:
            poll = getattr(path.chain, "poll", None)
            if poll is not None:
                line = poll()
                if line:
                    self.note(path.name, line)

    def _run_commands(self) -> None:
        while self._pending:
            pending = self._pending.popleft()
            kind, args = pending.command[0], pending.command[1:]
            result = None
            try:
                for handler in self._handlers.get(kind, ()):
                    out = handler(self, *args)
                    if out is not None:
                        result = out
            except Exception as exc:
                if pending.future is not None:
                    pending.future.set_exception(exc)
                else:
                    self.note("session", f"{kind} failed: {one_line(exc, name=True)}")
                continue
            if pending.future is not None:
                pending.future.set_result(result)


def _stop_signals_as_interrupt() -> dict[int, Any]:
    """Make SIGTERM and SIGHUP raise KeyboardInterrupt; return the previous handlers
    (none off the main thread). A SIGHUP ignored on entry (``nohup earmark run``)
    stays ignored: the session was asked to outlive its terminal."""
    if threading.current_thread() is not threading.main_thread():
        return {}

    stopping = False

    def interrupt(signum: int, frame: object) -> None:
        nonlocal stopping
        if not stopping:  # a second signal (a hangup, then a logout's SIGTERM) must not
            stopping = True  # cut short the clean stop the first one started
            raise KeyboardInterrupt

    previous: dict[int, Any] = {}
    for name in ("SIGTERM", "SIGHUP"):
        signum = getattr(signal, name, None)  # no SIGHUP on Windows
        if signum is None or (name == "SIGHUP" and signal.getsignal(signum) == signal.SIG_IGN):
            continue
        previous[signum] = signal.signal(signum, interrupt)
    return previous


def _add_marker(session: LiveSession, label: str | None = None, *_: object) -> dict:
    """The built-in ``marker`` command: remember where and when, return the marker."""
    marker = {
        "time": time.time(),
        "t_s": round(session.position_s, 3),
        "label": label or f"marker {len(session.markers) + 1}",
    }
    session.markers.append(marker)
    return marker


def _restart_chain(session: LiveSession, path: int, *_: object) -> bool:
    """The built-in ``restart_chain`` command: a new host for an isolated chain."""
    chain = session.engine.paths[int(path)].chain
    restart = getattr(chain, "restart", None)
    if restart is None:
        raise ValueError(f"path {path} has no isolated chain to restart")
    restart()
    session.note(session.engine.paths[int(path)].name, "chain host restarted")
    return True


def _chain_of(session: LiveSession, path: object, what: str) -> Any:
    """The chain of path ``path`` (counted from 0) for the command ``what``, or ValueError."""
    chains = session.chains()
    if not isinstance(path, int) or isinstance(path, bool) or not 0 <= path < len(chains):
        # The command counts from 0; people count paths from 1 (ui.conventions).
        shown = path + 1 if isinstance(path, int) else path
        raise ValueError(f"{what}: no path {shown!r} (paths 1 to {len(chains)})")
    chain = chains[path]
    if chain is None or not hasattr(chain, "set_bypass"):
        raise ValueError(f"{what}: path {path + 1} has no chain")
    return chain


def _bypass(
    session: LiveSession, path: int, plugin: int | None = None, on: bool | None = True, *_: object
) -> list[bool]:
    """The built-in ``bypass`` command: one plugin, or (plugin None) the whole chain of a path.

    ``on`` None toggles (decided here, on the session thread, so that two quick
    presses of a controller's button toggle twice). Bypassing the whole chain
    remembers which plugins were bypassed, and restoring it brings exactly those
    back. Returns the chain's bypass flags after the change.
    """
    chain = _chain_of(session, path, "bypass")
    bypassed = tuple(bool(b) for b in chain.bypassed)
    if plugin is not None:
        plugin = int(plugin)
        if not 0 <= plugin < len(bypassed):
            raise ValueError(f"bypass: path {path + 1} has no plugin {plugin + 1}")
        chain.set_bypass(plugin, (not bypassed[plugin]) if on is None else bool(on))
        return list(chain.bypassed)
    if on is None:
        on = not (bool(bypassed) and all(bypassed))
    return list(chain.bypass_all(bool(on)))  # the chain remembers what it restores


def _set_parameter(
    session: LiveSession, path: int, plugin: int, key: str, value: object, *_: object
) -> object:
    """The built-in ``parameter`` command: set ``key`` (a preset key with its unit, such as
    ``threshold_db``) of plugin ``plugin`` (from 0) in the chain of ``path`` (from 0).

    Raises what ``Chain.set_parameter`` raises (a value out of the plugin's range).
    """
    chain = _chain_of(session, path, "parameter")
    chain.set_parameter(int(plugin), str(key), value)
    return value


def default_say(message: str) -> None:
    """Print a status line to stderr."""
    print(message, file=sys.stderr, flush=True)
