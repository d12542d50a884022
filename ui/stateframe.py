"""The state frame: what the audio process shows the dashboard, in shared memory.

One writer (the session's dashboard service, in the audio process) and any
number of readers (dashboard processes) share one ``multiprocessing.shared_memory``
segment laid out as:

``header``
    magic, layout version, the sequence counter, the payload checksum, the JSON
    area's version, length and checksum, the layout's sizes, then float64 values
    named by :data:`HEADER_FIELDS`
    (writer pid and heartbeat time, rate, block, latency, xruns, A/B, match
    offsets, monitor flags ...).
``paths``
    ``max_paths`` fixed-size records (``Layout.path_dtype``): float64 values
    named by :data:`PATH_FIELDS` (every reading the screen shows, NaN for
    None), the 1/3-octave spectra long and short, a ring of the last
    ``history_points`` rows of the 10 Hz curves (momentary, short-term, PSR,
    true peak over 3 s; row r in slot r % history_points, so the writer adds
    only new rows) and a goniometer point cloud (L, R pairs).
``json``
    UTF-8 JSON of what is not numeric (path names, chains, flags, markers,
    status lines, MIDI status, profile targets), rewritten only when it changes.

The sequence-counter protocol (a seqlock, as in DESIGN.md): the writer makes
the counter odd, writes, and makes it even again; a reader copies the frame
and keeps the copy only if the counter was even and unchanged across the
copy, else it retries. A reader never blocks the writer, which in turn never
waits for anyone. Both sides are plain numpy copies over the mapped buffer.

The counter alone is not enough everywhere: Python offers no memory fences,
and only x86-64 keeps stores and loads in program order. On arm64 (Apple
silicon) a reader may see the even counter before the writer's last stores,
or load the payload out of order around its two reads of the counter. So the
writer also seals each update with a CRC-32 of everything it wrote (the
header after the checksum word, and the records of the paths in use; the JSON
area has its own CRC, computed when it changes, and that CRC sits in the
sealed header), and a reader keeps a copy only when the checksums of what it
copied match. The counter stays the cheap first test (a reader does not copy
while it is odd); the checksum is what makes a copy whole on any CPU. The CRC
runs in zlib, which releases the GIL for buffers this size (a few hundred
microseconds a tick for eight paths).

A reader calls a frame *stale* when the counter has not moved for longer than
``stale_after_s`` (0.5 s), when the writer's heartbeat time is older than that,
when the writer's process is gone, or when the writer closed the frame; the
dashboard then says so instead of showing old values as live.

Commands go the other way on a separate channel (STYLE.md item 12: real-time
state and commands never share a queue): JSON datagrams on a Unix socket the
session binds (mode 0600, inside a 0700 folder, so only the same user on the
same machine can send). :class:`CommandInbox` is the session side,
:class:`CommandSender` the dashboard side.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import sys
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from multiprocessing import shared_memory
from pathlib import Path
from typing import Any

import numpy as np

from earmark.engine import alive
from earmark.errors import EarmarkError

__all__ = [
    "HEADER_FIELDS",
    "HISTORY_CURVES",
    "LAYOUT_VERSION",
    "PATH_FIELDS",
    "CommandInbox",
    "CommandSender",
    "Frame",
    "Layout",
    "PathFrame",
    "StateFrameError",
    "StateFrameReader",
    "StateFrameWriter",
]

MAGIC = int.from_bytes(b"EARMARK\x00", "little")
LAYOUT_VERSION = 5  # 4: payload and JSON checksums in the header; 5: platform and codec monitors
STALE_AFTER_S = 0.5

HEADER_FIELDS: tuple[str, ...] = (
    "writer_pid",
    "wall_time_s",  # time.time() of the last write: the writer's heartbeat
    "closed",  # 1 once the writer has closed the frame (session ended)
    "sample_rate",
    "block_size",
    "latency_ms",  # the stream's input + output latency
    "xruns",
    "callbacks",
    "callback_p99_us",
    "callback_max_us",
    "position_s",
    "audible",  # 0 = A, 1 = B
    "a",
    "b",
    "loudness_match",
    "match_a_db",
    "match_b_db",
    "dim",
    "mono",
    "mute",
    "trim_db",
    "solo",  # 0 none, 1 L, 2 R, 3 M, 4 S
    "n_paths",
    "dropped_commands",
    "tick_cost_us",  # the writer's own cost per tick (median of the last second)
    "chain_latency_ms",  # what the aligned paths add to the stream's latency
    "platform_monitor",  # 1 while A and B play as a platform would (its name: JSON area)
    # The codec monitor (earmark.live.codec_monitor; -1 / NaN without one): what is heard
    # (engine.abi.CODEC_*), the decoded and the clean true peaks (dBTP) and overs since
    # the last reset, its whole delay, blocks heard clean instead, whether its host runs.
    "codec_mode",
    "codec_true_peak_dbtp",
    "codec_overs",
    "codec_clean_true_peak_dbtp",
    "codec_clean_overs",
    "codec_delay_ms",
    "codec_fallbacks",
    "codec_alive",
)
SOLO_CODES = {None: 0, "L": 1, "R": 2, "M": 3, "S": 4}

PATH_FIELDS: tuple[str, ...] = (
    "duration_s",
    "momentary_lufs",
    "short_term_lufs",
    "integrated_lufs",
    "loudness_range_lu",
    "max_momentary_lufs",
    "max_short_term_lufs",
    "true_peak_dbtp",
    "recent_true_peak_dbtp",
    "true_peak_hold_dbtp",  # highest true peak since the last hold reset
    "overs",  # excursions above the true-peak ceiling since the last hold reset
    "true_peak_left_dbtp",
    "true_peak_right_dbtp",
    "sample_peak_dbfs",
    "rms_dbfs",
    "crest_db",
    "plr_db",
    "psr_db",
    "psr_min_db",
    "psr_median_db",
    "dr_db",
    "spectral_tilt_db_per_oct",
    "sharpness_acum",  # DIN 45692, programme (long-term spectrum)
    "sharpness_short_acum",  # the last ~3 s
    "correlation",
    "correlation_min",
    "correlation_programme",
    "side_to_mid_db",
    "latency_samples",
    "delay_samples",
    "muted_blocks",
    "non_finite_samples",
    "n_bands",
    "history_rows",  # 10 Hz rows written since the meters started (row r in slot r % points)
    "history_row_s",  # seconds per row; row r ends at (r + 1) * history_row_s
    "history_end_s",  # end time of the newest row (the path's programme time)
    "gonio_points",  # valid (L, R) pairs in the goniometer cloud, 0 if none
    # The platform monitor, for A and B (NaN for other paths, or when it is off): the
    # platform's playback gain, the loudness its listener gets, the loudness penalty.
    "platform_gain_db",
    "platform_lufs",
    "platform_penalty_lu",
)
HISTORY_CURVES: tuple[str, ...] = (
    "momentary_lufs",
    "short_term_lufs",
    "psr_db",
    "true_peak_3s_dbtp",
)
HISTORY_HZ = 10.0

_H = {name: i for i, name in enumerate(HEADER_FIELDS)}
_P = {name: i for i, name in enumerate(PATH_FIELDS)}


class StateFrameError(EarmarkError, RuntimeError):
    """The frame cannot be attached or written (missing, foreign, wrong version, too small)."""


@dataclass(frozen=True)
class Layout:
    """The sizes that fix the frame's layout; a reader takes them from the header."""

    max_paths: int = 8
    history_points: int = 6000  # 10 minutes at 10 Hz
    n_bands: int = 31  # 1/3 octaves 20 Hz - 20 kHz
    gonio_points: int = 2048
    json_capacity: int = 1 << 18

    def header_dtype(self) -> np.dtype:
        return np.dtype(
            [
                ("magic", "<u8"),
                ("version", "<u8"),
                ("seq", "<u8"),
                ("checksum", "<u8"),  # CRC-32 of the sealed bytes (Layout.sealed_offset on)
                ("json_version", "<u8"),
                ("json_len", "<u8"),
                ("json_checksum", "<u8"),  # CRC-32 of the JSON area's json_len bytes
                ("sizes", "<u8", (5,)),
                ("v", "<f8", (len(HEADER_FIELDS),)),
            ]
        )

    def path_dtype(self) -> np.dtype:
        nb = self.n_bands
        return np.dtype(
            [
                ("v", "<f8", (len(PATH_FIELDS),)),
                ("band_hz", "<f4", (nb,)),
                ("spectrum_long_db", "<f4", (nb,)),
                ("spectrum_short_db", "<f4", (nb,)),
                ("history", "<f4", (len(HISTORY_CURVES), self.history_points)),
                ("gonio", "<f4", (self.gonio_points, 2)),
            ]
        )

    @property
    def sealed_offset(self) -> int:
        """Where the bytes the payload checksum covers begin (just after the checksum)."""
        return int(self.header_dtype().fields["json_version"][1])

    @property
    def paths_offset(self) -> int:
        return _align(self.header_dtype().itemsize)

    @property
    def json_offset(self) -> int:
        return _align(self.paths_offset + self.max_paths * self.path_dtype().itemsize)

    @property
    def size(self) -> int:
        return self.json_offset + self.json_capacity

    def sizes(self) -> tuple[int, ...]:
        return (
            self.max_paths,
            self.history_points,
            self.n_bands,
            self.gonio_points,
            self.json_capacity,
        )


