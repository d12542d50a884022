"""The control channel: a real Unix socket, a real session, the real `earmark` command."""

from __future__ import annotations

import os
import re
import socket
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from earmark.config import control_socket_file, store_file
from earmark.engine.drivers import render
from earmark.live import control
from earmark.live.recorder import SessionRecorder
from earmark.live.session import LiveSession
from earmark.store import Store, StoreWriter, snapshots

import snapdocs
from clirun import earmark
from snapdocs import gain


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """EARMARK_HOME for this process and the `earmark` processes it starts."""
    folder = tmp_path / "h"
    monkeypatch.setenv("EARMARK_HOME", str(folder))
    return folder


def running_session(name: str = "ctl", **recorder) -> tuple[LiveSession, object]:
    """A session on a real engine (+6 dB chain on path A), recording and serving the socket."""
    engine = snapdocs.chain_engine(gain(6.0), seconds=0)
    session = LiveSession(engine, name=name, tick_hz=20)
    SessionRecorder(StoreWriter(), **recorder).attach(session)
    server = control.attach(session)
    session.start()
    return session, server


def inet_socket_inodes() -> set[str]:
    inodes = set()
    for table in ("tcp", "tcp6", "udp", "udp6"):
        with open(f"/proc/net/{table}") as f:
            next(f)
            inodes.update(line.split()[9] for line in f)
    return inodes


def own_socket_inodes() -> set[str]:
    out = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        m = re.fullmatch(r"socket:\[(\d+)\]", target)
        if m:
            out.add(m.group(1))
    return out


def test_snapshot_take_is_answered_by_the_running_session_over_a_private_socket(home):
    session, server = running_session()
    try:
        render(session.engine, 4.0, 512)
        time.sleep(0.2)  # the session thread takes the final state
        final = session.state()
        path = control_socket_file()
        assert server.serving and path == home / "run" / "control.sock"
        assert stat.S_ISSOCK(path.lstat().st_mode)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert not own_socket_inodes() & inet_socket_inodes()  # no network listener
        proc = earmark("snapshot", "take", "--label", "from the cli", "--note", "gain +6")
        assert proc.returncode == 0, proc.stderr
        snapshot_id = int(proc.stdout.strip())
        with Store(store_file()) as store:  # acknowledged: committed before the id was printed
            doc = store.snapshot(snapshot_id)
    finally:
        session.stop()
    assert doc["label"] == "from the cli" and doc["note"] == "gain +6"
    assert doc["session"] == "ctl"
    for i, p in enumerate(final.paths):
        got = snapshots.readings_from_dict(doc["paths"][i]["readings"])
        assert got.integrated_lufs == p.readings.integrated_lufs
    louder = (
        doc["paths"][1]["readings"]["integrated_lufs"]
        - doc["paths"][0]["readings"]["integrated_lufs"]
    )
    assert louder == pytest.approx(6.0, abs=0.01)
    assert not control_socket_file().exists()  # removed when the session stopped


def test_ping_marker_and_status_over_the_socket(home):
    session, _ = running_session("pinged")
    try:
        render(session.engine, 2.0, 512)
        time.sleep(0.2)
        pong = control.request("ping")
        marker = control.request("marker", label="verse")
        status = control.request("status")
        bad = control.request("rm -rf")
    finally:
        session.stop()
    assert pong["ok"] and pong["session"] == "pinged" and pong["pid"] == os.getpid()
    assert marker["marker"]["label"] == "verse" and marker["marker"]["t_s"] == pytest.approx(2.0)
    assert status["position_s"] == pytest.approx(2.0)
    assert status["paths"][1]["integrated_lufs"] == pytest.approx(
        status["paths"][0]["integrated_lufs"] + 6.0, abs=0.01
    )
    assert not bad["ok"] and "unknown command" in bad["error"]


def test_a_label_longer_than_the_store_keeps_is_refused_over_the_socket_not_cut(home):
    """Any client of the socket, not only the CLI: 501 characters are refused whole."""
    from earmark.store.snapshots import TEXT_MAX_CHARS

    session, _ = running_session("long")
    try:
        render(session.engine, 0.5, 512)
        too_long = control.request("marker", label="x" * (TEXT_MAX_CHARS + 1))
        at_limit = control.request("marker", label="y" * TEXT_MAX_CHARS)
    finally:
        session.stop()
    assert not too_long["ok"]
    assert too_long["error"] == (
        f"label too long: {TEXT_MAX_CHARS + 1} characters (at most {TEXT_MAX_CHARS})"
    )
    assert at_limit["marker"]["label"] == "y" * TEXT_MAX_CHARS


