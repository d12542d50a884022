"""What a transformation did: align two versions of a programme and explain the difference.

The numeric half of ``earmark diff`` (DESIGN.md, "Transformation report"). It
works on two arrays at one sample rate, shaped ``(frames, channels)``:

1. :func:`align` finds the offset (and a polarity flip) by cross-correlation,
   coarse on a decimated copy over the whole programme, then to the sample on
   the full-rate signal near the coarse lag, with sub-sample refinement, and
   says how far to trust it (``Alignment.confidence`` and ``doubt``).
2. :func:`compare` explains AFTER as ``dynamics(gain * EQ(BEFORE))``:

   - the EQ is the transfer function ``H = Sxy / Sxx`` of the mids (Welch,
     Blackman-Harris frames) measured after dividing AFTER by its broadband
     gain envelope. A compressor multiplies the signal by a gain that follows
     the level; left in, loud frames (kick-heavy, bass-heavy) would get less
     gain than quiet ones and the ratio of long-term spectra would show a low
     cut that no EQ made. So the estimate alternates three times: shape ->
     BEFORE through the shape (minimum-phase FIR) -> gain envelope (10 ms
     windows) -> AFTER / envelope -> shape, with frames holding gain
     reduction weighted down. ``H1`` ignores what is uncorrelated with BEFORE
     (limiter distortion, noise), its chance correlation over K frames is
     subtracted, and bands where BEFORE has next to nothing (below its
     neighbourhood, or 60 dB below its loudest band) are not measured.
   - the EQ curve is that shape smoothed to 1/6 octave, with the median over
     log-frequency as 0 dB (the description "the mids were left alone"; a gain
     plus a shelf is otherwise indistinguishable from a shelf the other way);
     :func:`fit_eq_moves` summarises it as shelves, bells and cuts (RBJ
     cookbook biquads, the shapes pedalboard/JUCE and most EQs use).
   - the level transfer is the window-by-window (20 ms) gain of AFTER over
     ``EQ(BEFORE)`` against the input level; a soft-knee compressor curve
     fitted to it gives the gain of the quiet passages (``gain_db``), the
     threshold and the ratio. The input level is a peak envelope of the mid,
     the quantity a compressor's detector follows, with the attack and release
     that best explain the gain trace, so the threshold reads like the
     plugin's knob.
   - limiting is a pile-up of window peaks at one ceiling in AFTER that
     BEFORE does not have; transient crest compares the peak of each onset
     found in BEFORE with the loudness around it, in both versions.
   - stereo: side-to-mid energy (overall and per band) and correlation.

Everything is numpy (no scipy at run time). Levels are dB re full scale
(a full-scale sample peak is 0 dBFS); frequencies in Hz.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numba as nb
import numpy as np

__all__ = [
    "Alignment",
    "CompressorFit",
    "DiffResult",
    "EqMove",
    "LevelTransfer",
    "Limiting",
    "Stereo",
    "Transients",
    "align",
    "compare",
    "detect_limiting",
    "eq_move_response_db",
    "fit_compressor",
    "fit_eq_moves",
    "format_hz",
    "level_transfer",
    "log_grid",
    "overlap",
    "stereo_change",
    "transient_crest",
]

_COARSE_RATE_HZ = 2000.0  # decimated rate of the coarse alignment search
_FINE_SEGMENT_S = 4.0  # length of the full-rate correlation window
_SPECTRUM_FRAME_S = 0.34  # Welch frame of the transfer function (16384 at 48 kHz)
_FIR_FRAME_S = 0.17  # minimum-phase FIR applying an EQ shape
_ENVELOPE_WINDOW_S = 0.01  # gain envelope window (hop is half of it)
_LEVEL_WINDOW_S = 0.02  # level-transfer window (hop is half of it)
_MAX_THRESHOLD_PERCENTILE = 95  # at least 5 % of the programme above a fitted threshold
_COARSE_STRIDE = 2  # every n-th window while choosing the detector time constants
_BINNED = True
_PEAK_WINDOW_S = 0.02  # window of the peak pile-up (limiting) statistic
_ACTIVE_RANGE_DB = 40.0  # windows within this of the loudest count as programme
_LOWEST_HZ = 20.0
_HIGHEST_HZ = 20000.0
_CURVE_FRACTION = 6  # eq_curve: 1/6-octave smoothing and spacing
_FIT_FRACTION = 12  # the curve the moves are fitted to: 1/12 octave
_RELIABLE_RANGE_DB = 60.0  # bands this far below BEFORE's loudest band are not measured
_MIN_COHERENCE = 0.3
_VALLEY_DB = 12.0  # a band this far below its neighbourhood's median is not measured
_LINEAR_WEIGHT_DB = 1.5
_WIDTH_BANDS_HZ = ((20.0, 200.0), (200.0, 4000.0), (4000.0, 20000.0))


# -- alignment ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Alignment:
    """Where AFTER sits relative to BEFORE: ``after[n + offset] ~ polarity * before[n]``.

    ``confidence`` is the height of the whitened cross-correlation (GCC-PHAT)
    peak over the fine window, normalised so that two identical signals give
    1.0: the share of the spectrum (each band weighted alike) whose phase agrees
    on this offset. Gain and EQ leave it near 1, compression and limiting take
    a little off, and two unrelated signals give about 0.01 (chance).
    ``peak_ratio`` is that peak over the highest one elsewhere within a
    quarter of the fine window (a reverb or a time stretch spreads the peak
    into many), ``coarse_agrees`` says the full-rate search confirmed the
    decimated one. ``doubt`` says, in one sentence, why the offset should not
    be trusted (None when it can be).
    """

    offset_samples: int  # positive: AFTER starts later (is delayed)
    offset_fraction: float  # sub-sample part, -0.5..0.5 samples
    polarity: int  # +1, or -1 when AFTER is inverted
    correlation: float  # normalised correlation at the offset over the fine window, 0..1
    sample_rate: int
    confidence: float = 1.0  # normalised GCC-PHAT peak, 0..1 (1: identical)
    peak_ratio: float = math.inf  # the peak over the next-highest one
    coarse_agrees: bool = True  # the fine lag is within a coarse sample of the coarse one
    doubt: str | None = None  # why the offset is doubtful; None when it is trusted

    @property
    def offset_ms(self) -> float:
        """The offset in milliseconds, sub-sample refined."""
        return (self.offset_samples + self.offset_fraction) * 1000.0 / self.sample_rate

    @property
    def doubtful(self) -> bool:
        """The offset should not be trusted (see ``doubt``)."""
        return self.doubt is not None


# What makes an alignment doubtful (inference, calibrated on 140 pedalboard-processed
# versions of 14 game-music excerpts (gain, EQ +-10 dB, compression 2-10:1, limiting,
# offsets of +-3 s, polarity, combinations), whose lowest confidence was 0.64 and lowest
# peak ratio 7.5, against 55 pairs that are not versions of one programme (two pieces,
# a 5-10 % time stretch, a fully wet reverb, noise), whose highest were 0.05 and 1.03).
_MIN_CONFIDENCE = 0.1
_MIN_PEAK_RATIO = 3.0
_PEAK_GUARD_S = 0.001  # the next peak is looked for this far from the peak
_FINE_WIDEST = 0.25  # the fine search widens up to this fraction of its window either side


def align(
    before: np.ndarray, after: np.ndarray, sample_rate: int, *, max_offset_s: float | None = None
) -> Alignment:
    """Find the offset and polarity of ``after`` relative to ``before`` (same rate).

    Coarse: GCC-PHAT (whitened cross-correlation, so an EQ or a tilt does not
    smear the peak) of box-decimated mono sums at about 2 kHz, over every lag
    that leaves an overlap (or within ``max_offset_s``). Fine: the same at the
    full rate between the loudest few seconds of BEFORE and the stretch of
    AFTER the coarse lag puts under them, within a few coarse samples of the
    coarse lag (widened while the peak sits on the edge of the search), refined
    between samples by a parabola through the peak.

    Both searches work on signals with their mean removed and their ends
    tapered to zero. A cut-off end is a step, and a step has energy at every
    frequency; whitening gives the bands where the music has next to nothing
    (the top octaves of a dark or lossy-coded piece) as much say as the others,
    and there the steps dominate: their correlation peaks where the two
    windows' edges meet, on the edge of the fine search, not at the music's
    offset (a 45 s blues excerpt diffed against itself came out 52 samples off
    and inverted that way).

    The result carries its confidence and, when the peak is weak, not clearly
    above the rest, or the two searches disagree, a ``doubt``.
    """
    x = _mono(before)
    y = _mono(after)
    if x.size == 0 or y.size == 0:
        raise ValueError("cannot align empty audio")
    limit = x.size + y.size if max_offset_s is None else int(max_offset_s * sample_rate)
    d = max(1, int(sample_rate // _COARSE_RATE_HZ))
    xc, yc = _box_decimate(x, d), _box_decimate(y, d)
    lo = max(-(xc.size - 1), -(limit // d))
    hi = min(yc.size - 1, limit // d)
    coarse_lags = np.arange(lo, hi + 1)
    rc, _ = _gcc_phat(_tapered(xc, 0.02), _tapered(yc, 0.02), _next_pow2(xc.size + yc.size))
    coarse = int(coarse_lags[int(np.argmax(np.abs(rc[coarse_lags % rc.size])))])
    centre = coarse * d

    # Fine: the loudest stretch of BEFORE that AFTER covers at the coarse lag, against
    # the stretch of AFTER under it (both Hann-windowed, so neither has an edge).
    n_seg = min(int(_FINE_SEGMENT_S * sample_rate), x.size)
    start = _loudest_start(x, n_seg, centre, y.size)
    seg = x[start : start + n_seg]
    r, norm = _gcc_phat(
        _tapered(seg, 0.5), _tapered(_slice_padded(y, start + centre, n_seg), 0.5), 2 * n_seg
    )
    widest = max(1, int(_FINE_WIDEST * n_seg))
    margin = min(2 * d + 8, widest)
    while True:
        lags = np.arange(-margin, margin + 1)
        vals = r[lags % r.size]
        k = int(np.argmax(np.abs(vals)))
        on_edge = k in (0, lags.size - 1)
        if not on_edge or margin >= widest:
            break
        margin = min(4 * margin, widest)  # the peak is on the edge: widen and search again
    polarity = 1 if vals[k] >= 0 else -1
    frac = 0.0
    if not on_edge:
        a, b, c = abs(vals[k - 1]), abs(vals[k]), abs(vals[k + 1])
        den = a - 2.0 * b + c
        if den < 0:
            frac = float(np.clip(0.5 * (a - c) / den, -0.5, 0.5))
    lag = centre + int(lags[k])
    yseg = _slice_padded(y, start + lag, n_seg)
    den = math.sqrt(float(np.dot(seg, seg)) * float(np.dot(yseg, yseg)))
    rho = abs(float(np.dot(seg, yseg))) / den if den > 0 else 0.0

    confidence = float(abs(vals[k]) / norm) if norm > 0 else 0.0
    around = np.arange(-widest, widest + 1)
    # Past 1 ms: a spectrum that stops at 4 kHz (a dark or lossy-coded piece) makes the
    # peak a sinc whose own side lobes, 22 % of it, are a few samples away.
    guard = int(_PEAK_GUARD_S * sample_rate)
    peak_ratio = _peak_ratio(np.abs(r[around % r.size]), int(lags[k]) + widest, guard)
    agrees = abs(lag - centre) <= d + 1
    offset_ms = (lag + frac) * 1000.0 / sample_rate
    doubt = None
    if confidence < _MIN_CONFIDENCE:
        doubt = (
            f"only {confidence * 100:.0f} % of the spectrum agrees on the best offset"
            f" ({offset_ms:+.1f} ms; {_MIN_CONFIDENCE * 100:.0f} % needed): the two may not"
            " be versions of the same audio"
        )
    elif on_edge:
        doubt = (
            f"the fine search found no peak within {widest * 1000.0 / sample_rate:.0f} ms"
            f" of the coarse offset ({centre * 1000.0 / sample_rate:+.1f} ms)"
        )
    elif peak_ratio < _MIN_PEAK_RATIO:
        doubt = (
            f"the correlation peak at {offset_ms:+.1f} ms is only {peak_ratio:.1f} times the"
            f" next one ({_MIN_PEAK_RATIO:.0f} needed): one may be time-stretched or drowned"
            " in reverb, or not a version of the other"
        )
    elif not agrees:
        doubt = (
            f"the coarse and fine searches disagree ({centre * 1000.0 / sample_rate:+.1f}"
            f" ms against {offset_ms:+.1f} ms)"
        )
    return Alignment(
        lag, frac, polarity, rho, int(sample_rate), confidence, peak_ratio, agrees, doubt
    )


def overlap(
    before: np.ndarray, after: np.ndarray, alignment: Alignment
) -> tuple[np.ndarray, np.ndarray]:
    """The stretches of ``before`` and ``after`` that play together, AFTER's polarity undone."""
    lag = alignment.offset_samples
    x = before[max(0, -lag) :]
    y = after[max(0, lag) :]
    n = min(x.shape[0], y.shape[0])
    y = y[:n]
    if alignment.polarity < 0:
        y = -y
    return x[:n], y


