"""Isolated mode: a chain hosted in a child process, so a plugin crash mutes one path.

Third-party plugins can crash, and a segfault in a plugin takes its host
process with it. :class:`IsolatedChain` builds the chain in a child process
and exchanges audio with it through shared memory, pipelined by ``depth`` blocks (2 by default):

- the audio callback writes block *n* into a ring slot, bumps the submitted
  counter and wakes the child (an eventfd increment, which never blocks),
  then returns the child's output for block *n - depth* if it is done,
  silence otherwise. It never waits for the child, so a crashed, hung or late
  child costs that path's sound and nothing else;
- the child, at real-time priority where the system allows, waits for the
  wake-up, runs every submitted block through the chain (in order) and
  publishes each result with the done counter. Whatever the chain does with a
  block (raise, return an array of the wrong shape or type) the host writes
  silence for it and counts it in ``error_blocks``: it never dies of it.

The pipeline adds exactly ``depth`` blocks of latency, reported in
``latency_samples`` so the engine's alignment keeps every path
sample-aligned; this assumes the driver's fixed block size (PortAudio
delivers fixed blocks when a block size is given). Parameter, bypass, add and remove edits
go to the child over a pipe, from a non-audio thread, and are confirmed.
:meth:`IsolatedChain.poll` (called by the session) reports a dead child once;
:meth:`IsolatedChain.restart` starts a new host for the same chain.
"""

from __future__ import annotations

import contextlib
import gc
import os
import subprocess
import sys
import threading
import time
from multiprocessing import shared_memory
from multiprocessing.connection import Connection
from typing import Any, NamedTuple

import numpy as np

from earmark.errors import EarmarkError

from . import abi, block, rt
from .abi import (
    H_COUNT,
    I_COUNT,
    I_DEAD,
    I_DEAD_BLOCKS,
    I_LATE,
    I_SEQ,
    I_WAKE,
    ISO_DONE,
    ISO_ERRORS,
    ISO_FRAMES,
    ISO_NONFINITE,
    ISO_SLOTS,
    ISO_SUBMITTED,
    ISO_VERSION,
    LAYOUT_VERSION,
)
from .chains import ChainLike, ChainSpec, ParamValue, PluginSpec
from .childproc import (
    how_ended,
    huge_pages,
    ignore_stop_signals,
    kill,
    start_module,
    stop_signals_held,
)

__all__ = ["IsolatedChain", "IsolationError", "realtime_host", "retire_wake", "wake_pair"]

# SCHED_FIFO priority of a host: below JACK's client threads (5 under `jackd -R`'s
# default 10; a CoreAudio or ALSA callback thread is higher still), above every
# normal process.
_HOST_RTPRIO = 4
# How long a host may take to build its chain: some plugins take minutes to load
# (ZamVerb: ~140 s on one VM). EARMARK_HOST_START_TIMEOUT_S overrides it.
_START_TIMEOUT_S = 600.0
_START_TIMEOUT_ENV = "EARMARK_HOST_START_TIMEOUT_S"


def _setting(name: str, default: float) -> float:
    """A number from the environment (``default`` when unset or not a number)."""
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


_EDIT_TIMEOUT_S = 10.0


class IsolationError(EarmarkError, RuntimeError):
    """The isolated host could not start, or did not answer in time."""


