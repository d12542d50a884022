"""The live engine through a real JACK server (dummy backend) via PortAudio.

The engine's outputs are wired back to its own inputs with jack_connect, and a
live-input path meters what came back: so these tests check what the whole
chain -> mix -> monitor -> JACK -> input path really delivers, with the same
meters an engineer reads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path as Path_

import numpy as np
import pedalboard
import pytest

from earmark.engine.drivers import SoundDeviceDriver
from earmark.engine.engine import Engine, Path
from earmark.engine.sources import LiveInput, Player

from boards import Board
from conftest import JACKD_DUMMY, JackServer
from synth import sine

FS = 48000


def start(jack_server: JackServer, engine: Engine) -> SoundDeviceDriver:
    driver = SoundDeviceDriver(engine, device=jack_server.device(), blocksize=64, channels=(2, 2))
    driver.start()
    jack_server.loopback()
    return driver


def live_lufs(engine: Engine, seconds: float, path: int = -1) -> float:
    """Reset the meters, let ``seconds`` of audio through, read the live-input path."""
    time.sleep(0.3)  # the loop and any crossfade settle
    engine.post("reset_meters")
    time.sleep(seconds)
    return engine.state().paths[path].readings.integrated_lufs


def test_a_tone_through_jack_reads_its_loudness_live(jack_server):
    tone = sine(-23, 20, dtype=np.float32)
    engine = Engine(
        FS,
        [Path("tone", Player(tone, "tone")), Path("input", LiveInput((0, 1)))],
        a=0,
        b=0,
        max_block=1024,
    )
    driver = start(jack_server, engine)
    try:
        measured = live_lufs(engine, 3.0)
    finally:
        driver.stop()
    assert measured == pytest.approx(-23.0, abs=0.05)
    assert engine.state().callbacks > 2.5 * FS / 64
    # Metered by the driver's MeterThread from the callback's feeds, nothing skipped.
    assert engine.state().meter_skipped_frames == 0
    assert engine.paths[0]._metered == engine.paths[0]._fed[0]  # all of it, after the stop


def test_after_callback_returns_just_after_a_block_and_at_once_without_a_stream(jack_server):
    engine = Engine(FS, [Path("tone", Player(sine(-20, 5, dtype=np.float32), "tone"))], b=0)
    t0 = time.monotonic()
    assert engine.after_callback() is False  # no real-time driver: nothing to wait for
    assert time.monotonic() - t0 < 0.005
    driver = start(jack_server, engine)
    try:
        time.sleep(0.2)
        seen = []
        for _ in range(50):
            before = int(engine._tap_pos[1])
            assert engine.after_callback() is True
            seen.append(int(engine._tap_pos[1]) - before)
    finally:
        driver.stop()
    assert engine.after_callback() is False
    # Each wait ended on the block that completed after it began (rarely two, when the
    # poll's 0.1 ms sleep overlapped the next block).
    assert all(n in (64, 128) for n in seen), seen
    assert seen.count(64) >= 45


def test_gain_chain_and_a_b_switch_measured_at_the_output(jack_server):
    tone = sine(-20, 30, dtype=np.float32)
    paths = [
        Path("dry", Player(tone, "tone")),
        Path("+6 dB", Player(tone, "tone"), Board([pedalboard.Gain(gain_db=6.0)])),
        Path("input", LiveInput((0, 1))),
    ]
    engine = Engine(FS, paths, a=1, b=0, loudness_match=False, max_block=1024)
    driver = start(jack_server, engine)
    try:
        chain_out = live_lufs(engine, 2.0)
        engine.post("select", "B")
        dry_out = live_lufs(engine, 2.0)
        engine.post("match", True)
        engine.post("select", "A")
        time.sleep(0.5)
        matched_a = live_lufs(engine, 2.0)
        engine.post("select", "B")
        matched_b = live_lufs(engine, 2.0)
        state = engine.state()
    finally:
        driver.stop()
    assert chain_out == pytest.approx(-14.0, abs=0.05)
    assert dry_out == pytest.approx(-20.0, abs=0.05)
    assert abs(matched_a - matched_b) <= 0.5
    assert state.match_a_db == pytest.approx(-6.0, abs=0.2)  # A was the louder one
    jack_server.note(f"engine A/B on JACK: {state.callbacks} blocks, {state.xruns} xruns")


_LOSS_SCENARIO = """
import json, os, subprocess, sys, time
sys.path.insert(0, {tests!r})
from synth import sine
import numpy as np
from earmark.engine.drivers import SoundDeviceDriver
from earmark.engine.engine import Engine, Path
from earmark.engine.sources import Player
from earmark.live.session import LiveSession
jackd, name = {jackd!r}, {name!r}
engine = Engine(48000, [Path("tone", Player(sine(-20, 30, dtype=np.float32), "tone"))], max_block=1024)
driver = SoundDeviceDriver(engine, blocksize=64, channels=(0, 2), reopen_interval_s=0.3)
session = LiveSession(engine, driver, say=None)  # the driver's events become status lines
driver.start()
time.sleep(1.0)
before = engine.callbacks
subprocess.run([jackd, "stop", name], check=True, capture_output=True)
t0 = time.monotonic()
while not driver.status.startswith("device lost") and time.monotonic() - t0 < 5:
    time.sleep(0.05)
