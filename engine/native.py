"""The GIL-free audio callback: the engine's block in machine code, handed to PortAudio.

A Python callback (sounddevice's cffi wrapper around ``Engine.process``) must
take the GIL before it can start. When another thread of the audio process
holds it in one long C call (a pickle, a JSON dump, an SQLite query) the
callback starts late however short it is: ``bench/gil.py`` measured a Python
copy callback running 5 % of its blocks beside such a call, and a numba
``cfunc`` given to ``Pa_OpenStream`` 100 %.

:data:`callback` is that ``cfunc``. It runs the same block as
``Engine.process``, from the same arrays, through the same ``engine.rt``
kernels:

    sources -> isolated chains -> path guard (NaN/Inf, absurd levels) -> alignment
            delay -> meter feed -> A/B mix (loudness match, crossfade, monitor)
            -> output guard -> tap -> counters

and never touches a Python object. A :class:`NativePlan` is one int64 array
of addresses and sizes that the callback receives as PortAudio's
``userData``: the engine's counters, mix state, tap and timing rings, and per
path its source (live input channels, or a player's samples), its isolated
chain's shared memory, delay line and meter feed. The Python objects keep
those values in int64 arrays (``rt.Slot``), so ``engine.callbacks``,
``path.nonfinite_blocks``, ``transport.pos`` and the rest read the same
whichever callback runs.

What runs natively: every path's chain is none or an ``IsolatedChain`` (a
chain in its own process, exchanged through shared memory: pedalboard needs
the GIL, its host process has its own). :func:`unsupported` says why an engine
cannot. Commands do not queue: ``Engine.post`` applies them at once from the
posting thread, to values the callback reads at its next block boundary
(targets the mix kernel smooths, the alignment delay, a seek request).
"""

from __future__ import annotations

import ctypes
import time

import numba as nb
import numpy as np
from numba import types as T
from numba.extending import intrinsic

from earmark.meters import jitcache

from . import engine as _engine_module
from . import isolated as _isolated_module
from . import rt
from . import sources as _sources_module
from .engine import (
    _TIMING_RING,
    _XRUN_RING,
    E_A,
    E_B,
    E_BLOCK,
    E_CALLBACKS,
    E_XRUNS,
    P_COUNT,
    P_DELAY,
    P_FAULT,
    P_NONFINITE,
    P_RING_ADDR,
    P_RING_POS,
    P_RING_ROWS,
    Engine,
)
from .isolated import (
    _CTRL,
    _DONE,
    _FRAMES,
    _SLOTS,
    _SUBMITTED,
    I_DEAD,
    I_DEAD_BLOCKS,
    I_LATE,
    I_SEQ,
    I_WAKE,
    IsolatedChain,
)
from .sources import (
    T_LENGTH,
    T_LOOP,
    T_PLAYING,
    T_POS,
    T_SEEK_DONE,
    T_SEEK_SEQ,
    T_SEEK_TO,
    LiveInput,
    Player,
)

__all__ = ["NativePlan", "callback", "unsupported"]


def _cache_probe() -> None:
    """Locates this module's numba cache for ``jitcache.drop_stale``."""


# The block below compiles in rt's kernels and the slot constants of engine,
# isolated and sources; numba's cache alone would not see those files change.
jitcache.drop_stale(
    _cache_probe,
    [m.__file__ for m in (rt, _engine_module, _isolated_module, _sources_module)],
)

# The plan: G_* fields, then one row of R_* fields per path.
(
    G_SIZE, G_PATHS, G_IN_CH, G_OUT_CH, G_MAX_BLOCK, G_COUNTERS, G_XRUN_RING, G_TIMINGS,
    G_STARTS, G_MX, G_TAP, G_TAP_ROWS, G_TAP_POS, G_TRANSPORT, G_SCRATCH, G_GUARD, G_COUNT,
) = range(17)  # fmt: skip
(
    R_SOURCE, R_CH0, R_CH1, R_DATA, R_DATA_ROWS, R_DATA_CH, R_BUF, R_OUT, R_ST, R_FEED,
    R_FEED_ROWS, R_FED, R_CHAIN, R_ISO_X, R_ISO_Y, R_ISO_CTRL, R_ISO_STATE, R_ISO_OUT,
    R_ISO_DEPTH, R_ISO_MAX_BLOCK, R_COUNT,
) = range(21)  # fmt: skip
SOURCE_SILENCE, SOURCE_INPUT, SOURCE_PLAYER = 0, 1, 2
CHAIN_NONE, CHAIN_ISOLATED = 0, 1
# PortAudio's frameCount and statusFlags are C ``unsigned long``s.
_ULONG = T.uint64 if ctypes.sizeof(ctypes.c_ulong) == 8 else T.uint32
# What time.perf_counter_ns reads on Linux (so the callback's start times compare with
# another process's; bench/realtime.py).
_CLOCK_MONOTONIC = getattr(time, "CLOCK_MONOTONIC", 1)
_PA_CONTINUE = 0


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
def _now_ns(ts: np.ndarray) -> int:
    _clock_gettime(_CLOCK_MONOTONIC, ts.ctypes)
    return ts[0] * 1_000_000_000 + ts[1]


