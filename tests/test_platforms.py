"""Platform playback rules (earmark.offline.platforms), each against its published example,
and ``analyze --platforms``, ``diff --platforms`` and snapshots' platform block.

Sources of every rule: docs/reference.md, "Platforms' playback rules".
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from earmark.cli import main
from earmark.offline.analysis import analyze
from earmark.offline.platforms import (
    PLATFORM_NAMES,
    PlatformOutcome,
    compare_sentence,
    outcomes,
    parse_platforms,
    playback,
    rule,
)
from earmark.profiles import load_profile

import clirun

SR = 48000
JSON_KEYS = {
    "name", "target_lufs", "gain_db", "playback_lufs", "playback_true_peak_dbtp", "limited",
    "penalty_lu", "plr_cost_db", "normalisation",
}  # fmt: skip


def quiet_master(path: Path, peak_db: float = -5.0, seconds: float = 20.0) -> Path:
    """Spotify's published example as audio: -20 LUFS with true peaks at ``peak_db``.

    A 1 kHz sine on both channels (a -20 dBFS one reads -20 LUFS: EBU Tech 3341 case 1,
    scaled) with a 2 ms 1 kHz burst peaking at ``peak_db`` once a second; the sine is
    lowered by the bursts' share of the energy so the programme's mean square, and with
    it the integrated loudness, stays that of the -20 dBFS sine."""
    t = np.arange(int(seconds * SR)) / SR
    sine = np.sin(2 * np.pi * 1000.0 * t)
    window = np.zeros(len(t))
    burst_n = int(0.002 * SR)
    for start in range(SR // 2 + 12, len(t) - burst_n, SR):  # centred on a sine crest
        window[start : start + burst_n] = np.hanning(burst_n)
    peak, a = 10 ** (peak_db / 20), 0.1
    for _ in range(20):  # the base level a with mean((a + (peak - a) w)^2) = 0.1^2
        a *= 0.1 / np.sqrt(np.mean((a + (peak - a) * window) ** 2))
    x = (a + (peak - a) * window) * sine
    ramp = int(0.05 * SR)  # faded ends: an abrupt start overshoots (docs/reference.md)
    x[:ramp] *= np.linspace(0, 1, ramp)
    x[-ramp:] *= np.linspace(1, 0, ramp)
    sf.write(path, np.column_stack([x, x]).astype(np.float32), SR, subtype="FLOAT")
    return path


@pytest.fixture(scope="module")
def quiet(tmp_path_factory) -> Path:
    return quiet_master(tmp_path_factory.mktemp("i19-platforms") / "quiet.wav")


@pytest.fixture(scope="module")
def louder(tmp_path_factory, quiet) -> Path:
    """The same programme 3 dB louder (what a louder master of it would be, unlimited)."""
    x, sr = sf.read(quiet, dtype="float32")
    path = tmp_path_factory.mktemp("i19-platforms-b") / "louder.wav"
    sf.write(path, x * np.float32(10 ** (3 / 20)), sr, subtype="FLOAT")
    return path


# -- the rules, against the published examples ---------------------------------------------------


def test_spotify_raises_a_quiet_track_only_until_1_db_of_true_peak_headroom_is_left():
    # Spotify for Artists: -20 LUFS with peaks at -5 dB is raised to -16 LUFS, not -14.
    o = playback(rule("spotify"), -20.0, -5.0)
    assert o.gain_db == pytest.approx(4.0)
    assert o.playback_lufs == pytest.approx(-16.0)
    assert o.playback_true_peak_dbtp == pytest.approx(-1.0)
    assert not o.limited and o.penalty_lu == 0.0 and o.plr_cost_db == 0.0


def test_spotify_measured_example_from_audio(quiet):
    a = analyze(str(quiet))
    assert a.integrated_lufs == pytest.approx(-20.0, abs=0.1)
    assert a.true_peak_dbtp == pytest.approx(-5.0, abs=0.2)
    (o,) = outcomes(a, parse_platforms("spotify"))
    assert o.playback_lufs == pytest.approx(-16.0, abs=0.25)  # not -14
    assert o.playback_true_peak_dbtp == pytest.approx(-1.0, abs=1e-9)


def test_a_loud_master_is_turned_down_to_the_target_and_its_penalty_and_plr_cost_follow():
    o = playback(rule("spotify"), -8.0, -0.5)
    assert o.gain_db == pytest.approx(-6.0)
    assert o.playback_lufs == pytest.approx(-14.0)
    assert o.playback_true_peak_dbtp == pytest.approx(-6.5)
    assert o.penalty_lu == pytest.approx(6.0)
    # At -14 LUFS an unlimited master could peak at -1 dBTP: PLR 13 dB; this one has 7.5.
    assert o.plr_cost_db == pytest.approx(13.0 - 7.5)
    # The cost never exceeds the loudness thrown away: 1 LU over, 1 dB at most.
    assert playback(rule("spotify"), -13.0, -8.0).plr_cost_db == pytest.approx(1.0)


def test_spotify_loud_uses_a_limiter_and_quiet_targets_minus_19():
    loud = playback(rule("spotify-loud"), -20.0, -5.0)
    assert loud.gain_db == pytest.approx(9.0) and loud.playback_lufs == pytest.approx(-11.0)
    assert loud.limited and loud.playback_true_peak_dbtp == pytest.approx(-1.0)
    assert not playback(rule("spotify-loud"), -8.0, -0.5).limited  # turned down: no limiter
    assert playback(rule("spotify-quiet"), -8.0, -0.5).playback_lufs == pytest.approx(-19.0)


@pytest.mark.parametrize("name", ["youtube", "tidal", "amazon-music", "deezer"])
def test_platforms_that_only_turn_down_never_turn_up(name):
    r = rule(name)
    up = playback(r, -20.0, -10.0)
    assert up.gain_db == 0.0 and up.playback_lufs == -20.0
    down = playback(r, -7.0, -0.2)
    assert down.playback_lufs == pytest.approx(r.target_lufs)


def test_album_gain_keeps_the_track_in_its_place_on_album_platforms_only():
    # Spotify: an album played as an album gets one gain (Spotify for Artists).
    sp = playback(rule("spotify"), -15.0, -3.0, album_lufs=-12.0)
    assert sp.normalisation == "album"
    assert sp.gain_db == pytest.approx(-2.0) and sp.playback_lufs == pytest.approx(-17.0)
    # YouTube has no album gain: the track's own loudness decides.
    yt = playback(rule("youtube"), -15.0, -3.0, album_lufs=-12.0)
    assert yt.normalisation == "track" and yt.gain_db == 0.0


def test_targets_have_one_home_the_delivery_profiles():
    for name in ("spotify", "apple-music", "youtube", "tidal", "deezer"):
        prof = load_profile(name)
        assert rule(name).target_lufs == prof.loudness.target_lufs
        assert rule(name).ceiling_dbtp == prof.true_peak.ceiling_dbtp
    assert (rule("apple-music").target_lufs, rule("deezer").target_lufs) == (-16.0, -15.0)
    assert rule("amazon-music").ceiling_dbtp == -2.0


def test_silence_has_no_outcome_and_its_json_is_null():
    o = playback(rule("spotify"), None, None)
    d = o.to_json_dict()
    assert set(d) == JSON_KEYS and d["gain_db"] is None and d["penalty_lu"] is None
    loud = playback(rule("spotify"), -8.0, -0.5)
    assert compare_sentence(o, loud) == (
        "on Spotify nothing can be said: a loudness is undefined (silence)"
    )


def test_the_comparison_sentence_says_what_the_extra_loudness_buys_and_costs():
    s = rule("spotify")
    sentence = compare_sentence(playback(s, -11.0, -1.0), playback(s, -8.0, -0.1))
    assert sentence == (
        "on Spotify the AFTER's +3.0 LU gains nothing (both play at -14.0 LUFS) "
        "and costs 2.1 dB of PLR"
    )


def test_unknown_names_are_refused_naming_the_known_ones():
    assert [r.name for r in parse_platforms(None)] == list(PLATFORM_NAMES)
    assert [r.name for r in parse_platforms("youtube, Spotify")] == ["youtube", "spotify"]
    with pytest.raises(ValueError, match=r"unknown platform 'napster'.*spotify-loud"):
        parse_platforms("spotify,napster")


# -- command line ------------------------------------------------------------------------------


def test_analyze_platforms_json_shape_and_values(quiet, capsys):
    code = main(["analyze", "--json", "--platforms", "spotify,youtube", str(quiet)])
    assert code == 0
    (obj,) = json.loads(capsys.readouterr().out)
    sp, yt = obj["platforms"]
    assert set(sp) == JSON_KEYS and [sp["name"], yt["name"]] == ["spotify", "youtube"]
    assert sp["target_lufs"] == -14.0 and sp["limited"] is False
    assert sp["playback_lufs"] == pytest.approx(-16.0, abs=0.25)
    assert sp["gain_db"] == pytest.approx(-1.0 - obj["true_peak_dbtp"], abs=0.01)
    assert yt["gain_db"] == 0.0 and yt["playback_lufs"] == pytest.approx(
        obj["integrated_lufs"], abs=0.01
    )


def test_analyze_platforms_table_and_without_the_option_no_key(quiet, capsys):
    assert main(["analyze", str(quiet), "--platforms"]) == 0
    out = capsys.readouterr().out
    assert "Platforms: quiet.wav" in out and "Amazon Music" in out and "Spotify (loud)" in out
    assert main(["analyze", "--json", str(quiet)]) == 0
    assert "platforms" not in json.loads(capsys.readouterr().out)[0]


def test_an_unknown_platform_is_a_usage_error(quiet):
    proc = clirun.earmark("analyze", "--platforms", "spotify,napster", str(quiet))
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "unknown platform 'napster'" in proc.stderr
    proc = clirun.earmark("diff", str(quiet), str(quiet), "--platforms=bogus")
    assert proc.returncode == 2 and "unknown platform 'bogus'" in proc.stderr


def test_a_file_right_after_platforms_is_read_as_a_file(quiet, capsys):
    # `--platforms FILE FILE`: the optional LIST took the first FILE; analyze gives it
    # back to the files and judges both against every platform.
    from earmark.offline.platforms import rules

    code = main(["analyze", "--json", "--platforms", str(quiet), str(quiet)])
    assert code == 0
    objs = json.loads(capsys.readouterr().out)
    assert [o["file"] for o in objs] == [str(quiet), str(quiet)]
    assert all([p["name"] for p in o["platforms"]] == [r.name for r in rules()] for o in objs)


def test_diff_gives_a_file_that_platforms_or_codecs_took_back_as_before(quiet, louder, capsys):
    # `diff --platforms BEFORE AFTER`: the optional LIST took BEFORE; diff gives it back
    # (earmark.cli.args.files_back, the helper analyze uses too), so BEFORE stays BEFORE:
    # AFTER is 3 LU louder, never the other way round.
    code = main(["diff", "--json", "--platforms", str(quiet), str(louder)])
    assert code == 0
    obj = json.loads(capsys.readouterr().out)
    assert [p["name"] for p in obj["platforms"]] == list(PLATFORM_NAMES)
    youtube = next(p for p in obj["platforms"] if p["name"] == "youtube")
    assert youtube["after"]["playback_lufs"] - youtube["before"]["playback_lufs"] == pytest.approx(
        3.0, abs=0.05
    )
    # One FILE only, taken by --platforms: still the usage error naming what is missing.
    proc = clirun.earmark("diff", "--platforms", str(quiet))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "required: AFTER" in proc.stderr


def test_diff_platforms_says_the_louder_version_gains_nothing_on_spotify(quiet, louder, capsys):
    code = main(["diff", "--json", "--platforms", "spotify,youtube", str(quiet), str(louder)])
    assert code == 0
    obj = json.loads(capsys.readouterr().out)
    sp, yt = obj["platforms"]
    assert set(sp["before"]) == JSON_KEYS and sp["name"] == "spotify"
    # Spotify raises BEFORE to -16 (1 dB headroom) and AFTER (3 dB louder, peaks at -2)
    # by 1 dB to the same -16: the 3 dB gain is worth nothing there.
    assert sp["after"]["playback_lufs"] == pytest.approx(sp["before"]["playback_lufs"], abs=0.05)
    assert sp["summary"].startswith("on Spotify the AFTER's +3.0 LU gains nothing")
    # YouTube never turns up: there the AFTER is heard 3 LU louder.
    assert yt["after"]["playback_lufs"] - yt["before"]["playback_lufs"] == pytest.approx(
        3.0, abs=0.05
    )
    assert main(["diff", "--platforms", "spotify", str(quiet), str(louder)]) == 0
    assert "On Spotify the AFTER's +3.0 LU gains nothing" in capsys.readouterr().out


# -- snapshots ------------------------------------------------------------------------------


def test_a_snapshot_holds_each_paths_platform_outcomes_and_show_prints_them(
    tmp_path, monkeypatch, capsys
):
    from earmark.store import StoreWriter, snapshots

    from snapdocs import doc_for, gain, state_for

    monkeypatch.setenv("EARMARK_HOME", str(tmp_path / "h"))
    doc = doc_for(gain(0.0), label="platforms")
    assert doc["version"] == snapshots.VERSION == 2
    readings = state_for(gain(0.0)).paths[0].readings
    expected = [o.to_json_dict() for o in outcomes(readings)]
    assert doc["paths"][0]["platforms"] == expected
    assert [p["name"] for p in doc["paths"][0]["platforms"]] == list(PLATFORM_NAMES)
    assert snapshots.read_json(snapshots.to_json(doc))["paths"][0]["platforms"] == expected
    writer = StoreWriter()
    writer.start()
    writer.begin_session("platforms", "test", sample_rate=48000)
    sid = writer.take_snapshot(doc)
    writer.end_session()
    writer.stop()
    assert main(["snapshots", "show", str(sid)]) == 0
    out = capsys.readouterr().out
    sp = expected[0]
    assert "Platforms: plays at LUFS" in out and "spotify-loud" in out
    assert f"{sp['playback_lufs']:.1f} ({sp['gain_db']:+.1f})" in out


def test_snapshots_diff_puts_both_snapshots_platform_outcomes_side_by_side(
    tmp_path, monkeypatch, capsys
):
    from earmark.offline.measures import fmt_signed
    from earmark.store import StoreWriter

    from snapdocs import doc_for, gain, state_for

    monkeypatch.setenv("EARMARK_HOME", str(tmp_path / "h"))
    writer = StoreWriter()
    writer.start()
    writer.begin_session("platforms diff", "test", sample_rate=48000)
    first = writer.take_snapshot(doc_for(gain(0.0), label="as mixed"))
    second = writer.take_snapshot(doc_for(gain(6.0), label="6 dB hotter"))
    writer.end_session()
    writer.stop()
    assert main(["snapshots", "diff", str(first), str(second), "--json"]) == 0
    obj = json.loads(capsys.readouterr().out)
    # Each platform's two outcomes are the snapshots' own entries (the A paths: the chain),
    # and the sentence is compare_sentence's on the outcomes of the two readings.
    before = state_for(gain(0.0)).paths[1].readings
    after = state_for(gain(6.0)).paths[1].readings
    assert [p["name"] for p in obj["platforms"]] == list(PLATFORM_NAMES)
    names = (f"snapshot {first}", f"snapshot {second}")
    for row, b, a in zip(obj["platforms"], outcomes(before), outcomes(after), strict=True):
        assert row["a"] == b.to_json_dict() and row["b"] == a.to_json_dict()
        # The sentence says the numbers the table shows (the stored ones, to 0.01).
        stored = [
            PlatformOutcome.from_json_dict(row[k], r.integrated_lufs, r.plr_db)
            for k, r in (("a", before), ("b", after))
        ]
        assert row["summary"] == compare_sentence(*stored, names)
    spotify = obj["platforms"][0]
    assert spotify["summary"].startswith(f"on Spotify snapshot {second}'s +6.0 LU")
    assert main(["snapshots", "diff", str(first), str(second)]) == 0
    out = capsys.readouterr().out
    assert "Platforms: plays at LUFS" in out
    assert f"On Spotify snapshot {second}'s +6.0 LU" in out
    youtube = next(p for p in obj["platforms"] if p["name"] == "youtube")
    assert f"{youtube['b']['playback_lufs']:.1f} ({fmt_signed(youtube['b']['gain_db'], 1)})" in out


def test_reports_carry_the_platform_tables_with_the_texts_numbers(quiet, louder, tmp_path, capsys):
    import html

    from earmark.offline.platform_report import platform_rows, sentence

    rules = parse_platforms("spotify,youtube,spotify-loud")
    page_path = tmp_path / "analyze.html"
    code = main(["analyze", str(quiet), "--platforms=spotify,youtube,spotify-loud",
                 "--report", str(page_path)])  # fmt: skip
    assert code == 0
    text = capsys.readouterr().out
    page = page_path.read_text(encoding="utf-8")
    rows = platform_rows(outcomes(analyze(str(quiet)), rules))
    assert "<h2>Platforms</h2>" in page
    for row in rows:  # every cell of every row, in the page's table and in the text's
        cells = "".join(f"<td>{html.escape(c)}</td>" for c in row)
        assert cells in page.replace("<th>", "<td>").replace("</th>", "</td>")
        assert all(c in text for c in row)
    assert "+4.0" in rows[1][2] or "+3.9" in rows[1][2] or "+4.1" in rows[1][2]  # -20 -> -16
    diff_path = tmp_path / "diff.html"
    code = main(["diff", str(quiet), str(louder), "--platforms", "spotify,youtube",
                 "--report", str(diff_path)])  # fmt: skip
    assert code == 0
    page = diff_path.read_text(encoding="utf-8")
    b, a = analyze(str(quiet)), analyze(str(louder))
    for ob, oa in zip(outcomes(b, rules[:2]), outcomes(a, rules[:2]), strict=True):
        assert html.escape(sentence(ob, oa)) in page
    for row in platform_rows(outcomes(a, rules[:2]))[1:]:
        assert "".join(f"<td>{html.escape(c)}</td>" for c in row) in page
    assert "On Spotify the AFTER&#x27;s +3.0 LU gains nothing" in page
    # --mix: the second master against the first, as the text says it.
    mix_path = tmp_path / "mix.html"
    code = main(["diff", str(quiet), str(louder), "--mix", str(quiet), "--platforms=spotify",
                 "--report", str(mix_path)])  # fmt: skip
    assert code == 0
    assert "On Spotify the AFTER&#x27;s +3.0 LU gains nothing" in mix_path.read_text("utf-8")


def test_the_album_report_has_the_album_its_tracks_flags_and_platform_gains(tmp_path, capsys):
    import html

    from earmark.offline.album import analyze_album
    from earmark.offline.platform_report import album_gain_rows, album_rows

    from synth import music_like

    files = []
    for i, gain_db in enumerate((-18.0, -18.0, -14.0, -18.0)):  # the third 4 dB louder
        x = music_like(4.0, SR, seed=i + 1) * 10 ** (gain_db / 20)
        files.append(tmp_path / f"t{i + 1}.wav")
        sf.write(files[-1], x, SR, subtype="FLOAT")
    out = tmp_path / "album.html"
    code = main(["analyze", "--album", *map(str, files), "--report", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    page = out.read_text(encoding="utf-8")
    album = analyze_album([str(f) for f in files])
    labels = [f.name for f in files]
    assert "<h2>Album</h2>" in page
    assert f"Album: {album.integrated_lufs:.1f} LUFS integrated" in page
    assert f"LRA {album.loudness_range_lu:.1f} LU" in page
    for row in [*album_rows(album, labels)[1:], *album_gain_rows(album)[1:]]:
        assert "".join(f"<td>{html.escape(c)}</td>" for c in row) in page
        assert all(c in text for c in row if c)  # the text's tables: the same numbers
    flagged = [f for f in album.flags if f["code"] == "album_inconsistent"]
    assert flagged and all(html.escape(f["message"]) in page for f in flagged)