class IsolatedChain(ChainLike):
    """A chain running in its own process; same interface as ``engine.chains.Chain``
    for what the engine, the session and the controllers use.

    Args:
        spec: the chain (from ``load_chain``/``parse_chain``).
        sample_rate: the stream's rate.
        channels: channels of the path (2 for stereo).
        block: the driver's block size.
        max_block: the largest block the engine will pass.
        depth: blocks of pipeline between the callback and the host (the extra
            latency is ``depth * block``): 2 absorbs the host's wake-up jitter
            on a loaded machine, 1 is the least latency.
        start_timeout_s: how long the host may take to build the chain (and
            an added plugin); default ``EARMARK_HOST_START_TIMEOUT_S``, else 600 s.
    """

    def __init__(
        self,
        spec: ChainSpec,
        sample_rate: float,
        channels: int = 2,
        *,
        block: int = 64,
        max_block: int = 4096,
        depth: int = 2,
        start_timeout_s: float | None = None,
    ) -> None:
        if not 1 <= depth < ISO_SLOTS:
            raise ValueError(f"depth must be 1-{ISO_SLOTS - 1} blocks, got {depth}")
        self.depth = int(depth)
        self.sample_rate = float(sample_rate)
        self.channels = int(channels)
        self.block = rt.check_block_frames(block)
        self.max_block = max(rt.check_block_frames(max_block, "max_block"), self.block)
        self._spec = spec
        self._start_timeout_s = (
            _setting(_START_TIMEOUT_ENV, _START_TIMEOUT_S)
            if start_timeout_s is None
            else start_timeout_s
        )
        size = abi.isolated_shm_bytes(self.max_block, self.channels)
        self._shm = shared_memory.SharedMemory(create=True, size=size)
        self._x, self._y, self._ctrl = abi.isolated_views(
            self._shm.buf, self.max_block, self.channels
        )
        self._ctrl[:] = 0
        self._ctrl[ISO_DONE] = -1
        self._ctrl[ISO_VERSION] = LAYOUT_VERSION
        self._out = np.zeros((self.max_block, self.channels), dtype=np.float32)
        # The callback's side (abi.I_* fields).
        self.state = np.zeros(I_COUNT, dtype=np.int64)
        # What the audio block's exchange (engine.block) reads of this chain (abi.H_*);
        # the engine's plan points at it.
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
        self.exchange[abi.H_CHANNELS] = self.channels
        self.exchange[abi.H_ONE] = 1  # an eventfd's 8-byte increment (a pipe takes it too)
        self._wake_w = -1
        self._chain_latency = 0
        self._info = _HostInfo((), (), ())
        self._lock = threading.Lock()  # edits and restarts (never the audio thread)
        self._proc: Any = None
        self._conn: Any = None
        self.restarts = 0
        self.last_error: str | None = None
        self.warnings: list[str] = []
        self._dead = False
        self._reported = False
        self._start()

    _seq = rt.Slot("state", I_SEQ)
    late_blocks = rt.Slot("state", I_LATE)  # blocks the host had not finished in time
    dead_blocks = rt.Slot("state", I_DEAD_BLOCKS)  # silence while the host was dead
    _dead = rt.Slot("state", I_DEAD, bool)
    _wake_w = rt.Slot("state", I_WAKE)

    # -- life cycle (not the audio thread) ------------------------------------------------

    def _start(self) -> None:
        """Start a host: ``python -m earmark.engine.isolated`` with a wake pipe and a socket."""
        wake_r, wake_w = wake_pair()
        with stop_signals_held():  # a process-group signal must not kill it while it starts
            proc, conn = start_module("earmark.engine.isolated", [str(wake_r)], pass_fds=[wake_r])
        if wake_r != wake_w:
            os.close(wake_r)
        try:
            conn.send((self._spec, self.sample_rate, self.channels, self.max_block, self._shm.name))
            if not conn.poll(self._start_timeout_s):
                raise IsolationError(
                    f"the isolated host for chain {self._spec.name!r} did not load it within "
                    f"{self._start_timeout_s:g} s (a slow plugin: raise {_START_TIMEOUT_ENV})"
                )
            try:
                reply = conn.recv()
            except EOFError:
                proc.wait(5.0)
                raise IsolationError(
                    f"the isolated host for chain {self._spec.name!r} died while loading "
                    f"({_exit_text(proc.returncode)})"
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
            raise reply[1]
        _, self._chain_latency, warnings, self._spec, info = reply
        self._info = _HostInfo(*info)
        self.warnings = list(warnings)
        self._proc, self._conn, self._wake_w = proc, conn, wake_w
        self._dead = self._reported = False

    def poll(self) -> str | None:
        """Once, when the host has died: a line saying so (the path is muted meanwhile)."""
        proc = self._proc
        if proc is None or proc.poll() is None or self._reported:
            return None
        self._dead = self._reported = True
        self.last_error = (
            f"chain {self._spec.name!r} crashed in its isolated host "
            f"({_exit_text(proc.returncode)}); its path is muted, the rest plays on"
        )
        return self.last_error

    @property
    def alive(self) -> bool:
        """True while the host process runs."""
        return self._proc is not None and self._proc.poll() is None

    def restart(self) -> None:
        """Start a new host for the chain as it was last confirmed (edits included)."""
        with self._lock:
            self._stop_host()
            self._start()
            self.restarts += 1

    def close(self) -> None:
        """Stop the host and free the shared memory."""
        with self._lock:
            self._stop_host()
        try:
            self._shm.close()
            self._shm.unlink()
        except (FileNotFoundError, BufferError):
            pass

    def _stop_host(self) -> None:
        proc, conn, wake = self._proc, self._conn, self._wake_w
        self._proc = self._conn = None
        self._wake_w = -1  # the callback stops waking a host that is going away
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

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    # -- what the engine and the session read ---------------------------------------------

    @property
    def spec(self) -> ChainSpec:
        """The chain as the host confirmed it, edits included."""
        return self._spec

    @property
    def latency_samples(self) -> int:
        """The chain's own latency plus the pipeline's ``depth`` blocks."""
        return self._chain_latency + self.depth * self.block

    @property
    def bypassed(self) -> tuple[bool, ...]:
        return tuple(bool(p.bypass) for p in self._spec.plugins)

    @property
    def plugin_latencies(self) -> tuple[int, ...]:
        """Each plugin's own latency, as the host measured it."""
        return self._info.latencies

    @property
    def dual_mono(self) -> tuple[bool, ...]:
        """Per plugin: a mono-only plugin running one instance per channel in the host."""
        return self._info.dual_mono

    def parameter_values(self, index: int) -> dict[str, float]:
        """What ``Chain.parameter_values`` gives, as the host last reported it (at load
        and after each edit)."""
        values = self._info.values
        if not 0 <= index < len(values):
            raise IndexError(f"plugin index {index} out of range 0..{len(values) - 1}")
        return dict(values[index])

    @property
    def nonfinite_blocks(self) -> int:
        """Blocks the host's chain silenced for NaN/Inf output."""
        return int(self._ctrl[ISO_NONFINITE])

    @property
    def error_blocks(self) -> int:
        """Blocks this path played as silence: a plugin raised, or the host was late or dead."""
        return int(self._ctrl[ISO_ERRORS]) + self.late_blocks + self.dead_blocks

    @property
    def last_done_block(self) -> int:
        """The number (from 0) of the latest block the host finished; -1 before the first."""
        return int(self._ctrl[ISO_DONE])

    @property
    def pid(self) -> int | None:
        """The host's process id (None while stopped)."""
        return None if self._proc is None else self._proc.pid

    def __len__(self) -> int:
        return len(self._spec.plugins)

    # -- edits (not the audio thread) ---------------------------------------------------------

    def set_parameter(self, index: int, name_with_unit: str, value: ParamValue) -> None:
        """Set a parameter in the host (raises what ``Chain.set_parameter`` raises)."""
        self._request("param", index, name_with_unit, value)

    def set_bypass(self, index: int, bypass: bool) -> None:
        """Bypass or restore a plugin in the host."""
        self._request("bypass", index, bool(bypass))

    def add(self, plugin: PluginSpec, index: int | None = None) -> None:
        """Insert a plugin in the host (at the end by default); raises what
        ``Chain.add`` raises. The host loads it beside its loop, so the path plays on."""
        self._request("add", plugin, index, timeout_s=self._start_timeout_s)

    def remove(self, index: int) -> PluginSpec:
        """Take a plugin out in the host and return its spec."""
        return self._request("remove", index)

    def _request(self, *message: Any, timeout_s: float = _EDIT_TIMEOUT_S) -> Any:
        with self._lock:
            conn = self._conn
            if conn is None or not self.alive:
                raise IsolationError(
                    f"the isolated host for chain {self._spec.name!r} is not running"
                )
            conn.send(message)
            if not conn.poll(timeout_s):
                raise IsolationError(
                    f"the isolated host for chain {self._spec.name!r} did not answer"
                )
            reply = conn.recv()
        if reply[0] == "error":
            raise reply[1]
        _, self._spec, self._chain_latency, result, info = reply
        self._info = _HostInfo(*info)
        return result

    # -- the audio thread -----------------------------------------------------------------------

    def process(self, x: np.ndarray) -> np.ndarray:
        """Hand block n (``x``, (frames, channels) float32) to the host; return its output
        for block n - depth, or silence (the audio block's own exchange, engine.block).

        Never waits: the wake-up is one non-blocking eventfd (or pipe) write.
        """
        n = x.shape[0]
        return block.exchange(self.exchange, x, n)[:n]


class _HostInfo(NamedTuple):
    """What the host reports about its chain with every reply (per plugin)."""

    latencies: tuple[int, ...]
    dual_mono: tuple[bool, ...]
    values: tuple[dict[str, float], ...]


def _host_info(chain: Any, values: list[dict[str, float]], touched: int | None) -> tuple:
    """The host's report, as a plain tuple (the host runs as ``__main__``: a class of
    its own would not unpickle in the parent); ``values`` caches parameter readings,
    refreshed for plugin ``touched`` only (reading every parameter of every plugin
    between two blocks could make one late). None refreshes all of them."""
    count = len(chain)
    if touched is None or len(values) != count:
        values[:] = [chain.parameter_values(i) for i in range(count)]
    elif 0 <= touched < count:
        values[touched] = chain.parameter_values(touched)
    return (tuple(chain.plugin_latencies), tuple(chain.dual_mono), tuple(values))


# Wake descriptors closed late (monotonic time retired, fd): a native callback may
# have read one just before it was cleared, and its write must never reach a file
# that reused the number. Closed by a later retirement; the rest at exit.
_retired: list[tuple[float, int]] = []
_RETIRE_S = 0.5


def wake_pair() -> tuple[int, int]:
    """The host's wake-up (read end, write end), written without ever blocking.

    An eventfd where there is one (Linux; both ends are the same descriptor): its
    write takes only a spinlock. A pipe's write takes the pipe's mutex, which the
    reading host holds while it reads: a host preempted there would put the audio
    callback to sleep until it runs again (priority inversion).
    """
    if hasattr(os, "eventfd"):
        fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        return fd, fd
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)  # the callback's write must never block
    return wake_r, wake_w


