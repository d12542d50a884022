"""1/3-octave bands (IEC 61260 base-ten centres) read from an FFT.

Band levels are in dB relative to a full-scale sine: a 0 dBFS sine reads 0 dB
in its band, pink noise reads equal levels in every band (so a flat 1/3-octave
display means a -3 dB/octave per-Hz spectrum, as in docs/reference.md "Tonal balance").
Each FFT bin's power is shared between the bands its width overlaps, so the
narrow low bands still get a smooth estimate from a few bins.
"""

from __future__ import annotations

import numpy as np

# Nominal labels for band indices -17..13 (20 Hz .. 20 kHz).
NOMINAL_HZ = (
    20, 25, 31.5, 40, 50, 63, 80, 100, 125, 160, 200, 250, 315, 400, 500, 630, 800,
    1000, 1250, 1600, 2000, 2500, 3150, 4000, 5000, 6300, 8000, 10000, 12500, 16000, 20000,
)  # fmt: skip
_FIRST_INDEX = -17


def band_edges(sample_rate: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (nominal centre, lower edge, upper edge) in Hz for bands below Nyquist."""
    idx = np.arange(len(NOMINAL_HZ)) + _FIRST_INDEX
    exact = 1000.0 * 10.0 ** (idx / 10.0)  # base-ten 1/3 octave (IEC 61260)
    lo = exact * 10.0 ** (-1.0 / 20.0)
    hi = exact * 10.0 ** (1.0 / 20.0)
    keep = hi <= sample_rate / 2.0
    return np.array(NOMINAL_HZ, dtype=np.float64)[keep], lo[keep], hi[keep]


def fft_size(sample_rate: float) -> int:
    """FFT length giving about 6 Hz resolution (8192 at 44.1/48 kHz)."""
    return int(2 ** np.ceil(np.log2(sample_rate * 0.16)))


def bin_band_map(sample_rate: float, n_fft: int) -> tuple[np.ndarray, np.ndarray]:
    """Map FFT bins to bands: ``band[k, j]`` (-1 for none) and ``weight[k, j]``, j in 0..1.

    A bin's frequency interval [f - df/2, f + df/2) may straddle a band edge; its
    power is split in proportion to the overlap.
    """
    _, lo, hi = band_edges(sample_rate)
    n_bins = n_fft // 2 + 1
    df = sample_rate / n_fft
    band = np.full((n_bins, 2), -1, dtype=np.int64)
    weight = np.zeros((n_bins, 2), dtype=np.float64)
    for k in range(1, n_bins):  # DC carries no band
        b_lo, b_hi = (k - 0.5) * df, (k + 0.5) * df
        j = 0
        for b in range(len(lo)):
            overlap = min(b_hi, hi[b]) - max(b_lo, lo[b])
            if overlap > 0 and j < 2:
                band[k, j] = b
                weight[k, j] = overlap / df
                j += 1
    return band, weight
