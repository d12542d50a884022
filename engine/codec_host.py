"""The live codec monitor: the audible mix through a real encoder and decoder, in a child.

Encoders are costly and hold audio back, so, like an isolated chain
(``engine.isolated``), the codec runs in its own process and trades blocks with the
audio callback through shared memory, ``depth`` blocks behind; the callback never
waits for it and runs no Python (``engine.block.codec_stage``, the stage after the
A/B mix and before the output guard, in both callbacks).

The host (``python -m earmark.engine.codec_host``) streams every block through a
:class:`~earmark.engine.codec.StreamCodec` behind the pre-fill its
:func:`~earmark.engine.codec.calibrate` measured at start, so the decoded stream
lags the mix by a delay fixed for the codec and the session: the pre-fill and the
codec's own, measured, plus the ``depth`` blocks of transport. The callback delays
the clean mix by the same amount, so switching clean, codec and "artefacts only"
(decoded minus the aligned clean mix) is seamless. The host meters the clean mix
and the decoded stream with earmark's own true-peak meter (``meters.MeterBank``) and
counts the overs (samples at or over full scale, as the offline path counts them).

If the host dies or falls behind, a block plays the delayed clean mix (counted in
``fallbacks``), never garbage; the output guard still follows.
"""

from __future__ import annotations

import contextlib
import gc
import math
import os
import subprocess
import sys
import threading
from multiprocessing import shared_memory
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from earmark.errors import EarmarkError

from . import abi, rt
from .abi import (
    C_BLOCKS,
    C_CLEAN,
    C_COUNT,
    C_DELAY,
    C_EXCHANGE,
    C_FALLBACKS,
    C_MODE,
    C_RING,
    C_RING_POS,
    C_RING_ROWS,
    C_X,
    CS_DELAY,
    CS_LOST,
    CS_OVERS_CLEAN,
    CS_OVERS_CODEC,
    CS_PREFILL,
    CS_TP_CLEAN,
    CS_TP_CODEC,
    CS_UNDERRUNS,
    G_CODEC,
    H_COUNT,
    I_COUNT,
    I_DEAD,
    I_DEAD_BLOCKS,
    I_LATE,
    I_WAKE,
    ISO_DONE,
    ISO_FRAMES,
    ISO_SLOTS,
    ISO_SUBMITTED,
    ISO_VERSION,
    LAYOUT_VERSION,
)
from .childproc import (
    how_ended,
    huge_pages,
    ignore_stop_signals,
    kill,
    start_module,
    stop_signals_held,
)
from .codec import Codec, live_codec
from .isolated import realtime_host, retire_wake, wake_pair

__all__ = ["MODES", "CodecMonitor", "CodecMonitorError"]

# The modes by the names commands use (abi.CODEC_*).
MODES: dict[str, int] = abi.CODEC_MODES
_MODE_NAMES = {v: k for k, v in MODES.items()}
# Blocks of transport (inference): an encoder works a whole frame (1024 AAC frames,
# 16 blocks of 64) when it is complete, a burst that must fit in the slack; the most
# the isolated ring allows.
DEFAULT_DEPTH = ISO_SLOTS - 1
# How long the host may take to open its codec and calibrate (inference: 0.2-0.5 s
# measured per codec on this project's 2-core VM; a loaded machine is slower).
_START_TIMEOUT_S = 60.0
# The host meters this much audio at a time (inference: 100 ms, the meters' own step;
# the readings refresh at the session's 10 Hz).
_METER_S = 0.1
# A sample at or over full scale is an over (earmark.offline.codecs.FULL_SCALE).
_FULL_SCALE = 1.0


class CodecMonitorError(EarmarkError, RuntimeError):
    """The codec host could not start (no such codec, an encoder that will not open)."""


