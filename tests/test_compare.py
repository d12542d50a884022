"""`earmark compare MIX A B`: an automatic-like master and a gentle one of the same mix,
made with pedalboard at fixed settings, judged side by side; the verdict's numbers checked
against direct measurement (pyloudnorm for loudness, numpy FFTs for the balance)."""

from __future__ import annotations

import json
import math

import numpy as np
import pedalboard
import pyloudnorm
import pytest
import soundfile as sf

from earmark.engine.demo import demo_mix
from earmark.offline.analysis import analyze
from earmark.offline.compare import compare

from clirun import earmark

FS = 48000


def _master(x: np.ndarray, *plugins) -> np.ndarray:
    return pedalboard.Pedalboard(list(plugins))(x.T.copy(), FS).T.copy()


@pytest.fixture(scope="module")
def versions(tmp_path_factory):
    folder = tmp_path_factory.mktemp("compare")
    mix = demo_mix(12.0, FS).astype(np.float32)
    ai = _master(
        mix,
        pedalboard.HighShelfFilter(cutoff_frequency_hz=4200, gain_db=7.9),
        pedalboard.Compressor(threshold_db=-30, ratio=6, attack_ms=3, release_ms=80),
        pedalboard.Gain(gain_db=20),
        pedalboard.Limiter(threshold_db=-0.5, release_ms=50),
    )
    manual = _master(
        mix,
        pedalboard.HighShelfFilter(cutoff_frequency_hz=9700, gain_db=1.5),
        pedalboard.Gain(gain_db=4),
    )
    paths = {}
    for name, x in (("mix", mix), ("ai", ai), ("manual", manual)):
        paths[name] = folder / f"{name}.wav"
        sf.write(paths[name], x, FS, subtype="FLOAT")
    return paths, {"mix": mix, "ai": ai, "manual": manual}


def _bright_db(x: np.ndarray) -> float:
    """Direct: power above 4 kHz (FFT of the whole file) relative to the integrated
    loudness (pyloudnorm), dB."""
    spec = np.abs(np.fft.rfft(x, axis=0)) ** 2
    f = np.fft.rfftfreq(x.shape[0], 1 / FS)
    # A full-scale sine's power in the same FFT units: the dB re full scale of the bands.
    ref = (x.shape[0] / 2) ** 2 / 2
    p = spec[(f >= 4000) & (f < 20000)].sum() / ref
    return 10 * math.log10(p) - pyloudnorm.Meter(FS).integrated_loudness(x)


@pytest.fixture(scope="module")
def comparison(versions):
    paths, _ = versions
    return compare(paths["mix"], paths["ai"], paths["manual"], profile="pop")


def test_the_verdict_agrees_with_direct_measurement(versions, comparison):
    paths, audio = versions
    c = comparison
    meter = pyloudnorm.Meter(FS)
    direct_lu = meter.integrated_loudness(audio["ai"]) - meter.integrated_loudness(audio["manual"])
    assert c.loudness_diff_lu == pytest.approx(direct_lu, abs=0.3)
    direct_bright = _bright_db(audio["ai"]) - _bright_db(audio["manual"])
    assert c.brighter_db == pytest.approx(direct_bright, abs=0.3)
    a, b = analyze(paths["ai"]), analyze(paths["manual"])
    assert c.psr_diff_db == pytest.approx(a.psr_median_db - b.psr_median_db, abs=0.3)
    assert c.psr_diff_db < -2.0  # the crushed one has less PSR
    assert f"{abs(c.loudness_diff_lu):.1f} LU louder" in c.verdict


def test_each_move_is_paired_with_the_other_masters_analogue(comparison):
    c = comparison
    kinds = {m.kind: m for m in c.moves}
    shelf = kinds["high shelf"]
    assert shelf.a is not None and shelf.b is not None  # both shelved the top: one pair
    ai_move = next(m for m in c.to_a.eq_moves if m.kind == "high_shelf")
    manual_move = next(m for m in c.to_b.eq_moves if m.kind == "high_shelf")
    assert ai_move.gain_db == pytest.approx(7.9, abs=1.5)
    assert abs(math.log2(ai_move.freq_hz / 4200)) < 0.5
    assert manual_move.gain_db == pytest.approx(1.5, abs=0.7)
    assert kinds["compression"].a is not None and kinds["compression"].b is None
    assert kinds["limiting"].a is not None and kinds["limiting"].b is None
    assert kinds["limiting"].favours in (None, "B")  # never the one over the ceiling


