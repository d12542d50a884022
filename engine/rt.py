"""numba kernels for the audio callback: source copies, delay lines, the A/B mix and the monitor.

Everything here is ``@njit(cache=True, nogil=True)`` over arrays allocated once
by the engine; nothing allocates, and every gain change is smoothed per sample
so that no switch, match or monitor change clicks.

The A/B mix is an equal-power crossfade: gains cos(x*pi/2) and sin(x*pi/2)
with x moving linearly over the fade. Loudness-match gains and the monitor's
2x2 matrix (mono, L/R/M/S solo) and scalar gain (trim, dim, mute) follow their
targets through one-pole smoothers (time constant ``smooth_samples``).

Two guards keep garbage from the ears and the meters, in the audio block both
callbacks run (``engine.block``):

- :func:`guard_path` on every path's signal before it is delayed, metered and
  mixed: a block with a NaN/Inf sample or one beyond :data:`ABSURD_DBFS`
  becomes silence (no chain produces a hundred times full scale; a plugin
  reading memory it does not own does);
- :func:`guard_output` as the last stage of the block, on what goes to the
  device: a sample that is not finite or exceeds :data:`OUTPUT_CEILING_DBFS`
  mutes the output (what came before it in the block fades out over
  :data:`OUTPUT_RAMP_S`, it and everything after are silent) until
  :data:`OUTPUT_HOLD_S` of clean output has passed, then the output fades
  back in. Its state lives in the engine; no chain can reach it.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from earmark.meters import jitcache

from . import abi
from .abi import (
    FAULT_ABSURD,
    FAULT_NONE,
    FAULT_NONFINITE,
    O_CAUSE,
    O_CEILING,
    O_CLEAN,
    O_COUNT,
    O_GAIN,
    O_HOLD,
    O_LEVEL,
    O_MUTED,
    O_SOURCE,
    O_STEP,
    O_TRIPS,
    X_COUNT,
    X_GAIN_A,
    X_GAIN_A_TARGET,
    X_GAIN_B,
    X_GAIN_B_TARGET,
    X_M,
    X_M_TARGET,
    X_OUT_GAIN,
    X_OUT_GAIN_TARGET,
    X_POS,
    X_SMOOTH,
    X_STEP,
    X_TARGET,
)


def _cache_probe() -> None:
    """Locates this module's numba cache for ``jitcache.drop_stale``."""


# The kernels compile in abi's field numbers; numba's cache alone would not see it change.
jitcache.drop_stale(_cache_probe, [abi.__file__])

# Block sizes the engine and an isolated host accept (frames). pedalboard guesses
# whether an array is (frames, channels) or (channels, frames) from its shape, and
# blocks of about as many frames as channels defeat the guess: at 1 or 2 frames a
# stereo chain returned (frames, 0) arrays. 16 is also the smallest period JACK
# and most interfaces offer. Every plugin is prepared for MAX_BLOCK_FRAMES
# (pedalboard splits larger blocks, and would re-prepare, clearing state).
MIN_BLOCK_FRAMES = 16
MAX_BLOCK_FRAMES = 8192

# The output guard (guard_output): the ceiling above which a sample mutes the output,
# the fade before the offending sample, and how long the output must stay clean
# before it plays again. +6 dBFS: float paths may run over full scale (the meters
# say so), but nothing above this reaches monitors or headphones.
OUTPUT_CEILING_DBFS = 6.0
OUTPUT_RAMP_S = 0.003
OUTPUT_HOLD_S = 1.0
# A path's block with a sample beyond this is garbage, not audio (guard_path): the
# meters would read hundreds of LUFS. 100 times full scale is beyond any gain
# staging a chain could mean.
ABSURD_DBFS = 40.0
ABSURD_LEVEL = 10.0 ** (ABSURD_DBFS / 20.0)


def check_block_frames(frames: object, what: str = "block size") -> int:
    """``frames`` as an int when it is a block size the engine accepts, else ValueError
    naming the value and the range."""
    try:
        n = int(frames)  # type: ignore[call-overload]
        exact = n == frames
    except (TypeError, ValueError, OverflowError):
        exact = False
    if not exact or not MIN_BLOCK_FRAMES <= n <= MAX_BLOCK_FRAMES:
        raise ValueError(
            f"{what} must be {MIN_BLOCK_FRAMES}-{MAX_BLOCK_FRAMES} frames, got {frames!r}"
        )
    return n


