"""Sharpness (DIN 45692) on ISO 532-1 loudness: the standard's reference, an independent
implementation (MoSQITo) and what a mastering move does to it.

Tolerances: DIN 45692 permits 5 % or 0.05 acum on its test signals. Against MoSQITo
on the same 1/3-octave levels the two ISO 532-1 programs must agree to 0.005 acum
(same arithmetic, independent code); on the same signal, where MoSQITo filters in
the time domain and earmark reads FFT bands with the standard filters' skirts, to
3 % (stated here, measured within 1.5 %).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from mosqito.sq_metrics import sharpness_din_from_loudness, sharpness_din_st
from mosqito.sq_metrics.loudness.loudness_zwst._calc_slopes import _calc_slopes
from mosqito.sq_metrics.loudness.loudness_zwst._main_loudness import _main_loudness
from pedalboard import HighShelfFilter, Pedalboard
from scipy import signal as sps

from earmark.meters import MeterBank
from earmark.meters.sharpness import (
    ISO_BAND_HZ,
    sharpness_acum,
    sharpness_from_loudness,
    specific_loudness,
)
from earmark.offline.analysis import analyze

from material import acoustic_piece, orchestral_piece
from synth import music_like

FS = 48000
P_REF = 2e-5
# Digital full scale in these tests: a full-scale sample is 20 Pa, so a full-scale
# sine (RMS 20/sqrt 2 Pa) is this many dB SPL.
FULL_SCALE_PA = 20.0
SPL_AT_FULL_SCALE_DB = 20.0 * math.log10(FULL_SCALE_PA / math.sqrt(2.0) / P_REF)


def _noise_band(lo_hz: float, hi_hz: float, seconds: float = 4.0, order: int = 8, seed: int = 7):
    rng = np.random.default_rng(seed)
    sos = sps.butter(order, [lo_hz, hi_hz], btype="band", fs=FS, output="sos")
    return sps.sosfilt(sos, rng.standard_normal(int(seconds * FS)))


def _pink(seconds: float = 4.0, seed: int = 3) -> np.ndarray:
    n = int(seconds * FS)
    spec = np.fft.rfft(np.random.default_rng(seed).standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / FS)
    spec[1:] /= np.sqrt(f[1:])
    spec[0] = 0.0
    return np.fft.irfft(spec, n)


def _at_spl(x: np.ndarray, level_db: float) -> np.ndarray:
    """``x`` scaled to an overall level in dB SPL, in pascals."""
    return x / np.sqrt(np.mean(x**2)) * P_REF * 10.0 ** (level_db / 20.0)


def _long_term(x: np.ndarray) -> tuple[np.ndarray, tuple[float, ...]]:
    """The long-term band levels, from two banks whose Hann frames are half a frame apart.

    One bank's back-to-back frames weigh a note at a frame edge less (the bank's
    trade-off for the 3 s and programme spectra, README); half-overlapped Hann frames
    weigh every sample alike, as the filters of a stationary ISO 532-1 reading do.
    """
    power = []
    for phase in (0.0, 0.5):
        bank = MeterBank(1, FS, spectrum_phase=phase)
        bank.process(np.ascontiguousarray(x, dtype=np.float64))
        r = bank.readings()
        power.append(10.0 ** (np.array(r.spectrum_long_db, dtype=np.float64) / 10.0))
    return 10.0 * np.log10(np.mean(power, axis=0)), r.band_hz


def _earmark_acum(pascals: np.ndarray) -> float:
    """Sharpness of a signal in pascals through the MeterBank, fixed calibration."""
    levels, hz = _long_term(pascals / FULL_SCALE_PA)
    return float(sharpness_acum(levels, hz, spl_at_full_scale_db=SPL_AT_FULL_SCALE_DB))


# -- the standard's reference ------------------------------------------------------------


def test_din45692_reference_critical_band_noise_at_1khz_60db_reads_1_acum():
    """DIN 45692 clause 6: noise one critical band wide (920-1080 Hz) at 60 dB SPL = 1 acum."""
    s = _earmark_acum(_at_spl(_noise_band(920.0, 1080.0), 60.0))
    assert s == pytest.approx(1.00, abs=0.05)


@pytest.mark.parametrize(
    ("lo_hz", "hi_hz", "target_acum"),
    [(200.0, 300.0, 0.38), (920.0, 1080.0, 1.00), (2320.0, 2700.0, 1.78), (3700.0, 4400.0, 2.82)],
)
def test_din45692_table_a2_critical_band_noises_at_4_sone(lo_hz, hi_hz, target_acum):
    """DIN 45692 Table A.2: critical-band noises at equal loudness (4 sone), 5 % or 0.05 acum."""
    levels, hz = _long_term(_at_spl(_noise_band(lo_hz, hi_hz), 60.0) / FULL_SCALE_PA)
    iso_cols = [hz.index(f) for f in ISO_BAND_HZ]

    def loudness(shift_db: float) -> float:
        n, _ = specific_loudness(levels[iso_cols] + SPL_AT_FULL_SCALE_DB + shift_db)
        return float(n)

    lo, hi = -30.0, 30.0  # bisect the level that reads 4 sone
    for _ in range(40):
        mid = (lo + hi) / 2.0
        lo, hi = (mid, hi) if loudness(mid) < 4.0 else (lo, mid)
    s = float(sharpness_acum(levels, hz, spl_at_full_scale_db=SPL_AT_FULL_SCALE_DB + lo))
    assert abs(s - target_acum) <= max(0.05, 0.05 * target_acum)


# -- against MoSQITo ------------------------------------------------------------------------


def _spectra() -> dict[str, np.ndarray]:
    hz = np.array(ISO_BAND_HZ)
    rng = np.random.default_rng(11)
    out = {
        "1 kHz band at 60 dB": np.where(hz == 1000.0, 60.0, -30.0),
        "flat 60 dB": np.full(len(hz), 60.0),
        "pink-like, falling 3 dB/oct": 75.0 - 3.0 * np.log2(hz / 1000.0),
        "bright, rising above 2 kHz": 60.0 + 8.0 * (hz > 2000.0),
        "loud bass": 95.0 - 6.0 * np.log2(hz / 25.0),
    }
    for k in range(5):
        out[f"random {k}"] = rng.uniform(10.0, 95.0, len(hz))
    return out


@pytest.mark.parametrize("name", list(_spectra()))
def test_iso532_loudness_and_din_sharpness_agree_with_mosqito_on_the_same_band_levels(name):
    spl = _spectra()[name]
    n, ns = specific_loudness(spl)
    core = _main_loudness(spl.copy(), "free")
    n_ref, ns_ref = _calc_slopes(core)
    assert float(n) == pytest.approx(float(n_ref), rel=1e-3, abs=0.005)
    assert np.max(np.abs(ns - ns_ref)) < 0.05  # sone/Bark, slope points at band edges
    s_ref = float(sharpness_din_from_loudness(n_ref, ns_ref))
    assert float(sharpness_from_loudness(n, ns)) == pytest.approx(s_ref, abs=0.005)


def _shelved(x: np.ndarray, gain_db: float) -> np.ndarray:
    """``x`` through a pedalboard high shelf at 4 kHz."""
    board = Pedalboard([HighShelfFilter(cutoff_frequency_hz=4000.0, gain_db=gain_db)])
    return board(np.ascontiguousarray(x, dtype=np.float32), FS).astype(np.float64)


def _tone(freq_hz: float) -> np.ndarray:
    return np.sin(2 * np.pi * freq_hz * np.arange(3 * FS) / FS)


# name -> (signal maker, level dB SPL); 3 s each: MoSQITo filters in the time domain.
SIGNALS = {
    "pink noise, 70 dB": (lambda: _pink(3.0), 70.0),
    "white noise, 70 dB": (lambda: np.random.default_rng(5).standard_normal(3 * FS), 70.0),
    "octave noise at 2 kHz, 65 dB": (lambda: _noise_band(1414.0, 2828.0, 3.0, order=4), 65.0),
    "octave noise at 4 kHz, 65 dB": (lambda: _noise_band(2828.0, 5657.0, 3.0, order=4), 65.0),
    "octave noise at 8 kHz, 65 dB": (lambda: _noise_band(5657.0, 11314.0, 3.0, order=4), 65.0),
    "1/3-octave noise at 8 kHz, 65 dB": (lambda: _noise_band(7130.0, 8980.0, 3.0), 65.0),
    "1 kHz tone, 60 dB": (lambda: _tone(1000.0), 60.0),
    "3 kHz tone, 60 dB": (lambda: _tone(3000.0), 60.0),
    # Pieces whose notes fall at irregular times: a stationary method's long-term
    # spectrum is then the same from back-to-back FFT frames as from filters (a
    # strict 120 BPM pulse beats against the 8192-sample frames over 7 s).
    "acoustic piece, +6 dB shelf at 4 kHz, 75 dB": (
        lambda: _shelved(acoustic_piece(4.0)[:, 0], 6.0),
        75.0,
    ),
    "orchestral piece, +6 dB shelf at 4 kHz, 75 dB": (
        lambda: _shelved(orchestral_piece(4.0)[:, 0], 6.0),
        75.0,
    ),
}


@pytest.mark.parametrize("name", list(SIGNALS))
def test_sharpness_of_a_signal_agrees_with_mosqito_within_3_percent(name):
    make, level_db = SIGNALS[name]
    pascals = _at_spl(make(), level_db)
    ours = _earmark_acum(pascals)
    theirs = float(sharpness_din_st(pascals, FS, field_type="free"))
    assert ours == pytest.approx(theirs, rel=0.03)


# -- earmark's listening convention ------------------------------------------------------


def test_sharpness_reads_the_balance_not_the_level():
    """Loudness-normalised: the same programme 12 dB quieter reads the same sharpness."""
    x = music_like(10.0, FS, seed=2)
    loud, quiet = analyze(x, FS), analyze(x * 10 ** (-12 / 20), FS)
    assert loud.sharpness_acum == pytest.approx(quiet.sharpness_acum, abs=0.01)


def test_pink_noise_reads_2_acum_at_the_k20_listening_level():
    """K-20 pink noise: the listening convention's own reference reads about 2 acum."""
    x = _pink(6.0)
    x = x / np.sqrt(np.mean(x**2)) * 10 ** (-20 / 20) / math.sqrt(2)  # -20 dBFS RMS (AES17)
    levels, hz = _long_term(x)
    assert float(sharpness_acum(levels, hz)) == pytest.approx(2.01, abs=0.03)