@nb.njit(nogil=True, cache=True)
def _rows(address: int, rows: int, channels: int) -> np.ndarray:
    return nb.carray(_f32(address), (rows, channels))


@nb.njit(nogil=True, cache=True)
def _isolated(row: np.ndarray, x: np.ndarray, n: int, scratch: np.ndarray) -> np.ndarray:
    """IsolatedChain.process: hand block seq to the host, return block seq - depth."""
    max_block = row[R_ISO_MAX_BLOCK]
    if n > max_block:  # larger than the host's ring slots: silence, never written past them
        nb.carray(_i64(row[R_ISO_STATE]), (I_WAKE + 1,))[I_LATE] += 1
        x[:n, :] = 0.0
        return x
    xs = nb.carray(_f32(row[R_ISO_X]), (_SLOTS, max_block, 2))
    ys = nb.carray(_f32(row[R_ISO_Y]), (_SLOTS, max_block, 2))
    ctrl = nb.carray(_i64(row[R_ISO_CTRL]), (_CTRL,))
    st = nb.carray(_i64(row[R_ISO_STATE]), (I_WAKE + 1,))
    out = _rows(row[R_ISO_OUT], max_block, 2)
    seq = st[I_SEQ]
    slot = seq % _SLOTS
    for i in range(n):
        xs[slot, i, 0] = x[i, 0]
        xs[slot, i, 1] = x[i, 1]
    ctrl[_FRAMES + slot] = n
    _fence()  # the host must see the block before the number that announces it
    ctrl[_SUBMITTED] = seq
    wake = st[I_WAKE]
    if st[I_DEAD] == 0 and wake >= 0:
        # Never blocks: an eventfd's increment (a pipe's write where there is none).
        _write(np.int32(wake), _u8(np.int64(scratch.ctypes.data) + 16), 8)
    st[I_SEQ] = seq + 1
    prev = seq - row[R_ISO_DEPTH]
    if prev >= 0 and ctrl[_DONE] >= prev and ctrl[_FRAMES + prev % _SLOTS] == n:
        _fence()
        done = prev % _SLOTS
        for i in range(n):
            out[i, 0] = ys[done, i, 0]
            out[i, 1] = ys[done, i, 1]
    else:
        for i in range(n):
            out[i, 0] = 0.0
            out[i, 1] = 0.0
        if prev >= 0:
            if st[I_DEAD] != 0:
                st[I_DEAD_BLOCKS] += 1
            else:
                st[I_LATE] += 1
    return out


