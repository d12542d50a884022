"""MIDI learn: move a control, pick an action, get a controller map.

:class:`Listener` opens every MIDI input (or those matching a pattern) and
records what arrives. :meth:`Listener.next_control` waits for a control to be
moved and watches it until it settles, then :func:`classify` says what it is:
a note or CC button, an absolute fader or knob, a relative encoder (and which
of the three encodings), a 14-bit CC pair, NRPN or pitch bend. The bindings
are validated by the map loader itself before anything is written.
"""

from __future__ import annotations

import itertools
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .decoder import Decoder
from .map import ACTIONS, ControllerMap, dump_map, parse_map
from .ports import (
    CLIENT_PREFIX,
    MidiUnavailableError,
    find_port,
    is_own_port,
    jack_graph,
    open_port_client,
    park_jack_end,
)

__all__ = ["Learned", "Listener", "classify", "parse_bind", "parse_value", "write_map"]

_SETTLE_S = 0.35  # a control is done moving after this long without a message
_MAX_WATCH_S = 2.5


@dataclass(frozen=True)
class Learned:
    """A control as learned: what it sends and how to read it."""

    kind: str  # cc | note | cc14 | nrpn | pitchbend
    channel: int  # 0-15
    number: int
    mode: str = "absolute"
    button: bool = False  # sends press/release (note, or a CC that only says 0/127)
    port: str = ""
    note: str = ""  # a doubt worth telling the engineer

    def describe(self) -> str:
        what = {"cc": "CC", "note": "note", "cc14": "14-bit CC", "nrpn": "NRPN"}.get(self.kind)
        head = f"pitch bend ch {self.channel + 1}" if what is None else (
            f"{what} {self.number} ch {self.channel + 1}"
        )  # fmt: skip
        kind = "button" if self.button else self.mode
        return f"{head} ({kind})"

    def table(self) -> dict[str, Any]:
        """The control's part of a ``[[control]]`` table."""
        out: dict[str, Any] = {self.kind: True if self.kind == "pitchbend" else self.number}
        out["channel"] = self.channel + 1
        if self.mode != "absolute":
            out["mode"] = self.mode
        return out


def classify(messages: Sequence[Sequence[int]], port: str = "") -> Learned | None:
    """What control sent ``messages`` (raw buffers from one port, in order)."""
    events = []
    decoder = Decoder()
    for m in messages:
        events += decoder.feed(m)
    if not events:
        return None
    bends = [e for e in events if e[0] == "pitchbend"]
    if bends:
        return Learned("pitchbend", bends[0][1], 0, port=port)
    ccs = [e for e in events if e[0] == "cc"]
    notes = [e for e in events if e[0] == "note"]
    if notes and not ccs:
        return Learned("note", notes[0][1], notes[0][2], button=True, port=port)
    if not ccs:
        return None
    channel = ccs[0][1]
    ccs = [e for e in ccs if e[1] == channel]
    numbers = {e[2] for e in ccs}
    if {99, 98} <= numbers and numbers & {6, 38}:
        msb = [e[3] for e in ccs if e[2] == 99][-1]
        lsb = [e[3] for e in ccs if e[2] == 98][-1]
        return Learned("nrpn", channel, (msb << 7) | lsb, port=port)
    pairs = sorted(n for n in numbers if n < 32 and n + 32 in numbers)
    if pairs:
        return Learned("cc14", channel, pairs[0], port=port)
    number = Counter(e[2] for e in ccs).most_common(1)[0][0]
    values = [e[3] for e in ccs if e[2] == number]
    if set(values) <= {0, 127} or (0 in values and len(set(values)) == 2):
        return Learned("cc", channel, number, button=True, port=port)
    mode, doubt = _relative_mode(values)
    return Learned("cc", channel, number, mode=mode, port=port, note=doubt)


def _relative_mode(values: Sequence[int]) -> tuple[str, str]:
    """("absolute" or a relative encoding, a doubt to report or "").

    An absolute control sends a value only when it changes, so the same value
    twice in a row, or a jump across the range and back, means an encoder
    sending steps. Its encoding shows in where the values sit: near 0/128
    (two's complement), near 64 (binary offset), or 1-63 up / 65-127 down
    (sign-magnitude).
    """
    repeats = any(a == b for a, b in itertools.pairwise(values))
    jumps = any(abs(a - b) > 32 for a, b in itertools.pairwise(values))
    if not (repeats or jumps):
        return "absolute", ""
    small = 16
    if all(abs(v - 64) < small for v in values):
        return "relative-binary-offset", ""
    up = [v for v in values if 0 < v < small]
    down_twos = [v for v in values if v > 128 - small]
    down_sign = [v for v in values if 64 < v < 64 + small]
    if len(up) + len(down_twos) == len(values):
        if down_twos:
            return "relative-twos", ""
        return "relative-twos", (
            "turned one way only: two's complement and sign-magnitude look the same; "
            "turn it both ways, or give mode="
        )
    if len(up) + len(down_sign) == len(values):
        return "relative-sign-magnitude", ""
    return "absolute", ""


