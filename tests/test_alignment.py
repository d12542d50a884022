"""``diff`` lines two versions up exactly, and says so when it cannot.

The material is synthesized (``tests/material.py``, ``synth.music_like``, the
demo mix), and made dark the way many finished masters are: nothing above
8 kHz, as after a steep low-pass or a lossy coder's cut-off, and the excerpt
cut mid-programme. That is the case that broke the old search: the excerpt's
cut ends are steps, a step has energy at every frequency, and whitening gave
the empty top of the spectrum (where only the steps were) as much say as the
music, so the fine search settled on the edge of its window: a piece against
itself came out 1.2 ms off and inverted, correlation 0.27.

Every processed version is real pedalboard processing at settings drawn from
a seeded generator; the known answer is the offset and polarity the test
applied. Exact means the offset within a sample and the right polarity (a
minimum-phase EQ's own phase shifts the apparent offset of a piece with
nothing above 4 kHz by up to 2 samples; above 8 kHz it stays within 1).
"""

from __future__ import annotations

import json

import numpy as np
import pedalboard as pb
import pytest
import soundfile as sf

import earmark
from earmark.engine.demo import demo_mix
from earmark.meters.diff import align
from earmark.offline.transform import DoubtfulAlignmentError

from clirun import earmark as run_earmark
from material import acoustic_piece, orchestral_piece
from synth import music_like

SR = 48000
SECONDS = 14.0


def dark(x: np.ndarray, top_hz: float = 8000.0) -> np.ndarray:
    """``x`` with nothing above ``top_hz`` (a brick-wall low-pass, as a lossy coder's cut)."""
    spec = np.fft.rfft(x, axis=0)
    spec[np.fft.rfftfreq(x.shape[0], 1.0 / SR) > top_hz] = 0.0
    return np.fft.irfft(spec, x.shape[0], axis=0)


def excerpt(x: np.ndarray, start_s: float, seconds: float = SECONDS) -> np.ndarray:
    """A float32 excerpt cut mid-programme (its ends are steps, as a cut excerpt's are)."""
    return np.ascontiguousarray(x[int(start_s * SR) : int((start_s + seconds) * SR)], np.float32)


@pytest.fixture(scope="module")
def pieces() -> dict[str, np.ndarray]:
    return {
        "dark orchestral": excerpt(dark(orchestral_piece(30.0)), 0.0),
        "dark music-like": excerpt(dark(music_like(24.0, SR, seed=2)), 3.3),
        "demo mix": excerpt(demo_mix(24.0, SR, seed=1), 2.0),
    }


@pytest.fixture(params=["dark orchestral", "dark music-like", "demo mix"])
def piece(request, pieces) -> np.ndarray:
    return pieces[request.param]


def process(x: np.ndarray, plugins: list) -> np.ndarray:
    return pb.Pedalboard(plugins)(np.ascontiguousarray(x.T), SR).T


def shifted(x: np.ndarray, lag: int) -> np.ndarray:
    """``out[n + lag] = x[n]``: a positive lag adds leading silence, a negative one trims."""
    if lag >= 0:
        return np.concatenate([np.zeros((lag, x.shape[1]), x.dtype), x])
    return x[-lag:]


def random_eq(rng: np.random.Generator) -> list:
    """A low shelf, a bell and a high shelf of up to +-10 dB each."""
    return [
        pb.LowShelfFilter(float(rng.uniform(60, 400)), float(rng.uniform(-10, 10))),
        pb.PeakFilter(
            float(np.exp(rng.uniform(np.log(80), np.log(12000)))),
            float(rng.uniform(-10, 10)),
            float(rng.uniform(0.5, 3.0)),
        ),
        pb.HighShelfFilter(float(rng.uniform(2000, 10000)), float(rng.uniform(-10, 10))),
    ]


def random_compressor(rng: np.random.Generator, fast: bool) -> list:
    return [
        pb.Compressor(
            threshold_db=float(rng.uniform(-32, -12)),
            ratio=float(rng.uniform(2, 10)),
            attack_ms=float(rng.uniform(0.5, 5) if fast else rng.uniform(20, 80)),
            release_ms=float(rng.uniform(30, 120) if fast else rng.uniform(200, 600)),
        ),
        pb.Gain(float(rng.uniform(3, 12))),
    ]


def random_limiter(rng: np.random.Generator) -> list:
    return [
        pb.Gain(float(rng.uniform(3, 10))),
        pb.Limiter(
            threshold_db=float(rng.uniform(-3, -0.3)), release_ms=float(rng.uniform(50, 300))
        ),
    ]


# name -> (plugins(rng), offset in seconds (drawn up to this), polarity)
PROCESSINGS = {
    "gain -5 dB": (lambda rng: [pb.Gain(-5.0)], 0.0, 1),
    "EQ +-10 dB": (random_eq, 0.0, 1),
    "fast compression": (lambda rng: random_compressor(rng, fast=True), 0.0, 1),
    "slow compression": (lambda rng: random_compressor(rng, fast=False), 0.0, 1),
    "limiting": (random_limiter, 0.0, 1),
    "later, leading silence": (lambda rng: [], 3.0, 1),
    "earlier, start trimmed": (lambda rng: [], -3.0, 1),
    "polarity flip": (lambda rng: [], 0.0, -1),
    "EQ, compression, limiting, later, flipped": (
        lambda rng: random_eq(rng) + random_compressor(rng, True) + random_limiter(rng),
        2.5,
        -1,
    ),
    "EQ, compression, limiting, earlier": (
        lambda rng: random_eq(rng) + random_compressor(rng, False) + random_limiter(rng),
        -2.5,
        1,
    ),
}


