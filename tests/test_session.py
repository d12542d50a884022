"""The live session: command routing, session commands, services, failure isolation.

A real engine with real pedalboard processing, rendered block by block in the
test thread (as the audio callback would), while the session thread runs.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pedalboard
import pytest

from earmark.engine.drivers import NullDriver, render
from earmark.engine.engine import Engine, Path
from earmark.engine.sources import Player
from earmark.live.session import LiveSession

from boards import Board
from synth import sine

FS = 48000


def engine_with_gain(gain_db: float = 6.0) -> Engine:
    x = sine(-20, 10, dtype=np.float32)
    return Engine(
        FS,
        [
            Path("dry", Player(x, "x")),
            Path("gain", Player(x, "x"), Board([pedalboard.Gain(gain_db)])),
        ],
        loudness_match=False,
    )


class Recorder:
    """A service that records what it was given."""

    tick_hz = 50.0

    def __init__(self) -> None:
        self.ticks: list[float] = []
        self.states: list = []
        self.started = self.stopped = False

    def start(self, session: LiveSession) -> None:
        self.started = True

    def tick(self, session: LiveSession, state) -> None:
        self.ticks.append(time.monotonic())
        self.states.append(state)

    def stop(self, session: LiveSession) -> None:
        self.stopped = True


def test_engine_commands_reach_the_engine_and_the_state_follows():
    engine = engine_with_gain(6.0)
    with LiveSession(engine, tick_hz=20) as session:
        render(engine, 2, 64)
        assert session.post("select", "B")
        render(engine, 1, 64)
        time.sleep(0.2)
        state = session.state()
    assert state.audible == "B"
    assert state.paths[1].readings.integrated_lufs == pytest.approx(-14.0, abs=0.05)
    assert state.paths[0].readings.integrated_lufs == pytest.approx(-20.0, abs=0.05)


def test_a_marker_remembers_the_transport_position():
    engine = engine_with_gain()
    with LiveSession(engine) as session:
        render(engine, 1.5, 64)
        marker = session.call("marker", "chorus in")
        assert marker["t_s"] == pytest.approx(1.5, abs=1e-3)
        assert marker["label"] == "chorus in"
        assert session.markers == [marker]


def test_session_commands_run_on_the_session_thread_and_return_their_result():
    engine = engine_with_gain()
    seen: list[str] = []

    def snapshot(session: LiveSession, label: str) -> int:
        seen.append(threading.current_thread().name)
        return 41 + len(label)

    session = LiveSession(engine)
    assert session.handles("marker") and not session.handles("snapshot")
    session.handle("snapshot", snapshot)
    assert session.handles("snapshot") and not session.handles("select")  # engine's
    with session:
        assert session.call("snapshot", "x") == 42
        assert session.post("snapshot", "yy")
        time.sleep(0.3)
    assert seen == ["earmark-session", "earmark-session"]


def test_services_tick_at_their_rate_with_fresh_state_and_are_stopped():
    engine = engine_with_gain()
    rec = Recorder()
    session = LiveSession(engine, tick_hz=10)
    session.add_service(rec)
    with session:
        time.sleep(1.0)
        render(engine, 1.0, 64)
        time.sleep(0.3)
    assert rec.started and rec.stopped
    # 50 Hz asked: about 65 ticks in 1.3 s (a loaded CI machine may lose some).
    assert 30 <= len(rec.ticks) <= 70
    assert rec.states[-1].callbacks == 750  # 1 s of 64-frame blocks


def test_a_failing_service_is_dropped_and_reported_while_the_others_go_on():
    engine = engine_with_gain()

    class Broken(Recorder):
        def tick(self, session, state):
            raise ZeroDivisionError("boom")

    rec, broken = Recorder(), Broken()
    lines: list[str] = []
    session = LiveSession(engine, say=lines.append)
    session.add_service(broken, "broken")
    session.add_service(rec)
    with session:
        time.sleep(0.5)
    assert len(rec.ticks) >= 10
    assert [s.text for s in session.status] == [
        "broken failed and was stopped: ZeroDivisionError: boom"
    ]
    assert lines == ["earmark: broken failed and was stopped: ZeroDivisionError: boom"]


def test_a_failing_handler_raises_in_the_caller():
    engine = engine_with_gain()
    session = LiveSession(engine)
    session.handle("snapshot", lambda s, label: 1 / 0)
    with session, pytest.raises(ZeroDivisionError):
        session.call("snapshot", "x")


def test_session_command_flood_is_bounded():
    engine = engine_with_gain()
    session = LiveSession(engine)  # not started: nothing drains
    accepted = sum(session.post("marker", str(i)) for i in range(1000))
    assert accepted == 256
    assert session.dropped_commands == 744


def test_stop_stops_the_driver():
    engine = engine_with_gain()
    driver = NullDriver(engine, blocksize=64)
    driver.start()
    session = LiveSession(engine, driver)
    session.run(seconds=0.5)
    blocks = engine.callbacks
    time.sleep(0.2)
    assert engine.callbacks == blocks
    assert blocks == pytest.approx(0.5 * FS / 64, rel=0.15)


def test_services_start_before_the_driver_it_starts():
    engine = engine_with_gain()
    driver = NullDriver(engine, blocksize=64)  # not started: the session starts it

    class Early(Recorder):
        def start(self, session):
            super().start(session)
            self.blocks_at_start = engine.callbacks
            time.sleep(0.2)  # a slow start-up (a worker process, a MIDI port)

    rec = Early()
    session = LiveSession(engine, driver)
    session.add_service(rec)
    session.run(seconds=0.5)
    assert rec.blocks_at_start == 0
    assert driver.status == "stopped"
    # The whole 0.5 s streamed after the services were up.
    assert engine.callbacks == pytest.approx(0.5 * FS / 64, rel=0.15)


def test_a_driver_that_cannot_start_stops_the_services_and_says_why():
    from earmark.engine.drivers import SoundDeviceDriver
    from earmark.live.session import AudioStartError

    engine = engine_with_gain()
    driver = SoundDeviceDriver(engine, device=10_000, blocksize=64)  # no such device
    rec = Recorder()
    session = LiveSession(engine, driver)
    session.add_service(rec)
    with pytest.raises(AudioStartError, match="audio stream did not start"):
        session.start()
    assert rec.started and rec.stopped
    assert engine.callbacks == 0 and not engine.realtime


def test_sigterm_ends_a_session_cleanly_and_keeps_its_log(tmp_path):
    import json
    import os
    import signal
    import subprocess
    import sys

    env = dict(os.environ, EARMARK_HOME=str(tmp_path))
    env.pop("DISPLAY", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "earmark", "demo", "--seconds", "60", "--no-ui", "--session", "t"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen = []
    for line in proc.stderr:  # wait until it streams (JACK or the null sink)
        seen.append(line)
        if "stream open" in line or "null sink" in line:
            break
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=30)
    err = "".join(seen) + err
    assert proc.returncode == 0, err[-2000:]
    assert "stopped after" in err  # the summary of a clean stop
    listing = subprocess.run(
        [sys.executable, "-m", "earmark", "snapshots", "list", "--session", "t", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    labels = [s["label"] for s in json.loads(listing.stdout)]
    assert labels == ["session end"]
