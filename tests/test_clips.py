"""Snapshot clips: the last seconds of the audible path, stored as FLAC with the snapshot.

A real engine streams at real-time pace into the null sink, a real SQLite store
keeps the snapshot, and the clip is decoded and metered: it must be the audible
path's signal, at the loudness the test gave it.
"""

from __future__ import annotations

import io
import time

import numpy as np
import pedalboard
import pytest
import soundfile as sf

from earmark.engine.drivers import NullDriver
from earmark.engine.engine import Engine, Path
from earmark.engine.sources import Player
from earmark.live.recorder import SessionRecorder
from earmark.live.session import LiveSession
from earmark.meters import MeterBank
from earmark.store import Store, StoreWriter

from boards import Board
from synth import sine

FS = 48000


def lufs(x: np.ndarray) -> float:
    bank = MeterBank(x.shape[1], FS)
    bank.process(x)
    return bank.readings().integrated_lufs


@pytest.mark.parametrize(("audible", "expected_lufs"), [("A", -20.0), ("B", -14.0)])
def test_a_snapshot_keeps_the_last_seconds_of_the_audible_path(tmp_path, audible, expected_lufs):
    x = sine(-20, 30, dtype=np.float32)
    engine = Engine(
        FS,
        [Path("dry", Player(x, "x")), Path("+6 dB", Player(x, "x"), Board([pedalboard.Gain(6.0)]))],
        loudness_match=False,
        tap_seconds=2.0,
    )
    driver = NullDriver(engine, blocksize=64)
    writer = StoreWriter(tmp_path / "earmark.sqlite")
    recorder = SessionRecorder(writer, kind="test", clip_seconds=2.0, end_snapshot=False)
    session = LiveSession(engine, driver, name="clips", say=None)
    recorder.attach(session)
    driver.start()
    with session:
        session.post("select", audible)
        time.sleep(3.0)
        snapshot_id = session.call("snapshot", "with clip")
    fmt, data = Store(tmp_path / "earmark.sqlite").clip(snapshot_id)
    audio, rate = sf.read(io.BytesIO(data), dtype="float32")
    assert fmt == "flac" and rate == FS
    assert audio.shape == (2 * FS, 2)  # the last 2 s, stereo
    assert lufs(audio) == pytest.approx(expected_lufs, abs=0.05)


def test_clips_are_off_by_default(tmp_path):
    x = sine(-20, 10, dtype=np.float32)
    engine = Engine(FS, [Path("dry", Player(x, "x"))], a=0, b=0)
    driver = NullDriver(engine, blocksize=64)
    writer = StoreWriter(tmp_path / "earmark.sqlite")
    session = LiveSession(engine, driver, name="no clips", say=None)
    SessionRecorder(writer, kind="test", end_snapshot=False).attach(session)
    driver.start()
    with session:
        time.sleep(1.0)
        snapshot_id = session.call("snapshot", "no clip")
    assert Store(tmp_path / "earmark.sqlite").clip(snapshot_id) is None
