"""Tonal balance: 1/3-octave band levels normalised to loudness, and reference curves.

A band level alone says little (it moves with the gain); what a mastering engineer
compares is the *shape*: how loud each band is relative to the programme's loudness.
Here a band's relative level is its power over the K-weighted total of all bands
(``relative_levels``), so a spectrum and the same spectrum 6 dB louder read the same,
and a mono file and its dual-mono stereo copy read the same too. Summing the bands
with the K-weighting gain makes the total an estimate of the loudness from the same
3 s of spectrum frames the bands come from.

``popular_music_curve`` is the published long-term average spectrum of popular music
(Elowsson & Friberg, AES 2017: 12,345 tracks; the per-Hz slope steepens from
-2.35 dB/octave at 200 Hz to -8.94 dB/octave at 6.4 kHz, and averages -4.53 dB/octave
from 89 Hz to 4.5 kHz regardless of genre; Pestana et al., AES 2013, report about
-5 dB/octave over 100 Hz-4 kHz). In 1/3-octave band levels a per-Hz slope reads
3 dB/octave higher (pink noise is flat).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .kweighting import k_weighting_sos

# Bands summed for the harshness and body measures (band centres inside the range).
PRESENCE_HZ = (2000.0, 5000.0)  # where the ear is most sensitive (ISO 226: 3.15-4 kHz)
AIR_HZ = (5000.0, 10000.0)
BODY_HZ = (250.0, 1600.0)  # the mids that carry a full-band mix

# Elowsson & Friberg (2017), per-Hz slope in dB/octave at two frequencies.
_SLOPE_LOW = (200.0, -2.35)
_SLOPE_HIGH = (6400.0, -8.94)
_PINK_DB_PER_OCT = 3.0  # 1/3-octave band levels of a per-Hz spectrum rise 3 dB/octave
_CURVE_RANGE_HZ = (31.5, 16000.0)  # where the model is used; bands outside are unset


def k_weighting_gain_db(band_hz: Sequence[float], sample_rate: int) -> np.ndarray:
    """K-weighting (BS.1770) power gain in dB at each frequency, including its -0.691 dB
    offset's counterpart at 1 kHz (the filter itself, so about +0.69 dB at 1 kHz)."""
    sos = k_weighting_sos(sample_rate)
    w = 2.0 * math.pi * np.asarray(band_hz, dtype=np.float64) / sample_rate
    z = np.exp(-1j * w)
    gain = np.ones_like(w, dtype=np.complex128)
    for b0, b1, b2, a1, a2 in sos:
        gain *= (b0 + b1 * z + b2 * z * z) / (1.0 + a1 * z + a2 * z * z)
    return 20.0 * np.log10(np.maximum(np.abs(gain), 1e-12))


def relative_levels(band_db: np.ndarray, k_gain_db: np.ndarray) -> np.ndarray:
    """Band levels (dB, NaN for empty bands) relative to their K-weighted power total.

    Works on one spectrum (bands,) or many rows (rows, bands); rows without energy
    come back all NaN.
    """
    levels = np.asarray(band_db, dtype=np.float64)
    power = np.where(np.isnan(levels), 0.0, 10.0 ** (np.nan_to_num(levels, nan=-300.0) / 10.0))
    total = (power * 10.0 ** (k_gain_db / 10.0)).sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        ref = np.where(total > 0.0, 10.0 * np.log10(np.maximum(total, 1e-300)), np.nan)
    return levels - ref


def band_sum_db(rel_db: np.ndarray, band_hz: Sequence[float], lo_hz: float, hi_hz: float):
    """Power sum (dB) of the bands with centres in [lo_hz, hi_hz], per row; NaN if empty."""
    hz = np.asarray(band_hz)
    sel = (hz >= lo_hz) & (hz <= hi_hz)
    vals = np.asarray(rel_db)[..., sel]
    power = np.where(np.isnan(vals), 0.0, 10.0 ** (np.nan_to_num(vals, nan=-300.0) / 10.0))
    total = power.sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0.0, 10.0 * np.log10(np.maximum(total, 1e-300)), np.nan)


def popular_music_curve(
    band_hz: Sequence[float],
    *,
    lows_db: float = 0.0,
    highs_db: float = 0.0,
    mids_db: float = 0.0,
    sample_rate: int = 48000,
) -> np.ndarray:
    """The average popular-music spectrum as relative 1/3-octave levels (see module doc).

    ``lows_db`` tilts the bands below 100 Hz, ``highs_db`` those above 2 kHz and
    ``mids_db`` those from 250 Hz to 2 kHz (smooth half-octave transitions), for a
    genre's difference from the average. Bands outside 31.5 Hz-16 kHz are NaN.
    """
    hz = np.asarray(band_hz, dtype=np.float64)
    x = np.log2(hz)
    u_lo, s_lo = math.log2(_SLOPE_LOW[0]), _SLOPE_LOW[1]
    u_hi, s_hi = math.log2(_SLOPE_HIGH[0]), _SLOPE_HIGH[1]
    b = (s_hi - s_lo) / (u_hi - u_lo)  # slope change per octave
    a = s_lo + _PINK_DB_PER_OCT
    x0 = math.log2(1000.0)
    level = a * (x - x0) + 0.5 * b * ((x - u_lo) ** 2 - (x0 - u_lo) ** 2)
    level = level + lows_db * _below(hz, 100.0) + highs_db * _above(hz, 2000.0)
    level = level + mids_db * _above(hz, 250.0) * _below(hz, 2000.0)
    level = np.where((hz >= _CURVE_RANGE_HZ[0]) & (hz <= _CURVE_RANGE_HZ[1]), level, np.nan)
    return relative_levels(level, k_weighting_gain_db(hz, sample_rate))


def _above(hz: np.ndarray, corner_hz: float) -> np.ndarray:
    """0 below the corner, 1 half an octave above it, raised-cosine between (in octaves)."""
    t = np.clip((np.log2(hz / corner_hz)) / 0.5 + 0.5, 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(np.pi * t)


def _below(hz: np.ndarray, corner_hz: float) -> np.ndarray:
    return 1.0 - _above(hz, corner_hz)
