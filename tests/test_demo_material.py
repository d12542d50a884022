"""The demo material measures as it was built to.

``earmark.engine.demo`` synthesises an unmastered mix (about -18.5 LUFS, peaks
near -4 dBFS, a quieter breakdown, real kick transients, a genuine stereo
image) and an over-eager master of it (-7 LUFS, bright, limited). These tests
measure both with libebur128 (pyebur128) and numpy, independently of earmark's
own meters, so the material can be trusted as a known answer by the tests of
the meters and detectors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyebur128
import pytest
import soundfile as sf

from earmark.engine.demo import (
    aggressive_master,
    demo_layout,
    demo_mix,
    write_demo_files,
)

SECONDS = 12.0
RATE = 48000


@dataclass(frozen=True)
class R128:
    integrated_lufs: float
    loudness_range_lu: float
    true_peak_dbtp: float


def r128(x: np.ndarray, sample_rate: int) -> R128:
    """Integrated loudness, LRA and true peak by libebur128."""
    mode = (
        pyebur128.MeasurementMode.MODE_I
        | pyebur128.MeasurementMode.MODE_LRA
        | pyebur128.MeasurementMode.MODE_TRUE_PEAK
    )
    state = pyebur128.R128State(x.shape[1], sample_rate, mode)
    data = np.ascontiguousarray(x, dtype=np.float64)
    state.add_frames(data.reshape(-1), data.shape[0])
    true_peak = max(pyebur128.get_true_peak(state, c) for c in range(x.shape[1]))
    return R128(
        integrated_lufs=pyebur128.get_loudness_global(state),
        loudness_range_lu=pyebur128.get_loudness_range(state),
        true_peak_dbtp=20.0 * np.log10(true_peak),
    )


def sample_peak_dbfs(x: np.ndarray) -> float:
    return 20.0 * np.log10(np.max(np.abs(x)))


def rms_dbfs(x: np.ndarray) -> float:
    return 10.0 * np.log10(np.mean(np.square(x, dtype=np.float64)))


def band_power_ratio_db(x: np.ndarray, sample_rate: int, above_hz: float) -> float:
    """Power above ``above_hz`` relative to the total (Hann-windowed periodogram, all channels)."""
    window = np.hanning(x.shape[0])[:, None]
    power = np.abs(np.fft.rfft(x.astype(np.float64) * window, axis=0)) ** 2
    freqs = np.fft.rfftfreq(x.shape[0], 1.0 / sample_rate)
    return 10.0 * np.log10(np.sum(power[freqs > above_hz]) / np.sum(power) + 1e-30)


def onset_crest_db(x: np.ndarray, sample_rate: int, onsets_s: tuple[float, ...]) -> float:
    """Median of (peak in the 15 ms after an onset) over (RMS of the 400 ms around it), dB."""
    mono = x.astype(np.float64).mean(axis=1)
    half = round(0.2 * sample_rate)
    attack = round(0.015 * sample_rate)
    values = []
    for t in onsets_s:
        i = round(t * sample_rate)
        if i - half < 0 or i + half > mono.size:
            continue
        peak = np.max(np.abs(mono[i : i + attack]))
        rms = np.sqrt(np.mean(mono[i - half : i + half] ** 2))
        values.append(20.0 * np.log10(peak / rms))
    assert len(values) >= 5, "too few kick onsets to judge"
    return float(np.median(values))


@pytest.fixture(scope="module")
def mix() -> np.ndarray:
    return demo_mix(SECONDS, RATE, seed=0)


@pytest.fixture(scope="module")
def master(mix: np.ndarray) -> np.ndarray:
    return aggressive_master(mix, RATE)


@pytest.fixture(scope="module")
def mix_r128(mix: np.ndarray) -> R128:
    return r128(mix, RATE)


@pytest.fixture(scope="module")
def master_r128(master: np.ndarray) -> R128:
    return r128(master, RATE)


# --- the mix ---------------------------------------------------------------------


def test_mix_is_stereo_float32_of_the_requested_length(mix: np.ndarray) -> None:
    assert mix.dtype == np.float32
    assert mix.shape == (round(SECONDS * RATE), 2)
    assert np.all(np.isfinite(mix))


def test_mix_is_bit_identical_for_the_same_arguments(mix: np.ndarray) -> None:
    again = demo_mix(SECONDS, RATE, seed=0)
    assert again.tobytes() == mix.tobytes()


def test_mix_differs_for_another_seed(mix: np.ndarray) -> None:
    other = demo_mix(SECONDS, RATE, seed=1)
    assert other.shape == mix.shape
    assert not np.array_equal(other, mix)


def test_mix_integrated_loudness_is_unmastered_level(mix_r128: R128) -> None:
    assert mix_r128.integrated_lufs == pytest.approx(-18.0, abs=2.0)


def test_mix_sample_peak_leaves_mix_headroom(mix: np.ndarray) -> None:
    assert -6.0 <= sample_peak_dbfs(mix) <= -3.0


def test_mix_crest_factor_above_12_db(mix: np.ndarray) -> None:
    assert sample_peak_dbfs(mix) - rms_dbfs(mix) > 12.0


def test_mix_is_stereo_but_not_fake_stereo(mix: np.ndarray) -> None:
    correlation = np.corrcoef(mix[:, 0], mix[:, 1])[0, 1]
    assert 0.2 < correlation < 0.97


def test_breakdown_is_quieter_than_the_groove(mix: np.ndarray) -> None:
    layout = demo_layout(SECONDS)
    start, end = round(layout.breakdown_start_s * RATE), round(layout.breakdown_end_s * RATE)
    assert end - start >= RATE, "the breakdown should last at least a second"
    groove = r128(mix[:start], RATE).integrated_lufs
    breakdown = r128(mix[start:end], RATE).integrated_lufs
    assert groove - breakdown >= 4.0


def test_breakdown_gives_loudness_range_of_at_least_2_lu(mix_r128: R128) -> None:
    assert mix_r128.loudness_range_lu >= 2.0


def test_kick_onsets_have_real_transients(mix: np.ndarray) -> None:
    # A 15 ms peak well above the 400 ms RMS around it: an unmastered kick attack.
    kicks = demo_layout(SECONDS).kick_onsets_s
    assert onset_crest_db(mix, RATE, kicks) >= 9.0


# --- the aggressive master -------------------------------------------------------


def test_master_keeps_shape_and_is_float32(mix: np.ndarray, master: np.ndarray) -> None:
    assert master.dtype == np.float32
    assert master.shape == mix.shape
    assert np.all(np.isfinite(master))


def test_master_integrated_loudness_reaches_target(master_r128: R128) -> None:
    assert master_r128.integrated_lufs == pytest.approx(-7.0, abs=1.0)


def test_master_reaches_another_target(mix: np.ndarray) -> None:
    quieter = aggressive_master(mix, RATE, target_lufs=-11.0)
    assert r128(quieter, RATE).integrated_lufs == pytest.approx(-11.0, abs=1.0)


def test_master_sample_peak_below_ceiling(master: np.ndarray) -> None:
    assert sample_peak_dbfs(master) <= -0.2


def test_master_plr_at_least_4_db_lower_than_mix(mix_r128: R128, master_r128: R128) -> None:
    mix_plr = mix_r128.true_peak_dbtp - mix_r128.integrated_lufs
    master_plr = master_r128.true_peak_dbtp - master_r128.integrated_lufs
    assert mix_plr - master_plr >= 4.0


def test_master_is_brighter_above_4_khz(mix: np.ndarray, master: np.ndarray) -> None:
    mix_db = band_power_ratio_db(mix, RATE, 4000.0)
    master_db = band_power_ratio_db(master, RATE, 4000.0)
    assert master_db - mix_db >= 3.0


def test_master_crushes_kick_transients(mix: np.ndarray, master: np.ndarray) -> None:
    kicks = demo_layout(SECONDS).kick_onsets_s
    assert onset_crest_db(mix, RATE, kicks) - onset_crest_db(master, RATE, kicks) >= 2.0


# --- any sample rate -------------------------------------------------------------


@pytest.mark.parametrize("sample_rate", [8000, 44100, 96000, 384000])
def test_mix_at_sample_rate_is_finite_and_band_limited(sample_rate: int) -> None:
    seconds = 4.0
    x = demo_mix(seconds, sample_rate)
    assert x.shape == (round(seconds * sample_rate), 2)
    assert np.all(np.isfinite(x))
    # Nothing was generated near Nyquist: no aliasing or images to fold back.
    assert band_power_ratio_db(x, sample_rate, 0.47 * sample_rate) < -80.0
    # Same music at every rate: the level does not depend on the rate.
    assert r128(x, sample_rate).integrated_lufs == pytest.approx(-18.0, abs=2.0)


@pytest.mark.parametrize("sample_rate", [8000, 96000])
def test_master_at_sample_rate(sample_rate: int) -> None:
    master = aggressive_master(demo_mix(6.0, sample_rate), sample_rate)
    assert np.all(np.isfinite(master))
    assert sample_peak_dbfs(master) <= -0.2
    assert r128(master, sample_rate).integrated_lufs == pytest.approx(-7.0, abs=1.0)


# --- files and arguments ---------------------------------------------------------


def test_write_demo_files_writes_24_bit_wavs(tmp_path) -> None:
    mix_path, master_path = write_demo_files(tmp_path / "demo", seconds=3.0, sample_rate=44100)
    assert mix_path.name == "demo-mix.wav"
    assert master_path.name == "demo-master-aggressive.wav"
    for path in (mix_path, master_path):
        info = sf.info(path)
        assert (info.format, info.subtype) == ("WAV", "PCM_24")
        assert (info.samplerate, info.channels, info.frames) == (44100, 2, 3 * 44100)
    written, _ = sf.read(mix_path, dtype="float64")
    np.testing.assert_allclose(written, demo_mix(3.0, 44100), atol=2.0**-22)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"sample_rate": 4000}, "sample_rate"),
        ({"sample_rate": 400000}, "sample_rate"),
        ({"seconds": 0.0}, "seconds"),
        ({"seconds": float("nan")}, "seconds"),
        ({"seed": -1}, "seed"),
    ],
)
def test_demo_mix_rejects_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        demo_mix(**kwargs)