class CodecMonitor:
    """The codec monitor of one session: a host process and the callback's table.

    Args:
        codec: a name of :data:`~earmark.engine.codec.LIVE_CODECS` or a Codec.
        sample_rate: the stream's rate.
        block: the driver's block size (the transport's delay is ``depth`` of them).
        max_block: the largest block the engine passes.
        depth: blocks between the callback and the host (1-7).
    """

    def __init__(
        self,
        codec: str | Codec,
        sample_rate: int,
        *,
        block: int = 64,
        max_block: int = 4096,
        depth: int = DEFAULT_DEPTH,
    ) -> None:
        try:
            self.codec = live_codec(codec) if isinstance(codec, str) else live_codec(codec.name)
        except ValueError as exc:
            raise CodecMonitorError(str(exc)) from None
        if not 1 <= depth < ISO_SLOTS:
            raise ValueError(f"depth must be 1-{ISO_SLOTS - 1} blocks, got {depth}")
        self.sample_rate = int(sample_rate)
        self.block = rt.check_block_frames(block)
        self.max_block = max(rt.check_block_frames(max_block, "max_block"), self.block)
        self.depth = int(depth)
        self._shm = shared_memory.SharedMemory(
            create=True, size=abi.codec_shm_bytes(self.max_block)
        )
        self._x, self._y, self._ctrl = abi.isolated_views(self._shm.buf, self.max_block, 2)
        self._ctrl[:] = 0
        # Nothing submitted yet (the isolated host's 0 would skip block 0): the encoder
        # cuts its frames from the first block on, as the offline path does.
        self._ctrl[ISO_SUBMITTED] = -1
        self._ctrl[ISO_DONE] = -1
        self._ctrl[ISO_VERSION] = LAYOUT_VERSION
        self._stats = abi.codec_stats_view(self._shm.buf, self.max_block)
        self._stats[:] = 0.0
        self._stats[CS_TP_CLEAN] = self._stats[CS_TP_CODEC] = -math.inf
        self._out = np.zeros((self.max_block, 2), dtype=np.float32)
        self.state = np.zeros(I_COUNT, dtype=np.int64)
        self.state[I_WAKE] = -1
        self.exchange = np.zeros(H_COUNT, dtype=np.int64)
        for index, array in (
            (abi.H_X, self._x),
            (abi.H_Y, self._y),
            (abi.H_CTRL, self._ctrl),
            (abi.H_STATE, self.state),
            (abi.H_OUT, self._out),
        ):
            self.exchange[index] = abi.address(array)
        self.exchange[abi.H_DEPTH] = self.depth
        self.exchange[abi.H_MAX_BLOCK] = self.max_block
        self.exchange[abi.H_CHANNELS] = 2
        self.exchange[abi.H_ONE] = 1
        self._mix = np.zeros((self.max_block, 2), dtype=np.float32)
        self._clean = np.zeros((self.max_block, 2), dtype=np.float32)
        self._ring = np.zeros((16, 2), dtype=np.float32)
        # What the block's codec stage reads (abi.C_*); the engine's plan points at it.
        self.table = np.zeros(C_COUNT, dtype=np.int64)
        self.table[C_EXCHANGE] = abi.address(self.exchange)
        self.table[C_X] = abi.address(self._mix)
        self.table[C_CLEAN] = abi.address(self._clean)
        self._lock = threading.Lock()
        self._proc: Any = None
        self._conn: Any = None
        self._engine: Any = None
        self._reported = False
        self._closed = False
        self.last_error: str | None = None
        self.warnings: list[str] = []
        self._start()

    late_blocks = rt.Slot("state", I_LATE)  # blocks the host had not finished in time
    dead_blocks = rt.Slot("state", I_DEAD_BLOCKS)  # blocks while the host was dead
    fallbacks = rt.Slot("table", C_FALLBACKS)  # blocks heard clean instead of decoded
    blocks = rt.Slot("table", C_BLOCKS)  # blocks the stage ran

    # -- life cycle (not the audio thread) ----------------------------------------------

    def _start(self) -> None:
        wake_r, wake_w = wake_pair()
        with stop_signals_held():
            proc, conn = start_module("earmark.engine.codec_host", [str(wake_r)], pass_fds=[wake_r])
        if wake_r != wake_w:
            os.close(wake_r)
        try:
            conn.send(
                (self.codec.name, self.sample_rate, self.block, self.max_block, self._shm.name)
            )
            if not conn.poll(_START_TIMEOUT_S):
                raise CodecMonitorError(
                    f"the codec host for {self.codec.label} did not start within "
                    f"{_START_TIMEOUT_S:g} s"
                )
            try:
                reply = conn.recv()
            except EOFError:
                proc.wait(5.0)
                raise CodecMonitorError(
                    f"the codec host for {self.codec.label} died while starting "
                    f"({how_ended(proc.returncode)})"
                ) from None
        except BaseException:
            kill(proc)
            os.close(wake_w)
            conn.close()
            raise
        if reply[0] == "error":
            proc.wait(5.0)
            os.close(wake_w)
            conn.close()
            raise CodecMonitorError(f"the codec host for {self.codec.label}: {reply[1]}")
        _, self.warnings = reply
        self.host_delay_frames = int(self._stats[CS_DELAY])
        self.prefill_frames = int(self._stats[CS_PREFILL])
        delay = self.delay_frames
        # The clean delay line: longer than the delay by a block (rt.delay's ring).
        self._ring = np.zeros((delay + self.max_block + 1, 2), dtype=np.float32)
        self.table[C_RING] = abi.address(self._ring)
        self.table[C_RING_ROWS] = self._ring.shape[0]
        self.table[C_RING_POS] = 0
        self.table[C_DELAY] = delay
        self._proc, self._conn = proc, conn
        self.state[I_WAKE] = wake_w
        self.state[I_DEAD] = 0

    @property
    def delay_frames(self) -> int:
        """The decoded stream's whole delay behind the mix (and the clean path's while
        the monitor is on): the host's (pre-fill and codec, measured) + the transport."""
        return self.host_delay_frames + self.depth * self.block

    def attach(self, engine: Any) -> None:
        """Put the codec stage in ``engine``'s block (before its stream starts)."""
        if engine.max_block > self.max_block:
            raise ValueError("the engine's blocks are larger than the monitor's")
        self._engine = engine
        engine.plan[G_CODEC] = abi.address(self.table)

    def detach(self) -> None:
        """Take the stage out of the engine's block (after its stream stopped)."""
        if self._engine is not None:
            self._engine.plan[G_CODEC] = 0
            self._engine = None

    def poll(self) -> str | None:
        """Once, when the host has died: a line saying so (the clean mix plays meanwhile)."""
        proc = self._proc
        if proc is None or proc.poll() is None or self._reported:
            return None
        self.state[I_DEAD] = 1
        self._reported = True
        self.last_error = (
            f"the codec monitor's host ({self.codec.label}) ended "
            f"({how_ended(proc.returncode)}); the clean mix plays instead"
        )
        return self.last_error

    @property
    def alive(self) -> bool:
        """True while the host process runs."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The host's process id (None when stopped)."""
        return None if self._proc is None else self._proc.pid

    def close(self) -> None:
        """Detach, stop the host and free the shared memory (after the stream stopped)."""
        self.detach()
        with self._lock:
            proc, conn, wake = self._proc, self._conn, int(self.state[I_WAKE])
            self._proc = self._conn = None
            self.state[I_WAKE] = -1
            if conn is not None:
                with contextlib.suppress(OSError, ValueError):
                    conn.send(("quit",))
                conn.close()
            if wake >= 0:
                retire_wake(wake)
            if proc is not None:
                try:
                    proc.wait(2.0)
                except subprocess.TimeoutExpired:
                    kill(proc)
        if self._closed:
            return
        self._closed = True
        self._stats = self._stats.copy()  # the last readings outlive the segment
        del self._x, self._y, self._ctrl
        with contextlib.suppress(FileNotFoundError, BufferError):
            self._shm.close()
            self._shm.unlink()

    # -- control (any thread but the audio one) ----------------------------------------------

    @property
    def mode(self) -> str:
        """What is heard: off (the mix, undelayed), clean, on (decoded), artefacts."""
        return _MODE_NAMES.get(int(self.table[C_MODE]), "off")

    def set_mode(self, mode: str) -> None:
        """Switch what is heard (read by the callback at its next block)."""
        if mode not in MODES:
            raise ValueError(f"codec monitor mode {mode!r}: choose from {', '.join(MODES)}")
        self.table[C_MODE] = MODES[mode]

    def reset(self) -> None:
        """Start the true peaks and overs again (the host clears them between blocks)."""
        with self._lock:
            if self._conn is not None and self.alive:
                with contextlib.suppress(OSError, ValueError):
                    self._conn.send(("reset",))

    def readings(self) -> dict[str, Any]:
        """The monitor's state for the state frame, the views and snapshots (dB values
        None before any audio)."""
        s = self._stats

        def db(v: float) -> float | None:
            return float(v) if math.isfinite(v) else None

        return {
            "codec": self.codec.name,
            "label": self.codec.label,
            "mode": self.mode,
            "clean_true_peak_dbtp": db(s[CS_TP_CLEAN]),
            "codec_true_peak_dbtp": db(s[CS_TP_CODEC]),
            "clean_overs": int(s[CS_OVERS_CLEAN]),
            "codec_overs": int(s[CS_OVERS_CODEC]),
            "delay_frames": self.delay_frames,
            "fallbacks": self.fallbacks,
            "lost_blocks": int(s[CS_LOST]),
            "underruns": int(s[CS_UNDERRUNS]),
            "alive": self.alive and not self.state[I_DEAD],
        }

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


