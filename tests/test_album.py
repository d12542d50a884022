"""Album mode (earmark.offline.album, ``earmark analyze --album``): the album's loudness
is BS.1770's over the whole programme, and the track that stands out is flagged."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from earmark.meters.flags import CODES
from earmark.meters.tonal import PRESENCE_HZ
from earmark.offline.album import AlbumError, analyze_album
from earmark.offline.analysis import analyze

from clirun import earmark
from synth import music_like

FS = 48000
SECONDS = 4.0


def track(gain_db: float, seed: int = 0, seconds: float = SECONDS, fs: int = FS) -> np.ndarray:
    return music_like(seconds, fs, seed=seed) * 10.0 ** (gain_db / 20.0)


def brighter(x: np.ndarray, gain_db: float, lo_hz: float, hi_hz: float) -> np.ndarray:
    """``x`` with ``gain_db`` more between ``lo_hz`` and ``hi_hz`` (in the FFT domain)."""
    spec = np.fft.rfft(x, axis=0)
    f = np.fft.rfftfreq(x.shape[0], 1.0 / FS)
    spec[(f >= lo_hz) & (f <= hi_hz)] *= 10.0 ** (gain_db / 20.0)
    return np.fft.irfft(spec, x.shape[0], axis=0)


def album_flags(album, index: int) -> list:
    return [f for f in album.flags if f["start_s"] == pytest.approx(album.tracks[index].start_s)]


def test_album_loudness_is_the_whole_programme_not_an_average():
    tracks = [track(0.0, 1), track(-8.0, 2, seconds=6.0), track(-3.0, 3, seconds=3.0)]
    album = analyze_album(tracks, sample_rate=FS)
    whole = analyze(np.concatenate(tracks), sample_rate=FS)
    assert album.integrated_lufs == pytest.approx(whole.integrated_lufs, abs=0.01)
    assert album.loudness_range_lu == pytest.approx(whole.loudness_range_lu, abs=0.01)
    assert album.true_peak_dbtp == pytest.approx(whole.true_peak_dbtp, abs=0.01)
    assert album.duration_s == pytest.approx(13.0)
    # Not the mean of the tracks' loudness: the gate weighs every block, and the loud
    # tracks dominate the energy.
    mean = float(np.mean([t.integrated_lufs for t in album.tracks]))
    assert abs(album.integrated_lufs - mean) > 0.5
    for t in album.tracks:
        assert t.delta_lu == pytest.approx(t.integrated_lufs - album.integrated_lufs)


def test_a_track_4_lu_louder_than_its_neighbours_is_flagged_the_1_lu_one_is_not():
    gains = [0.0, 0.0, 4.0, 0.0, 1.0, 0.0]
    album = analyze_album([track(g, seed=7) for g in gains], sample_rate=FS)
    deltas = [t.neighbours_delta_lu for t in album.tracks]
    assert deltas[2] == pytest.approx(4.0, abs=0.05)  # neighbours 1, 2, 4, 5: median +0
    assert deltas[4] == pytest.approx(1.0, abs=0.05)  # neighbours 2, 3, 4, 6: median +0
    flagged = [i for i in range(len(gains)) if album_flags(album, i)]
    assert flagged == [2]
    (flag,) = album.flags
    assert flag["code"] == "album_inconsistent" and flag["code"] in CODES
    assert flag["severity"] == "warning" and flag["unit"] == "LU"
    assert flag["value"] == pytest.approx(4.0, abs=0.05)
    assert "track 3" in flag["message"] and "4.0 LU louder" in flag["message"]
    assert "tracks 1, 2, 4, 5" in flag["message"]


def test_a_brighter_track_is_flagged():
    base = [track(0.0, seed=s) for s in range(5)]
    # +6 dB over the 1/3-octave bands centred 2-5 kHz (their edges: 1.78-5.61 kHz).
    base[1] = brighter(base[1], 6.0, 1780.0, 5610.0)
    album = analyze_album(base, sample_rate=FS)
    assert album.tracks[1].presence_delta_db == pytest.approx(6.0, abs=0.5)
    assert all(abs(album.tracks[i].presence_delta_db) < 1.0 for i in (0, 2, 3, 4))
    presence = [f for f in album.flags if f["band_hz"] == list(PRESENCE_HZ)]
    assert len(presence) == 1 and presence[0]["start_s"] == pytest.approx(SECONDS)
    assert "track 2" in presence[0]["message"] and "brighter in 2-5 kHz" in presence[0]["message"]
    # Brightness is not loudness: no track stands out by loudness.
    assert not [f for f in album.flags if f["unit"] == "LU"]


def test_one_track_is_its_own_album():
    x = track(-2.0, seed=4)
    album = analyze_album([x], sample_rate=FS)
    alone = analyze(x, sample_rate=FS)
    assert album.integrated_lufs == pytest.approx(alone.integrated_lufs, abs=0.01)
    (t,) = album.tracks
    assert t.delta_lu == pytest.approx(0.0, abs=0.01)
    assert t.neighbours_delta_lu is None and t.presence_delta_db == 0.0
    assert album.flags == ()
    # Spotify raises this quiet album only until 1 dB of true-peak headroom is left
    # (its playback rule), not all the way to -14 LUFS; YouTube never raises it.
    spotify = next(p for p in album.platforms if p.profile == "spotify")
    wanted, room = -14.0 - alone.integrated_lufs, -1.0 - alone.true_peak_dbtp
    assert room < wanted
    assert spotify.gain_db == pytest.approx(room, abs=0.01)
    assert spotify.true_peak_dbtp == pytest.approx(-1.0, abs=0.01)
    youtube = next(p for p in album.platforms if p.profile == "youtube")
    assert youtube.gain_db == 0.0 and youtube.normalisation == "track"


def test_different_channel_counts_are_refused():
    with pytest.raises(AlbumError, match="channel counts"):
        analyze_album([track(0.0), track(0.0)[:, :1]], sample_rate=FS)


def test_cli_json_shape_and_a_resampled_track(tmp_path):
    files = []
    for i, (g, fs) in enumerate([(0.0, FS), (-6.0, 44100), (0.0, FS), (0.0, FS), (0.0, FS)]):
        path = tmp_path / f"{i + 1:02d}.wav"
        sf.write(path, track(g, seed=i, fs=fs), fs, subtype="FLOAT")
        files.append(str(path))
    run = earmark("analyze", "--album", "--json", *files)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert [o["file"] for o in out[:5]] == files  # the files keep their positions
    album = out[5]["album"]
    assert set(album) >= {"integrated_lufs", "loudness_range_lu", "true_peak_dbtp", "tracks",
                          "platforms", "flags"}  # fmt: skip
    assert [t["file"] for t in album["tracks"]] == files
    for t in album["tracks"]:
        assert set(t) >= {"file", "integrated_lufs", "delta_lu", "neighbours_delta_lu",
                          "presence_delta_db", "air_delta_db"}  # fmt: skip
    assert {p["platform"] for p in album["platforms"]} >= {"Spotify", "Apple Music", "YouTube"}
    # The 44.1 kHz track was resampled to 48 kHz for the album's meters, said once.
    assert album["sample_rate"] == FS and len(album["warnings"]) == 1
    assert "02.wav is 44100 Hz: resampled to 48000 Hz" in run.stderr
    # The album at 48 kHz measures as the five tracks at 48 kHz back to back.
    same = [track(g, seed=i) for i, g in enumerate([0.0, -6.0, 0.0, 0.0, 0.0])]
    whole = analyze(np.concatenate(same), sample_rate=FS)
    # (the 44.1 kHz track is the same material synthesised at 44.1 kHz: close, not equal)
    assert album["integrated_lufs"] == pytest.approx(whole.integrated_lufs, abs=0.3)
    track2 = album["tracks"][1]
    assert track2["neighbours_delta_lu"] == pytest.approx(-6.0, abs=0.2)
    (flag,) = album["flags"]
    assert flag["file"] == files[1] and "6.0 LU quieter" in flag["message"]


def test_cli_text_and_refusal(tmp_path):
    a, b = tmp_path / "a.wav", tmp_path / "b.wav"
    sf.write(a, track(0.0, seed=1), FS, subtype="FLOAT")
    sf.write(b, track(0.0, seed=1)[:, 0], FS, subtype="FLOAT")
    run = earmark("analyze", "--album", str(a))
    assert run.returncode == 0, run.stderr
    assert "Album gain per platform" in run.stdout and "Spotify" in run.stdout
    refused = earmark("analyze", "--album", str(a), str(b))
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1 and "different channel counts" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_cli_album_with_an_unreadable_track(tmp_path):
    a = tmp_path / "a.wav"
    sf.write(a, track(0.0, seed=1), FS, subtype="FLOAT")
    missing = str(tmp_path / "missing.wav")
    run = earmark("analyze", "--album", "--json", str(a), missing)
    assert run.returncode == 3
    out = json.loads(run.stdout)
    assert out[0]["file"] == str(a) and out[1] == {"file": missing, "error": "no such file"}
    assert out[2]["album"] is None and "missing.wav could not be read" in out[2]["error"]
    assert "Traceback" not in run.stderr
