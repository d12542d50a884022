"""What every surface of a live session agrees on: the keys, path numbers, A and B colours.

**Keys.** :data:`KEYS` is the one table of the live views' keys. The terminal
view (``earmark.ui.terminal``) and the dashboard (``earmark.ui.dashboard``)
both read it: for their help line, and to turn a key into session commands with
:func:`key_commands`, so a key does the same thing in both (before this table,
``m`` was loudness match in the terminal and marker in the dashboard). The
letters follow DASHBOARD.md (Space A/B, B bypass, S snapshot, M marker, D dim,
O mono, R reset); loudness match, which the dashboard had no key for, is L;
the platform monitor (the next platform, then off) is P; the codec monitor
(``--codec-monitor``) is C (decoded <-> clean) and X (artefacts only).
``q`` quits the terminal view (it stops the session); the dashboard window
has no quit key, since closing it never stops the session.

**Path numbers.** People count paths from 1, in the order the views list
them: the terminal's ``#`` column, the dashboard's header, the flags'
"(path 3)", a controller map's ``path = 3``. Code and stored data
(``EngineState.paths``, flag dicts' ``path``, a snapshot's ``index``) count
from 0. :func:`path_number` and :func:`path_index` are where the two meet
(``snapshots diff --path N`` counts from 1 too).

**Colours.** A is drawn in :data:`A_RGB` and B in :data:`B_RGB` on the
dashboard, and in the same colours in the PNG and HTML exports
(``earmark.offline.report``), so a path keeps its colour from the screen to the page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

A_RGB = (77, 171, 247)  # A: blue
B_RGB = (255, 159, 67)  # B: orange

__all__ = [
    "KEYS",
    "Key",
    "Toggles",
    "bypass_target",
    "help_line",
    "key_commands",
    "key_for",
    "path_index",
    "path_number",
    "path_numbers",
]


@dataclass(frozen=True, slots=True)
class Key:
    """One key of the live views."""

    char: str  # what a terminal reads (" " for the space bar)
    name: str  # how the help line and the buttons print it
    does: str  # a word or two for the help line
    action: str  # what it does: see :func:`key_commands`
    dpg_key: str  # the Dear PyGui key constant (``mvKey_<dpg_key>``)
    terminal_only: bool = False


KEYS: tuple[Key, ...] = (
    Key(" ", "Space", "A/B", "ab_toggle", "Spacebar"),
    Key("b", "B", "bypass chain", "chain_bypass", "B"),
    Key("l", "L", "loudness match", "match", "L"),
    # The session decides which platform comes next (earmark.live.platform_monitor).
    Key("p", "P", "platform monitor", "platform", "P"),
    Key("d", "D", "dim", "dim", "D"),
    Key("o", "O", "mono", "mono", "O"),
    Key("r", "R", "reset meters", "reset", "R"),
    Key("s", "S", "snapshot", "snapshot", "S"),
    Key("m", "M", "marker", "marker", "M"),
    Key("c", "C", "codec/clean", "codec", "C"),
    Key("x", "X", "codec artefacts", "codec_solo", "X"),
    Key("q", "Q", "quit", "quit", "Q", terminal_only=True),
)
_BY_CHAR = {k.char: k for k in KEYS}
_BY_ACTION = {k.action: k for k in KEYS}


def key_for(action: str) -> Key:
    """The key that does ``action`` (``KeyError`` if none)."""
    return _BY_ACTION[action]


def help_line(terminal: bool) -> str:
    """The keys line a view prints under its meters."""
    shown = [k for k in KEYS if terminal or not k.terminal_only]
    return "  ·  ".join(f"{k.name} {k.does}" for k in shown)


@dataclass(frozen=True, slots=True)
class Toggles:
    """What a key's command depends on, as a view sees the session right now.

    ``bypassed`` has one entry per path: whether its whole chain is bypassed,
    or None for a path with no chain.
    """

    a: int
    b: int
    audible: str  # "A" or "B"
    loudness_match: bool
    dim: bool
    mono: bool
    bypassed: tuple[bool | None, ...]


def key_commands(char: str | None, toggles: Toggles) -> list[tuple]:
    """The session commands the key ``char`` sends, given the session's ``toggles``.

    Empty for a key that is not in :data:`KEYS`, for ``q`` (the terminal view
    stops itself) and for B when neither A nor B has a chain.
    """
    key = _BY_CHAR.get((char or "").lower())  # Shift-M is M, as in the dashboard
    if key is None:
        return []
    action = key.action
    if action == "ab_toggle":
        return [("select", "toggle")]
    if action == "match":
        return [("match", not toggles.loudness_match)]
    if action == "platform":
        return [("platform_monitor", "next")]
    if action in ("dim", "mono"):
        return [("monitor", {action: not getattr(toggles, action)})]
    if action == "reset":
        # The meters (integrated, LRA, true peak max) and the dashboard's peak holds
        # and overs counters: "reset" means everything measured since the start.
        return [("reset_meters",), ("reset_holds",)]
    if action in ("snapshot", "marker"):
        return [(action,)]
    if action == "codec":  # the codec monitor (--codec-monitor): decoded <-> clean
        return [("codec", "toggle")]
    if action == "codec_solo":  # only what the codec changed (decoded minus clean)
        return [("codec", "solo")]
    if action == "chain_bypass":
        path = bypass_target(toggles)
        if path is None:
            return []
        return [("bypass", path, None, not toggles.bypassed[path])]
    return []  # quit


def bypass_target(toggles: Toggles) -> int | None:
    """The path whose chain B bypasses: the audible one's, else A's, else B's."""
    audible = toggles.b if toggles.audible == "B" else toggles.a
    for index in (audible, toggles.a, toggles.b):
        if 0 <= index < len(toggles.bypassed) and toggles.bypassed[index] is not None:
            return index
    return None


def path_number(index: int) -> int:
    """The number people see and type for the path at 0-based ``index``."""
    return index + 1


def path_index(number: int, count: int | None = None) -> int:
    """The 0-based index of the path people call ``number`` (from 1).

    Raises:
        ValueError: ``number`` is below 1, or above ``count`` when given.
    """
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise ValueError(f"paths are numbered from 1, got {number!r}")
    if count is not None and number > count:
        raise ValueError(f"there is no path {number} (paths 1 to {count})")
    return number - 1


def path_numbers(names: Sequence[str]) -> str:
    """``1: dry, 2: chain, 3: reference``: how a message lists the paths to choose from."""
    return ", ".join(f"{path_number(i)}: {n}" for i, n in enumerate(names))
