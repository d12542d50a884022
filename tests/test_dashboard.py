"""The dashboard: the session's publisher, and the real window under Xvfb.

The publisher tests run a real engine (real pedalboard processing of signals
whose loudness is known by construction: a 1 kHz stereo sine at -20 dBFS
reads -20.0 LUFS, EBU Tech 3341 case 1; +6 dB of pedalboard Gain makes it
-14.0) through a real LiveSession and DashboardService, and read the state
frame back the way a dashboard does.

The window tests start Xvfb (``-displayfd``), stream the same engine in real
time (NullDriver) and run the real Dear PyGui dashboard in a subprocess
(tests/dashboard_probe.py), so an abort cannot take the suite down. They read
item values with ``dpg.get_value`` and pixels from ``dpg.output_frame_buffer``,
and press keys and click with real X input events (XTEST).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import signal
import stat
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path as FsPath

import numpy as np
import pytest

from earmark.engine.chains import ChainSpec, PluginSpec, build_chain
from earmark.engine.drivers import NullDriver, render
from earmark.engine.engine import Engine, Path
from earmark.engine.sources import Player
from earmark.live.platform_monitor import PlatformMonitor
from earmark.live.publisher import DashboardService, find_sessions, profile_info
from earmark.live.session import LiveSession
from earmark.ui.stateframe import CommandSender, Layout, StateFrameReader, StateFrameWriter

from synth import sine

FS = 48000
ROOT = FsPath(__file__).resolve().parents[1]
PROBE = ROOT / "tests" / "dashboard_probe.py"


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("EARMARK_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def gain_chain(*gains_db: float):
    spec = ChainSpec(
        "plus six", plugins=tuple(PluginSpec.builtin("Gain", gain_db=g) for g in gains_db)
    )
    return build_chain(spec, FS, 2)


def sine_engine(chain=None, seconds: float = 10.0) -> Engine:
    """B: a 1 kHz sine at -20 dBFS (-20.0 LUFS); A: the same through ``chain``."""
    x = sine(-20, seconds, dtype=np.float32)
    chain = chain if chain is not None else gain_chain(6.0)
    return Engine(
        FS,
        [Path("dry sine", Player(x, "sine")), Path("sine +6 dB", Player(x, "sine"), chain)],
        a=1,
        b=0,
        loudness_match=False,
    )


def publish(service: DashboardService, session: LiveSession, engine: Engine) -> None:
    """One session-thread tick with a fresh engine state (what the 10 Hz refresh does)."""
    service.tick(session, engine.state())


# -- the publisher ----------------------------------------------------------------------------


def test_the_frame_carries_the_engine_s_readings_history_spectrum_and_goniometer(home):
    engine = sine_engine()
    session = LiveSession(engine, name="frame test")
    service = DashboardService()
    service.start(session)
    try:
        out = render(engine, 6.0, 64)
        publish(service, session, engine)
        frame = StateFrameReader(service.writer.name).read()
    finally:
        service.stop(session)
    a, b = frame.paths[1], frame.paths[0]
    assert (frame.h("a"), frame.h("b"), frame.h("audible")) == (1, 0, 0)
    assert a["short_term_lufs"] == pytest.approx(-14.0, abs=0.05)
    assert a["integrated_lufs"] == pytest.approx(-14.0, abs=0.05)
    assert b["short_term_lufs"] == pytest.approx(-20.0, abs=0.05)
    assert a["true_peak_dbtp"] == pytest.approx(-14.0, abs=0.1)
    assert a["psr_db"] == pytest.approx(0.0, abs=0.15)  # a sine's peak sits 0 dB over its loudness
    assert frame.info["paths"][1]["name"] == "sine +6 dB"
    assert frame.info["paths"][1]["chain"]["plugins"][0]["params"] == [["gain", 6.0, "dB"]]
    # 10 Hz history: 6 s is 60 rows, the last ones at -14.
    assert len(a.history_t_s) == 60
    assert a.history_t_s[-1] == pytest.approx(6.0)
    assert a.history["short_term_lufs"][-1] == pytest.approx(-14.0, abs=0.05)
    assert np.isnan(a.history["short_term_lufs"][0])  # undefined before 3 s
    # The sine lands in its 1/3-octave band at its level (sine-referenced dB).
    k = list(a.band_hz).index(1000.0)
    assert a.spectrum_short_db[k] == pytest.approx(-14.0, abs=0.2)
    # The goniometer: the last 8192 A frames, one in four, equal to what was played.
    assert len(a.gonio) == 2048
    np.testing.assert_array_equal(a.gonio, out[-8192::4])
    assert len(b.gonio) == 2048
    np.testing.assert_allclose(b.gonio * 10 ** (6 / 20), out[-8192::4], rtol=1e-5, atol=1e-6)


def test_dashboard_commands_reach_the_engine_and_unknown_ones_are_reported(home):
    engine = sine_engine()
    session = LiveSession(engine, name="commands")
    service = DashboardService()
    service.start(session)
    sender = CommandSender(service.inbox.path)
    try:
        render(engine, 0.5, 64)
        assert sender.send("select", "toggle")
        assert sender.send("monitor", {"dim": True, "format": "c:"})
        assert sender.send("format_disk")
        assert sender.send("marker", "chorus")
        publish(service, session, engine)
        session._run_commands()  # the session thread's turn for session commands
        render(engine, 0.1, 64)
        state = engine.state()
    finally:
        service.stop(session)
    assert state.audible == "B"
    assert state.monitor["dim"] is True and "format" not in state.monitor
    assert [m["label"] for m in session.markers] == ["chorus"]
    assert any("'format_disk' is not available" in s.text for s in session.status)


def test_bypassing_a_whole_chain_and_restoring_it_keeps_the_plugins_own_bypass(home):
    chain = gain_chain(6.0, -3.0)
    engine = sine_engine(chain)
    session = LiveSession(engine, name="bypass")
    service = DashboardService()
    service.start(session)
    sender = CommandSender(service.inbox.path)

    def loudness_after_reset() -> float:
        engine.post("reset_meters")
        render(engine, 3.5, 64)
        return engine.state().paths[1].readings.short_term_lufs

    try:
        sender.send("bypass", 1, 1, True)  # the -3 dB plugin alone
        publish(service, session, engine)
        session._run_commands()
        only_plus_six = loudness_after_reset()
        sender.send("bypass", 1, None, True)  # the whole chain
        publish(service, session, engine)
        session._run_commands()
        whole = list(chain.bypassed)
        dry = loudness_after_reset()
        publish(service, session, engine)
        shown = StateFrameReader(service.writer.name).read().info["paths"][1]["chain"]
        sender.send("bypass", 1, None, False)
        publish(service, session, engine)
        session._run_commands()
        restored = list(chain.bypassed)
    finally:
        service.stop(session)
    assert only_plus_six == pytest.approx(-14.0, abs=0.05)
    assert whole == [True, True]
    assert dry == pytest.approx(-20.0, abs=0.05)
    assert shown["bypassed"] is True
    assert restored == [False, True]


def test_true_peak_hold_and_overs_count_excursions_above_the_ceiling_until_reset(home):
    # Three 50 ms bursts to -0.5 dBFS on a -20 dBFS sine, 1 s apart: three overs of -1 dBTP.
    x = sine(-20, 4.0, dtype=np.float32)
    for start_s in (1.0, 2.0, 3.0):
        i = int(start_s * FS)
        x[i : i + int(0.05 * FS)] *= np.float32(10 ** (19.5 / 20))
    engine = Engine(FS, [Path("bursts", Player(x, "bursts"))], a=0, b=0, loudness_match=False)
    session = LiveSession(engine, name="holds")
    service = DashboardService()
    service.start(session)
    try:
        for _ in range(38):  # the session polls at 10 Hz
            render(engine, 0.1, 64)
            publish(service, session, engine)
        held = StateFrameReader(service.writer.name).read().paths[0]
        session.call("reset_holds")
        render(engine, 0.1, 64)
        publish(service, session, engine)
        after = StateFrameReader(service.writer.name).read().paths[0]
    finally:
        service.stop(session)
    assert held["overs"] == 3
    assert held["true_peak_hold_dbtp"] == pytest.approx(-0.5, abs=0.1)
    assert after["overs"] == 0
    assert after["true_peak_hold_dbtp"] == pytest.approx(-20.0, abs=0.1)  # the sine alone


def test_the_session_address_is_private_and_removed_when_the_session_stops(home):
    engine = sine_engine()
    session = LiveSession(engine, name="address")
    service = DashboardService()
    service.start(session)
    try:
        found = find_sessions()
        run = home / "run"
        modes = {
            "folder": stat.S_IMODE(os.stat(run).st_mode),
            "file": stat.S_IMODE(os.stat(service.run_file).st_mode),
            "socket": stat.S_IMODE(os.stat(service.inbox.path).st_mode),
        }
    finally:
        service.stop(session)
    assert [s["session"] for s in found] == ["address"]
    assert found[0]["pid"] == os.getpid()
    assert modes == {"folder": 0o700, "file": 0o600, "socket": 0o600}
    assert find_sessions() == []
    assert list(run.iterdir()) == []


def test_profile_targets_reach_the_frame_from_a_mapping_or_attributes():
    class Jazz:
        name = "jazz"
        target_lufs = -16.0
        true_peak_ceiling_dbtp = -1.0
        psr_min_db = 12.0

    assert profile_info(Jazz())["psr_min_db"] == 12.0
    assert profile_info(Jazz())["ceiling_dbtp"] == -1.0
    assert profile_info({"name": "pop", "target_lufs": -9.0})["target_lufs"] == -9.0
    assert profile_info(None) is None


def test_a_harsh_band_s_label_gives_each_edge_its_unit():
    from earmark.meters.flags import band_text

    assert band_text(2000.0, 5000.0) == "2-5 kHz"
    assert band_text(500.0, 2000.0) == "500 Hz-2 kHz"  # was "500 Hz-2" (issue 18)
    assert band_text(200.0, 500.0) == "200-500 Hz"


# -- the window under Xvfb -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def xvfb():
    """A private X server; its display number is read from -displayfd up to the newline."""
    read_fd, write_fd = os.pipe()
    try:
        proc = subprocess.Popen(
            ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1920x1080x24", "-nolisten",
             "tcp"],
            pass_fds=(write_fd,),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
    except FileNotFoundError:
        pytest.fail("Xvfb is not installed: run scripts/bootstrap (Debian package xvfb)")
    os.close(write_fd)
    number = b""
    deadline = time.monotonic() + 20
    while not number.endswith(b"\n"):
        if not select.select([read_fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
            proc.kill()
            pytest.fail("Xvfb did not report a display number within 20 s")
        chunk = os.read(read_fd, 32)
        if not chunk:
            pytest.fail(f"Xvfb exited with {proc.wait()} before reporting a display")
        number += chunk
    os.close(read_fd)
    try:
        yield f":{number.decode().strip()}"
    finally:
        proc.terminate()
        proc.wait(10)


class Window:
    """The dashboard probe subprocess: one JSON request, one JSON answer."""

    def __init__(self, display: str, frame: str, commands: str) -> None:
        env = dict(os.environ, DISPLAY=display)
        self.proc = subprocess.Popen(
            [sys.executable, str(PROBE), frame, commands],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        self.buf = b""
        assert self._line(30.0) == {"ready": True}

    def _line(self, timeout: float) -> dict:
        fd = self.proc.stdout.fileno()
        end = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = end - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError(f"the dashboard did not answer in {timeout} s")
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                raise RuntimeError(f"the dashboard exited with {self.proc.wait()}")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def call(self, op: str, timeout: float = 20.0, **kw) -> dict:
        self.proc.stdin.write((json.dumps({"op": op, **kw}) + "\n").encode())
        self.proc.stdin.flush()
        return self._line(timeout)

    def text(self, tag: str) -> str:
        item = self.call("values", tags=[tag])[tag]
        return None if item is None else item["value"]

    def label(self, tag: str) -> str:
        return self.call("values", tags=[tag])[tag]["label"]

    def until(self, what, timeout: float = 15.0, every: float = 0.1):
        """Poll ``what(self)`` until it returns something truthy."""
        end = time.monotonic() + timeout
        while True:
            got = what(self)
            if got:
                return got
            if time.monotonic() > end:
                raise AssertionError(f"not reached within {timeout} s; last {got!r}")
            time.sleep(every)

    def pixels(self, tmp: FsPath) -> np.ndarray:
        path = tmp / f"frame-{time.monotonic_ns()}.npy"
        self.call("framebuffer", path=str(path))
        return np.load(path)

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(TimeoutError, RuntimeError, BrokenPipeError):
                self.call("quit", timeout=5)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class Rig:
    """A real-time session (NullDriver) on the sine engine, publishing its frame."""

    def __init__(self) -> None:
        self.chain = gain_chain(6.0)
        self.engine = sine_engine(self.chain)
        self.driver = NullDriver(self.engine, blocksize=256)
        self.session = LiveSession(self.engine, self.driver, name="gui test")
        self.service = DashboardService()
        self.session.add_service(self.service, name="dashboard")
        self.session.add_service(PlatformMonitor(), name="platform monitor")  # off: P turns it on
        self.driver.start()
        self.session.start()


@pytest.fixture(scope="module")
def rig(xvfb, tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("EARMARK_HOME", str(tmp_path_factory.mktemp("home")))
    rig = Rig()
    win = Window(xvfb, rig.service.writer.name, str(rig.service.inbox.path))
    rig.window = win
    rig.display = xvfb
    try:
        yield rig
    finally:
        win.close()
        rig.session.stop()
        mp.undo()


def colour_rows(column: np.ndarray, rgb: tuple[int, int, int], tol: int = 6) -> np.ndarray:
    """Row indices of a pixel column whose colour is within ``tol`` of ``rgb``."""
    return np.nonzero(np.all(np.abs(column.astype(int) - rgb) <= tol, axis=1))[0]


def test_the_s_bar_of_a_minus_14_lufs_path_reaches_the_line_where_minus_14_is_drawn(rig, tmp_path):
    from earmark.ui.dashboard.style import A_COL, B_COL, TICK, dimmed

    win = rig.window
    win.until(lambda w: w.text("em_val_S_A") == "−14.0" and w.text("em_val_S_B") == "−20.0")
    assert win.text("em_val_I_A") == "−14.0"
    assert win.text("em_state_I_A") == "OK"  # the -14 LUFS default target, ±1 LU
    assert win.text("em_state_I_B") == "PROBLEM"  # 6 LU under it
    geo = win.call("geometry")
    img = win.pixels(tmp_path)
    (x0, y0) = geo["em_meters"]["min"]
    # The scale's tick lines, found in the gap left of the bars: 0, -6, ... -42 LUFS.
    gap = img[:, int(x0) + 46]
    lines = colour_rows(gap, TICK, tol=2)
    lines = lines[(lines > y0) & (lines < y0 + geo["em_meters"]["size"][1])]
    assert len(lines) == 8  # crisp one-pixel lines, 0 to -42 LUFS
    y_minus_12, y_minus_18 = lines[2], lines[3]
    y_minus_14 = y_minus_12 + (y_minus_18 - y_minus_12) * 2 / 6
    y_minus_20 = y_minus_18 + (lines[4] - y_minus_18) * 2 / 6
    # The top of A's S bar (the audible path: full colour) and of B's (dimmed).
    meter = img[int(y0) : int(y0 + geo["em_meters"]["size"][1])]
    ax0, ax1 = geo["bars"]["AS"]
    top_a = y0 + colour_rows(meter[:, int(x0 + (ax0 + ax1) / 2)], A_COL, tol=3)[0]
    bx0, bx1 = geo["bars"]["BS"]
    top_b = y0 + colour_rows(meter[:, int(x0 + (bx0 + bx1) / 2)], dimmed(B_COL, 0.6), tol=3)[0]
    assert abs(top_a - y_minus_14) <= 1.0
    assert abs(top_b - y_minus_20) <= 1.0


def test_a_mono_sine_draws_a_vertical_line_on_both_goniometers(rig, tmp_path):
    """L = R puts every point on the mid axis; the auto-gain spreads it over the scope."""
    win = rig.window
    geo = win.call("geometry")
    img = win.pixels(tmp_path).astype(int)
    for side, lit in (
        ("A", lambda p: (p[..., 2] > p[..., 0] + 60) & (p[..., 2] > 90)),  # blue trace
        ("B", lambda p: (p[..., 0] > p[..., 2] + 50) & (p[..., 0] > 70)),  # orange trace
    ):
        (x0, y0), (w, h) = geo[f"em_gonio_{side}"]["min"], geo[f"em_gonio_{side}"]["size"]
        scope = img[int(y0) : int(y0 + h - 20), int(x0) : int(x0 + w)]  # above the label
        ys, xs = np.nonzero(lit(scope))
        assert len(xs) > 30, side
        assert np.all(np.abs(xs - (w - 1) / 2) <= 2.0), (side, sorted(set(xs.tolist())))
        assert ys.max() - ys.min() > 0.6 * (h - 20), side


def lane_a_row(win, tmp_path) -> tuple[np.ndarray, float, float, float]:
    """The flag lane's A row as drawn: its pixels across the plot area, and the area's
    left edge, its pixels per second and its first second."""
    from earmark.ui.dashboard.style import PLOT_BG

    time.sleep(0.3)  # one more history update so the lane shows what changed
    lo, hi = win.call("limits", axis="em_lane_x")["limits"]
    geo = win.call("geometry")
    img = win.pixels(tmp_path)
    (px, py), (pw, ph) = geo["em_lane_plot"]["min"], geo["em_lane_plot"]["size"]
    # The lane's plot area: the plot background's extent along the empty B row.
    b_row = img[int(py + ph * 0.62), int(px) : int(px + pw)]
    inside = np.nonzero(np.all(np.abs(b_row.astype(int) - PLOT_BG) <= 2, axis=1))[0]
    left, right = px + inside[0], px + inside[-1] + 1
    a_row = img[int(py + ph * 0.30), int(left) : int(right)]
    return a_row, left, (right - left) / (hi - lo), lo


def test_a_flag_appears_in_the_list_and_on_the_timeline_lane_where_it_happened(rig, tmp_path):
    win = rig.window
    while (now := rig.engine.state().paths[1].readings.duration_s) < 8.0:
        time.sleep(0.1)
    flag = {
        "code": "over_compression",
        "severity": "problem",
        "start_s": round(now - 6.0, 1),
        "end_s": round(now - 2.0, 1),
        "value": 5.8,
        "threshold": 8.0,
        "unit": "dB",
        "band_hz": None,
        "message": "PSR stayed below 8 dB for 4.0 s (min 5.8 dB)",
        "path": 1,
    }
    rig.session.flags.append(flag)
    win.until(lambda w: w.text("em_flag_code_0") == "over_compression")
    assert win.label("em_flag_0") == "PROBLEM"
    assert win.text("em_flag_path_0") == "A"
    assert win.text("em_flag_msg_0") == flag["message"]
    # The A row: the flag's shading from start_s to end_s.
    a_row, left, scale, lo = lane_a_row(win, tmp_path)
    red = np.nonzero((a_row[:, 0] > 150) & (a_row[:, 1] < 110) & (a_row[:, 2] < 110))[0]
    assert red.size, (left, scale, np.unique(a_row.reshape(-1, 3), axis=0)[:8])
    assert abs(left + red[0] - (left + (flag["start_s"] - lo) * scale)) <= 2.0
    assert abs(left + red[-1] + 1 - (left + (flag["end_s"] - lo) * scale)) <= 2.0


def test_clicking_a_flag_centres_the_history_on_it(rig):
    win = rig.window
    win.until(lambda w: w.text("em_flag_code_0") == "over_compression")
    flag = rig.session.flags[-1]
    win.call("click", tag="em_flag_0")
    state = win.until(lambda w: (s := w.call("state"))["selected"] and s)
    assert state["follow"] is False
    assert state["selected"]["start_s"] == flag["start_s"]
    lo, hi = win.until(lambda w: w.call("limits", axis="em_loud_x")["limits"])
    time.sleep(0.3)
    lo, hi = win.call("limits", axis="em_loud_x")["limits"]
    assert (lo + hi) / 2 == pytest.approx((flag["start_s"] + flag["end_s"]) / 2, abs=0.05)
    assert hi - lo == pytest.approx(60.0, abs=0.05)


def test_a_grouped_flag_is_one_row_and_one_bar_per_occurrence_on_the_lane(rig, tmp_path):
    win = rig.window
    while (now := rig.engine.state().paths[1].readings.duration_s) < 16.0:
        time.sleep(0.1)
    # Three overs (after the earlier flag's span), as the detector groups them: one flag.
    spans = [(round(now - 6.0 + 2.0 * k, 1), round(now - 5.0 + 2.0 * k, 1)) for k in range(3)]
    occurrences = [
        {"start_s": s, "end_s": e, "value": 1.0 + k, "severity": "problem", "at_s": s,
         "message": f"true peak reached +{1.0 + k:.2f} dBTP"}
        for k, (s, e) in enumerate(spans)
    ]  # fmt: skip
    flag = {
        "code": "true_peak_over", "severity": "problem", "start_s": spans[0][0],
        "end_s": spans[-1][1], "value": 3.0, "threshold": -1.0, "unit": "dBTP",
        "band_hz": None, "path": 1, "occurrences": occurrences,
        "message": f"at 3 places between {spans[0][0]:.1f} and {spans[-1][1]:.1f} s, worst "
        f"+3.00 dBTP at {spans[-1][0]:.1f} s. The worst: true peak reached +3.00 dBTP",
    }  # fmt: skip
    rig.session.flags.append(flag)
    win.until(lambda w: w.text("em_flag_code_0") == "true_peak_over ×3")
    assert win.text("em_flag_msg_0") == flag["message"]
    # One row for the three: the list holds this flag and the earlier one, no more.
    assert win.text("em_flag_code_1") == "over_compression"
    assert win.text("em_flag_code_2") is None
    # Clicking the row centres the history on the group's whole span.
    win.call("click", tag="em_flag_0")
    win.until(lambda w: (w.call("state")["selected"] or {}).get("start_s") == spans[0][0])
    centre = (spans[0][0] + spans[-1][1]) / 2
    win.until(lambda w: abs(sum(w.call("limits", axis="em_lane_x")["limits"]) / 2 - centre) < 0.05)
    a_row, _, scale, lo = lane_a_row(win, tmp_path)
    red = (a_row[:, 0] > 150) & (a_row[:, 1] < 110) & (a_row[:, 2] < 110)

    def at(t: float) -> bool:
        return bool(red[int(round((t - lo) * scale))])

    # A bar over each occurrence, and the lane empty between them.
    assert all(at((s + e) / 2) for s, e in spans), spans
    assert not any(at(e + 0.5) for _, e in spans[:-1]), spans


def test_the_audible_marker_follows_a_select_command_from_elsewhere(rig, tmp_path):
    from earmark.ui.dashboard.style import B_COL

    win = rig.window
    rig.session.post("select", "B")
    win.until(lambda w: w.label("em_hdr_B").startswith("B ▶"))
    assert win.label("em_hdr_A").startswith("A ◻")
    geo = win.call("geometry")
    img = win.pixels(tmp_path)
    bx, by = geo["em_hdr_B"]["min"]
    corner = img[int(by + 3), int(bx + 6)]
    assert np.all(np.abs(corner.astype(int) - B_COL) <= 3)  # B's button is filled with B's colour
    rig.session.post("select", "A")
    win.until(lambda w: w.label("em_hdr_A").startswith("A ▶"))


def test_space_and_the_ab_button_in_the_dashboard_switch_the_engine(rig):
    win = rig.window
    assert rig.engine.state().audible == "A"
    win.call("key", keysym="space")
    deadline = time.monotonic() + 5
    while rig.engine.state().audible != "B" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert rig.engine.state().audible == "B"
    win.call("click", tag="em_btn_ab")
    deadline = time.monotonic() + 5
    while rig.engine.state().audible != "A" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert rig.engine.state().audible == "A"
    assert win.call("state")["commands"][-2:] == [["select", "toggle"], ["select", "toggle"]]


def test_keys_m_and_b_drop_a_marker_and_bypass_the_chain(rig):
    win = rig.window
    markers = len(rig.session.markers)
    win.call("key", keysym="m")
    deadline = time.monotonic() + 5
    while len(rig.session.markers) == markers and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(rig.session.markers) == markers + 1
    win.call("key", keysym="b")
    win.until(lambda w: w.label("em_chain_bypass_A") == "BYPASSED (B)")
    assert list(rig.chain.bypassed) == [True]
    # Bypassed, the +6 dB is gone: A's short-term loudness falls to the dry -20 LUFS.
    win.until(lambda w: w.text("em_val_S_A") == "−20.0", timeout=8)
    win.call("key", keysym="b")
    win.until(lambda w: w.label("em_chain_bypass_A") == "bypass chain (B)")
    assert list(rig.chain.bypassed) == [False]


def test_a_plugin_s_button_bypasses_that_plugin_and_says_so(rig):
    win = rig.window
    win.until(lambda w: w.label("em_plugin_A_0") == "ON")
    win.call("click", tag="em_plugin_A_0")
    win.until(lambda w: w.label("em_plugin_A_0") == "BYP")
    assert list(rig.chain.bypassed) == [True]
    win.call("click", tag="em_plugin_A_0")
    win.until(lambda w: w.label("em_plugin_A_0") == "ON")
    assert list(rig.chain.bypassed) == [False]


def test_the_controller_s_status_reaches_the_header(rig):
    win = rig.window
    rig.session.note("midi", "nanoKONTROL2 connected (in and out)")
    win.until(lambda w: w.text("em_hdr_midi") == "MIDI nanoKONTROL2 connected (in and out)")


def test_key_d_dims_the_monitor_and_the_dashboard_says_so(rig):
    win = rig.window
    win.call("key", keysym="d")
    win.until(lambda w: w.text("em_monitor_state") == "monitor: DIM")
    assert rig.engine.state().monitor["dim"] is True
    win.call("key", keysym="d")
    win.until(lambda w: w.text("em_monitor_state") == "monitor: normal")
    assert rig.engine.state().monitor["dim"] is False


def test_a_key_held_down_for_a_second_acts_once(rig):
    """Dear PyGui repeats the press of a held key every few frames; before the dashboard
    ignored the repeats, holding D for 1 s toggled the dim on and off again and again
    (and, at the ~9 frames a second of Xvfb, a plain press of Space sometimes twice)."""
    win = rig.window
    before = len(win.call("state")["commands"])
    win.call("key", keysym="d", hold_s=1.0, timeout=30)
    win.until(lambda w: w.text("em_monitor_state") == "monitor: DIM")
    time.sleep(0.5)  # any late repeat would have been sent by now
    assert win.call("state")["commands"][before:] == [["monitor", {"dim": True}]]
    assert rig.engine.state().monitor["dim"] is True
    win.call("key", keysym="d")
    win.until(lambda w: w.text("em_monitor_state") == "monitor: normal")


def test_key_p_plays_a_and_b_as_spotify_and_the_header_shows_what_each_gets(rig):
    win = rig.window
    win.call("key", keysym="p")  # off -> the first platform, Spotify
    win.until(lambda w: w.text("em_hdr_match") == "as Spotify")
    assert rig.session.platform_monitor.name == "spotify"
    # A (-14 LUFS) plays as it is; B (the -20 LUFS dry sine, peaks at -20 dBTP) is raised
    # by 6 dB to Spotify's -14 LUFS target, far below its -1 dBTP headroom rule.
    win.until(lambda w: "· B +6.0 dB → −14.0 LUFS, penalty 0.0 LU" in w.text("em_hdr_platform"))
    shown = win.text("em_hdr_platform")
    # A's gain depends on what the module's earlier tests did to its integrated loudness
    # (a bypassed stretch reads -20): whatever it is, Spotify plays A at -14 too.
    assert re.match(r"A [+−]\d+\.\d dB → −14\.0 LUFS, penalty 0\.0 LU · B ", shown), shown
    assert "playing as Spotify (-14 LUFS)" in shown
    win.until(lambda w: abs(rig.engine.state().match_b_db - 6.0) < 0.05, timeout=8)
    rig.session.call("platform_monitor", "off")  # the module's other tests hear the match
    win.until(lambda w: w.text("em_hdr_match") == "match off")
    win.until(lambda w: abs(rig.engine.state().match_b_db) < 0.05, timeout=8)


def test_a_killed_dashboard_leaves_the_audio_and_the_frame_running(rig):
    win = rig.window
    win.proc.send_signal(signal.SIGKILL)
    win.proc.wait(10)
    callbacks = rig.engine.callbacks
    seq = StateFrameReader(rig.service.writer.name).read().seq
    time.sleep(1.0)
    frame = StateFrameReader(rig.service.writer.name).read()
    blocks = rig.engine.callbacks - callbacks
    assert blocks == pytest.approx(FS / 256, rel=0.1)  # one second of 256-frame blocks
    assert frame.seq > seq and not frame.stale


def test_a_frame_that_stops_reads_stale_and_an_ended_session_says_so(xvfb, tmp_path):
    """A hand-written frame stream: live while its heartbeat runs, then stale, then ended."""
    writer = StateFrameWriter(Layout(max_paths=2, history_points=600))
    with writer.writing():
        for key, value in (("n_paths", 2), ("a", 1), ("b", 0), ("audible", 0),
                           ("sample_rate", 48000), ("block_size", 64)):  # fmt: skip
            writer.header[key] = value
        writer.set_json(json.dumps({"paths": [{"name": "dry"}, {"name": "chain"}]}).encode())
    beating = threading.Event()
    beating.set()

    def heartbeat() -> None:
        while beating.is_set():
            writer.heartbeat()
            time.sleep(0.05)

    beat = threading.Thread(target=heartbeat, daemon=True)
    beat.start()
    win = Window(xvfb, writer.name, str(tmp_path / "nobody.sock"))
    try:
        win.until(lambda w: (w.text("em_hdr_live") or "").startswith("LIVE"))
        assert win.label("em_hdr_A") == "A ▶ chain (path 2)"  # numbered from 1, as --path
        beating.clear()
        beat.join()
        stale = win.until(
            lambda w: (t := w.text("em_hdr_live")).startswith("STALE · no update for") and t
        )
        writer.close()
        win.until(lambda w: w.text("em_hdr_live") == "STALE · the session has ended")
    finally:
        beating.clear()
        win.close()
        writer.close()
    seconds = float(stale.split("no update for ")[1].split()[0])
    assert 0.5 <= seconds <= 2.0


def test_a_spawned_dashboard_that_crashes_is_reported_and_the_audio_goes_on(xvfb, home):
    engine = sine_engine()
    driver = NullDriver(engine, blocksize=256)
    session = LiveSession(engine, driver, name="spawned")
    service = DashboardService(spawn=True)
    session.add_service(service, name="dashboard")
    env = pytest.MonkeyPatch()
    env.setenv("DISPLAY", xvfb)
    driver.start()
    session.start()
    try:
        deadline = time.monotonic() + 20
        while service.child is None and time.monotonic() < deadline:
            time.sleep(0.05)
        child = service.child
        time.sleep(3.0)  # the window is up and reading
        assert child.poll() is None
        os.kill(child.pid, signal.SIGABRT)  # what Dear PyGui does when it cannot go on
        deadline = time.monotonic() + 5
        while service.child_status == "running" and time.monotonic() < deadline:
            time.sleep(0.05)
        before = engine.callbacks
        time.sleep(0.5)
        after = engine.callbacks
    finally:
        session.stop()
        env.undo()
    assert service.child_status == "ended (SIGABRT)"
    assert any("dashboard ended (SIGABRT); the audio goes on" in s.text for s in session.status)
    assert after - before == pytest.approx(0.5 * FS / 256, rel=0.15)


def test_earmark_dashboard_attaches_to_a_running_session_by_its_address(xvfb, home, tmp_path):
    engine = sine_engine()
    driver = NullDriver(engine, blocksize=256)
    session = LiveSession(engine, driver, name="reattach")
    service = DashboardService()
    session.add_service(service, name="dashboard")
    driver.start()
    session.start()
    png = tmp_path / "shot.png"
    env = dict(os.environ, DISPLAY=xvfb)
    try:
        listed = subprocess.run(
            [sys.executable, "-m", "earmark", "dashboard", "--list"],
            capture_output=True, text=True, env=env, timeout=60,
        )  # fmt: skip
        shown = subprocess.run(
            [sys.executable, "-m", "earmark", "dashboard", "--seconds", "4", "--screenshot",
             str(png), "--screenshot-after", "2.5"],
            capture_output=True, text=True, env=env, timeout=120,
        )  # fmt: skip
    finally:
        session.stop()
    assert listed.returncode == 0
    assert listed.stdout.split("\t")[0] == "reattach"
    assert service.writer is None  # stopped
    assert shown.returncode == 0, shown.stderr
    head = png.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", head[16:24]) == (1600, 960)


def test_earmark_dashboard_without_a_session_says_so(home):
    proc = subprocess.run(
        [sys.executable, "-m", "earmark", "dashboard"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 3
    assert "no running session" in proc.stderr


# -- no display ------------------------------------------------------------------------------------


def no_display_env() -> dict:
    env = dict(os.environ)
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    return env


def test_without_a_display_the_dashboard_exits_with_a_message_not_an_abort():
    proc = subprocess.run(
        [sys.executable, "-m", "earmark.ui.dashboard", "--frame", "no-such-frame"],
        capture_output=True, text=True, env=no_display_env(), timeout=60,
    )  # fmt: skip
    assert proc.returncode == 3  # not -6 (SIGABRT)
    assert "no display (DISPLAY is not set)" in proc.stderr


def test_an_unreachable_display_is_a_message_too():
    env = dict(no_display_env(), DISPLAY=":9999")
    proc = subprocess.run(
        [sys.executable, "-m", "earmark.ui.dashboard", "--frame", "no-such-frame"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 3
    assert "cannot open X display ':9999'" in proc.stderr


def test_the_demo_without_a_display_falls_back_to_the_terminal_view(home):
    proc = subprocess.run(
        [sys.executable, "-m", "earmark", "demo", "--seconds", "2", "--blocksize", "256"],
        capture_output=True, text=True, env=dict(no_display_env(), EARMARK_HOME=str(home)),
        timeout=180,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "no display (DISPLAY is not set); showing the terminal view" in proc.stderr
    assert "earmark: stopped after" in proc.stderr
    blocks = int(proc.stderr.split("stopped after ")[1].split()[0])
    # Two seconds of 256-frame blocks is 375 (the driver starts streaming a little before the
    # session's clock; a loaded machine may fall behind).
    assert blocks >= 0.5 * 375
