"""``earmark diff MIX MASTER --chain OUT.toml``: the master's moves as a chain, checked.

Real pedalboard masters of the demo mix (synthesized music: kick, snare, hats, bass,
pad) at settings drawn from a seeded generator; the known answers are the issue's
tolerances (docs/reference.md "Reconstruction fidelity", issue 20): a master made of
moves inside the model (shelf, compressor, limiter, gain) reconstructs and passes;
one with a move outside it (a slow gain ride: automation no compressor makes) fails
and names the measure. The written chain loads with both loaders: `run --chain`'s
(load_chain, build_chain) and `render --chain`'s, and `run` streams it on the JACK server.
"""

from __future__ import annotations

import json

import numpy as np
import pedalboard as pb
import pytest
import soundfile as sf

from earmark.engine.chains import build_chain, load_chain
from earmark.engine.demo import demo_mix
from earmark.offline.analysis import analyze
from earmark.offline.reconstruct import TOLERANCES, reconstruct
from earmark.offline.transform import diff
from earmark.presets.tomltools import parse_toml

from clirun import earmark

SR = 48000
SECONDS = 12.0


@pytest.fixture(scope="module")
def mix() -> np.ndarray:
    return demo_mix(SECONDS, SR).astype(np.float32)


def _run(plugins: list, x: np.ndarray) -> np.ndarray:
    y = pb.Pedalboard(plugins)(np.ascontiguousarray(x.T), SR)
    return np.ascontiguousarray(y.T, dtype=np.float32)


def _seeded_master(x: np.ndarray, seed: int = 20) -> np.ndarray:
    rng = np.random.default_rng(seed)
    plugins = [
        pb.HighShelfFilter(float(rng.uniform(3000, 8000)), float(rng.uniform(3, 6)), 0.707),
        pb.Compressor(
            float(rng.uniform(-30, -20)),
            float(rng.uniform(2, 4)),
            float(rng.uniform(5, 20)),
            float(rng.uniform(80, 200)),
        ),
        pb.Gain(float(rng.uniform(4, 8))),
        pb.Limiter(float(rng.uniform(-4, -2)), 100.0),
        pb.Gain(float(rng.uniform(-1.0, -0.3))),
    ]
    return _run(plugins, x)


def test_seeded_master_reconstructs_and_loads(tmp_path, mix, jack_server) -> None:
    mix_path, master_path = tmp_path / "mix.wav", tmp_path / "master.wav"
    chain_path, render_path = tmp_path / "moves.toml", tmp_path / "render.wav"
    sf.write(mix_path, mix, SR, subtype="FLOAT")
    sf.write(master_path, _seeded_master(mix), SR, subtype="FLOAT")
    done = earmark(
        "diff", str(mix_path), str(master_path), "--chain", str(chain_path), "--json", timeout=300
    )
    assert done.returncode == 0, done.stderr
    rec = json.loads(done.stdout)["reconstruction"]
    assert rec["chain"] == str(chain_path)
    assert rec["fidelity"]["passed"], rec["fidelity"]
    assert "fidelity check passed" in done.stderr
    keys = {c["key"] for c in rec["fidelity"]["criteria"]}
    assert {"integrated_lufs", "psr_median_db", "true_peak_dbtp", "loudness_range_lu"} <= keys
    assert {"band_50_hz", "band_1000_hz", "band_16000_hz"} <= keys
    # Every plugin carries its evidence as a comment just above its [[plugin]] header.
    text = chain_path.read_text()
    lines = text.splitlines()
    headers = [i for i, line in enumerate(lines) if line == "[[plugin]]"]
    assert headers and all(lines[i - 1].startswith("# ") for i in headers)
    kinds = [t["builtin"] for t in parse_toml(text)[0]["plugin"]]
    assert "HighShelfFilter" in kinds and "Compressor" in kinds
    # `run --chain`'s loader: the preset by path, built for the live engine.
    built = build_chain(load_chain(str(chain_path)), SR, 2)
    assert len(built) == len(kinds)
    streamed = earmark("run", "--chain", str(chain_path), "--reference", str(master_path),
                       "--seconds", "2", "--no-ui")  # fmt: skip
    assert streamed.returncode == 0, streamed.stderr
    assert "stream open" in streamed.stderr
    # `render --chain`'s loader: the mix through it measures as the master does.
    rendered = earmark("render", "--chain", str(chain_path), str(mix_path), str(render_path))
    assert rendered.returncode == 0, rendered.stderr
    got, want = analyze(str(render_path)), analyze(str(master_path))
    assert got.integrated_lufs == pytest.approx(
        want.integrated_lufs, abs=TOLERANCES["integrated_lufs"]
    )
    assert got.true_peak_dbtp == pytest.approx(
        want.true_peak_dbtp, abs=TOLERANCES["true_peak_dbtp"]
    )