@pytest.mark.parametrize(
    ("piece", "rise_acum"),
    [("music-like", 0.25), ("orchestral", 0.19), ("acoustic", 0.09)],
)
def test_a_6_db_high_shelf_at_4_khz_raises_sharpness_by_the_measured_amount(piece, rise_acum):
    """Measured: +0.25, +0.19 and +0.09 acum (+15 %, +16 %, +9 %); less where little
    of the programme lies above 4 kHz (plucked strings in a hall)."""
    x = {
        "music-like": lambda: music_like(10.0, FS, seed=4),
        "orchestral": lambda: orchestral_piece(10.0),
        "acoustic": lambda: acoustic_piece(10.0),
    }[piece]()
    plain = analyze(_shelved(x, 0.0), FS).sharpness_acum
    bright = analyze(_shelved(x, 6.0), FS).sharpness_acum
    assert bright - plain == pytest.approx(rise_acum, abs=0.03)


def test_history_rows_carry_the_sharpness_of_their_3_s_spectrum():
    bank = MeterBank(2, FS)
    bank.process(np.ascontiguousarray(music_like(8.0, FS, seed=6)))
    h, r = bank.history(), bank.readings()
    rows = h.sharpness_acum()
    assert np.isnan(rows[0])  # no spectrum frame yet
    tail = rows[-20:]
    expected = sharpness_acum(h.spectrum_db[-20:], h.band_hz, sample_rate=FS)
    np.testing.assert_allclose(tail, expected, rtol=1e-12)
    assert r.sharpness_short_acum == pytest.approx(rows[-1], abs=0.02)
    assert r.sharpness_acum == pytest.approx(
        float(sharpness_acum(r.spectrum_long_db, r.band_hz, sample_rate=FS)), rel=1e-12
    )


def test_analyze_json_reports_the_sharpness_rounded_to_0_01_acum():
    x = music_like(6.0, FS, seed=1)
    a = analyze(x, FS)
    js = a.to_json_dict()
    # The known answer: the same audio through a MeterBank of its own, then the
    # programme's long-term spectrum through sharpness_acum directly.
    bank = MeterBank(x.shape[1], FS)
    bank.process(np.ascontiguousarray(x, dtype=np.float32))
    r = bank.readings()
    expected = float(sharpness_acum(r.spectrum_long_db, r.band_hz, sample_rate=FS))
    assert a.sharpness_acum == pytest.approx(expected, rel=1e-6)
    assert js["sharpness_acum"] == round(expected, 2)
