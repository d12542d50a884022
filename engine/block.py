"""The audio block, written once in machine code for both callbacks.

One block of the engine, from its plan (``Engine.plan``, laid out in ``engine.abi``):

    start:  xruns, block size, a seek request; per path its source (a player, live
            input) and its isolated chain's exchange
    [the Python callback only: sources and chains that are Python objects]
    finish: per path the guard (NaN/Inf, absurd levels), alignment delay, meter feed
    [the Python callback only: meters run in the callback]
    end:    transport, A/B mix, codec monitor, output guard, tap, timing, counters

:func:`run` is :func:`start`, :func:`finish` and :func:`end` in a row: the native
callback (``engine.native``) hands PortAudio a cfunc that calls it without the
GIL. ``Engine.process``, the Python callback, calls the same three functions
with its Python work between them. Hence both callbacks play the same bits
and count the same xruns, late and muted blocks; ``tests/test_native.py``
holds them to it.

Every stage works from the plan (addresses and sizes in one int64 array) and
the arrays the caller hands it: it allocates nothing, takes no lock, makes no
system call but the isolated host's wake-up (one eventfd write) and never
touches a Python object.
"""

from __future__ import annotations

import time

import numba as nb
import numpy as np
from numba import types as T
from numba.extending import intrinsic

from earmark.meters import jitcache

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
    CHAIN_ISOLATED,
    CODEC_ARTEFACTS,
    CODEC_CLEAN,
    CODEC_OFF,
    CODEC_ON,
    E_A,
    E_B,
    E_BLOCK,
    E_CALLBACKS,
    E_COUNT,
    E_XRUNS,
    FAULT_NONE,
    G_CLOCK,
    G_CODEC,
    G_COUNT,
    G_COUNTERS,
    G_GUARD,
    G_IN_CH,
    G_MAX_BLOCK,
    G_MX,
    G_OUT_CH,
    G_PATHS,
    G_SIZE,
    G_STARTS,
    G_TAP,
    G_TAP_POS,
    G_TAP_ROWS,
    G_TIMINGS,
    G_TRANSPORT,
    G_VERSION,
    G_XRUN_RING,
    H_CHANNELS,
    H_COUNT,
    H_CTRL,
    H_DEPTH,
    H_MAX_BLOCK,
    H_ONE,
    H_OUT,
    H_STATE,
    H_X,
    H_Y,
    I_COUNT,
    I_DEAD,
    I_DEAD_BLOCKS,
    I_LATE,
    I_SEQ,
    I_WAKE,
    ISO_CTRL,
    ISO_DONE,
    ISO_FRAMES,
    ISO_SLOTS,
    ISO_SUBMITTED,
    LAYOUT_VERSION,
    O_COUNT,
    P_COUNT,
    P_DELAY,
    P_FAULT,
    P_NONFINITE,
    P_RING_ADDR,
    P_RING_POS,
    P_RING_ROWS,
    R_BUF,
    R_CHAIN,
    R_CHANNELS,
    R_CHANNELS_COUNT,
    R_COUNT,
    R_DATA,
    R_DATA_CH,
    R_DATA_ROWS,
    R_EXCHANGE,
    R_FED,
    R_FEED,
    R_FEED_ROWS,
    R_OUT,
    R_SOURCE,
    R_ST,
    SOURCE_INPUT,
    SOURCE_PLAYER,
    SOURCE_PYTHON,
    SOURCE_SILENCE,
    T_COUNT,
    T_LENGTH,
    T_LOOP,
    T_PLAYING,
    T_POS,
    T_SEEK_DONE,
    T_SEEK_SEQ,
    T_SEEK_TO,
    TIMING_RING,
    X_COUNT,
    X_POS,
    XRUN_RING,
)

__all__ = [
    "NO_INPUT",
    "advance",
    "codec_stage",
    "end",
    "exchange",
    "finish",
    "read_input",
    "read_player",
    "run",
    "start",
    "warm_up",
]


def _cache_probe() -> None:
    """Locates this module's numba cache for ``jitcache.drop_stale``."""


# The stages compile in rt's kernels and abi's field numbers; numba's cache alone would
# not see those files change.
jitcache.drop_stale(_cache_probe, [rt.__file__, abi.__file__])

