"""What a MeterBank reports: one frozen snapshot of every meter.

Values are plain floats in the unit their name carries. ``None`` means the
measure is undefined for the audio so far (silence, too short for the window,
mono material for a stereo measure) or its mode is off; it is never ``-inf``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .sharpness import sharpness_acum


@dataclass(frozen=True, slots=True)
class Readings:
    """A snapshot of every meter of a :class:`~earmark.meters.MeterBank`."""

    sample_rate: int
    channels: int
    duration_s: float  # audio processed so far

    # Loudness (ITU-R BS.1770-4 / EBU R128), LUFS and LU.
    momentary_lufs: float | None  # last 400 ms
    short_term_lufs: float | None  # last 3 s
    integrated_lufs: float | None  # gated, since start/reset
    loudness_range_lu: float | None  # EBU Tech 3342
    max_momentary_lufs: float | None
    max_short_term_lufs: float | None

    # Peaks (true peak: BS.1770-4 Annex 2, oversampled), dBTP / dBFS.
    true_peak_dbtp: float | None  # max over the programme, all channels
    true_peak_channels_dbtp: tuple[float | None, ...]
    recent_true_peak_dbtp: (
        float | None
    )  # max since the previous readings() (peak hold that survives polling)
    sample_peak_dbfs: float | None
    sample_peak_channels_dbfs: tuple[float | None, ...]

    # Level and dynamics, dB.
    rms_dbfs: float | None  # programme RMS, power mean over channels
    crest_db: float | None  # sample peak - RMS, programme
    plr_db: float | None  # max true peak - integrated loudness
    psr_db: float | None  # true peak over the last 3 s - short-term loudness
    psr_min_db: float | None  # lowest PSR over gated short-term windows
    psr_median_db: float | None
    dr: int | None  # crest-factor dynamic range, DR14 style (rounded)
    dr_db: float | None  # the same, unrounded

    # Spectrum: 1/3-octave band power, dBFS per band (None where no energy).
    band_hz: tuple[float, ...]
    spectrum_long_db: tuple[float | None, ...]  # programme average
    spectrum_short_db: tuple[float | None, ...]  # last ~3 s
    spectral_tilt_db_per_oct: (
        float | None
    )  # slope of 1/3-oct band levels, 50 Hz-16 kHz; pink noise = 0

    # Stereo (first two channels), None for mono.
    correlation: float | None  # last 400 ms
    correlation_min: float | None  # lowest 400 ms correlation where the signal is above the gate
    correlation_programme: float | None
    side_to_mid_db: float | None  # side energy relative to mid energy, programme

    # Input health.
    non_finite_samples: int = 0  # NaN/Inf samples replaced by 0 before metering
    clipped_samples: int = 0  # samples in runs of >= 3 at full scale, all channels

    # Psychoacoustic sharpness (DIN 45692 on ISO 532-1 loudness), acum, each spectrum
    # heard at the loudness of K-20 pink noise (meters.sharpness): the balance, not the level.
    sharpness_acum: float | None = None  # of the programme's long-term spectrum
    sharpness_short_acum: float | None = None  # of the last ~3 s spectrum


@dataclass(frozen=True, slots=True)
class History:
    """Meter curves at 10 Hz (one row per 100 ms sub-block), oldest first.

    These rows are what the detectors (:mod:`earmark.meters.detectors`) read,
    live and offline alike. Undefined values are NaN (silence, before a
    window has filled, spectrum off).
    """

    t_s: np.ndarray  # end time of each row, seconds from start
    momentary_lufs: np.ndarray  # 400 ms ending at the row
    short_term_lufs: np.ndarray  # 3 s ending at the row
    true_peak_3s_dbtp: np.ndarray  # max true peak over the same 3 s window
    psr_db: np.ndarray  # true_peak_3s_dbtp - short_term_lufs
    # Per row (this 100 ms only), max over channels.
    true_peak_dbtp: np.ndarray = field(default_factory=lambda: np.zeros(0))
    sample_peak_dbfs: np.ndarray = field(default_factory=lambda: np.zeros(0))
    # Samples in full-scale runs (>= 3 of one sign), all channels.
    clipped_samples: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    # Per row and channel, linear: mean of x**2 and max |x| over the row.
    channel_mean_square: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    channel_peak: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    # Short-term (last ~3 s) 1/3-octave spectrum at the end of each row: (rows, bands),
    # dB re a full-scale sine, mid + side power (as Readings.spectrum_short_db).
    spectrum_db: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    band_hz: tuple[float, ...] = ()
    first_row: int = 0  # number of the first row (rows count from 0 at the start/reset)
    sample_rate: int = 0
    samples_per_row: int = 0  # the 100 ms sub-block, libebur128's rounding

    def __len__(self) -> int:
        return len(self.t_s)

    def sharpness_acum(self) -> np.ndarray:
        """DIN 45692 sharpness (acum) of each row's 3 s spectrum, heard at the K-20
        listening loudness (:mod:`earmark.meters.sharpness`); NaN without a spectrum.

        Computed on each call, about 3 us a row, so that the rows cost nothing to
        whoever does not ask (``analyze`` reports the programme's, from Readings).
        """
        if self.spectrum_db.size == 0:
            return np.full(len(self), np.nan)
        # A hand-made History may not say its rate; the K-weighting of the loudness
        # normalisation barely depends on it below 20 kHz.
        rate = self.sample_rate or 48000
        return sharpness_acum(self.spectrum_db, self.band_hz, sample_rate=rate)
