"""Explained flags on material whose answer is known by construction.

Processing is applied here with pedalboard (limiters, compressors, EQ), so each
flag is checked against what the test itself did; clean, dynamic material must
raise nothing; live (incremental rows) and offline (analyze) give the same flags.
"""

from __future__ import annotations

import functools
import math
import re

import numpy as np
import pedalboard
import pytest

import earmark
from earmark.engine.demo import aggressive_master, demo_mix
from earmark.meters import MeterBank
from earmark.meters.detectors import Detector, detect
from earmark.meters.flags import CODES, Flag
from earmark.meters.onsets import transient_loss
from earmark.profiles import load_profile

import material
import synth

FS = 48000


# -- helpers ------------------------------------------------------------------------------


def process(x: np.ndarray, plugins: list) -> np.ndarray:
    """Run a pedalboard chain over (frames, channels) audio."""
    board = pedalboard.Pedalboard(plugins)
    return np.ascontiguousarray(board(np.ascontiguousarray(x.T, dtype=np.float32), FS).T)


def flags_of(x: np.ndarray, profile: str = "default") -> list[dict]:
    return list(earmark.analyze(np.ascontiguousarray(x), sample_rate=FS, profile=profile).flags)


def codes(flags) -> set[str]:
    return {f["code"] if isinstance(f, dict) else f.code for f in flags}


def history(x: np.ndarray):
    bank = MeterBank(x.shape[1], FS)
    bank.process(np.ascontiguousarray(x, dtype=np.float32))
    return bank.history(), bank.readings()


def scaled_to(x: np.ndarray, lufs: float) -> np.ndarray:
    """``x`` with its integrated loudness moved to ``lufs`` (measured, then a gain)."""
    _, r = history(x)
    return x * 10.0 ** ((lufs - r.integrated_lufs) / 20.0)


@functools.cache
def mix() -> np.ndarray:
    return demo_mix(30.0, FS)


@functools.cache
def master() -> np.ndarray:
    return aggressive_master(mix(), FS)


