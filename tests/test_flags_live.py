"""Live flags: the FlagService in a real LiveSession over the real engine and meters.

The engine is driven block by block here exactly as a driver's callback drives it
(the NullDriver does the same at real-time pace); the service ticks every 100 ms
of audio, as the session thread does.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
from rich.console import Console

from earmark.live import audio as live
from earmark.live.flags import FlagService
from earmark.live.session import LiveSession
from earmark.meters.detectors import detect
from earmark.profiles import load_profile
from earmark.ui.terminal import render_state

FS = 48000
BLOCK = 480  # 10 ms


def run_demo(seconds: float, profile: str, ticks_every: int = 10, on_tick=None):
    engine = live.demo_engine(FS, "gentle-master", material_s=30.0, blocksize=BLOCK)
    session = LiveSession(engine, None, profile=load_profile(profile))
    service = FlagService(befores={1: 0, 2: 0})
    service.start(session)
    service.wait_ready()  # faster than real time: judge from the first tick
    out = np.zeros((BLOCK, 2), dtype=np.float32)
    for k in range(int(seconds * FS / BLOCK)):
        engine.process(None, out, BLOCK)
        if k % ticks_every == ticks_every - 1:
            service.tick(session, None)
            if on_tick is not None:
                on_tick(session, (k + 1) * BLOCK / FS)
    return engine, session, service


def test_live_demo_flags_the_master_and_not_the_mix():
    seen_open = {}

    def watch(session, t):
        for f in session.flags:
            if f["open"] and f["path"] == 2:
                seen_open.setdefault(f["code"], t)

    engine, session, service = run_demo(30.0, "jazz", on_tick=watch)
    # While streaming, the master's overs were flagged within seconds of the start.
    assert seen_open["true_peak_over"] <= 2.0
    assert seen_open["over_compression"] <= 12.0
    service.stop(session)
    by_path = {i: {f["code"] for f in session.flags if f["path"] == i} for i in range(3)}
    assert by_path[0] == set()  # the dry mix is clean under jazz
    assert {"true_peak_over", "collapsed_dynamics", "crushed_transients"} <= by_path[2]
    assert "clipping" not in by_path[2]  # inter-sample overs only: true_peak_over's fact
    assert all(not f["open"] for f in session.flags)  # stopped: every flag closed
    # Against the dry mix (BEFORE) the master's transients are shown to be crushed.
    crushed = [f for f in session.flags if f["path"] == 2 and f["code"] == "crushed_transients"]
    assert any("against the BEFORE version" in f["message"] for f in crushed)
    # The live flags are exactly those the detector gives on the same rows offline.
    profile = load_profile("jazz")
    rows = [p.bank.history() for p in engine.paths]
    for i in range(3):
        before = rows[0] if i else None
        offline = [f.to_dict() for f in detect(rows[i], profile, FS, 2, before=before)]
        live_flags = [
            {k: v for k, v in f.items() if k not in ("path", "open")}
            for f in session.flags
            if f["path"] == i
        ]
        key = lambda f: (f["start_s"], f["code"], str(f["band_hz"]))  # noqa: E731
        assert sorted(live_flags, key=key) == sorted(offline, key=key), i


def test_reset_meters_starts_the_detectors_afresh():
    engine, session, service = run_demo(6.0, "default")
    assert any(f["path"] == 2 for f in session.flags)
    engine.post("reset_meters")
    out = np.zeros((BLOCK, 2), dtype=np.float32)
    engine.process(None, out, BLOCK)  # the reset applies at the next block
    service.tick(session, None)
    assert session.flags == []
    assert service.rows_sent == [0, 0, 0]  # the worker's detectors start afresh


def test_the_terminal_view_lists_the_open_flags():
    engine, session, _ = run_demo(8.0, "jazz")
    console = Console(width=200, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(render_state(engine.state(), "earmark demo", session.flags))
    text = console.export_text()
    assert "B AI master (reference): !! true_peak_over" in text
    assert "dBTP" in text


def test_session_profile_is_the_resolved_profile_and_bad_profiles_are_usage_errors(tmp_path):
    engine = live.demo_engine(FS, "gentle-master", material_s=5.0, blocksize=BLOCK)
    session = LiveSession(engine, None, profile="pop+spotify")
    FlagService().start(session)
    assert session.profile.name == "pop+spotify"
    assert session.profile.dashboard_targets()["target_lufs"] == -14.0
    env = {**os.environ, "EARMARK_HOME": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "earmark", "demo", "--no-ui", "--seconds", "1", "--profile", "nosuch"],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "--profile: no profile named 'nosuch'" in proc.stderr


def test_a_live_session_grows_one_flag_per_episode_and_the_terminal_shows_it_once():
    import earmark
    from earmark.engine.engine import Engine, Path
    from earmark.engine.sources import Player

    import material

    x = material.with_bursts(material.SEVEN_PLACES)  # clips at 7 places, 23.0-59.2 s
    engine = Engine(FS, [Path("seven", Player(x, "seven"))], a=0, b=0, loudness_match=False)
    session = LiveSession(engine, None, profile=load_profile("default"))
    service = FlagService()
    service.start(session)
    service.wait_ready()  # faster than real time: judge from the first tick
    out = np.zeros((BLOCK, 2), dtype=np.float32)
    grown = []  # the clipping flag's (start, occurrences) after each tick that had one
    for k in range(int(60.0 * FS / BLOCK)):
        engine.process(None, out, BLOCK)
        if k % 10 == 9:
            service.tick(session, None)
            grown += [
                (f["start_s"], len(f["occurrences"]))
                for f in session.flags
                if f["code"] == "clipping"
            ]
        if k == int(56.0 * FS / BLOCK):  # after the worst place, while the flag is open
            console = Console(width=250, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
            console.print(render_state(engine.state(), "seven", session.flags))
            text = console.export_text()
    service.stop(session)
    # One flag, one identity, growing a place at a time as the clips came.
    assert {start for start, _ in grown} == {23.0}
    assert sorted({n for _, n in grown}) == list(range(1, 8))
    (clip,) = [f for f in session.flags if f["code"] == "clipping"]
    assert len(clip["occurrences"]) == 7 and not clip["open"]
    # The same flags as analyze gives on the same audio.
    offline = earmark.analyze(x, sample_rate=FS, profile="default").flags
    assert [{k: v for k, v in f.items() if k not in ("path", "open")} for f in session.flags] == [
        dict(f) for f in offline
    ]
    # The terminal view: one line for the group, with its count and worst so far.
    assert text.count("clipping") == 1
    assert "!! clipping 6 times, worst +4.0 dBFS (from 23.0 s)" in text
