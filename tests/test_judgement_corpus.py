"""The judgement bench's own logic (bench/corpus.py, bench/judgement.py), on synthesized music.

CI has no corpus: the material is tests/material.py's beat of noise on the average
popular-music spectrum (12 s, two sections 6 dB apart). The bench's processing must do
what each family says, measured with earmark's own meters and meters/tonal.py, and its
arithmetic must give the known answers of a hand-made table.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from earmark.meters.bands import NOMINAL_HZ, band_edges
from earmark.meters.tonal import (
    AIR_HZ,
    BODY_HZ,
    PRESENCE_HZ,
    band_sum_db,
    k_weighting_gain_db,
    popular_music_curve,
    relative_levels,
)
from earmark.offline.analysis import analyze

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import corpus  # bench/corpus.py
import judgement  # bench/judgement.py

from material import target_noise

FS = corpus.FS
SEED = 17


@pytest.fixture(scope="module")
def music() -> np.ndarray:
    curve = popular_music_curve([float(f) for f in NOMINAL_HZ])
    return target_noise(curve, seconds=12.0).astype(np.float32)


@pytest.fixture(scope="module")
def dry(music):
    return analyze(music, FS)


def _relative(a) -> np.ndarray:
    long_db = np.array([np.nan if v is None else v for v in a.spectrum_long_db])
    return relative_levels(long_db, k_weighting_gain_db(a.band_hz, FS))


def _over_body_db(rel: np.ndarray, band_hz, lo_hz: float, hi_hz: float) -> float:
    return float(band_sum_db(rel, band_hz, lo_hz, hi_hz) - band_sum_db(rel, band_hz, *BODY_HZ))


def _predicted_rise_db(family, settings, dry, lo_hz: float, hi_hz: float) -> float:
    """The band's rise over the body that the EQ's own response predicts for this spectrum.

    The response is the processing applied to an impulse (a broadband trim cancels in
    band minus body); each 1/3-octave band's power is the dry band power times the
    response's mean power over the band's FFT bins.
    """
    n = 1 << 15
    impulse = np.zeros((n, 2), dtype=np.float32)
    impulse[0] = 0.01
    h, _ = corpus.process(family, settings, impulse)
    power = np.abs(np.fft.rfft(h[:, 0].astype(np.float64) / 0.01)) ** 2
    f = np.fft.rfftfreq(n, 1.0 / FS)
    _, lo, hi = band_edges(FS)
    gain_db = np.array(
        [10.0 * np.log10(power[(f >= a) & (f < b)].mean()) for a, b in zip(lo, hi, strict=True)]
    )
    before = _relative(dry)
    after = before + gain_db[: len(before)]
    hz = dry.band_hz
    return _over_body_db(after, hz, lo_hz, hi_hz) - _over_body_db(before, hz, lo_hz, hi_hz)


def test_the_same_seed_draws_the_same_settings_and_the_same_processed_audio(music):
    for family in corpus.FAMILIES:
        first = corpus.draw_settings(SEED, 0, family, music)
        again = corpus.draw_settings(SEED, 0, family, music)
        assert first == again
        assert len(first) == corpus.VARIANTS[family]
        digests = [corpus.audio_digest(corpus.process(family, s, music)[0]) for s in first]
        assert digests == [corpus.audio_digest(corpus.process(family, s, music)[0]) for s in again]
        # Another seed, another piece: other settings (one Generator per piece and family).
        assert corpus.draw_settings(SEED + 1, 0, family, music) != first
        assert corpus.draw_settings(SEED, 1, family, music) != first
    assert corpus.family_seed(SEED, 3, "combo") == [SEED, 3, 2]


def test_crush_lowers_the_psr_by_at_least_6_db_and_raises_the_loudness_to_a_loud_master(music, dry):
    for settings in corpus.draw_settings(SEED, 0, "crush", music):
        c = settings["crush"]
        assert c["ratio"] >= 4.0
        assert c["threshold_db"] <= corpus.rms_dbfs(music) - 10.0
        wet, makeup_db = corpus.process("crush", settings, music)
        a = analyze(wet, FS)
        assert dry.psr_median_db - a.psr_median_db >= 6.0
        assert a.integrated_lufs - dry.integrated_lufs >= 10.0
        assert a.integrated_lufs >= -10.0
        assert makeup_db > 0.0


def test_harsh_raises_the_highs_over_the_body_by_the_eqs_own_response_within_half_a_db(music, dry):
    for settings in corpus.draw_settings(SEED, 0, "harsh", music):
        eq = settings["eq"]
        assert 5.0 <= eq["gain_db"] <= 10.0
        assert 2500.0 <= eq["freq_hz"] <= 8000.0
        wet, _ = corpus.process("harsh", settings, music)
        a = analyze(wet, FS)
        after, hz = _relative(a), dry.band_hz
        rises = []
        for band in (PRESENCE_HZ, AIR_HZ):
            measured = _over_body_db(after, hz, *band) - _over_body_db(_relative(dry), hz, *band)
            predicted = _predicted_rise_db("harsh", settings, dry, *band)
            # The meters see exactly what the EQ did (0.01 dB here); 0.5 dB is the margin.
            assert measured == pytest.approx(predicted, abs=0.5)
            rises.append(measured)
        assert max(rises) >= 2.5  # 2-5 kHz or 5-10 kHz is audibly brighter
        # The bench's own reading of the same change (its "d 2-5k/body" column).
        bench_rise = judgement.presence_minus_body_db(a) - judgement.presence_minus_body_db(dry)
        assert bench_rise == pytest.approx(rises[0], abs=1e-9)


def test_controls_change_the_tonal_balance_and_the_psr_by_at_most_2_db(music, dry):
    before = _relative(dry)
    audible = np.isfinite(before) & (np.asarray(dry.band_hz) >= 31.5)
    audible &= np.asarray(dry.band_hz) <= 16000.0
    kinds = []
    for settings in corpus.draw_settings(SEED, 0, "control", music):
        wet, derived_db = corpus.process("control", settings, music)
        a = analyze(wet, FS)
        kinds.append(settings["kind"])
        assert np.max(np.abs(_relative(a) - before)[audible]) <= 2.0
        assert abs(a.psr_median_db - dry.psr_median_db) <= 2.0
        assert a.true_peak_dbtp <= corpus.EXCERPT_CEILING_DBTP + 0.05
        if settings["kind"] == "gain":
            applied = settings["gain_db"] + derived_db
            assert a.integrated_lufs - dry.integrated_lufs == pytest.approx(applied, abs=0.05)
        if settings["kind"] == "untouched":
            assert corpus.audio_digest(wet) == corpus.audio_digest(music)
    assert kinds == list(corpus.CONTROL_KINDS)


def _result(family: str, kind: str, flags: list[tuple[str, str]], alignment=None) -> dict:
    flags_by_mode = dict.fromkeys(judgement.MODES, flags)
    out = {"case": f"x/{family}/{kind}", "family": family, "kind": kind, "flags": flags_by_mode}
    out["alignment"] = alignment
    return out


def test_precision_and_recall_count_each_case_once_per_class_on_a_hand_made_table():
    oc, cd = ("over_compression", "warning"), ("collapsed_dynamics", "problem")
    hh, res = ("harsh_highs", "problem"), ("resonance", "warning")
    ok = {"offset_samples": 0.4, "polarity": 1, "correlation": 1.0}
    table = [
        _result("crush", "crush", [oc, cd], ok),  # over-compression found (twice: one case)
        _result("crush", "crush", [], ok),  # missed
        _result("combo", "combo", [cd, hh], ok),  # both found
        _result("harsh", "harsh", [oc], ok),  # harsh missed, over-compression false
        _result("control", "untouched", [res], {**ok, "offset_samples": 0.0}),
        _result("control", "gain", [], {**ok, "polarity": -1}),  # flipped: not exact
        _result("control", "tonal", [cd], {**ok, "offset_samples": 56.0}),  # off by 56
    ]
    s = judgement.score(table, "default", "over-compression")
    assert (s.tp, s.fp, s.fn, s.tn) == (2, 2, 1, 2)
    assert s.precision == pytest.approx(0.5)
    assert s.recall == pytest.approx(2 / 3)
    h = judgement.score(table, "diff", "harsh_highs")
    assert (h.tp, h.fp, h.fn, h.tn) == (1, 0, 1, 5)
    assert h.precision == 1.0 and h.recall == 0.5
    t = judgement.score(table, "live", "crushed_transients")
    assert (t.tp, t.fp, t.fn) == (0, 0, 3)
    assert t.precision is None and t.recall == 0.0
    c = judgement.control_rates(table, "genre")
    assert c["n"] == 3
    assert c["problem"] == pytest.approx(1 / 3)
    assert c["warning"] == pytest.approx(1 / 3)
    assert c["codes"] == {"resonance/warning": 1, "collapsed_dynamics/problem": 1}
    assert [judgement.exact(r["alignment"]) for r in table] == [1, 1, 1, 1, 1, 0, 0]
    goals = {g: (m, met) for g, m, met in judgement.goals(table)}
    assert goals["over-compression recall >= 0.9 (default)"] == ("0.67", False)
    assert goals["alignment exact on every pair"] == ("5/7", False)
    assert goals["alignment exact, piece vs itself"] == ("1/1", True)
    assert goals["controls: no problem flag (live)"] == ("33%", False)


def test_separability_sets_the_harsh_move_against_the_spread_of_untouched_pieces():
    def case(family: str, kind: str, level: float, change: float) -> dict:
        out = _result(family, kind, [])
        out["measures"] = {
            "presence_minus_body_db": level,
            "presence_change_db": change,
            "air_minus_body_db": None,
            "air_change_db": None,
        }
        return out

    table = [
        case("control", "untouched", -12.0, 0.0),
        case("control", "untouched", -8.0, 0.0),
        case("control", "untouched", -10.0, 0.0),
        case("control", "gain", -10.0, 0.0),  # not an untouched piece: not in the spread
        case("harsh", "harsh", -7.0, 3.0),
        case("harsh", "harsh", -6.0, 1.0),
        case("combo", "combo", -5.0, 2.0),
    ]
    (d,) = judgement.separability(table)  # no 5-10 kHz readings: that band is left out
    assert d["band"] == "2-5 kHz" and d["pieces"] == 3
    assert (d["min_db"], d["max_db"]) == (-12.0, -8.0)
    assert d["sd_db"] == pytest.approx(2.0)  # sample deviation of -12, -8, -10
    assert d["moved_db"] == pytest.approx(2.0)  # median of 3, 1, 2
    assert d["d_prime"] == pytest.approx(1.0)
