"""MeterBank behaviour: block-size independence, rates, channel layouts, bad input,
and the secondary meters (PSR, PLR, DR, spectrum, stereo) on signals with known answers."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from earmark.meters import MeterBank

from synth import music_like, sine, tone_steps

FS = 48000


def feed(bank: MeterBank, x: np.ndarray, sizes) -> MeterBank:
    i = 0
    for n in sizes:
        if i >= len(x):
            break
        bank.process(x[i : i + n])
        i += n
    if i < len(x):
        bank.process(x[i:])
    return bank


def readings_equal(a, b) -> bool:
    for f in dataclasses.fields(a):
        va, vb = getattr(a, f.name), getattr(b, f.name)
        if f.name == "recent_true_peak_dbtp":
            continue
        if va != vb:
            return False
    return True


# -- streaming ----------------------------------------------------------------------

MATERIAL = music_like(8, FS, seed=1).astype(np.float32)


@pytest.mark.parametrize("block", [1, 7, 64, 441, 4800, 48000])
def test_any_block_size_gives_bit_identical_readings(block):
    whole = MeterBank(2, FS)
    whole.process(MATERIAL)
    split = feed(MeterBank(2, FS), MATERIAL, [block] * (len(MATERIAL) // block + 1))
    assert readings_equal(whole.readings(), split.readings())
    np.testing.assert_array_equal(whole.history().short_term_lufs, split.history().short_term_lufs)


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=20000), min_size=1, max_size=60))
def test_random_block_splits_give_bit_identical_readings(sizes):
    whole = MeterBank(2, FS)
    whole.process(MATERIAL)
    split = feed(MeterBank(2, FS), MATERIAL, sizes)
    assert readings_equal(whole.readings(), split.readings())


def test_float32_and_float64_blocks_agree():
    a = MeterBank(2, FS)
    a.process(MATERIAL)
    b = MeterBank(2, FS)
    b.process(MATERIAL.astype(np.float64))
    assert a.readings().integrated_lufs == b.readings().integrated_lufs


def test_reset_starts_a_new_programme():
    bank = MeterBank(2, FS)
    bank.process(sine(-10, 5))
    bank.reset()
    bank.process(sine(-30, 5))
    assert bank.readings().integrated_lufs == pytest.approx(-30.0, abs=0.05)
    assert bank.readings().true_peak_dbtp == pytest.approx(-30.0, abs=0.05)


# -- sample rates and channels --------------------------------------------------------


@pytest.mark.parametrize("sample_rate", [8000, 11025, 22050, 32000, 44100, 88200, 176400, 384000])
def test_k_weighting_derived_for_every_rate(sample_rate):
    # 997 Hz sits where K-weighting is ~ +0.69 dB at every rate: -23 dBFS reads -23 LUFS.
    x = sine(-23, 5, sample_rate, freq_hz=997.0)
    bank = MeterBank(2, sample_rate)
    bank.process(x)
    r = bank.readings()
    assert r.integrated_lufs == pytest.approx(-23.0, abs=0.05)
    assert r.true_peak_dbtp == pytest.approx(-23.0, abs=0.05)


@pytest.mark.parametrize("rate", [7999, 384001, 0])
def test_unsupported_sample_rate_is_a_clear_error(rate):
    with pytest.raises(ValueError, match="8000-384000"):
        MeterBank(2, rate)


def test_mono_reads_like_one_channel():
    bank = MeterBank(1, FS)
    bank.process(sine(-23, 5, channels=1)[:, 0])  # 1-D block accepted for mono
    r = bank.readings()
    # One channel at -23 dBFS carries half the energy of the stereo case: -26.0 LUFS.
    assert r.integrated_lufs == pytest.approx(-26.01, abs=0.05)
    assert r.correlation is None and r.correlation_min is None


def test_lfe_is_excluded_in_5_1():
    quiet = sine(-23, 5, channels=2)
    x = np.zeros((len(quiet), 6))
    x[:, :2] = quiet
    x[:, 3] = 0.9 * np.sin(2 * np.pi * 60 * np.arange(len(x)) / FS)  # loud LFE
    bank = MeterBank(6, FS)
    bank.process(x)
    assert bank.readings().integrated_lufs == pytest.approx(-23.0, abs=0.05)


def test_7_1_side_surrounds_weigh_1_41():
    x = np.zeros((5 * FS, 8))
    x[:, 6] = sine(-23, 5, channels=1)[:, 0]  # Lss
    bank = MeterBank(8, FS)
    bank.process(x)
    expected = -26.01 + 10 * math.log10(1.41)
    assert bank.readings().integrated_lufs == pytest.approx(expected, abs=0.05)


def test_wrong_block_shape_and_dtype_are_clear_errors():
    bank = MeterBank(2, FS)
    with pytest.raises(ValueError, match="2 channel"):
        bank.process(np.zeros((64, 3), np.float32))
    with pytest.raises(TypeError, match="float32 or float64"):
        bank.process(np.zeros((64, 2), np.int16))


# -- bad input ------------------------------------------------------------------------


def test_nan_and_inf_are_metered_as_zero_and_counted():
    x = sine(-23, 5)
    x[1000:1010, 0] = np.nan
    x[2000, 1] = np.inf
    x[3000, 1] = -np.inf
    bank = MeterBank(2, FS)
    bank.process(x)
    r = bank.readings()
    assert r.non_finite_samples == 12
    assert r.integrated_lufs == pytest.approx(-23.0, abs=0.05)
    # Every reading equals that of the same signal with zeros in those places
    # (the dropouts themselves overshoot between samples, so true peak rises).
    zeroed = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    ref = MeterBank(2, FS)
    ref.process(zeroed)
    expected = dataclasses.replace(ref.readings(), non_finite_samples=12)
    assert readings_equal(r, expected)


def test_silence_gives_none_never_minus_infinity():
    bank = MeterBank(2, FS)
    bank.process(np.zeros((5 * FS, 2), np.float32))
    r = bank.readings()
    for f in dataclasses.fields(r):
        v = getattr(r, f.name)
        values = v if isinstance(v, tuple) else (v,)
        for item in values:
            assert not (isinstance(item, float) and math.isinf(item)), f.name
    assert r.integrated_lufs is None
    assert r.true_peak_dbtp is None
    assert r.momentary_lufs is None
    assert r.loudness_range_lu is None
    assert all(v is None for v in r.spectrum_long_db)


def test_shorter_than_400ms_has_no_loudness_but_has_peaks():
    bank = MeterBank(2, FS)
    bank.process(sine(-12, 0.3))
    r = bank.readings()
    assert r.integrated_lufs is None and r.momentary_lufs is None and r.short_term_lufs is None
    assert r.sample_peak_dbfs == pytest.approx(-12.0, abs=0.01)
    assert r.duration_s == pytest.approx(0.3)


# -- secondary meters ------------------------------------------------------------------


def test_max_momentary_and_short_term_follow_the_loudest_part():
    x = tone_steps([-30, -20, -30], [5, 5, 5])
    bank = MeterBank(2, FS)
    bank.process(x)
    r = bank.readings()
    assert r.max_momentary_lufs == pytest.approx(-20.0, abs=0.05)
    assert r.max_short_term_lufs == pytest.approx(-20.0, abs=0.05)


def test_psr_and_plr_of_a_tone_with_known_peaks():
    # A steady -20 dBFS tone with a 2 ms burst to -6 dBFS each second:
    # short-term ~ -20 LUFS, true peak over 3 s = -6 dBTP, so PSR ~ 14 dB.
    x = sine(-20, 12)
    burst = int(0.002 * FS)
    for s in range(1, 12):
        i = s * FS
        x[i : i + burst] *= 10 ** (14 / 20)
    bank = MeterBank(2, FS)
    bank.process(x)
    r = bank.readings()
    boost_db = 10 * math.log10(1 + (10**1.4 - 1) * 0.002)  # the bursts' share of energy
    assert r.short_term_lufs == pytest.approx(-20.0 + boost_db, abs=0.05)
    assert r.psr_db == pytest.approx(14.0 - boost_db, abs=0.15)
    assert r.psr_min_db == pytest.approx(14.0 - boost_db, abs=0.15)
    assert r.plr_db == pytest.approx(14.0 - boost_db, abs=0.15)
    # A plain sine has no peaks above its loudness: PSR = PLR = 0.
    plain = MeterBank(2, FS)
    plain.process(sine(-20, 6))
    assert plain.readings().psr_db == pytest.approx(0.0, abs=0.05)


def test_dr_of_blocks_with_known_rms_and_peaks():
    # 10 blocks of 3 s: 8 at -30 dBFS, 2 at -10 dBFS, with a 0 dBFS click in two
    # blocks: the top 20% are the -10 dBFS blocks (TT RMS = sine peak = -10 dB),
    # the second-highest block peak is 0 dBFS, so DR = 10.
    levels = [-30, -10, -30, -30, -30, -10, -30, -30, -30, -30]
    x = tone_steps(levels, [3.0] * 10)
    x[int(4.5 * FS), :] = 1.0
    x[int(16.5 * FS), :] = 1.0
    bank = MeterBank(2, FS)
    bank.process(x)
    r = bank.readings()
    assert r.dr == 10
    assert r.dr_db == pytest.approx(10.0, abs=0.05)


def test_spectrum_puts_a_sine_in_its_band_at_its_level():
    bank = MeterBank(2, FS)
    bank.process(sine(-20, 5, freq_hz=1000.0))
    r = bank.readings()
    i = r.band_hz.index(1000.0)
    assert r.spectrum_long_db[i] == pytest.approx(-20.0, abs=0.2)
    assert r.spectrum_short_db[i] == pytest.approx(-20.0, abs=0.2)
    assert r.spectrum_long_db[i - 2] < -60 and r.spectrum_long_db[i + 2] < -60


@pytest.mark.parametrize(("colour", "expected_tilt"), [("pink", 0.0), ("white", 3.0)])
def test_spectral_tilt_of_noise_colours(colour, expected_tilt):
    # In 1/3-octave band levels pink noise is flat and white noise rises 3 dB/octave.
    rng = np.random.default_rng(4)
    n = 20 * FS
    spec = np.fft.rfft(rng.standard_normal(n))
    if colour == "pink":
        f = np.fft.rfftfreq(n, 1 / FS)
        spec[1:] /= np.sqrt(f[1:])
        spec[0] = 0
    x = np.fft.irfft(spec, n)
    x = 0.1 * x / x.std()
    bank = MeterBank(1, FS)
    bank.process(x)
    assert bank.readings().spectral_tilt_db_per_oct == pytest.approx(expected_tilt, abs=0.3)


def test_stereo_correlation_and_width_of_constructed_images():
    rng = np.random.default_rng(9)
    n = 10 * FS
    a = rng.standard_normal(n) * 0.1
    b = rng.standard_normal(n) * 0.1 * 10 ** (-6 / 20)  # side 6 dB below mid
    cases = {
        "mono": (np.stack([a, a], 1), 1.0, None),
        "inverted": (np.stack([a, -a], 1), -1.0, None),
        "mid_side": (np.stack([a + b, a - b], 1), None, -6.0),
    }
    for name, (x, corr, side_mid) in cases.items():
        bank = MeterBank(2, FS)
        bank.process(x)
        r = bank.readings()
        if corr is not None:
            assert r.correlation_programme == pytest.approx(corr, abs=1e-6), name
            assert r.correlation_min == pytest.approx(corr, abs=1e-6), name
        if side_mid is not None:
            assert r.side_to_mid_db == pytest.approx(side_mid, abs=0.2), name
            # correlation of (a+b, a-b) = (Pa - Pb) / (Pa + Pb)
            pa, pb = 1.0, 10 ** (-6 / 10)
            assert r.correlation_programme == pytest.approx((pa - pb) / (pa + pb), abs=0.02)


def test_recent_true_peak_holds_until_read():
    bank = MeterBank(2, FS)
    loud = sine(-3, 1.0, fade_s=0.05)
    bank.process(loud)
    bank.process(sine(-30, 0.2))
    assert bank.readings().recent_true_peak_dbtp == pytest.approx(-3.0, abs=0.05)
    bank.process(sine(-30, 0.5))
    assert bank.readings().recent_true_peak_dbtp == pytest.approx(-30.0, abs=0.05)
    assert bank.readings().true_peak_dbtp == pytest.approx(-3.0, abs=0.05)


def test_history_is_10_hz_and_timed():
    bank = MeterBank(2, FS, history_s=2.0)
    bank.process(sine(-23, 5))
    h = bank.history()
    assert len(h.t_s) == 20  # ring keeps the last 2 s
    assert h.t_s[-1] == pytest.approx(5.0)
    assert np.allclose(np.diff(h.t_s), 0.1)
    assert np.allclose(h.momentary_lufs, -23.0, atol=0.05)