def _align(n: int, to: int = 64) -> int:
    return (n + to - 1) // to * to


class _Views:
    """numpy views of one frame laid out in ``buf`` (the segment or a private copy)."""

    def __init__(self, layout: Layout, buf: Any) -> None:
        self.layout = layout
        hd = layout.header_dtype()
        self.head = np.ndarray((), dtype=hd, buffer=buf, offset=0)
        self.seq = np.ndarray((1,), dtype="<u8", buffer=buf, offset=hd.fields["seq"][1])
        self.hv = self.head["v"]
        self.paths = np.ndarray(
            (layout.max_paths,), dtype=layout.path_dtype(), buffer=buf, offset=layout.paths_offset
        )
        self.numeric = np.ndarray((layout.json_offset,), dtype=np.uint8, buffer=buf, offset=0)
        self._sealed = layout.sealed_offset
        self._path_size = layout.path_dtype().itemsize
        self.json = np.ndarray(
            (layout.json_capacity,), dtype=np.uint8, buffer=buf, offset=layout.json_offset
        )

    def n_paths(self) -> int:
        """The paths in use, as this frame's header says (clamped to the layout)."""
        n = float(self.hv[_H["n_paths"]])
        return min(max(int(n), 0), self.layout.max_paths) if n == n else 0

    def end_of_paths(self, n_paths: int) -> int:
        """Where the records of the first ``n_paths`` paths end."""
        return self.layout.paths_offset + n_paths * self._path_size

    def payload_checksum(self) -> int:
        """CRC-32 of the sealed bytes: the header after its checksum word, and the
        records of the paths in use."""
        return zlib.crc32(self.numeric[self._sealed : self.end_of_paths(self.n_paths())])

    def json_checksum(self) -> int:
        """CRC-32 of the JSON area's ``json_len`` bytes."""
        n = min(int(self.head["json_len"]), self.layout.json_capacity)
        return zlib.crc32(self.json[:n])