@functools.cache
def long_master() -> np.ndarray:
    """The master played 2.5 times (75 s): LRA is judged from 60 s of programme."""
    m = master()
    return np.concatenate([m, m, m[: len(m) // 2]])


@functools.cache
def on_target(profile: str = "pop") -> np.ndarray:
    """A beat whose long-term spectrum is the profile's tonal target, by construction."""
    return material.target_noise(np.array(load_profile(profile).tonal.level_db), 30.0)


# -- the flag type ------------------------------------------------------------------------


def test_flag_is_data_with_the_designed_keys_and_round_trips():
    flag = Flag("over_compression", "problem", 61.2, 74.9, 5.8, 8.0, "dB", None, "PSR ...")
    d = flag.to_dict()
    assert list(d) == [
        "code", "severity", "start_s", "end_s", "value", "threshold", "unit", "band_hz", "message",
    ]  # fmt: skip
    assert Flag.from_dict({**d, "path": 2}) == flag
    harsh = Flag("harsh_highs", "warning", 0.0, 1.0, 4.0, 3.0, "dB", (2000.0, 5000.0), "")
    assert harsh.to_dict()["band_hz"] == [2000.0, 5000.0]
    assert Flag.from_dict(harsh.to_dict()) == harsh


# -- clean material raises nothing --------------------------------------------------------


@pytest.mark.parametrize("profile", ["jazz", "acoustic"])
def test_a_quiet_dynamic_acoustic_recording_raises_no_flag(profile):
    x = material.acoustic_piece()
    a = earmark.analyze(x, sample_rate=FS, profile=profile)
    # Known by construction: unprocessed plucks, quiet, wide dynamics.
    assert a.integrated_lufs < -20 and a.loudness_range_lu > 10
    assert a.flags == ()


def test_an_orchestral_piece_with_big_dynamics_raises_no_flag_under_classical():
    x = material.orchestral_piece()
    a = earmark.analyze(x, sample_rate=FS, profile="classical")
    assert a.loudness_range_lu > 15  # pp strings to a tutti and back
    assert a.flags == ()


def test_a_bright_cymbal_passage_alone_is_not_called_harsh():
    # Unprocessed cymbals, then the acoustic piece: highs without a body are a passage.
    x = np.concatenate([material.cymbal_passage(12.0), material.acoustic_piece(30.0)])
    for profile in ("jazz", "pop"):
        assert "harsh_highs" not in codes(flags_of(x, profile)), profile
    # Against itself as BEFORE (nothing was added) it is not harsh either.
    h, _ = history(x)
    assert "harsh_highs" not in codes(detect(h, load_profile("jazz"), FS, 2, before=h))


def test_the_demo_mix_is_clean_and_its_aggressive_master_is_flagged():
    for profile in ("default", "pop", "jazz"):
        assert flags_of(mix(), profile) == [], profile
    flagged = flags_of(master(), "default")
    # Its overs are between the samples (limited at -0.3 dBFS): true_peak_over, once.
    assert "true_peak_over" in codes(flagged) and "clipping" not in codes(flagged)
    assert all(f["severity"] == "problem" for f in flagged if f["code"] == "true_peak_over")
    # 7:1 and a limiter (PLR 9.9 dB, DR 6): the crest-led over-compression, a warning.
    assert codes(flagged) <= {"true_peak_over", "over_compression"}
    # Against the mix, the default profile also names what the processing did.
    hm, _ = history(mix())
    ha, _ = history(master())
    against = detect(ha, load_profile("default"), FS, 2, before=hm)
    assert {"crushed_transients", "harsh_highs"} <= codes(against)


# -- over-compression and dynamics ---------------------------------------------------------


def test_heavy_compression_and_limiting_is_over_compression():
    clean = on_target("pop")
    squashed = process(
        clean,
        [
            pedalboard.Compressor(threshold_db=-30, ratio=8, attack_ms=1, release_ms=40),
            pedalboard.Gain(gain_db=14),
            pedalboard.Limiter(threshold_db=-8, release_ms=50),
            pedalboard.Gain(gain_db=-1.5),  # the limiter's output below full scale
        ],
    )
    assert "over_compression" not in codes(flags_of(clean, "pop"))
    flags = [f for f in flags_of(squashed, "pop") if f["code"] == "over_compression"]
    assert len(flags) == 1
    f = flags[0]
    h, r = history(squashed)
    assert f["value"] == pytest.approx(r.psr_min_db, abs=0.05)  # the lowest PSR it saw
    # Problem when PSR stayed below the 6 dB problem floor for 5 s (50 rows) in a row.
    below = np.concatenate([[0], (h.psr_db < 6.0).astype(int), [0]])
    edges = np.flatnonzero(np.diff(below))
    longest = max((edges[1::2] - edges[::2]).tolist() or [0])
    assert f["severity"] == ("problem" if longest >= 50 else "warning")
    assert f["threshold"] == (6.0 if longest >= 50 else 8.0)
    assert f["end_s"] - f["start_s"] > 20.0  # the whole programme, not a moment
    # One threshold per sentence: the one that set the severity, and no other floor.
    assert f"PSR was below {f['threshold']:g} dB" in f["message"] or (
        f"PSR stayed below {f['threshold']:g} dB" in f["message"]
    )
    other = 8.0 if f["threshold"] == 6.0 else 6.0
    assert f"{other:g} dB" not in f["message"] and "pop profile" in f["message"]


def crushed(x: np.ndarray, seed: int) -> np.ndarray:
    """The issue's crushed family at seeded settings nobody chose: a compressor at ratio
    6-10 above -32..-28 dB, make-up gain, a limiter, to about -8..-5 LUFS."""
    rng = np.random.default_rng(seed)
    comp = pedalboard.Compressor(
        threshold_db=rng.uniform(-32, -28), ratio=rng.uniform(6, 10),
        attack_ms=rng.uniform(0.5, 15), release_ms=rng.uniform(30, 250),
    )  # fmt: skip
    y = process(x, [comp])
    limit_db = rng.uniform(-6, -2)
    _, r = history(y)
    make_up_db = rng.uniform(-8, -5) - r.integrated_lufs + limit_db - 1.0
    return process(
        y,
        [
            pedalboard.Gain(gain_db=make_up_db),
            pedalboard.Limiter(threshold_db=limit_db, release_ms=rng.uniform(30, 200)),
            pedalboard.Gain(gain_db=-rng.uniform(0.3, 1.0)),
        ],
    )


@pytest.mark.parametrize(
    ("piece", "seed"), [("orchestral", 11), ("orchestral", 12), ("acoustic", 13), ("acoustic", 14)]
)
def test_a_crushed_master_is_over_compression_under_the_default_profile(piece, seed):
    x = material.orchestral_piece() if piece == "orchestral" else material.acoustic_piece()
    y = crushed(x, seed)
    _, r = history(y)
    assert -9.0 < r.integrated_lufs < -4.0 and r.plr_db <= 10.0  # a loud, limited master
    flags = [f for f in flags_of(y) if f["code"] in ("over_compression", "collapsed_dynamics")]
    # One loss, one kind of flag: over_compression (one per loud passage; the acoustic
    # piece has rests), whose sentence quotes the programme's PLR and DR.
    assert {f["code"] for f in flags} == {"over_compression"}
    for f in flags:
        assert f["value"] < 8.0 and f["threshold"] == (6.0 if f["severity"] == "problem" else 8.0)
        assert "programme PLR" in f["message"] and "default profile" in f["message"]
    assert sum(f["end_s"] - f["start_s"] for f in flags) > 15.0
    # With the unprocessed piece as BEFORE (diff), it is flagged the same way.
    hx, _ = history(x)
    hy, _ = history(y)
    assert "over_compression" in codes(detect(hy, load_profile("default"), FS, 2, before=hx))


@pytest.mark.parametrize("seed", [21, 22])
def test_dynamic_and_gently_compressed_pieces_raise_no_dynamics_flag_by_default(seed):
    rng = np.random.default_rng(seed)
    for x in (material.orchestral_piece(), material.acoustic_piece()):
        gentle = process(
            x * 10 ** (rng.uniform(6, 12) / 20),  # louder, to be judged (K-20 gate)
            [pedalboard.Compressor(threshold_db=rng.uniform(-26, -14), ratio=rng.uniform(1.3, 2.5),
                                   attack_ms=rng.uniform(20, 80), release_ms=rng.uniform(150, 600))],
        )  # fmt: skip
        for y in (x, gentle):
            assert not codes(flags_of(y)) & {"over_compression", "collapsed_dynamics"}


def test_a_profile_extending_jazz_quotes_its_own_floors(tmp_path):
    mine = tmp_path / "our-jazz.toml"
    mine.write_text(
        'extends = "jazz"\n[dynamics]\nlra_min_lu = 9.0  # ours\nlra_problem_lu = 7.0  # ours\n'
        "psr_min_db = 11.0  # ours\n"
    )
    flags = flags_of(long_master(), str(mine))
    (lra,) = [f for f in flags if f["code"] == "collapsed_dynamics"]
    assert lra["threshold"] == 7.0 and "our-jazz profile calls LRA below 7 LU" in lra["message"]
    assert "5 LU" not in lra["message"] and "6 LU" not in lra["message"]  # jazz's own floors
    for f in (f for f in flags if f["code"] == "over_compression"):
        assert f["threshold"] in (11.0, 8.0) and "our-jazz profile" in f["message"]
        other = {11.0: "8", 8.0: "11"}[f["threshold"]]
        # The other threshold is not quoted ("PLR 9.8 dB" is a measure, not a floor).
        assert not re.search(rf"(?<![\d.]){other} dB", f["message"])


def test_over_compression_opens_within_seconds_and_closes_when_it_ends():
    # 20 s clean, 20 s limited hard, 20 s clean: the flag spans the middle.
    clean = material.target_noise(np.array(load_profile("pop").tonal.level_db), 60.0, seed=4)
    cut = slice(20 * FS, 40 * FS)
    y = clean.copy()
    y[cut] = (
        process(clean[cut] * 4.0, [pedalboard.Limiter(threshold_db=-12, release_ms=50)])
        * 10 ** (-1.5 / 20)
        / 4.0
    )
    bank, det = MeterBank(2, FS), Detector(load_profile("pop"), FS, 2)
    seen_at = None
    for start in range(0, len(y), 4800):
        bank.process(np.ascontiguousarray(y[start : start + 4800], dtype=np.float32))
        new = det.update(bank.history(since=det.next_row))
        if seen_at is None and "over_compression" in codes(new):
            seen_at = (start + 4800) / FS
    (f,) = [f for f in det.finish() if f.code == "over_compression"]
    # Seen live within a few seconds of the onset at 20 s (3 s window + 5 s sustained).
    assert seen_at is not None and 20.0 < seen_at <= 29.0
    # Where: PSR is a 3 s measure, so the edges are known to within its window.
    assert f.start_s == pytest.approx(20.0, abs=1.5)
    assert 39.0 <= f.end_s <= 43.0


def test_lra_is_not_judged_before_60_s_of_programme_as_ebu_tech_3341_asks():
    # A 30 s excerpt of the loud master: its LRA (about 1 LU) is one passage's, so jazz's
    # LRA floor is not applied; its PLR (about 8 dB) is a programme measure and is.
    _, r = history(master())
    assert r.loudness_range_lu < 5.0 and r.plr_db < 10.0
    (short,) = [f for f in flags_of(master(), "jazz") if f["code"] == "collapsed_dynamics"]
    assert short["unit"] == "dB" and "LRA" not in short["message"]
    assert "PLR" in short["message"]
    # The same master played for 75 s: LRA is judged, and (under its problem line) leads.
    (long,) = [f for f in flags_of(long_master(), "jazz") if f["code"] == "collapsed_dynamics"]
    assert long["unit"] == "LU" and "LRA" in long["message"]


def test_a_loud_pop_master_under_jazz_is_a_genre_mismatch():
    (f,) = [f for f in flags_of(long_master(), "jazz") if f["code"] == "collapsed_dynamics"]
    _, r = history(long_master())
    assert f["severity"] == "problem"  # LRA below the 5 LU mismatch line
    assert f["value"] == pytest.approx(r.loudness_range_lu, abs=0.05)
    # The problem floor set the severity, so the flag and its sentence quote it alone.
    assert f["threshold"] == 5.0 and f["unit"] == "LU"
    assert "typical of a loud pop master" in f["message"]
    assert "jazz profile calls LRA below 5 LU" in f["message"] and "a problem" in f["message"]
    assert "6 LU" not in f["message"]
    # The same master under pop is a (milder) pop master: no genre mismatch.
    pop = [f for f in flags_of(long_master(), "pop") if f["code"] == "collapsed_dynamics"]
    assert all("typical of a loud pop master" not in f["message"] for f in pop)


def test_crushed_transients_against_the_unprocessed_version():
    limited = process(
        mix(), [pedalboard.Gain(gain_db=12), pedalboard.Limiter(threshold_db=-6, release_ms=60)]
    ) * 10 ** (-1.5 / 20)
    hm, _ = history(mix())
    hl, _ = history(limited)
    (f,) = [f for f in detect(hl, load_profile("pop"), FS, 2, before=hm)
            if f.code == "crushed_transients"]  # fmt: skip
    assert f.value >= 3.0 and f.threshold == (6.0 if f.value >= 6.0 else 3.0)
    assert f.severity == ("problem" if f.value >= 6.0 else "warning")
    assert "against the BEFORE version" in f.message
    assert f"a loss of {f.threshold:g} dB or more" in f.message
    # One number per fact: the flag spans the programme, and the programme's loss by the
    # same measure (what `diff` prints) is the flag's value.
    assert f.start_s == 0.0 and f.end_s >= 29.0
    assert transient_loss(hm, hl).drop_db == pytest.approx(f.value, abs=1e-9)
    # A pure gain change moves peaks and loudness together: nothing was crushed.
    quieter, _ = history(mix() * 10 ** (-6 / 20))
    assert "crushed_transients" not in codes(detect(quieter, load_profile("pop"), FS, 2, before=hm))


# -- tonal -----------------------------------------------------------------------------------


def test_a_peak_of_8_db_at_4_khz_is_harsh_in_2_to_5_khz():
    clean = on_target("pop")
    bright = process(clean, [pedalboard.PeakFilter(cutoff_frequency_hz=4000, gain_db=8.0)])
    assert "harsh_highs" not in codes(flags_of(clean, "pop"))
    harsh = [f for f in flags_of(bright, "pop") if f["code"] == "harsh_highs"]
    assert len(harsh) == 1
    f = harsh[0]
    assert f["band_hz"] == [2000.0, 5000.0]
    assert f["value"] >= 3.0 and f["threshold"] == 3.0 and f["unit"] == "dB"
    assert f["severity"] == "warning"  # no BEFORE version: no evidence it was added
    assert "2-5 kHz" in f["message"] and "pop profile" in f["message"]
    # With the clean version as BEFORE the excess is shown to be the processing's: one
    # flag (the target's own judgement gives way to the evidence), naming what was added.
    hc, _ = history(clean)
    hb, _ = history(bright)
    (g,) = [g for g in detect(hb, load_profile("pop"), FS, 2, before=hc) if g.code == "harsh_highs"]
    assert g.band_hz == (2000.0, 5000.0) and g.value >= 3.0
    assert "against the BEFORE version" in g.message and "dB to 2-5 kHz" in g.message


def test_a_high_shelf_is_harsh_above_5_khz_only_against_the_mix():
    shelf = process(mix(), [pedalboard.HighShelfFilter(cutoff_frequency_hz=5000, gain_db=8.0)])
    hm, _ = history(mix())
    hs, _ = history(shelf)
    pop = load_profile("pop")
    # Alone, brightness above 5 kHz is a style (the mix's own hats are bright).
    assert not [f for f in detect(hs, pop, FS, 2) if f.band_hz == (5000.0, 10000.0)]
    air = [f for f in detect(hs, pop, FS, 2, before=hm) if f.band_hz == (5000.0, 10000.0)]
    assert air and all(f.code == "harsh_highs" and f.severity == "problem" for f in air)


def _acum(text: str) -> list[float]:
    """The sharpness figures (acum) a harsh_highs sentence quotes, in order."""
    import re

    m = re.search(r"sharpness ([0-9.]+)(?: -> ([0-9.]+))? acum", text)
    assert m, text
    return [float(v) for v in m.groups() if v is not None]


def test_the_harsh_sentence_quotes_the_sharpness_that_the_boost_raised():
    # A +8 dB bell at 4 kHz on the pop target, judged against the clean version: the
    # sentence quotes DIN 45692 sharpness before -> after, and it rose.
    clean = on_target("pop")
    bright = process(clean, [pedalboard.PeakFilter(cutoff_frequency_hz=4000, gain_db=8.0)])
    hc, _ = history(clean)
    hb, _ = history(bright)
    (g,) = [g for g in detect(hb, load_profile("pop"), FS, 2, before=hc) if g.code == "harsh_highs"]
    before_acum, after_acum = _acum(g.message)
    assert after_acum - before_acum >= 0.1, g.message
    # The same figures as the bank's own sharpness rows, median over the flagged rows.
    rows = (hb.t_s >= g.start_s + 3.0) & (hb.t_s <= g.end_s)
    assert after_acum == pytest.approx(float(np.median(hb.sharpness_acum()[rows])), abs=0.03)
    assert before_acum == pytest.approx(float(np.median(hc.sharpness_acum()[rows])), abs=0.03)
    # Without a BEFORE, the master's own sharpness against the one of the profile's target.
    (f,) = [f for f in flags_of(bright, "pop") if f["code"] == "harsh_highs"]
    (alone,) = _acum(f["message"])
    assert alone == pytest.approx(after_acum, abs=0.05)
    assert "pop profile's tonal target reads" in f["message"]


def test_a_single_file_with_a_high_shelf_is_harsh_and_sharper_than_the_target():
    # No BEFORE: a +8 dB shelf at 3 kHz on the pop target is over the 2-5 kHz limit and
    # sharper than the target's own sharpness, which the sentence quotes.
    bright = process(
        on_target("pop"), [pedalboard.HighShelfFilter(cutoff_frequency_hz=3000, gain_db=8.0)]
    )
    (f,) = [f for f in flags_of(bright, "pop") if f["code"] == "harsh_highs"]
    assert f["band_hz"] == [2000.0, 5000.0] and f["value"] >= 3.0
    (acum,) = _acum(f["message"])
    target = float(f["message"].split("tonal target reads ")[1][:4])
    assert acum - target >= 0.2, f["message"]


def test_a_presence_bump_under_a_dark_top_is_not_sharper_so_not_harsh():
    # +5 dB at 3.5 kHz (over the 3 dB limit relative to the body) but everything above
    # 5 kHz cut by 12 dB: the master is duller than the target (lower sharpness), a
    # balance rather than harshness; the same bump on the full top is flagged.
    clean = on_target("pop")
    bump = pedalboard.PeakFilter(cutoff_frequency_hz=3500, gain_db=5.0, q=1.0)
    dark = pedalboard.HighShelfFilter(cutoff_frequency_hz=5000, gain_db=-12.0)
    hb, _ = history(process(clean, [bump, dark]))
    det = Detector(load_profile("pop"), FS, 2)
    det.update(hb)
    flags = det.finish()
    assert float(np.median(hb.sharpness_acum()[40:])) < det._expected_sharp()
    assert "harsh_highs" not in codes(flags)
    assert "harsh_highs" in codes(flags_of(process(clean, [bump]), "pop"))


@pytest.mark.parametrize(("freq_hz", "q", "gain_db"), [(2500.0, 8.0, 12.0), (630.0, 6.0, 10.0)])
def test_a_steady_narrow_peak_is_a_resonance_at_its_frequency(freq_hz, q, gain_db):
    # A beat of noise on the pop target: the spectrum around the peak moves with the beat.
    clean = on_target("pop")
    assert "resonance" not in codes(flags_of(clean, "pop"))
    peaked = process(
        clean, [pedalboard.PeakFilter(cutoff_frequency_hz=freq_hz, gain_db=gain_db, q=q)]
    )
    res = [f for f in flags_of(peaked, "pop") if f["code"] == "resonance"]
    assert len(res) == 1
    assert abs(math.log2(res[0]["band_hz"] / freq_hz)) <= 1 / 6  # within 1/6 octave
    assert res[0]["value"] >= 6.0
    # The persistence quoted is the profile's own (pop asks 80 % of 10 s).
    assert "at least 80 % of the 3 s spectra of every 10 s" in res[0]["message"]


@pytest.mark.parametrize(("freq_hz", "q"), [(315.0, 12.0), (630.0, 6.0), (1000.0, 10.0)])
def test_a_narrow_bell_on_plucked_notes_is_a_resonance_at_its_frequency(freq_hz, q):
    # A +12 dB bell over changing plucked notes: the peak stays while the notes change.
    clean = material.acoustic_piece(40.0)
    bell = process(clean, [pedalboard.PeakFilter(cutoff_frequency_hz=freq_hz, gain_db=12.0, q=q)])
    res = [f for f in flags_of(bell, "pop") if f["code"] == "resonance"]
    assert any(abs(math.log2(f["band_hz"] / freq_hz)) <= 1 / 6 for f in res), (freq_hz, q)


def test_notes_and_a_steady_tone_are_not_resonances():
    # Plucked notes (the phrase's tonic recurs) and orchestral swells: no resonance.
    assert "resonance" not in codes(flags_of(material.acoustic_piece(40.0), "pop"))
    # One held tone over steady noise is one held note, not a resonance.
    rng = np.random.default_rng(3)
    n = 30 * FS
    noise = 0.05 * rng.standard_normal((n, 2))
    t = np.arange(n) / FS
    tone = 0.05 * np.sin(2 * np.pi * 1800.0 * t)
    assert "resonance" not in codes(flags_of(noise + tone[:, None], "pop"))


# -- peaks, clipping, loudness ------------------------------------------------------------------


def test_hard_clipping_is_clipping_with_the_clipped_sample_count():
    t = np.arange(10 * FS) / FS
    x = np.clip(1.6 * np.sin(2 * np.pi * 110.0 * t) * np.where(t < 5, 0.5, 1.0), -1.0, 1.0)
    stereo = np.stack([x, x], axis=1)
    # Known answer: samples in runs of >= 3 at full scale of one sign, on both channels.
    level = np.where(x >= 1.0, 1, np.where(x <= -1.0, -1, 0))
    count, run, prev = 0, 0, 0
    for v in level:
        run = run + 1 if v != 0 and v == prev else (1 if v != 0 else 0)
        prev = v
        count += 3 if run == 3 else (1 if run > 3 else 0)
    (f,) = [f for f in flags_of(stereo) if f["code"] == "clipping"]
    assert f"{2 * count} samples sat at full scale" in f["message"] and f["severity"] == "problem"
    assert f["value"] == 0.0 and f["unit"] == "dBFS"  # at full scale, not beyond it
    assert f["start_s"] == pytest.approx(5.0, abs=0.11)  # the first half stays below full scale


def test_true_peak_over_and_inter_sample_clipping():
    # EBU Tech 3341 case 19 shape: fs/4 at 45 degrees reads 3 dB above its samples.
    n = np.arange(20 * FS)
    base = np.sin(np.pi / 2 * n + np.pi / 4) * math.sqrt(2)
    fade = np.minimum(1.0, np.minimum(n, n[::-1]) / (0.05 * FS))
    for sample_peak_db, severity in ((-0.5, "problem"), (-3.5, "warning")):
        x = base * fade * 10 ** (sample_peak_db / 20)  # true peak 3 dB above the samples
        a = earmark.analyze(np.stack([x, x], 1), sample_rate=FS, profile="default")
        (tp,) = [f for f in a.flags if f["code"] == "true_peak_over"]
        assert tp["severity"] == severity
        assert tp["value"] == pytest.approx(a.true_peak_dbtp, abs=0.01)
        assert tp["threshold"] == -1.0
        # The waveform is not clipped: the over between the samples is reported once.
        assert [f for f in a.flags if f["code"] == "clipping"] == []
        if severity == "problem":  # above 0 dBTP: the DAC clips what the samples do not show
            assert "a DAC or a lossy encoder will clip" in tp["message"]


def test_loudness_target_of_a_delivery_profile():
    x = on_target("pop")
    loud = scaled_to(x, -9.0)
    (f,) = [f for f in flags_of(loud, "spotify") if f["code"] == "loudness_target"]
    assert f["value"] == pytest.approx(-9.0, abs=0.05) and f["threshold"] == -14.0
    assert f["unit"] == "LUFS" and f["severity"] == "warning"
    assert "5.0 LU above the Spotify target" in f["message"]
    assert "loudness_target" not in codes(flags_of(scaled_to(x, -14.4), "spotify"))
    # A broadcast delivery is binding: off by more than 0.5 LU is a problem.
    (g,) = [g for g in flags_of(scaled_to(x, -21.0), "ebu-r128") if g["code"] == "loudness_target"]
    assert g["severity"] == "problem" and g["threshold"] == -23.0


def test_live_integrated_loudness_and_lra_are_the_meterbanks(tmp_path):
    # EBU Tech 3342 case 1 twice over (1 kHz, 20 s at -20 LUFS then 20 s at -30 LUFS,
    # 80 s so that LRA is judged): LRA 10 LU; integrated -20 + 10 log10((1 + 0.1) / 2)
    # = -22.6 LUFS (the -30 LUFS blocks pass the relative gate at -32.6 LUFS). The
    # detectors gate the history rows with the kernels' gate, so the values their
    # flags quote are the MeterBank's on the same audio, not merely close to them.
    x = synth.tone_steps([-20.0, -30.0, -20.0, -30.0], [20.0] * 4)
    path = tmp_path / "gate-check.toml"
    path.write_text(
        'kind = "generic"\n[loudness]\ntarget_lufs = -40.0\ntolerance_lu = 1.0\n'
        "[dynamics]\nlra_min_lu = 30.0\nmin_programme_s = 10.0\n"
    )
    bank, det = MeterBank(2, FS), Detector(load_profile(str(path)), FS, 2)
    for start in range(0, len(x), 4800):
        bank.process(np.ascontiguousarray(x[start : start + 4800], dtype=np.float32))
        det.update(bank.history(since=det.next_row))
    flags = {f.code: f for f in det.finish()}
    r = bank.readings()
    assert r.integrated_lufs == pytest.approx(-22.6, abs=0.1)
    assert r.loudness_range_lu == pytest.approx(10.0, abs=0.1)
    assert flags["loudness_target"].value == pytest.approx(r.integrated_lufs, abs=1e-9)
    assert flags["collapsed_dynamics"].unit == "LU"
    assert flags["collapsed_dynamics"].value == pytest.approx(r.loudness_range_lu, abs=1e-9)


def _learned_range(tmp_path, target_lufs: float, tolerance_lu: float) -> str:
    path = tmp_path / f"range{target_lufs:g}.toml"
    path.write_text(
        'name = "house"\nkind = "learned"\n[loudness]\n'
        f"target_lufs = {target_lufs}\ntolerance_lu = {tolerance_lu}\n"
        "normalised_playback = true\n[true_peak]\nceiling_dbtp = -1.0\n"
    )
    return str(path)


def test_a_learned_loudness_range_passes_a_quieter_master_a_platform_can_raise(tmp_path):
    x = on_target("pop")
    quiet = scaled_to(x, -28.0)
    a = earmark.analyze(np.ascontiguousarray(quiet), sample_rate=FS)
    reach = -28.0 + (-1.0 - a.true_peak_dbtp)  # its loudness with true peaks at -1 dBTP
    assert reach > -22.0
    # 6 LU under a learned range of -22 to -18 LUFS, but normalisation can raise it into
    # the range: no flag, where a delivery target flags the same master.
    learned = _learned_range(tmp_path, -20.0, 2.0)
    assert "loudness_target" not in codes(flags_of(quiet, learned))
    assert "loudness_target" in codes(flags_of(quiet, "spotify"))
    # A gain change does not move the verdict: the headroom moves with the loudness.
    assert "loudness_target" not in codes(flags_of(scaled_to(x, -36.0), learned))


def test_a_learned_loudness_range_flags_what_the_true_peak_keeps_under_it(tmp_path):
    x = on_target("pop")
    a = earmark.analyze(np.ascontiguousarray(x), sample_rate=FS)
    reach = a.integrated_lufs + (-1.0 - a.true_peak_dbtp)
    # A range whose bottom is 2 LU above what this master reaches with peaks at -1 dBTP.
    low = reach + 2.0
    (f,) = [
        f
        for f in flags_of(scaled_to(x, low - 6.0), _learned_range(tmp_path, low + 1.0, 1.0))
        if f["code"] == "loudness_target"
    ]
    assert f["severity"] == "warning" and f["threshold"] == pytest.approx(low, abs=0.01)
    assert f"reaches {reach:.1f} LUFS, still 2.0 LU under the range" in f["message"]
    assert "quieter than them in loudness-normalised playback" in f["message"]


def test_a_learned_loudness_range_flags_a_master_louder_than_every_reference(tmp_path):
    x = on_target("pop")
    (f,) = [
        f
        for f in flags_of(scaled_to(x, -12.0), _learned_range(tmp_path, -17.0, 2.0))
        if f["code"] == "loudness_target"
    ]
    assert f["value"] == pytest.approx(-12.0, abs=0.05) and f["threshold"] == -15.0
    assert "3.0 LU above the house range of -19.0 to -15.0 LUFS" in f["message"]
    assert "louder than every reference" in f["message"]


# -- live == offline ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_live_incremental_flags_equal_offline_analyze(seed):
    rng = np.random.default_rng(seed)
    x = master()
    profile = load_profile("jazz")
    offline = earmark.analyze(x, sample_rate=FS, profile=profile).flags
    assert len(offline) >= 3  # overs, over-compression, collapsed dynamics
    bank, det = MeterBank(2, FS), Detector(profile, FS, 2)
    i = 0
    while i < len(x):
        n = int(rng.integers(1, 20000))
        bank.process(x[i : i + n])
        i += n
        if rng.random() < 0.5:  # the service polls at its own pace
            det.update(bank.history(since=det.next_row))
    det.update(bank.history(since=det.next_row))
    live = [f.to_dict() for f in det.finish()]
    assert live == list(offline)


def test_a_live_before_gives_the_same_flags_as_a_whole_before():
    hm, _ = history(mix())
    profile = load_profile("pop")
    whole = detect(history(master())[0], profile, FS, 2, before=hm)
    a, b = MeterBank(2, FS), MeterBank(2, FS)
    det = Detector(profile, FS, 2)
    x, y = master(), mix()
    for start in range(0, len(x), 3000):
        a.process(x[start : start + 3000])
        b.process(y[start : start + 3000])
        det.add_before(b.history(since=det.next_row))
        det.update(a.history(since=det.next_row))
    assert det.finish() == whole
    assert "crushed_transients" in codes(whole)


def test_every_code_is_documented_and_flags_are_ordered():
    import earmark.meters.detectors as d

    for code in CODES:
        assert f"``{code}``" in d.__doc__
    flags = flags_of(master(), "jazz")
    starts = [f["start_s"] for f in flags]
    assert starts == sorted(starts)


# -- grouped flags: one flag per code and episode ------------------------------------------------

SEVEN_PLACES = material.SEVEN_PLACES
clipped_burst, inter_sample_burst = material.clipped_burst, material.inter_sample_burst
with_bursts = material.with_bursts


def test_clips_at_seven_places_are_one_clipping_flag_listing_the_seven_and_naming_the_worst():
    x = with_bursts(SEVEN_PLACES, clipped_burst)
    (clip,) = [f for f in flags_of(x) if f["code"] == "clipping"]
    occ = clip["occurrences"]
    assert [o["at_s"] for o in occ] == [s for s, _ in SEVEN_PLACES]
    assert [o["value"] for o in occ] == pytest.approx([db for _, db in SEVEN_PLACES], abs=0.01)
    # The worst place names the flag: its value, unit and the summary sentence.
    assert clip["value"] == pytest.approx(3.96, abs=0.01) and clip["unit"] == "dBFS"
    assert clip["start_s"] == 23.0 and clip["end_s"] == 59.2 and clip["severity"] == "problem"
    assert clip["message"].startswith(
        "at 7 places between 23.0 and 59.2 s, worst +3.96 dBFS at 55.0 s. The worst: "
    )
    assert "sample peaks reached +3.96 dBFS" in clip["message"]
    from earmark.ui.flags_text import flag_lines

    line = next(line for line in flag_lines([clip]) if "clipping" in line)
    assert line.startswith(
        "PROBLEM  clipping at 7 places between 23.0 and 59.2 s, worst +3.96 dBFS at 55.0 s"
    )


def test_inter_sample_overs_at_seven_places_are_true_peak_over_only():
    # True peaks up to +2.9 dBTP: the samples stay at -0.1 dBFS or below.
    places = tuple((s, {3.1: 2.5, 3.96: 2.9}.get(db, db)) for s, db in SEVEN_PLACES)
    x = with_bursts(places, inter_sample_burst)
    flags = flags_of(x)
    assert "clipping" not in codes(flags)  # the waveform is not clipped
    (tp,) = [f for f in flags if f["code"] == "true_peak_over"]
    assert [o["at_s"] for o in tp["occurrences"]] == [s for s, _ in places]
    assert [o["value"] for o in tp["occurrences"]] == pytest.approx(
        [db for _, db in places], abs=0.1
    )
    assert tp["value"] == pytest.approx(2.9, abs=0.1) and tp["severity"] == "problem"
    assert tp["value"] == tp["occurrences"][5]["value"]  # 55.0 s, the worst
    assert f"worst {tp['value']:+.2f} dBTP at 55.0 s. The worst: true peak reached" in tp["message"]
    assert "inter-sample over" in tp["message"]


def test_overs_more_than_an_episode_apart_are_separate_flags():
    from earmark.meters.flags import EPISODE_GAP_S

    # Two overs 3.5 s apart (two occurrences: more than 3 s), then two more after a
    # silence longer than an episode's gap.
    late = 8.5 + EPISODE_GAP_S + 2.0
    places = ((5.0, 1.0), (8.5, 2.0), (late, 1.5), (late + 3.5, 0.5))
    x = with_bursts(places, clipped_burst)
    clips = [f for f in flags_of(x) if f["code"] == "clipping"]
    at = [[o["at_s"] for o in f["occurrences"]] for f in clips]
    assert at == [[5.0, 8.5], [late, late + 3.5]]
    assert [f["value"] for f in clips] == pytest.approx([2.0, 1.5], abs=0.01)


def crushed_passages() -> np.ndarray:
    """Three 9 s passages of clipped noise (crest near 0 dB, PSR about 2 dB) parted by 5 s
    of near-silence: three occurrences of over-compression, 14 s apart."""
    rng = np.random.default_rng(3)
    loud = np.tanh(8.0 * rng.standard_normal(9 * FS)) * 0.5
    quiet = 0.001 * rng.standard_normal(5 * FS)
    x = np.concatenate([quiet, loud, quiet, loud, quiet, loud, quiet])
    return np.ascontiguousarray(np.stack([x, x], 1), dtype=np.float32)


def test_repeated_passages_of_a_sustained_code_are_one_flag_of_passages():
    x = crushed_passages()
    (oc,) = [f for f in flags_of(x) if f["code"] == "over_compression"]
    occ = oc["occurrences"]
    assert len(occ) == 3 and all(o["at_s"] is None for o in occ)
    # Each passage is where the clipped noise played (5-14, 19-28, 33-42 s), to the
    # measure's 3 s window.
    for o, start in zip(occ, (5.0, 19.0, 33.0), strict=True):
        assert start - 3.5 <= o["start_s"] <= start + 1.0
        assert start + 8.0 <= o["end_s"] <= start + 12.0
    worst = min(o["value"] for o in occ)  # the lowest PSR is the worst
    assert oc["value"] == worst and oc["start_s"] == occ[0]["start_s"]
    assert oc["message"].startswith(f"in 3 passages between {oc['start_s']:.1f} and ")


def test_live_grouped_flags_grow_in_place_and_end_equal_to_offline():
    x = np.concatenate([with_bursts(SEVEN_PLACES, clipped_burst), crushed_passages()])
    # pop: its PSR floor needs no programme-wide corroboration, which the default's does
    # (the clipped bursts before the passages leave the programme's PLR above 10 dB).
    profile = load_profile("pop")
    offline = earmark.analyze(x, sample_rate=FS, profile=profile).flags
    bank, det = MeterBank(2, FS), Detector(profile, FS, 2)
    seen: dict[tuple, list[int]] = {}  # (code, start, band) -> occurrence counts, as they grew
    for i in range(0, len(x), 4800):  # 100 ms blocks, as a live session's ticks
        bank.process(x[i : i + 4800])
        for f in det.update(bank.history(since=det.next_row)):
            seen.setdefault((f.code, f.start_s, f.band_hz), []).append(len(f.occurrences))
    live = [f.to_dict() for f in det.finish()]
    assert live == list(offline)
    # The clipping flag opened at its first place and grew, one place at a time, under
    # one identity (a session log keys flags by code, band and start).
    counts = seen[("clipping", 23.0, None)]
    assert counts[0] == 1 and counts[-1] == 7 and sorted(set(counts)) == list(range(1, 8))
    assert [k for k in seen if k[0] == "clipping"] == [("clipping", 23.0, None)]
    assert max(seen[next(k for k in seen if k[0] == "over_compression")]) == 3


def test_json_keeps_every_occurrence_and_round_trips_through_flag(tmp_path):
    import json

    import soundfile as sf

    from clirun import earmark as run_cli

    path = tmp_path / "seven.wav"
    sf.write(path, with_bursts(SEVEN_PLACES, clipped_burst), FS, subtype="FLOAT")
    proc = run_cli("analyze", "--json", str(path))
    assert proc.returncode == 0, proc.stderr
    (obj,) = json.loads(proc.stdout)
    (clip,) = [f for f in obj["flags"] if f["code"] == "clipping"]
    # DESIGN.md's keys, in order, then every occurrence with its own sentence.
    assert list(clip)[:9] == [
        "code", "severity", "start_s", "end_s", "value", "threshold", "unit", "band_hz", "message",
    ]  # fmt: skip
    assert [(o["start_s"], o["end_s"], o["value"]) for o in clip["occurrences"]] == [
        (s, round(s + 0.1, 1), db) for s, db in SEVEN_PLACES
    ]
    assert all("the waveform is clipped" in o["message"] for o in clip["occurrences"])
    flag = Flag.from_dict(clip)
    assert len(flag.occurrences) == 7 and flag.to_dict() == clip
    # The text readout: one line for the seven, and the places listed below it.
    proc = run_cli("analyze", str(path))
    lines = proc.stdout.splitlines()
    (head,) = [line for line in lines if "clipping at" in line]
    i = lines.index(head)
    assert "clipping at 7 places between 23.0 and 59.2 s, worst +3.96 dBFS at 55.0 s" in head
    assert lines[i + 1].split() == ["places:", *", ".join(
        f"{s:.1f} s {db:+.2f} dBFS" for s, db in SEVEN_PLACES).split()]  # fmt: skip