# -- the host process ---------------------------------------------------------------------------


class _Meter:
    """True peak (earmark's meter) and overs of a stream, metered ``_METER_S`` at a time."""

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self.chunk = np.zeros((max(1, int(_METER_S * sample_rate)), 2), dtype=np.float32)
        self.reset()

    def reset(self) -> None:
        from earmark.meters import MeterBank

        self.bank = MeterBank(2, self.sample_rate, spectrum=False, history_s=1.0)
        self.filled = 0
        self.overs = 0
        self.peak_dbtp = -math.inf

    def add(self, x: np.ndarray) -> None:
        self.overs += int(np.count_nonzero(np.abs(x) >= _FULL_SCALE))
        n = x.shape[0]
        take = min(n, self.chunk.shape[0] - self.filled)
        self.chunk[self.filled : self.filled + take] = x[:take]
        self.filled += take
        if self.filled == self.chunk.shape[0]:
            self.bank.process(self.chunk)
            tp = self.bank.readings().true_peak_dbtp
            if tp is not None:
                self.peak_dbtp = max(self.peak_dbtp, tp)
            self.filled = 0
            if take < n:
                self.add(x[take:])


def _host_main(conn_fd: int, wake_fd: int) -> None:
    """The host: open and calibrate the codec, then stream submitted blocks until told to quit."""
    import select

    from .codec import StreamCodec, calibrate

    ignore_stop_signals()  # the session stops it in order, after the audio
    conn = Connection(conn_fd)
    name, sample_rate, block, max_block, shm_name = conn.recv()
    try:
        codec = live_codec(name)
        prefill, delay = calibrate(codec, sample_rate, block)
        stream = StreamCodec(codec, sample_rate, prefill)
    except Exception as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    shm = shared_memory.SharedMemory(name=shm_name)
    with contextlib.suppress(Exception):  # the parent owns the segment
        from multiprocessing import resource_tracker

        resource_tracker.unregister(shm._name, "shared_memory")  # type: ignore[attr-defined]
    x, y, ctrl = abi.isolated_views(shm.buf, max_block, 2)
    stats = abi.codec_stats_view(shm.buf, max_block)
    if ctrl[ISO_VERSION] != LAYOUT_VERSION:
        del x, y, ctrl, stats
        shm.close()
        conn.send(("error", "the parent's shared memory has another layout"))
        return
    stats[CS_DELAY] = delay
    stats[CS_PREFILL] = prefill
    clean, decoded = _Meter(sample_rate), _Meter(sample_rate)
    clean.add(np.zeros_like(clean.chunk))  # the meters' machine code loads now, not in the loop
    clean.reset()
    done = int(ctrl[ISO_SUBMITTED])
    ctrl[ISO_DONE] = done
    lost = 0  # blocks overwritten before this host read them
    silence = np.zeros((x.shape[1], 2), dtype=np.float32)  # a lost block's stand-in
    warnings = []
    priority = realtime_host()
    if priority is not None:
        warnings.append(priority.replace("isolated host", "codec host"))
    huge_pages(False)
    gc.collect()
    gc.freeze()
    gc.disable()
    conn.send(("ready", warnings))
    try:
        while True:
            ready, _, _ = select.select([wake_fd, conn_fd], [], [], 1.0)
            if wake_fd in ready:
                try:
                    if not os.read(wake_fd, 4096):
                        return
                except BlockingIOError:
                    pass
            while done < ctrl[ISO_SUBMITTED]:
                if ctrl[ISO_SUBMITTED] - done > ISO_SLOTS:
                    # The callback wrote over blocks this host had not read (it was
                    # scheduled too late): skip to the oldest block still in the ring.
                    skipped = int(ctrl[ISO_SUBMITTED]) - ISO_SLOTS - done
                    lost += skipped
                    done = int(ctrl[ISO_SUBMITTED]) - ISO_SLOTS
                    stats[CS_LOST] = lost
                    # Their length of silence goes through the codec instead, so its
                    # timeline stays the callback's: every later decoded block still lines
                    # up with the delayed clean mix (a skipped block would shift them all).
                    frames = int(ctrl[ISO_FRAMES + (done + 1) % ISO_SLOTS])
                    for _ in range(skipped):
                        stream.process(silence[:frames])
                done += 1
                slot = done % ISO_SLOTS
                n = int(ctrl[ISO_FRAMES + slot])
                before = stream.underruns
                out = stream.process(x[slot, :n])
                # A block the decoder had not delivered: NaN, so the callback plays the
                # clean mix for it (its guard) instead of a gap.
                y[slot, :n] = np.nan if stream.underruns != before else out
                clean.add(x[slot, :n])
                decoded.add(out)
                ctrl[ISO_DONE] = done
            stats[CS_TP_CLEAN] = clean.peak_dbtp
            stats[CS_TP_CODEC] = decoded.peak_dbtp
            stats[CS_OVERS_CLEAN] = clean.overs
            stats[CS_OVERS_CODEC] = decoded.overs
            stats[CS_UNDERRUNS] = stream.underruns
            if conn_fd in ready:
                message = conn.recv()
                if message[0] == "quit":
                    return
                if message[0] == "reset":
                    clean.reset()
                    decoded.reset()
    except (EOFError, OSError, KeyboardInterrupt):
        return
    finally:
        del x, y, ctrl, stats
        shm.close()


if __name__ == "__main__":
    _host_main(int(sys.argv[1]), int(sys.argv[2]))  # CONN_FD WAKE_FD (see childproc)