# The input of a stream that has none, as the stages take it: no channels.
NO_INPUT = np.zeros((0, 0), dtype=np.float32)

# What time.perf_counter_ns reads on Linux, so that both callbacks' start times compare
# with each other and with another process's (bench/realtime.py).
_CLOCK_MONOTONIC = getattr(time, "CLOCK_MONOTONIC", 1)


def _pointer_to(dtype: T.Type):
    @intrinsic
    def cast(typingctx, address):
        if not isinstance(address, T.Integer):
            return None
        sig = T.CPointer(dtype)(address)

        def codegen(context, builder, signature, args):
            return builder.inttoptr(args[0], context.get_value_type(signature.return_type))

        return sig, codegen

    return cast


_f32 = _pointer_to(T.float32)
_i64 = _pointer_to(T.int64)
_f64 = _pointer_to(T.float64)
_u8 = _pointer_to(T.uint8)


@intrinsic
def _fence(typingctx):
    """A full memory fence: what was written before is visible before what follows."""

    def codegen(context, builder, signature, args):
        builder.fence("seq_cst")
        return context.get_dummy_value()

    return T.void(), codegen


_clock_gettime = nb.types.ExternalFunction("clock_gettime", T.int32(T.int32, T.CPointer(T.int64)))
_write = nb.types.ExternalFunction("write", T.int64(T.int32, T.CPointer(T.uint8), T.uint64))


@nb.njit(nogil=True, cache=True)
def _rows(address: int, rows: int, channels: int) -> np.ndarray:
    """The float32 (rows, channels) array at ``address``."""
    return nb.carray(_f32(address), (rows, channels))


@nb.njit(nogil=True, cache=True)
def _ints(address: int, size: int) -> np.ndarray:
    """The int64 array of ``size`` at ``address``."""
    return nb.carray(_i64(address), (size,))


@nb.njit(nogil=True, cache=True)
def _now_ns(table: np.ndarray) -> int:
    """CLOCK_MONOTONIC in ns (time.perf_counter_ns on Linux), through the table's timespec."""
    ts = _ints(table[G_CLOCK], 2)
    _clock_gettime(_CLOCK_MONOTONIC, ts.ctypes)
    return ts[0] * 1_000_000_000 + ts[1]


# -- the stages ------------------------------------------------------------------------------


@nb.njit(nogil=True, cache=True)
def _row(plan: np.ndarray, k: int) -> np.ndarray:
    """Path k's row of the plan (abi.R_*)."""
    return plan[G_COUNT + k * R_COUNT : G_COUNT + (k + 1) * R_COUNT]


@nb.njit(nogil=True, cache=True)
def start(plan: np.ndarray, indata: np.ndarray, outdata: np.ndarray, n: int, status: int) -> bool:
    """Start a block from the plan (``abi.G_*``, ``abi.R_*``): count an xrun (``status``
    non-zero), record the block size, apply a requested seek, then read every path's
    source the block reads itself (players, live input from ``indata``) into its
    buffer and exchange it with its isolated chain, if any. Paths whose source or chain
    is the Python callback's (SOURCE_PYTHON, CHAIN_PYTHON) are left to it.

    False (and ``outdata`` silent) for a block larger than the engine's buffers: never
    expected, fail safe.
    """
    c = _ints(plan[G_COUNTERS], E_COUNT)
    if status != 0:
        xrun_ring = _ints(plan[G_XRUN_RING], XRUN_RING)
        xrun_ring[c[E_XRUNS] & (XRUN_RING - 1)] = c[E_CALLBACKS]
        c[E_XRUNS] += 1
    c[E_BLOCK] = n
    if n > plan[G_MAX_BLOCK]:
        outdata[:, :] = 0.0
        return False
    transport = _ints(plan[G_TRANSPORT], T_COUNT)
    seek = transport[T_SEEK_SEQ]
    if seek != transport[T_SEEK_DONE]:
        transport[T_POS] = transport[T_SEEK_TO]
        transport[T_SEEK_DONE] = seek
    for k in range(plan[G_PATHS]):
        row = _row(plan, k)
        buf = _rows(row[R_BUF], n, 2)
        kind = row[R_SOURCE]
        if kind == SOURCE_PLAYER:
            read_player(_rows(row[R_DATA], row[R_DATA_ROWS], row[R_DATA_CH]), transport, n, buf)
        elif kind == SOURCE_INPUT:
            read_input(indata, _ints(row[R_CHANNELS], row[R_CHANNELS_COUNT]), n, buf)
        elif kind == SOURCE_SILENCE:
            buf[:, :] = 0.0
        if kind != SOURCE_PYTHON and row[R_CHAIN] == CHAIN_ISOLATED:
            exchange(_ints(row[R_EXCHANGE], H_COUNT), buf, n)
    return True


