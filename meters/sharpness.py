"""Psychoacoustic sharpness (DIN 45692, acum) on the loudness of ISO 532-1 (Zwicker, stationary).

ISO 532-1:2017 method 1 turns 28 one-third-octave band levels (25 Hz-12.5 kHz,
dB SPL) into a specific loudness N'(z), sone per Bark over 0.1-24 Bark in 0.1 Bark
steps, and a total loudness N in sone: band levels corrected below 315 Hz for the
equal-loudness contours, grouped into 20 core critical bands, corrected for the
ear's transmission, turned into core loudness by Zwicker's power law, and spread
towards higher bands by the standard's upper-slope table (the masking spread).
DIN 45692:2009 sharpness is the weighted first moment of that pattern::

    S = 0.11 * sum(N'(z) g(z) z dz) / N      acum
    g(z) = 1 up to 15.8 Bark, 0.15 exp(0.42 (z - 15.8)) + 0.85 above

so narrow-band noise one critical band wide (920-1080 Hz) at 60 dB SPL reads
1 acum, and moving energy upwards above ~3 kHz raises it fast. The field is free
(ISO 532-1's default; loudspeakers in front of a listener).

Listening level. Digital band levels have no SPL, and Zwicker's loudness is not
linear in level, so the result needs a stated playback level. earmark's
convention (``listening="k20"``, the default): every spectrum is *heard at one
loudness*, that of K-20 reference pink noise. The spectrum is loudness-normalised
as :mod:`earmark.meters.tonal` does (its bands relative to their K-weighted power
total) and placed so that this total equals the one of pink noise at -20 dBFS RMS
played at 83 dB SPL (K-System K-20, the film calibration). A master turned up by
6 dB, or limited to a higher loudness, therefore reads the same sharpness as long
as its spectral balance is the same: sharpness reads the balance, not the level.
``spl_at_full_scale_db`` instead fixes the calibration (a full-scale sine plays at
that SPL), for measurements against a known acoustic level.

Band levels come from the MeterBank (:mod:`earmark.meters.bands`): dB re a
full-scale sine per 1/3-octave band, mean power of the channels. They are first
given the skirts of the standard's 1/3-octave filters (``_skirts``), which FFT
bands lack. The kernel runs over many spectra at once (the 10 Hz history's 3 s
spectra) in one numba call, about 3 us per spectrum. The bank's spectra come from
back-to-back Hann frames, which weigh a note at a frame edge less: on a few seconds
of sparse music that moves the sharpness by up to 5 % with where the frames fall;
over a programme it averages out (and broadband or steady sounds are unaffected).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numba as nb
import numpy as np

from .bands import NOMINAL_HZ
from .tonal import k_weighting_gain_db, relative_levels

__all__ = [
    "ISO_BAND_HZ",
    "K20_PINK_SPL_DB",
    "REFERENCE_K",
    "listening_spl_db",
    "sharpness_acum",
    "sharpness_from_loudness",
    "specific_loudness",
]

# ISO 532-1's 28 one-third-octave bands, 25 Hz to 12.5 kHz (IEC 61260 base ten).
ISO_BAND_HZ: tuple[float, ...] = tuple(float(f) for f in NOMINAL_HZ[1:29])
N_BARK = 240  # specific loudness at 0.1, 0.2, ... 24.0 Bark
BARK_STEP = 0.1

# DIN 45692:2009: the constant that makes the reference sound (critical-band noise
# at 1 kHz, 60 dB SPL) read 1 acum, and the weighting's corner in Bark.
REFERENCE_K = 0.11
_G_CORNER_BARK = 15.8

# K-20 (B. Katz, JAES 2000): pink noise at -20 dBFS RMS (sine-referenced, as the
# band levels are) plays at 83 dB SPL per channel.
K20_PINK_DBFS = -20.0
K20_PINK_SPL_DB = 83.0

# -- ISO 532-1:2017 tables (Annex A; Zwicker & Fastl's program, 1991) ------------
# Level ranges and reductions of the bands up to 250 Hz for the equal-loudness contours.
_RAP = np.array([45.0, 55.0, 65.0, 71.0, 80.0, 90.0, 100.0, 120.0])
_DLL = np.array([
    [-32, -24, -16, -10, -5, 0, -7, -3, 0, -2, 0],
    [-29, -22, -15, -10, -4, 0, -7, -2, 0, -2, 0],
    [-27, -19, -14, -9, -4, 0, -6, -2, 0, -2, 0],
    [-25, -17, -12, -9, -3, 0, -5, -2, 0, -2, 0],
    [-23, -16, -11, -7, -3, 0, -4, -1, 0, -1, 0],
    [-20, -14, -10, -6, -3, 0, -4, -1, 0, -1, 0],
    [-18, -12, -9, -6, -2, 0, -3, -1, 0, -1, 0],
    [-15, -10, -8, -4, -2, 0, -3, -1, 0, -1, 0],
], dtype=np.float64)  # fmt: skip
# Critical-band level at the threshold in quiet (LTQ), the ear's transmission (A0),
# free-to-diffuse field difference (DDF), 1/3-octave to critical-band width (DCB).
_LTQ = np.array([30, 18, 12, 8, 7, 6, 5, 4, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3], dtype=np.float64)
_A0 = np.array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, -0.5, -1.6, -3.2, -5.4, -5.6, -4, -1.5, 2, 5, 12])
_DDF = np.array([
    0, 0, 0.5, 0.9, 1.2, 1.6, 2.3, 2.8, 3, 2, 0, -1.4, -2, -1.9, -1, 0.5, 3, 4, 4.3, 4,
], dtype=np.float64)  # fmt: skip
_DCB = np.array([
    -0.25, -0.6, -0.8, -0.8, -0.5, 0, 0.5, 1.1, 1.5, 1.7,
    1.8, 1.8, 1.7, 1.6, 1.4, 1.2, 0.8, 0.5, 0, -0.5,
], dtype=np.float64)  # fmt: skip
# Upper edges (Bark) of the 21 approximated critical bands.
_ZUP = np.array([
    0.9, 1.8, 2.8, 3.5, 4.4, 5.4, 6.6, 7.9, 9.2, 10.6, 12.3,
    13.8, 15.2, 16.7, 18.1, 19.3, 20.6, 21.8, 22.7, 23.6, 24.0,
])  # fmt: skip
# Ranges of specific loudness (RNS) and the upper slopes' steepness in each (USL),
# sone/Bark per Bark, by range and by critical band (the last column for the rest).
_RNS = np.array([
    21.5, 18.0, 15.1, 11.5, 9.0, 6.1, 4.4, 3.1, 2.13, 1.36,
    0.82, 0.42, 0.30, 0.22, 0.15, 0.10, 0.035, 0.0,
])  # fmt: skip
_USL = np.array([
    [13.0, 8.2, 6.3, 5.5, 5.5, 5.5, 5.5, 5.5],
    [9.0, 7.5, 6.0, 5.1, 4.5, 4.5, 4.5, 4.5],
    [7.8, 6.7, 5.6, 4.9, 4.4, 3.9, 3.9, 3.9],
    [6.2, 5.4, 4.6, 4.0, 3.5, 3.2, 3.2, 3.2],
    [4.5, 3.8, 3.6, 3.2, 2.9, 2.7, 2.7, 2.7],
    [3.7, 3.0, 2.8, 2.35, 2.2, 2.2, 2.2, 2.2],
    [2.9, 2.3, 2.1, 1.9, 1.8, 1.7, 1.7, 1.7],
    [2.4, 1.7, 1.5, 1.35, 1.3, 1.3, 1.3, 1.3],
    [1.95, 1.45, 1.3, 1.15, 1.1, 1.1, 1.1, 1.1],
    [1.5, 1.2, 0.94, 0.86, 0.82, 0.82, 0.82, 0.82],
    [0.72, 0.67, 0.64, 0.63, 0.62, 0.62, 0.62, 0.62],
    [0.59, 0.53, 0.51, 0.50, 0.42, 0.42, 0.42, 0.42],
    [0.40, 0.33, 0.26, 0.24, 0.22, 0.22, 0.22, 0.22],
    [0.27, 0.21, 0.20, 0.18, 0.17, 0.17, 0.17, 0.17],
    [0.16, 0.15, 0.14, 0.12, 0.11, 0.11, 0.11, 0.11],
    [0.12, 0.11, 0.10, 0.08, 0.08, 0.08, 0.08, 0.08],
    [0.09, 0.08, 0.07, 0.06, 0.06, 0.06, 0.06, 0.05],
    [0.06, 0.05, 0.03, 0.02, 0.02, 0.02, 0.02, 0.02],
])  # fmt: skip
# A band this far below the threshold in quiet contributes nothing: stands in for
# an empty band (NaN, -inf) so the kernel sees finite numbers only.
_SILENT_DB = -100.0
# Below this total loudness (about a 1 kHz tone at 2 phon) sharpness is left undefined.
_MIN_SONE = 1e-3


@nb.njit(cache=True, nogil=True)
def _core_loudness(spl: np.ndarray, diffuse: bool, core: np.ndarray) -> None:
    """ISO 532-1 core loudness of one 28-band spectrum (dB SPL) into ``core`` (21,)."""
    lcb = np.zeros(3)
    for i in range(11):  # 25-250 Hz: equal-loudness correction, then intensities
        level = spl[i]
        j = 0
        while j < _RAP.shape[0] - 1 and level > _RAP[j] - _DLL[j, i]:
            j += 1
        intensity = 10.0 ** ((level + _DLL[j, i]) / 10.0)
        # The first three critical bands gather 6, 3 and 2 of these bands.
        lcb[0 if i < 6 else (1 if i < 9 else 2)] += intensity
    for k in range(3):
        lcb[k] = 10.0 * math.log10(lcb[k]) if lcb[k] > 0.0 else 0.0
    for k in range(20):
        le = lcb[k] if k < 3 else spl[k + 8]
        le -= _A0[k]
        if diffuse:
            le += _DDF[k]
        core[k] = 0.0
        if le > _LTQ[k]:
            le -= _DCB[k]
            mp1 = 0.0635 * 10.0 ** (0.025 * _LTQ[k])
            mp2 = (0.75 + 0.25 * 10.0 ** (0.1 * (le - _LTQ[k]))) ** 0.25 - 1.0
            core[k] = max(0.0, mp1 * mp2)
    core[20] = 0.0
    # The threshold in quiet rises across the lowest critical band.
    corr = 0.4 + 0.32 * core[0] ** 0.2
    if corr < 1.0:
        core[0] *= corr


@nb.njit(cache=True, nogil=True)
def _slopes(core: np.ndarray, ns: np.ndarray) -> float:
    """Specific loudness ``ns`` (240,) from core loudness, with the upper slopes; returns N.

    Walks the 21 critical bands upwards: a band louder than the falling slope of
    the bands below sets its own level, otherwise the slope (steepness from USL by
    the range of specific loudness it is in) runs on into it (ISO 532-1, A.4).
    """
    n_total = 0.0
    n1 = 0.0
    z1 = 0.0
    z = BARK_STEP
    j = 0  # range of specific loudness (index into RNS)
    iz = 0  # next 0.1 Bark point to write
    for i in range(21):
        cl = core[i]
        zup = _ZUP[i] + 0.0001  # the standard's tolerance on the band edges
        ig = min(max(i - 1, 0), _USL.shape[1] - 1)  # slope column of the band below
        done = False
        while not done:
            if n1 > cl:  # the slope from below is above this band's own loudness
                usl = _USL[j, ig]
                n2 = max(_RNS[j], cl)
                dz = (n1 - n2) / usl
                z2 = z1 + dz
                if z2 > zup:
                    done = True
                    z2 = zup
                    dz = z2 - z1
                    n2 = n1 - dz * usl
                n_total += dz * (n1 + n2) / 2.0
                zk = z
                while zk <= z2 and iz < ns.shape[0]:
                    ns[iz] = n1 - (zk - z1) * usl
                    iz += 1
                    zk = BARK_STEP * (iz + 1)
                z = zk
            else:
                if n1 < cl:
                    j = 0
                    while j < _RNS.shape[0] and _RNS[j] >= cl:
                        j += 1
                done = True
                z2 = zup
                n2 = cl
                n_total += n2 * (z2 - z1)
                zk = z
                while zk <= z2 and iz < ns.shape[0]:
                    ns[iz] = n2
                    iz += 1
                    zk = BARK_STEP * (iz + 1)
                z = zk
            while j < _RNS.shape[0] - 1 and n2 <= _RNS[j]:
                j += 1
            z1 = z2
            n1 = n2
    for k in range(iz, ns.shape[0]):
        ns[k] = 0.0
    return max(n_total, 0.0)


@nb.njit(cache=True, nogil=True)
def _loudness_rows(spl: np.ndarray, diffuse: bool, n_out: np.ndarray, ns_out: np.ndarray) -> None:
    core = np.empty(21)
    row = np.empty(spl.shape[1])
    for r in range(spl.shape[0]):
        for b in range(spl.shape[1]):
            v = spl[r, b]
            row[b] = v if math.isfinite(v) else _SILENT_DB
        _core_loudness(row, diffuse, core)
        n_out[r] = _slopes(core, ns_out[r])


@nb.njit(cache=True, nogil=True)
def _sharpness_rows(spl: np.ndarray, diffuse: bool, out: np.ndarray) -> None:
    """DIN 45692 sharpness of each row of 28 band levels (dB SPL); NaN where N' is all 0."""
    core = np.empty(21)
    ns = np.empty(N_BARK)
    row = np.empty(spl.shape[1])
    weight = np.empty(N_BARK)  # z g(z) dz
    for k in range(N_BARK):
        zb = BARK_STEP * (k + 1)
        g = 1.0 if zb <= _G_CORNER_BARK else 0.15 * math.exp(0.42 * (zb - _G_CORNER_BARK)) + 0.85
        weight[k] = zb * g * BARK_STEP
    for r in range(spl.shape[0]):
        finite = False
        for b in range(spl.shape[1]):
            v = spl[r, b]
            finite = finite or math.isfinite(v)
            row[b] = v if math.isfinite(v) else _SILENT_DB
        if not finite:
            out[r] = np.nan
            continue
        _core_loudness(row, diffuse, core)
        n_sone = _slopes(core, ns)
        num = 0.0
        for k in range(N_BARK):
            num += ns[k] * weight[k]
        # DIN 45692 divides by the total loudness N; ISO 532-1's N integrates the
        # pattern exactly (its slopes are linear), where a sum of the 0.1 Bark samples
        # would lean on the steep slopes' sampling.
        out[r] = REFERENCE_K * num / n_sone if n_sone > _MIN_SONE else np.nan