def test_a_dark_excerpt_against_itself_and_a_5_db_quieter_copy_aligns_exactly():
    # The old search put AFTER 56 samples (1.2 ms) early, inverted, correlation 0.27.
    x = excerpt(dark(orchestral_piece(30.0)), 0.0, 12.0)
    for after, gain_db in ((x, 0.0), (x * np.float32(10 ** (-5 / 20)), -5.0)):
        a = align(x, after, SR)
        assert (a.offset_samples, a.polarity) == (0, 1)
        assert abs(a.offset_fraction) < 0.01
        assert a.correlation > 0.999
        assert a.confidence > 0.999 and a.doubt is None
        t = earmark.diff(x, after, sample_rate=SR)
        assert t.result.alignment.offset_samples == 0 and t.result.alignment.polarity == 1
        assert t.gain_db == pytest.approx(gain_db, abs=0.1)
        assert t.alignment_doubt is None
        assert "polarity inverted" not in t.narrative
        assert t.to_dict()["alignment"]["doubtful"] is False


@pytest.mark.parametrize("name", list(PROCESSINGS))
def test_processed_versions_align_to_the_sample_with_the_right_polarity(piece, name):
    make, offset_s, polarity = PROCESSINGS[name]
    rng = np.random.default_rng(100 + list(PROCESSINGS).index(name))
    lag = int(np.sign(offset_s) * rng.uniform(0.05, abs(offset_s)) * SR) if offset_s else 0
    after = polarity * shifted(process(piece, make(rng)), lag)
    a = align(piece, after, SR)
    assert abs(a.offset_samples - lag) <= 1, f"{a.offset_samples - lag:+d} samples off"
    assert a.polarity == polarity
    assert a.doubt is None and a.coarse_agrees
    assert a.confidence > 0.3 and a.peak_ratio > 5.0


def test_pairs_that_are_not_versions_of_one_programme_are_doubtful(pieces):
    rng = np.random.default_rng(42)
    x = pieces["dark orchestral"]
    other = excerpt(acoustic_piece(20.0), 1.0)
    stretched = pb.time_stretch(np.ascontiguousarray(x.T), SR, stretch_factor=0.95).T
    reverb = process(x, [pb.Reverb(room_size=0.9, damping=0.3, wet_level=1.0, dry_level=0.0)])
    noise = (0.1 * rng.standard_normal(x.shape)).astype(np.float32)
    for name, after in (
        ("another piece", other),
        ("time-stretched 5 %", stretched),
        ("fully wet reverb", reverb),
        ("noise", noise),
    ):
        a = align(x, after, SR)
        assert a.doubtful, f"{name}: confidence {a.confidence:.3f}, peak ratio {a.peak_ratio:.1f}"
        assert a.confidence < 0.1 or a.peak_ratio < 3.0
    with pytest.raises(DoubtfulAlignmentError, match=r"alignment doubtful: .*may not be versions"):
        earmark.diff(x, other, sample_rate=SR)
    forced = earmark.diff(x, other, sample_rate=SR, force=True)
    assert forced.alignment_doubt is not None
    assert forced.warnings[0].startswith("alignment doubtful: ")


# -- the command line -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def files(tmp_path_factory, pieces):
    folder = tmp_path_factory.mktemp("align")
    x = pieces["dark orchestral"][: 8 * SR]
    paths = {
        "mix": folder / "mix.wav",
        "quiet": folder / "quiet.wav",
        "other": folder / "other.wav",
    }
    sf.write(paths["mix"], x, SR, subtype="FLOAT")
    sf.write(paths["quiet"], x * np.float32(10 ** (-5 / 20)), SR, subtype="FLOAT")
    sf.write(paths["other"], excerpt(acoustic_piece(12.0), 1.0, 8.0), SR, subtype="FLOAT")
    return {k: str(v) for k, v in paths.items()}


def test_cli_an_unrelated_pair_exits_3_with_one_line_and_explains_nothing(files):
    proc = run_earmark("diff", files["mix"], files["other"])
    assert proc.returncode == 3
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"earmark: {files['mix']}, {files['other']}: alignment doubtful: ")
    assert "--force" in lines[0] and "Traceback" not in proc.stderr


def test_cli_force_explains_a_doubtful_pair_with_the_doubt_first(files):
    proc = run_earmark("diff", files["mix"], files["other"], "--force")
    assert proc.returncode == 0, proc.stderr
    first, second = proc.stdout.splitlines()[:2]
    assert first.startswith("alignment doubtful: only ") and "--force" in first
    assert second.startswith("earmark diff · ")
    assert proc.stdout.count("alignment doubtful") == 1  # not repeated among the warnings
    proc = run_earmark("diff", files["mix"], files["other"], "--force", "--json")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.startswith(f"earmark: {files['mix']}, {files['other']}: alignment doubtful")
    obj = json.loads(proc.stdout)
    assert obj["alignment"]["doubtful"] is True and obj["alignment"]["confidence"] < 0.1
    assert obj["alignment"]["doubt"] in obj["warnings"][0]
    for key in ("offset_ms", "polarity_inverted", "alignment_correlation", "gain_db", "flags"):
        assert key in obj


def test_cli_mix_mode_refuses_a_doubtful_pair_unless_forced(files):
    proc = run_earmark("diff", files["quiet"], files["other"], "--mix", files["mix"])
    assert proc.returncode == 3
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"earmark: {files['mix']}, {files['other']}: ")
    assert "alignment doubtful" in lines[0]
    proc = run_earmark("diff", files["quiet"], files["other"], "--mix", files["mix"], "--force")
    assert proc.returncode == 0, proc.stderr
    first = proc.stdout.splitlines()[0]
    assert first.startswith("alignment doubtful (mix.wav → other.wav): ")
    assert "mix.wav → quiet.wav" in proc.stdout and "mix.wav → other.wav" in proc.stdout
