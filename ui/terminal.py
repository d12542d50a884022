"""The live terminal view: what `earmark run` / `earmark demo` show without a display.

A rich table refreshed a few times a second from ``Engine.state()``: every
path's meters side by side with A and B marked (the audible one with a play
sign, in words as well as colour), the loudness-match offset, the stream's
latency, xruns and callback time. Paths are numbered from 1, as everywhere a
user types one. While the platform monitor plays A and B as a platform would
(earmark.live.platform_monitor), A and B also show that platform's gain, the
loudness its listener gets and the loudness penalty, under a line naming it.
Keys (when stdin is a terminal) are the dashboard's (``earmark.ui.conventions.KEYS``:
Space A/B, B bypass chain, L loudness match, P platform monitor, D dim, O mono,
R reset meters, S snapshot, M marker), plus Q to quit.
When stdout is not a terminal it prints one plain status line every few seconds.
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
import time
from collections.abc import Callable, Iterator, Sequence

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from .conventions import Toggles, help_line, key_commands, key_for, path_number

KEYS_HELP = help_line(terminal=True)


def _f(v: float | None, nd: int = 1) -> str:
    return "-" if v is None else f"{v:.{nd}f}"


def render_state(
    state, header: str, session_flags: list | None = None, platform: object = None
) -> Group:
    """One frame of the view for an ``EngineState`` (and the session's flags, if given;
    ``platform``: the session's platform monitor, shown when it names a platform)."""
    on = platform is not None and getattr(platform, "name", None) is not None
    table = Table(expand=False, header_style="bold")
    table.add_column("#", justify="right")
    table.add_column("path")
    columns = ["M", "S", "I LUFS", "LRA", "TP dBTP", "PSR", "PLR"]
    if on:  # the gain A and B get now (slewed), then the platform's outcome
        columns += ["gain dB", "platform dB", "heard LUFS", "penalty LU"]
    else:
        columns.append("match dB")
    for col in (*columns, "delay"):
        table.add_column(col, justify="right")
    for i, p in enumerate(state.paths):
        r = p.readings
        role = ""
        match = ""
        if i == state.a:
            role = ("▶ A" if state.audible == "A" else "  A") + " "
            match = _f(state.match_a_db) if state.loudness_match or on else "off"
        if i == state.b and state.b != state.a:
            role = ("▶ B" if state.audible == "B" else "  B") + " "
            match = _f(state.match_b_db) if state.loudness_match or on else "off"
        plat: list[str] = []
        if on:
            got = platform.of_path(i)  # type: ignore[attr-defined]
            o = None if got is None else got.outcome
            plat = [
                "" if o is None else _f(o.gain_db),
                "" if o is None else _f(o.playback_lufs),
                "" if o is None else _f(o.penalty_lu),
            ]
        style = "bold" if role.startswith("▶") else ("dim" if not role else "")
        name = Text(role + p.name, style=style)
        if p.nonfinite_blocks:
            name.append(f"  MUTED {p.nonfinite_blocks} bad blocks", style="bold red")
        table.add_row(
            str(path_number(i)),
            name,
            _f(r.momentary_lufs),
            _f(r.short_term_lufs),
            _f(r.integrated_lufs),
            _f(r.loudness_range_lu),
            _f(r.true_peak_dbtp),
            _f(r.psr_db),
            _f(r.plr_db),
            match,
            *plat,
            f"{p.delay_samples}",
        )
    mon = state.monitor
    flags = [k for k in ("dim", "mute", "mono") if mon.get(k)]
    if mon.get("solo"):
        flags.append(f"solo {mon['solo']}")
    status = (
        f"{header}  ·  {state.position_s:6.1f} s  ·  xruns {state.xruns}  ·  callback p99 "
        f"{_f(state.callback_p99_us, 0)} µs  ·  monitor {' '.join(flags) or 'normal'}"
    )
    if state.meter_skipped_frames:
        gap = state.meter_skipped_frames / state.sample_rate
        status += f"  ·  meters skipped {gap:.1f} s (metering fell behind)"
    lines = _flag_lines(state, session_flags)
    if on:
        lines.insert(0, Text(f"platform monitor: {platform.note()}", style="bold"))  # type: ignore[attr-defined]
    return Group(Text(status), table, *lines, Text(KEYS_HELP, style="dim"))


_MAX_FLAG_LINES = 6


def _flag_lines(state, flags: list | None) -> list[Text]:
    """The open flags, problems first, one line each with the path's A/B role."""
    from earmark.ui.flags_text import short_flag, sorted_flags

    shown = sorted_flags(f for f in flags or () if f.get("open"))
    lines = []
    for f in shown[:_MAX_FLAG_LINES]:
        path = f.get("path")
        role = "A" if path == state.a else ("B" if path == state.b else "-")
        name = state.paths[path].name if isinstance(path, int) and path < len(state.paths) else ""
        style = "bold red" if f.get("severity") == "problem" else "yellow"
        lines.append(Text(f"{role} {name}: {short_flag(f)}", style=style))
    if len(shown) > _MAX_FLAG_LINES:
        lines.append(Text(f"... {len(shown) - _MAX_FLAG_LINES} more open flags", style="dim"))
    return lines


@contextlib.contextmanager
def cbreak() -> Iterator[bool]:
    """Single-key input without echo while the view runs (if stdin is a terminal)."""
    if not sys.stdin.isatty():
        yield False
        return
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        yield True
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def read_key(timeout_s: float) -> str | None:
    """One key from stdin (a terminal in cbreak mode, or a pipe), None after
    ``timeout_s``; "" at the end of the input."""
    ready, _, _ = select.select([sys.stdin], [], [], timeout_s)
    if not ready:
        return None
    return os.read(sys.stdin.fileno(), 1).decode(errors="ignore")


def run_view(
    get_state: Callable[[], object],
    post: Callable[..., None],
    header: Callable[[], str],
    seconds: float | None = None,
    refresh_hz: float = 8.0,
    console: Console | None = None,
    flags: Callable[[], list] | None = None,
    chains: Callable[[], Sequence] | None = None,
    platform: Callable[[], object] | None = None,
) -> None:
    """Show the view until q, Ctrl-C or ``seconds`` have passed; ``flags`` returns the
    session's flags (dicts with ``path`` and ``open``) to list the open ones, ``chains``
    each path's chain or None (``LiveSession.chains``), for the B key's bypass;
    ``platform`` the session's platform monitor (or None)."""
    console = console or Console()
    end = None if seconds is None else time.monotonic() + seconds
    period = 1.0 / refresh_hz
    if not console.is_terminal:
        _plain(get_state, header, end, console, flags, platform)
        return
    with cbreak() as keys, Live(console=console, auto_refresh=False, transient=False) as live:
        while end is None or time.monotonic() < end:
            state = get_state()
            shown = render_state(
                state, header(), flags() if flags else None, platform() if platform else None
            )
            live.update(shown, refresh=True)
            if keys:
                key = read_key(period)
                if key is not None and key.lower() == key_for("quit").char:
                    break
                handle_key(key, state, post, chains() if chains else ())
            else:
                time.sleep(period)


def handle_key(key: str | None, state, post: Callable[..., object], chains: Sequence = ()) -> None:
    """Post what ``key`` does (the shared table) for an ``EngineState`` and the paths' chains."""
    for command in key_commands(key, toggles(state, chains)):
        post(*command)


def toggles(state, chains: Sequence = ()) -> Toggles:
    """What the keys act on, from an ``EngineState`` and each path's chain (or None)."""
    # As the dashboard's frame says it (earmark.live.publisher.chain_info): a chain with no
    # plugin is never "bypassed".
    plugins = [None if c is None else tuple(getattr(c, "bypassed", ())) for c in chains]
    bypassed = tuple(None if p is None else bool(p) and all(p) for p in plugins)
    return Toggles(
        a=state.a,
        b=state.b,
        audible=state.audible,
        loudness_match=bool(state.loudness_match),
        dim=bool(state.monitor.get("dim")),
        mono=bool(state.monitor.get("mono")),
        bypassed=bypassed,
    )


def _plain(
    get_state: Callable[[], object],
    header: Callable[[], str],
    end: float | None,
    console: Console,
    flags: Callable[[], list] | None = None,
    platform: Callable[[], object] | None = None,
) -> None:
    while end is None or time.monotonic() < end:
        time.sleep(min(2.0, max(0.0, (end or time.monotonic() + 2.0) - time.monotonic())))
        s = get_state()
        parts = []
        for i, p in enumerate(s.paths):
            tag = "A" if i == s.a else ("B" if i == s.b else "-")
            r = p.readings
            parts.append(
                f"{path_number(i)} [{tag}] {p.name}: S {_f(r.short_term_lufs)} "
                f"I {_f(r.integrated_lufs)}"
                f" TP {_f(r.true_peak_dbtp)}"
            )
        monitor = platform() if platform else None
        if monitor is not None and getattr(monitor, "name", None) is not None:
            parts.append(f"platform monitor: {monitor.note()}")  # type: ignore[attr-defined]
        open_flags = [f for f in (flags() if flags else ()) if f.get("open")]
        if open_flags:
            parts.append(
                "open flags: "
                + ", ".join(f"{f.get('code')} (path {_number(f.get('path'))})" for f in open_flags)
            )
        console.print(
            f"{header()} | {s.position_s:.1f} s | xruns {s.xruns} | " + " | ".join(parts),
            soft_wrap=True,
            markup=False,
        )


def _number(index: object) -> object:
    """A flag's path as people number it (a non-index, e.g. None, as it is)."""
    return path_number(index) if isinstance(index, int) else index