@functools.lru_cache(maxsize=8)
def _skirts(band_hz: tuple[float, ...]) -> np.ndarray:
    """Power leakage ``m[j, i]`` of band i into the 1/3-octave filter of band j.

    The MeterBank's bands sum FFT bins and so have no skirts, while ISO 532-1 reads
    the output of real 1/3-octave filters (IEC 61260 class 1; sixth-order band-pass,
    three second-order stages, in its Annex A program), whose skirts pass about
    -18 dB of a neighbour's energy. For broadband programme the two agree; for a
    narrow band or a tone the skirts set the masking spread and the sharpness
    (without them a 4 kHz narrow band reads 6 % sharper). Each band's energy is put
    through the filters at its centre frequency; the filters are the Butterworth
    prototype of the class 1 response, |H|^2 = 1 / (1 + ((f/fc - fc/f) / bw)^6).
    """
    exact = np.array([1000.0 * 10.0 ** ((NOMINAL_HZ.index(f) - 17) / 10.0) for f in band_hz])
    bw = 10.0 ** (1.0 / 20.0) - 10.0 ** (-1.0 / 20.0)  # relative bandwidth of a 1/3 octave
    ratio = exact[np.newaxis, :] / exact[:, np.newaxis]  # [j, i]: source centre over filter's
    return 1.0 / (1.0 + ((ratio - 1.0 / ratio) / bw) ** 6)