@nb.njit(nogil=True, cache=True)
def _block(inp_address: int, out_address: int, n: int, status: int, plan: np.ndarray) -> None:
    """One block of ``Engine.process`` (see the module docstring), from the plan's arrays."""
    scratch = nb.carray(_i64(plan[G_SCRATCH]), (3,))
    t0 = _now_ns(scratch)
    c = nb.carray(_i64(plan[G_COUNTERS]), (E_B + 1,))
    if status != 0:
        xrun_ring = nb.carray(_i64(plan[G_XRUN_RING]), (_XRUN_RING,))
        xrun_ring[c[E_XRUNS] & (_XRUN_RING - 1)] = c[E_CALLBACKS]
        c[E_XRUNS] += 1
    out_ch = plan[G_OUT_CH]
    outdata = _rows(out_address, n, out_ch)
    max_block = plan[G_MAX_BLOCK]
    c[E_BLOCK] = n
    if n > max_block:  # never expected; fail safe
        outdata[:, :] = 0.0
        return
    in_ch = plan[G_IN_CH]
    tr = nb.carray(_i64(plan[G_TRANSPORT]), (T_SEEK_DONE + 1,))
    seek = tr[T_SEEK_SEQ]
    if seek != tr[T_SEEK_DONE]:
        tr[T_POS] = tr[T_SEEK_TO]
        tr[T_SEEK_DONE] = seek
    playing = tr[T_PLAYING] != 0
    paths = plan[G_PATHS]
    for k in range(paths):
        row = plan[G_COUNT + k * R_COUNT : G_COUNT + (k + 1) * R_COUNT]
        buf = _rows(row[R_BUF], max_block, 2)
        kind = row[R_SOURCE]
        if kind == SOURCE_PLAYER and playing:
            data = _rows(row[R_DATA], row[R_DATA_ROWS], row[R_DATA_CH])
            rt.read_loop(data, tr[T_POS], n, tr[T_LOOP] != 0, buf)
        elif kind == SOURCE_INPUT and in_ch > max(row[R_CH0], row[R_CH1]):
            inp = _rows(inp_address, n, in_ch)
            c0, c1 = row[R_CH0], row[R_CH1]
            for i in range(n):
                buf[i, 0] = inp[i, c0]
                buf[i, 1] = inp[i, c1]
        else:
            buf[:n, :] = 0.0
        st = nb.carray(_i64(row[R_ST]), (P_COUNT,))
        y = buf
        if row[R_CHAIN] == CHAIN_ISOLATED:
            y = _isolated(row, buf, n, scratch)
        fault = rt.guard_path(y, n, rt.ABSURD_LEVEL)
        if fault != rt.FAULT_NONE:
            st[P_NONFINITE] += 1
            st[P_FAULT] = fault
        # The delay line's address before its length: a replaced line only grows.
        ring_rows = st[P_RING_ROWS]
        ring = _rows(st[P_RING_ADDR], ring_rows, 2)
        samples = min(st[P_DELAY], ring_rows - 1)
        pos = st[P_RING_POS] if st[P_RING_POS] < ring_rows else 0
        out = _rows(row[R_OUT], max_block, 2)
        st[P_RING_POS] = rt.delay(y, n, ring, pos, samples, out)
        feed = _rows(row[R_FEED], row[R_FEED_ROWS], 2)
        rt.ring_write(out, n, feed, nb.carray(_i64(row[R_FED]), (1,)))
    if playing:
        pos = tr[T_POS] + n
        if tr[T_LOOP] != 0 and tr[T_LENGTH] > 0 and pos >= tr[T_LENGTH]:
            pos %= tr[T_LENGTH]
        tr[T_POS] = pos
    a_row = plan[G_COUNT + c[E_A] * R_COUNT : G_COUNT + (c[E_A] + 1) * R_COUNT]
    b_row = plan[G_COUNT + c[E_B] * R_COUNT : G_COUNT + (c[E_B] + 1) * R_COUNT]
    a_out = _rows(a_row[R_OUT], max_block, 2)
    b_out = _rows(b_row[R_OUT], max_block, 2)
    mx = nb.carray(_f64(plan[G_MX]), (rt.X_COUNT,))
    rt.mix_ab(a_out, b_out, outdata, n, mx)
    # The last stage: nothing after it touches what the device plays.
    og = nb.carray(_f64(plan[G_GUARD]), (rt.O_COUNT,))
    rt.guard_output(outdata, n, a_out, b_out, c[E_A], c[E_B], mx[rt.X_POS] > 0.5, og)
    tap = _rows(plan[G_TAP], plan[G_TAP_ROWS], 4)
    rt.tap_pair(a_out, b_out, n, tap, nb.carray(_i64(plan[G_TAP_POS]), (2,)))
    slot = c[E_CALLBACKS] & (_TIMING_RING - 1)
    nb.carray(_i64(plan[G_STARTS]), (_TIMING_RING,))[slot] = t0
    nb.carray(_i64(plan[G_TIMINGS]), (_TIMING_RING,))[slot] = _now_ns(scratch) - t0
    c[E_CALLBACKS] += 1


@nb.cfunc(
    T.int32(
        T.int64,  # const void *input (interleaved float32), as an address
        T.int64,  # void *output
        _ULONG,  # unsigned long frameCount
        T.voidptr,  # const PaStreamCallbackTimeInfo *
        _ULONG,  # PaStreamCallbackFlags
        T.int64,  # void *userData: the plan's address
    ),
    nopython=True,
    cache=True,
)
def callback(inp, out, frames, _time_info, status, plan_address):  # pragma: no cover - audio
    """PortAudio's ``PaStreamCallback``: one block, no GIL (``userData`` is a plan)."""
    size = _i64(plan_address)[G_SIZE]
    _block(inp, out, np.int64(frames), np.int64(status), nb.carray(_i64(plan_address), (size,)))
    return _PA_CONTINUE