# -- writer ---------------------------------------------------------------------------------


class StateFrameWriter:
    """Creates the shared frame and writes it under the sequence counter.

    Write inside :meth:`writing`::

        with writer.writing():
            writer.header["xruns"] = 3
            writer.path_values(0)[...] = values        # or the named helpers below
            writer.set_json(b"{...}")                  # only when it changed

    Everything is a numpy copy into the mapped buffer; nothing here loops per
    sample or allocates per path.
    """

    def __init__(self, layout: Layout | None = None, name: str | None = None) -> None:
        self.layout = layout or Layout()
        self._shm = shared_memory.SharedMemory(name=name, create=True, size=self.layout.size)
        self._views = _Views(self.layout, self._shm.buf)
        self._views.numeric[:] = 0
        v = self._views
        v.hv[:] = np.nan
        v.paths["v"][:] = np.nan
        v.head["magic"] = MAGIC
        v.head["version"] = LAYOUT_VERSION
        v.head["sizes"] = self.layout.sizes()
        v.hv[_H["writer_pid"]] = os.getpid()
        v.hv[_H["closed"]] = 0.0
        v.hv[_H["n_paths"]] = 0.0
        v.head["checksum"] = v.payload_checksum()  # an empty frame is a whole one
        self.header = _Named(v.hv, _H)
        self._json_version = 0
        self._depth = 0
        self._closed = False

    @property
    def name(self) -> str:
        """The shared-memory name a reader attaches to."""
        return self._shm.name

    @property
    def paths(self) -> np.ndarray:
        """The per-path records (structured array, one row per path)."""
        return self._views.paths

    def path_values(self, index: int) -> np.ndarray:
        """The float64 values of path ``index`` (see :data:`PATH_FIELDS`)."""
        return self._views.paths["v"][index]

    @property
    def seq(self) -> int:
        return int(self._views.seq[0])

    def begin(self) -> None:
        """Make the counter odd: readers now retry until :meth:`end`."""
        if self._depth == 0:
            self._views.seq[0] += 1
        self._depth += 1

    def end(self) -> None:
        """Stamp the heartbeat, seal the payload with its checksum and make the counter
        even: the frame is whole again."""
        self._depth -= 1
        if self._depth == 0:
            v = self._views
            v.hv[_H["wall_time_s"]] = time.time()
            v.head["checksum"] = v.payload_checksum()
            v.seq[0] += 1

    @contextlib.contextmanager
    def writing(self) -> Iterator[StateFrameWriter]:
        """Bracket one update with :meth:`begin` and :meth:`end`."""
        self.begin()
        try:
            yield self
        finally:
            self.end()

    def set_json(self, data: bytes) -> None:
        """Replace the JSON area (call inside :meth:`writing`); readers decode it once."""
        if len(data) > self.layout.json_capacity:
            raise StateFrameError(
                f"state frame JSON is {len(data)} bytes, more than its "
                f"{self.layout.json_capacity}-byte area"
            )
        self._views.json[: len(data)] = np.frombuffer(data, dtype=np.uint8)
        self._json_version += 1
        self._views.head["json_len"] = len(data)
        self._views.head["json_checksum"] = zlib.crc32(data)
        self._views.head["json_version"] = self._json_version

    def heartbeat(self) -> None:
        """An update with nothing new: tells readers the writer is alive."""
        with self.writing():
            pass

    def close(self, unlink: bool = True) -> None:
        """Mark the frame closed (readers show "session ended"), unmap it and remove it."""
        if self._closed:
            return
        self._closed = True
        with self.writing():
            self._views.hv[_H["closed"]] = 1.0
        del self.header
        self._views = None  # type: ignore[assignment]  # drop the views before unmapping
        self._shm.close()
        if unlink:
            with contextlib.suppress(FileNotFoundError):
                self._shm.unlink()