def retire_wake(fd: int) -> None:
    now = time.monotonic()
    for item in [r for r in _retired if now - r[0] >= _RETIRE_S]:
        _retired.remove(item)
        with contextlib.suppress(OSError):
            os.close(item[1])
    _retired.append((now, fd))


_exit_text = how_ended


def realtime_host() -> str | None:
    """Run this host at real-time priority, just below the audio callback's; a warning
    when the system does not allow it (the host then competes with every other
    process for the CPU, and on a loaded machine a block can be late).

    The callback hands the host block n and plays its block n - depth: at normal
    priority the host must be scheduled within depth periods of being woken,
    which a busy machine does not promise. ``EARMARK_HOST_RTPRIO`` sets the
    SCHED_FIFO priority (0: normal scheduling).
    """
    priority = int(_setting("EARMARK_HOST_RTPRIO", _HOST_RTPRIO))
    if priority <= 0 or not hasattr(os, "sched_setscheduler"):
        return None
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except OSError as exc:
        return (
            f"isolated host at normal priority (real-time priority {priority} not allowed: "
            f"{exc.strerror}); blocks may be late on a busy machine"
        )
    return None


def _edit(chain: Any, values: list[dict[str, float]], message: tuple) -> tuple:
    """Apply one edit request to the host's chain; the reply for the parent."""
    try:
        result = touched = None
        if message[0] == "param":
            chain.set_parameter(*message[1:])
            touched = message[1]
        elif message[0] == "bypass":
            chain.set_bypass(*message[1:])
            touched = -1  # no value changed
        elif message[0] == "add":
            chain.add(*message[1:])
        elif message[0] == "remove":
            result = chain.remove(*message[1:])
        else:
            raise ValueError(f"unknown request {message[0]!r}")
        info = _host_info(chain, values, touched)
        return ("ok", chain.spec, int(chain.latency_samples), result, info)
    except Exception as exc:
        return ("error", exc)


