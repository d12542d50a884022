"""The residual (`diff`'s "what the processing added or removed"): AFTER minus the aligned,
gain-matched BEFORE, measured on real processing (pedalboard) of music-like material."""

from __future__ import annotations

import math

import numpy as np
import pedalboard
import pytest

from earmark.offline.transform import diff

from synth import music_like

FS = 48000


@pytest.fixture(scope="module")
def music() -> np.ndarray:
    return music_like(12.0, FS, seed=3).astype(np.float32)


def _board(x: np.ndarray, *plugins) -> np.ndarray:
    return pedalboard.Pedalboard(list(plugins))(x.T.copy(), FS).T.copy()


def test_an_untouched_or_only_louder_copy_leaves_silence(music):
    for after, gain in ((music, 0.0), (music * np.float32(10 ** (-5 / 20)), -5.0)):
        r = diff(music, after, sample_rate=FS).residual
        assert r.gain_db == pytest.approx(gain, abs=0.01)
        # Silent: below -90 dBFS at its highest sample (float32 rounding is about -140).
        assert r.integrated_lufs is None or r.integrated_lufs < -90
        assert r.peak_dbfs is None or r.peak_dbfs < -90
        assert "residual: nothing" in r.sentence() or r.integrated_lufs < -90


def test_the_residual_of_a_shelf_measures_as_the_shelf_minus_the_matching_gain(music):
    after = _board(music, pedalboard.HighShelfFilter(cutoff_frequency_hz=2000, gain_db=6.0))
    t = diff(music, after, sample_rate=FS)
    r = t.residual
    g = 10 ** (r.gain_db / 20)
    bands = np.array(r.band_hz)
    k = int(np.argmin(np.abs(bands - 12500)))
    # Far above the corner the shelf is +6 dB with no phase shift: the residual's band is
    # (2 - g) times BEFORE's, so (2 - g) / 2 of AFTER's.
    want = 20 * math.log10((10 ** (6 / 20) - g) / 10 ** (6 / 20))
    assert r.relative_db[k] == pytest.approx(want, abs=0.5)
    # Low in the spectrum, untouched by the shelf, what is left is only 1 - g of it.
    k_low = int(np.argmin(np.abs(bands - 125)))
    assert r.relative_db[k_low] == pytest.approx(20 * math.log10(abs(1 - g)), abs=1.5)
    assert "most of it at the octave around" in r.sentence()
    assert t.to_dict()["residual"]["relative_db"][k] == pytest.approx(r.relative_db[k], abs=0.01)


def test_the_loudest_passage_is_where_the_processing_acted(music):
    # Distortion only in seconds 6-8: the residual is loudest there.
    after = music.copy()
    a, b = 6 * FS, 8 * FS
    after[a:b] = _board(music[a:b], pedalboard.Distortion(drive_db=20), pedalboard.Gain(-20))
    r = diff(music, after, sample_rate=FS).residual
    first = r.loudest[0]
    assert first.start_s >= 5.0 and first.end_s <= 11.0 and first.end_s > 6.5
    assert len(r.loudest) <= 3
