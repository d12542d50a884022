"""``earmark analyze`` and ``earmark.analyze``: known signals give known numbers.

Reference: a sine at -23 dBFS peak on both channels of a stereo file reads
-23.0 LUFS (EBU Tech 3341 case 1: 1 kHz; 997 Hz is the same within 0.01 LU).
One channel alone reads 3 dB lower; a surround channel (BS.1770-4 weight
1.41) 1.5 dB higher than a front one; the LFE is not counted.

The command line runs for real, in a subprocess, and few times: each run
loads numba's cached kernels, so files are batched into one call.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest
import soundfile as sf

import earmark
from earmark.engine.files import AudioFileError

SR = 48000
MINUS_23_DBFS = 10.0 ** (-23.0 / 20.0)
LOSSLESS_LU = 0.05
LOSSY_LU = 0.2

CONTRACT_KEYS = [
    "file", "sample_rate", "channels", "duration_s", "integrated_lufs", "loudness_range_lu",
    "max_momentary_lufs", "max_short_term_lufs", "true_peak_dbtp", "sample_peak_dbfs", "plr_db",
    "psr_min_db", "crest_db", "dr", "spectral_tilt_db_per_oct", "correlation_min", "flags",
]  # fmt: skip


def tone(seconds: float, sample_rate: int = SR, freq_hz: float = 1000.0,
         amplitude: float = MINUS_23_DBFS) -> np.ndarray:  # fmt: skip
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    return amplitude * np.sin(2.0 * np.pi * freq_hz * t)


def layout(seconds: float, channels: int, active: tuple[int, ...], sample_rate: int = SR,
           freq_hz: float = 1000.0) -> np.ndarray:  # fmt: skip
    """A -23 dBFS sine on the ``active`` channels, silence on the others."""
    x = tone(seconds, sample_rate, freq_hz)
    out = np.zeros((x.size, channels), dtype=np.float32)
    out[:, list(active)] = x[:, None]
    return out


def can_write_mp3() -> bool:
    return "MP3" in sf.available_formats() and "MPEG_LAYER_III" in sf.available_subtypes("MP3")


def run_cli(*args: str, cwd=None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "EARMARK_DEBUG"}
    return subprocess.run(
        [sys.executable, "-m", "earmark", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env=env,
    )


def analyze_json(*paths, expect_rc: int = 0) -> tuple[list[dict], list[str]]:
    """Run ``earmark analyze --json``; return (objects, stderr lines)."""
    proc = run_cli("analyze", "--json", *map(str, paths))
    assert proc.returncode == expect_rc, proc.stderr
    objects = json.loads(proc.stdout)  # exactly one JSON document on stdout
    assert isinstance(objects, list)
    assert [o["file"] for o in objects] == [str(p) for p in paths]
    return objects, proc.stderr.splitlines()


# -- the reference tone through the real command line ---------------------------------------


def test_cli_json_stereo_1khz_sine_at_minus_23_dbfs_reads_minus_23_lufs(tmp_path):
    path = tmp_path / "tone.wav"
    sf.write(path, layout(20.0, 2, (0, 1)), SR, subtype="PCM_24")
    proc = run_cli("analyze", "--json", str(path))
    assert proc.returncode == 0
    assert proc.stderr == ""
    (obj,) = json.loads(proc.stdout)
    assert list(obj)[: len(CONTRACT_KEYS)] == CONTRACT_KEYS
    assert obj["file"] == str(path)
    assert (obj["sample_rate"], obj["channels"], obj["duration_s"]) == (SR, 2, 20.0)
    assert obj["integrated_lufs"] == pytest.approx(-23.0, abs=LOSSLESS_LU)
    assert obj["max_momentary_lufs"] == pytest.approx(-23.0, abs=LOSSLESS_LU)
    assert obj["max_short_term_lufs"] == pytest.approx(-23.0, abs=LOSSLESS_LU)
    assert obj["loudness_range_lu"] == pytest.approx(0.0, abs=0.1)
    assert obj["sample_peak_dbfs"] == pytest.approx(-23.0, abs=0.01)
    assert obj["true_peak_dbtp"] == pytest.approx(-23.0, abs=0.1)
    assert obj["crest_db"] == pytest.approx(3.01, abs=0.01)  # a sine: peak / RMS = sqrt 2
    assert obj["rms_dbfs"] == pytest.approx(-26.01, abs=0.01)
    assert obj["correlation_min"] == pytest.approx(1.0, abs=0.001)
    assert obj["flags"] == []
    assert obj["non_finite_samples"] == 0
    assert obj["format"] == "WAV" and obj["subtype"] == "PCM_24"
    # Rounded as the contract says: 2 decimals for dB and LU.
    assert obj["integrated_lufs"] == round(obj["integrated_lufs"], 2)


def test_cli_json_reads_the_tone_from_every_format(tmp_path):
    x = layout(20.0, 2, (0, 1))
    files = [
        (tmp_path / "tone.flac", dict(format="FLAC", subtype="PCM_24"), LOSSLESS_LU),
        (tmp_path / "tone.aiff", dict(format="AIFF", subtype="PCM_24"), LOSSLESS_LU),
        (tmp_path / "tone.ogg", dict(format="OGG", subtype="VORBIS"), LOSSY_LU),
    ]
    if can_write_mp3():
        files.append(
            (tmp_path / "tone.mp3", dict(format="MP3", subtype="MPEG_LAYER_III"), LOSSY_LU)
        )
    for path, kwargs, _ in files:
        sf.write(path, x, SR, **kwargs)
    objects, stderr = analyze_json(*(p for p, _, _ in files))
    assert stderr == []
    for obj, (path, kwargs, tolerance) in zip(objects, files, strict=True):
        assert obj["format"] == kwargs["format"], path
        assert obj["duration_s"] == pytest.approx(20.0, abs=0.001), path
        assert obj["integrated_lufs"] == pytest.approx(-23.0, abs=tolerance), path
        # Lossy codecs overshoot: their quantisation noise rides on the peaks.
        peak_tolerance = 0.1 if tolerance == LOSSLESS_LU else 1.0
        assert obj["true_peak_dbtp"] == pytest.approx(-23.0, abs=peak_tolerance), path


def test_cli_json_surround_files_weigh_channels_like_bs1770(tmp_path):
    lfe = tone(20.0, freq_hz=60.0, amplitude=10 ** (-3 / 20))  # loud, LFE only
    five_one = layout(20.0, 6, (0, 1))
    five_one_lfe = five_one.copy()
    five_one_lfe[:, 3] = lfe
    seven_one = layout(20.0, 8, (0, 1))
    seven_one[:, 3] = lfe
    paths = []
    for name, x in (("51.wav", five_one), ("51lfe.wav", five_one_lfe), ("71lfe.wav", seven_one)):
        sf.write(tmp_path / name, x, SR, format="WAVEX", subtype="PCM_24")
        paths.append(tmp_path / name)
    objects, _ = analyze_json(*paths)
    assert [o["channels"] for o in objects] == [6, 6, 8]
    for obj in objects:
        assert obj["integrated_lufs"] == pytest.approx(-23.0, abs=LOSSLESS_LU), obj["file"]
    # The LFE is measured for peaks, not for loudness.
    assert objects[1]["true_peak_dbtp"] == pytest.approx(-3.0, abs=0.1)


def test_cli_json_997hz_tone_reads_minus_23_lufs_at_every_rate(tmp_path):
    rates = [8000, 44100, 96000, 192000, 384000]
    paths = []
    for rate in rates:
        paths.append(tmp_path / f"tone{rate}.wav")
        sf.write(paths[-1], layout(3.0, 2, (0, 1), rate, freq_hz=997.0), rate, subtype="FLOAT")
    objects, _ = analyze_json(*paths)  # one run: each run loads the numba kernels
    for obj, rate in zip(objects, rates, strict=True):
        assert obj["sample_rate"] == rate
        assert obj["duration_s"] == 3.0
        assert obj["integrated_lufs"] == pytest.approx(-23.0, abs=LOSSLESS_LU), rate
        assert obj["true_peak_dbtp"] == pytest.approx(-23.0, abs=0.1), rate


# -- channel layouts through the Python API (same path, no subprocess) ------------------------


@pytest.mark.parametrize(
    ("channels", "active", "expected_lufs"),
    [
        (1, (0,), -26.0),  # BS.1770: one channel, weight 1 (no dual-mono +3 dB)
        (2, (0, 1), -23.0),
        (2, (0,), -26.0),
        (3, (0, 1), -23.0),  # L R C
        (4, (2,), -24.5),  # L R Ls Rs: a surround weighs 1.41 (+1.5 dB)
        (5, (0, 1), -23.0),  # L R C Ls Rs
        (5, (3,), -24.5),
        (6, (0, 1), -23.0),  # 5.1: L R C LFE Ls Rs
        (6, (4,), -24.5),
        (6, (2,), -26.0),
        (8, (0, 1), -23.0),  # 7.1: L R C LFE Lrs Rrs Lss Rss
        (8, (4,), -26.0),  # rears at 135-150 degrees weigh 1.0
        (8, (6,), -24.5),  # side surrounds weigh 1.41
    ],
)
def test_channel_layouts_weigh_channels_like_bs1770(channels, active, expected_lufs):
    result = earmark.analyze(layout(5.0, channels, active), sample_rate=SR)
    assert result.channels == channels
    assert result.integrated_lufs == pytest.approx(expected_lufs, abs=LOSSLESS_LU)


@pytest.mark.parametrize("channels", [6, 8])
def test_loud_lfe_does_not_change_integrated_loudness(channels):
    x = layout(5.0, channels, (0, 1))
    without = earmark.analyze(x, sample_rate=SR)
    x[:, 3] = tone(5.0, freq_hz=50.0, amplitude=0.9)
    with_lfe = earmark.analyze(x, sample_rate=SR)
    assert with_lfe.integrated_lufs == pytest.approx(without.integrated_lufs, abs=1e-9)
    assert with_lfe.sample_peak_dbfs == pytest.approx(20 * math.log10(0.9), abs=0.01)


# -- bad inputs: exit 3, one line each, the good files still analysed ------------------------


@pytest.fixture
def bad_and_good(tmp_path):
    good = tmp_path / "good.wav"
    sf.write(good, layout(5.0, 2, (0, 1)), SR, subtype="PCM_16")
    good2 = tmp_path / "good2.flac"
    sf.write(good2, layout(5.0, 2, (0, 1)), SR, subtype="PCM_16")
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    folder = tmp_path / "folder.wav"
    folder.mkdir()
    text = tmp_path / "readme.wav"
    text.write_text("this is not audio\n" * 50)
    truncated = tmp_path / "cut.wav"
    sf.write(truncated, layout(10.0, 2, (0, 1)), SR, subtype="PCM_16")
    data = truncated.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    missing = tmp_path / "missing.wav"
    order = [good, missing, empty, folder, text, truncated, good2]
    causes = {
        missing: "no such file",
        empty: "empty file (0 bytes)",
        folder: "is a directory",
        text: "not an audio file",
        truncated: f"truncated: the header declares {10 * SR} frames but only",
    }
    return order, causes


def test_cli_json_bad_files_exit_3_one_line_each_good_files_still_analysed(bad_and_good):
    order, causes = bad_and_good
    objects, stderr = analyze_json(*order, expect_rc=3)
    assert len(stderr) == len(causes)
    for line, (path, cause) in zip(stderr, causes.items(), strict=True):
        assert line.startswith(f"earmark: {path}: {cause}"), line
    for obj, path in zip(objects, order, strict=True):
        if path in causes:
            assert set(obj) == {"file", "error"}
            assert obj["error"].startswith(causes[path])
        else:
            assert obj["integrated_lufs"] == pytest.approx(-23.0, abs=LOSSLESS_LU)


def test_cli_table_bad_files_exit_3_and_the_table_shows_the_good_ones(bad_and_good):
    order, causes = bad_and_good
    proc = run_cli("analyze", *map(str, order))
    assert proc.returncode == 3
    assert "Traceback" not in proc.stderr
    assert [line.split(": ")[1] for line in proc.stderr.splitlines()] == [str(p) for p in causes]
    rows = {}
    for line in proc.stdout.splitlines():
        cells = [c.strip() for c in line.replace("┃", "│").split("│")[1:-1]]
        if cells:
            rows[cells[0]] = cells[2:]
    assert rows["Measure"] == ["good.wav", "good2.flac"]  # file names head the columns
    assert rows["Integrated"] == ["-23.0", "-23.0"]
    assert rows["Sample peak"] == ["-23.0", "-23.0"]
    assert "missing.wav" not in proc.stdout


def test_cli_unknown_profile_is_a_usage_error_naming_the_choices(tmp_path):
    path = tmp_path / "tone.wav"
    sf.write(path, layout(1.0, 2, (0, 1)), SR)
    proc = run_cli("analyze", "--profile", "nosuch", str(path))
    assert proc.returncode == 2
    assert "no profile named 'nosuch'" in proc.stderr and "jazz" in proc.stderr
    assert proc.stdout == ""


# -- damaged, silent and short audio -----------------------------------------------------------


def test_cli_json_nan_and_inf_samples_are_zeroed_counted_and_warned(tmp_path):
    clean = layout(10.0, 2, (0, 1))
    x = clean.copy()
    # At zero crossings of the 1 kHz sine (every 24th sample at 48 kHz), so the
    # zeroed signal is the clean one and must measure the same.
    bad = [(1008, 0, np.nan), (2016, 1, np.inf), (3000, 0, -np.inf), (4008, 1, np.nan)]
    for frame, channel, value in bad:
        assert abs(x[frame, channel]) < 1e-6
        x[frame, channel] = value
    path = tmp_path / "damaged.wav"
    sf.write(path, x, SR, subtype="FLOAT")
    expected = earmark.analyze(clean, sample_rate=SR).to_json_dict()
    (obj,), stderr = analyze_json(path)
    assert obj["non_finite_samples"] == len(bad)
    assert stderr == [
        f"earmark: {path}: warning: 4 non-finite sample(s) (NaN/Inf) were metered as 0;"
        " the audio is damaged"
    ]
    assert obj["integrated_lufs"] == pytest.approx(-23.0, abs=LOSSLESS_LU)
    for key in ("integrated_lufs", "true_peak_dbtp", "sample_peak_dbfs", "crest_db", "plr_db"):
        assert obj[key] == pytest.approx(expected[key], abs=0.011), key
    assert any("non-finite" in w for w in obj["warnings"])


def test_cli_json_silence_is_null_never_infinity(tmp_path):
    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros((5 * SR, 2), dtype=np.float32), SR)
    proc = run_cli("analyze", "--json", str(path))
    assert proc.returncode == 0
    assert "Infinity" not in proc.stdout and "NaN" not in proc.stdout
    (obj,) = json.loads(proc.stdout)
    for key in (
        "integrated_lufs", "loudness_range_lu", "max_momentary_lufs", "max_short_term_lufs",
        "true_peak_dbtp", "sample_peak_dbfs", "plr_db", "psr_min_db", "crest_db", "dr",
        "spectral_tilt_db_per_oct", "correlation_min", "rms_dbfs",
    ):  # fmt: skip
        assert obj[key] is None, key
    assert obj["duration_s"] == 5.0
    assert "silence" in proc.stderr


def test_cli_json_300ms_file_has_null_loudness_but_a_sample_peak(tmp_path):
    path = tmp_path / "blip.wav"
    x = np.repeat(tone(0.3, amplitude=0.5)[:, None], 2, axis=1)
    sf.write(path, x, SR, subtype="FLOAT")
    (obj,), stderr = analyze_json(path)
    assert obj["duration_s"] == 0.3
    assert obj["integrated_lufs"] is None
    assert obj["max_momentary_lufs"] is None
    assert obj["loudness_range_lu"] is None
    assert obj["sample_peak_dbfs"] == pytest.approx(20 * math.log10(0.5), abs=0.01)
    assert obj["true_peak_dbtp"] == pytest.approx(20 * math.log10(0.5), abs=0.1)
    assert len(stderr) == 1 and "400 ms" in stderr[0]


# -- the Python API -----------------------------------------------------------------------------


def music_like(seconds: float, sample_rate: int = SR) -> np.ndarray:
    """Pulsing, slightly decorrelated band noise: something with dynamics and a spectrum."""
    rng = np.random.default_rng(7)
    n = round(seconds * sample_rate)
    noise = rng.standard_normal((n, 2))
    noise[:, 1] = 0.7 * noise[:, 0] + 0.3 * noise[:, 1]
    t = np.arange(n) / sample_rate
    envelope = 0.05 + 0.2 * (np.sin(2 * np.pi * 0.5 * t) > 0) + 0.1 * np.sin(2 * np.pi * 0.13 * t)
    return (noise * envelope[:, None]).astype(np.float32)


def test_array_and_file_give_identical_results(tmp_path):
    x = music_like(12.0)
    path = tmp_path / "music.wav"
    sf.write(path, x, SR, subtype="FLOAT")  # float32 round-trips exactly
    from_file = earmark.analyze(path)
    from_array = earmark.analyze(x, sample_rate=SR)
    a, b = from_file.to_json_dict(), from_array.to_json_dict()
    assert (a.pop("file"), b.pop("file")) == (str(path), None)
    assert (a.pop("format"), a.pop("subtype"), b.pop("format"), b.pop("subtype")) == (
        "WAV", "FLOAT", None, None,
    )  # fmt: skip
    assert a == b
    assert from_file.readings == from_array.readings
    assert from_array.loudness_range_lu is not None and from_array.loudness_range_lu > 1.0


def test_integer_pcm_arrays_are_scaled_like_libsndfile(tmp_path):
    x = music_like(6.0)
    path = tmp_path / "music16.wav"
    sf.write(path, x, SR, subtype="PCM_16")
    pcm, _ = sf.read(path, dtype="int16")
    from_int = earmark.analyze(pcm, sample_rate=SR)
    from_file = earmark.analyze(path)
    assert from_int.integrated_lufs == pytest.approx(from_file.integrated_lufs, abs=1e-4)
    assert from_int.sample_peak_dbfs == pytest.approx(from_file.sample_peak_dbfs, abs=1e-4)


def test_mono_1d_array_equals_one_column_array():
    x = tone(3.0).astype(np.float32)
    assert (
        earmark.analyze(x, sample_rate=SR).to_json_dict()
        == earmark.analyze(x[:, None], sample_rate=SR).to_json_dict()
    )


def test_api_errors_say_what_is_wrong(tmp_path):
    with pytest.raises(ValueError, match="sample_rate is required"):
        earmark.analyze(np.zeros((100, 2)))
    with pytest.raises(ValueError, match="outside"):
        earmark.analyze(np.zeros((100, 2)), sample_rate=4000)
    with pytest.raises(ValueError, match=r"looks like \(channels, frames\)"):
        earmark.analyze(np.zeros((2, 48000)), sample_rate=SR)
    with pytest.raises(ValueError, match="no profile named 'nosuch'"):
        earmark.analyze(np.zeros((100, 2)), sample_rate=SR, profile="nosuch")
    with pytest.raises(AudioFileError, match="no such file") as caught:
        earmark.analyze(tmp_path / "gone.wav")
    assert isinstance(caught.value, ValueError)
    assert str(caught.value).startswith(str(tmp_path / "gone.wav"))


def test_json_dict_has_no_nan_or_infinity_for_an_empty_array():
    result = earmark.analyze(np.zeros((0, 2), dtype=np.float32), sample_rate=SR)
    text = json.dumps(result.to_json_dict(), allow_nan=False)
    assert result.duration_s == 0.0 and result.integrated_lufs is None
    assert "no audio frames" in text


# -- constant memory -----------------------------------------------------------------------------


def write_long(path, seconds: int) -> None:
    block = music_like(1.0)
    with sf.SoundFile(path, "w", SR, 2, subtype="PCM_16") as f:
        for _ in range(seconds):
            f.write(block)


def peak_python_memory(path) -> int:
    tracemalloc.start()
    try:
        earmark.analyze(path)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_analysing_five_minutes_needs_no_more_memory_than_thirty_seconds(tmp_path):
    short, long = tmp_path / "30s.wav", tmp_path / "5min.wav"
    write_long(short, 30)
    write_long(long, 300)
    earmark.analyze(short)  # warm up: numba dispatchers, imports
    peak_short = peak_python_memory(short)
    peak_long = peak_python_memory(long)
    # The whole 5-minute file as float32 would be 110 MiB; a few blocks are ~0.5 MiB each.
    assert peak_long < peak_short + 4 * 2**20, (peak_short, peak_long)


# -- exit codes and failures inside the analysis --------------------------------------------------


def test_cli_unexpected_error_is_one_line_and_exit_3_traceback_only_in_debug(
    tmp_path, monkeypatch, capfd
):
    from earmark import cli
    from earmark.offline import analysis

    good = tmp_path / "good.wav"
    sf.write(good, layout(1.0, 2, (0, 1)), SR)
    real = analysis.analyze

    def flaky(source, *args, **kwargs):
        if str(source).endswith("boom.wav"):
            raise RuntimeError("meter exploded")
        return real(source, *args, **kwargs)

    monkeypatch.setattr(analysis, "analyze", flaky)
    monkeypatch.delenv("EARMARK_DEBUG", raising=False)
    boom = tmp_path / "boom.wav"
    sf.write(boom, layout(1.0, 2, (0, 1)), SR)
    assert cli.main(["analyze", "--json", str(boom), str(good)]) == 3
    out, err = capfd.readouterr()
    assert err.splitlines() == [
        f"earmark: {boom}: internal error: RuntimeError: meter exploded"
        " (EARMARK_DEBUG=1 shows the traceback)"
    ]
    objects = json.loads(out)
    assert objects[0]["error"].startswith("internal error: RuntimeError")
    assert objects[1]["integrated_lufs"] == pytest.approx(-23.0, abs=LOSSLESS_LU)

    monkeypatch.setenv("EARMARK_DEBUG", "1")
    assert cli.main(["analyze", "--json", str(boom)]) == 3
    assert "Traceback" in capfd.readouterr().err


def test_cli_strict_exits_1_on_a_problem_flag_and_3_still_wins(tmp_path, monkeypatch, capfd):
    import dataclasses

    from earmark import cli
    from earmark.offline import analysis

    good = tmp_path / "good.wav"
    sf.write(good, layout(1.0, 2, (0, 1)), SR)
    real = analysis.analyze
    problem = {"code": "true_peak_over", "severity": "problem", "value": 0.41234, "unit": "dB"}

    def flagged(source, *args, **kwargs):
        return dataclasses.replace(real(source, *args, **kwargs), flags=(problem,))

    monkeypatch.setattr(analysis, "analyze", flagged)
    assert cli.main(["analyze", "--json", str(good)]) == 0
    (obj,) = json.loads(capfd.readouterr().out)
    assert obj["flags"] == [{**problem, "value": 0.4123}]
    assert cli.main(["analyze", "--strict", str(good)]) == 1
    assert "true_peak_over" in capfd.readouterr().out
    assert cli.main(["analyze", "--strict", str(good), str(tmp_path / "missing.wav")]) == 3


# -- demo ---------------------------------------------------------------------------------------


def test_cli_offline_demo_compares_the_mix_and_its_aggressive_master():
    proc = run_cli("demo", "--offline", "--seconds", "8", "--no-ui")
    assert proc.returncode == 0, proc.stderr
    rows = {}
    for line in proc.stdout.splitlines():
        cells = [c.strip() for c in line.replace("┃", "│").split("│")[1:-1]]
        if cells:
            rows[cells[0]] = cells[2:]
    assert rows["Measure"] == ["Mix", "Aggressive master", "Change"]
    mix, master, change = (float(v) for v in rows["Integrated"])
    assert master == pytest.approx(-7.0, abs=0.2)  # the master's loudness target
    assert change == pytest.approx(master - mix, abs=0.11)
    paragraph = " ".join(
        line for line in proc.stdout.splitlines() if "│" not in line and "┃" not in line
    )
    assert f"The master is {abs(change):.1f} LU louder" in paragraph
    assert "Traceback" not in proc.stderr


def test_analyze_keeps_the_whole_programmes_history_so_reports_meter_once(tmp_path):
    # 11 minutes, longer than a MeterBank's default 10 min ring: the history analyze
    # keeps starts at the first row and ends at the last, and the report plots that
    # very history instead of metering the file again (issue 18).
    from earmark.offline.report import history_of

    fs = 8000
    t = np.arange(660 * fs) / fs
    tone = 0.1 * np.sin(2 * np.pi * 997.0 * t)
    tone[: 300 * fs] *= 0.5  # a quieter first half: the curve must show both levels
    path = tmp_path / "long.wav"
    sf.write(path, tone.astype(np.float32), fs, subtype="FLOAT")
    a = earmark.analyze(str(path))
    h = a.history
    assert h is not None and history_of(a) is h
    assert len(h.t_s) == pytest.approx(6600, abs=2)
    assert h.t_s[0] == pytest.approx(0.1, abs=0.01)
    assert h.t_s[-1] == pytest.approx(660.0, abs=0.1)
    # short-term loudness 6.02 dB apart in the two halves, read off the kept rows
    quiet = np.nanmedian(h.short_term_lufs[(h.t_s > 10) & (h.t_s < 290)])
    loud = np.nanmedian(h.short_term_lufs[(h.t_s > 310) & (h.t_s < 650)])
    assert loud - quiet == pytest.approx(20 * math.log10(2), abs=0.05)
