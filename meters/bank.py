"""MeterBank: every earmark meter behind one streaming API (libebur128-shaped).

    bank = MeterBank(channels=2, sample_rate=48000)
    for block in blocks:            # any block size, float32 or float64, (frames, channels)
        bank.process(block)
    r = bank.readings()             # frozen Readings

The same object meters a live stream (``process`` is allocation-free for
C-contiguous float blocks and runs a single ``nogil`` numba kernel) and a file
(feed it chunks). Readings do not depend on how the input was cut into blocks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from . import kernels as K
from .bands import band_edges, bin_band_map, fft_size
from .channels import channel_weights
from .fft import fft_stages, fft_tables
from .kweighting import k_weighting_sos
from .readings import History, Readings
from .sharpness import sharpness_acum
from .truepeak import TAPS_PER_PHASE, interpolation_phases, oversampling_factor

MIN_SAMPLE_RATE = 8000
MAX_SAMPLE_RATE = 384000
_TILT_RANGE_HZ = (50.0, 16000.0)
_TILT_DYNAMIC_RANGE_DB = 60.0
_SHORT_SPECTRUM_S = 3.0


def _db20(x: float) -> float | None:
    return 20.0 * math.log10(x) if x > 0.0 else None


def _lufs(energy: float) -> float | None:
    return K.LOUDNESS_OFFSET + 10.0 * math.log10(energy) if energy > 0.0 else None


def _finite(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


class MeterBank:
    """Loudness (M/S/I, LRA), true/sample peak, RMS, crest, PLR/PSR, DR, spectrum, stereo.

    Args:
        channels: channel count (1 or more); BS.1770 weights follow the usual
            orders (5.0, 5.1 with LFE excluded, 7.1) unless ``weights`` is given.
        sample_rate: 8000-384000 Hz; K-weighting and the true-peak interpolator
            are derived for the rate.
        true_peak: measure true peak (else true-peak readings equal sample peaks).
        spectrum: measure the 1/3-octave spectrum and tilt.
        history_s: length of the 10 Hz history kept for curves.
        weights: per-channel BS.1770 weights overriding the defaults.
        spectrum_phase: where in its hop the first spectrum frame falls (0-1).
            Banks metering parallel paths in one callback take different
            phases so that their FFT frames land in different blocks.
    """

    def __init__(
        self,
        channels: int,
        sample_rate: int,
        *,
        true_peak: bool = True,
        spectrum: bool = True,
        history_s: float = 600.0,
        weights: Sequence[float] | None = None,
        spectrum_phase: float = 0.0,
    ) -> None:
        if not isinstance(channels, int | np.integer) or channels < 1:
            raise ValueError(f"channels must be an integer >= 1, got {channels!r}")
        if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
            raise ValueError(
                f"sample rate {sample_rate} Hz is outside the supported "
                f"{MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz"
            )
        self.channels = int(channels)
        self.sample_rate = int(sample_rate)
        self.true_peak = bool(true_peak)
        self.spectrum = bool(spectrum)
        if weights is None:
            self.weights = channel_weights(self.channels)
        else:
            self.weights = np.asarray(weights, dtype=np.float64)
            if self.weights.shape != (self.channels,):
                raise ValueError(f"weights must have {self.channels} values, got {len(weights)}")
        # libebur128's rounding of 100 ms, so sub-blocks agree with it at every rate.
        self.sub_len = (self.sample_rate + 5) // 10
        self._kw = k_weighting_sos(self.sample_rate)
        self._oversampling = oversampling_factor(self.sample_rate)
        self._tp_taps = interpolation_phases(self._oversampling)
        self._taps = TAPS_PER_PHASE
        n_fft = fft_size(self.sample_rate)
        self.n_fft = n_fft
        band_hz, _, _ = band_edges(self.sample_rate)
        self._band_hz = np.ascontiguousarray(band_hz, dtype=np.float64)
        self._band_tuple = tuple(float(f) for f in self._band_hz)
        self._fft_rev, self._fft_tw = fft_tables(n_fft)
        window = np.hanning(n_fft + 1)[:-1]  # periodic Hann
        self._fft_win = window.astype(np.float64)
        # Band powers -> sine-referenced dB: 2/(N sum w^2) per one-sided bin, x2 for a sine.
        self._band_norm = 4.0 / (n_fft * float(np.sum(window**2)))
        self._bin_band, self._bin_w = bin_band_map(self.sample_rate, n_fft)
        # Hann frames back to back (no overlap): for the 3 s and programme
        # averages this stays unbiased on programme material at half the FFT
        # cost of 50% overlap; the price is that a single transient at a frame
        # edge weighs less in the short-term spectrum.
        self.fft_hop = n_fft
        hop_s = self.fft_hop / self.sample_rate
        self._spec_frames = max(1, int(round(_SHORT_SPECTRUM_S / hop_s)))
        self._history_len = max(1, int(round(history_s * 10)))
        self._fft_start = int(spectrum_phase % 1.0 * self.fft_hop)
        self.reset()

    def reset(self) -> None:
        """Forget everything measured (start a new programme)."""
        c = self.channels
        nb = len(self._band_hz)
        self._kstate = np.zeros((c, 4))
        self._acc = np.zeros((4, c))
        self._tot = np.zeros((3, c))
        self._recent_tp = np.zeros(c)
        self._tp_lin = np.zeros((c, self._taps - 1 + self.sub_len), dtype=np.float32)
        self._tp_over = np.zeros((max(1, self._oversampling - 1), self.sub_len), dtype=np.float32)
        self._tp_prev = np.zeros((c, 2))
        self._ring_e = np.zeros(K.SUB_PER_SHORT_TERM)
        self._ring_tp = np.zeros(K.SUB_PER_SHORT_TERM)
        self._ring_st = np.zeros((K.SUB_PER_MOMENTARY, 3))
        self._hist_i = np.zeros((2, K.HIST_BINS))
        self._hist_s = np.zeros((2, K.HIST_BINS))
        self._psr_hist = np.zeros((K.PSR_ROWS, K.PSR_COLS), dtype=np.int64)
        self._psr_min = np.full(K.PSR_ROWS, np.inf)
        self._corr_min = np.full(100, 2.0)
        self._dr_acc = np.zeros((2, c))
        self._dr_hist = np.zeros((c, 2, K.DR_BINS))
        self._dr_peaks = np.zeros((c, 2))
        self._history = np.full((K.H_ROWS, self._history_len), np.nan)
        self._chan_hist = np.full((self._history_len, c, 2), np.nan)
        self._spec_hist = np.full((self._history_len, nb), np.nan)
        self._clip_run = np.zeros(c, dtype=np.int64)
        # Double buffer: samples fill one (windowed, bit-reversed) while the previous
        # frame is transformed in the other, a stage at a time (see K._spectrum_step).
        self._fft_work = np.zeros((2, self.n_fft), dtype=np.complex128)
        self._spec_long = np.zeros((2, nb))
        self._spec_ring = np.zeros((self._spec_frames, 2, nb))
        self._cnt = np.zeros(K.C_COUNT, dtype=np.int64)
        self._sc = np.zeros(K.S_COUNT)
        self._sc[K.S_CUR_M] = -1.0
        self._sc[K.S_CUR_S] = -1.0
        self._sc[K.S_CUR_CORR] = np.nan
        self._sc[K.S_CUR_PSR] = np.nan
        self._cnt[K.C_FFT_POS] = self._fft_start
        self._cnt[K.C_FFT_STEP] = -1
        steps = fft_stages(self.n_fft) + 1
        self._cnt[K.C_FFT_SPACING] = max(1, self.fft_hop // (4 * steps))

    # -- streaming ---------------------------------------------------------------

    def process(self, block: np.ndarray) -> None:
        """Meter ``block``: shape (frames, channels), or (frames,) for one channel.

        float32 and float64 C-contiguous blocks are metered in place without any
        allocation; other layouts are copied first. NaN/Inf samples are metered
        as zero and counted (``Readings.non_finite_samples``).
        """
        if block.ndim == 1 and self.channels == 1:
            block = block.reshape(-1, 1)
        if block.ndim != 2 or block.shape[1] != self.channels:
            raise ValueError(
                f"block shape {block.shape} does not match {self.channels} channel(s); "
                "expected (frames, channels)"
            )
        if block.dtype != np.float32 and block.dtype != np.float64:
            if not np.issubdtype(block.dtype, np.floating):
                raise TypeError(f"block dtype must be float32 or float64, got {block.dtype}")
            block = block.astype(np.float64)
        if not block.flags.c_contiguous:
            block = np.ascontiguousarray(block)
        if block.shape[0] == 0:
            return
        K.process_block(
            block, self._kw, self.weights, self._kstate, self.sub_len, self._acc, self._tot,
            self._recent_tp, self._tp_taps, self._tp_lin, self._tp_over, self._tp_prev,
            self.true_peak, self._ring_e, self._ring_tp, self._ring_st, self._hist_i,
            self._hist_s, self._psr_hist, self._psr_min, self._corr_min, self._dr_acc,
            self._dr_hist, self._dr_peaks, self._history, self._chan_hist, self._spec_hist,
            self._clip_run, self.fft_hop, self._fft_work, self._fft_rev,
            self._fft_tw, self._fft_win, self._bin_band, self._bin_w, self._spec_long,
            self._spec_ring, self._band_norm, self.spectrum, self._cnt, self._sc,
        )  # fmt: skip

    # -- reading -----------------------------------------------------------------

    @property
    def frames(self) -> int:
        """Frames metered since the start or the last reset."""
        return int(self._cnt[K.C_FRAMES])

    def integrated_lufs(self) -> float | None:
        """Gated integrated loudness (BS.1770-4), or None before the first 400 ms block."""
        return _lufs(K.gated_mean_energy(self._hist_i, K.INTEGRATED_RELATIVE_LU))

    def readings(self) -> Readings:
        """A snapshot of every meter.

        Reading also restarts the "recent" true-peak hold, so a display polling at
        30 Hz still sees every over that happened between two polls.
        """
        cnt, sc = self._cnt, self._sc
        subs = int(cnt[K.C_SUBS])
        frames = int(cnt[K.C_FRAMES])
        integrated = self.integrated_lufs()

        # Programme totals include the sub-block in progress.
        power = self._tot[0] + self._acc[1]
        peak = np.maximum(self._tot[1], self._acc[2])
        tpeak = np.maximum(self._tot[2], self._acc[3])
        tp_max = float(tpeak.max()) if frames else 0.0
        sp_max = float(peak.max()) if frames else 0.0
        recent = float(self._recent_tp.max())
        self._recent_tp[:] = 0.0

        rms = None
        if frames:
            rms = _db10(float(power.sum()) / (frames * self.channels))
        sample_peak = _db20(sp_max)
        true_peak = _db20(tp_max)
        crest = sample_peak - rms if sample_peak is not None and rms is not None else None
        plr = true_peak - integrated if true_peak is not None and integrated is not None else None

        momentary = _lufs(sc[K.S_CUR_M]) if subs >= K.SUB_PER_MOMENTARY else None
        short_term = _lufs(sc[K.S_CUR_S]) if subs >= K.SUB_PER_SHORT_TERM else None
        lra = _finite(K.loudness_range(self._hist_s))
        stats_gate = self._stats_gate_row()
        psr_min, psr_median = self._psr_stats(stats_gate)

        long_db, short_db, tilt = self._spectrum()
        sharp_long, sharp_short = self._sharpness(long_db, short_db)
        dr_db = self._dr()

        corr_prog, side_mid = self._stereo_programme()
        corr_min = None
        if self.channels >= 2 and stats_gate is not None:
            rows = self._corr_min[stats_gate:]
            if rows.min() <= 1.0:
                corr_min = float(rows.min())

        return Readings(
            sample_rate=self.sample_rate,
            channels=self.channels,
            duration_s=frames / self.sample_rate,
            momentary_lufs=momentary,
            short_term_lufs=short_term,
            integrated_lufs=integrated,
            loudness_range_lu=lra,
            max_momentary_lufs=_lufs(sc[K.S_MAX_M]),
            max_short_term_lufs=_lufs(sc[K.S_MAX_S]),
            true_peak_dbtp=true_peak,
            true_peak_channels_dbtp=tuple(_db20(float(v)) for v in tpeak),
            recent_true_peak_dbtp=_db20(recent),
            sample_peak_dbfs=sample_peak,
            sample_peak_channels_dbfs=tuple(_db20(float(v)) for v in peak),
            rms_dbfs=rms,
            crest_db=crest,
            plr_db=plr,
            psr_db=_finite(sc[K.S_CUR_PSR]),
            psr_min_db=psr_min,
            psr_median_db=psr_median,
            dr=None if dr_db is None else int(round(dr_db)),
            dr_db=dr_db,
            band_hz=self._band_tuple,
            spectrum_long_db=long_db,
            spectrum_short_db=short_db,
            spectral_tilt_db_per_oct=tilt,
            correlation=_finite(sc[K.S_CUR_CORR]) if self.channels >= 2 else None,
            correlation_min=corr_min,
            correlation_programme=corr_prog,
            side_to_mid_db=side_mid,
            non_finite_samples=int(cnt[K.C_NONFINITE]),
            clipped_samples=int(cnt[K.C_CLIPPED]),
            sharpness_acum=sharp_long,
            sharpness_short_acum=sharp_short,
        )

    @property
    def history_rows(self) -> int:
        """10 Hz history rows written since the start or the last reset (complete rows only)."""
        return int(self._cnt[K.C_HIST_ROWS])

    def history(self, since: int | None = None) -> History:
        """The 10 Hz curves kept so far (up to ``history_s``), oldest first.

        ``since`` asks only for rows numbered ``since`` and later (rows count
        from 0 at the start or last reset; ``History.first_row`` says where the
        result starts), so a consumer polling a live bank reads each row once.
        Rows older than the ring (``history_s``) are gone; the result then starts
        at the oldest row kept. Safe to call from another thread while the audio
        thread meters: only complete rows are returned.
        """
        total = int(self._cnt[K.C_HIST_ROWS])
        kept = min(total, self._history_len)
        first = total - kept
        if since is not None:
            first = min(max(first, int(since)), total)
        n = total - first
        # Row r lives in slot r % len (the ring's write position follows the row count).
        idx = (np.arange(first, total)) % self._history_len
        h = self._history[:, idx]
        t = (np.arange(n) + first + 1) * self.sub_len / self.sample_rate
        spec = self._spec_hist[idx]
        spec_db = 10.0 * np.log10(np.maximum(spec, 1e-300))  # NaN (no spectrum yet) stays NaN
        spec_db[spec <= 1e-20] = np.nan
        return History(
            t_s=t,
            momentary_lufs=h[K.H_MOMENTARY],
            short_term_lufs=h[K.H_SHORT_TERM],
            true_peak_3s_dbtp=h[K.H_TP_3S],
            psr_db=h[K.H_PSR],
            true_peak_dbtp=h[K.H_TP],
            sample_peak_dbfs=h[K.H_SAMPLE_PEAK],
            clipped_samples=h[K.H_CLIPPED].astype(np.int64),
            channel_mean_square=self._chan_hist[idx, :, 0],
            channel_peak=self._chan_hist[idx, :, 1],
            spectrum_db=spec_db,
            band_hz=self._band_tuple,
            first_row=first,
            sample_rate=self.sample_rate,
            samples_per_row=self.sub_len,
        )

    # -- helpers -------------------------------------------------------------------

    def _stats_gate_row(self) -> int | None:
        """First 1 LU row of the PSR/correlation tables inside the LRA gates."""
        gate = K.relative_gate_lufs(self._hist_s, K.LRA_RELATIVE_LU)
        if math.isnan(gate):
            return None
        return int(max(K.HIST_MIN_LUFS, gate) - K.HIST_MIN_LUFS)

    def _psr_stats(self, row: int | None) -> tuple[float | None, float | None]:
        if row is None:
            return None, None
        lowest, median = K.psr_stats(self._psr_min, self._psr_hist, row)
        return _finite(lowest), _finite(median)

    def _spectrum(self) -> tuple[tuple[float | None, ...], tuple[float | None, ...], float | None]:
        """Programme and 3 s band levels, and the tilt of the programme's (one kernel call)."""
        n_frames = int(self._cnt[K.C_FFT_FRAMES])
        if not self.spectrum or n_frames == 0:
            none = (None,) * len(self._band_hz)
            return none, none, None
        lo, hi = _TILT_RANGE_HZ
        out = np.empty((2, len(self._band_hz)))  # per call: readings may come from two threads
        tilt = K.band_summary(
            self._spec_long, self._spec_ring, n_frames, self._spec_frames, self._band_norm,
            self._band_hz, lo, hi, _TILT_DYNAMIC_RANGE_DB, out,
        )  # fmt: skip
        long_db, short_db = out.tolist()
        return _nones(long_db), _nones(short_db), _finite(tilt)

    def _sharpness(
        self, long_db: tuple[float | None, ...], short_db: tuple[float | None, ...]
    ) -> tuple[float | None, float | None]:
        """Sharpness of the programme's and the last 3 s spectra (one kernel call)."""
        if not self.spectrum or all(v is None for v in long_db):
            return None, None
        s = sharpness_acum([long_db, short_db], self._band_tuple, sample_rate=self.sample_rate)
        return _finite(float(s[0])), _finite(float(s[1]))

    def _dr(self) -> float | None:
        blocks = int(self._cnt[K.C_DR_BLOCKS])
        if blocks == 0:
            return None
        value = K.dr_db(self._dr_hist, self._dr_peaks, self.weights, blocks)
        return None if math.isnan(value) else float(value)

    def _stereo_programme(self) -> tuple[float | None, float | None]:
        if self.channels < 2:
            return None, None
        sc = self._sc
        ll = sc[K.S_ST_LL] + sc[K.S_SUB_LL]
        rr = sc[K.S_ST_RR] + sc[K.S_SUB_RR]
        lr = sc[K.S_ST_LR] + sc[K.S_SUB_LR]
        if ll <= 1e-20 or rr <= 1e-20:
            return None, None
        corr = lr / math.sqrt(ll * rr)
        mid = (ll + rr + 2.0 * lr) / 4.0
        side = (ll + rr - 2.0 * lr) / 4.0
        # None when either is absent (dual mono has no side, L = -R no mid).
        side_mid = 10.0 * math.log10(side / mid) if mid > 1e-20 and side > 1e-20 else None
        return float(corr), side_mid


def _nones(values: list[float]) -> tuple[float | None, ...]:
    return tuple(None if v != v else v for v in values)  # NaN -> None


def _db10(x: float) -> float | None:
    return 10.0 * math.log10(x) if x > 0.0 else None


def integrated_lufs(x: np.ndarray, sample_rate: int) -> float | None:
    """Integrated loudness (BS.1770-4, LUFS) of ``(frames, channels)`` audio; None for
    silence. Only the loudness meters run (no true peak, no spectrum): the quick measure
    renders are matched with."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[:, None]
    bank = MeterBank(x.shape[1], int(sample_rate), true_peak=False, spectrum=False)
    bank.process(np.ascontiguousarray(x))
    return bank.readings().integrated_lufs