def test_the_json_object_is_plain_json(comparison):
    doc = json.loads(json.dumps(comparison.to_dict(), allow_nan=False))  # what --json prints
    assert doc["a"] == "A" and doc["loudness_diff_lu"] > 5
    assert any(m["kind"] == "high shelf" for m in doc["moves"])
    assert doc["a_diff"]["gain_db"] is not None
    # Each master's explainability, overall and per band and section (0-1).
    for side in ("a", "b"):
        ex = doc["explainability"][side]
        assert 0.5 < ex["overall"] <= 1.0 and len(ex["bands"]) == 9 and ex["sections"]


def test_history_shows_the_manual_masters_drifting_toward_the_automatic_ones(tmp_path):
    import os

    from earmark.store.comparisons import store_comparison

    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    db = home / "earmark.sqlite"
    # Three months of AI-vs-manual comparisons: the manual master creeps toward the AI's
    # loudness (6 -> 2 LU apart) and brightness (4 -> 1 dB apart).
    for lu, bright in ((6.0, 4.0), (4.0, 2.5), (2.0, 1.0)):
        store_comparison(db, {"a": "ai.wav", "b": "manual.wav", "verdict": "v",
                              "loudness_diff_lu": lu, "brighter_db": bright,
                              "psr_diff_db": -3.0}, "mix.wav")  # fmt: skip
    env = dict(os.environ, EARMARK_HOME=str(home))
    proc = earmark("history", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert [c["loudness_diff_lu"] for c in doc["comparisons"]] == [6.0, 4.0, 2.0]
    assert doc["comparison_drift"] == {"loudness_diff_lu": 4.0, "brighter_db": 3.0,
                                       "psr_diff_db": 0.0}  # fmt: skip
    proc = earmark("history", env=env)
    assert "B against A, first -> last: loudness 4.0 LU nearer, above 4 kHz 3.0 dB nearer" in (
        proc.stdout
    )


def test_compare_keeps_its_verdict_unless_told_not_to(versions, comparison, tmp_path):
    import os
    import sqlite3

    paths, _ = versions
    args = ("compare", str(paths["mix"]), str(paths["ai"]), str(paths["manual"]))
    home = tmp_path / "one"
    proc = earmark(*args, env=dict(os.environ, EARMARK_HOME=str(home)))
    assert proc.returncode == 0, proc.stderr
    assert "ai.wav is" in proc.stdout and "LU louder than manual.wav" in proc.stdout
    assert "high shelf: ai.wav +" in proc.stdout
    with sqlite3.connect(home / "earmark.sqlite") as db:
        rows = db.execute("SELECT mix, a, b, loudness_diff_lu FROM comparisons").fetchall()
    assert rows == [("mix.wav", "ai.wav", "manual.wav", round(comparison.loudness_diff_lu, 2))]
    other = tmp_path / "other"
    proc = earmark(*args, "--json", "--no-store", env=dict(os.environ, EARMARK_HOME=str(other)))
    assert proc.returncode == 0 and json.loads(proc.stdout)["b"] == "manual.wav"
    assert not (other / "earmark.sqlite").exists()


def test_the_report_puts_the_verdict_moves_and_explainability_before_the_two_masters(
    comparison,
):
    import re

    from earmark.offline.report import compare_report

    page = compare_report(comparison, "mix.wav")
    headings = re.findall(r"<h2>(.*?)</h2>", page)
    assert headings[:4] == [
        "Verdict",
        "Moves, paired (each against the mix)",
        "Explainability: the share of each master&#x27;s change its listed moves explain",
        "What each version did",
    ]
    assert "high shelf" in page and comparison.verdict.split(";")[0] in page
