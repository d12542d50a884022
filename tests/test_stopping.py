"""Stopping a live session by signal, as terminals, SSH and service managers do it.

Real processes: `earmark demo` in its own process group (a shell job) or on its own
pseudo-terminal, a real JACK server, the real store (SQLite) under a temporary
EARMARK_HOME. A clean stop means: exit 0, the summary and the final flags printed,
no "failed to stop cleanly" line, and a "session end" snapshot holding the *final*
flags (programme flags judged on the whole session, none left open), the same ones
that were printed.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from earmark.store import Store, StoreError
from earmark.ui.flags_text import flag_lines

_START_TIMEOUT_S = 120.0
_MASTER = 2  # the demo's paths: the mix dry, the mix through the chain, the AI master


def demo(home: Path, session: str, argv0: tuple[str, ...] = (), **popen) -> subprocess.Popen:
    env = dict(os.environ, EARMARK_HOME=str(home), COLUMNS="200")
    env.pop("DISPLAY", None)  # the terminal view, never a window
    argv = [*argv0, sys.executable, "-m", "earmark", "demo", "--no-ui", "--seconds", "300"]
    # The session as a terminal starts it: a hangup kills by default. The runner may
    # have inherited SIGHUP ignored (nohup, some CI runners) and would pass that on.
    return subprocess.Popen(
        [*argv, "--session", session], env=env, text=True, preexec_fn=_hangup_default, **popen
    )


def _hangup_default() -> None:
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def wait_until_flagged(home: Path, session: str, proc: subprocess.Popen) -> None:
    """Until the session has logged a flag of the AI master to the store: it streams,
    its flag worker answers and its recorder writes (no race with a fixed sleep)."""
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the session ended first (exit {proc.returncode})"
        try:
            with Store(home / "earmark.sqlite", create=False) as store:
                started = store.sessions(name=session)
                if started and any(f["path"] == _MASTER for f in store.flags(started[-1]["id"])):
                    return
        except StoreError:  # no database yet
            pass
        time.sleep(0.2)
    pytest.fail(f"no flag logged within {_START_TIMEOUT_S:.0f} s")


def session_end(home: Path, session: str) -> tuple[dict, list[dict]]:
    """The session's "session end" snapshot and its flags as last logged."""
    with Store(home / "earmark.sqlite", create=False) as store:
        (logged,) = store.sessions(name=session)
        snaps = store.snapshots(session=session)
        assert [s["label"] for s in snaps] == ["session end"]
        return store.snapshot(snaps[0]["id"]), store.flags(logged["id"])


def assert_final_flags(doc: dict, logged: list[dict], stderr: str | None = None) -> None:
    flags = doc["flags"]
    # The AI master's known faults: +2.6 dBTP between samples limited at -0.3 dBFS.
    master = {f["code"] for f in flags if f["path"] == _MASTER}
    assert "true_peak_over" in master and "clipping" not in master  # one fact, one code
    assert [f for f in flags if f["open"]] == []  # final: judged on the whole session
    assert [f for f in logged if f["open"]] == []  # the session log's last word, too
    if stderr is not None:  # what was printed is what was stored
        for line in flag_lines(flags):
            assert line in stderr, (line, stderr[-3000:])


def assert_clean_stop(proc: subprocess.Popen, stderr: str) -> None:
    assert proc.returncode == 0, stderr[-3000:]
    assert "stopped after" in stderr  # the summary of a clean stop
    for bad in ("failed to stop cleanly", "Broken pipe", "Traceback", "resource_tracker"):
        assert bad not in stderr, stderr[-3000:]


@pytest.mark.parametrize(
    "signum",
    [
        # A dropped SSH connection: the shell hangs up its jobs, SIGHUP to the whole
        # process group (before: the session died on the spot, no snapshot).
        signal.SIGHUP,
        # `kill -- -PGID`, a service manager: the flag worker gets the SIGTERM too
        # (before: it died, "flags failed to stop cleanly: ... Broken pipe", and the last
        # snapshot held provisional flags, still open).
        signal.SIGTERM,
    ],
    ids=["sighup", "sigterm"],
)
def test_a_stop_signal_to_the_process_group_stops_cleanly_with_the_final_flags(
    jack_server, tmp_path, signum
):
    name = signal.Signals(signum).name.lower()
    proc = demo(tmp_path, name, process_group=0, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = ""
    try:
        wait_until_flagged(tmp_path, name, proc)
        os.killpg(proc.pid, signum)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert_clean_stop(proc, err)
    assert_final_flags(*session_end(tmp_path, name), stderr=err)


def test_a_closed_terminal_stops_the_session_cleanly(jack_server, tmp_path):
    """The session on a real pseudo-terminal it controls (setsid -c); the terminal
    closes: the kernel hangs it up (SIGHUP), and from then on every write to it and
    every change of its modes fails with EIO (before: killed by SIGHUP, no snapshot)."""
    master, slave = os.openpty()
    proc = demo(tmp_path, "tty", ("setsid", "-c"), stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    stop = threading.Event()

    def drain() -> None:  # a terminal reads what the view writes
        while not stop.is_set():
            if select.select([master], [], [], 0.1)[0]:
                try:
                    os.read(master, 65536)
                except OSError:
                    return

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        wait_until_flagged(tmp_path, "tty", proc)
    finally:
        stop.set()
        reader.join()
        os.close(master)  # the terminal window closes
    try:
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 0
    assert_final_flags(*session_end(tmp_path, "tty"))


def test_under_nohup_a_hangup_leaves_the_session_running(jack_server, tmp_path):
    """`nohup earmark run ...` asks to outlive the terminal: SIGHUP stays ignored."""
    proc = demo(
        tmp_path,
        "nohup",
        ("nohup",),
        process_group=0,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    err = ""
    try:
        wait_until_flagged(tmp_path, "nohup", proc)
        os.killpg(proc.pid, signal.SIGHUP)
        time.sleep(1.0)
        assert proc.poll() is None  # still streaming
        os.killpg(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert_clean_stop(proc, err)
    assert_final_flags(*session_end(tmp_path, "nohup"), stderr=err)
