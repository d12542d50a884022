"""The live engine: sources -> chains -> latency alignment -> meters -> A/B mix -> monitor.

One concept: the Engine object the callbacks run (paths, the command queue, state and
status); its per-sample work is engine/block.py's and its plan engine/plan.py's.

Every path (the dry signal, each chain, each reference master) is processed and
metered on every block, so A and B readings sit side by side while only one is
audible. Offline and with the null sink the callback body meters each block
itself; while a real-time driver streams it only appends each path's output to
a feed that a :class:`MeterThread` meters 10 ms at a time.

``Engine.process`` is the body of the audio callback. The block itself is
``engine.block``'s, in machine code, run from the engine's plan (``plan``,
laid out in ``engine.abi``); ``process`` adds what only Python can do: the
command queue, chains and sources that are Python objects, inline meters. It
follows the rules written in python-sounddevice's ``Stream`` docstring and
DESIGN.md:

- no allocation beyond what pedalboard's ``process`` does for its output, no
  locks, no logging, no Python loops over samples (``engine.block``, the
  numba kernels of ``engine.rt`` and ``meters`` do the per-sample work, with
  the GIL released);
- commands from the dashboard, the MIDI surface or the CLI arrive through a
  ``collections.deque`` (append/popleft are atomic) and apply at the next block
  boundary;
- the output buffer is always filled, silence when anything fails;
- every array a chain returns is checked (a float32 ndarray shaped (frames, 2),
  C-contiguous) before any kernel reads it, and every path's block is guarded
  (``rt.guard_path``: NaN/Inf or beyond ``rt.ABSURD_DBFS`` becomes silence), so
  the meters never read garbage; the last stage, ``rt.guard_output``, mutes
  the output at a non-finite sample or one above ``OUTPUT_CEILING_DBFS`` and
  the engine says so in :meth:`Engine.poll_status` and its state;
- xruns (PortAudio status flags) are counted, and each callback's duration is
  kept in a preallocated ring for the benchmarks.

When every chain runs in an isolated host, a driver hands PortAudio the same
block from the same plan (``engine.native``): it runs without the GIL, from the
same arrays, so nothing here changes for the rest of earmark.

Anything that needs allocation or may block (building a chain, decoding and
resampling a file, measuring a plugin's latency) happens off the audio thread,
and the result is published with one reference swap.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from earmark.meters import MeterBank, Readings

from . import abi, rt
from . import block as stage  # (``block`` is the driver's block size below)
from . import plan as plans  # (``plan`` is the engine's own below)
from .abi import (
    E_A,
    E_B,
    E_BLOCK,
    E_CALLBACKS,
    E_COUNT,
    E_XRUNS,
    FAULT_RAISED,
    FAULT_WRONG_ARRAY,
    P_COUNT,
    P_DELAY,
    P_FAULT,
    P_NONFINITE,
    P_RING_ADDR,
    P_RING_POS,
    P_RING_ROWS,
    TIMING_RING,
    XRUN_RING,
)
from .rt import MAX_BLOCK_FRAMES, MIN_BLOCK_FRAMES, OUTPUT_CEILING_DBFS, check_block_frames
from .sources import Player, Source, Transport

__all__ = [
    "MAX_BLOCK_FRAMES",
    "MIN_BLOCK_FRAMES",
    "OUTPUT_CEILING_DBFS",
    "Engine",
    "EngineState",
    "MeterThread",
    "Path",
    "PathState",
    "Processor",
    "check_block_frames",
]

# How often (in frames) the loudness match follows the meters: 100 ms at 48 kHz.
_MATCH_INTERVAL_S = 0.1
# Callbacks behind the state's p99 and max: about 11 s at 64 frames / 48 kHz.
_STATS_CALLBACKS = 1 << 13
# The last A and B output frames kept for the dashboard's goniometer (170 ms at 48 kHz).
TAP_FRAMES = 1 << 13
# A flood of commands (a stuck controller, a runaway script) must neither grow
# memory nor stretch a callback: pending commands are bounded, and each block
# applies at most a few of them.
_MAX_PENDING_COMMANDS = 1024
_COMMANDS_PER_BLOCK = 32
# The meter feed: how much of each path's output waits for the meter thread (rounded
# up to a power of two), and how often that thread wakes.
_METER_FEED_S = 1.0
_METER_INTERVAL_S = 0.01
_DIM_DB = -20.0
_MAX_MONITOR_GAIN_DB = 60.0
# The most a "gains" command may raise A or B (inference: a platform turns a quiet master
# up by well under this; the output guard mutes far louder anyway).
_MAX_FIXED_GAIN_DB = 24.0
# A fault that persists (a broken chain on every block, a path too hot for the output
# ceiling) gives one status line per this long, not one per poll.
_STATUS_REPEAT_S = 5.0
# Monitor matrices (out = M @ [L, R]).
_MONITOR_MATRIX = {
    None: (1.0, 0.0, 0.0, 1.0),
    "L": (1.0, 0.0, 1.0, 0.0),
    "R": (0.0, 1.0, 0.0, 1.0),
    "M": (0.5, 0.5, 0.5, 0.5),
    "S": (0.5, -0.5, 0.5, -0.5),
}


class Processor(Protocol):
    """What a path needs of a chain: block in, block out, and its latency.

    ``process`` gets a float32 (frames, 2) block and returns a C-contiguous float32
    (frames, 2) array. Anything else (another shape or dtype, not an array, an
    exception) mutes the path for that block and is reported.
    """

    latency_samples: int

    def process(self, block: np.ndarray) -> np.ndarray: ...


@dataclass
class Path:
    """One metered signal path: a source, optionally through a chain."""

    name: str
    source: Source
    chain: Processor | None = None
    # Filled in by the engine.
    bank: MeterBank | None = None
    # The delay line's position and length, the alignment delay and the muted-block
    # count, shared with the native callback (P_* fields).
    _st: np.ndarray = field(default_factory=lambda: np.zeros(P_COUNT, np.int64), repr=False)
    _buf: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]
    _out: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]
    _ring: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]
    # Delay lines replaced while streaming stay alive: a native callback may still
    # be reading the old one for the rest of its block.
    _old_rings: list = field(default_factory=list, repr=False)
    _feed: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]
    _fed: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]
    _metered: int = 0
    _reset_at: int | None = None
    # The latest fault's evidence for its status line (the exception, or the wrong
    # array itself: a reference, nothing is built in the callback).
    _fault_evidence: object = field(default=None, repr=False)
    _reported_blocks: int = 0
    _reported_at: float = -math.inf

    delay_samples = rt.Slot("_st", P_DELAY)
    nonfinite_blocks = rt.Slot("_st", P_NONFINITE)
    _ring_pos = rt.Slot("_st", P_RING_POS)

    @property
    def latency_samples(self) -> int:
        return int(self.chain.latency_samples) if self.chain is not None else 0

    @property
    def muted_blocks(self) -> int:
        """Blocks this path played as silence because its chain failed: those the
        engine caught (a raise, a wrong array, NaN/Inf or absurd levels) plus those a
        Chain silenced itself (NaN/Inf or a raising plugin)."""
        chain = self.chain
        own = getattr(chain, "nonfinite_blocks", 0) + getattr(chain, "error_blocks", 0)
        return self.nonfinite_blocks + own


@dataclass(frozen=True)
class PathState:
    """A path as the screen shows it."""

    name: str
    readings: Readings
    latency_samples: int
    delay_samples: int
    nonfinite_blocks: int


@dataclass(frozen=True)
class EngineState:
    """A non-real-time snapshot of the engine, for the terminal view, dashboard and CLI."""

    sample_rate: int
    paths: tuple[PathState, ...]
    a: int
    b: int
    audible: str  # "A" or "B"
    loudness_match: bool
    match_a_db: float  # gain applied to A by the loudness match (<= 0)
    match_b_db: float
    monitor: dict
    callbacks: int
    xruns: int
    dropped_commands: int
    meter_skipped_frames: int  # frames the meter thread could not meter (it fell behind)
    position_s: float
    callback_p99_us: float | None
    callback_max_us: float | None
    # The output guard (rt.guard_output): muted now, how often it muted, and why it
    # did the latest time (None before it ever did).
    output_muted: bool = False
    output_trips: int = 0
    output_status: str | None = None


class Engine:
    """Parallel metered paths with a click-free, loudness-matched A/B of two of them.

    Args:
        sample_rate: the stream's rate.
        paths: the signal paths; A and B are chosen among them.
        a, b: indices of the paths compared (A audible at start).
        max_block: the largest block the driver will deliver (MIN_BLOCK_FRAMES to
            MAX_BLOCK_FRAMES).
        block: the driver's block size, when known (MIN_BLOCK_FRAMES to ``max_block``);
            blocks of any size up to ``max_block`` are still processed safely.
        loudness_match: attenuate the louder of A and B to the quieter.
        fade_ms: A/B crossfade length.
        tap_seconds: how much of A's and B's output to keep for snapshot clips (at
            least 8192 frames, for the goniometer).
    """

    def __init__(
        self,
        sample_rate: int,
        paths: Sequence[Path],
        *,
        a: int = 0,
        b: int = 1,
        max_block: int = 4096,
        loudness_match: bool = True,
        fade_ms: float = 30.0,
        transport: Transport | None = None,
        tap_seconds: float = 0.0,
        block: int | None = None,
    ) -> None:
        if not paths:
            raise ValueError("the engine needs at least one path")
        self.sample_rate = int(sample_rate)
        self.max_block = check_block_frames(max_block, "the engine's largest block (max_block)")
        if block is not None:
            block = check_block_frames(block)
            if block > self.max_block:
                raise ValueError(
                    f"block size must be {MIN_BLOCK_FRAMES}-{self.max_block} frames "
                    f"(the engine's max_block), got {block}"
                )
        self.paths = list(paths)
        self.transport = transport or Transport(
            length=max(
                (p.source.frames for p in self.paths if isinstance(p.source, Player)), default=0
            )
        )
        feed = 1 << max(1, math.ceil(math.log2(max(_METER_FEED_S * sample_rate, 4 * max_block))))
        for i, p in enumerate(self.paths):
            # Staggered spectrum frames: one path's FFT per block at most.
            p.bank = MeterBank(2, self.sample_rate, spectrum_phase=i / len(self.paths))
            p._buf = np.zeros((self.max_block, 2), dtype=np.float32)
            p._out = np.zeros((self.max_block, 2), dtype=np.float32)
            p._feed = np.zeros((feed, 2), dtype=np.float32)
            p._fed = np.zeros(1, dtype=np.int64)
        # Callbacks, xruns, the latest block's size and the compared paths, shared with
        # the native callback (E_* fields).
        self.counters = np.zeros(E_COUNT, dtype=np.int64)
        self.a = a if a < len(self.paths) else 0
        self.b = b if b < len(self.paths) else self.a
        self.loudness_match = loudness_match
        # A and B's gains in dB set from outside instead of the loudness match (the
        # platform monitor, earmark.live.platform_monitor); None: the match decides.
        self.fixed_gains_db: tuple[float, float] | None = None
        self.monitor: dict = {
            "trim_db": 0.0,
            "dim": False,
            "mute": False,
            "solo": None,
            "mono": False,
        }
        self._mx = rt.new_mix_state(self.sample_rate, fade_ms=fade_ms)
        # The output guard's state (rt.O_* fields), shared with the native callback.
        self._og = rt.new_guard_state(self.sample_rate)
        self._reported_trips = 0
        self._output_reported_at = -math.inf
        stage.warm_up()  # no stage loads its code in the first callback
        self._commands: deque[tuple] = deque()
        self._match_every = max(1, int(_MATCH_INTERVAL_S * self.sample_rate))
        self._since_match = 0
        # Which callbacks were flagged (the latest XRUN_RING): with ``timings_ns`` this
        # tells an xrun that followed an overrunning callback from one the server or
        # the machine caused (bench/realtime.py).
        self.xrun_callbacks = np.zeros(XRUN_RING, dtype=np.int64)
        self.dropped_commands = 0
        # Meters run in the callback (``meter_inline``) unless a MeterThread runs them
        # from the paths' feeds; frames it had to skip (it fell a whole feed behind).
        self.meter_inline = True
        self.meter_skipped_frames = 0
        # Set by a real-time driver while its stream runs: other threads then time their
        # Python work to the gaps between callbacks (after_callback).
        self.realtime = False
        # Set by a driver while the native callback (engine.native) runs this engine:
        # commands then apply as they are posted.
        self.native = False
        self._block_frames = 64 if block is None else block
        self.timings_ns = np.zeros(TIMING_RING, dtype=np.int64)
        # When each of those callbacks began (perf_counter_ns): bench/realtime.py sets
        # them beside another client's to tell a callback that could not start (the GIL
        # held by another thread) from a cycle the server or the machine missed.
        self.starts_ns = np.zeros(TIMING_RING, dtype=np.int64)
        # The A/B tap: the goniometer's last frames, and the audio of a snapshot's clip.
        self.tap_frames = max(TAP_FRAMES, int(round(tap_seconds * self.sample_rate)))
        self._tap = np.zeros((self.tap_frames, 4), dtype=np.float32)
        self._tap_pos = np.zeros(2, dtype=np.int64)
        self._clock = np.zeros(2, dtype=np.int64)  # the block's timespec
        # The plan: what the audio block (engine.block) reads of the engine and its
        # paths (engine.plan); both callbacks run from it.
        self.plan = plans.new_plan(
            len(self.paths),
            {
                abi.G_COUNTERS: self.counters,
                abi.G_XRUN_RING: self.xrun_callbacks,
                abi.G_TIMINGS: self.timings_ns,
                abi.G_STARTS: self.starts_ns,
                abi.G_MX: self._mx,
                abi.G_GUARD: self._og,
                abi.G_TAP: self._tap,
                abi.G_TAP_POS: self._tap_pos,
                abi.G_TRANSPORT: self.transport.state,
                abi.G_CLOCK: self._clock,
            },
            self.tap_frames,
            self.max_block,
        )
        # Per path: the (source, chain) its row was planned for, and the paths whose
        # source or chain the Python callback runs (path, its source too).
        self._planned: list[tuple[object, object] | None] = [None] * len(self.paths)
        self._python_paths: list[tuple[Path, bool]] = []
        self.replan()
        self.align_latency()

    callbacks = rt.Slot("counters", E_CALLBACKS)
    xruns = rt.Slot("counters", E_XRUNS)
    _block_frames = rt.Slot("counters", E_BLOCK)  # the latest block's size
    a = rt.Slot("counters", E_A)
    b = rt.Slot("counters", E_B)

    # -- control (any thread) ------------------------------------------------------

    def post(self, *command: object) -> bool:
        """Queue a command for the next block boundary (thread-safe, never blocks).

        Returns False (and counts it in ``dropped_commands``) when too many are pending.
        """
        if self.native:
            # The native callback takes no commands from a queue: apply now, to values
            # it reads at its next block boundary (what was queued before goes first).
            self.drain_commands()
            self._apply(command)
            return True
        if len(self._commands) >= _MAX_PENDING_COMMANDS:
            self.dropped_commands += 1
            return False
        self._commands.append(command)
        return True

    def drain_commands(self) -> None:
        """Apply every queued command now (no callback may be running Python meanwhile:
        the native callback runs, or none)."""
        while self._commands:
            try:
                command = self._commands.popleft()
            except IndexError:  # another thread drained it first
                break
            self._apply(command)

    @property
    def chain_latency_samples(self) -> int:
        """What the paths add to the device's latency once aligned: the slowest chain's
        latency (every path is delayed to it). Live input is heard this much later."""
        return max(self._aligned, default=0)

    def align_latency(self) -> None:
        """Delay every path to the slowest chain's latency (plugin-reported or measured)."""
        latencies = [p.latency_samples for p in self.paths]
        self._aligned = tuple(latencies)
        worst = max(latencies)
        for p, lat in zip(self.paths, latencies, strict=True):
            need = worst - lat
            if p._ring is None or p._ring.shape[0] <= need:
                # Allocated here, off the audio thread; the callback sees the new
                # ring with the delay command that follows (the native callback
                # when it reads the address and then the length: rings only grow).
                if p._ring is not None:
                    p._old_rings.append(p._ring)
                p._ring = np.zeros((max(need + 1, 16), 2), dtype=np.float32)
                p._st[P_RING_ADDR] = p._ring.ctypes.data
                p._st[P_RING_ROWS] = p._ring.shape[0]
            self.post("delay", p, need)

    def replan(self) -> bool:
        """Follow paths whose source or chain was replaced since the plan was made
        (each path's row says what the block reads and runs itself); True if one was.

        The Python callback calls it every block; while the native callback runs the
        plan must not change (a driver calls it before it starts one).
        """
        changed = False
        for k, p in enumerate(self.paths):
            planned = self._planned[k]
            if planned is None or planned[0] is not p.source or planned[1] is not p.chain:
                buffers = {abi.R_BUF: p._buf, abi.R_OUT: p._out, abi.R_ST: p._st}
                buffers.update({abi.R_FEED: p._feed, abi.R_FED: p._fed})
                plans.fill_row(self.plan, k, buffers, p.source, p.chain)
                self._planned[k] = (p.source, p.chain)
                changed = True
        if changed:
            python = [plans.runs_in_python(self.plan, k) for k in range(len(self.paths))]
            self._python_paths = [
                (p, source)
                for p, (source, chain) in zip(self.paths, python, strict=True)
                if source or chain
            ]
        return changed

    # -- the audio callback ------------------------------------------------------------

    def process(
        self, indata: np.ndarray | None, outdata: np.ndarray, frames: int, xrun: bool = False
    ) -> None:
        """Run one block: the audio callback body (see the module docstring)."""
        t0 = time.perf_counter_ns()
        for _ in range(_COMMANDS_PER_BLOCK):
            if not self._commands:
                break
            self._apply(self._commands.popleft())
        n = frames
        self.replan()  # a path's source or chain may have been replaced
        if not stage.start(
            self.plan, stage.NO_INPUT if indata is None else indata, outdata, n, int(xrun)
        ):
            return
        # What the block leaves to Python: sources and chains that are Python objects.
        for p, python_source in self._python_paths:
            if python_source:
                p.source.read(indata, n, p._buf, self.transport)
            if p.chain is None:
                continue
            st = p._st
            try:
                y = p.chain.process(p._buf[:n])
                if _block_shaped(y, n):
                    p._buf[:n] = y  # where the block's finish reads the path's block
                    continue
                # The kernels would read past it (pedalboard returned (n, 0) arrays at
                # 1-2 frame blocks): silence, kept for the report.
                st[P_FAULT] = FAULT_WRONG_ARRAY
                p._fault_evidence = y
            except Exception as exc:  # a plugin failed: this path goes silent, others play
                st[P_FAULT] = FAULT_RAISED
                p._fault_evidence = exc
            st[P_NONFINITE] += 1
            p._buf[:n] = 0.0
        inline = self.meter_inline
        stage.finish(self.plan, n, not inline)
        if inline:
            for p in self.paths:
                p.bank.process(p._out[:n])
            self._matched(n)
        stage.end(self.plan, outdata, n, t0)

    def _apply(self, cmd: tuple) -> None:
        kind = cmd[0]
        mx = self._mx
        if kind == "select":
            which = cmd[1]
            if which == "toggle":
                which = "A" if mx[abi.X_TARGET] > 0.5 else "B"
            mx[abi.X_TARGET] = 1.0 if which == "B" else 0.0
        elif kind == "compare":
            a, b = int(cmd[1]), int(cmd[2])
            if 0 <= a < len(self.paths) and 0 <= b < len(self.paths):  # else ignored
                self.a, self.b = a, b
                self._follow_loudness()
        elif kind == "match":
            self.loudness_match = bool(cmd[1])
            self._follow_loudness()
        elif kind == "gains":  # ("gains", a_db, b_db), or ("gains", None): the match again
            if len(cmd) < 2 or cmd[1] is None:
                self.fixed_gains_db = None
            elif math.isfinite(cmd[1]) and math.isfinite(cmd[2]):  # else ignored
                self.fixed_gains_db = (
                    min(float(cmd[1]), _MAX_FIXED_GAIN_DB),
                    min(float(cmd[2]), _MAX_FIXED_GAIN_DB),
                )
            self._follow_loudness()
        elif kind == "monitor":
            self.monitor.update(cmd[1])
            self._monitor_targets()
        elif kind == "delay":
            path, samples = cmd[1], int(cmd[2])
            path.delay_samples = min(samples, path._ring.shape[0] - 1)
        elif kind == "seek":  # the block applies it at its start (engine.block.start)
            self.transport.request_seek(int(cmd[1]))
        elif kind == "play":
            self.transport.playing = bool(cmd[1])
        elif kind == "reset_meters":
            for p in self.paths:
                if self.meter_inline:
                    p.bank.reset()
                else:  # the meter thread resets at this frame of the feed
                    p._reset_at = int(p._fed[0])

    def _matched(self, frames: int) -> None:
        """Let the loudness match follow the meters every ``_MATCH_INTERVAL_S``."""
        self._since_match += frames
        if self._since_match >= self._match_every:
            self._since_match = 0
            self._follow_loudness()

    # -- the meter thread's side ----------------------------------------------------

    def after_callback(self, timeout_s: float = 0.02) -> bool:
        """Return True just after the audio callback has finished a block; False after
        ``timeout_s``, or at once when no real-time driver streams (``realtime`` is False).

        A Python thread in the audio process that starts its work here has most of
        a period before the callback needs the GIL again, instead of landing on a
        running callback about one time in twenty (at 64 frames) and delaying it
        by a GIL hand-over. The wait polls the tap's frame count every quarter
        period without holding the GIL.
        """
        if not self.realtime:
            return False
        seen = int(self._tap_pos[1])
        # A quarter period between polls: fine enough to leave most of the gap, with
        # few wake-ups (bench/realtime.py, 64 frames, single runs: 0.1 ms polls gave
        # 29 xruns a minute, quarter-period polls 6-10; the floor 0-4).
        poll_us = max(50, int(0.25e6 * self._block_frames / self.sample_rate))
        return rt.wait_for_change(self._tap_pos, 1, seen, poll_us, int(timeout_s * 1e6 / poll_us))

    def meter_pending(self) -> int:
        """Meter what the callback has fed each path since the last call; returns frames.

        Called by :class:`MeterThread` (never the audio thread) while
        ``meter_inline`` is False, and once more after the stream stops.
        """
        done = 0
        for i, p in enumerate(self.paths):
            fed = int(p._fed[0])
            reset_at = p._reset_at
            if reset_at is not None and reset_at <= fed:
                self._meter_feed(p, reset_at)
                p.bank.reset()
                p._reset_at = None
            got = self._meter_feed(p, fed)
            if i == 0:
                done = got
        if done:
            self._matched(done)
        return done

    def _meter_feed(self, p: Path, upto: int) -> int:
        size = p._feed.shape[0]
        start = p._metered
        if upto - start > size - 2 * self.max_block:
            # Fell (nearly) a whole feed behind: the oldest frames may be overwritten
            # while read. Skip to the newest half and say so in the state.
            skip = upto - size // 2 - start
            self.meter_skipped_frames += skip
            start += skip
        pos = start
        while pos < upto:
            row = pos & (size - 1)
            k = min(upto - pos, size - row)
            p.bank.process(p._feed[row : row + k])
            pos += k
        p._metered = upto
        return upto - start

    def _monitor_targets(self) -> None:
        m = self.monitor
        gain_db = float(m.get("trim_db", 0.0)) + (_DIM_DB if m.get("dim") else 0.0)
        # A NaN trim would poison the gain smoother for good: mute instead. A huge one
        # would overflow (OverflowError in the callback): the output guard mutes far
        # below _MAX_MONITOR_GAIN_DB anyway.
        if m.get("mute") or not math.isfinite(gain_db):
            gain = 0.0
        else:
            gain = 10.0 ** (min(gain_db, _MAX_MONITOR_GAIN_DB) / 20.0)
        solo = m.get("solo")
        if solo is None and m.get("mono"):
            solo = "M"
        self._mx[abi.X_OUT_GAIN_TARGET] = gain
        self._mx[abi.X_M_TARGET : abi.X_M_TARGET + 4] = _MONITOR_MATRIX.get(
            solo, _MONITOR_MATRIX[None]
        )

    def _follow_loudness(self) -> None:
        """Attenuate the louder of A and B to the quieter (never boost); or apply the
        gains a "gains" command set (``fixed_gains_db``), which may boost.

        While either path has no loudness yet (start, meter reset) the current
        match holds rather than jumping back to unity.
        """
        ga = gb = 0.0
        fixed = self.fixed_gains_db
        if fixed is not None:  # set by a "gains" command: the match stands aside
            ga, gb = fixed
        elif self.loudness_match and self.a != self.b:
            la = _programme_loudness(self.paths[self.a].bank)
            lb = _programme_loudness(self.paths[self.b].bank)
            if la is None or lb is None:
                return
            quiet = min(la, lb)
            ga, gb = quiet - la, quiet - lb
        self._mx[abi.X_GAIN_A_TARGET] = 10.0 ** (ga / 20.0)
        self._mx[abi.X_GAIN_B_TARGET] = 10.0 ** (gb / 20.0)

    # -- reading (not the audio thread) -----------------------------------------------------

    def read_tap(self, out: np.ndarray) -> int:
        """Copy the latest A and B frames (path outputs, before match gain and monitor) into
        ``out`` (frames, 4: A L, A R, B L, B R), oldest first; returns how many are real.

        The audio thread keeps writing while this copies, so the newest block may be
        torn: fine for a display, never for measurement.
        """
        size = self.tap_frames
        rows = min(out.shape[0], size)
        pos, written = int(self._tap_pos[0]), int(self._tap_pos[1])
        start = (pos - rows) % size
        first = min(rows, size - start)
        out[:first] = self._tap[start : start + first]
        out[first:rows] = self._tap[: rows - first]
        return min(rows, written)

    def callback_stats(self, recent: int = _STATS_CALLBACKS) -> tuple[float | None, float | None]:
        """Callback duration p99 and max in microseconds over the last ``recent`` callbacks.

        A partition of the recent part of the ring, not a sort of all of it: at
        10 Hz the full sort cost the session thread about 0.4 ms of GIL time.
        """
        n = min(self.callbacks, TIMING_RING, recent)
        if not n:
            return None, None
        end = self.callbacks & (TIMING_RING - 1)
        if n <= end:
            t = self.timings_ns[end - n : end].copy()
        else:
            t = np.concatenate((self.timings_ns[end - n :], self.timings_ns[:end]))
        k = min(n - 1, int(math.ceil(0.99 * n)) - 1)
        t.partition(k)
        return float(t[k]) / 1000.0, float(t.max()) / 1000.0

    def state(self) -> EngineState:
        """A snapshot for displays (reads the meters; call from a non-real-time thread).

        While a real-time driver streams, each path's readings (~0.15-0.35 ms of
        Python) are taken in their own gap between callbacks (``after_callback``).
        A chain whose latency changed since the paths were aligned (a plugin added
        or removed, a plugin reporting a new latency) realigns them here.
        """
        if tuple(p.latency_samples for p in self.paths) != self._aligned:
            self.align_latency()
        paths = []
        for p in self.paths:
            self.after_callback()
            readings = p.bank.readings()
            paths.append(
                PathState(p.name, readings, p.latency_samples, p.delay_samples, p.muted_blocks)
            )
        p99, mx_us = self.callback_stats()
        mx = self._mx
        og = self._og
        return EngineState(
            sample_rate=self.sample_rate,
            paths=tuple(paths),
            a=self.a,
            b=self.b,
            audible="B" if mx[abi.X_TARGET] > 0.5 else "A",
            loudness_match=self.loudness_match,
            match_a_db=_db(mx[abi.X_GAIN_A_TARGET]),
            match_b_db=_db(mx[abi.X_GAIN_B_TARGET]),
            monitor=dict(self.monitor),
            callbacks=self.callbacks,
            xruns=self.xruns,
            dropped_commands=self.dropped_commands,
            meter_skipped_frames=self.meter_skipped_frames,
            position_s=self.transport.pos / self.sample_rate,
            callback_p99_us=p99,
            callback_max_us=mx_us,
            output_muted=og[abi.O_MUTED] != 0.0,
            output_trips=int(og[abi.O_TRIPS]),
            output_status=self._output_text() if og[abi.O_TRIPS] else None,
        )

    def _output_text(self) -> str:
        """Why the output guard muted the output the latest time (not the audio thread)."""
        og = self._og
        level, source = float(og[abi.O_LEVEL]), int(og[abi.O_SOURCE])
        if og[abi.O_CAUSE] == abi.FAULT_NONFINITE or not math.isfinite(level):
            what = "a non-finite sample"
        else:
            what = f"a sample at {_db(level):+.1f} dBFS"
        if 0 <= source < len(self.paths):
            where = f"from path {source + 1} ({self.paths[source].name})"
        else:
            where = "from the A/B mix and monitor gain"
        return (
            f"output muted: {what} {where}, above the {OUTPUT_CEILING_DBFS:+g} dBFS output "
            f"ceiling; it plays again after {rt.OUTPUT_HOLD_S:g} s without one"
        )

    def poll_status(self, now: float | None = None) -> list[str]:
        """New status lines since the last call: the output guard muted the output, a
        path was muted for a faulty chain. A fault that persists is repeated at most
        every few seconds. For the session thread (never the audio thread)."""
        now = time.monotonic() if now is None else now
        lines: list[str] = []
        trips = int(self._og[abi.O_TRIPS])
        if trips > self._reported_trips and now - self._output_reported_at >= _STATUS_REPEAT_S:
            line = self._output_text()
            if trips - self._reported_trips > 1:
                line += f" ({trips - self._reported_trips} times since the last report)"
            lines.append(line)
            self._reported_trips = trips
            self._output_reported_at = now
        for i, p in enumerate(self.paths):
            blocks = p.nonfinite_blocks
            if blocks > p._reported_blocks and now - p._reported_at >= _STATUS_REPEAT_S:
                lines.append(_path_fault_text(p, i, int(p._st[P_FAULT]), blocks))
                p._reported_blocks = blocks
                p._reported_at = now
        return lines


