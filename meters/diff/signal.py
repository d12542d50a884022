"""Signal primitives every comparison of :mod:`earmark.meters.diff` shares: the mid
(mono sum), power-of-two sizes, the analysis window, and windowed power and peak.
Levels are dB re full scale; everything is numpy."""

from __future__ import annotations

import numpy as np

__all__ = [
    "ACTIVE_RANGE_DB",
    "RELIABLE_RANGE_DB",
    "analysis_window",
    "frame_size",
    "mono",
    "next_pow2",
    "window_peak",
    "window_power",
]


ACTIVE_RANGE_DB = 40.0  # windows within this of the loudest count as programme
RELIABLE_RANGE_DB = 60.0  # bands this far below BEFORE's loudest band are not measured


def mono(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim == 1:
        return a.astype(np.float64)
    return a.mean(axis=1, dtype=np.float64)


def next_pow2(n: int) -> int:
    return 1 << max(1, int(n - 1).bit_length())


def frame_size(sample_rate: int, seconds: float) -> int:
    return next_pow2(int(round(seconds * sample_rate)))


def analysis_window(n: int) -> np.ndarray:
    """4-term Blackman-Harris: sidelobes at -92 dB, so a strong bass note does not leak
    into the weak bands a high-pass or a valley between harmonics leaves."""
    k = 2.0 * np.pi * np.arange(n) / n
    return 0.35875 - 0.48829 * np.cos(k) + 0.14128 * np.cos(2 * k) - 0.01168 * np.cos(3 * k)


def window_power(x: np.ndarray, win: int, hop: int) -> np.ndarray:
    """Mean power (summed over channels) of windows of ``win`` samples every ``hop``."""
    x = np.asarray(x, dtype=np.float64)
    p = x * x if x.ndim == 1 else np.sum(x * x, axis=1)
    csum = np.concatenate([[0.0], np.cumsum(p)])
    starts = np.arange(0, max(1, p.size - win + 1), hop)
    ends = np.minimum(starts + win, p.size)
    return (csum[ends] - csum[starts]) / np.maximum(ends - starts, 1)


def window_peak(x: np.ndarray, win: int, hop: int) -> np.ndarray:
    """Highest absolute sample (over channels) of windows of ``win`` = 2 x ``hop`` samples."""
    a = np.abs(x) if x.ndim == 1 else np.max(np.abs(x), axis=1)
    n_hops = a.size // hop
    if n_hops < 2:
        return np.array([float(a.max()) if a.size else 0.0])
    m = a[: n_hops * hop].reshape(n_hops, hop).max(axis=1)
    return np.maximum(m[:-1], m[1:])