def unsupported(engine: Engine) -> str | None:
    """Why ``engine`` cannot run in the native callback, or None when it can."""
    for p in engine.paths:
        if not isinstance(p.source, LiveInput | Player):
            return f"path {p.name!r} plays a {type(p.source).__name__}"
        if p.chain is not None and not isinstance(p.chain, IsolatedChain):
            return (
                f"path {p.name!r} runs its chain in the audio process (pedalboard needs "
                "the GIL): isolate it"
            )
        if isinstance(p.chain, IsolatedChain) and p.chain.channels != 2:
            return f"path {p.name!r}'s isolated chain is not stereo"
    return None


class NativePlan:
    """The addresses and sizes the native callback works from (keeps the arrays alive).

    Args:
        engine: the engine whose block the callback runs (see :func:`unsupported`).
        in_channels: channels of the stream's input (0: output only).
        out_channels: channels of the stream's output.
    """

    def __init__(self, engine: Engine, in_channels: int, out_channels: int) -> None:
        reason = unsupported(engine)
        if reason is not None:
            raise ValueError(f"the native callback cannot run this engine: {reason}")
        self.engine = engine
        self.scratch = np.zeros(3, dtype=np.int64)  # a timespec, then the wake increment
        self.scratch[2] = 1
        plan = np.zeros(G_COUNT + R_COUNT * len(engine.paths), dtype=np.int64)
        plan[G_SIZE] = plan.shape[0]
        plan[G_PATHS] = len(engine.paths)
        plan[G_IN_CH] = in_channels
        plan[G_OUT_CH] = out_channels
        plan[G_MAX_BLOCK] = engine.max_block
        plan[G_TAP_ROWS] = engine._tap.shape[0]
        _addresses(
            plan,
            {
                G_COUNTERS: engine.counters,
                G_XRUN_RING: engine.xrun_callbacks,
                G_TIMINGS: engine.timings_ns,
                G_STARTS: engine.starts_ns,
                G_MX: engine._mx,
                G_TAP: engine._tap,
                G_TAP_POS: engine._tap_pos,
                G_TRANSPORT: engine.transport.state,
                G_SCRATCH: self.scratch,
                G_GUARD: engine._og,
            },
        )
        for k, p in enumerate(engine.paths):
            row = plan[G_COUNT + k * R_COUNT : G_COUNT + (k + 1) * R_COUNT]
            if isinstance(p.source, Player):
                data = p.source.data
                row[R_SOURCE] = SOURCE_PLAYER
                row[R_DATA] = _address(data)
                row[R_DATA_ROWS], row[R_DATA_CH] = data.shape
            else:
                channels = p.source.channels
                row[R_SOURCE] = SOURCE_INPUT
                row[R_CH0] = channels[0]
                row[R_CH1] = channels[1] if channels.shape[0] > 1 else channels[0]
            row[R_FEED_ROWS] = p._feed.shape[0]
            _addresses(
                row, {R_BUF: p._buf, R_OUT: p._out, R_ST: p._st, R_FEED: p._feed, R_FED: p._fed}
            )
            chain = p.chain
            if isinstance(chain, IsolatedChain):
                row[R_CHAIN] = CHAIN_ISOLATED
                _addresses(
                    row,
                    {
                        R_ISO_X: chain._x,
                        R_ISO_Y: chain._y,
                        R_ISO_CTRL: chain._ctrl,
                        R_ISO_STATE: chain.state,
                        R_ISO_OUT: chain._out,
                    },
                )
                row[R_ISO_DEPTH] = chain.depth
                row[R_ISO_MAX_BLOCK] = chain.max_block
        self.plan = plan
        self.address = _address(plan)

    def process(
        self, indata: np.ndarray | None, outdata: np.ndarray, frames: int, xrun: bool = False
    ) -> None:
        """Run one block through the native callback from Python (tests, offline)."""
        for a in (indata, outdata):
            if a is not None and not (a.dtype == np.float32 and a.flags.c_contiguous):
                raise ValueError("native blocks are C-contiguous float32 (frames, channels)")
        inp = 0 if indata is None else _address(indata)
        callback.ctypes(inp, _address(outdata), frames, None, int(xrun), self.address)


def _addresses(table: np.ndarray, arrays: dict[int, np.ndarray]) -> None:
    for field, array in arrays.items():
        table[field] = _address(array)


def _address(a: np.ndarray) -> int:
    if not a.flags.c_contiguous:
        raise ValueError("the native callback needs C-contiguous arrays")
    return int(a.ctypes.data)


def warm_up() -> None:
    """Load the callback's machine code now (numba compiles or loads it at import)."""
    ctypes.addressof(callback.ctypes)
