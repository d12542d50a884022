"""numba kernels for the audio callback: source copies, delay lines, the A/B mix and the monitor.

Everything here is ``@njit(cache=True, nogil=True)`` over arrays allocated once
by the engine; nothing allocates, and every gain change is smoothed per sample
so that no switch, match or monitor change clicks.

The A/B mix is an equal-power crossfade: gains cos(x*pi/2) and sin(x*pi/2)
with x moving linearly over the fade. Loudness-match gains and the monitor's
2x2 matrix (mono, L/R/M/S solo) and scalar gain (trim, dim, mute) follow their
targets through one-pole smoothers (time constant ``smooth_samples``).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

# libc's usleep, called from nopython code so that a waiting thread holds no GIL.
_usleep = nb.types.ExternalFunction("usleep", nb.types.int32(nb.types.uint32))


class Slot:
    """An attribute kept in one element of an int64 array attribute of its object.

    A callback in machine code (``engine.native``) shares such arrays with the
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


# Fields of the mix state array ``mx`` (float64).
X_POS = 0  # crossfade position: 0 = A audible, 1 = B audible
X_TARGET = 1  # 0 or 1
X_STEP = 2  # position change per sample (1 / fade length)
X_GAIN_A = 3  # current linear loudness-match gain of A
X_GAIN_B = 4
X_GAIN_A_TARGET = 5
X_GAIN_B_TARGET = 6
X_SMOOTH = 7  # one-pole coefficient per sample for gains
X_OUT_GAIN = 8  # current monitor gain (trim x dim x mute)
X_OUT_GAIN_TARGET = 9
X_M = 10  # current 2x2 monitor matrix m00 m01 m10 m11 (out = M @ in)
X_M_TARGET = 14
X_COUNT = 18


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
def silence_non_finite(x: np.ndarray, n: int) -> int:
    """Zero the whole block if any sample is NaN/Inf (a broken plugin); returns the count."""
    bad = 0
    for i in range(n):
        for c in range(x.shape[1]):
            if not math.isfinite(x[i, c]):
                bad += 1
    if bad:
        for i in range(n):
            for c in range(x.shape[1]):
                x[i, c] = 0.0
    return bad


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


def warm_up() -> None:
    """Load every callback kernel for the array types the engine hands it.

    A numba kernel's first call with a type loads (or compiles) its machine code
    with the GIL held: 8 ms for the callback's kernels on this VM, six 64-frame
    periods, if it happens in the first callback. The engine calls this when it
    is built, before any stream opens. Every array the callback passes is
    float32 (frames, 2) C-contiguous, the counters int64 and the mix state
    float64, as here.
    """
    n = 4
    x = np.zeros((n, 2), dtype=np.float32)
    out = np.zeros((n, 2), dtype=np.float32)
    ring = np.zeros((8, 2), dtype=np.float32)
    counters = np.zeros(2, dtype=np.int64)
    read_loop(x, 0, n, True, out)
    copy_input(x, np.zeros(2, dtype=np.int64), n, out)
    silence_non_finite(out, n)
    all_finite(out, n)
    copy_zeroing_non_finite(x, n, out)
    delay(x, n, ring, 0, 1, out)
    ring_write(x, n, ring, counters)
    tap_pair(x, x, n, ring, counters)
    mix_ab(x, x, out, n, new_mix_state(48000))
