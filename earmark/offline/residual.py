"""The residual: what a processing added or removed, heard on its own.

AFTER minus BEFORE, BEFORE aligned to the sample (and polarity) and gain-matched to
AFTER's integrated loudness, so a plain level change leaves nothing and what is left is
the processing itself (EQ, compression, limiting, saturation, width). ``diff`` reports
its level, its 1/3-octave spectrum (also against AFTER's, band by band: how much of each
band the processing changed) and where in time it is loudest; the same measure judges
how much of a master a reconstructed chain explains (the residual of MASTER against
the MIX rendered through the chain).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from earmark.meters.bank import integrated_lufs
from earmark.offline.analysis import meter_array

__all__ = ["PASSAGES", "Passage", "Residual", "residual"]

PASSAGES = 3  # the loudest passages listed
_PASSAGE_S = 3.0  # a short-term window (EBU R128)


@dataclass(frozen=True, slots=True)
class Passage:
    """A 3 s window where the residual is loudest (its short-term loudness)."""

    start_s: float
    end_s: float
    short_term_lufs: float


@dataclass(frozen=True)
class Residual:
    """The residual of AFTER against the aligned, gain-matched BEFORE.

    ``gain_db`` is the gain BEFORE got to match AFTER's loudness; ``integrated_lufs`` the
    residual's loudness (None: silent, the two are identical after the gain);
    ``below_after_lu`` how far under AFTER it sits; ``relative_db`` per band: the residual's
    level minus AFTER's (0 dB: the band is all new; -20 dB: a tenth of its amplitude
    changed); ``peak_dbfs`` its highest sample.
    """

    gain_db: float
    integrated_lufs: float | None
    below_after_lu: float | None
    peak_dbfs: float | None
    band_hz: tuple[float, ...]
    spectrum_db: tuple[float | None, ...]
    relative_db: tuple[float | None, ...]
    loudest: tuple[Passage, ...]

    def sentence(self, before: str = "BEFORE", after: str = "AFTER") -> str:
        """One line: how loud the change is, where in the spectrum and where in time."""
        if self.integrated_lufs is None or self.below_after_lu is None:
            return f"residual: nothing ({after} is {before} with a gain of {self.gain_db:+.1f} dB)"
        text = (
            f"residual ({after} minus {before}, aligned and gain-matched): "
            f"{self.integrated_lufs:.1f} LUFS, {self.below_after_lu:.1f} LU under {after}"
        )
        most = _most_changed(self.band_hz, self.relative_db)
        if most is not None:
            text += f"; most of it at {most[0]} ({most[1]:+.1f} dB against {after}'s band)"
        if self.loudest:
            p = self.loudest[0]
            text += f"; loudest at {p.start_s:.1f}-{p.end_s:.1f} s ({p.short_term_lufs:.1f} LUFS)"
        return text

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "gain_db": _r(self.gain_db),
            "integrated_lufs": _r(self.integrated_lufs),
            "below_after_lu": _r(self.below_after_lu),
            "peak_dbfs": _r(self.peak_dbfs),
            "band_hz": list(self.band_hz),
            "spectrum_db": [_r(v) for v in self.spectrum_db],
            "relative_db": [_r(v) for v in self.relative_db],
            "loudest": [
                {
                    "start_s": _r(p.start_s),
                    "end_s": _r(p.end_s),
                    "short_term_lufs": _r(p.short_term_lufs),
                }
                for p in self.loudest
            ],
        }


def residual(
    before_aligned: np.ndarray,
    after: np.ndarray,
    sample_rate: int,
    after_spectrum_db: Sequence[float | None] | None = None,
) -> Residual:
    """The residual of ``after`` against ``before_aligned`` (the same frames, already on
    AFTER's timeline and polarity), both (frames, channels) at ``sample_rate``.

    ``after_spectrum_db``: AFTER's long-term 1/3-octave spectrum if already measured
    (``Analysis.spectrum_long_db``), else it is measured here.
    """
    n = min(before_aligned.shape[0], after.shape[0])
    b = np.asarray(before_aligned[:n], dtype=np.float64)
    a = np.asarray(after[:n], dtype=np.float64)
    lb, la = integrated_lufs(b, sample_rate), integrated_lufs(a, sample_rate)
    gain_db = 0.0 if lb is None or la is None else la - lb
    delta = a - b * 10.0 ** (gain_db / 20.0)
    readings, history = meter_array(delta, sample_rate)
    if after_spectrum_db is None:
        after_spectrum_db = meter_array(a, sample_rate)[0].spectrum_long_db
    relative = tuple(
        None if r is None or x is None else r - x
        for r, x in zip(readings.spectrum_long_db, after_spectrum_db, strict=False)
    )
    peak = float(np.max(np.abs(delta))) if delta.size else 0.0
    il = readings.integrated_lufs
    return Residual(
        gain_db=gain_db,
        integrated_lufs=il,
        below_after_lu=None if il is None or la is None else la - il,
        peak_dbfs=20.0 * math.log10(peak) if peak > 0.0 else None,
        band_hz=tuple(readings.band_hz),
        spectrum_db=tuple(readings.spectrum_long_db),
        relative_db=relative,
        loudest=_loudest(history.t_s, history.short_term_lufs),
    )


def _loudest(t_s: np.ndarray, short_term: np.ndarray) -> tuple[Passage, ...]:
    """The PASSAGES loudest 3 s windows that do not overlap, loudest first."""
    st = np.where(np.isfinite(short_term), short_term, -np.inf)
    order = np.argsort(-st, kind="stable")
    picked: list[Passage] = []
    for i in order:
        if not np.isfinite(st[i]) or len(picked) >= PASSAGES:
            break
        end = float(t_s[i])
        start = max(0.0, end - _PASSAGE_S)
        if all(end <= p.start_s or start >= p.end_s for p in picked):
            picked.append(Passage(start, end, float(st[i])))
    return tuple(picked)


def _most_changed(
    band_hz: Sequence[float], relative_db: Sequence[float | None]
) -> tuple[str, float] | None:
    """The octave (three 1/3-octave bands, 63 Hz-16 kHz) where the residual is the largest
    share of AFTER, as (its name, dB)."""
    from earmark.meters.flags import hz_text

    best: tuple[str, float] | None = None
    for k in range(0, len(band_hz) - 2):
        vals = [relative_db[j] for j in range(k, k + 3)]
        if any(v is None for v in vals) or not 50.0 <= band_hz[k + 1] <= 16000.0:
            continue
        power = sum(10.0 ** (v / 10.0) for v in vals if v is not None) / 3.0
        level = 10.0 * math.log10(power)
        if best is None or level > best[1]:
            best = (f"the octave around {hz_text(band_hz[k + 1])}", level)
    return best


def _r(value: float | None, digits: int = 2) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), digits)