def _block_shaped(y: object, n: int) -> bool:
    """True if ``y`` is what a chain must return for an n-frame block (the numba kernels
    read it without bounds checks, and the path guard may zero it): a writeable,
    C-contiguous float32 ndarray shaped (n, 2)."""
    return (
        type(y) is np.ndarray
        and y.dtype == np.float32
        and y.ndim == 2
        and y.shape[0] == n
        and y.shape[1] == 2
        and y.flags.c_contiguous
        and y.flags.writeable
    )


def _path_fault_text(p: Path, index: int, kind: int, blocks: int) -> str:
    """The status line for a path the engine muted (not the audio thread)."""
    what = {
        abi.FAULT_NONFINITE: "it produced NaN/Inf samples",
        abi.FAULT_ABSURD: f"it produced samples beyond {rt.ABSURD_DBFS:+g} dBFS (garbage)",
    }.get(kind)
    evidence = p._fault_evidence
    if kind == FAULT_RAISED and isinstance(evidence, BaseException):
        lines = str(evidence).strip().splitlines()
        what = f"its chain raised {type(evidence).__name__}" + (f": {lines[0]}" if lines else "")
    elif kind == FAULT_WRONG_ARRAY:
        what = f"its chain returned {_describe_array(evidence)}, not a (frames, 2) float32 array"
    elif what is None:
        what = "its chain failed"
    return f"path {index + 1} ({p.name}) muted: {what} ({blocks} blocks so far)"


