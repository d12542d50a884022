"""The platform monitor (earmark.live.platform_monitor): A and B played as a platform would.

Through a real JACK server (dummy backend): the engine's outputs are wired back to its own
inputs and a live-input path meters what came back, so the loudness asserted is the
loudness that reached the output. Offline: the engine rendered block by block (as the
callback would) for the limiter that is not applied live.
"""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from rich.console import Console

from earmark.engine.drivers import SoundDeviceDriver, render
from earmark.engine.engine import Engine, Path
from earmark.engine.sources import LiveInput, Player
from earmark.live.platform_monitor import PlatformMonitor
from earmark.live.session import LiveSession
from earmark.meters import MeterBank
from earmark.store import snapshots
from earmark.store.report import html as snapshot_html
from earmark.ui.terminal import render_state

from conftest import JackServer
from synth import sine

FS = 48000
INPUT = 2  # the live-input path: what came back from the output


def tone(lufs: float, seconds: float = 40.0) -> Player:
    """A 1 kHz sine on both channels reading ``lufs`` (EBU Tech 3341 case 1, scaled)."""
    return Player(sine(lufs, seconds, fade_s=0.05, dtype=np.float32), f"{lufs:g} LUFS")


def jack_session(jack_server: JackServer, a_lufs: float, b_lufs: float, platform: str):
    engine = Engine(
        FS,
        [Path("A", tone(a_lufs)), Path("B", tone(b_lufs)), Path("input", LiveInput((0, 1)))],
        a=0,
        b=1,
        max_block=1024,
    )
    driver = SoundDeviceDriver(engine, device=jack_server.device(), blocksize=64, channels=(2, 2))
    session = LiveSession(engine, driver, say=None)
    monitor = PlatformMonitor(platform)
    session.add_service(monitor, name="platform monitor")
    session.start()
    jack_server.loopback()
    return session, monitor