@nb.njit(nogil=True, cache=True)
def read_player(data: np.ndarray, transport: np.ndarray, n: int, out: np.ndarray) -> None:
    """A player's source read: ``data`` (frames, 1 or 2) at the transport's position
    (``abi.T_*``) into ``out[:n]``, looping or padded; silence while stopped."""
    if transport[T_PLAYING] != 0:
        rt.read_loop(data, transport[T_POS], n, transport[T_LOOP] != 0, out)
    else:
        out[:n, :] = 0.0


@nb.njit(nogil=True, cache=True)
def read_input(indata: np.ndarray, channels: np.ndarray, n: int, out: np.ndarray) -> None:
    """Live input's source read: ``channels`` (one or two; one plays on both sides) of
    ``indata`` into ``out[:n]``; silence when the stream lacks one of them."""
    if indata.shape[1] <= channels.max():
        out[:n, :] = 0.0
    else:
        rt.copy_input(indata, channels, n, out)


@nb.njit(nogil=True, cache=True)
def exchange(table: np.ndarray, x: np.ndarray, n: int) -> np.ndarray:
    """An isolated chain's handshake (its exchange table, ``abi.H_*``): hand block ``seq``
    (``x[:n]``) to the host and wake it, return its output for block ``seq - depth``
    in the first n rows (silence, counted late or dead, when it is not done).

    Never waits: the wake-up is one eventfd increment (a non-blocking pipe write).
    """
    max_block = table[H_MAX_BLOCK]
    channels = table[H_CHANNELS]
    st = _ints(table[H_STATE], I_COUNT)
    if n > max_block:  # larger than the host's ring slots: silence, never written past them
        st[I_LATE] += 1
        x[:n, :] = 0.0
        return x
    xs = nb.carray(_f32(table[H_X]), (ISO_SLOTS, max_block, channels))
    ys = nb.carray(_f32(table[H_Y]), (ISO_SLOTS, max_block, channels))
    ctrl = _ints(table[H_CTRL], ISO_CTRL)
    out = _rows(table[H_OUT], max_block, channels)
    seq = st[I_SEQ]
    slot = seq % ISO_SLOTS
    for i in range(n):
        for c in range(channels):
            xs[slot, i, c] = x[i, c]
    ctrl[ISO_FRAMES + slot] = n
    _fence()  # the host must see the block before the number that announces it
    ctrl[ISO_SUBMITTED] = seq
    wake = st[I_WAKE]
    if st[I_DEAD] == 0 and wake >= 0:
        # Never blocks; a full pipe (a stuck host) or a closed one only makes it late.
        _write(np.int32(wake), _u8(np.int64(table.ctypes.data) + 8 * H_ONE), 8)
    st[I_SEQ] = seq + 1
    prev = seq - table[H_DEPTH]
    if prev >= 0 and ctrl[ISO_DONE] >= prev and ctrl[ISO_FRAMES + prev % ISO_SLOTS] == n:
        _fence()  # the block the done number announces, not an older one
        done = prev % ISO_SLOTS
        for i in range(n):
            for c in range(channels):
                out[i, c] = ys[done, i, c]
    else:
        out[:n, :] = 0.0
        if prev >= 0:
            if st[I_DEAD] != 0:
                st[I_DEAD_BLOCKS] += 1
            else:
                st[I_LATE] += 1
    return out


@nb.njit(nogil=True, cache=True)
def _chain_output(row: np.ndarray, n: int) -> np.ndarray:
    """What path's chain made of its block: an isolated chain's returned block, else the
    path's buffer (the source's block, or what the Python callback put there)."""
    if row[R_CHAIN] == CHAIN_ISOLATED and row[R_SOURCE] != SOURCE_PYTHON:
        table = _ints(row[R_EXCHANGE], H_COUNT)
        if n <= table[H_MAX_BLOCK]:  # else exchange silenced the buffer
            return _rows(table[H_OUT], n, 2)
    return _rows(row[R_BUF], n, 2)