class _Named:
    """``obj["name"] = value`` over a float64 vector with named slots (None -> NaN)."""

    __slots__ = ("_index", "_v")

    def __init__(self, v: np.ndarray, index: dict[str, int]) -> None:
        self._v = v
        self._index = index

    def __setitem__(self, name: str, value: float | None) -> None:
        self._v[self._index[name]] = math.nan if value is None else value

    def __getitem__(self, name: str) -> float:
        return float(self._v[self._index[name]])


def path_index(name: str) -> int:
    """Position of ``name`` in a path's float64 values."""
    return _P[name]


def header_index(name: str) -> int:
    """Position of ``name`` in the header's float64 values."""
    return _H[name]


# -- reader ---------------------------------------------------------------------------------


@dataclass
class PathFrame:
    """One path as the reader copied it. Arrays are views into the reader's copy,
    valid until its next :meth:`StateFrameReader.read`."""

    index: int
    values: dict[str, float | None]
    band_hz: np.ndarray
    spectrum_long_db: np.ndarray  # NaN where a band has no energy
    spectrum_short_db: np.ndarray
    history_t_s: np.ndarray
    history: dict[str, np.ndarray]  # HISTORY_CURVES -> curve (NaN where undefined)
    gonio: np.ndarray  # (points, 2): L, R

    def __getitem__(self, name: str) -> float | None:
        return self.values[name]


