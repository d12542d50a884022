"""The dashboard's side of a live session: publish the state frame, take commands back.

:class:`DashboardService` is a :class:`~earmark.live.session.LiveSession` service
(30 Hz, on the session thread, in the audio process). Each tick it

- drains the commands dashboards sent on the session's command socket and
  posts them with ``session.post`` (an allow-list; anything else is reported);
- writes the state frame (``earmark.ui.stateframe``): the engine header every
  tick, every path's readings, spectra and 10 Hz history when the session's
  state is new (10 Hz), the goniometer cloud from the engine's A/B tap, and
  the JSON area (names, chains, flags, markers, status, MIDI, profile) only
  when its text changed;
- notices a spawned dashboard that closed or crashed and says so once. The
  audio never waits for, or stops with, a dashboard.

The frame's name and the socket's path go into a small file in the run
folder, ``config.runtime_dir()`` (where the control socket is too), which
`earmark dashboard` reads to attach another dashboard to the running session.
The run folder is a private folder (``earmark.private``: 0700, refused when it
is a link, another user's or writable by others); the file is written 0600
through a fresh, unpredictably named file renamed into place (never through a
link), and only files of the user's own are read back.

The service also owns the session command ``reset_holds`` (true-peak hold
and overs counters, which live here so the dashboard, the keyboard and a
controller share them). The platform monitor (earmark.live.platform_monitor) is
published as the header's ``platform_monitor``, each path's ``platform_gain_db``,
``platform_lufs`` and ``platform_penalty_lu``, and the JSON area's ``platform_monitor``
(name, label and the views' line); ``bypass`` (path, plugin index or None for the whole
chain, on/off) is the session's own command (earmark.live.session), shared with the
MIDI controller.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from earmark import config
from earmark.engine.childproc import alive, signal_name
from earmark.live.codec_monitor import frame_fields as codec_frame_fields
from earmark.meters import Readings
from earmark.private import (
    SOCKET_PATH_MAX_BYTES,
    FolderError,
    MissingFolderError,
    PrivateFolder,
    open_private,
)
from earmark.ui.stateframe import (
    HISTORY_CURVES,
    PATH_FIELDS,
    SOLO_CODES,
    CommandInbox,
    Layout,
    StateFrameWriter,
)
from earmark.ui.xdisplay import display_available

__all__ = [
    "DEFAULT_CEILING_DBTP",
    "DashboardService",
    "display_available",
    "find_sessions",
    "profile_info",
    "run_dir",
]

DEFAULT_CEILING_DBTP = -1.0
_ENGINE_COMMANDS = {"select", "compare", "match", "monitor", "seek", "play", "reset_meters"}
_MONITOR_KEYS = {"dim", "mono", "mute", "solo", "trim_db"}
_JSON_FLAGS = 200
# A flag groups up to 100 occurrences (earmark.meters.flags.MAX_OCCURRENCES): the
# frame's JSON area carries the latest ones' spans only, for the flag lane.
_JSON_OCCURRENCES = 16
_JSON_MARKERS = 100
_JSON_STATUS = 8
_COST_RING = 64
_READING_NAMES = {f.name for f in fields(Readings)}
_CURVE_ATTR = {
    "momentary_lufs": "momentary_lufs",
    "short_term_lufs": "short_term_lufs",
    "psr_db": "psr_db",
    "true_peak_3s_dbtp": "true_peak_3s_dbtp",
}


def run_dir() -> Path:
    """Where running sessions leave their dashboard address: the run folder,
    ``config.runtime_dir()`` (``$EARMARK_HOME/run`` when set)."""
    return config.runtime_dir()


def find_sessions(folder: Path | None = None) -> list[dict]:
    """Running sessions' dashboard addresses, newest first; files of dead sessions are removed.

    Raises ``earmark.private.FolderError`` (one line) when the run folder cannot be
    trusted (a link, another user's, writable by others); files in it that are not
    the user's own, or that name a command socket that is not the user's, are skipped.
    """
    try:
        private = open_private(folder or run_dir(), create=False, tighten=False)
    except MissingFolderError:
        return []
    found = []
    with private:
        for name in private.names("session-*.json"):
            try:
                info = json.loads(private.read_text(name))
                pid = int(info["pid"])
            except (OSError, ValueError, KeyError, TypeError, FolderError):
                continue
            if not alive(pid):
                with contextlib.suppress(OSError):
                    private.unlink(name)
                continue
            if not _own_socket(info.get("commands")):
                continue  # a dashboard would send its commands to somebody else's socket
            info["file"] = str(private.path / name)
            found.append(info)
    found.sort(key=lambda i: i.get("started", 0.0), reverse=True)
    return found


def _own_socket(path: Any) -> bool:
    """True if ``path`` is a Unix socket of the current user's (not a link to one)."""
    try:
        info = os.lstat(str(path))
    except (OSError, ValueError):
        return False
    return stat.S_ISSOCK(info.st_mode) and info.st_uid == os.geteuid()


def profile_info(profile: Any) -> dict | None:
    """The profile's targets as the dashboard draws them (None without a profile).

    Accepts a mapping or an object with attributes. Keys (all optional):
    ``name``, ``target_lufs``, ``tolerance_lu``, ``ceiling_dbtp``, ``psr_min_db``,
    ``plr_min_db``, ``lra_min_lu``, ``tonal`` ([[hz, low_db, high_db], ...]:
    the tonal-balance band, relative to the programme's integrated loudness) and
    ``harsh`` ([[low_hz, high_hz, max_db], ...]).
    """
    if profile is None:
        return None
    if hasattr(profile, "dashboard_targets"):
        return dict(profile.dashboard_targets())

    def get(*names: str) -> Any:
        for name in names:
            value = profile.get(name) if isinstance(profile, dict) else getattr(profile, name, None)
            if value is not None:
                return value
        return None

    out = {
        "name": get("name"),
        "target_lufs": get("target_lufs", "loudness_target_lufs", "integrated_lufs"),
        "tolerance_lu": get("tolerance_lu", "loudness_tolerance_lu"),
        "ceiling_dbtp": get("ceiling_dbtp", "true_peak_ceiling_dbtp", "true_peak_max_dbtp"),
        "psr_min_db": get("psr_min_db"),
        "plr_min_db": get("plr_min_db"),
        "lra_min_lu": get("lra_min_lu", "loudness_range_min_lu"),
        "tonal": get("tonal", "tonal_band"),
        "harsh": get("harsh", "harsh_bands"),
    }
    return json.loads(json.dumps(out, default=_jsonable))


class DashboardService:
    """Publishes the state frame and takes the dashboards' commands (see the module docstring).

    Args:
        spawn: start a dashboard window (``python -m earmark.ui.dashboard``) with the session.
        layout: the frame's sizes (defaults: 8 paths, 10 minutes of history).
        folder: where to leave the session's address (default ``run_dir()``).
        dashboard_args: extra arguments for the spawned dashboard.
    """

    tick_hz = 30.0

    def __init__(
        self,
        *,
        spawn: bool = False,
        layout: Layout | None = None,
        folder: Path | None = None,
        dashboard_args: tuple[str, ...] = (),
    ) -> None:
        self.spawn = spawn
        self.layout = layout or Layout()
        self.folder = folder
        self.dashboard_args = tuple(dashboard_args)
        self.writer: StateFrameWriter | None = None
        self.inbox: CommandInbox | None = None
        self.run_file: Path | None = None
        self.child: subprocess.Popen | None = None
        self.child_status = ""  # "", "running", or how it ended
        self.tick_costs_us = np.zeros(_COST_RING)  # CPU time of the last ticks
        self.ticks = 0
        self.commands_taken = 0
        self._last_state: Any = None
        self._json_text = ""
        self._info_seen: tuple | None = None
        self._ceiling = DEFAULT_CEILING_DBTP
        self._chain_cache: dict[int, tuple[Any, dict]] = {}
        self._profile_seen: tuple[Any, dict | None] = (None, None)
        self._profile_error = ""
        self._midi_text: str | None = None
        n = self.layout.max_paths
        self._hold = np.full(n, math.nan)
        self._overs = np.zeros(n)
        self._over_now = np.zeros(n, dtype=bool)
        self._last_duration = np.zeros(n)
        self._rows_seen = np.zeros(n, dtype=np.int64)
        self._tap = np.zeros((4 * self.layout.gonio_points, 4), dtype=np.float32)
        self._socket_dir: str | None = None
        self._run_folder: PrivateFolder | None = None

    # -- service protocol ------------------------------------------------------------------

    def start(self, session: Any) -> None:
        """Create the frame and the command socket, leave the address, maybe spawn a window."""
        # A run folder that cannot be trusted stops this service (one status line via the
        # session), never the audio. Checked first: nothing is left behind when it fails.
        private = open_private(self.folder or run_dir())
        self.writer = StateFrameWriter(self.layout)
        folder = private.path
        sock = folder / f"session-{os.getpid()}.sock"
        if len(os.fsencode(sock)) > SOCKET_PATH_MAX_BYTES:
            # The dashboard sends to the socket by path, so it must fit in sun_path:
            # mkdtemp makes a fresh 0700 folder of a random name.
            self._socket_dir = tempfile.mkdtemp(prefix="earmark-")
            sock = Path(self._socket_dir) / "commands.sock"
        self.inbox = CommandInbox(sock)
        self._run_folder = private
        self.run_file = folder / f"session-{os.getpid()}.json"
        private.replace(
            self.run_file.name,
            json.dumps(
                {
                    "pid": os.getpid(),
                    "session": session.name,
                    "frame": self.writer.name,
                    "commands": str(sock),
                    "started": time.time(),
                }
            ),
        )
        session.handle("reset_holds", self._reset_holds)
        self._publish(session, session.state())
        if self.spawn:
            self.open_window(session)

    def tick(self, session: Any, state: Any) -> None:
        """Take commands, write the frame, watch the window; cost recorded per tick."""
        t0 = time.thread_time()  # CPU time: what the tick costs, not how long it waited
        if self.inbox is not None:
            for command in self.inbox.drain():
                self._dispatch(session, command)
        self._publish(session, state)
        self._watch_child(session)
        self.tick_costs_us[self.ticks % _COST_RING] = (time.thread_time() - t0) * 1e6
        self.ticks += 1

    def stop(self, session: Any) -> None:
        """Close the window we opened, close the frame (readers see "ended"), remove files."""
        self.close_window()
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        if self.inbox is not None:
            self.inbox.close()
            self.inbox = None
        if self._socket_dir is not None:
            with contextlib.suppress(OSError):
                os.rmdir(self._socket_dir)
        if self._run_folder is not None:
            if self.run_file is not None:
                with contextlib.suppress(OSError):
                    self._run_folder.unlink(self.run_file.name)
            self._run_folder.close()
            self._run_folder = None

    # -- the window ------------------------------------------------------------------------

    def open_window(self, session: Any) -> None:
        """Start a dashboard process on this session's frame (its own process group)."""
        assert self.writer is not None and self.inbox is not None
        argv = [
            sys.executable,
            "-m",
            "earmark.ui.dashboard",
            "--frame",
            self.writer.name,
            "--commands",
            str(self.inbox.path),
            *self.dashboard_args,
        ]
        self.child = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True
        )
        self.child_status = "running"
        session.note("dashboard", f"dashboard opened (pid {self.child.pid})")

    def close_window(self, timeout_s: float = 3.0) -> None:
        """Stop the dashboard this service opened (SIGTERM, then SIGKILL)."""
        child, self.child = self.child, None
        if child is None or child.poll() is not None:
            return
        child.terminate()
        try:
            child.wait(timeout_s)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(timeout_s)

    def _watch_child(self, session: Any) -> None:
        child = self.child
        if child is None or self.child_status != "running":
            return
        rc = child.poll()
        if rc is None:
            return
        if rc == 0:
            self.child_status = "closed"
            text = "dashboard closed; the audio goes on (`earmark dashboard` reopens it)"
        else:
            self.child_status = f"ended ({_exit_text(rc)})"
            text = (
                f"dashboard ended ({_exit_text(rc)}); the audio goes on "
                "(`earmark dashboard` reopens it)"
            )
        session.note("dashboard", text)

    # -- commands --------------------------------------------------------------------------

    def _dispatch(self, session: Any, command: tuple) -> None:
        kind = command[0]
        args = command[1:]
        self.commands_taken += 1
        if kind == "monitor":
            if len(args) != 1 or not isinstance(args[0], dict):
                session.note("dashboard", f"ignored a malformed monitor command {command!r}")
                return
            change = {k: v for k, v in args[0].items() if k in _MONITOR_KEYS}
            args = (change,)
        elif kind not in _ENGINE_COMMANDS and not _handles(session, kind):
            session.note("dashboard", f"'{kind}' is not available in this session")
            return
        if not session.post(kind, *args):
            session.note("dashboard", f"'{kind}' dropped: too many commands pending")

    def _reset_holds(self, session: Any, *_: object) -> None:
        self._hold[:] = math.nan
        self._overs[:] = 0
        self._over_now[:] = False

    # -- the frame -------------------------------------------------------------------------

    def _publish(self, session: Any, state: Any) -> None:
        writer = self.writer
        if writer is None:
            return
        engine = session.engine
        fresh = state is not self._last_state
        n_paths = min(len(state.paths), self.layout.max_paths)
        text = None
        if fresh:
            # The JSON area changes a few times a minute: rebuild and encode it only
            # when something it shows may have changed (json.dumps of flags and
            # chains holds the GIL for one uninterrupted call).
            key = self._info_key(session, state)
            if key is None or key != self._info_seen:
                info = self._info(session, state)
                self._ceiling = DEFAULT_CEILING_DBTP
                if info.get("profile") and info["profile"].get("ceiling_dbtp"):
                    self._ceiling = float(info["profile"]["ceiling_dbtp"])
                # NaN stays NaN (Python's json reads it back); a flag's undefined value
                # must not stop the publisher.
                text = json.dumps(info, default=_jsonable, separators=(",", ":"))
                if text == self._json_text:
                    text = None
            self._info_seen = key
        ceiling = self._ceiling
        histories = []
        for i in range(n_paths if fresh else 0):
            engine.after_callback()  # one path's rows per gap between audio callbacks
            histories.append(self._new_rows(engine, i))
        if fresh:
            engine.after_callback()
        taps = engine.read_tap(self._tap)
        with writer.writing():
            self._header(writer, session, state, n_paths)
            if fresh:
                for i in range(n_paths):
                    self._path(writer, i, state.paths[i], histories[i], ceiling)
            self._gonio(writer, state, taps)
            self._platform(writer, session, n_paths)
            if text is not None:
                writer.set_json(text.encode())
                self._json_text = text
        self._last_state = state

    def _header(self, writer: StateFrameWriter, session: Any, state: Any, n_paths: int) -> None:
        h = writer.header
        engine = session.engine
        driver = session.driver
        h["sample_rate"] = engine.sample_rate
        if driver is not None:
            h["block_size"] = driver.blocksize
            lat_in, lat_out = driver.latency_s
            h["latency_ms"] = 1e3 * (lat_in + lat_out)
        h["chain_latency_ms"] = 1e3 * engine.chain_latency_samples / engine.sample_rate
        h["xruns"] = engine.xruns
        h["callbacks"] = engine.callbacks
        h["callback_p99_us"] = state.callback_p99_us
        h["callback_max_us"] = state.callback_max_us
        h["position_s"] = session.position_s
        h["audible"] = 1.0 if state.audible == "B" else 0.0
        h["a"] = state.a
        h["b"] = state.b
        h["loudness_match"] = 1.0 if state.loudness_match else 0.0
        h["match_a_db"] = state.match_a_db if math.isfinite(state.match_a_db) else None
        h["match_b_db"] = state.match_b_db if math.isfinite(state.match_b_db) else None
        mon = state.monitor
        h["dim"] = 1.0 if mon.get("dim") else 0.0
        h["mono"] = 1.0 if mon.get("mono") else 0.0
        h["mute"] = 1.0 if mon.get("mute") else 0.0
        h["trim_db"] = float(mon.get("trim_db", 0.0))
        h["solo"] = SOLO_CODES.get(mon.get("solo"), 0)
        h["n_paths"] = n_paths
        h["dropped_commands"] = state.dropped_commands + getattr(session, "dropped_commands", 0)
        for name, value in codec_frame_fields(session).items():
            h[name] = value
        if self.ticks and self.ticks % _COST_RING == 0:  # once per ring: a median is not free
            h["tick_cost_us"] = float(np.median(self.tick_costs_us))

    def _path(self, writer: StateFrameWriter, i: int, ps: Any, hist: Any, ceiling: float) -> None:
        r = ps.readings
        if r.duration_s < self._last_duration[i]:  # the meters were reset: so are the holds
            self._hold[i] = math.nan
            self._overs[i] = 0
            self._over_now[i] = False
        self._last_duration[i] = r.duration_s
        recent = r.recent_true_peak_dbtp
        if recent is not None:
            if not recent <= self._hold[i]:  # NaN-safe max
                self._hold[i] = recent
            over = recent > ceiling
            if over and not self._over_now[i]:
                self._overs[i] += 1
            self._over_now[i] = over
        v = writer.path_values(i)
        for k, name in enumerate(PATH_FIELDS):
            if name in _READING_NAMES:
                value = getattr(r, name)
                v[k] = math.nan if value is None else value
        tp = r.true_peak_channels_dbtp
        n_bands = len(r.band_hz)
        extra = {
            "true_peak_hold_dbtp": self._hold[i],
            "overs": self._overs[i],
            "true_peak_left_dbtp": tp[0] if tp else None,
            "true_peak_right_dbtp": tp[1] if len(tp) > 1 else None,
            "latency_samples": ps.latency_samples,
            "delay_samples": ps.delay_samples,
            "muted_blocks": ps.nonfinite_blocks,
            "n_bands": n_bands,
        }
        for name, value in extra.items():
            v[_PI[name]] = math.nan if value is None else value
        rec = writer.paths[i]
        nb = min(n_bands, self.layout.n_bands)
        rec["band_hz"][:nb] = r.band_hz[:nb]
        rec["spectrum_long_db"][:nb] = _floats(r.spectrum_long_db[:nb])
        rec["spectrum_short_db"][:nb] = _floats(r.spectrum_short_db[:nb])
        first, rows = hist
        n = 0 if rows is None else len(rows.t_s)
        if n:
            slots = (first + np.arange(n)) % self.layout.history_points
            curves = rec["history"]
            for k, name in enumerate(HISTORY_CURVES):
                curves[k, slots] = getattr(rows, _CURVE_ATTR[name])
            v[_PI["history_end_s"]] = rows.t_s[-1]
            v[_PI["history_row_s"]] = rows.t_s[-1] / (first + n)
        v[_PI["history_rows"]] = self._rows_seen[i]

    def _new_rows(self, engine: Any, i: int) -> tuple[int, Any]:
        """(number of the first row, History of the rows not yet in the frame or None).

        Only rows the frame has not seen are read (``MeterBank.history(since=)``),
        so a tick costs a row or two, not ten minutes of curves.
        """
        bank = engine.paths[i].bank
        total = getattr(bank, "history_rows", None)
        if total is None:  # a bank without row numbers: the whole history each time
            rows = bank.history()
            self._rows_seen[i] = len(rows.t_s)
            return 0, rows
        seen = int(self._rows_seen[i])
        if total < seen:  # the meters were reset
            seen = 0
        self._rows_seen[i] = seen
        if total == seen:
            return seen, None
        rows = bank.history(since=max(seen, total - self.layout.history_points))
        first = int(rows.first_row)
        self._rows_seen[i] = first + len(rows.t_s)
        return first, rows

    def _platform(self, writer: StateFrameWriter, session: Any, n_paths: int) -> None:
        """The platform monitor's outcome for A and B (earmark.live.platform_monitor)."""
        monitor = getattr(session, "platform_monitor", None)
        on = monitor is not None and monitor.name is not None
        writer.header["platform_monitor"] = 1.0 if on else 0.0
        for i in range(n_paths):
            v = writer.path_values(i)
            got = monitor.of_path(i) if on else None
            o = None if got is None else got.outcome
            for field_name, value in (
                ("platform_gain_db", None if o is None else o.gain_db),
                ("platform_lufs", None if o is None else o.playback_lufs),
                ("platform_penalty_lu", None if o is None else o.penalty_lu),
            ):
                v[_PI[field_name]] = math.nan if value is None else value

    def _gonio(self, writer: StateFrameWriter, state: Any, taps: int) -> None:
        g = self.layout.gonio_points
        step = self._tap.shape[0] // g
        points = min(g, taps // step)
        for i in range(min(len(state.paths), self.layout.max_paths)):
            writer.path_values(i)[_PI["gonio_points"]] = 0
        if not points:
            return
        for index, cols in ((state.a, slice(0, 2)), (state.b, slice(2, 4))):
            if index < self.layout.max_paths:
                writer.paths[index]["gonio"][g - points :] = self._tap[
                    self._tap.shape[0] - points * step :: step, cols
                ]
                writer.paths[index]["gonio"][: g - points] = 0.0
                writer.path_values(index)[_PI["gonio_points"]] = g

    def _info_key(self, session: Any, state: Any) -> tuple | None:
        """What the JSON area is built from: equal keys, equal JSON.

        The objects are compared by identity: their ids come first in the key and
        the objects themselves last (held, so that no id is reused while the key
        lives), so a replaced flag list, chain spec or profile reads as a change
        and no two objects are ever compared by value. None when a chain has no
        ``spec`` to tell its changes by (the area is then rebuilt every time).
        """
        flags, markers, status = session.flags, session.markers, session.status
        objects: list[Any] = [
            flags,
            markers[-1] if markers else None,
            status[-1] if status else None,
            session.profile,
        ]
        for chain in session.chains()[: self.layout.max_paths]:
            spec = getattr(chain, "spec", None)
            if chain is not None and spec is None:
                return None
            objects += [chain, spec]
        return (
            *(id(o) for o in objects),
            len(flags),
            len(markers),
            tuple(ps.name for ps in state.paths[: self.layout.max_paths]),
            self._midi_status(session),
            _platform_info(session),
            tuple(_handles(session, kind) for kind in ("snapshot", "marker", "bypass")),
            self.child.pid if self.child is not None else None,
            tuple(objects),
        )

    def _info(self, session: Any, state: Any) -> dict:
        chains = session.chains()
        paths = []
        for i, ps in enumerate(state.paths[: self.layout.max_paths]):
            paths.append({"name": ps.name, "chain": self._chain_info(i, chains[i])})
        status = [
            {"time": s.time, "source": s.source, "text": s.text}
            for s in list(session.status)[-_JSON_STATUS:]
        ]
        return {
            "session": session.name,
            "paths": paths,
            "flags": [_frame_flag(f) for f in session.flags[-_JSON_FLAGS:]],
            "markers": list(session.markers[-_JSON_MARKERS:]),
            "status": status,
            "midi": self._midi_status(session),
            "profile": self._profile(session.profile),
            "commands": {
                kind: _handles(session, kind) for kind in ("snapshot", "marker", "bypass")
            },
            "dashboard_pid": self.child.pid if self.child is not None else None,
            "platform_monitor": _platform_json(session),
            "codec": _codec_info(session),
        }

    def _midi_status(self, session: Any) -> str | None:
        """The controller's latest status line ("midi" notes, kept after they scroll away)."""
        text = getattr(session, "midi_status", None)
        if callable(text):
            text = text()
        if isinstance(text, str):
            return text
        for s in reversed(session.status):
            if s.source.lower() in ("midi", "controller"):
                self._midi_text = s.text
                break
        return self._midi_text

    def _profile(self, profile: Any) -> dict | None:
        if profile is not self._profile_seen[0]:
            try:
                info = profile_info(profile)
            except Exception as exc:  # a profile object of another shape: draw without it
                info = None
                self._profile_error = f"{type(exc).__name__}: {exc}"
            self._profile_seen = (profile, info)
        return self._profile_seen[1]

    def _chain_info(self, i: int, chain: Any) -> dict | None:
        if chain is None:
            return None
        spec = getattr(chain, "spec", None)
        cached = self._chain_cache.get(i)
        if spec is not None and cached is not None and cached[0] is spec:
            return cached[1]
        info = chain_info(chain)
        if spec is not None:
            self._chain_cache[i] = (spec, info)
        return info


_PI = {name: k for k, name in enumerate(PATH_FIELDS)}


def chain_info(chain: Any) -> dict:
    """A chain as the dashboard lists it (from its ``describe()``): name, plugins,
    parameters with units, bypass. Another processor is named by type."""
    if not hasattr(chain, "describe"):
        latency = getattr(chain, "latency_samples", 0)
        return {
            "name": type(chain).__name__,
            "plugins": [],
            "latency_samples": latency,
            "bypassed": False,
        }
    described = chain.describe()
    plugins = [
        {
            "title": p.title,
            "kind": p.kind,
            "bypass": p.bypass,
            "params": [[q.name, q.value, q.unit] for q in p.parameters],
            "latency_samples": p.latency_samples,
        }
        for p in described.plugins
    ]
    return {
        "name": described.name,
        "plugins": plugins,
        "latency_samples": described.latency_samples,
        "bypassed": described.bypassed,
    }


def _platform_info(session: Any) -> tuple[str, str, str] | None:
    """The platform monitor as the JSON area carries it: (name, label, the views' line)."""
    monitor = getattr(session, "platform_monitor", None)
    if monitor is None or monitor.rule is None:
        return None
    return (monitor.rule.name, monitor.rule.label, monitor.note())


def _platform_json(session: Any) -> dict | None:
    """The JSON area's ``platform_monitor``: {"name", "label", "note"}, or None when off."""
    info = _platform_info(session)
    return None if info is None else dict(zip(("name", "label", "note"), info, strict=True))


def _codec_info(session: Any) -> dict | None:
    """The codec monitor's name and label for the JSON area (None without one)."""
    monitor = getattr(session, "codec_monitor", None)
    if monitor is None:
        return None
    return {"name": monitor.codec.name, "label": monitor.codec.label}


def _handles(session: Any, kind: str) -> bool:
    return bool(session.handles(kind))


def _floats(values: Any) -> np.ndarray:
    return np.array([math.nan if v is None else v for v in values], dtype=np.float32)


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, tuple | set):
        return list(value)
    return str(value)


