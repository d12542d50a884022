"""K-weighting (ITU-R BS.1770-4) for any sample rate.

BS.1770 tabulates the two K-weighting biquads only at 48 kHz. The same filters
at another rate come from their analogue prototypes (a high shelf of +4 dB
around 1.68 kHz, then an RLB high-pass at 38 Hz) through the bilinear
transform with the corner pre-warped, which reproduces the 48 kHz table to
1e-10 and is the derivation libebur128 uses, so the two agree at every rate.
"""

from __future__ import annotations

import math

import numpy as np

# Analogue prototype parameters fitted to the BS.1770 48 kHz coefficients.
_SHELF_F0_HZ = 1681.974450955533
_SHELF_GAIN_DB = 3.999843853973347
_SHELF_Q = 0.7071752369554196
_SHELF_VB_EXP = 0.4996667741545416
_HIGHPASS_F0_HZ = 38.13547087602444
_HIGHPASS_Q = 0.5003270373238773


def k_weighting_sos(sample_rate: float) -> np.ndarray:
    """Return the K-weighting filter as two biquads, shape (2, 5): b0, b1, b2, a1, a2.

    Stage 0 is the pre-filter (high shelf), stage 1 the RLB high-pass; a0 is 1.
    """
    if not 8000 <= sample_rate <= 384000:
        raise ValueError(f"sample rate {sample_rate} Hz is outside 8000-384000 Hz")
    k = math.tan(math.pi * _SHELF_F0_HZ / sample_rate)
    vh = 10.0 ** (_SHELF_GAIN_DB / 20.0)
    vb = vh**_SHELF_VB_EXP
    a0 = 1.0 + k / _SHELF_Q + k * k
    shelf = (
        (vh + vb * k / _SHELF_Q + k * k) / a0,
        2.0 * (k * k - vh) / a0,
        (vh - vb * k / _SHELF_Q + k * k) / a0,
        2.0 * (k * k - 1.0) / a0,
        (1.0 - k / _SHELF_Q + k * k) / a0,
    )
    k = math.tan(math.pi * _HIGHPASS_F0_HZ / sample_rate)
    a0 = 1.0 + k / _HIGHPASS_Q + k * k
    highpass = (1.0, -2.0, 1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / _HIGHPASS_Q + k * k) / a0)
    return np.array([shelf, highpass], dtype=np.float64)