def settle(session: LiveSession, a_db: float, b_db: float, timeout_s: float = 10.0) -> None:
    """Wait until the engine's A and B gains reach the platform's (slewed, so not at once)."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        s = session.engine.state()
        if abs(s.match_a_db - a_db) < 0.05 and abs(s.match_b_db - b_db) < 0.05:
            return
        time.sleep(0.1)
    s = session.engine.state()
    raise AssertionError(f"gains {s.match_a_db:.2f}, {s.match_b_db:.2f} dB, not {a_db}, {b_db}")


def output_lufs(session: LiveSession, side: str, seconds: float = 3.0) -> float:
    """Make ``side`` heard, then the integrated loudness of what came back from the output."""
    session.post("select", side)
    time.sleep(0.3)  # the crossfade and the loop settle
    session.post("reset_meters")  # A and B re-measure too: the monitor holds their gains
    time.sleep(seconds)
    value = session.engine.state().paths[INPUT].readings.integrated_lufs
    assert value is not None
    return value


def test_spotify_plays_two_masters_6_lu_apart_both_at_minus_14_lufs(jack_server):
    session, monitor = jack_session(jack_server, -8.0, -14.0, "spotify")
    try:
        settle(session, -6.0, 0.0)
        heard_a = output_lufs(session, "A")
        heard_b = output_lufs(session, "B")
        shown = render_state(session.state(), "test", platform=monitor)
        doc = snapshots.from_session(session, label="platform")
    finally:
        session.stop()
    # Spotify turns the -8 LUFS master down to its -14 LUFS target and leaves the
    # -14 LUFS one alone: measured at the output, both play at -14.
    assert heard_a == pytest.approx(-14.0, abs=0.5)
    assert heard_b == pytest.approx(-14.0, abs=0.5)
    a, b = monitor.paths
    assert (a.side, b.side) == ("A", "B")
    assert a.outcome.gain_db == pytest.approx(-6.0, abs=0.1)
    assert a.outcome.penalty_lu == pytest.approx(6.0, abs=0.1)
    assert b.outcome.penalty_lu == pytest.approx(0.0, abs=0.1)
    assert a.outcome.playback_lufs == pytest.approx(-14.0, abs=0.1)
    # The terminal view names the platform and shows its columns.
    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(shown)
    text = console.file.getvalue()
    assert "platform monitor: playing as Spotify (-14 LUFS)" in text
    assert "platform dB" in text and "penalty LU" in text and "-6.0" in text
    # A snapshot keeps the mode and both outcomes.
    kept = doc["source"]["platform_monitor"]
    assert kept["name"] == "spotify"
    assert [p["side"] for p in kept["paths"]] == ["A", "B"]
    assert kept["paths"][0]["penalty_lu"] == pytest.approx(6.0, abs=0.1)
    assert kept["paths"][0]["applied_db"] == pytest.approx(-6.0, abs=0.1)
    # Its HTML export says so, above every path's platform table.
    page = snapshot_html(doc)
    assert "<h2>Platforms</h2>" in page and "A and B played as Spotify: playing as Spotify" in page


def test_youtube_never_turns_a_quiet_master_up_and_the_command_switches_to_spotify(jack_server):
    session, _ = jack_session(jack_server, -20.0, -8.0, "youtube")
    try:
        settle(session, 0.0, -6.0)
        youtube_a = output_lufs(session, "A")
        # Through the session's command queue, as the P key and the dashboard send it.
        assert session.call("platform_monitor", "spotify") == "spotify"
        settle(session, 6.0, -6.0)  # Spotify raises it: 1 dB of headroom is far away
        spotify_a = output_lufs(session, "A")
        session.post("platform_monitor", "off")
        settle(session, 0.0, -12.0)  # the loudness match again: the louder one down
        off = session.platform_monitor.to_json_dict()
    finally:
        session.stop()
    assert youtube_a == pytest.approx(-20.0, abs=0.5)
    assert spotify_a == pytest.approx(-14.0, abs=0.5)
    assert off is None


def test_a_limiter_platform_is_held_at_its_ceiling_and_says_by_how_much():
    # A -23 LUFS tone with 2 ms bursts peaking at -5 dBTP: Spotify's "loud" setting turns it
    # up 12 dB to -11 LUFS and limits the peaks at -1 dBTP. No limiter runs live, so
    # the gain stops at +4 dB (peaks at -1 dBTP) and the monitor says what it held back.
    t = np.arange(12 * FS) / FS
    x = 10 ** (-23 / 20) * np.sin(2 * np.pi * 1000.0 * t)
    n = int(0.002 * FS)
    for start in range(FS // 2 + 12, len(t) - n, FS):
        x[start : start + n] += (
            (10 ** (-5 / 20) - 10 ** (-23 / 20))
            * np.hanning(n)
            * np.sin(2 * np.pi * 1000.0 * t[start : start + n])
        )
    master = np.column_stack([x, x]).astype(np.float32)
    engine = Engine(FS, [Path("loud", Player(master, "m")), Path("B", tone(-30.0, 12))], b=1)
    session = LiveSession(engine, say=None)  # not started: ticked here, rendered here
    monitor = PlatformMonitor("spotify-loud", slew_db_per_s=1e5)
    monitor.start(session)
    chunks = []
    for _ in range(20):
        chunks.append(render(engine, 0.5))
        monitor.tick(session, engine.state())
    out = np.concatenate(chunks[10:])  # the last 5 s, the gain long settled
    readings = engine.state().paths[0].readings
    a = monitor.paths[0]
    assert a.outcome.limited and a.outcome.gain_db == pytest.approx(
        -11.0 - readings.integrated_lufs, abs=0.01
    )
    assert a.applied_db == pytest.approx(-1.0 - readings.true_peak_dbtp, abs=0.01)
    assert a.held_back_db == pytest.approx(a.outcome.gain_db - a.applied_db, abs=0.01)
    assert a.held_back_db > 6.0
    # Measured at the output: peaks at the platform's ceiling, never above it.
    bank = MeterBank(2, FS)
    bank.process(out)
    heard = bank.readings()
    assert heard.true_peak_dbtp == pytest.approx(-1.0, abs=0.2)
    assert heard.integrated_lufs == pytest.approx(readings.integrated_lufs + a.applied_db, abs=0.2)
    note = monitor.note()
    assert "limiter not applied: A plays" in note and "above -1 dBTP" in note


def test_the_state_frame_carries_each_sides_platform_gain_loudness_and_penalty(
    tmp_path, monkeypatch
):
    from earmark.live.publisher import DashboardService
    from earmark.ui.stateframe import StateFrameReader

    monkeypatch.setenv("EARMARK_HOME", str(tmp_path))
    engine = Engine(FS, [Path("loud", tone(-8.0, 6)), Path("quiet", tone(-20.0, 6))], b=1)
    session = LiveSession(engine, say=None)  # not started: ticked here, rendered here
    monitor = PlatformMonitor("youtube", slew_db_per_s=1e5)
    service = DashboardService()
    monitor.start(session)
    service.start(session)
    try:
        render(engine, 3.0)
        monitor.tick(session, engine.state())
        render(engine, 0.1)  # the engine takes the gains at its next block
        service.tick(session, engine.state())
        frame = StateFrameReader(service.writer.name).read()
    finally:
        service.stop(session)
    assert frame.h("platform_monitor") == 1.0
    assert frame.info["platform_monitor"]["name"] == "youtube"
    assert frame.info["platform_monitor"]["note"] == "playing as YouTube (-14 LUFS)"
    loud, quiet = frame.paths[0], frame.paths[1]
    assert loud["platform_gain_db"] == pytest.approx(-6.0, abs=0.05)
    assert loud["platform_lufs"] == pytest.approx(-14.0, abs=0.05)
    assert loud["platform_penalty_lu"] == pytest.approx(6.0, abs=0.05)
    # YouTube never turns up: the -20 LUFS path keeps its level and pays no penalty.
    assert quiet["platform_gain_db"] == 0.0 and quiet["platform_penalty_lu"] == 0.0
    assert quiet["platform_lufs"] == pytest.approx(-20.0, abs=0.05)
    assert frame.h("match_a_db") == pytest.approx(-6.0, abs=0.05)  # what the engine applies
    assert frame.h("match_b_db") == pytest.approx(0.0, abs=1e-6)