@dataclass
class Frame:
    """A consistent copy of the state frame, plus the reader's verdict on its freshness."""

    seq: int
    header: dict[str, float | None]
    paths: list[PathFrame]
    info: dict[str, Any]  # the decoded JSON area
    json_version: int
    stale: bool = False
    stale_reason: str = ""
    age_s: float = 0.0  # time since the writer's heartbeat
    retries: int = 0  # copies thrown away because the writer was writing
    extra: dict[str, Any] = field(default_factory=dict)

    def h(self, name: str) -> float | None:
        """A header value (None where the writer had none)."""
        return self.header[name]


class StateFrameReader:
    """Attaches to a writer's frame by name and takes consistent copies of it.

    Args:
        name: the shared-memory name (``StateFrameWriter.name``).
        stale_after_s: how long without a new frame or heartbeat counts as stale.

    Raises:
        StateFrameError: no such frame, or not an earmark frame of this version.
    """

    def __init__(self, name: str, stale_after_s: float = STALE_AFTER_S) -> None:
        self.name = name
        self.stale_after_s = float(stale_after_s)
        try:
            self._shm = _attach(name)
        except FileNotFoundError:
            raise StateFrameError(
                f"no state frame named {name!r} (is the session running?)"
            ) from None
        head_probe = np.ndarray((), dtype=Layout().header_dtype(), buffer=self._shm.buf, offset=0)
        if int(head_probe["magic"]) != MAGIC:
            self._shm.close()
            raise StateFrameError(f"shared memory {name!r} is not an earmark state frame")
        version = int(head_probe["version"])
        if version != LAYOUT_VERSION:
            self._shm.close()
            raise StateFrameError(
                f"state frame {name!r} has layout version {version}; this earmark reads "
                f"version {LAYOUT_VERSION} (run the same earmark for session and dashboard)"
            )
        self.layout = Layout(*(int(s) for s in head_probe["sizes"]))
        del head_probe
        self._live = _Views(self.layout, self._shm.buf)
        # Two private copies: attempts go into the back one, a whole copy becomes the
        # front. The last good frame's arrays stay intact while later attempts fail.
        self._bufs = [np.zeros(self.layout.size, dtype=np.uint8) for _ in range(2)]
        self._views = [_Views(self.layout, buf) for buf in self._bufs]
        self._front = 0
        self._json_version = -1
        self._info: dict[str, Any] = {}
        self._raw_seq = -1
        self._last_change = time.monotonic()
        self._last: Frame | None = None
        self.retries = 0  # total copies thrown away
        self.torn = 0  # of which: counter unchanged, but the checksums did not match
        self.reads = 0

    @property
    def _copy(self) -> _Views:
        return self._views[self._front]

    def _consistent_copy(self, tries: int) -> tuple[int, int]:
        """Copy the frame into the back buffer; (seq, retries), seq -1 if none was whole."""
        live, back = self._live, self._views[1 - self._front]
        for attempt in range(tries):
            s1 = int(live.seq[0])
            self._watch(s1)
            if s1 & 1:
                if attempt > 8:
                    time.sleep(0.0002)
                continue
            n_paths = live.n_paths()
            end = live.end_of_paths(n_paths)
            np.copyto(back.numeric[:end], live.numeric[:end])
            jv = int(back.head["json_version"])
            json_new = jv != self._json_version
            if json_new:
                n = min(int(back.head["json_len"]), self.layout.json_capacity)
                np.copyto(back.json[:n], live.json[:n])
            if int(live.seq[0]) != s1:
                continue
            # Whole only if what was copied is what the writer sealed (see the module
            # doc: the counter alone is not enough on CPUs that reorder memory accesses).
            if (
                back.n_paths() <= n_paths
                and int(back.head["checksum"]) == back.payload_checksum()
                and (not json_new or int(back.head["json_checksum"]) == back.json_checksum())
            ):
                self._front = 1 - self._front
                return s1, attempt
            self.torn += 1
            if attempt > 8:
                time.sleep(0.0002)
        return -1, tries

    def peek_seq(self) -> int:
        """The writer's counter now, without copying anything (odd while it writes)."""
        return int(self._live.seq[0])

    def _watch(self, raw_seq: int) -> None:
        """Note when the counter last moved (odd or even): the writer is alive while it moves."""
        if raw_seq != self._raw_seq:
            self._raw_seq = raw_seq
            self._last_change = time.monotonic()

    def read(self, tries: int = 200) -> Frame | None:
        """A consistent copy of the latest frame, judged fresh or stale.

        Arrays in the result are views valid until the next read. If no whole copy
        can be taken (the writer is mid-update every time), the previous frame comes
        back, judged again; None only if no whole frame was ever seen.
        """
        seq, retries = self._consistent_copy(tries)
        self.retries += retries
        now = time.monotonic()
        if seq < 0:
            if self._last is None:
                return None
            stale, reason = self._verdict(self._last, now)
            return replace(self._last, stale=stale, stale_reason=reason, retries=retries)
        self.reads += 1
        copy = self._copy
        hv = copy.hv
        header = {name: _opt(hv[i]) for i, name in enumerate(HEADER_FIELDS)}
        jv = int(copy.head["json_version"])
        if jv != self._json_version:
            n = min(int(copy.head["json_len"]), self.layout.json_capacity)
            try:
                self._info = json.loads(copy.json[:n].tobytes()) if n else {}
            except ValueError:
                self._info = {}
            self._json_version = jv
        n_paths = int(header["n_paths"] or 0)
        paths = [self._path(i) for i in range(min(n_paths, self.layout.max_paths))]
        frame = Frame(seq, header, paths, self._info, jv, retries=retries)
        wall = header["wall_time_s"]
        frame.age_s = time.time() - wall if wall is not None else math.inf
        frame.stale, frame.stale_reason = self._verdict(frame, now)
        self._last = frame
        return frame

    def _verdict(self, frame: Frame, now: float) -> tuple[bool, str]:
        if frame.header["closed"]:
            return True, "the session has ended"
        pid = frame.header["writer_pid"]
        if pid is not None and not alive(int(pid)):
            return True, "the session's process is gone"
        quiet = now - self._last_change
        if quiet > self.stale_after_s:
            if self._raw_seq & 1:
                return True, "the session stopped in the middle of an update"
            return True, f"no update for {quiet:.1f} s"
        if frame.age_s > self.stale_after_s:
            return True, f"last update {frame.age_s:.1f} s ago"
        return False, ""

    def _path(self, i: int) -> PathFrame:
        rec = self._copy.paths[i]
        v = rec["v"]
        values = {name: _opt(v[k]) for k, name in enumerate(PATH_FIELDS)}
        nb = int(values["n_bands"] or 0)
        size = self.layout.history_points
        rows = int(values["history_rows"] or 0)
        kept = min(rows, size)
        slots = np.arange(rows - kept, rows) % size
        hist = rec["history"][:, slots]
        t = (np.arange(rows - kept, rows) + 1) * (values["history_row_s"] or 1.0 / HISTORY_HZ)
        gp = int(values["gonio_points"] or 0)
        return PathFrame(
            index=i,
            values=values,
            band_hz=rec["band_hz"][:nb],
            spectrum_long_db=rec["spectrum_long_db"][:nb],
            spectrum_short_db=rec["spectrum_short_db"][:nb],
            history_t_s=t,
            history={name: hist[k] for k, name in enumerate(HISTORY_CURVES)},
            gonio=rec["gonio"][:gp],
        )

    def close(self) -> None:
        """Unmap the frame (the writer owns and removes it)."""
        self._live = None  # type: ignore[assignment]
        self._views = []
        self._shm.close()