def _mono(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim == 1:
        return a.astype(np.float64)
    return a.mean(axis=1, dtype=np.float64)


def _box_decimate(x: np.ndarray, d: int) -> np.ndarray:
    n = x.size // d
    if n == 0:
        return x[:1].copy()
    return x[: n * d].reshape(n, d).mean(axis=1)


def _next_pow2(n: int) -> int:
    return 1 << max(1, int(n - 1).bit_length())


def _phat(cross: np.ndarray) -> np.ndarray:
    """``cross`` whitened: unit magnitude, except in bins more than ``_RELIABLE_RANGE_DB``
    below the strongest (their 99th percentile), which keep their weight relative to that
    floor. Whatever a dark or lossy-coded piece has up there (rounding, codec noise) says
    nothing about the offset, and more than half the bins can be up there: a floor set
    by the median would whiten them all."""
    mag = np.abs(cross)
    top = float(np.percentile(mag, 99)) if mag.size else 0.0
    floor = top * 10.0 ** (-_RELIABLE_RANGE_DB / 10.0) + 1e-300
    return cross / np.maximum(mag, floor)


def _gcc_phat(x: np.ndarray, y: np.ndarray, n_min: int) -> tuple[np.ndarray, float]:
    """GCC-PHAT of ``x`` and ``y`` (``r[lag % n]``, ``y[m + lag] ~ x[m]``) and its value
    for two identical signals, the scale that makes a perfect peak 1."""
    n = _next_pow2(n_min)
    w = _phat(np.conj(np.fft.rfft(x, n)) * np.fft.rfft(y, n))
    mag = np.abs(w)
    # irfft(|w|)[0]: DC and Nyquist once, the other bins twice (their mirror images).
    norm = (mag[0] + mag[-1] + 2.0 * float(np.sum(mag[1:-1]))) / n
    return np.fft.irfft(w, n), float(norm)


def _peak_ratio(vals: np.ndarray, k: int, guard: int) -> float:
    """``vals[k]`` over the largest of ``vals`` more than ``guard`` lags away."""
    rest = np.concatenate([vals[: max(0, k - guard)], vals[k + guard + 1 :]])
    nxt = float(rest.max()) if rest.size else 0.0
    return float(vals[k]) / nxt if nxt > 0 else math.inf


def _tapered(x: np.ndarray, fraction: float) -> np.ndarray:
    """``x`` less its mean, its first and last ``fraction`` raised-cosine ramped from zero
    (0.5: a Hann window): an edge or a DC offset is a step, broadband after whitening."""
    x = x - x.mean()
    m = max(1, int(fraction * x.size))
    ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(m) + 0.5) / m)
    x[:m] *= ramp
    x[-m:] *= ramp[::-1]
    return x


def _slice_padded(x: np.ndarray, start: int, n: int) -> np.ndarray:
    out = np.zeros(n)
    lo, hi = max(start, 0), min(start + n, x.size)
    if hi > lo:
        out[lo - start : hi - start] = x[lo:hi]
    return out


