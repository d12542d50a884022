"""``earmark render --chain CHAIN IN OUT``: a file through a chain offline, measured.

The known answers: a +6 dB high shelf measures +6 dB in the highest 1/3-octave
bands of the long-term spectrum (earmark's own meter) and 0 dB in the lowest; a
chain with latency (a lookahead limiter) comes out aligned with its input to the
sample; a delay's echo is kept past the input's end (the tail); the CLI contract's
exit codes and refusals.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from earmark.engine.chains import parse_chain
from earmark.engine.chains.render import render
from earmark.offline.analysis import analyze

from clirun import earmark

SR = 48000

SHELF = """
name = "shelf"
[[plugin]]
builtin = "HighShelfFilter"
cutoff_frequency_hz = 1000.0
gain_db = 6.0
q = 0.707
"""

LOOKAHEAD = """
[[plugin]]
builtin = "BrickwallLimiter"
ceiling_db = -1.0
lookahead_ms = 5.0
"""


def _noise(seconds: float = 6.0, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.1 * rng.standard_normal((int(seconds * SR), 2))).astype(np.float32)


def _band(a, hz: float) -> float:
    i = int(np.argmin(np.abs(np.asarray(a.band_hz) - hz)))
    return float(a.spectrum_long_db[i])


def test_shelf_chain_measures_its_gain(tmp_path) -> None:
    """The CLI renders a +6 dB shelf preset; earmark measures +6 dB up high, 0 dB down low."""
    src, out, preset = tmp_path / "in.wav", tmp_path / "out.wav", tmp_path / "shelf.toml"
    sf.write(src, _noise(), SR, subtype="FLOAT")
    preset.write_text(SHELF)
    done = earmark("render", "--chain", str(preset), str(src), str(out))
    assert done.returncode == 0, done.stderr
    assert "rendered" in done.stderr and "32-bit float" in done.stderr
    assert sf.info(str(out)).samplerate == SR and sf.info(str(out)).subtype == "FLOAT"
    before, after = analyze(str(src)), analyze(str(out))
    for hz in (8000.0, 12500.0):
        assert _band(after, hz) - _band(before, hz) == pytest.approx(6.0, abs=0.5)
    assert _band(after, 63.0) - _band(before, 63.0) == pytest.approx(0.0, abs=0.5)


def test_latency_is_removed_and_the_tail_kept() -> None:
    x = _noise(2.0)
    limited = render(parse_chain(LOOKAHEAD), x, SR)
    assert limited.latency_samples > 0  # 5 ms of lookahead: 240 samples at 48 kHz
    y = limited.audio[: x.shape[0], 0].astype(np.float64)
    lag = int(np.argmax(np.correlate(y[:4096], x[:4096, 0].astype(np.float64), "full"))) - 4095
    assert lag == 0
    delay = parse_chain('[[plugin]]\nbuiltin = "Delay"\ndelay_s = 0.5\nfeedback = 0.0\nmix = 0.5\n')
    echoed = render(delay, x, SR)
    assert echoed.tail_frames == pytest.approx(0.5 * SR, abs=64)
    assert np.max(np.abs(echoed.audio[x.shape[0] :])) > 0.05  # the echo of the last 0.5 s
    assert render(delay, x, SR, tail=False).audio.shape == x.shape


def test_cli_contract(tmp_path) -> None:
    src, out = tmp_path / "in.wav", tmp_path / "out.wav"
    sf.write(src, _noise(1.0), SR, subtype="PCM_24")
    bad = tmp_path / "bad.toml"
    bad.write_text('[[plugin]]\nbuiltin = "Gain"\ngain_db = 99\n')
    cases = [
        (("--chain", str(bad), str(src), str(out)), 2, "bad.toml:3"),
        (("--chain", "no-such-chain", str(src), str(out)), 2, "no chain preset"),
        (("--chain", "transparent", str(tmp_path / "missing.wav"), str(out)), 3, "missing"),
        (("--chain", "transparent", str(src), str(src)), 2, "is the input"),
        (("--chain", "transparent", str(src), str(tmp_path / "out.flac")), 2, "32-bit float"),
    ]
    for args, code, text in cases:
        done = earmark("render", *args)
        assert done.returncode == code, (args, done.stderr)
        assert text in done.stderr and "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    assert earmark("render", "--chain", "transparent", str(src), str(out)).returncode == 0
    again = earmark("render", "--chain", "transparent", str(src), str(out))
    assert again.returncode == 2 and "--force" in again.stderr
    assert (
        earmark("render", "--chain", "transparent", str(src), str(out), "--force").returncode == 0
    )


def test_over_full_scale_is_kept_and_reported(tmp_path) -> None:
    """+12 dB on a -6 dBFS sine: written as float (not clipped) and said on stderr."""
    src, out, preset = tmp_path / "in.wav", tmp_path / "loud.wav", tmp_path / "loud.toml"
    t = np.arange(SR) / SR
    sf.write(src, np.repeat(0.5 * np.sin(2 * np.pi * 440 * t)[:, None], 2, 1), SR)
    preset.write_text('[[plugin]]\nbuiltin = "Gain"\ngain_db = 12.0\n')
    done = earmark("render", "--chain", str(preset), str(src), str(out))
    assert done.returncode == 0
    assert "sample peak +6.0" in done.stderr and "not clipped" in done.stderr
    y, _ = sf.read(out)
    assert np.max(np.abs(y)) == pytest.approx(2.0, rel=0.01) and np.isfinite(y).all()
