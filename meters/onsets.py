"""Onsets in the 10 Hz history rows, and how much of their peak a processing took.

The ``crushed_transients`` detector and :func:`transient_loss` (``earmark diff``'s
summary) find onsets the same way, so a flag and a summary quote one number for one
loss; profile learning counts them the same way too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .readings import History

__all__ = [
    "ONSET_MIN_COUNT",
    "ONSET_RISE_DB",
    "ONSET_WINDOW_ROWS",
    "SILENCE_LUFS",
    "TransientLoss",
    "is_onset",
    "onset_loss",
    "onset_mask",
    "power_db",
    "transient_loss",
]

# Onsets (inference): a 100 ms block with at least twice the power (+3 dB) of each of
# the two blocks before it. A crescendo or a sustained texture has none; a drum hit,
# a pluck or a struck chord has one. The transient crest is the onset's true peak
# above the short-term loudness, median over the onsets of the last 10 s.
ONSET_RISE_DB = 3.0
ONSET_WINDOW_ROWS = 100
ONSET_MIN_COUNT = 4  # onsets needed in the window for a median
SILENCE_LUFS = -50.0  # spectra and onsets of quieter windows are not judged


@dataclass(frozen=True, slots=True)
class TransientLoss:
    """How far onset peaks stand above the short-term loudness, BEFORE and AFTER.

    The measure of ``crushed_transients`` with a BEFORE version: onsets are found in
    BEFORE (:func:`onset_mask`, 100 ms rows), and at each one the true peak of the row
    over the short-term loudness is read in both versions; medians over the onsets.
    """

    onsets: int
    before_db: float  # median onset peak over the short-term loudness, BEFORE
    after_db: float  # the same onsets, AFTER
    drop_db: float  # median of the per-onset losses (BEFORE minus AFTER); > 0: flattened


def onset_loss(pairs: list[tuple[float, float]]) -> TransientLoss:
    """The loss over ``(before, after)`` pairs of onset peak over loudness, dB."""
    b = np.array([p[0] for p in pairs])
    a = np.array([p[1] for p in pairs])
    drop = float(np.median(b - a))
    return TransientLoss(len(pairs), float(np.median(b)), float(np.median(a)), drop)


def transient_loss(before: History, after: History) -> TransientLoss | None:
    """The loss of onset peaks over a whole programme (rows aligned one for one).

    The same measure the ``crushed_transients`` flag quotes over its span, so a
    summary and a flag give one number for one loss. None with fewer than
    ``ONSET_MIN_COUNT`` onsets.
    """
    n = min(len(before), len(after))
    if n == 0:
        return None
    s_b = np.asarray(before.short_term_lufs[:n], dtype=np.float64)
    tp_b = np.asarray(before.true_peak_dbtp[:n], dtype=np.float64)
    s_a = np.asarray(after.short_term_lufs[:n], dtype=np.float64)
    tp_a = np.asarray(after.true_peak_dbtp[:n], dtype=np.float64)
    onsets = onset_mask(power_db(np.asarray(before.channel_mean_square)[:n]))
    with np.errstate(invalid="ignore"):
        use = (
            onsets
            & (s_b >= SILENCE_LUFS)
            & np.isfinite(tp_b)
            & np.isfinite(tp_a)
            & np.isfinite(s_a)
        )
    if int(use.sum()) < ONSET_MIN_COUNT:
        return None
    return onset_loss(
        list(zip((tp_b - s_b)[use].tolist(), (tp_a - s_a)[use].tolist(), strict=True))
    )


def power_db(mean_square: np.ndarray) -> np.ndarray:
    """Row power in dB (mean square over channels); -inf for silence."""
    ms = np.asarray(mean_square, dtype=np.float64)
    power = ms.mean(axis=-1) if ms.ndim == 2 and ms.shape[-1] else np.zeros(len(ms))
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(power)


def onset_mask(power_db: np.ndarray) -> np.ndarray:
    """Which rows are onsets (vectorised :func:`is_onset`, for whole histories)."""
    p = np.asarray(power_db, dtype=np.float64)
    out = np.zeros(len(p), dtype=bool)
    if len(p) > 2:
        with np.errstate(invalid="ignore"):
            rise = p[2:] - np.maximum(p[1:-1], p[:-2])
        out[2:] = np.isfinite(p[2:]) & (rise >= ONSET_RISE_DB)
    return out


def is_onset(energy_db: float, previous_db: list[float]) -> bool:
    """At least ONSET_RISE_DB above each of the two rows before it."""
    if len(previous_db) < 2 or not math.isfinite(energy_db):
        return False
    return all(energy_db - p >= ONSET_RISE_DB for p in previous_db[-2:])