# While a plugin loads beside the host's loop, the loop gets the GIL back this soon.
_BUILD_SWITCH_S = 0.0002


def _build_beside(
    conn: Connection, chain: Any, values: list[dict[str, float]], message: tuple
) -> None:
    """A thread: ``add`` a plugin at normal priority (the host's loop keeps its real-time
    one) and with short GIL turns, then send the reply."""
    switch = sys.getswitchinterval()
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))  # this thread only
    sys.setswitchinterval(_BUILD_SWITCH_S)
    try:
        reply = _edit(chain, values, message)
    finally:
        sys.setswitchinterval(switch)
    with contextlib.suppress(OSError, ValueError):
        conn.send(reply)


def _run_block(chain: Any, x: np.ndarray, y: np.ndarray) -> bool:
    """y = chain(x); False (and y silent) when the chain raised or returned anything
    but a float32 array of x's shape, which the host would otherwise die of."""
    try:
        out = chain.process(x)
        if isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == x.shape:
            y[:] = out
            return True
    except Exception:  # the host must outlive any fault of its chain
        pass
    y[:] = 0.0
    return False


def _host_main(conn_fd: int, wake_fd: int) -> None:
    """The host: build the chain, then process submitted blocks until told to quit."""
    import select

    from .chains import build_chain

    ignore_stop_signals()  # the session stops its hosts in order, after the audio
    conn = Connection(conn_fd)
    spec, sample_rate, channels, max_block, shm_name = conn.recv()
    try:
        chain = build_chain(spec, sample_rate, channels)
    except Exception as exc:
        conn.send(("error", exc))
        return
    shm = shared_memory.SharedMemory(name=shm_name)
    # The parent owns the segment: this process must not unlink it at exit.
    with contextlib.suppress(Exception):
        from multiprocessing import resource_tracker

        resource_tracker.unregister(shm._name, "shared_memory")  # type: ignore[attr-defined]
    x, y, ctrl = abi.isolated_views(shm.buf, max_block, channels)
    if ctrl[ISO_VERSION] != LAYOUT_VERSION:  # another earmark's layout: never misread it
        del x, y, ctrl
        shm.close()
        # A built-in error: the host runs as __main__, whose classes the parent cannot load.
        conn.send(("error", RuntimeError("the parent's shared memory has another layout")))
        return
    y[:] = 0.0
    done = int(ctrl[ISO_SUBMITTED])  # a restarted host skips what was submitted before it
    ctrl[ISO_DONE] = done
    warnings = list(chain.warnings)
    priority = realtime_host()
    if priority is not None:
        warnings.append(priority)
    huge_pages(False)  # no khugepaged stalls in this process either (childproc.huge_pages)
    gc.collect()  # a collection pause in the loop below would make a block late
    gc.freeze()
    gc.disable()
    values: list[dict[str, float]] = []
    silenced = 0  # blocks the chain failed to return (see _run_block)
    info = _host_info(chain, values, None)
    conn.send(("ready", int(chain.latency_samples), warnings, chain.spec, info))
    try:
        while True:
            ready, _, _ = select.select([wake_fd, conn_fd], [], [], 1.0)
            if wake_fd in ready:
                try:
                    if not os.read(wake_fd, 4096):
                        return  # the parent closed the pipe (or died)
                except BlockingIOError:  # an eventfd drained between select and read
                    pass
            while done < ctrl[ISO_SUBMITTED]:
                done += 1
                slot = done % ISO_SLOTS
                n = int(ctrl[ISO_FRAMES + slot])
                if not _run_block(chain, x[slot, :n], y[slot, :n]):
                    silenced += 1
                ctrl[ISO_NONFINITE] = chain.nonfinite_blocks
                ctrl[ISO_ERRORS] = chain.error_blocks + silenced
                ctrl[ISO_DONE] = done
            if conn_fd in ready:
                message = conn.recv()
                if message[0] == "quit":
                    return
                if message[0] == "add":
                    # Loading a plugin takes from milliseconds to minutes: build it
                    # beside this loop, which keeps the path playing meanwhile. The
                    # parent waits for this reply before it sends anything else.
                    threading.Thread(
                        target=_build_beside, args=(conn, chain, values, message), daemon=True
                    ).start()
                else:
                    conn.send(_edit(chain, values, message))
    except (EOFError, OSError, KeyboardInterrupt):
        return
    finally:
        del x, y, ctrl
        shm.close()


if __name__ == "__main__":
    _host_main(int(sys.argv[1]), int(sys.argv[2]))  # CONN_FD WAKE_FD (see childproc)