def test_snapshot_take_without_a_session_says_so(home):
    proc = earmark("snapshot", "take")
    assert proc.returncode == 3
    assert "no earmark session is running" in proc.stderr
    assert proc.stderr.count("\n") == 1  # one line


def test_a_stale_socket_is_reported_then_taken_over(home):
    path = control_socket_file()
    path.parent.mkdir(parents=True, mode=0o700)
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))
    dead.close()  # a session killed with -9 leaves exactly this: the file, nobody listening
    assert path.exists()
    with pytest.raises(control.NoSessionError, match="stale control socket"):
        control.request("ping")
    proc = earmark("snapshot", "take")
    assert proc.returncode == 3 and "stale control socket" in proc.stderr
    session, server = running_session("after a crash")
    try:
        assert server.serving
        assert control.request("ping")["session"] == "after a crash"
    finally:
        session.stop()


def test_a_second_session_does_not_steal_a_live_socket(home):
    first, _ = running_session("first")
    notes: list[str] = []
    engine = snapdocs.chain_engine(gain(0.0), seconds=0)
    second = LiveSession(engine, name="second", say=notes.append)
    server = control.attach(second)
    second.start()
    try:
        assert not server.serving
        assert any("another earmark session already answers" in n for n in notes)
        assert control.request("ping")["session"] == "first"
    finally:
        second.stop()
        first.stop()


def test_a_snapshot_the_store_cannot_take_now_is_reported_as_pending(home):
    session, _ = running_session("locked", snapshot_timeout_s=0.5)
    try:
        render(session.engine, 2.0, 512)
        session.call("snapshot", "first")  # the database exists and works
        other = sqlite3.connect(store_file(), isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        try:
            proc = earmark("snapshot", "take", "--label", "while locked")
        finally:
            other.execute("COMMIT")
            other.close()
    finally:
        session.stop()
    assert proc.returncode == 3
    assert "snapshot not stored yet" in proc.stderr and "kept in memory" in proc.stderr
    with Store(store_file()) as store:
        labels = [r["label"] for r in store.snapshots()]
    assert labels == ["first", "while locked", "session end"]  # written once the lock went


def test_earmark_demo_with_a_session_name_logs_and_answers_snapshot_take(home):
    env = dict(os.environ, JACK_DEFAULT_SERVER="earmark-no-such-server", COLUMNS="200")
    demo = subprocess.Popen(
        [sys.executable, "-m", "earmark", "demo", "--seconds", "12", "--no-ui",
         "--session", "album master"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while not control_socket_file().exists():
            assert demo.poll() is None, demo.communicate()[1]
            assert time.monotonic() < deadline, "the demo never opened its control socket"
            time.sleep(0.1)
        time.sleep(3.0)  # some audio through the meters
        take = earmark("snapshot", "take", "--label", "v1")
        marker = control.request("marker", label="drop")
    finally:
        _out, err = demo.communicate(timeout=120)  # it stops by itself after 12 s
    assert demo.returncode == 0, err
    assert take.returncode == 0, take.stderr
    snapshot_id = int(take.stdout)
    with Store(store_file()) as store:
        (session,) = store.sessions(name="album master")
        doc = store.snapshot(snapshot_id)
        log = store.log(session["id"])
        markers = store.markers(session["id"])
    assert session["kind"] == "demo" and doc["session"] == "album master"
    assert [p["name"] for p in doc["paths"]] == [
        "demo mix (dry)",
        "mix -> gentle-master",
        "AI master (reference)",
    ]
    assert doc["paths"][1]["chain"]["name"] == "Gentle master"
    assert doc["paths"][1]["readings"]["integrated_lufs"] is not None
    assert {r["path"] for r in log} == {0, 1, 2} and len(log) >= 3 * 20  # >= 2 s at 10 Hz
    assert [m["label"] for m in markers] == [marker["marker"]["label"]] == ["drop"]
    assert session["ended"] is not None