def _opt(x: float) -> float | None:
    x = float(x)
    return None if math.isnan(x) else x


def _attach(name: str) -> shared_memory.SharedMemory:
    """Attach without handing the segment to this process's resource tracker.

    Before Python 3.13, attaching registers the segment with the attaching
    process's tracker, which then *removes* it when that process exits: a
    dashboard closing would delete the session's frame under the next one.
    """
    if sys.version_info >= (3, 13):
        return shared_memory.SharedMemory(name=name, track=False)  # type: ignore[call-arg]
    from multiprocessing import resource_tracker

    register = resource_tracker.register

    def skip_shared_memory(rname: str, rtype: str) -> None:
        if rtype != "shared_memory":
            register(rname, rtype)

    resource_tracker.register = skip_shared_memory  # type: ignore[assignment]
    try:
        return shared_memory.SharedMemory(name=name)
    finally:
        resource_tracker.register = register  # type: ignore[assignment]


# -- commands -----------------------------------------------------------------------------

_MAX_DATAGRAM = 8192


class CommandInbox:
    """The session's end of the command channel: a Unix datagram socket, drained without waiting.

    Args:
        path: where to bind; its folder should be private (0700). The socket
            itself is made 0600, so only this user can send.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(self.path))
        os.chmod(self.path, 0o600)
        self._sock.setblocking(False)
        self.rejected = 0

    def drain(self, limit: int = 64) -> list[tuple]:
        """The commands waiting (at most ``limit``), oldest first; malformed ones are counted."""
        out: list[tuple] = []
        for _ in range(limit):
            try:
                data = self._sock.recv(_MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break
            try:
                command = json.loads(data)
            except ValueError:
                self.rejected += 1
                continue
            if isinstance(command, list) and command and isinstance(command[0], str):
                out.append(tuple(command))
            else:
                self.rejected += 1
        return out

    def close(self) -> None:
        """Close and remove the socket."""
        self._sock.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


class CommandSender:
    """The dashboard's end: sends one command per datagram, never blocks."""

    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        self.path = None if path is None else str(path)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.setblocking(False)
        self.sent = 0
        self.failed = 0
        self.last_error = ""

    def send(self, *command: Any) -> bool:
        """Send ``command`` (JSON-serialisable); False if there is no session to take it."""
        if self.path is None:
            self.failed += 1
            self.last_error = "no command channel"
            return False
        try:
            self._sock.sendto(json.dumps(list(command)).encode(), self.path)
        except OSError as exc:
            self.failed += 1
            self.last_error = f"{type(exc).__name__}: {exc.strerror or exc}"
            return False
        self.sent += 1
        return True

    def close(self) -> None:
        self._sock.close()


def nan_array(values: Sequence[float | None]) -> np.ndarray:
    """float64 array of ``values`` with None as NaN."""
    return np.array([math.nan if v is None else v for v in values], dtype=np.float64)
