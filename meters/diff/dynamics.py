"""What the dynamics processing did: the level transfer and its compressor fit, and
limiting.

The level transfer is the window-by-window (20 ms) gain of AFTER over
``EQ(BEFORE)`` against the input level; a soft-knee compressor curve fitted to it
gives the gain of the quiet passages, the threshold and the ratio. The input
level is a peak envelope of the mid, the quantity a compressor's detector
follows, with the attack and release that best explain the gain trace, so the
threshold reads like the plugin's knob. Limiting is a pile-up of window peaks at
one ceiling in AFTER that BEFORE does not have.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba as nb
import numpy as np

from .signal import ACTIVE_RANGE_DB, mono, window_peak, window_power

__all__ = [
    "CompressorFit",
    "LevelTransfer",
    "Limiting",
    "detect_limiting",
    "fit_compressor",
    "level_transfer",
]


_LEVEL_WINDOW_S = 0.02  # level-transfer window (hop is half of it)
_MAX_THRESHOLD_PERCENTILE = 95  # at least 5 % of the programme above a fitted threshold
_COARSE_STRIDE = 2  # every n-th window while choosing the detector time constants
_BINNED = True
_PEAK_WINDOW_S = 0.02  # window of the peak pile-up (limiting) statistic


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
    xm = mono(x_eq)
    px = window_power(xm, win, hop)
    py = window_power(mono(y), win, hop)
    top = float(px.max()) if px.size else 0.0
    active = (px > top * 10.0 ** (-ACTIVE_RANGE_DB / 10.0)) & (py > 0)
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
    peaks = window_peak(x, 2 * hop, hop)
    power = window_power(x, 2 * hop, hop)[: peaks.size]
    peaks = peaks[: power.size]
    if peaks.size == 0 or peaks.max() <= 0:
        return -math.inf, 0.0, 0.0
    active = power > power.max() * 10.0 ** (-ACTIVE_RANGE_DB / 10.0)
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