class Listener:
    """Every MIDI input matching ``pattern`` (all inputs when None), recorded as it arrives."""

    def __init__(self, pattern: str | None = None) -> None:
        # With JACK each port is registered once and joined by name (ui/midi/ports.py: closing a
        # JACK port can crash the process); other back-ends open and close their ports.
        first, self.api, end = open_port_client("in", f"{CLIENT_PREFIX}-learn-0", "learn")
        listing = jack_graph().ports(inputs=False) if end is not None else first.get_ports()
        names = [n for n in listing if not is_own_port(n)]
        if pattern:
            names = [n for n in names if find_port([n], pattern) is not None]
        self.ports = names
        self._queue: deque[tuple[float, str, list[int]]] = deque(maxlen=4096)
        self._wake = threading.Event()
        self._ins: list[tuple[Any, Any]] = []
        for k, name in enumerate(names):
            if k == 0:
                midi_in = first
            else:
                midi_in, _, end = open_port_client("in", f"{CLIENT_PREFIX}-learn-{k}", "learn")
            midi_in.ignore_types(sysex=True, timing=True, active_sense=True)
            if end is not None:
                end.use_callback(self._recorder(name))
                self._ins.append((midi_in, end))
                jack_graph().connect(name, end.port)
                continue
            index = find_port(midi_in.get_ports(), name)
            if index is None:  # gone in between
                midi_in.delete()
                continue
            midi_in.set_callback(self._recorder(name))
            midi_in.open_port(index, "learn")
            self._ins.append((midi_in, None))
        if not names:
            self.close()
            if end is None:
                first.delete()  # no port was opened: closing the client alone is safe
            else:
                park_jack_end(end)
            where = f"matching {pattern!r}" if pattern else "at all"
            raise MidiUnavailableError(
                f"no MIDI input {where} ({self.api}); see earmark midi ports"
            )

    def _recorder(self, port: str):
        def record(event: Any, data: Any = None) -> None:
            self._queue.append((time.monotonic(), port, list(event[0])))
            self._wake.set()

        return record

    def next_control(self, timeout: float | None = None) -> Learned | None:
        """Wait for a control to move, watch it settle, and say what it is (None on timeout)."""
        self._queue.clear()
        end = None if timeout is None else time.monotonic() + timeout
        while not self._queue:
            left = None if end is None else end - time.monotonic()
            if left is not None and left <= 0:
                return None
            self._wake.wait(0.1 if left is None else min(0.1, left))
            self._wake.clear()
        first = time.monotonic()
        last_count = -1
        while time.monotonic() - first < _MAX_WATCH_S:
            count = len(self._queue)
            if count == last_count:
                break
            last_count = count
            time.sleep(_SETTLE_S)
        taken = list(self._queue)
        self._queue.clear()
        port = taken[0][1]
        return classify([m for _, p, m in taken if p == port], port)

    def close(self) -> None:
        for midi_in, end in self._ins:
            try:
                if end is not None:
                    end.deliver = None
                    park_jack_end(end)
                    continue
                midi_in.cancel_callback()
                midi_in.close_port()
                midi_in.delete()
            except Exception:
                pass
        self._ins = []


def parse_bind(text: str) -> tuple[str, dict[str, Any]]:
    """``"parameter:plugin=1,key=threshold_db,min=-40"`` -> ("parameter", {...}).

    Values are read as TOML would read them (numbers, true/false, "strings";
    bare words are strings).
    """
    action, _, rest = text.partition(":")
    action = action.strip()
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r} (actions: {', '.join(ACTIONS)})")
    params: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, raw = part.partition("=")
        if not eq or not key.strip():
            raise ValueError(f"{text!r}: expected key=value, got {part!r}")
        params[key.strip()] = parse_value(raw.strip())
    return action, params


def parse_value(raw: str) -> Any:
    """A value typed by the user, read as TOML would (numbers, true/false, "strings";
    bare words are strings)."""
    if raw in ("true", "false"):
        return raw == "true"
    for cast in (int, float):
        try:
            return cast(raw)
        except ValueError:
            pass
    return raw.strip('"')


def write_map(
    name: str, port: str, controls: Sequence[dict[str, Any]], source: str, header: str = ""
) -> tuple[ControllerMap, str]:
    """Validate learned controls with the map loader; return the map and its TOML text.

    Raises:
        PresetError: a binding is invalid (naming the control and key).
    """
    pattern = re.escape(port.split(":", 1)[-1]) if port else ""
    lines = [f"name = {_toml(name)}", "version = 1", "", "[port]", f"input = {_toml(pattern)}"]
    if any("led" in c for c in controls):
        lines.append(f"output = {_toml(pattern)}")
    for control in controls:
        lines += ["", "[[control]]"] + [f"{k} = {_toml(v)}" for k, v in control.items()]
    cmap = parse_map("\n".join(lines) + "\n", source)
    return cmap, dump_map(cmap, header)


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'
