"""The whole comparison: :func:`compare` explains AFTER as
``dynamics(gain * EQ(BEFORE))`` from the measures of the sibling modules, and
:class:`DiffResult` holds what it found."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from .align import Alignment, align, overlap
from .dynamics import LevelTransfer, Limiting, detect_limiting, level_transfer
from .eq import EqMeasurement, EqMove, measure_eq
from .signal import mono
from .stereo import Stereo, stereo_change
from .transients import TransientCrest, transient_crest

__all__ = ["DiffResult", "compare"]


_HIGHEST_HZ = 20000.0


@dataclass(frozen=True, slots=True)
class DiffResult:
    """Everything :func:`compare` measured; arrays are for plots, the rest for reports."""

    alignment: Alignment
    sample_rate: int
    duration_s: float  # length of the overlap that was compared
    eq: EqMeasurement  # the level-independent EQ; its arrays read as the result's own below
    # Dynamics.
    gain_db: float  # broadband gain on the quiet passages (the linear part of the transfer)
    transfer: LevelTransfer
    compressed: bool
    gain_reduction_db: float  # the fitted curve's gain reduction at the 95th-percentile level
    limiting: Limiting
    transients: TransientCrest
    stereo: Stereo
    warnings: tuple[str, ...] = field(default=())

    # The EQ's measures, as the result's own attributes (what reports and plots read).
    @property
    def curve_hz(self) -> np.ndarray:
        """1/6-octave centres of :attr:`curve_db`."""
        return self.eq.curve_hz

    @property
    def curve_db(self) -> np.ndarray:
        """The EQ curve, median over log-frequency = 0 dB; NaN where not measurable."""
        return self.eq.curve_db

    @property
    def fit_hz(self) -> np.ndarray:
        """1/12-octave centres: what the moves were fitted to."""
        return self.eq.fit_hz

    @property
    def fit_db(self) -> np.ndarray:
        """The curve the moves were fitted to."""
        return self.eq.fit_db

    @property
    def fitted_db(self) -> np.ndarray:
        """The moves' combined response at :attr:`fit_hz`."""
        return self.eq.fitted_db

    @property
    def moves(self) -> tuple[EqMove, ...]:
        """The EQ moves that explain the curve."""
        return self.eq.moves

    @property
    def before_spectrum_db(self) -> np.ndarray:
        """BEFORE's 1/6-octave band levels, dB re a full-scale sine."""
        return self.eq.before_spectrum_db

    @property
    def after_spectrum_db(self) -> np.ndarray:
        """AFTER's 1/6-octave band levels, dB re a full-scale sine."""
        return self.eq.after_spectrum_db


_MIN_RATIO = 1.2
_MIN_GAIN_REDUCTION_DB = 1.0
_MAX_RATIO = 20.0


def compare(
    before: np.ndarray,
    after: np.ndarray,
    sample_rate: int,
    *,
    top_hz: float | None = None,
    alignment: Alignment | None = None,
) -> DiffResult:
    """Align AFTER to BEFORE and explain it as dynamics(gain x EQ(BEFORE)); see the module doc.

    Args:
        before, after: ``(frames,)`` or ``(frames, channels)`` at ``sample_rate``;
            lengths and channel counts may differ (different counts are
            compared as mono sums).
        top_hz: highest frequency to describe (default 0.45 x the rate; give
            the lower Nyquist when one version was resampled up).
        alignment: skip the search and use this one.

    A doubtful alignment (``result.alignment.doubt``) is explained all the same:
    refusing it is the caller's decision (``earmark diff`` does unless forced).
    """
    x_all = _as_2d(before)
    y_all = _as_2d(after)
    warnings: list[str] = []
    if x_all.shape[1] != y_all.shape[1]:
        warnings.append(
            f"BEFORE has {x_all.shape[1]} channel(s) and AFTER {y_all.shape[1]}:"
            " compared as mono sums"
        )
        x_all = x_all.mean(axis=1, keepdims=True)
        y_all = y_all.mean(axis=1, keepdims=True)
    if alignment is None:
        alignment = align(x_all, y_all, sample_rate)
    x, y = overlap(x_all, y_all, alignment)
    top = min(_HIGHEST_HZ, 0.45 * sample_rate if top_hz is None else top_hz)
    xm, ym = mono(x), mono(y)  # float64; the stereo copies stay as given (float32)

    eq, xm_eq = measure_eq(xm, ym, sample_rate, top)
    transfer = level_transfer(xm_eq, ym, sample_rate)
    fit = transfer.fit
    if fit.ratio > _MAX_RATIO:
        fit = replace(fit, ratio=_MAX_RATIO)
        transfer = replace(transfer, fit=fit)
    active = transfer.weight > 0
    levels = transfer.in_db[active]
    if levels.size:
        quiet, loud = np.percentile(levels, [5, 95])
        gain_db = float(fit.gain_at(np.array([quiet]))[0]) + eq.offset_db
        reduction = float(fit.gain_at(np.array([quiet]))[0] - fit.gain_at(np.array([loud]))[0])
    else:
        gain_db, reduction = 0.0, 0.0
    compressed = (
        fit.ratio >= _MIN_RATIO
        and reduction >= _MIN_GAIN_REDUCTION_DB
        and fit.rms_error_db <= 0.7 * fit.flat_error_db
    )
    limiting = detect_limiting(x, y, sample_rate)
    transients = transient_crest(x, y, sample_rate)
    stereo = stereo_change(x, y, sample_rate)
    # Whether the alignment can be trusted is the alignment's to say (``alignment.doubt``);
    # the broadband correlation is no test of it: a master aligned to the sample after
    # +-10 dB of EQ, compression and limiting correlated 0.14 with its mix.
    return DiffResult(
        alignment=alignment,
        sample_rate=int(sample_rate),
        duration_s=x.shape[0] / sample_rate,
        eq=eq,
        gain_db=gain_db,
        transfer=transfer,
        compressed=bool(compressed),
        gain_reduction_db=max(reduction, 0.0),
        limiting=limiting,
        transients=transients,
        stereo=stereo,
        warnings=tuple(warnings),
    )


def _as_2d(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim == 1:
        return a[:, None]
    if a.ndim != 2:
        raise ValueError(f"audio must be shaped (frames,) or (frames, channels), got {a.shape}")
    return a
