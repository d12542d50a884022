"""Transient crest: the peak of each onset found in BEFORE over the loudness around
it, in both versions (how much of its rise above the music a processing kept)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .signal import window_power

__all__ = ["TransientCrest", "transient_crest"]


@dataclass(frozen=True, slots=True)
class TransientCrest:
    """Transient crest: each onset's peak over the loudness around it, in both versions."""

    onsets: int  # onsets found in BEFORE (and measured at the same times in AFTER)
    before_db: float | None  # median transient crest of BEFORE
    after_db: float | None

    @property
    def change_db(self) -> float | None:
        """AFTER minus BEFORE: negative when the transients were flattened."""
        if self.before_db is None or self.after_db is None:
            return None
        return self.after_db - self.before_db


_ONSET_RISE_DB = 6.0  # 10 ms energy over the 100 ms before it
_ONSET_GATE_DB = 30.0  # onsets quieter than this below the loudest 10 ms are ignored
_ONSET_SPACING_S = 0.1
_TRANSIENT_PEAK_S = (0.005, 0.03)  # peak searched from 5 ms before to 30 ms after an onset
_TRANSIENT_CONTEXT_S = 0.2  # loudness (RMS) from 200 ms before to 200 ms after


def transient_crest(before: np.ndarray, after: np.ndarray, sample_rate: int) -> TransientCrest:
    """Find onsets in BEFORE (energy rising 6 dB within 10 ms) and compare their crest.

    The crest of an onset is its sample peak over the RMS of the 400 ms around
    it: a compressor or limiter that catches the attack lowers it, one that
    lets the attack through (slow attack) can raise it.
    """
    hop = max(1, int(round(0.005 * sample_rate)))
    e = window_power(before, 2 * hop, hop)
    if e.size < 40 or e.max() <= 0:
        return TransientCrest(0, None, None)
    look = 20  # 100 ms of 5 ms hops
    # Mean energy of the 100 ms before, ending one window earlier (the rise itself).
    c = np.concatenate([[0.0], np.cumsum(e)])
    idx = np.arange(e.size)
    lo = np.maximum(idx - look - 1, 0)
    hi = np.maximum(idx - 1, 0)
    before_mean = np.where(hi > lo, (c[hi] - c[lo]) / np.maximum(hi - lo, 1), np.inf)
    gate = e.max() * 10.0 ** (-_ONSET_GATE_DB / 10.0)
    rise = (e > before_mean * 10.0 ** (_ONSET_RISE_DB / 10.0)) & (e > gate)
    onsets: list[int] = []
    spacing = int(_ONSET_SPACING_S / 0.005)
    for i in np.nonzero(rise)[0]:
        if not onsets or i - onsets[-1] >= spacing:
            onsets.append(int(i))
    if not onsets:
        return TransientCrest(0, None, None)
    a_x = np.abs(before) if before.ndim == 1 else np.max(np.abs(before), axis=1)
    a_y = np.abs(after) if after.ndim == 1 else np.max(np.abs(after), axis=1)
    p_x = _power(before)
    p_y = _power(after)
    cx, cy = np.concatenate([[0.0], np.cumsum(p_x)]), np.concatenate([[0.0], np.cumsum(p_y)])
    n = a_x.size
    pre, post = (int(s * sample_rate) for s in _TRANSIENT_PEAK_S)
    ctx = int(_TRANSIENT_CONTEXT_S * sample_rate)
    crest_x, crest_y = [], []
    for i in onsets:
        t = i * hop
        s0, s1 = max(t - pre, 0), min(t + 2 * hop + post, n)
        r0, r1 = max(t - ctx, 0), min(t + ctx, n)
        if s1 <= s0 or r1 <= r0:
            continue
        mx = (cx[r1] - cx[r0]) / (r1 - r0)
        my = (cy[r1] - cy[r0]) / (r1 - r0)
        px, py = float(a_x[s0:s1].max()), float(a_y[s0:s1].max())
        if mx > 0 and my > 0 and px > 0 and py > 0:
            crest_x.append(20.0 * math.log10(px) - 10.0 * math.log10(mx))
            crest_y.append(20.0 * math.log10(py) - 10.0 * math.log10(my))
    if not crest_x:
        return TransientCrest(0, None, None)
    return TransientCrest(len(crest_x), float(np.median(crest_x)), float(np.median(crest_y)))


def _power(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x * x if x.ndim == 1 else np.sum(x * x, axis=1)