# libc's usleep, called from nopython code so that a waiting thread holds no GIL.
_usleep = nb.types.ExternalFunction("usleep", nb.types.int32(nb.types.uint32))


class Slot:
    """An attribute kept in one element of an int64 array attribute of its object.

    The audio block in machine code (``engine.block``) shares such arrays with the
    Python objects, so counters and positions it advances read the same from
    Python; ``kind`` converts on read (int or bool).
    """

    def __init__(self, array: str, index: int, kind: type = int) -> None:
        self.array, self.index, self.kind = array, index, kind

    def __get__(self, obj: object, owner: type | None = None) -> object:
        if obj is None:
            return self
        return self.kind(getattr(obj, self.array)[self.index])

    def __set__(self, obj: object, value: object) -> None:
        getattr(obj, self.array)[self.index] = value


def new_mix_state(sample_rate: int, fade_ms: float = 30.0, smooth_ms: float = 15.0) -> np.ndarray:
    """A mix state with A audible, unity gains and a straight-through monitor."""
    mx = np.zeros(X_COUNT)
    mx[X_STEP] = 1.0 / max(1.0, fade_ms * 1e-3 * sample_rate)
    mx[X_GAIN_A] = mx[X_GAIN_B] = mx[X_GAIN_A_TARGET] = mx[X_GAIN_B_TARGET] = 1.0
    mx[X_SMOOTH] = 1.0 - math.exp(-1.0 / max(1.0, smooth_ms * 1e-3 * sample_rate))
    mx[X_OUT_GAIN] = mx[X_OUT_GAIN_TARGET] = 1.0
    mx[X_M : X_M + 4] = (1.0, 0.0, 0.0, 1.0)
    mx[X_M_TARGET : X_M_TARGET + 4] = (1.0, 0.0, 0.0, 1.0)
    return mx


@nb.njit(cache=True, nogil=True)
def mix_ab(a: np.ndarray, b: np.ndarray, out: np.ndarray, n: int, mx: np.ndarray) -> None:
    """out[:n, :2] = monitor(crossfade(gain_a * a, gain_b * b)); other outputs silent."""
    pos = mx[X_POS]
    target = mx[X_TARGET]
    step = mx[X_STEP]
    ga = mx[X_GAIN_A]
    gb = mx[X_GAIN_B]
    ga_t = mx[X_GAIN_A_TARGET]
    gb_t = mx[X_GAIN_B_TARGET]
    k = mx[X_SMOOTH]
    og = mx[X_OUT_GAIN]
    og_t = mx[X_OUT_GAIN_TARGET]
    m00 = mx[X_M]
    m01 = mx[X_M + 1]
    m10 = mx[X_M + 2]
    m11 = mx[X_M + 3]
    t00 = mx[X_M_TARGET]
    t01 = mx[X_M_TARGET + 1]
    t10 = mx[X_M_TARGET + 2]
    t11 = mx[X_M_TARGET + 3]
    half_pi = 0.5 * math.pi
    out_ch = out.shape[1]
    for i in range(n):
        if pos < target:
            pos = min(target, pos + step)
        elif pos > target:
            pos = max(target, pos - step)
        ga += k * (ga_t - ga)
        gb += k * (gb_t - gb)
        og += k * (og_t - og)
        m00 += k * (t00 - m00)
        m01 += k * (t01 - m01)
        m10 += k * (t10 - m10)
        m11 += k * (t11 - m11)
        wa = math.cos(pos * half_pi) * ga
        wb = math.sin(pos * half_pi) * gb
        left = wa * a[i, 0] + wb * b[i, 0]
        right = wa * a[i, 1] + wb * b[i, 1]
        if out_ch >= 2:
            out[i, 0] = og * (m00 * left + m01 * right)
            out[i, 1] = og * (m10 * left + m11 * right)
            for c in range(2, out_ch):
                out[i, c] = 0.0
        else:
            out[i, 0] = og * 0.5 * (left + right)
    mx[X_POS] = pos
    mx[X_GAIN_A] = ga
    mx[X_GAIN_B] = gb
    mx[X_OUT_GAIN] = og
    mx[X_M] = m00
    mx[X_M + 1] = m01
    mx[X_M + 2] = m10
    mx[X_M + 3] = m11