def _as_rows(levels: np.ndarray | Sequence[float], bands: int) -> tuple[np.ndarray, bool]:
    arr = np.asarray(levels, dtype=np.float64)
    single = arr.ndim == 1
    arr = np.atleast_2d(arr)
    if arr.ndim != 2 or arr.shape[1] != bands:
        raise ValueError(f"expected levels shaped (bands,) or (rows, bands) with {bands} bands")
    return np.ascontiguousarray(arr), single


def specific_loudness(
    iso_band_spl_db: np.ndarray | Sequence[float], *, diffuse: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """ISO 532-1 (stationary) loudness of 28 one-third-octave band levels.

    Args:
        iso_band_spl_db: band levels in dB SPL at :data:`ISO_BAND_HZ` (25 Hz-12.5 kHz),
            shaped (28,) or (rows, 28); NaN or -inf for an empty band.
        diffuse: diffuse-field levels instead of free field.

    Returns:
        ``(loudness_sone, specific_sone_per_bark)``: N shaped () or (rows,), and
        N'(z) at z = 0.1 ... 24.0 Bark shaped (240,) or (rows, 240).
    """
    spl, single = _as_rows(iso_band_spl_db, len(ISO_BAND_HZ))
    n = np.empty(spl.shape[0])
    ns = np.empty((spl.shape[0], N_BARK))
    _loudness_rows(spl, bool(diffuse), n, ns)
    return (n[0], ns[0]) if single else (n, ns)


def sharpness_from_loudness(
    loudness_sone: np.ndarray | float, specific_sone_per_bark: np.ndarray
) -> np.ndarray:
    """DIN 45692 sharpness (acum) from :func:`specific_loudness`'s N (scalar or (rows,))
    and N'(z) at 0.1 Bark steps ((240,) or (rows, 240)); NaN where N is about 0."""
    n = np.atleast_1d(np.asarray(loudness_sone, dtype=np.float64))
    ns = np.atleast_2d(np.asarray(specific_sone_per_bark, dtype=np.float64))
    z = BARK_STEP * np.arange(1, ns.shape[-1] + 1)
    g = np.where(z <= _G_CORNER_BARK, 1.0, 0.15 * np.exp(0.42 * (z - _G_CORNER_BARK)) + 0.85)
    moment = (ns * g * z * BARK_STEP).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.where(n > _MIN_SONE, REFERENCE_K * moment / n, np.nan)
    return s if np.ndim(specific_sone_per_bark) > 1 else s[0]


@functools.lru_cache(maxsize=8)
def _iso_columns(band_hz: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Which ISO bands ``band_hz`` has, and the columns holding them."""
    have = np.array([f in band_hz for f in ISO_BAND_HZ])
    columns = np.array([band_hz.index(f) for f in ISO_BAND_HZ if f in band_hz], dtype=np.int64)
    return have, columns


@functools.lru_cache(maxsize=8)
def _listening(band_hz: tuple[float, ...], sample_rate: int) -> tuple[np.ndarray, float]:
    return k_weighting_gain_db(band_hz, sample_rate), listening_spl_db(sample_rate)


def listening_spl_db(sample_rate: int = 48000) -> float:
    """K-weighted total (dB SPL) of the K-20 reference: pink noise at -20 dBFS RMS over
    the 20 Hz-20 kHz bands, played at 83 dB SPL. Every spectrum is heard at this
    loudness under the default ``listening="k20"``."""
    hz = np.asarray(NOMINAL_HZ, dtype=np.float64)
    hz = hz[hz < sample_rate / 2.0]
    gain = k_weighting_gain_db(hz, sample_rate)
    per_band = K20_PINK_DBFS - 10.0 * math.log10(len(NOMINAL_HZ))  # pink: equal band levels
    k_total = 10.0 * math.log10(float(np.sum(10.0 ** ((per_band + gain) / 10.0))))
    return K20_PINK_SPL_DB - K20_PINK_DBFS + k_total


def sharpness_acum(
    band_levels_db: np.ndarray | Sequence[float | None],
    band_hz: Sequence[float],
    *,
    sample_rate: int = 48000,
    spl_at_full_scale_db: float | None = None,
    diffuse: bool = False,
) -> np.ndarray:
    """DIN 45692 sharpness (acum) of MeterBank 1/3-octave spectra, one value per row.

    Args:
        band_levels_db: band levels in dB re a full-scale sine (``Readings.spectrum_*``,
            ``History.spectrum_db``), shaped (bands,) or (rows, bands); NaN or None
            for an empty band.
        band_hz: the nominal band centres of those columns (``Readings.band_hz``);
            ISO 532-1 uses those from 25 Hz to 12.5 kHz, a band missing (above a low
            rate's Nyquist) counts as silent.
        sample_rate: the rate the spectra were measured at (for the K-weighting of
            the loudness normalisation).
        spl_at_full_scale_db: None (default) for earmark's listening convention
            (module doc: each spectrum heard at the loudness of K-20 pink noise,
            83 dB SPL); a number fixes the calibration instead: the SPL of a
            full-scale sine.
        diffuse: diffuse-field loudness instead of free field.

    Returns:
        Sharpness in acum, shaped () for one spectrum or (rows,); NaN for a row
        without energy.
    """
    hz = [float(f) for f in band_hz]
    rows, single = _as_rows(np.array(band_levels_db, dtype=np.float64), len(hz))  # None -> NaN
    power = np.where(np.isnan(rows), 0.0, 10.0 ** (np.nan_to_num(rows, nan=-300.0) / 10.0))
    with np.errstate(divide="ignore"):
        rows = 10.0 * np.log10(power @ _skirts(tuple(hz)).T)  # -inf where no band has power
    if spl_at_full_scale_db is None:
        k_gain, listen_db = _listening(tuple(hz), int(sample_rate))
        rows = relative_levels(rows, k_gain) + listen_db
    else:
        rows = rows + float(spl_at_full_scale_db)
    iso = np.full((rows.shape[0], len(ISO_BAND_HZ)), np.nan)
    have, columns = _iso_columns(tuple(hz))
    iso[:, have] = rows[:, columns]
    out = np.empty(rows.shape[0])
    _sharpness_rows(np.ascontiguousarray(iso), bool(diffuse), out)
    return out[0] if single else out
