"""The EQ between two versions: the transfer function of the mids, and the moves
that explain it.

The EQ is the transfer function ``H = Sxy / Sxx`` of the mids (Welch,
Blackman-Harris frames) measured after dividing AFTER by its broadband gain
envelope. A compressor multiplies the signal by a gain that follows the level;
left in, loud frames (kick-heavy, bass-heavy) would get less gain than quiet ones
and the ratio of long-term spectra would show a low cut that no EQ made. So
:func:`measure_eq` alternates three times: shape -> BEFORE through the shape
(minimum-phase FIR) -> gain envelope (10 ms windows) -> AFTER / envelope -> shape,
with frames holding gain reduction weighted down. ``H1`` ignores what is
uncorrelated with BEFORE (limiter distortion, noise), its chance correlation over
K frames is subtracted, and bands where BEFORE has next to nothing (below its
neighbourhood, or 60 dB below its loudest band) are not measured.

The EQ curve is that shape smoothed to 1/6 octave, with the median over
log-frequency as 0 dB (the description "the mids were left alone"; a gain plus a
shelf is otherwise indistinguishable from a shelf the other way);
:func:`fit_eq_moves` summarises it as shelves, bells and cuts (RBJ cookbook
biquads, the shapes pedalboard/JUCE and most EQs use).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..flags import hz_text
from .signal import (
    ACTIVE_RANGE_DB,
    RELIABLE_RANGE_DB,
    analysis_window,
    frame_size,
    mono,
    next_pow2,
    window_power,
)

__all__ = [
    "EqMeasurement",
    "EqMove",
    "eq_move_response_db",
    "fit_eq_moves",
    "log_grid",
    "measure_eq",
]


_SPECTRUM_FRAME_S = 0.34  # Welch frame of the transfer function (16384 at 48 kHz)
_FIR_FRAME_S = 0.17  # minimum-phase FIR applying an EQ shape
_ENVELOPE_WINDOW_S = 0.01  # gain envelope window (hop is half of it)
_LOWEST_HZ = 20.0
_CURVE_FRACTION = 6  # eq_curve: 1/6-octave smoothing and spacing
_FIT_FRACTION = 12  # the curve the moves are fitted to: 1/12 octave
_MIN_COHERENCE = 0.3
_VALLEY_DB = 12.0  # a band this far below its neighbourhood's median is not measured
_LINEAR_WEIGHT_DB = 1.5
_ITERATIONS = 3


# -- spectra -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Spectra:
    freq_hz: np.ndarray
    sxx: np.ndarray  # BEFORE power per bin (summed over frames)
    syy: np.ndarray
    sxy: np.ndarray  # complex cross spectrum conj(X) Y
    k_eff: float  # effective number of independent frames averaged


def _cross_spectra(
    x: np.ndarray, y: np.ndarray, sample_rate: int, gain_db: np.ndarray | None = None
) -> _Spectra:
    """Welch averages over Blackman-Harris frames (2/3 overlap) of two equally long signals.

    With ``gain_db`` (per-sample broadband gain of AFTER, dB), frames are
    weighted by how little gain reduction they hold (their mean gain against
    the programme's highest), so the estimate leans on the linear stretches.
    """
    n_fft = frame_size(sample_rate, _SPECTRUM_FRAME_S)
    hop = n_fft // 3
    n_bins = n_fft // 2 + 1
    sxx = np.zeros(n_bins)
    syy = np.zeros(n_bins)
    sxy = np.zeros(n_bins, dtype=np.complex128)
    k_eff = 0.0
    if x.size >= n_fft:
        win = analysis_window(n_fft)
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
    ok = (before_db > -RELIABLE_RANGE_DB) & (coherence > _MIN_COHERENCE) & np.isfinite(db)
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
    n_fir = frame_size(sample_rate, _FIR_FRAME_S)
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
    n_fft = next_pow2(2 * block)
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


def _gain_envelope(x_eq: np.ndarray, y: np.ndarray, sample_rate: int) -> np.ndarray:
    """Per-sample broadband gain (linear) of ``y`` over ``x_eq``, from 20 ms windows."""
    win = max(2, int(round(_ENVELOPE_WINDOW_S * sample_rate)))
    hop = win // 2
    px = window_power(mono(x_eq), win, hop)
    py = window_power(mono(y), win, hop)
    top = float(px.max()) if px.size else 0.0
    active = px > top * 10.0 ** (-ACTIVE_RANGE_DB / 10.0)
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
        f = hz_text(self.freq_hz)
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


def _band_levels(
    power: np.ndarray, spec: _Spectra, centres: np.ndarray, frames: int, sample_rate: int
) -> np.ndarray:
    """1/6-octave band levels of a Welch power sum, dB re a full-scale sine (NaN: none)."""
    n_fft = 2 * (spec.freq_hz.size - 1)
    hop = n_fft // 3
    n_frames = max(1, (frames - n_fft) // hop + 1)
    win = analysis_window(n_fft)
    norm = 4.0 / (n_fft * float(np.sum(win**2))) / n_frames
    bands = _band_sums(spec.freq_hz, power, centres, _CURVE_FRACTION) * norm
    with np.errstate(divide="ignore"):
        return np.where(bands > 0, 10.0 * np.log10(np.maximum(bands, 1e-30)), np.nan)


# -- the measurement -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EqMeasurement:
    """What :func:`measure_eq` found: the curve (1/6 octave, for plots and reports), the
    finer curve the moves were fitted to and the moves, and both versions' band levels."""

    curve_hz: np.ndarray  # 1/6-octave centres
    curve_db: np.ndarray  # NaN where not measurable (too little energy, incoherent)
    fit_hz: np.ndarray  # 1/12-octave centres: what the moves were fitted to
    fit_db: np.ndarray
    fitted_db: np.ndarray  # the moves' combined response at fit_hz
    moves: tuple[EqMove, ...]
    offset_db: float  # broadband gain the median reference had put into the curve
    before_spectrum_db: np.ndarray  # 1/6-octave band levels, dB re a full-scale sine
    after_spectrum_db: np.ndarray


def measure_eq(
    xm: np.ndarray, ym: np.ndarray, sample_rate: int, top_hz: float
) -> tuple[EqMeasurement, np.ndarray]:
    """The EQ that turns the aligned mid ``xm`` (BEFORE) into ``ym`` (AFTER) up to
    ``top_hz``, measured level-independently (module docstring) and fitted with moves;
    and ``xm`` through that EQ (what the dynamics are measured against)."""
    fit_grid = log_grid(_FIT_FRACTION, top_hz)
    curve_grid = log_grid(_CURVE_FRACTION, top_hz)
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
    frames = xm.shape[0]
    measured = EqMeasurement(
        curve_hz=curve_grid,
        curve_db=curve_db,
        fit_hz=fit_grid,
        fit_db=fit_db,
        fitted_db=fitted,
        moves=moves,
        offset_db=offset_db,
        before_spectrum_db=_band_levels(plain.sxx, plain, curve_grid, frames, sample_rate),
        after_spectrum_db=_band_levels(plain.syy, plain, curve_grid, frames, sample_rate),
    )
    return measured, _apply_shape(xm, shape, sample_rate)