def test_a_move_outside_the_model_fails_and_is_named(mix) -> None:
    """A 12 dB gain ride over the piece (automation): no static chain makes it; LRA says so."""
    ride = np.linspace(10 ** (-12 / 20), 1.0, mix.shape[0], dtype=np.float32)[:, None]
    master = mix * ride
    t = diff(mix, master, sample_rate=SR, force=True)
    rec = reconstruct(t, mix, SR, t.after)
    assert not rec.fidelity.passed
    failed = {c.key: c for c in rec.fidelity.failed}
    assert "loudness_range_lu" in failed
    lra = failed["loudness_range_lu"]
    assert lra.difference is not None and lra.difference < -TOLERANCES["loudness_range_lu"]
    assert "automation" in lra.why
    assert any(
        line.startswith("FAIL  LRA") and "automation" in line for line in rec.fidelity.lines()
    )
    assert "FAILED" in rec.toml("ride", "mix.wav", "master.wav")


def test_moves_become_builtins_with_their_settings(mix) -> None:
    """A -4 dB low shelf and +3 dB of gain: written back as those built-ins, no corrections."""
    master = _run([pb.LowShelfFilter(150.0, -4.0, 0.707), pb.Gain(3.0)], mix)
    t = diff(mix, master, sample_rate=SR)
    rec = reconstruct(t, mix, SR, t.after)
    assert rec.fidelity.passed and rec.rounds == 1
    shelf = next(s for s in rec.stages if s.builtin == "LowShelfFilter")
    assert shelf.params["gain_db"] == pytest.approx(-4.0, abs=0.5)
    assert shelf.params["cutoff_frequency_hz"] == pytest.approx(150.0, rel=0.26)  # 1/3 octave
    gain = next(s for s in rec.stages if s.builtin == "Gain")
    assert gain.params["gain_db"] == pytest.approx(3.0, abs=0.2)


def test_chain_refusals_come_before_the_diff(tmp_path, mix) -> None:
    """An existing OUT.toml (without --force), OUT onto an input, --chain with --mix: exit 2,
    one line, before anything is measured."""
    mix_path, master_path, chain = tmp_path / "mix.wav", tmp_path / "m.wav", tmp_path / "c.toml"
    sf.write(mix_path, mix[: SR * 2], SR)
    sf.write(master_path, mix[: SR * 2], SR)
    chain.write_text("# mine\n")
    cases = [
        ((str(mix_path), str(master_path), "--chain", str(chain)), "--force"),
        ((str(mix_path), str(master_path), "--chain", str(master_path)), "is the input"),
        (
            (
                str(mix_path),
                str(master_path),
                "--mix",
                str(mix_path),
                "--chain",
                str(tmp_path / "n.toml"),
            ),
            "not with --mix",
        ),
    ]
    for args, text in cases:
        done = earmark("diff", *args)
        assert done.returncode == 2, done.stderr
        assert text in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert chain.read_text() == "# mine\n"