@nb.njit(cache=True, nogil=True)
def read_loop(data: np.ndarray, pos: int, n: int, loop: bool, out: np.ndarray) -> int:
    """Copy n frames of ``data`` from ``pos`` into ``out`` (stereo), looping or padding with
    silence; mono data plays on both channels. Returns the frames actually read from data."""
    frames = data.shape[0]
    ch = data.shape[1]
    got = 0
    for i in range(n):
        p = pos + i
        if p >= frames:
            if loop and frames > 0:
                p = p % frames
            else:
                out[i, 0] = 0.0
                out[i, 1] = 0.0
                continue
        got += 1
        out[i, 0] = data[p, 0]
        out[i, 1] = data[p, 1] if ch > 1 else data[p, 0]
    return got


@nb.njit(cache=True, nogil=True)
def copy_input(indata: np.ndarray, channels: np.ndarray, n: int, out: np.ndarray) -> None:
    """Copy the selected input channels (one or two) into a stereo buffer."""
    c0 = channels[0]
    c1 = channels[1] if channels.shape[0] > 1 else channels[0]
    for i in range(n):
        out[i, 0] = indata[i, c0]
        out[i, 1] = indata[i, c1]


@nb.njit(cache=True, nogil=True)
def delay(x: np.ndarray, n: int, ring: np.ndarray, pos: int, samples: int, out: np.ndarray) -> int:
    """Delay x by ``samples`` (< ring length) through ``ring``; returns the new ring position."""
    size = ring.shape[0]
    channels = ring.shape[1]
    for i in range(n):
        r = pos - samples
        if r < 0:
            r += size
        for c in range(channels):
            ring[pos, c] = x[i, c]
            out[i, c] = ring[r, c]
        pos += 1
        if pos == size:
            pos = 0
    return pos


@nb.njit(cache=True, nogil=True)
def guard_path(x: np.ndarray, n: int, limit: float) -> int:
    """Zero the first n frames of x if one sample is NaN/Inf or beyond ``limit`` (linear).

    Returns FAULT_NONE, FAULT_NONFINITE or FAULT_ABSURD (the first offending sample's).
    """
    fault = FAULT_NONE
    for i in range(n):
        for c in range(x.shape[1]):
            v = x[i, c]
            if not abs(v) <= limit:  # NaN fails every comparison
                fault = FAULT_ABSURD if math.isfinite(v) else FAULT_NONFINITE
                break
        if fault != FAULT_NONE:
            break
    if fault != FAULT_NONE:
        for i in range(n):
            for c in range(x.shape[1]):
                x[i, c] = 0.0
    return fault


def new_guard_state(sample_rate: int) -> np.ndarray:
    """An open output guard for ``sample_rate`` (OUTPUT_CEILING_DBFS, _RAMP_S, _HOLD_S)."""
    og = np.zeros(O_COUNT)
    og[O_GAIN] = 1.0
    og[O_STEP] = 1.0 / max(1.0, round(OUTPUT_RAMP_S * sample_rate))
    og[O_CEILING] = 10.0 ** (OUTPUT_CEILING_DBFS / 20.0)
    og[O_HOLD] = round(OUTPUT_HOLD_S * sample_rate)
    og[O_SOURCE] = -1.0
    return og


@nb.njit(cache=True, nogil=True)
def _offends(v: float, ceiling: float) -> bool:
    return not abs(v) <= ceiling  # NaN fails every comparison