def _exit_text(rc: int) -> str:
    return signal_name(-rc) if rc < 0 else f"exit code {rc}"


def publish_only(session: Any) -> DashboardService:
    """Add a publishing service (no window) so that `earmark dashboard` can attach later."""
    service = DashboardService(spawn=False)
    session.add_service(service, name="dashboard")
    return service


def with_dashboard(
    session: Any, *, no_ui: bool, say: Callable[[str], None]
) -> DashboardService | None:
    """Add the dashboard service; open a window unless ``no_ui`` or there is no display.

    Returns the service when a window is being opened, else None (the caller shows
    the terminal view; the frame is still published for `earmark dashboard`).
    """
    ok, reason = (False, "--no-ui") if no_ui else display_available()
    service = DashboardService(spawn=ok)
    session.add_service(service, name="dashboard")
    if not ok and not no_ui:
        say(f"earmark: {reason}; showing the terminal view")
    return service if ok else None


def show_session(
    session: Any, seconds: float | None, *, no_ui: bool, title: str, say: Callable[[str], None]
) -> None:
    """Run a live session with the dashboard window when a display is there, else the
    terminal view; the state frame is published either way (`earmark dashboard`)."""
    from earmark.live import audio as live

    window = with_dashboard(session, no_ui=no_ui, say=say)
    if window is None:
        live.stream_with_view(session, seconds, title)
        return
    say(
        "earmark: dashboard window open; Ctrl-C stops the session "
        "(closing the window does not: `earmark dashboard` reopens it)"
    )
    session.run(seconds)


def _frame_flag(flag: dict) -> dict:
    """A flag as the dashboard needs it: its occurrences as spans only (the latest
    ``_JSON_OCCURRENCES``) and their count, so a long session's flags fit the frame."""
    occ = flag.get("occurrences")
    if not isinstance(occ, list):
        return flag
    latest = occ[-_JSON_OCCURRENCES:]
    spans = [{"start_s": o.get("start_s"), "end_s": o.get("end_s")} for o in latest]
    return {**flag, "occurrences": spans, "occurrence_count": len(occ)}