noticed_s = time.monotonic() - t0
lost_blocks = engine.callbacks
duration_lost = engine.state().paths[0].readings.duration_s
time.sleep(0.5)
subprocess.run([jackd, "start", name], check=True, capture_output=True)
t2 = time.monotonic()
while driver.status != "streaming" and time.monotonic() - t2 < 10:
    time.sleep(0.05)
reopen_s = time.monotonic() - t2
ports = subprocess.run(["jack_lsp"], capture_output=True, text=True).stdout.split()
at_reopen = engine.callbacks
time.sleep(1.0)
blocks_after = engine.callbacks - at_reopen
events = [(st.source, st.text) for st in session.status]
t1 = time.monotonic()
driver.stop()
stop_s = time.monotonic() - t1
r = engine.state().paths[0].readings
print(json.dumps(dict(before=before, noticed_s=noticed_s, reopen_s=reopen_s, stop_s=stop_s,
                      events=events, lufs=r.integrated_lufs, ports=ports,
                      lost_blocks=lost_blocks, blocks_after=blocks_after,
                      duration_lost=duration_lost, duration_end=r.duration_s,
                      reopens=driver.reopens, status=driver.status)), flush=True)
os._exit(0)
"""


def test_a_lost_audio_server_is_reported_and_the_stream_reopens_when_it_returns(jack_server):
    # A real fault: the JACK server disappears mid-stream, then comes back. The
    # scenario runs in a child process on its own server, so that the dead
    # PortAudio instance it leaves behind stays out of this process.
    name = f"earmark-loss-{os.getpid()}"
    subprocess.run(
        [str(JACKD_DUMMY), "start", name, str(FS), "64"], check=True, capture_output=True
    )
    env = dict(os.environ, JACK_DEFAULT_SERVER=name)
    code = _LOSS_SCENARIO.format(
        tests=str(Path_(__file__).parent), jackd=str(JACKD_DUMMY), name=name
    )
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
        )
    finally:
        subprocess.run([str(JACKD_DUMMY), "stop", name], capture_output=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["before"] > 100  # it was streaming (the first second includes start-up)
    assert result["noticed_s"] < 2.0  # the loss is noticed within a couple of seconds
    assert result["stop_s"] < 2.0  # and stopping afterwards does not hang
    assert [src for src, _ in result["events"]] == ["audio"] * 3  # shown in the views
    assert result["events"][0][1].startswith("stream open")
    assert "lost" in result["events"][1][1]
    # The server came back: a new stream is open on it and runs in real time.
    assert result["reopens"] == 1
    assert "reopened" in result["events"][2][1]
    assert result["reopen_s"] < 3.0
    assert any(p.startswith("PortAudio") for p in result["ports"])
    assert result["blocks_after"] == pytest.approx(FS / 64, rel=0.2)
    # The meters kept integrating across the gap: nothing measured was lost.
    assert result["duration_end"] > result["duration_lost"] + 0.8
    assert result["lufs"] == pytest.approx(-20.0, abs=0.05)
