"""One set of conventions across the live views, the controller maps and the command line.

- Keys: the terminal view and the dashboard read one table
  (``earmark.ui.conventions.KEYS``), so a key does the same thing in both. The
  dashboard is pressed with real X key events under Xvfb; the terminal view
  runs in a real pseudo-terminal.
- Path numbers: what people see and type counts from 1 (the terminal's ``#``
  column, the flags' "(path 3)", the dashboard header, controller maps).
"""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time

import pytest
from rich.console import Console
from test_dashboard import Rig, Window, xvfb  # noqa: F401  (xvfb: a fixture used below)

from earmark.ui import conventions
from earmark.ui.conventions import KEYS, path_index, path_number
from earmark.ui.midi.map import dump_map, parse_map
from earmark.ui.terminal import KEYS_HELP, handle_key, render_state

# A user's live session with no audio device: the demo into a null sink.
DEMO_ENV = dict(os.environ, JACK_DEFAULT_SERVER="earmark-no-such-server", COLUMNS="200")


# -- keys -------------------------------------------------------------------------------------


def test_the_key_table_follows_the_dashboard_design_and_gives_each_key_one_action():
    letters = {k.name: k.action for k in KEYS}
    assert letters == {
        "Space": "ab_toggle",
        "B": "chain_bypass",
        "L": "match",
        "P": "platform",
        "D": "dim",
        "O": "mono",
        "R": "reset",
        "S": "snapshot",
        "M": "marker",
        "C": "codec",
        "X": "codec_solo",
        "Q": "quit",
    }
    assert len({k.char for k in KEYS}) == len(KEYS)
    assert [k.name for k in KEYS if k.terminal_only] == ["Q"]
    # Both help lines come from the table: the same words, the terminal's adds Q.
    assert KEYS_HELP.startswith("Space A/B  ·  B bypass chain  ·  L loudness match")
    assert KEYS_HELP.endswith("M marker  ·  C codec/clean  ·  X codec artefacts  ·  Q quit")
    from earmark.ui.dashboard import KEYS_HELP as DASHBOARD_KEYS_HELP

    assert KEYS_HELP == DASHBOARD_KEYS_HELP + "  ·  Q quit"
    # With Shift (or Caps Lock) a letter does what it does without, as in the dashboard.
    on = conventions.Toggles(1, 2, "A", True, False, False, (None, False, None))
    for key in KEYS:
        assert conventions.key_commands(key.char.upper(), on) == conventions.key_commands(
            key.char, on
        )
    assert conventions.key_commands("B", on) == [("bypass", 1, None, True)]
    assert conventions.key_commands("l", on) == [("match", False)]
    assert conventions.key_commands("r", on) == [("reset_meters",), ("reset_holds",)]
    assert conventions.key_commands("c", on) == [("codec", "toggle")]
    assert conventions.key_commands("X", on) == [("codec", "solo")]
    assert conventions.key_commands("k", on) == []  # the old terminal marker key: free now


@pytest.fixture()
def live(xvfb, tmp_path, monkeypatch):  # noqa: F811  (the fixture imported above)
    """A real-time session with the dashboard open on it (see test_dashboard.Rig)."""
    monkeypatch.setenv("EARMARK_HOME", str(tmp_path / "home"))
    rig = Rig()
    rig.window = Window(xvfb, rig.service.writer.name, str(rig.service.inbox.path))
    try:
        yield rig
    finally:
        rig.window.close()
        rig.session.stop()


def test_every_key_sends_the_same_commands_from_the_dashboard_as_from_the_terminal(live):
    """Each key pressed for real in the dashboard (XTEST) sends exactly what the terminal
    view posts for the same key in the same session state. Before the shared table, M was
    a marker in one and the loudness match in the other, and R reset different things."""
    win = live.window
    win.until(lambda w: w.label("em_hdr_A").startswith("A ▶"))
    sent = win.call("state")["commands"]
    for key in [k for k in KEYS if not k.terminal_only]:
        state = live.engine.state()
        terminal: list[tuple] = []
        handle_key(key.char, state, lambda *c, out=terminal: out.append(c), live.session.chains())
        keysym = "space" if key.char == " " else key.char
        win.call("key", keysym=keysym)
        before = len(sent)
        sent = win.until(lambda w, n=before: (c := w.call("state")["commands"])[n:] and c)
        pressed = [tuple(c) for c in sent[before:]]
        assert pressed == [_jsonish(c) for c in terminal], (key.name, sent)
        # Let the command reach the engine and the next frame before the next key.
        time.sleep(0.3)
    # What they did, measured on the engine: B heard, the +6 dB chain bypassed, match
    # on (the rig starts without it), the monitor dimmed and mono.
    state = live.engine.state()
    assert state.audible == "B"
    assert list(live.chain.bypassed) == [True]
    assert state.loudness_match is True
    assert state.monitor["dim"] is True and state.monitor["mono"] is True