@nb.njit(nogil=True, cache=True)
def finish(plan: np.ndarray, n: int, feed: bool) -> None:
    """Every path's block after its chain: guard it (NaN/Inf or absurd levels: silence,
    counted in P_NONFINITE), delay it to the slowest path into the path's output, and
    append that to its meter feed (``feed``; else the caller meters the outputs)."""
    for k in range(plan[G_PATHS]):
        row = _row(plan, k)
        y = _chain_output(row, n)
        st = _ints(row[R_ST], P_COUNT)
        fault = rt.guard_path(y, n, rt.ABSURD_LEVEL)
        if fault != FAULT_NONE:
            st[P_NONFINITE] += 1
            st[P_FAULT] = fault
        # The delay line's address before its length: a replaced line only grows.
        ring_rows = st[P_RING_ROWS]
        ring = _rows(st[P_RING_ADDR], ring_rows, 2)
        samples = min(st[P_DELAY], ring_rows - 1)
        pos = st[P_RING_POS] if st[P_RING_POS] < ring_rows else 0
        out = _rows(row[R_OUT], n, 2)
        st[P_RING_POS] = rt.delay(y, n, ring, pos, samples, out)
        if feed:
            fed = _ints(row[R_FED], 1)
            rt.ring_write(out, n, _rows(row[R_FEED], row[R_FEED_ROWS], 2), fed)


@nb.njit(nogil=True, cache=True)
def advance(transport: np.ndarray, n: int) -> None:
    """Move a playing transport (``abi.T_*``) on by n frames, looping at its length."""
    if transport[T_PLAYING] == 0:
        return
    pos = transport[T_POS] + n
    if transport[T_LOOP] != 0 and transport[T_LENGTH] > 0 and pos >= transport[T_LENGTH]:
        pos %= transport[T_LENGTH]
    transport[T_POS] = pos


@nb.njit(nogil=True, cache=True)
def end(plan: np.ndarray, outdata: np.ndarray, n: int, t0_ns: int) -> None:
    """Finish a block: advance the transport, mix A and B (the compared paths' outputs)
    into ``outdata``, through the codec monitor (if any) and the output guard (the last
    stage: nothing after it touches what the device plays), tap A and B, record the
    callback's start ``t0_ns`` and duration, count it."""
    advance(_ints(plan[G_TRANSPORT], T_COUNT), n)
    c = _ints(plan[G_COUNTERS], E_COUNT)
    a = _rows(_row(plan, c[E_A])[R_OUT], n, 2)
    b = _rows(_row(plan, c[E_B])[R_OUT], n, 2)
    mx = nb.carray(_f64(plan[G_MX]), (X_COUNT,))
    rt.mix_ab(a, b, outdata, n, mx)
    if plan[G_CODEC] != 0:
        codec_stage(_ints(plan[G_CODEC], C_COUNT), outdata, n)
    og = nb.carray(_f64(plan[G_GUARD]), (O_COUNT,))
    rt.guard_output(outdata, n, a, b, c[E_A], c[E_B], mx[X_POS] > 0.5, og)
    tap = _rows(plan[G_TAP], plan[G_TAP_ROWS], 4)
    rt.tap_pair(a, b, n, tap, _ints(plan[G_TAP_POS], 2))
    slot = c[E_CALLBACKS] & (TIMING_RING - 1)
    _ints(plan[G_STARTS], TIMING_RING)[slot] = t0_ns
    _ints(plan[G_TIMINGS], TIMING_RING)[slot] = _now_ns(plan) - t0_ns
    c[E_CALLBACKS] += 1


