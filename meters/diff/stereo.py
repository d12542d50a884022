"""Stereo width: side-to-mid energy (overall and per band) and correlation, in both
versions."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .signal import analysis_window, frame_size

__all__ = ["Stereo", "stereo_change"]


_WIDTH_BANDS_HZ = ((20.0, 200.0), (200.0, 4000.0), (4000.0, 20000.0))


@dataclass(frozen=True, slots=True)
class Stereo:
    """Side-to-mid energy and inter-channel correlation of both versions (first two channels)."""

    side_to_mid_before_db: float | None
    side_to_mid_after_db: float | None
    correlation_before: float | None
    correlation_after: float | None
    bands_hz: tuple[tuple[float, float], ...]  # (low, high) per band
    side_to_mid_change_bands_db: tuple[float | None, ...]

    @property
    def side_to_mid_change_db(self) -> float | None:
        """Change of side energy relative to mid energy, dB (+ = wider)."""
        if self.side_to_mid_before_db is None or self.side_to_mid_after_db is None:
            return None
        return self.side_to_mid_after_db - self.side_to_mid_before_db

    @property
    def width_change_pct(self) -> float | None:
        """Change of the side/mid amplitude ratio in percent (+12 = 12 % wider)."""
        d = self.side_to_mid_change_db
        return None if d is None else (10.0 ** (d / 20.0) - 1.0) * 100.0


def stereo_change(before: np.ndarray, after: np.ndarray, sample_rate: int) -> Stereo:
    """Width (side-to-mid energy, overall and in three bands) and correlation, both versions."""
    bands = tuple((lo, min(hi, 0.5 * sample_rate)) for lo, hi in _WIDTH_BANDS_HZ)
    if before.ndim < 2 or after.ndim < 2 or before.shape[1] < 2 or after.shape[1] < 2:
        return Stereo(None, None, None, None, bands, (None,) * len(bands))
    out = []
    for sig in (before, after):
        left = np.asarray(sig[:, 0], dtype=np.float64)
        right = np.asarray(sig[:, 1], dtype=np.float64)
        mid, side = 0.5 * (left + right), 0.5 * (left - right)
        mm, ss = float(mid @ mid), float(side @ side)
        ll, rr, lr = float(left @ left), float(right @ right), float(left @ right)
        sm = 10.0 * math.log10(ss / mm) if mm > 0 and ss > 0 else None
        corr = lr / math.sqrt(ll * rr) if ll > 0 and rr > 0 else None
        f, pm = _psd(mid, sample_rate)
        _, ps = _psd(side, sample_rate)
        per_band = []
        for lo, hi in bands:
            m = (f >= lo) & (f < hi)
            a, b = float(pm[m].sum()), float(ps[m].sum())
            per_band.append(10.0 * math.log10(b / a) if a > 0 and b > 0 else None)
        out.append((sm, corr, per_band))
    (sm_b, c_b, band_b), (sm_a, c_a, band_a) = out
    changes = tuple(
        None if b is None or a is None else a - b for b, a in zip(band_b, band_a, strict=True)
    )
    return Stereo(sm_b, sm_a, c_b, c_a, bands, changes)


def _psd(x: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Welch power per bin (Blackman-Harris frames, 50 % overlap), summed over frames."""
    n_fft = frame_size(sample_rate, 0.04)
    hop = n_fft // 2
    f = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    acc = np.zeros(f.size)
    if x.size >= n_fft:
        win = analysis_window(n_fft)
        frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop]
        for b in range(0, frames.shape[0], 512):
            X = np.fft.rfft(frames[b : b + 512] * win, axis=1)
            acc += np.sum(X.real**2 + X.imag**2, axis=0)
    return f, acc