def _jsonish(command: tuple) -> tuple:
    """A command as it comes back through the probe's JSON (tuples as lists)."""
    return tuple(list(v) if isinstance(v, tuple) else v for v in command)


def test_the_terminal_view_s_m_drops_a_marker_and_l_turns_the_loudness_match_off(tmp_path):
    """`earmark demo` in a real pseudo-terminal; M and L typed. The session-end snapshot
    holds one marker and says the loudness match was off. Before the shared table, M
    turned the match off and L did nothing: no marker."""
    home = tmp_path / "home"
    main, sub = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "earmark", "demo", "--no-ui", "--seconds", "8"],
        stdin=sub,
        stdout=sub,
        stderr=sub,
        env=dict(DEMO_ENV, EARMARK_HOME=str(home), TERM="xterm"),
        close_fds=True,
    )
    os.close(sub)
    seen = b""

    def read_for(seconds: float, until: bytes | None = None) -> None:
        nonlocal seen
        end = time.monotonic() + seconds
        while time.monotonic() < end and not (until and until in seen):
            if select.select([main], [], [], 0.1)[0]:
                try:
                    seen += os.read(main, 65536)
                except OSError:  # the child closed the terminal
                    return

    try:
        read_for(60, until=b"Q quit")  # the first frame: the view reads keys now
        assert b"Q quit" in seen, seen[-2000:]
        os.write(main, b"m")
        read_for(1.0)
        os.write(main, b"l")
        read_for(60, until=b"stopped after")
        assert proc.wait(60) == 0, seen[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(main)
    from earmark.store import Store

    store = Store(home / "earmark.sqlite", create=False)
    (session,) = store.sessions()
    assert len(store.markers(session["id"])) == 1
    end = store.snapshot(store.snapshots()[-1]["id"])
    assert end["label"] == "session end"
    assert end["source"]["loudness_match"] is False  # the demo starts with it on


# -- path numbers -----------------------------------------------------------------------------


def test_paths_are_numbered_from_1_wherever_people_see_or_type_them():
    assert [path_number(i) for i in range(3)] == [1, 2, 3]
    assert path_index(3, count=3) == 2
    for wrong in (0, -1, 4):
        with pytest.raises(ValueError):
            path_index(wrong, count=3)
    assert conventions.path_numbers(["dry", "chain"]) == "1: dry, 2: chain"
    # A controller map's `path = 3` is the third path, and is written back as 3.
    text = (
        'name = "t"\nversion = 1\n[port]\ninput = "x"\n[[control]]\nname = "b"\ncc = 1\n'
        'action = "chain_bypass"\npath = 3\n'
    )
    cmap = parse_map(text, "t.toml")
    assert cmap.controls[0].path == 2
    assert "path = 3" in dump_map(cmap)


def test_the_terminal_view_numbers_its_paths_and_the_flags_paths_the_same_way(tmp_path):
    """The plain view (stdout not a terminal) of the demo: the AI master is the third
    path, and its open flags say "(path 3)" (they said "(path 2)", counted from 0)."""
    proc = subprocess.run(
        [sys.executable, "-m", "earmark", "demo", "--no-ui", "--seconds", "4"],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(DEMO_ENV, EARMARK_HOME=str(tmp_path / "home")),
    )
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if "open flags:" in line]
    assert lines, proc.stdout
    assert "3 [B] AI master (reference)" in lines[-1]
    assert "1 [-] demo mix (dry)" in lines[-1]
    flagged = re.findall(r"(\w+) \(path (\d+)\)", lines[-1].split("open flags:")[1])
    assert flagged and {n for _, n in flagged} == {"3"}, lines[-1]


def test_the_terminal_table_has_a_number_column_from_1():
    from earmark.engine.drivers import render
    from earmark.live.audio import demo_engine

    engine = demo_engine(chain="transparent", material_s=4.0)
    render(engine, 1.0, 256)
    console = Console(width=200, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(render_state(engine.state(), "demo"))
    rows = [r for r in console.export_text().splitlines() if r.startswith("│")]
    numbers = [r.split("│")[1].strip() for r in rows]
    assert numbers == ["1", "2", "3"]
    assert "mix -> transparent" in rows[1]