@nb.njit(cache=True, nogil=True)
def guard_output(
    out: np.ndarray,
    n: int,
    a: np.ndarray,
    b: np.ndarray,
    ia: int,
    ib: int,
    b_audible: bool,
    og: np.ndarray,
) -> int:
    """The last stage of a block: mute ``out[:n]`` (every channel) from its first sample that
    is not finite or above the ceiling; returns 1 if this block tripped the guard, else 0.

    Frames before that sample fade to silence over at most the ramp; it and the rest
    of the block are silent, and so is every block until ``og[O_HOLD]`` clean frames
    have passed; then the output fades back in over the ramp. ``a`` and ``b`` are
    the compared paths' outputs (engine indices ``ia``, ``ib``; the audible one is
    blamed first) for the trip's record. Never allocates.
    """
    ceiling = og[O_CEILING]
    channels = out.shape[1]
    first = -1
    for i in range(n):
        for c in range(channels):
            if _offends(out[i, c], ceiling):
                first = i
                break
        if first >= 0:
            break
    gain = og[O_GAIN]
    step = og[O_STEP]
    if first < 0:
        if og[O_MUTED] != 0.0:
            og[O_CLEAN] += n
            if og[O_CLEAN] >= og[O_HOLD]:
                og[O_MUTED] = 0.0  # fades in from the next block
            out[:n, :] = 0.0
            return 0
        if gain >= 1.0:
            return 0
        for i in range(n):
            gain = min(1.0, gain + step)
            for c in range(channels):
                out[i, c] *= gain
        og[O_GAIN] = gain
        return 0
    tripped = 0
    if og[O_MUTED] == 0.0:
        tripped = 1
        # What the status line reports: NaN/Inf if the rest of the block has one, else
        # its peak (not just the first sample over the ceiling).
        peak = 0.0
        finite = True
        for i in range(first, n):
            for c in range(channels):
                v = abs(out[i, c])
                if not math.isfinite(v):
                    finite = False
                elif v > peak:
                    peak = v
        og[O_CAUSE] = FAULT_ABSURD if finite else FAULT_NONFINITE
        og[O_LEVEL] = peak if finite else math.inf
        source = -1
        for k in range(2):
            p = a if (k == 1) == b_audible else b
            if _offends(p[first, 0], ceiling) or _offends(p[first, 1], ceiling):
                source = ia if (k == 1) == b_audible else ib
                break
        og[O_SOURCE] = source
        og[O_MUTED] = 1.0
        og[O_TRIPS] += 1.0
    og[O_CLEAN] = 0.0
    ramp = min(first, int(round(1.0 / step)))
    start = first - ramp
    for i in range(start):
        for c in range(channels):
            out[i, c] *= gain
    for i in range(start, first):
        g = gain * (first - i) / (ramp + 1)
        for c in range(channels):
            out[i, c] *= g
    out[first:n, :] = 0.0
    og[O_GAIN] = 0.0
    return tripped


@nb.njit(cache=True, nogil=True)
def all_finite(x: np.ndarray, n: int) -> bool:
    """True if the first n frames hold no NaN/Inf (no temporary array, unlike np.isfinite)."""
    for i in range(n):
        for c in range(x.shape[1]):
            if not math.isfinite(x[i, c]):
                return False
    return True


@nb.njit(cache=True, nogil=True)
def copy_zeroing_non_finite(x: np.ndarray, n: int, out: np.ndarray) -> int:
    """out[:n] = x[:n] with NaN/Inf replaced by 0; returns how many were replaced."""
    bad = 0
    for i in range(n):
        for c in range(x.shape[1]):
            v = x[i, c]
            if math.isfinite(v):
                out[i, c] = v
            else:
                out[i, c] = 0.0
                bad += 1
    return bad


@nb.njit(cache=True, nogil=True)
def tap_pair(a: np.ndarray, b: np.ndarray, n: int, ring: np.ndarray, pos: np.ndarray) -> None:
    """Copy n stereo frames of a and b into ``ring`` columns 0-1 and 2-3 (a circular buffer).

    ``pos[0]`` is the next write row, ``pos[1]`` counts every frame ever written.
    For the goniometer: a reader copies the ring off the audio thread, in write order.
    """
    size = ring.shape[0]
    p = pos[0]
    for i in range(n):
        ring[p, 0] = a[i, 0]
        ring[p, 1] = a[i, 1]
        ring[p, 2] = b[i, 0]
        ring[p, 3] = b[i, 1]
        p += 1
        if p == size:
            p = 0
    pos[0] = p
    pos[1] += n


@nb.njit(cache=True, nogil=True)
def ring_write(x: np.ndarray, n: int, ring: np.ndarray, written: np.ndarray) -> None:
    """Append n frames of x to ``ring`` (frames a power of two); ``written[0]`` counts them all.

    The meter thread's feed: the callback appends each path's output, the meter
    thread reads frames ``[its count, written[0])`` behind it (single producer,
    single consumer; the count is published after the frames).
    """
    mask = ring.shape[0] - 1
    channels = ring.shape[1]
    w = written[0]
    for i in range(n):
        row = (w + i) & mask
        for c in range(channels):
            ring[row, c] = x[i, c]
    written[0] = w + n


@nb.njit(cache=True, nogil=True)
def wait_for_change(counter: np.ndarray, index: int, seen: int, poll_us: int, polls: int) -> bool:
    """Sleep-poll until ``counter[index] != seen`` (True) or ``polls`` polls passed (False).

    Without the GIL: a Python-level poll would take the GIL every ``poll_us`` and
    land on the running audio callback about one time in twenty.
    """
    for _ in range(polls):
        if counter[index] != seen:
            return True
        _usleep(poll_us)
    return counter[index] != seen
