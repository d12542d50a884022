"""Design of the true-peak interpolator (ITU-R BS.1770-4 Annex 2, and better).

Annex 2 oversamples by 4 at 48 kHz with a 48-tap filter and reads the largest
interpolated magnitude; such a meter reads inter-sample peaks up to ~0.5 dB low
for content near 20 kHz (a 4x grid can miss the crest by 1 - cos(pi f / 4 fs)).
earmark uses a sharper interpolator (32 input taps per phase, Kaiser window,
stopband >= 60 dB above 0.56 fs, flat within 0.01 dB to 0.44 fs) and refines
each local maximum of the oversampled magnitude with a parabola through its
neighbours, which brings the worst case under 0.05 dB up to 0.45 fs.
"""

from __future__ import annotations

import numpy as np

TAPS_PER_PHASE = 32
_KAISER_BETA = 6.0  # ~60 dB stopband


def oversampling_factor(sample_rate: float) -> int:
    """Oversampling factor: 4x below 96 kHz, 2x below 192 kHz, else the samples themselves."""
    if sample_rate < 96000:
        return 4
    if sample_rate < 192000:
        return 2
    return 1


def interpolation_phases(factor: int, taps: int = TAPS_PER_PHASE) -> np.ndarray:
    """Polyphase interpolation filters, shape (factor - 1, taps), float32.

    Row ``p - 1`` interpolates the value at ``m + p / factor`` from the ``taps``
    samples ``x[m - taps/2 + 1] .. x[m + taps/2]`` ordered oldest first; phase 0
    is the sample ``x[m]`` itself and needs no filter. Each phase is normalised
    to unity gain at DC.
    """
    if factor < 2:
        return np.zeros((0, taps), dtype=np.float32)
    k = np.arange(taps, dtype=np.float64)
    rows = []
    for p in range(1, factor):
        u = taps / 2 - 1 - k + p / factor  # distance from the interpolated instant
        window = np.i0(_KAISER_BETA * np.sqrt(np.clip(1.0 - (2.0 * u / taps) ** 2, 0.0, None)))
        h = np.sinc(u) * window / np.i0(_KAISER_BETA)
        rows.append(h / h.sum())
    return np.array(rows, dtype=np.float32)