def _describe_array(y: object) -> str:
    if not isinstance(y, np.ndarray):
        return f"a {type(y).__name__}"
    kind = "" if type(y) is np.ndarray else f" ({type(y).__name__})"
    layout = "" if y.flags.c_contiguous else " non-C-contiguous"
    layout += "" if y.flags.writeable else " read-only"
    return f"a{layout} {y.dtype} array{kind} shaped {tuple(y.shape)}"


def _programme_loudness(bank: MeterBank) -> float | None:
    """Integrated loudness once gated blocks exist, else None (match waits for it)."""
    return bank.integrated_lufs()


def _db(gain: float) -> float:
    return 20.0 * math.log10(gain) if gain > 0 else -math.inf


class MeterThread:
    """Runs the engine's meters beside the audio callback instead of inside it.

    DESIGN.md lets the callback "run (or hand to a meter thread) the numba
    kernels". Measured on the JACK dummy server at 64 frames (bench/realtime.py):
    metering three paths in the callback made it the largest share of the
    callback's time; here the callback only appends each path's output to its
    feed (``rt.ring_write``) and this thread meters the feeds every 10 ms in
    larger chunks. The kernels release the GIL, so the thread holds it only for
    a few microseconds of glue per wake-up. Readings lag the audio by at most
    one interval; they stay identical to metering in the callback, since a
    MeterBank's readings do not depend on how its input is cut into blocks.
    """

    def __init__(self, engine: Engine, interval_s: float = _METER_INTERVAL_S) -> None:
        self.engine = engine
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Take the meters out of the callback (call before the stream starts)."""
        if self._thread is not None:
            return
        self.engine.meter_pending()
        self.engine.meter_inline = False
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="earmark-meters", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Meter what is left and give the meters back to the callback (after the stream
        stopped)."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = None
        self.engine.meter_pending()
        self.engine.meter_inline = True

    def _run(self) -> None:
        engine = self.engine
        while not self._stop.wait(self.interval_s):
            engine.after_callback()
            engine.meter_pending()