@nb.njit(nogil=True, cache=True)
def codec_stage(table: np.ndarray, outdata: np.ndarray, n: int) -> None:
    """The codec monitor (its table, ``abi.C_*``): hand the mix in ``outdata[:n]`` to the
    codec host (an isolated exchange, ``depth`` blocks behind), delay the clean mix by
    the host's whole delay, and play what the mode (``abi.CODEC_*``) asks for: the mix
    as it was (OFF), the delayed mix (CLEAN), the decoded stream (ON) or the decoded
    stream minus the delayed mix (ARTEFACTS). The host runs in every mode, so a switch
    between CLEAN, ON and ARTEFACTS is seamless.

    A block the host had not finished (late, dead) or returned non-finite or absurd
    plays the delayed clean mix instead (silence in ARTEFACTS), counted in C_FALLBACKS:
    never garbage.
    """
    ex = _ints(table[C_EXCHANGE], H_COUNT)
    if n > ex[H_MAX_BLOCK]:
        return  # larger than the host's slots: the mix plays as it is
    x = _rows(table[C_X], n, 2)
    out_ch = outdata.shape[1]
    for i in range(n):
        x[i, 0] = outdata[i, 0]
        x[i, 1] = outdata[i, 1] if out_ch > 1 else outdata[i, 0]
    st = _ints(ex[H_STATE], I_COUNT)
    missed = st[I_LATE] + st[I_DEAD_BLOCKS]
    y = exchange(ex, x, n)
    bad = st[I_LATE] + st[I_DEAD_BLOCKS] != missed
    if rt.guard_path(y, n, rt.ABSURD_LEVEL) != FAULT_NONE:
        bad = True
    ring_rows = table[C_RING_ROWS]
    ring = _rows(table[C_RING], ring_rows, 2)
    clean = _rows(table[C_CLEAN], n, 2)
    samples = min(table[C_DELAY], ring_rows - 1)
    table[C_RING_POS] = rt.delay(x, n, ring, table[C_RING_POS], samples, clean)
    table[C_BLOCKS] += 1
    mode = table[C_MODE]
    if mode == CODEC_OFF:
        return
    # A block the host did not deliver: the delayed clean mix while the decoded stream is
    # heard, silence while only the artefacts are (the whole mix there would jump 20 dB
    # or more above what the listener is hearing).
    quiet = False
    if bad and mode != CODEC_CLEAN:
        table[C_FALLBACKS] += 1
        quiet = mode == CODEC_ARTEFACTS
        mode = CODEC_CLEAN
    for i in range(n):
        left = clean[i, 0]
        right = clean[i, 1]
        if mode == CODEC_ON:
            left = y[i, 0]
            right = y[i, 1]
        elif mode == CODEC_ARTEFACTS:
            left = y[i, 0] - left
            right = y[i, 1] - right
        if quiet:
            left = 0.0
            right = 0.0
        if out_ch > 1:
            outdata[i, 0] = left
            outdata[i, 1] = right
        else:
            outdata[i, 0] = 0.5 * (left + right)


# -- the whole block -----------------------------------------------------------------------------


@nb.njit(nogil=True, cache=True)
def run(inp_address: int, out_address: int, n: int, status: int, plan_address: int) -> None:
    """One whole block from the plan at ``plan_address`` when every path's source and
    chain are the block's own (no SOURCE_PYTHON, no CHAIN_PYTHON): what the native
    callback runs. Input and output are interleaved float32 at the given addresses
    (input 0: none)."""
    plan = _ints(plan_address, _ints(plan_address, G_SIZE + 1)[G_SIZE])
    t0 = _now_ns(plan)
    outdata = _rows(out_address, n, plan[G_OUT_CH])
    if plan[G_VERSION] != LAYOUT_VERSION:  # a plan from other code: play nothing
        outdata[:, :] = 0.0
        return
    indata = _rows(inp_address, n, plan[G_IN_CH] if inp_address != 0 else 0)
    if start(plan, indata, outdata, n, status):
        finish(plan, n, True)
        end(plan, outdata, n, t0)


def warm_up() -> None:
    """Load the stages' machine code for the Python callback's argument types now: a
    first call would compile or load it with the GIL held, in the first callback. Every
    array the engine passes is C-contiguous, float32 (frames, channels) or int64."""
    ints, block = T.int64[::1], T.float32[:, ::1]
    start.compile((ints, block, block, T.int64, T.int64))
    finish.compile((ints, T.int64, T.boolean))
    end.compile((ints, block, T.int64, T.int64))
    read_player.compile((block, ints, T.int64, block))
    read_input.compile((block, ints, T.int64, block))
    exchange.compile((ints, block, T.int64))
    codec_stage.compile((ints, block, T.int64))
    advance.compile((ints, T.int64))
