"""BS.1770-4 channel weights for the usual channel orders.

BS.1770-4 Table 3: weight 1.41 (+1.5 dB) for loudspeakers at 60-120 degrees
azimuth (the surrounds of 5.x, the side surrounds of 7.1), 1.0 for front,
centre and rear channels, and the LFE channel is excluded (weight 0).
Orders follow WAVE_FORMAT_EXTENSIBLE / SMPTE as files carry them.
"""

from __future__ import annotations

import numpy as np

SURROUND_WEIGHT = 1.41

# channel count -> (names, weights)
_LAYOUTS: dict[int, tuple[tuple[str, ...], tuple[float, ...]]] = {
    1: (("M",), (1.0,)),
    2: (("L", "R"), (1.0, 1.0)),
    3: (("L", "R", "C"), (1.0, 1.0, 1.0)),
    4: (("L", "R", "Ls", "Rs"), (1.0, 1.0, SURROUND_WEIGHT, SURROUND_WEIGHT)),
    5: (("L", "R", "C", "Ls", "Rs"), (1.0, 1.0, 1.0, SURROUND_WEIGHT, SURROUND_WEIGHT)),
    6: (
        ("L", "R", "C", "LFE", "Ls", "Rs"),
        (1.0, 1.0, 1.0, 0.0, SURROUND_WEIGHT, SURROUND_WEIGHT),
    ),
    7: (
        ("L", "R", "C", "LFE", "Cs", "Lss", "Rss"),
        (1.0, 1.0, 1.0, 0.0, 1.0, SURROUND_WEIGHT, SURROUND_WEIGHT),
    ),
    8: (
        # 7.1 (WAVE order FL FR FC LFE BL BR SL SR): rears at 135-150 deg weigh 1.0,
        # side surrounds at 90-110 deg weigh 1.41.
        ("L", "R", "C", "LFE", "Lrs", "Rrs", "Lss", "Rss"),
        (1.0, 1.0, 1.0, 0.0, 1.0, 1.0, SURROUND_WEIGHT, SURROUND_WEIGHT),
    ),
}


def channel_names(channels: int) -> tuple[str, ...]:
    """Names of the channels in the default order for ``channels`` channels."""
    if channels in _LAYOUTS:
        return _LAYOUTS[channels][0]
    return tuple(f"ch{i + 1}" for i in range(channels))


def channel_weights(channels: int) -> np.ndarray:
    """BS.1770-4 weights for the default channel order; 1.0 for unknown layouts."""
    if channels < 1:
        raise ValueError(f"channel count must be at least 1, got {channels}")
    if channels in _LAYOUTS:
        return np.array(_LAYOUTS[channels][1], dtype=np.float64)
    return np.ones(channels, dtype=np.float64)
