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


# ITU-R BS.775 stereo fold-down: centre and surrounds at -3 dB into their side,
# a centre surround at -3 dB into each side of that (-6 dB), the LFE left out.
_FOLD = {
    "L": (1.0, 0.0),
    "R": (0.0, 1.0),
    "C": (0.7071, 0.7071),
    "LFE": (0.0, 0.0),
    "Ls": (0.7071, 0.0),
    "Rs": (0.0, 0.7071),
    "Lss": (0.7071, 0.0),
    "Rss": (0.0, 0.7071),
    "Lrs": (0.7071, 0.0),
    "Rrs": (0.0, 0.7071),
    "Cs": (0.5, 0.5),
}


def stereo_fold_down(channels: int) -> np.ndarray | None:
    """The (channels, 2) matrix that folds the default layout for ``channels`` down to
    stereo by ITU-R BS.775 (Lo = L + 0.707 C + 0.707 Ls, Ro likewise; LFE omitted).

    None for mono and stereo (nothing to fold) and for counts with no known layout.
    """
    if channels <= 2 or channels not in _LAYOUTS:
        return None
    return np.array([_FOLD[name] for name in _LAYOUTS[channels][0]], dtype=np.float32)