def _loudest_start(x: np.ndarray, n_seg: int, lag: int, y_len: int) -> int:
    """Start of the loudest ``n_seg`` stretch of ``x`` whose partner in ``y`` exists."""
    first = max(0, -lag)
    last = min(x.size, y_len - lag) - n_seg
    if last <= first:
        return max(0, min(first, x.size - n_seg))
    hop = max(1, n_seg // 4)
    starts = np.arange(first, last + 1, hop)
    power = np.cumsum(np.concatenate([[0.0], x * x]))
    energy = power[starts + n_seg] - power[starts]
    return int(starts[int(np.argmax(energy))])


# -- spectra -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Spectra:
    freq_hz: np.ndarray
    sxx: np.ndarray  # BEFORE power per bin (summed over frames)
    syy: np.ndarray
    sxy: np.ndarray  # complex cross spectrum conj(X) Y
    k_eff: float  # effective number of independent frames averaged


def _frame_size(sample_rate: int, seconds: float) -> int:
    return _next_pow2(int(round(seconds * sample_rate)))


def _analysis_window(n: int) -> np.ndarray:
    """4-term Blackman-Harris: sidelobes at -92 dB, so a strong bass note does not leak
    into the weak bands a high-pass or a valley between harmonics leaves."""
    k = 2.0 * np.pi * np.arange(n) / n
    return 0.35875 - 0.48829 * np.cos(k) + 0.14128 * np.cos(2 * k) - 0.01168 * np.cos(3 * k)


def _cross_spectra(
    x: np.ndarray, y: np.ndarray, sample_rate: int, gain_db: np.ndarray | None = None
) -> _Spectra:
    """Welch averages over Blackman-Harris frames (2/3 overlap) of two equally long signals.

    With ``gain_db`` (per-sample broadband gain of AFTER, dB), frames are
    weighted by how little gain reduction they hold (their mean gain against
    the programme's highest), so the estimate leans on the linear stretches.
    """
    n_fft = _frame_size(sample_rate, _SPECTRUM_FRAME_S)
    hop = n_fft // 3
    n_bins = n_fft // 2 + 1
    sxx = np.zeros(n_bins)
    syy = np.zeros(n_bins)
    sxy = np.zeros(n_bins, dtype=np.complex128)
    k_eff = 0.0
    if x.size >= n_fft:
        win = _analysis_window(n_fft)
        fx = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop]
        fy = np.lib.stride_tricks.sliding_window_view(y, n_fft)[::hop]
        weights = np.ones(fx.shape[0])
        if gain_db is not None and _LINEAR_WEIGHT_DB > 0:
            fg = np.lib.stride_tricks.sliding_window_view(gain_db, n_fft)[::hop]
            mean_g = fg[:, ::64].mean(axis=1)
            reduction = np.percentile(gain_db[:: max(1, hop // 8)], 95) - mean_g
            weights = 1.0 / (1.0 + (np.maximum(reduction, 0.0) / _LINEAR_WEIGHT_DB) ** 2)
        for b in range(0, fx.shape[0], 64):
            wk = weights[b : b + 64, None]
            X = np.fft.rfft(fx[b : b + 64] * win, axis=1)
            Y = np.fft.rfft(fy[b : b + 64] * win, axis=1)
            sxx += np.sum(wk * (X.real**2 + X.imag**2), axis=0)
            syy += np.sum(wk * (Y.real**2 + Y.imag**2), axis=0)
            sxy += np.sum(wk * (np.conj(X) * Y), axis=0)
        # Overlapping frames are not independent: 2/3 overlap of this window
        # carries about half again as many independent looks as frames / 3.
        k_eff = float(weights.sum() ** 2 / np.sum(weights**2)) * 0.5
    return _Spectra(np.fft.rfftfreq(n_fft, 1.0 / sample_rate), sxx, syy, sxy, max(k_eff, 1.0))


def log_grid(fraction: int, top_hz: float) -> np.ndarray:
    """Centres 1/``fraction`` octave apart from 20 Hz, on the 1 kHz-anchored grid, to ``top_hz``."""
    k_lo = math.ceil(fraction * math.log2(_LOWEST_HZ / 1000.0))
    k_hi = math.floor(fraction * math.log2(top_hz / 1000.0))
    return 1000.0 * 2.0 ** (np.arange(k_lo, k_hi + 1) / fraction)


def _band_sums(
    freq_hz: np.ndarray, values: np.ndarray, centres: np.ndarray, fraction: int
) -> np.ndarray:
    """Sum of ``values`` over the bins of each 1/``fraction``-octave band (else the nearest bin)."""
    half = 2.0 ** (0.5 / fraction)
    csum = np.concatenate([[0.0], np.cumsum(values)])
    lo = np.searchsorted(freq_hz, centres / half, side="left")
    hi = np.searchsorted(freq_hz, centres * half, side="right")
    nearest = np.clip(np.searchsorted(freq_hz, centres), 0, freq_hz.size - 1)
    empty = hi <= lo
    lo = np.where(empty, nearest, lo)
    hi = np.where(empty, nearest + 1, hi)
    return csum[hi] - csum[lo]


@dataclass(frozen=True, slots=True)
class _Shape:
    """A transfer-function magnitude on a log-frequency grid, in dB, median 0."""

    hz: np.ndarray
    db: np.ndarray  # NaN where unreliable
    offset_db: float  # the median that was removed
    before_db: np.ndarray  # BEFORE band power, dB re its loudest band
    coherence: np.ndarray


def _shape(spec: _Spectra, centres: np.ndarray, fraction: int) -> _Shape:
    """|H1| = |Sxy| / Sxx per band (power-weighted within the band), reliable bands only."""
    sxx = spec.sxx
    safe = np.where(sxx > 0, sxx, np.inf)
    # |Sxy|^2 is biased up by Sxx * Snn / K (output noise - distortion, anything not
    # linear in BEFORE - correlates by chance over K frames); remove that bias.
    cross2 = np.abs(spec.sxy) ** 2
    noise = np.maximum(spec.syy - cross2 / safe, 0.0)
    h2_weighted = np.maximum(cross2 - sxx * noise / spec.k_eff, 0.0) / safe  # Sxx |H|^2
    bx = _band_sums(spec.freq_hz, sxx, centres, fraction)
    by = _band_sums(spec.freq_hz, spec.syy, centres, fraction)
    bh = _band_sums(spec.freq_hz, h2_weighted, centres, fraction)
    # Per-Hz density, so that wide and narrow bands compare fairly.
    width = centres * (2.0 ** (0.5 / fraction) - 2.0 ** (-0.5 / fraction))
    density = bx / width
    top = float(np.max(density)) if density.size else 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        before_db = 10.0 * np.log10(density / top) if top > 0 else np.full(centres.size, -np.inf)
        coherence = np.where(by > 0, bh / by, 0.0)
        db = 10.0 * np.log10(bh / bx)
    ok = (before_db > -_RELIABLE_RANGE_DB) & (coherence > _MIN_COHERENCE) & np.isfinite(db)
    ok &= ~_valleys(before_db, fraction)
    db = np.where(ok, db, np.nan)
    offset = float(np.nanmedian(db)) if ok.any() else 0.0
    return _Shape(centres, db - offset, offset, before_db, np.clip(coherence, 0.0, 1.0))


def _valleys(level_db: np.ndarray, fraction: int) -> np.ndarray:
    """Bands far below their neighbourhood (half an octave either side).

    Between the harmonics of sustained notes BEFORE has almost nothing, while
    a compressor or limiter spreads the neighbouring peaks' energy into the gap
    (the gain modulation's sidebands); the ratio measured there describes the
    dynamics, not an EQ, and would show as narrow bells.
    """
    n = level_db.size
    half = max(1, fraction // 2)
    out = np.zeros(n, dtype=bool)
    for i in range(n):
        near = np.concatenate([level_db[max(0, i - half) : i], level_db[i + 1 : i + 1 + half]])
        near = near[np.isfinite(near)]
        if near.size and level_db[i] < float(np.median(near)) - _VALLEY_DB:
            out[i] = True
    return out


# -- applying an EQ shape (minimum-phase FIR, overlap-add) ------------------------------


def _apply_shape(x: np.ndarray, shape: _Shape, sample_rate: int) -> np.ndarray:
    """A 1-D signal through a minimum-phase filter with ``shape``'s magnitude.

    Minimum phase because most EQs are (analogue-modelled and biquad EQs): the
    filtered BEFORE then lines up with AFTER within a window, and the gain
    envelope does not wobble where a zero-phase filter would smear transients.
    """
    if not np.isfinite(shape.db).any():
        return np.asarray(x, dtype=np.float64).copy()
    n_fir = _frame_size(sample_rate, _FIR_FRAME_S)
    return _convolve(x, _minimum_phase_fir(shape, n_fir, sample_rate), 0)


def _minimum_phase_fir(shape: _Shape, n_fir: int, sample_rate: int) -> np.ndarray:
    """Minimum-phase FIR with ``shape``'s magnitude (real-cepstrum folding)."""
    n = 4 * n_fir
    f = np.fft.rfftfreq(n, 1.0 / sample_rate)
    good = np.isfinite(shape.db)
    db = np.interp(np.log2(np.maximum(f, 1.0)), np.log2(shape.hz[good]), shape.db[good])
    cep = np.fft.irfft(db * (math.log(10.0) / 20.0), n)
    fold = np.zeros(n)
    fold[0] = cep[0]
    fold[1 : n // 2] = 2.0 * cep[1 : n // 2]
    fold[n // 2] = cep[n // 2]
    h = np.fft.irfft(np.exp(np.fft.rfft(fold)), n)[:n_fir]
    taper = n_fir // 4
    h[-taper:] *= 0.5 + 0.5 * np.cos(np.linspace(0.0, np.pi, taper))
    return h


def _convolve(x: np.ndarray, h: np.ndarray, shift: int) -> np.ndarray:
    """Overlap-add FFT convolution of a 1-D signal, output advanced by ``shift`` samples.

    Blocks are transformed 64 at a time, so memory beyond the output stays small.
    """
    n = x.size
    block = h.size
    n_fft = _next_pow2(2 * block)
    H = np.fft.rfft(h, n_fft)
    out = np.zeros(n + n_fft)
    batch = 64 * block
    for start in range(0, n, batch):
        chunk = np.asarray(x[start : start + batch], dtype=np.float64)
        k = -(-chunk.size // block)
        frames = np.zeros((k, block))
        frames.reshape(-1)[: chunk.size] = chunk
        seg = np.fft.irfft(np.fft.rfft(frames, n_fft, axis=1) * H, n_fft, axis=1)
        # Adjacent blocks overlap by n_fft - block: add the even and odd blocks in two
        # vectorised passes (n_fft = 2 x block, so blocks two apart do not overlap).
        for parity in (0, 1):
            sub = seg[parity::2]
            if sub.shape[0] == 0:
                continue
            first = start + parity * block
            view = out[first : first + sub.shape[0] * 2 * block].reshape(-1, 2 * block)
            view[: sub.shape[0]] += sub[: view.shape[0]]
    return out[shift : shift + n]


# -- gain envelope ----------------------------------------------------------------------


def _window_power(x: np.ndarray, win: int, hop: int) -> np.ndarray:
    """Mean power (summed over channels) of windows of ``win`` samples every ``hop``."""
    x = np.asarray(x, dtype=np.float64)
    p = x * x if x.ndim == 1 else np.sum(x * x, axis=1)
    csum = np.concatenate([[0.0], np.cumsum(p)])
    starts = np.arange(0, max(1, p.size - win + 1), hop)
    ends = np.minimum(starts + win, p.size)
    return (csum[ends] - csum[starts]) / np.maximum(ends - starts, 1)


def _window_peak(x: np.ndarray, win: int, hop: int) -> np.ndarray:
    """Highest absolute sample (over channels) of windows of ``win`` = 2 x ``hop`` samples."""
    a = np.abs(x) if x.ndim == 1 else np.max(np.abs(x), axis=1)
    n_hops = a.size // hop
    if n_hops < 2:
        return np.array([float(a.max()) if a.size else 0.0])
    m = a[: n_hops * hop].reshape(n_hops, hop).max(axis=1)
    return np.maximum(m[:-1], m[1:])


def _gain_envelope(x_eq: np.ndarray, y: np.ndarray, sample_rate: int) -> np.ndarray:
    """Per-sample broadband gain (linear) of ``y`` over ``x_eq``, from 20 ms windows."""
    win = max(2, int(round(_ENVELOPE_WINDOW_S * sample_rate)))
    hop = win // 2
    px = _window_power(_mono(x_eq), win, hop)
    py = _window_power(_mono(y), win, hop)
    top = float(px.max()) if px.size else 0.0
    active = px > top * 10.0 ** (-_ACTIVE_RANGE_DB / 10.0)
    n = x_eq.shape[0]
    if top <= 0 or not active.any():
        return np.ones(n)
    g_db = np.full(px.size, np.nan)
    g_db[active] = 10.0 * np.log10(np.maximum(py[active], 1e-30) / px[active])
    centres = np.arange(px.size) * hop + win / 2.0
    good = np.isfinite(g_db)
    g = np.interp(np.arange(n), centres[good], g_db[good])
    return 10.0 ** (g / 20.0)


# -- EQ moves ----------------------------------------------------------------------------

_MOVE_KINDS = ("low_shelf", "high_shelf", "bell", "low_cut", "high_cut")
_SHELF_Q = 1.0 / math.sqrt(2.0)  # RBJ "S = 1"-like default of most shelving EQs (and pedalboard)
_MIN_MOVE_DB = 1.0  # a move smaller than this is not reported (measurement noise, compression)
_MAX_MOVES = 6
_CUT_SLOPES = (6, 12, 24)  # dB/octave: 1st-order, 2nd-order and 4th-order Butterworth
_OFFSET = "offset"  # the broadband part of a fit (not a move)
_OFFSET_PRIOR = 0.5  # weight of the prior holding it at 0 dB (one point's residual per 2 dB)
_MAX_OFFSET_DB = 3.0  # more than this is not a reference shift but a move


@dataclass(frozen=True, slots=True)
class EqMove:
    """One EQ move: a shelf, a bell (peaking filter) or a cut (high-/low-pass).

    ``freq_hz`` is the RBJ corner: the half-gain point of a shelf, the centre
    of a bell, the -3 dB point of a cut. Cuts have ``gain_db`` = 0 and a slope.
    """

    kind: str  # "low_shelf" | "high_shelf" | "bell" | "low_cut" | "high_cut"
    freq_hz: float
    gain_db: float = 0.0
    q: float = _SHELF_Q
    slope_db_per_oct: int = 0  # cuts only

    def describe(self) -> str:
        """A mastering engineer's phrase: ``+5.1 dB high shelf above 4.2 kHz``."""
        f = format_hz(self.freq_hz)
        if self.kind == "high_shelf":
            return f"{self.gain_db:+.1f} dB high shelf above {f}"
        if self.kind == "low_shelf":
            return f"{self.gain_db:+.1f} dB low shelf below {f}"
        if self.kind == "bell":
            return f"{self.gain_db:+.1f} dB bell at {f}, Q {self.q:.1f}"
        side = "low" if self.kind == "low_cut" else "high"
        return f"{side} cut at {f} ({self.slope_db_per_oct} dB/oct)"

    def to_dict(self) -> dict[str, object]:
        """JSON-ready: kind, freq_hz, gain_db, q (bells and shelves), slope (cuts), text."""
        out: dict[str, object] = {"kind": self.kind, "freq_hz": round(self.freq_hz, 1)}
        if self.kind in ("low_cut", "high_cut"):
            out["slope_db_per_oct"] = self.slope_db_per_oct
        else:
            out["gain_db"] = round(self.gain_db, 2)
            out["q"] = round(self.q, 2)
        out["text"] = self.describe()
        return out


def format_hz(freq_hz: float) -> str:
    """``310 Hz``, ``4.2 kHz``, ``12 kHz`` (two or three significant figures)."""
    if freq_hz >= 1000.0:
        khz = freq_hz / 1000.0
        return f"{khz:.1f} kHz" if khz < 10.0 else f"{khz:.0f} kHz"
    return f"{freq_hz:.0f} Hz"


def _biquad_db(b: tuple, a: tuple, w: np.ndarray) -> np.ndarray:
    """Magnitude in dB of a biquad (b0, b1, b2) / (a0, a1, a2) at angular frequencies ``w``."""
    c1, c2 = np.cos(w), np.cos(2.0 * w)

    def power(k: tuple) -> np.ndarray:
        k0, k1, k2 = k
        return k0 * k0 + k1 * k1 + k2 * k2 + 2.0 * (k0 * k1 + k1 * k2) * c1 + 2.0 * k0 * k2 * c2

    return 10.0 * np.log10(np.maximum(power(b), 1e-30) / np.maximum(power(a), 1e-30))


def _rbj_db(kind: str, f: float, gain_db: float, q: float, w: np.ndarray, fs: float) -> np.ndarray:
    w0 = 2.0 * math.pi * min(f, 0.49 * fs) / fs
    cw, sw = math.cos(w0), math.sin(w0)
    alpha = sw / (2.0 * q)
    A = 10.0 ** (gain_db / 40.0)
    if kind == "bell":
        b = (1.0 + alpha * A, -2.0 * cw, 1.0 - alpha * A)
        a = (1.0 + alpha / A, -2.0 * cw, 1.0 - alpha / A)
    elif kind == "low_shelf":
        s = 2.0 * math.sqrt(A) * alpha
        b = (A * ((A + 1) - (A - 1) * cw + s), 2 * A * ((A - 1) - (A + 1) * cw),
             A * ((A + 1) - (A - 1) * cw - s))  # fmt: skip
        a = ((A + 1) + (A - 1) * cw + s, -2 * ((A - 1) + (A + 1) * cw), (A + 1) + (A - 1) * cw - s)
    elif kind == "high_shelf":
        s = 2.0 * math.sqrt(A) * alpha
        b = (A * ((A + 1) + (A - 1) * cw + s), -2 * A * ((A - 1) + (A + 1) * cw),
             A * ((A + 1) + (A - 1) * cw - s))  # fmt: skip
        a = ((A + 1) - (A - 1) * cw + s, 2 * ((A - 1) - (A + 1) * cw), (A + 1) - (A - 1) * cw - s)
    elif kind == "high_pass":
        b = ((1 + cw) / 2, -(1 + cw), (1 + cw) / 2)
        a = (1 + alpha, -2 * cw, 1 - alpha)
    else:  # low_pass
        b = ((1 - cw) / 2, 1 - cw, (1 - cw) / 2)
        a = (1 + alpha, -2 * cw, 1 - alpha)
    return _biquad_db(b, a, w)


def _first_order_db(high: bool, f: float, w: np.ndarray, fs: float) -> np.ndarray:
    n = math.tan(math.pi * min(f, 0.49 * fs) / fs)
    b = (1.0, -1.0, 0.0) if high else (n, n, 0.0)
    a = (n + 1.0, n - 1.0, 0.0)
    return _biquad_db(b, a, w)


def eq_move_response_db(move: EqMove, freq_hz: np.ndarray, sample_rate: float) -> np.ndarray:
    """The magnitude response of ``move`` in dB at ``freq_hz`` (biquads at ``sample_rate``)."""
    w = 2.0 * math.pi * np.asarray(freq_hz, dtype=np.float64) / sample_rate
    if move.kind in ("low_cut", "high_cut"):
        high = move.kind == "low_cut"
        if move.slope_db_per_oct == 6:
            return _first_order_db(high, move.freq_hz, w, sample_rate)
        kind = "high_pass" if high else "low_pass"
        if move.slope_db_per_oct == 24:
            return sum(
                _rbj_db(kind, move.freq_hz, 0.0, q, w, sample_rate) for q in (0.5412, 1.3066)
            )
        return _rbj_db(kind, move.freq_hz, 0.0, _SHELF_Q, w, sample_rate)
    return _rbj_db(move.kind, move.freq_hz, move.gain_db, move.q, w, sample_rate)


# Parameters per kind, as (log2 freq, gain dB, log2 q); bounds below.
def _move_from(kind: str, p: np.ndarray, slope: int) -> EqMove:
    f = float(2.0 ** p[0])
    if kind == "bell":
        return EqMove(kind, f, float(p[1]), float(2.0 ** p[2]))
    if kind in ("low_shelf", "high_shelf"):
        return EqMove(kind, f, float(p[1]))
    return EqMove(kind, f, 0.0, _SHELF_Q, slope)


def _n_params(kind: str) -> int:
    return 3 if kind == "bell" else 2 if kind.endswith("shelf") else 1  # cuts, the offset: 1


def _model(moves: list[tuple[str, int]], p: np.ndarray, hz: np.ndarray, fs: float) -> np.ndarray:
    out = np.zeros(hz.size)
    i = 0
    for kind, slope in moves:
        k = _n_params(kind)
        if kind == _OFFSET:
            out += p[i]
        else:
            out += eq_move_response_db(_move_from(kind, p[i : i + k], slope), hz, fs)
        i += k
    return out


def _bounds(moves: list[tuple[str, int]], hz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Parameter bounds: bells stay a third of an octave inside the measured range with
    Q >= 0.5 (a broad bell at the edge would stand in for a shelf); shelves and cuts may
    sit half an octave outside it."""
    lo, hi = [], []
    f_lo, f_hi = math.log2(hz[0]), math.log2(hz[-1])
    for kind, _ in moves:
        if kind == _OFFSET:
            lo.append(-_MAX_OFFSET_DB)
            hi.append(_MAX_OFFSET_DB)
        elif kind == "bell":
            lo += [f_lo + 1 / 3, -24.0, math.log2(0.5)]
            hi += [max(f_hi - 1 / 3, f_lo + 1 / 3), 24.0, math.log2(12.0)]
        elif kind.endswith("shelf"):
            lo += [f_lo - 0.5, -24.0]
            hi += [f_hi + 0.5, 24.0]
        else:
            lo.append(f_lo - 1.0)
            hi.append(f_hi + 1.0)
    return np.array(lo), np.array(hi)


def _levenberg_marquardt(
    moves: list[tuple[str, int]], p0: np.ndarray, hz: np.ndarray, target: np.ndarray, fs: float
) -> tuple[np.ndarray, float]:
    """Least-squares fit of the move parameters (bounded by clipping); returns (p, rms dB).

    A broadband offset (first, when present) is held toward 0 dB by a weak prior:
    it may take up what the median reference left over, not stand in for a shelf.
    """
    lo, hi = _bounds(moves, hz)
    p = np.clip(p0.astype(np.float64), lo, hi)
    prior = _OFFSET_PRIOR if moves and moves[0][0] == _OFFSET else 0.0

    def residual(q: np.ndarray) -> np.ndarray:
        return np.append(_model(moves, q, hz, fs) - target, prior * q[0] if prior else 0.0)

    r = residual(p)
    cost = float(r @ r)
    lam = 1e-2
    for _ in range(60):
        J = np.empty((r.size, p.size))
        for j in range(p.size):
            step = 1e-4
            dp = p.copy()
            dp[j] += step
            J[:, j] = (residual(dp) - r) / step
        g = J.T @ r
        A = J.T @ J
        improved = False
        for _ in range(8):
            delta = np.linalg.solve(A + lam * np.diag(np.diag(A) + 1e-9), -g)
            cand = np.clip(p + delta, lo, hi)
            rc = residual(cand)
            cc = float(rc @ rc)
            if cc < cost:
                improved = cost - cc > 1e-9 * max(cost, 1e-12)
                p, r, cost = cand, rc, cc
                lam = max(lam / 3.0, 1e-7)
                break
            lam *= 4.0
        if not improved:
            break
    fit = _model(moves, p, hz, fs) - target
    return p, math.sqrt(float(fit @ fit) / max(hz.size, 1))


def _score(rms: float, n_params: int, n_points: int) -> float:
    """BIC-like score of a fit: residual against the number of parameters.

    Neighbouring points of a smoothed curve are not independent; half of them
    count. A 0.1 dB noise floor keeps tiny improvements from buying moves.
    """
    n = max(n_points / 2.0, 1.0)
    return n * math.log(rms * rms + 0.01) + n_params * math.log(n)


def _end_options(
    residual: np.ndarray, hz: np.ndarray, high: bool
) -> list[tuple[str, int, np.ndarray]]:
    """Guesses for one end of the curve: nothing, a shelf, or (if it falls away) a cut."""
    lf = np.log2(hz)
    n = max(2, hz.size // 8)
    end = float(np.mean(residual[-n:] if high else residual[:n]))
    half = end / 2.0
    side = residual - half
    cross = np.nonzero(np.sign(side) != np.sign(end - half + 1e-12))[0]
    if high:
        j = int(cross[-1]) if cross.size else 3 * hz.size // 4
    else:
        j = int(cross[0]) if cross.size else hz.size // 4
    options: list[tuple[str, int, np.ndarray]] = [("", 0, np.zeros(0))]
    options.append(("high_shelf" if high else "low_shelf", 0, np.array([lf[j], end])))
    edge = float(residual[-1] if high else residual[0])
    if edge < -3.0:
        inside = np.nonzero(residual > edge / 2.0)[0]
        k = (int(inside[-1]) if high else int(inside[0])) if inside.size else j
        for slope in _CUT_SLOPES:
            options.append(("high_cut" if high else "low_cut", slope, np.array([lf[k]])))
    return options


def _bell_guesses(residual: np.ndarray, hz: np.ndarray) -> list[np.ndarray]:
    """Bells at the largest remaining feature (smoothed over a third of an octave)."""
    lf = np.log2(hz)
    k = max(1, _FIT_FRACTION // 6)
    sm = np.convolve(residual, np.ones(2 * k + 1) / (2 * k + 1), mode="same")
    inside = (lf >= lf[0] + 1 / 3) & (lf <= lf[-1] - 1 / 3)
    if not inside.any():
        return []
    i = int(np.argmax(np.where(inside, np.abs(sm), -1.0)))
    return [np.array([lf[i], residual[i], math.log2(q)]) for q in (0.7, 1.4, 4.0)]


def fit_eq_moves(
    freq_hz: np.ndarray, gain_db: np.ndarray, sample_rate: float
) -> tuple[tuple[EqMove, ...], np.ndarray, float]:
    """Summarise an EQ curve as a few moves: shelves or cuts at the ends, then bells.

    First every combination of {nothing, shelf, cut} at the low and at the
    high end is fitted (Levenberg-Marquardt on RBJ biquad responses; cuts only
    where the curve falls away by more than 3 dB), then bells are added one at
    a time at the largest remaining feature, each time refitting every move
    jointly. A move is kept only when it pays for its parameters (a BIC-like
    score), and moves whose effect stays under 1 dB are dropped at the end.
    Every fit also carries a broadband offset, held toward 0 dB: the curve's
    0 dB is its median, which a cut on one side and a boost on the other move
    away from the untouched mids. NaN points of the curve are ignored.

    Returns:
        (moves ordered by frequency, the fitted response at ``freq_hz`` in dB
        including the offset, the offset in dB)
    """
    hz = np.asarray(freq_hz, dtype=np.float64)
    db = np.asarray(gain_db, dtype=np.float64)
    ok = np.isfinite(db)
    fit_hz, target = hz[ok], db[ok]
    base: list[tuple[str, int]] = [(_OFFSET, 0)]
    moves, p = base, np.zeros(1)
    if target.size >= 6:
        n = target.size
        p0, rms0 = _levenberg_marquardt(base, np.zeros(1), fit_hz, target, sample_rate)
        best = (_score(rms0, 0, n), base, p0, rms0)
        for lk, ls, lg in _end_options(target, fit_hz, high=False):
            for hk, hs, hg in _end_options(target, fit_hz, high=True):
                trial = base + [(k, s) for k, s in ((lk, ls), (hk, hs)) if k]
                if len(trial) == 1:
                    continue
                tp, trms = _levenberg_marquardt(
                    trial, np.concatenate([[0.0], lg, hg]), fit_hz, target, sample_rate
                )
                score = _score(trms, tp.size - 1, n)
                if score < best[0]:
                    best = (score, trial, tp, trms)
        # Two paths, the better one wins: the ends first then bells, and bells alone
        # (a broad bell is otherwise explained as a pair of shelves).
        paths = [
            _add_bells(best[1], best[2], best[3], fit_hz, target, sample_rate),
            _add_bells(base, p0, rms0, fit_hz, target, sample_rate),
        ]
        ends, bells_only = paths
        moves, p = ends[0], ends[1]
        # Bells alone win only with fewer moves and a better score (the broad bell);
        # more bells where shelves would do is a worse description, not a better one.
        if len(bells_only[0]) < len(ends[0]) and _score(
            bells_only[2], bells_only[1].size - 1, n
        ) < _score(ends[2], ends[1].size - 1, n):
            moves, p = bells_only[0], bells_only[1]
        moves, p = _prune(moves, p, fit_hz, target, sample_rate)
    starts = np.cumsum([0] + [_n_params(k) for k, _ in moves])
    result = [
        _move_from(kind, p[starts[i] : starts[i + 1]], slope)
        for i, (kind, slope) in enumerate(moves)
        if kind != _OFFSET
    ]
    result.sort(key=lambda m: m.freq_hz)
    return tuple(result), _model(moves, p, hz, sample_rate), float(p[0])


def _add_bells(
    moves: list[tuple[str, int]],
    p: np.ndarray,
    rms: float,
    hz: np.ndarray,
    target: np.ndarray,
    fs: float,
) -> tuple[list[tuple[str, int]], np.ndarray, float]:
    """Add bells at the largest remaining feature while each pays for its parameters."""
    n = target.size
    while len(moves) <= _MAX_MOVES and rms > 0.2:
        residual = target - _model(moves, p, hz, fs)
        step = None
        for guess in _bell_guesses(residual, hz):
            trial = [*moves, ("bell", 0)]
            tp, trms = _levenberg_marquardt(trial, np.concatenate([p, guess]), hz, target, fs)
            if step is None or trms < step[2]:
                step = (trial, tp, trms)
        if step is None or _score(step[2], step[1].size, n) >= _score(rms, p.size, n):
            break
        if _crowded(step[0], step[1]):
            break  # two bells on top of each other describe one feature, badly
        moves, p, rms = step
    return moves, p, rms


def _crowded(moves: list[tuple[str, int]], p: np.ndarray) -> bool:
    """Whether the last bell sits within a third of an octave of another bell."""
    starts = np.cumsum([0] + [_n_params(k) for k, _ in moves])
    centres = [float(p[starts[i]]) for i, (k, _) in enumerate(moves) if k == "bell"]
    return any(abs(centres[-1] - c) < 1 / 3 for c in centres[:-1])


def _prune(
    moves: list[tuple[str, int]], p: np.ndarray, hz: np.ndarray, target: np.ndarray, fs: float
) -> tuple[list[tuple[str, int]], np.ndarray]:
    """Drop moves whose effect stays under 1 dB, refitting the rest each time."""
    while len(moves) > 1:
        starts = np.cumsum([0] + [_n_params(k) for k, _ in moves])
        effects = [
            float(np.max(np.abs(_model([m], p[starts[i] : starts[i + 1]], hz, fs))))
            if m[0] != _OFFSET
            else math.inf
            for i, m in enumerate(moves)
        ]
        weakest = int(np.argmin(effects))
        if effects[weakest] >= _MIN_MOVE_DB:
            break
        keep = [i for i in range(len(moves)) if i != weakest]
        moves = [moves[i] for i in keep]
        p = np.concatenate([p[starts[i] : starts[i + 1]] for i in keep])
        p, _ = _levenberg_marquardt(moves, p, hz, target, fs)
    return moves, p


# -- dynamics: level transfer and compressor fit --------------------------------------------


@dataclass(frozen=True, slots=True)
class CompressorFit:
    """A static soft-knee compressor curve: gain(in) = gain_db - (1 - 1/ratio) * knee(in - T)."""

    gain_db: float  # gain below the threshold (the linear part of the transfer)
    threshold_db: float  # input level where the curve bends, dBFS sample peak of BEFORE
    ratio: float  # 1.0 = no compression
    knee_db: float
    rms_error_db: float  # residual of the fit
    flat_error_db: float  # residual of a constant gain

    def gain_at(self, in_db: np.ndarray) -> np.ndarray:
        """The curve's gain (dB) at input levels ``in_db``."""
        slope = 1.0 - 1.0 / self.ratio
        return self.gain_db - slope * _knee(
            np.asarray(in_db, dtype=np.float64) - self.threshold_db, self.knee_db
        )


def _knee(d: np.ndarray, width: float) -> np.ndarray:
    if width <= 0:
        return np.maximum(d, 0.0)
    half = width / 2.0
    return np.where(d <= -half, 0.0, np.where(d >= half, d, (d + half) ** 2 / (2.0 * width)))


def fit_compressor(
    in_db: np.ndarray,
    gain_db: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    coarse: bool = False,
) -> CompressorFit:
    """Fit a soft-knee compressor curve to (input level, gain) points.

    For each threshold on a 0.5 dB grid and each knee width (0, 6, 12 dB)
    the gain and slope are a weighted linear least-squares problem; the best
    triple under a Huber loss (1 dB; iteratively reweighted, so the gain a
    release has not yet given back after a loud hit does not drag the curve)
    wins. The slope is kept in [0, 1) (no expansion).
    """
    x = np.asarray(in_db, dtype=np.float64)
    g = np.asarray(gain_db, dtype=np.float64)
    w0 = np.ones_like(x) if weights is None else np.asarray(weights, dtype=np.float64)
    keep = np.isfinite(x) & np.isfinite(g) & (w0 > 0)
    x, g, w0 = x[keep], g[keep], w0[keep]
    if x.size < 8:
        level = float(np.median(g)) if g.size else 0.0
        return CompressorFit(level, float(x.max()) if x.size else 0.0, 1.0, 0.0, 0.0, 0.0)
    flat = _weighted_median(g, w0)
    flat_err = math.sqrt(float(np.sum(w0 * (g - flat) ** 2) / np.sum(w0)))
    lo, hi = np.percentile(x, 2), np.percentile(x, _MAX_THRESHOLD_PERCENTILE)
    x_all, g_all, w_all = x, g, w0
    if _BINNED:
        x, g, w0 = _binned_medians(x, g, w0)
        if x.size < 3:
            return CompressorFit(flat, float(hi), 1.0, 0.0, flat_err, flat_err)
    # At least a tenth of the points above the threshold: a slope drawn from a
    # handful of the loudest windows is not a ratio.
    best: tuple[float, float, float, float, float] | None = None
    w = w0.copy()
    step, knees, rounds = (1.0, (0.0, 6.0), 2) if coarse else (0.5, (0.0, 6.0, 12.0), 3)
    for _ in range(rounds):  # IRLS rounds
        best = None
        for knee in knees:
            for t in np.arange(math.floor(lo), math.ceil(hi) + step, step):
                k = _knee(x - t, knee)
                # g = G - s k: weighted normal equations in (G, s).
                sw, sk, skk = w.sum(), (w * k).sum(), (w * k * k).sum()
                sg, skg = (w * g).sum(), (w * k * g).sum()
                det = sw * skk - sk * sk
                if det <= 1e-9 * max(sw * skk, 1e-12):
                    s, G = 0.0, sg / sw
                else:
                    G = (skk * sg - sk * skg) / det
                    s = (sk * sg - sw * skg) / det
                    if not 0.0 <= s < 1.0:
                        s = float(np.clip(s, 0.0, 0.999))
                        G = (sg + s * sk) / sw
                r = g - (G - s * k)
                cost = float(np.sum(w * r * r))
                if best is None or cost < best[0]:
                    best = (cost, float(G), float(s), float(t), knee)
        assert best is not None
        _, G, s, t, knee = best
        r = g - (G - s * _knee(x - t, knee))
        w = w0 * np.minimum(1.0, 1.0 / np.maximum(np.abs(r), 1e-9))  # Huber at 1 dB
    assert best is not None
    _, G, s, t, knee = best
    # The error of the curve against every point (not the bin medians): it tells
    # which detector time constants explain the gain trace.
    r = g_all - (G - s * _knee(x_all - t, knee))
    err = math.sqrt(float(np.sum(w_all * r * r) / np.sum(w_all)))
    ratio = 1.0 / (1.0 - s) if s < 0.999 else 1000.0
    return CompressorFit(G, t, ratio, knee, err, flat_err)


def _binned_medians(x: np.ndarray, g: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, ...]:
    """Median gain per 1 dB of input level, weighted by the square root of the count.

    Every level gets a say in proportion to how well it is known, not to how
    much of the programme sits there (most of it is below any threshold).
    """
    edges = np.arange(math.floor(x.min()), math.ceil(x.max()) + 1.0, 1.0)
    idx = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, max(edges.size - 2, 0))
    xs, gs, ws = [], [], []
    for b in np.unique(idx):
        m = idx == b
        if m.sum() >= 3:
            xs.append(float(np.median(x[m])))
            gs.append(_weighted_median(g[m], w[m]))
            ws.append(math.sqrt(float(w[m].sum())))
    return np.array(xs), np.array(gs), np.array(ws)


def _weighted_median(v: np.ndarray, w: np.ndarray) -> float:
    order = np.argsort(v)
    c = np.cumsum(w[order])
    return float(v[order][int(np.searchsorted(c, 0.5 * c[-1]))])


@nb.njit(cache=True, nogil=True)
def _peak_follower(a: np.ndarray, attack: float, release: float, out: np.ndarray) -> None:
    """One-pole peak envelope of ``a`` (>= 0): fast toward a rise, slow on the way down."""
    y = 0.0
    for i in range(a.size):
        v = a[i]
        c = attack if v > y else release
        y = v + c * (y - v)
        out[i] = y


# Detector time constants tried (seconds): most compressors' attack and release
# knobs span these; the pair that explains the gain trace best is used.
_ATTACKS_S = (0.0001, 0.0005, 0.002, 0.008)
_RELEASES_S = (0.005, 0.015, 0.04, 0.12, 0.3)


@dataclass(frozen=True, slots=True)
class LevelTransfer:
    """Window-by-window detector level of EQ(BEFORE), AFTER's gain over it, the fitted curve.

    The input level is a peak envelope of EQ(BEFORE) (attack and release
    chosen from a small grid as those that best explain AFTER's gain), the
    level a compressor's detector follows; gain is the RMS ratio per window.
    """

    in_db: np.ndarray  # detector level per window, dBFS
    gain_db: np.ndarray  # RMS gain AFTER / EQ(BEFORE) per window, dB
    weight: np.ndarray  # 1 for programme windows, 0 for near-silence
    fit: CompressorFit
    window_s: float
    attack_s: float
    release_s: float

    @property
    def out_db(self) -> np.ndarray:
        """The output level the curve maps ``in_db`` to (input + gain), dBFS."""
        return self.in_db + self.gain_db


def level_transfer(x_eq: np.ndarray, y: np.ndarray, sample_rate: int) -> LevelTransfer:
    """Per-window detector level and gain, with a compressor curve fitted to them.

    Both signals are reduced to their mid (channel average): the EQ is measured
    there too, and a width change or an unlinked compressor moving the side must
    not read as broadband gain.
    """
    hop = max(1, int(round(_LEVEL_WINDOW_S * sample_rate / 2)))
    win = 2 * hop
    xm = _mono(x_eq)
    px = _window_power(xm, win, hop)
    py = _window_power(_mono(y), win, hop)
    top = float(px.max()) if px.size else 0.0
    active = (px > top * 10.0 ** (-_ACTIVE_RANGE_DB / 10.0)) & (py > 0)
    with np.errstate(divide="ignore"):
        gain = 10.0 * np.log10(np.where(active, py, 1.0) / np.where(active, px, 1.0))
    # The detector follows the mid too: it explains the gain of the mid best, and most
    # programme level lives there (a linked detector on L/R reads about the same).
    a = np.abs(xm)
    p_hops = _hop_sums(a * a, hop, px.size + 1)
    env = np.empty_like(a)
    best = None
    for att in _ATTACKS_S:
        for rel in _RELEASES_S:
            if rel < 4 * att:
                continue
            _peak_follower(
                a, math.exp(-1.0 / (att * sample_rate)), math.exp(-1.0 / (rel * sample_rate)), env
            )
            in_db = _weighted_window_db(env, a, p_hops, hop, px.size)
            fit = fit_compressor(
                in_db[active][::_COARSE_STRIDE], gain[active][::_COARSE_STRIDE], coarse=True
            )
            if best is None or fit.rms_error_db < best[0].rms_error_db:
                best = (fit, att, rel, in_db)
    assert best is not None
    _, att, rel, in_db = best
    fit = fit_compressor(in_db[active], gain[active])
    return LevelTransfer(in_db, gain, active.astype(np.float64), fit, win / sample_rate, att, rel)


def _hop_sums(v: np.ndarray, hop: int, n_hops: int) -> np.ndarray:
    """Sums of ``v`` over consecutive hops (zero-padded to ``n_hops`` of them)."""
    out = np.zeros(n_hops * hop)
    m = min(v.size, out.size)
    out[:m] = v[:m]
    return out.reshape(n_hops, hop).sum(axis=1)


def _weighted_window_db(
    env: np.ndarray, a: np.ndarray, p_hops: np.ndarray, hop: int, n: int
) -> np.ndarray:
    """Per window (two hops), the power-weighted mean of the envelope in dB."""
    e_db = 20.0 * np.log10(np.maximum(env, 1e-10))
    e_db *= a
    e_db *= a
    e_hops = _hop_sums(e_db, hop, n + 1)
    w = p_hops[:n] + p_hops[1 : n + 1]
    e = e_hops[:n] + e_hops[1 : n + 1]
    return np.where(w > 0, e / np.where(w > 0, w, 1.0), -200.0)


# -- limiting -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Limiting:
    """Evidence of a ceiling: window peaks piling up within 0.2 dB of the highest one."""

    limited: bool
    ceiling_dbfs: float | None  # AFTER's highest sample peak
    pinned_fraction: float  # share of programme windows (20 ms) peaking at the ceiling
    before_pinned_fraction: float  # the same for BEFORE at its own highest peak
    pile_up: float  # density at the ceiling over the density in the dB below it


_PIN_DB = 0.2  # a limiter holds its ceiling this closely (sample peaks)
_MIN_PINNED_FRACTION = 0.01


def _pile_up(x: np.ndarray, sample_rate: int) -> tuple[float, float, float]:
    """(highest window peak dBFS, share of programme windows within 0.2 dB of it, pile-up)."""
    hop = max(1, int(round(_PEAK_WINDOW_S * sample_rate / 2)))
    peaks = _window_peak(x, 2 * hop, hop)
    power = _window_power(x, 2 * hop, hop)[: peaks.size]
    peaks = peaks[: power.size]
    if peaks.size == 0 or peaks.max() <= 0:
        return -math.inf, 0.0, 0.0
    active = power > power.max() * 10.0 ** (-_ACTIVE_RANGE_DB / 10.0)
    p_db = 20.0 * np.log10(np.maximum(peaks[active], 1e-12))
    top = float(p_db.max())
    n_top = int(np.sum(p_db >= top - _PIN_DB))
    n_below = int(np.sum((p_db < top - _PIN_DB) & (p_db >= top - _PIN_DB - 1.0)))
    pile = (n_top / _PIN_DB) / max(n_below / 1.0, 1.0)
    return top, n_top / max(p_db.size, 1), pile


def detect_limiting(before: np.ndarray, after: np.ndarray, sample_rate: int) -> Limiting:
    """Whether AFTER's peaks are held at a ceiling that BEFORE's are not.

    Unlimited programme has few windows near its highest peak, thinning out
    toward it; a limiter (or clipping) stacks many at exactly the ceiling.
    Limited: at least 1 % of the programme's 20 ms windows (and 5 of them)
    peak within 0.2 dB of the ceiling, at more than 3x the density of the dB
    below, and more than twice BEFORE's share at its own ceiling.
    """
    _, before_frac, _ = _pile_up(before, sample_rate)
    top, frac, pile = _pile_up(after, sample_rate)
    hop = max(1, int(round(_PEAK_WINDOW_S * sample_rate / 2)))
    n_windows = max(1, (after.shape[0] - 2 * hop) // hop + 1)
    limited = (
        frac >= _MIN_PINNED_FRACTION
        and frac * n_windows >= 5
        and pile >= 3.0
        and frac > 2.0 * before_frac
    )
    ceiling = top if math.isfinite(top) else None
    return Limiting(bool(limited), ceiling, frac, before_frac, pile)


# -- transients -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Transients:
    """Transient crest: each onset's peak over the loudness around it, in both versions."""

    onsets: int  # onsets found in BEFORE (and measured at the same times in AFTER)
    before_db: float | None  # median transient crest of BEFORE
    after_db: float | None

    @property
    def change_db(self) -> float | None:
        """AFTER minus BEFORE: negative when the transients were flattened."""
        if self.before_db is None or self.after_db is None:
            return None
        return self.after_db - self.before_db


_ONSET_RISE_DB = 6.0  # 10 ms energy over the 100 ms before it
_ONSET_GATE_DB = 30.0  # onsets quieter than this below the loudest 10 ms are ignored
_ONSET_SPACING_S = 0.1
_TRANSIENT_PEAK_S = (0.005, 0.03)  # peak searched from 5 ms before to 30 ms after an onset
_TRANSIENT_CONTEXT_S = 0.2  # loudness (RMS) from 200 ms before to 200 ms after


def transient_crest(before: np.ndarray, after: np.ndarray, sample_rate: int) -> Transients:
    """Find onsets in BEFORE (energy rising 6 dB within 10 ms) and compare their crest.

    The crest of an onset is its sample peak over the RMS of the 400 ms around
    it: a compressor or limiter that catches the attack lowers it, one that
    lets the attack through (slow attack) can raise it.
    """
    hop = max(1, int(round(0.005 * sample_rate)))
    e = _window_power(before, 2 * hop, hop)
    if e.size < 40 or e.max() <= 0:
        return Transients(0, None, None)
    look = 20  # 100 ms of 5 ms hops
    # Mean energy of the 100 ms before, ending one window earlier (the rise itself).
    c = np.concatenate([[0.0], np.cumsum(e)])
    idx = np.arange(e.size)
    lo = np.maximum(idx - look - 1, 0)
    hi = np.maximum(idx - 1, 0)
    before_mean = np.where(hi > lo, (c[hi] - c[lo]) / np.maximum(hi - lo, 1), np.inf)
    gate = e.max() * 10.0 ** (-_ONSET_GATE_DB / 10.0)
    rise = (e > before_mean * 10.0 ** (_ONSET_RISE_DB / 10.0)) & (e > gate)
    onsets: list[int] = []
    spacing = int(_ONSET_SPACING_S / 0.005)
    for i in np.nonzero(rise)[0]:
        if not onsets or i - onsets[-1] >= spacing:
            onsets.append(int(i))
    if not onsets:
        return Transients(0, None, None)
    a_x = np.abs(before) if before.ndim == 1 else np.max(np.abs(before), axis=1)
    a_y = np.abs(after) if after.ndim == 1 else np.max(np.abs(after), axis=1)
    p_x = _power(before)
    p_y = _power(after)
    cx, cy = np.concatenate([[0.0], np.cumsum(p_x)]), np.concatenate([[0.0], np.cumsum(p_y)])
    n = a_x.size
    pre, post = (int(s * sample_rate) for s in _TRANSIENT_PEAK_S)
    ctx = int(_TRANSIENT_CONTEXT_S * sample_rate)
    crest_x, crest_y = [], []
    for i in onsets:
        t = i * hop
        s0, s1 = max(t - pre, 0), min(t + 2 * hop + post, n)
        r0, r1 = max(t - ctx, 0), min(t + ctx, n)
        if s1 <= s0 or r1 <= r0:
            continue
        mx = (cx[r1] - cx[r0]) / (r1 - r0)
        my = (cy[r1] - cy[r0]) / (r1 - r0)
        px, py = float(a_x[s0:s1].max()), float(a_y[s0:s1].max())
        if mx > 0 and my > 0 and px > 0 and py > 0:
            crest_x.append(20.0 * math.log10(px) - 10.0 * math.log10(mx))
            crest_y.append(20.0 * math.log10(py) - 10.0 * math.log10(my))
    if not crest_x:
        return Transients(0, None, None)
    return Transients(len(crest_x), float(np.median(crest_x)), float(np.median(crest_y)))


def _power(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x * x if x.ndim == 1 else np.sum(x * x, axis=1)


# -- stereo ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Stereo:
    """Side-to-mid energy and inter-channel correlation of both versions (first two channels)."""

    side_to_mid_before_db: float | None
    side_to_mid_after_db: float | None
    correlation_before: float | None
    correlation_after: float | None
    bands_hz: tuple[tuple[float, float], ...]  # (low, high) per band
    side_to_mid_change_bands_db: tuple[float | None, ...]

    @property
    def side_to_mid_change_db(self) -> float | None:
        """Change of side energy relative to mid energy, dB (+ = wider)."""
        if self.side_to_mid_before_db is None or self.side_to_mid_after_db is None:
            return None
        return self.side_to_mid_after_db - self.side_to_mid_before_db

    @property
    def width_change_pct(self) -> float | None:
        """Change of the side/mid amplitude ratio in percent (+12 = 12 % wider)."""
        d = self.side_to_mid_change_db
        return None if d is None else (10.0 ** (d / 20.0) - 1.0) * 100.0


def stereo_change(before: np.ndarray, after: np.ndarray, sample_rate: int) -> Stereo:
    """Width (side-to-mid energy, overall and in three bands) and correlation, both versions."""
    bands = tuple((lo, min(hi, 0.5 * sample_rate)) for lo, hi in _WIDTH_BANDS_HZ)
    if before.ndim < 2 or after.ndim < 2 or before.shape[1] < 2 or after.shape[1] < 2:
        return Stereo(None, None, None, None, bands, (None,) * len(bands))
    out = []
    for sig in (before, after):
        left = np.asarray(sig[:, 0], dtype=np.float64)
        right = np.asarray(sig[:, 1], dtype=np.float64)
        mid, side = 0.5 * (left + right), 0.5 * (left - right)
        mm, ss = float(mid @ mid), float(side @ side)
        ll, rr, lr = float(left @ left), float(right @ right), float(left @ right)
        sm = 10.0 * math.log10(ss / mm) if mm > 0 and ss > 0 else None
        corr = lr / math.sqrt(ll * rr) if ll > 0 and rr > 0 else None
        f, pm = _psd(mid, sample_rate)
        _, ps = _psd(side, sample_rate)
        per_band = []
        for lo, hi in bands:
            m = (f >= lo) & (f < hi)
            a, b = float(pm[m].sum()), float(ps[m].sum())
            per_band.append(10.0 * math.log10(b / a) if a > 0 and b > 0 else None)
        out.append((sm, corr, per_band))
    (sm_b, c_b, band_b), (sm_a, c_a, band_a) = out
    changes = tuple(
        None if b is None or a is None else a - b for b, a in zip(band_b, band_a, strict=True)
    )
    return Stereo(sm_b, sm_a, c_b, c_a, bands, changes)


def _psd(x: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Welch power per bin (Blackman-Harris frames, 50 % overlap), summed over frames."""
    n_fft = _frame_size(sample_rate, 0.04)
    hop = n_fft // 2
    f = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    acc = np.zeros(f.size)
    if x.size >= n_fft:
        win = _analysis_window(n_fft)
        frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop]
        for b in range(0, frames.shape[0], 512):
            X = np.fft.rfft(frames[b : b + 512] * win, axis=1)
            acc += np.sum(X.real**2 + X.imag**2, axis=0)
    return f, acc


# -- the whole comparison ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DiffResult:
    """Everything :func:`compare` measured; arrays are for plots, the rest for reports."""

    alignment: Alignment
    sample_rate: int
    duration_s: float  # length of the overlap that was compared
    # EQ: the level-independent transfer magnitude, median over log-frequency = 0 dB.
    curve_hz: np.ndarray  # 1/6-octave centres
    curve_db: np.ndarray  # NaN where not measurable (too little energy, incoherent)
    fit_hz: np.ndarray  # 1/12-octave centres: what the moves were fitted to
    fit_db: np.ndarray
    fitted_db: np.ndarray  # the moves' combined response at fit_hz
    moves: tuple[EqMove, ...]
    before_spectrum_db: np.ndarray  # 1/6-octave band levels, dB re a full-scale sine
    after_spectrum_db: np.ndarray
    # Dynamics.
    gain_db: float  # broadband gain on the quiet passages (the linear part of the transfer)
    transfer: LevelTransfer
    compressed: bool
    gain_reduction_db: float  # the fitted curve's gain reduction at the 95th-percentile level
    limiting: Limiting
    transients: Transients
    stereo: Stereo
    warnings: tuple[str, ...] = field(default=())


_ITERATIONS = 3
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
    xm, ym = _mono(x), _mono(y)  # float64; the stereo copies stay as given (float32)

    fit_grid = log_grid(_FIT_FRACTION, top)
    curve_grid = log_grid(_CURVE_FRACTION, top)
    plain = _cross_spectra(xm, ym, sample_rate)
    shape = _shape(plain, fit_grid, _FIT_FRACTION)
    spec = plain
    # Everything level-related is measured on the mid (the EQ filter commutes with the
    # channel average, so filtering the mid is filtering each channel and averaging).
    for _ in range(_ITERATIONS):
        xm_eq = _apply_shape(xm, shape, sample_rate)
        gain = _gain_envelope(xm_eq, ym, sample_rate)
        spec = _cross_spectra(xm, ym / gain, sample_rate, 20.0 * np.log10(gain))
        shape = _shape(spec, fit_grid, _FIT_FRACTION)
    curve = _shape(spec, curve_grid, _CURVE_FRACTION)
    # One 0 dB reference for both grids: the finer one's median.
    curve_db = curve.db + (curve.offset_db - shape.offset_db)
    moves, fitted, offset_db = fit_eq_moves(fit_grid, shape.db, sample_rate)
    # The fit's offset is broadband gain the median reference put into the curve.
    fit_db = shape.db - offset_db
    curve_db = curve_db - offset_db
    fitted = fitted - offset_db

    xm_eq = _apply_shape(xm, shape, sample_rate)
    transfer = level_transfer(xm_eq, ym, sample_rate)
    fit = transfer.fit
    if fit.ratio > _MAX_RATIO:
        fit = replace(fit, ratio=_MAX_RATIO)
        transfer = replace(transfer, fit=fit)
    active = transfer.weight > 0
    levels = transfer.in_db[active]
    if levels.size:
        quiet, loud = np.percentile(levels, [5, 95])
        gain_db = float(fit.gain_at(np.array([quiet]))[0]) + offset_db
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
        curve_hz=curve_grid,
        curve_db=curve_db,
        fit_hz=fit_grid,
        fit_db=fit_db,
        fitted_db=fitted,
        moves=moves,
        before_spectrum_db=_band_levels(plain.sxx, plain, curve_grid, x.shape[0], sample_rate),
        after_spectrum_db=_band_levels(plain.syy, plain, curve_grid, x.shape[0], sample_rate),
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


def _band_levels(
    power: np.ndarray, spec: _Spectra, centres: np.ndarray, frames: int, sample_rate: int
) -> np.ndarray:
    """1/6-octave band levels of a Welch power sum, dB re a full-scale sine (NaN: none)."""
    n_fft = 2 * (spec.freq_hz.size - 1)
    hop = n_fft // 3
    n_frames = max(1, (frames - n_fft) // hop + 1)
    win = _analysis_window(n_fft)
    norm = 4.0 / (n_fft * float(np.sum(win**2))) / n_frames
    bands = _band_sums(spec.freq_hz, power, centres, _CURVE_FRACTION) * norm
    with np.errstate(divide="ignore"):
        return np.where(bands > 0, 10.0 * np.log10(np.maximum(bands, 1e-30)), np.nan)
