"""earmark.offline.codecs and ``--codecs``: real encoders (FFmpeg's through PyAV, libsndfile's
Vorbis), measured values against known answers."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
import soundfile as sf

from earmark.engine.demo import aggressive_master, demo_mix
from earmark.offline.analysis import analyze
from earmark.offline.codecs import CODECS, codec_flags, codec_result, parse_codecs, round_trip

from clirun import earmark

SR = 48000


@pytest.fixture(scope="module")
def mix() -> np.ndarray:
    return demo_mix(seconds=6.0, sample_rate=SR).astype(np.float32)


@pytest.fixture(scope="module")
def master(mix) -> np.ndarray:
    """A brick-wall-limited master: samples held at -0.3 dBFS, inter-sample overs."""
    return aggressive_master(mix, SR).astype(np.float32)


def tone_at(lufs: float, seconds: float = 5.0, freq_hz: float = 997.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    x = np.stack([np.sin(2 * np.pi * freq_hz * t)] * 2, axis=1)
    measured = analyze(x, sample_rate=SR).integrated_lufs
    return (x * 10 ** ((lufs - measured) / 20)).astype(np.float32)


def difference_db(x: np.ndarray, y: np.ndarray) -> float:
    """Level of the difference signal against the programme (dB)."""
    return float(10 * np.log10(np.mean((y - x) ** 2) / np.mean(x**2)))


def test_limited_master_goes_over_0_dbtp_after_aac_128(master):
    original = analyze(master, sample_rate=SR)
    assert original.sample_peak_dbfs == pytest.approx(-0.3, abs=0.01)
    r = codec_result(master, SR, "aac128", original)
    # Measured (FFmpeg aac, 6 s of the demo's master): +3.22 dBTP decoded (+2.64 before),
    # 417 samples at or over full scale from 0.25 to 5.76 s, a safe ceiling of -3.1 dBTP.
    assert r.true_peak_dbtp > 0.0
    assert r.true_peak_dbtp == pytest.approx(3.2, abs=0.3)
    assert r.true_peak_dbtp > original.true_peak_dbtp
    assert r.clipped_samples > 100
    assert r.clipped_between_s is not None and r.clipped_between_s[0] < r.clipped_between_s[1]
    assert r.safe_ceiling_dbtp == pytest.approx(-3.1, abs=0.5)
    (flag,) = codec_flags([r], ceiling_dbtp=-1.0)
    assert flag.code == "codec_clipping" and flag.severity == "problem"
    assert "after AAC 128 kb/s the true peak reaches +" in flag.message
    assert f"a ceiling of {r.safe_ceiling_dbtp:.1f} dBTP avoids it" in flag.message


def test_found_ceiling_really_avoids_clipping(master):
    original = analyze(master, sample_rate=SR)
    r = codec_result(master, SR, "aac128", original)
    ceiling = r.safe_ceiling_dbtp
    assert ceiling is not None and ceiling < 0.0

    def clipped_at(c: float) -> int:
        gain = 10 ** ((c - original.true_peak_dbtp) / 20)
        y, _, _ = round_trip(master * np.float32(gain), SR, "aac128")
        return int(np.count_nonzero(np.abs(y) >= 1.0))

    assert clipped_at(ceiling) == 0
    assert clipped_at(ceiling + 0.1) > 0  # the highest: 0.1 dB more clips again
    assert r.safe_ceiling_true_peak_dbtp is not None


@pytest.mark.parametrize("name", list(CODECS))
def test_tone_keeps_its_loudness(name):
    tone = tone_at(-23.0)
    y, kbps, _ = round_trip(tone, SR, name)
    change = analyze(y, sample_rate=SR).integrated_lufs + 23.0
    if name == "mp3-128":
        # Measured: LAME at 128 kb/s lowers a pure tone by 0.45 dB at every frequency and
        # level tried (440-3000 Hz, 44.1 and 48 kHz, -26 and -9 dBFS); 320 kb/s does not.
        assert change == pytest.approx(-0.45, abs=0.05)
    else:
        assert abs(change) <= 0.2
    assert kbps > 0


@pytest.mark.parametrize("name", ["aac256", "mp3-320", "vorbis320"])
def test_delay_removed_to_the_sample_on_music(mix, name):
    y, _, delay = round_trip(mix, SR, name)
    assert y.shape == mix.shape
    # Measured on 6 s of the demo mix: aac256 -31.4 dB, mp3-320 -35.6, vorbis320 -34.4; one
    # sample off at 48 kHz leaves the difference near -10 dB on this material.
    assert difference_db(mix, y) <= -30.0
    if name == "aac256":
        assert delay == 1024  # ADTS keeps AAC-LC's 1024 priming frames
    shifted = np.vstack([np.zeros((1, 2), np.float32), y[:-1]])
    assert difference_db(mix, shifted) > difference_db(mix, y) + 6.0


def test_opus_delay_removed_on_tones():
    # Opus does not keep a broadband waveform (about -23 dB on the mix, band energies
    # are what it codes); on tones its difference shows the alignment.
    tone = tone_at(-18.0) + tone_at(-24.0, freq_hz=3150.0)
    y, _, _ = round_trip(tone, SR, "opus160")
    assert difference_db(tone, y) <= -30.0


def test_other_rate_goes_through_48k_for_opus():
    t = np.arange(3 * 44100) / 44100
    x = (0.3 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    y, _, _ = round_trip(x, 44100, "opus96")
    assert y.shape == (len(x), 1)
    assert difference_db(x[:, None], y) <= -30.0


def test_unknown_codec_names_the_choices():
    assert [c.name for c in parse_codecs("aac128, opus96")] == ["aac128", "opus96"]
    assert len(parse_codecs(None)) == 8
    with pytest.raises(ValueError, match="choose from aac256"):
        parse_codecs("aac999")


# -- command line ----------------------------------------------------------------------------


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return earmark(*args, timeout=300)


@pytest.fixture(scope="module")
def master_file(master, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("codecs") / "master.wav"
    sf.write(path, master[: 4 * SR], SR, subtype="PCM_24")
    return str(path)


def test_analyze_codecs_json(master_file):
    proc = run_cli("analyze", master_file, "--codecs", "aac128,mp3-320", "--json", "--strict")
    assert proc.returncode == 1, proc.stderr  # codec clipping is a problem
    (obj,) = json.loads(proc.stdout)
    assert [c["name"] for c in obj["codecs"]] == ["aac128", "mp3-320"]
    for c in obj["codecs"]:
        assert list(c)[:8] == [
            "name",
            "bitrate_kbps",
            "true_peak_dbtp",
            "clipped_samples",
            "clipped_between_s",
            "loudness_change_lu",
            "hf_loss_db",
            "safe_ceiling_dbtp",
        ]
        assert c["true_peak_dbtp"] > 0 and c["clipped_samples"] > 0
    assert obj["codecs"][0]["bitrate_kbps"] == 128
    flagged = [f for f in obj["flags"] if f["code"] == "codec_clipping"]
    assert {f["codec"] for f in flagged} == {"aac128", "mp3-320"}


def test_diff_codecs_side_by_side(mix, master_file, tmp_path):
    before = tmp_path / "mix.wav"
    sf.write(before, mix[: 4 * SR], SR, subtype="PCM_24")
    proc = run_cli("diff", str(before), master_file, "--codecs", "aac128", "--json")
    assert proc.returncode == 0, proc.stderr
    obj = json.loads(proc.stdout)
    (c,) = obj["codecs"]
    assert c["name"] == "aac128"
    assert c["before"]["clipped_samples"] == 0 and c["after"]["clipped_samples"] > 0
    assert any(
        f["code"] == "codec_clipping" and f["codec"] == "aac128" for f in obj["flags"]["introduced"]
    )


def test_unknown_codec_is_a_usage_error(master_file):
    proc = run_cli("analyze", master_file, "--codecs", "aac999")
    assert proc.returncode == 2
    assert "aac999" in proc.stderr and "opus96" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_report_has_a_codecs_section(master_file, tmp_path):
    out = tmp_path / "r.html"
    proc = run_cli("analyze", master_file, "--codecs", "opus96", "--report", str(out))
    assert proc.returncode == 0, proc.stderr
    page = out.read_text()
    assert "<h2>Codecs</h2>" in page and "Opus 96 kb/s" in page
    assert "codec_clipping" in proc.stdout  # the flag, explained in the text output


def test_codecs_with_mix_is_a_usage_error(master_file):
    proc = run_cli("diff", master_file, master_file, "--mix", master_file, "--codecs")
    assert proc.returncode == 2 and "--codecs" in proc.stderr
