"""The MIDI controller surface: A/B, bypass, parameters, snapshots and markers from hardware.

The controller is earmark's second user interface. :class:`ControllerSurface`
is a session service (``earmark.session.LiveSession.add_service``):

- **Input** runs on python-rtmidi's callback thread (with JACK, that is the MIDI
  client's own process thread). It parses, looks the control up, and then only
  *enqueues*: one-shot and monitor actions are posted to the session (a deque
  append; never blocks), parameter moves are coalesced into one slot per
  control (the latest position, or the sum of encoder detents), chain edits are
  queued for the session thread. It never touches audio, never blocks, never
  raises (every fault is counted), and posts at most ``commands_per_s`` commands
  a second to the engine (a token bucket; the engine's own queue is a last
  resort, not a limiter).
- **The session thread** (``tick``, ``tick_hz`` times a second) turns the
  coalesced parameter moves into the session's ``parameter`` commands with soft
  takeover (an absolute fader or knob changes nothing until it reaches the
  parameter's current value), and chain bypasses into its ``bypass`` commands
  (the same commands the dashboard sends: every control edits a chain through
  the session's command queue), drives the LEDs from the session state
  (sending only what changed, so LEDs follow the dashboard and the keys too),
  and once a second checks the port list: a controller that disappears is
  reported and re-opened when it returns.

MIDI back-ends: JACK first (the only one on machines without an ALSA
sequencer), then the platform's own (ALSA, CoreMIDI, Windows MM).
``EARMARK_MIDI_API`` (``jack``, ``alsa``, ``coremidi``, ``winmm``) picks one.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from functools import partial
from typing import Any

from .controller_map import Binding, ControllerMap, Led

__all__ = [
    "ControllerSurface",
    "Counters",
    "Decoder",
    "JackEnd",
    "MidiUnavailableError",
    "current_value",
    "find_port",
    "jack_graph",
    "jack_ports_registered",
    "list_ports",
    "open_client",
    "open_jack_end",
    "open_port_client",
    "park_jack_end",
    "quiet_probe",
]

CLIENT_PREFIX = "earmark-midi"
_API_ENV = "EARMARK_MIDI_API"
_POLL_S = 1.0  # hot-plug: how often the port list is read
_RETRY_API_S = 10.0  # no MIDI back-end at all: how often to try again
_BLINK_S = 0.6  # "snapshot taken": three 100 ms flashes
_BLINK_PHASE_S = 0.1
_MAX_LED_PER_TICK = 64
_MAX_CHAIN_OPS = 256
_MAX_PARAM_SETS_PER_TICK = 32
_EXPECT_S = 0.5  # how long a posted monitor change outranks an older state snapshot
# Delivery "poll": rtmidi queues input in C++ (no Python, no GIL in the MIDI back-end's
# thread, which with JACK is part of the audio graph); a reader thread drains it.
_READ_QUEUE = 16384
_READ_BATCH = 64  # messages handled per wake before the reader sleeps again
_READ_SLEEP_S = 0.001
# After a quarter second without input the reader wakes 250 times a second instead
# of 1000: each wake takes the GIL from the audio callback (measured: idle callback
# p99 286 -> 785 us at 1 ms), and a first press after a pause waits at most 4 ms.
_IDLE_AFTER_S = 0.25
_IDLE_SLEEP_S = 0.004
# In an audio process the reader wakes just after an audio callback instead
# (Engine.after_callback): its GIL time then falls between callbacks. It waits at
# most this long for one (large blocks), then reads anyway.
_PACE_WAIT_S = 0.001
DELIVERIES = ("poll", "callback")


# -- back-ends and ports ---------------------------------------------------------------


class MidiUnavailableError(RuntimeError):
    """No MIDI back-end could be opened; the message says why for each one tried."""


def _api_order() -> list[tuple[str, int]]:
    import rtmidi

    names = {
        rtmidi.API_UNIX_JACK: "jack",
        rtmidi.API_LINUX_ALSA: "alsa",
        rtmidi.API_MACOSX_CORE: "coremidi",
        rtmidi.API_WINDOWS_MM: "winmm",
    }
    if sys.platform == "darwin":
        order = [rtmidi.API_MACOSX_CORE, rtmidi.API_UNIX_JACK]
    elif sys.platform.startswith("win"):
        order = [rtmidi.API_WINDOWS_MM]
    else:
        order = [rtmidi.API_UNIX_JACK, rtmidi.API_LINUX_ALSA]
    compiled = set(rtmidi.get_compiled_api())
    wanted = os.environ.get(_API_ENV, "").strip().lower()
    if wanted:
        chosen = [api for api, name in names.items() if name == wanted]
        if not chosen:
            raise MidiUnavailableError(
                f"{_API_ENV}={wanted!r} is not a MIDI back-end "
                f"(choose from {', '.join(names.values())})"
            )
        order = chosen
    return [(names[api], api) for api in order if api in compiled]


# Lines the MIDI back-ends print straight to the C stderr when a probe fails (libjack,
# RtMidi before python-rtmidi's error callback is set, alsa-lib): the failure itself is
# reported once, as a status line, instead.
_PROBE_NOISE = re.compile(
    r"^\s*$|^Cannot connect to server|^jack server is not running|^JackShmReadWritePtr"
    r"|^ALSA lib |^Midi(In|Out)\w*::"
)
_stderr_lock = threading.Lock()


def quiet_probe(probe: Callable[[], Any]) -> Any:
    """Run ``probe`` with the C-level stderr (fd 2) captured; return what it returns.

    What the back-ends print while a probe fails ("MidiInJack::initialize: JACK
    server not running?", "Cannot connect to server socket", "ALSA lib seq_hw.c...")
    is dropped: the caller reports the failure once, as one status line. Anything
    else written meanwhile (another thread's message) is passed on to stderr.
    """
    with _stderr_lock:
        try:
            saved = os.dup(2)
        except OSError:  # no fd 2 at all: nothing to keep quiet
            return probe()
        sys.stderr.flush()
        with _tempfile() as sink:
            os.dup2(sink.fileno(), 2)
            try:
                return probe()
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
                os.close(saved)
                sink.seek(0)
                kept = [
                    line
                    for line in sink.read().decode(errors="replace").splitlines(keepends=True)
                    if not _PROBE_NOISE.search(line)
                ]
                if kept:
                    os.write(2, "".join(kept).encode())


def _tempfile() -> Any:
    import tempfile

    return tempfile.TemporaryFile()


_REASONS = (
    ("JACK server not running", "no JACK server"),
    ("ALSA sequencer", "no ALSA sequencer"),
)


def _reason(name: str, exc: BaseException) -> str:
    """A back-end's failure in a few words ("no JACK server")."""
    text = _one_line(exc)
    for needle, short in _REASONS:
        if needle in text:
            return short
    return f"{name}: {text}"


def _rtmidi_client(direction: str, api: int, client: str, queue_size: int) -> Any:
    import rtmidi

    if direction == "in":
        return rtmidi.MidiIn(api, name=client, queue_size_limit=queue_size)
    return rtmidi.MidiOut(api, name=client)


def open_client(direction: str, client: str, queue_size: int = 1024) -> tuple[Any, str]:
    """An rtmidi ``MidiIn`` (direction "in") or ``MidiOut`` ("out") on the first back-end
    that opens, and the back-end's name. What a failing back-end prints is kept off
    stderr (see :func:`quiet_probe`).

    Raises:
        MidiUnavailableError: naming each back-end tried and why it failed.
    """
    reasons = []
    order = _api_order()
    if not order:
        raise MidiUnavailableError("python-rtmidi has no MIDI back-end for this platform")
    for name, api in order:
        try:
            return quiet_probe(partial(_rtmidi_client, direction, api, client, queue_size)), name
        except Exception as exc:  # rtmidi.SystemError and friends
            reasons.append(_reason(name, exc))
    raise MidiUnavailableError("no MIDI back-end could be opened (" + "; ".join(reasons) + ")")


# -- JACK: ports that are never closed ---------------------------------------------------------
#
# libjack (jack2, up to 1.9.22 at least) is not safe against closing a port while the
# server changes the graph: jack_port_unregister() erases the port from the client's own
# port list in the caller's thread while the client's notification thread may be walking
# that list (JackClient::HandleLatencyCallback, run on every client after any connection,
# port or client change anywhere on the server). The process then dies with SIGSEGV in
# that thread. python-rtmidi's close_port() and delete() (whose destructor closes the port
# first) both do it. So with JACK, earmark registers each MIDI port once and never
# unregisters it: a controller is joined and left with jack_connect/jack_disconnect by
# port name, from a client of its own that owns no port (bench/midi.py --close-race shows
# the crash and its absence). A stopped surface leaves its clients parked for the next one
# with the same name; jackd removes them when the process exits.


class _Jack:
    """libjack through ctypes, in a client with no port: list ports, (dis)connect them."""

    _MIDI = b"8 bit raw midi"
    _IS_INPUT, _IS_OUTPUT = 0x1, 0x2
    _NO_START_SERVER = 0x01

    def __init__(self, lib: Any, client: Any) -> None:
        self._lib = lib
        self._client = client
        self._lock = threading.Lock()

    @classmethod
    def open(cls) -> _Jack:
        import ctypes
        import ctypes.util

        path = ctypes.util.find_library("jack")
        if path is None:
            raise MidiUnavailableError("libjack is not installed (the JACK client library)")
        lib = ctypes.CDLL(path)
        lib.jack_client_open.restype = ctypes.c_void_p
        lib.jack_client_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_void_p]
        lib.jack_get_ports.restype = ctypes.POINTER(ctypes.c_char_p)
        lib.jack_get_ports.argtypes = [
            ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong
        ]  # fmt: skip
        lib.jack_free.argtypes = [ctypes.c_void_p]
        for fn in ("jack_connect", "jack_disconnect"):
            getattr(lib, fn).argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]
        lib.jack_port_by_name.restype = ctypes.c_void_p
        lib.jack_port_by_name.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.jack_port_get_all_connections.restype = ctypes.POINTER(ctypes.c_char_p)
        lib.jack_port_get_all_connections.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        lib.jack_get_uuid_for_client_name.restype = ctypes.c_void_p
        lib.jack_get_uuid_for_client_name.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        status = ctypes.c_int(0)
        name = f"{CLIENT_PREFIX}-graph".encode()
        client = quiet_probe(
            lambda: lib.jack_client_open(name, cls._NO_START_SERVER, ctypes.byref(status))
        )
        if not client:
            raise MidiUnavailableError("no JACK server")
        return cls(lib, client)

    def _strings(self, array: Any) -> list[str]:
        if not array:
            return []
        out = []
        i = 0
        while array[i] is not None:
            out.append(array[i].decode(errors="replace"))
            i += 1
        self._lib.jack_free(array)
        return out

    def ports(self, inputs: bool, pattern: str | None = None) -> list[str]:
        """MIDI ports that can be written to (``inputs``) or read from, in one atomic read."""
        flags = self._IS_INPUT if inputs else self._IS_OUTPUT
        rx = pattern.encode() if pattern is not None else None
        with self._lock:
            return self._strings(self._lib.jack_get_ports(self._client, rx, self._MIDI, flags))

    def connect(self, source: str, destination: str) -> bool:
        """Join two ports by name (already joined counts as done)."""
        with self._lock:
            code = self._lib.jack_connect(self._client, source.encode(), destination.encode())
        return code in (0, 17)  # 17: EEXIST, already connected

    def disconnect_all(self, port: str) -> None:
        """Leave every port ``port`` is joined to (ours: never unregistered, only left)."""
        with self._lock:
            handle = self._lib.jack_port_by_name(self._client, port.encode())
            if not handle:
                return
            others = self._strings(self._lib.jack_port_get_all_connections(self._client, handle))
            for other in others:  # jack_disconnect takes (source, destination): try both ways
                if self._lib.jack_disconnect(self._client, port.encode(), other.encode()):
                    self._lib.jack_disconnect(self._client, other.encode(), port.encode())

    def client_exists(self, name: str) -> bool:
        with self._lock:
            uuid = self._lib.jack_get_uuid_for_client_name(self._client, name.encode())
            if uuid:
                self._lib.jack_free(uuid)
            return bool(uuid)


class JackEnd:
    """One of earmark's JACK MIDI ports, registered once and kept for the process's life.

    ``port`` is its full JACK name. For input, ``deliver`` is where python-rtmidi's
    callback goes (set once: cancelling a callback frees it while JACK's thread may be
    about to call it); None drops the message.
    """

    def __init__(self, obj: Any, port: str, direction: str, client: str, short: str) -> None:
        self.obj = obj
        self.port = port
        self.direction = direction
        self.client = client
        self.short = short
        self.deliver: Callable[[Any], None] | None = None
        self.has_callback = False

    def __call__(self, event: Any, data: Any = None) -> None:
        target = self.deliver
        if target is not None:
            target(event)

    def use_callback(self, target: Callable[[Any], None] | None) -> None:
        self.deliver = target
        if target is not None and not self.has_callback:
            self.obj.set_callback(self)
            self.has_callback = True

    def drain(self) -> None:
        """Drop what the input queued while it had no owner."""
        if self.direction == "in":
            while self.obj.get_message() is not None:
                pass


_jack_graph: _Jack | None = None
_parked: dict[tuple[str, str, str], list[JackEnd]] = {}
_kept: list[Any] = []  # every JACK rtmidi object made: never freed (see above)
_jack_lock = threading.Lock()


def jack_graph() -> _Jack:
    """The process's port-less JACK client (ports listed and joined by name).

    Raises:
        MidiUnavailableError: no JACK server, or no libjack.
    """
    global _jack_graph
    with _jack_lock:
        if _jack_graph is None:
            _jack_graph = _Jack.open()
        return _jack_graph


def open_jack_end(direction: str, client: str, short: str, queue_size: int = 1024) -> JackEnd:
    """A JACK MIDI port named ``short``, with no connection: a parked one of this client
    name, direction and port name, or a new client with one port registered for good.

    Raises:
        MidiUnavailableError: no JACK server.
    """
    graph = jack_graph()
    with _jack_lock:
        parked = _parked.get((direction, client, short))
        if parked:
            end = parked.pop()
            graph.disconnect_all(end.port)
            end.drain()
            return end
    import ctypes

    name, k = client, 1
    while graph.client_exists(name):  # JACK would rename ours: name it ourselves
        k += 1
        name = f"{client}-{k}"
    import rtmidi

    try:
        obj = quiet_probe(
            partial(_rtmidi_client, direction, rtmidi.API_UNIX_JACK, name, queue_size)
        )
    except Exception as exc:
        raise MidiUnavailableError(_reason("jack", exc)) from exc
    # Never freed: its destructor would unregister the port (see above). A reference the
    # interpreter never drops keeps it alive through shutdown too.
    ctypes.pythonapi.Py_IncRef(ctypes.py_object(obj))
    _kept.append(obj)
    obj.open_virtual_port(short)
    return JackEnd(obj, f"{name}:{short}", direction, client, short)


def jack_ports_registered() -> int:
    """How many JACK MIDI ports this process has registered (each one once, for good)."""
    return len(_kept)


def park_jack_end(end: JackEnd) -> None:
    """Give a port back (it stays registered): its input connections are left now, so
    nothing queues meanwhile; its output ones when it is taken again (messages still
    on their way out, LEDs turned off, are delivered)."""
    end.deliver = None
    if end.direction == "in":
        with contextlib.suppress(MidiUnavailableError):
            jack_graph().disconnect_all(end.port)
    with _jack_lock:
        _parked.setdefault((end.direction, end.client, end.short), []).append(end)


def is_own_port(name: str) -> bool:
    """A port of earmark's own MIDI clients (never a controller)."""
    return name.split(":", 1)[0].startswith(CLIENT_PREFIX)


def list_ports() -> dict[str, Any]:
    """``{"api": ..., "inputs": [...], "outputs": [...]}``: ports a controller may be on.

    Inputs are the ports earmark can read from (a controller's keys and faders),
    outputs the ones it can write to (a controller's LEDs).
    """
    order = _api_order()
    if order and order[0][0] == "jack":
        try:  # one atomic read of the graph (rtmidi's lists fail if a port goes meanwhile)
            graph = jack_graph()
            return {
                "api": "jack",
                "inputs": [p for p in graph.ports(inputs=False) if not is_own_port(p)],
                "outputs": [p for p in graph.ports(inputs=True) if not is_own_port(p)],
            }
        except MidiUnavailableError:
            pass  # no JACK server: the other back-ends, as below
    midi_in, api = open_client("in", f"{CLIENT_PREFIX}-list")
    midi_out = None
    try:
        midi_out, _ = open_client("out", f"{CLIENT_PREFIX}-list")
        return {
            "api": api,
            "inputs": [p for p in midi_in.get_ports() if not is_own_port(p)],
            "outputs": [p for p in midi_out.get_ports() if not is_own_port(p)],
        }
    finally:
        for obj in (midi_in, midi_out):
            if obj is not None:
                obj.delete()  # no port was opened: closing the client alone is safe


def find_port(names: Sequence[str], pattern: str) -> int | None:
    """Index of the first port in ``names`` that ``pattern`` names.

    An exact name wins; otherwise ``pattern`` is a case-insensitive regular
    expression searched in each name (an invalid one is taken as plain text).
    earmark's own ports never match.
    """
    candidates = [(i, n) for i, n in enumerate(names) if not is_own_port(n)]
    for i, n in candidates:
        if n == pattern:
            return i
    try:
        rx = re.compile(pattern, re.IGNORECASE)
    except re.error:
        rx = re.compile(re.escape(pattern), re.IGNORECASE)
    for i, n in candidates:
        if rx.search(n):
            return i
    return None


def open_port_client(
    direction: str, client: str, short: str, queue_size: int = 1024
) -> tuple[Any, str, JackEnd | None]:
    """A MIDI client for one port of earmark's: (rtmidi object, back-end name, JackEnd).

    With JACK the port is registered already and never closed (see :class:`JackEnd`):
    join it to a controller with ``jack_graph().connect``. With the other back-ends the
    JackEnd is None and the caller opens and closes the rtmidi port itself.

    Raises:
        MidiUnavailableError: naming each back-end tried and why it failed.
    """
    order = _api_order()
    if not order:
        raise MidiUnavailableError("python-rtmidi has no MIDI back-end for this platform")
    reasons = []
    for name, api in order:
        try:
            if name == "jack":
                end = open_jack_end(direction, client, short, queue_size)
                return end.obj, name, end
            made = quiet_probe(partial(_rtmidi_client, direction, api, client, queue_size))
            return made, name, None
        except MidiUnavailableError as exc:
            reasons.append(str(exc))
        except Exception as exc:  # rtmidi.SystemError and friends
            reasons.append(_reason(name, exc))
    raise MidiUnavailableError("no MIDI back-end could be opened (" + "; ".join(reasons) + ")")


# -- parsing --------------------------------------------------------------------------------


@dataclass
class Counters:
    """What the surface saw and did; read by views, tests and the benchmark."""

    messages: int = 0  # rtmidi callbacks
    events: int = 0  # channel messages decoded
    junk: int = 0  # malformed: truncated, data without status, bytes out of range
    sysex: int = 0
    system: int = 0  # realtime and system common bytes (clock, song position...)
    unmapped: int = 0  # well-formed, but no control of the map sends it
    rate_limited: int = 0  # engine commands refused by the token bucket
    posted: int = 0  # commands posted to the session/engine
    dropped: int = 0  # refused by the session's own queue
    chain_ops: int = 0  # "bypass" commands posted to the session
    param_sets: int = 0  # "parameter" commands posted to the session
    param_errors: int = 0  # no such chain or plugin (what a chain refuses, the session reports)
    pickup_waiting: int = 0  # absolute moves ignored until the control reaches the value
    led_sent: int = 0
    reconnects: int = 0
    errors: int = 0  # exceptions caught on the MIDI thread (should stay 0)

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


# Events: (kind, channel 0-15, number, value). Values: note velocity (0 = off),
# 7-bit CC, 14-bit for cc14/nrpn/pitchbend; "nrpn_step" carries +1/-1.
Event = tuple[str, int, int, int]

_DATA_BYTES = {0x80: 2, 0x90: 2, 0xA0: 2, 0xB0: 2, 0xC0: 1, 0xD0: 1, 0xE0: 2}
_SYSTEM_COMMON_DATA = {0xF1: 1, 0xF2: 2, 0xF3: 1, 0xF6: 0}


class Decoder:
    """MIDI bytes -> events, with 14-bit CC pairs and NRPN assembled per channel.

    Robust to what arrives from a port: several messages (or running status)
    in one buffer, truncated messages, data bytes without a status, values out
    of range, SysEx, realtime and system common bytes; each is counted, none
    raises.

    14-bit pairs (``cc14``: MSB on CC n, LSB on n+32) and NRPN (CC 99/98 select
    the parameter, 6/38 carry the value, 96/97 step it) are decoded only on the
    channels and numbers the map binds that way, so a controller whose CC 6 is
    a plain knob keeps it. A value's MSB alone gives ``msb << 7 | msb`` (the
    7-bit value scaled exactly onto 14 bits: 127 -> 16383), refined when the LSB
    follows, so 7-bit senders of "14-bit" messages reach the whole range.
    """

    def __init__(
        self,
        cc14: Iterable[tuple[int | None, int]] = (),
        nrpn_channels: Iterable[int | None] = (),
        counters: Counters | None = None,
    ) -> None:
        self.counters = counters if counters is not None else Counters()
        self._cc14_msb: dict[tuple[int | None, int], int] = {}
        for ch, n in cc14:
            self._cc14_msb[(ch, n)] = 0
        self._cc14_any = any(ch is None for ch, _ in self._cc14_msb)
        self._nrpn_all = any(ch is None for ch in nrpn_channels)
        self._nrpn = {ch for ch in nrpn_channels if ch is not None}
        self._param = [-1] * 16  # selected NRPN number per channel (-1: none, or an RPN)
        self._param_msb = [0] * 16
        self._data_msb = [0] * 16
        self._lsb: dict[tuple[int, int], int] = {}

    def feed(self, data: Sequence[int]) -> list[Event]:
        """Decode one buffer from the port."""
        out: list[Event] = []
        c = self.counters
        n = len(data)
        i = 0
        status = 0
        while i < n:
            b = data[i]
            if not isinstance(b, int) or b < 0 or b > 0xFF:
                c.junk += 1
                return out
            if b >= 0xF8:  # realtime may sit anywhere, even inside a message
                c.system += 1
                i += 1
                continue
            if b == 0xF0:
                c.sysex += 1
                end = i + 1
                while end < n and data[end] != 0xF7:
                    end += 1
                i = end + 1
                status = 0
                continue
            if b >= 0xF0:
                c.system += 1
                i += 1 + _SYSTEM_COMMON_DATA.get(b, 0)
                status = 0
                continue
            if b & 0x80:
                status = b
                i += 1
            elif status == 0:
                c.junk += 1  # data bytes with no status before them: one piece of junk
                while i < n and _is_data(data[i]):
                    i += 1
                continue
            need = _DATA_BYTES[status & 0xF0]
            body = data[i : i + need]
            if len(body) < need or not all(_is_data(d) for d in body):
                c.junk += 1  # truncated, or a status byte (or worse) where data belongs
                while i < n and _is_data(data[i]):
                    i += 1
                if i < n and not (isinstance(data[i], int) and 0 <= data[i] <= 0xFF):
                    return out
                status = 0
                continue
            i += need
            self._message(status, body, out)
        return out

    def _message(self, status: int, body: Sequence[int], out: list[Event]) -> None:
        kind, ch = status & 0xF0, status & 0x0F
        self.counters.events += 1
        if kind == 0x90:
            out.append(("note", ch, body[0], body[1]))
        elif kind == 0x80:
            out.append(("note", ch, body[0], 0))
        elif kind == 0xB0:
            self._cc(ch, body[0], body[1], out)
        elif kind == 0xE0:
            out.append(("pitchbend", ch, 0, body[0] | (body[1] << 7)))
        else:  # aftertouch, program change, channel pressure: nothing binds them
            self.counters.unmapped += 1

    def _cc(self, ch: int, num: int, value: int, out: list[Event]) -> None:
        if (ch in self._nrpn or self._nrpn_all) and num in (99, 98, 101, 100, 6, 38, 96, 97):
            self._nrpn_cc(ch, num, value, out)
            return
        if self._cc14_msb:
            if num < 32:
                key = (ch, num) if (ch, num) in self._cc14_msb else (None, num)
                if key in self._cc14_msb:
                    self._cc14_msb[key] = value
                    out.append(("cc14", ch, num, (value << 7) | value))
                    return
            elif num < 64:
                key = (ch, num - 32) if (ch, num - 32) in self._cc14_msb else (None, num - 32)
                if key in self._cc14_msb:
                    out.append(("cc14", ch, num - 32, (self._cc14_msb[key] << 7) | value))
                    return
        out.append(("cc", ch, num, value))

    def _nrpn_cc(self, ch: int, num: int, value: int, out: list[Event]) -> None:
        if num == 99:
            self._param_msb[ch] = value
            self._param[ch] = -1  # complete once the LSB (98) arrives
        elif num == 98:
            self._param[ch] = (self._param_msb[ch] << 7) | value
            if self._param_msb[ch] == 127 and value == 127:  # the "null" parameter
                self._param[ch] = -1
        elif num in (101, 100):  # an RPN selection deselects any NRPN
            self._param[ch] = -1
        elif self._param[ch] < 0:
            self.counters.unmapped += 1  # data entry with no NRPN selected
        elif num == 6:
            self._data_msb[ch] = value
            out.append(("nrpn", ch, self._param[ch], (value << 7) | value))
        elif num == 38:
            out.append(("nrpn", ch, self._param[ch], (self._data_msb[ch] << 7) | value))
        else:  # 96 increment, 97 decrement
            out.append(("nrpn_step", ch, self._param[ch], 1 if num == 96 else -1))


def _is_data(b: object) -> bool:
    return isinstance(b, int) and 0 <= b <= 0x7F


def relative_delta(mode: str, value: int) -> int:
    """Detents encoded in a 7-bit relative encoder value."""
    if mode == "relative-twos":  # 1..63 up, 127..64 down (-1..-64)
        return value - 128 if value >= 64 else value
    if mode == "relative-binary-offset":  # 64 is no move: 65 = +1, 63 = -1
        return value - 64
    if mode == "relative-sign-magnitude":  # bit 6 is the sign: 1 = +1, 65 = -1
        return -(value & 0x3F) if value & 0x40 else value & 0x3F
    return 0


# -- chain parameters ---------------------------------------------------------------------------

_UNIT_SCALE = {"ms": 1e-3, "s": 1.0, "hz": 1.0, "khz": 1e3, "db": 1.0, "percent": 1.0}


def current_value(chain: Any, plugin: int, key: str) -> float | None:
    """The value of ``key`` (a chain preset key with its unit) of plugin ``plugin`` now.

    From the chain's spec (it includes live edits), converting between units of
    one family (``attack_s`` for a preset that says ``attack_ms``); else the
    plugin's own current value (``parameter_values``). None when neither knows it.
    """
    try:
        spec = chain.spec.plugins[plugin]
    except (AttributeError, IndexError, TypeError):
        spec = None
    if spec is not None:
        params = dict(spec.params)
        if key in params and _is_number(params[key]):
            return float(params[key])
        base, _, unit = key.rpartition("_")
        if unit.lower() in _UNIT_SCALE:
            for other, value in params.items():
                b2, _, u2 = other.rpartition("_")
                if b2 == base and u2.lower() in _UNIT_SCALE and _is_number(value):
                    same_family = {unit.lower(), u2.lower()} <= {"ms", "s"} or {
                        unit.lower(),
                        u2.lower(),
                    } <= {"hz", "khz"}
                    if same_family:
                        return float(value) * _UNIT_SCALE[u2.lower()] / _UNIT_SCALE[unit.lower()]
    try:  # in this process or in an isolated host (the value it last reported)
        return chain.parameter_values(plugin)[key]
    except Exception:
        return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# -- the surface --------------------------------------------------------------------------------


class _Slot:
    """One binding's live state. The MIDI thread writes ``pressed``, ``pos``,
    ``seq`` and ``detents``; the session thread writes the rest (one writer each)."""

    __slots__ = (
        "applied_detents",
        "binding",
        "detents",
        "hi",
        "last_set",
        "lo",
        "picked",
        "pos",
        "pressed",
        "prev_pos",
        "seen_seq",
        "seq",
        "span_epoch",
        "tick_epoch",
    )

    def __init__(self, binding: Binding) -> None:
        self.binding = binding
        self.pressed = False
        self.pos = 0.0  # latest absolute position, 0..1
        self.seq = 0  # bumped by every absolute move
        self.seen_seq = 0
        # The span of positions since the last tick (MIDI thread), so a fast sweep through
        # the parameter's value between two ticks still picks it up.
        self.lo = self.hi = 0.0
        self.span_epoch = -1
        self.tick_epoch = 0  # bumped by the tick when it has read the span
        self.prev_pos: float | None = None  # the position the last tick acted on
        self.detents = 0  # relative: running sum written by the MIDI thread
        self.applied_detents = 0
        self.picked = False
        self.last_set: float | None = None


class ControllerSurface:
    """A MIDI controller driving a live session (a session service; see the module doc).

    Args:
        cmap: the controller map.
        port: a port name or pattern overriding the map's (for input and LEDs).
        client: the MIDI client name prefix (earmark's own ports never match a pattern).
        commands_per_s, burst: the token bucket for commands to the engine/session.
        poll_s: how often the port list is read for hot-plug.
        delivery: "poll" (default): rtmidi queues the input and a reader thread of the
            surface drains it every millisecond; "callback": python-rtmidi calls the
            surface from the back-end's own thread (with JACK, inside the audio graph's
            cycle, where every message must take the GIL; see bench/midi.py).
    """

    tick_hz = 30.0

    def __init__(
        self,
        cmap: ControllerMap,
        *,
        port: str | None = None,
        client: str = CLIENT_PREFIX,
        commands_per_s: float = 100.0,
        burst: int = 20,
        poll_s: float = _POLL_S,
        delivery: str = "poll",
    ) -> None:
        if delivery not in DELIVERIES:
            raise ValueError(f"delivery must be one of {DELIVERIES}, got {delivery!r}")
        if not client.startswith(CLIENT_PREFIX):
            raise ValueError(f"client names start with {CLIENT_PREFIX!r}, got {client!r}")
        self.map = cmap
        self.delivery = delivery
        self._reader: threading.Thread | None = None
        self._reading = False
        self._pace: Any = None
        self.input_pattern = port or cmap.input
        self.output_pattern = port or cmap.output
        self.client = client
        self.counters = Counters()
        self.status = f"controller {cmap.name}: not started"
        self.api: str | None = None
        self.input_port: str | None = None
        self.output_port: str | None = None
        self.last_error: str | None = None
        self._rate = float(commands_per_s)
        self._burst = float(burst)
        self._tokens = float(burst)
        self._refill_at = time.monotonic()
        self._poll_s = float(poll_s)
        self._slots = [_Slot(b) for b in cmap.controls]
        self._lookup: dict[tuple[str, int | None, int], _Slot] = {}
        for slot in self._slots:
            b = slot.binding
            kind = "nrpn" if b.kind == "nrpn" else b.kind
            self._lookup[(kind, b.channel, b.number)] = slot
        self._decoder = Decoder(
            cc14=[(b.channel, b.number) for b in cmap.controls if b.kind == "cc14"],
            nrpn_channels=[b.channel for b in cmap.controls if b.kind == "nrpn"],
            counters=self.counters,
        )
        self._continuous = [s for s in self._slots if s.binding.continuous]
        self._chain_ops: deque[tuple[_Slot, bool | None]] = deque()
        self._expect: dict[str, tuple[Any, float]] = {}
        self._blink_until: dict[str, float] = {}
        self._led_sent: dict[tuple[str, int, int], int] = {}
        self._session: Any = None
        self._last_state: Any = None
        self._in: Any = None
        self._out: Any = None
        self._in_end: JackEnd | None = None  # with JACK: our input port (never closed)
        self._out_end: JackEnd | None = None
        self._ever_connected = False
        self._next_poll = 0.0
        self._next_api_try = 0.0
        self._waiting_said = False
        self._lock = threading.Lock()  # start/stop/poll against each other, never the MIDI thread

    # -- service --------------------------------------------------------------------------

    def start(self, session: Any) -> None:
        """Open the MIDI clients and the controller's ports (if present)."""
        self._session = session
        self._pace = getattr(getattr(session, "engine", None), "after_callback", None)
        state = getattr(session, "state", None)
        self._last_state = state() if state is not None else None
        handle = getattr(session, "handle", None)
        if handle is not None:
            handle("snapshot", self._saw("snapshot"))
            handle("marker", self._saw("marker"))
        self._open_clients()
        self._poll(force=True)

    def tick(self, session: Any, state: Any) -> None:
        """Hot-plug, chain edits, coalesced parameter moves, LEDs (session thread)."""
        now = time.monotonic()
        if now >= self._next_poll:
            self._poll()
        if state is None:
            return
        self._last_state = state
        self._run_chain_ops(session, state)
        self._apply_continuous(session, state)
        self._update_leds(session, state, now)

    def stop(self, session: Any = None) -> None:
        """Turn the LEDs off and let go of the ports (with JACK: left, and parked)."""
        self._reading = False
        reader_done = True
        if self._reader is not None:
            self._reader.join(timeout=2.0)
            reader_done = not self._reader.is_alive()
            self._reader = None
        with self._lock:
            if self._out is not None and self.output_port is not None:
                for (kind, ch, num), value in list(self._led_sent.items()):
                    off = self._led_off.get((kind, ch, num), 0)
                    if value != off:
                        self._send_led(kind, ch, num, off)
            for obj, end in ((self._in, self._in_end), (self._out, self._out_end)):
                if obj is None:
                    continue
                try:
                    if end is not None:
                        end.deliver = None
                        if reader_done:  # else a reader still holds it: left unused
                            park_jack_end(end)
                        continue
                    if obj is self._in and self.delivery == "callback":
                        obj.cancel_callback()
                    obj.close_port()
                    obj.delete()
                except Exception as exc:
                    self.last_error = _one_line(exc)
            self._in = self._out = None
            self._in_end = self._out_end = None
            self.input_port = self.output_port = None
            self.status = f"controller {self.map.name}: stopped"

    # -- ports and hot-plug ---------------------------------------------------------------------

    def _open_clients(self) -> None:
        if self._in is not None:
            return
        try:
            self._in, self.api, self._in_end = open_port_client(
                "in", f"{self.client}-in", "in", _READ_QUEUE
            )
        except MidiUnavailableError as exc:
            self._in = self._out = None
            self._next_api_try = time.monotonic() + _RETRY_API_S
            # Said once (the retries find the same): "... (no JACK server; no ALSA sequencer)".
            self._say(
                f"controller {self.map.name}: {exc}; controller off, "
                f"trying again every {_RETRY_API_S:.0f} s"
            )
            return
        self._in.ignore_types(sysex=False, timing=True, active_sense=True)
        if self.delivery == "callback":
            if self._in_end is not None:
                self._in_end.use_callback(self._on_midi)
            else:
                self._in.set_callback(self._on_midi)
        else:
            self._reading = True
            self._reader = threading.Thread(
                target=self._read_loop, args=(self._in,), name="earmark-midi-in", daemon=True
            )
            self._reader.start()

    def _read_loop(self, midi_in: Any) -> None:
        """Drain rtmidi's queue: a bounded batch per wake, then a 1 ms sleep (4 ms when idle).

        With a streaming engine the 1 ms sleep becomes "until the next audio
        callback has finished" (at most 1 ms), so wakes land between callbacks.
        """
        get = midi_in.get_message
        handle = self._on_midi
        pace = self._pace
        last_input = time.monotonic()
        while self._reading:
            handled = 0
            try:
                while handled < _READ_BATCH:
                    message = get()
                    if message is None:
                        break
                    handle(message)
                    handled += 1
            except Exception as exc:  # the port went away under us: keep reading
                self.counters.errors += 1
                self.last_error = _one_line(exc)
            if handled < _READ_BATCH:
                now = time.monotonic()
                if handled:
                    last_input = now
                idle = now - last_input > _IDLE_AFTER_S
                if idle:
                    time.sleep(_IDLE_SLEEP_S - _PACE_WAIT_S)
                if not (pace is not None and pace(_PACE_WAIT_S)):
                    time.sleep(_PACE_WAIT_S if idle else _READ_SLEEP_S)

    def _poll(self, force: bool = False) -> None:
        with self._lock:
            self._next_poll = time.monotonic() + self._poll_s
            if self._in is None:
                if force or time.monotonic() >= self._next_api_try:
                    self._open_clients()
                if self._in is None:
                    return
            try:
                self._poll_input()
                if self._out is None and self.input_port is not None and self.output_pattern:
                    # The LED client opens once the controller is there: with JACK MIDI
                    # every client is woken each audio cycle (bench/realtime.py measured
                    # two idle clients at 9 -> 36 xruns in 40 s on the dummy server).
                    self._out, _, self._out_end = open_port_client(
                        "out", f"{self.client}-out", "leds"
                    )
                if self._out is not None:
                    self._poll_output()
            except Exception as exc:  # a back-end hiccup must not stop the session's services
                self.last_error = _one_line(exc)
                self.counters.errors += 1

    def _ports(self, obj: Any, end: JackEnd | None) -> list[str]:
        if end is None:
            return obj.get_ports()
        # JACK: one atomic read of the graph; inputs are read from others' output ports.
        return jack_graph().ports(inputs=end.direction == "out")

    def _join(self, obj: Any, end: JackEnd | None, index: int, name: str, short: str) -> bool:
        """Join our port to the controller's; False if its port went meanwhile (JACK)."""
        if end is None:
            obj.open_port(index, short)
            return True
        source, destination = (name, end.port) if end.direction == "in" else (end.port, name)
        # Refused: the port was listed but is gone (a controller unplugged just now), or
        # still going. The next poll looks again.
        return jack_graph().connect(source, destination)

    def _poll_input(self) -> None:
        names = self._ports(self._in, self._in_end)
        if self.input_port is not None and self.input_port in names:
            return
        if self.input_port is not None:
            lost = self.input_port
            if self._in_end is None:
                self._in.close_port()
            # With JACK the connection went with the controller's port; ours stays.
            self.input_port = None
            self._say(
                f"controller {self.map.name}: lost {lost!r}; "
                "waiting for it to return (re-opened automatically)"
            )
        index = find_port(names, self.input_pattern) if self.input_pattern else None
        if index is None:
            if not self._waiting_said and not self._ever_connected:
                self._waiting_said = True
                self._say(
                    f"controller {self.map.name}: no MIDI input matching "
                    f"{self.input_pattern!r} ({self.api}); waiting for it"
                )
            return
        name = names[index]
        if not self._join(self._in, self._in_end, index, name, "in"):
            return
        self._decoder = Decoder(
            cc14=[(b.channel, b.number) for b in self.map.controls if b.kind == "cc14"],
            nrpn_channels=[b.channel for b in self.map.controls if b.kind == "nrpn"],
            counters=self.counters,
        )
        for slot in self._continuous:  # the hardware may have moved while away
            slot.picked = False
            slot.prev_pos = None
        if self._ever_connected:
            self.counters.reconnects += 1
            self._say(f"controller {self.map.name}: reconnected to {name!r}")
        else:
            self._say(f"controller {self.map.name}: listening to {name!r} ({self.api})")
        self._ever_connected = True
        # Last: whoever sees the controller connected sees its counters already counted.
        self.input_port = name

    def _poll_output(self) -> None:
        names = self._ports(self._out, self._out_end)
        if self.output_port is not None and self.output_port in names:
            return
        if self.output_port is not None:
            if self._out_end is None:
                self._out.close_port()
            self.output_port = None
        index = find_port(names, self.output_pattern) if self.output_pattern else None
        if index is None:
            return
        if not self._join(self._out, self._out_end, index, names[index], "leds"):
            return
        self.output_port = names[index]
        self._led_sent.clear()  # a returning controller shows nothing: send every LED again

    def _say(self, text: str) -> None:
        if text == self.status:
            return  # the same news again (a retry that failed the same way): said once
        self.status = text
        note = getattr(self._session, "note", None)
        if note is not None:
            note("midi", text)

    @property
    def connected(self) -> bool:
        """The controller's input port is open."""
        return self.input_port is not None

    # -- the MIDI thread -------------------------------------------------------------------------

    def _on_midi(self, event: Any, data: Any = None) -> None:
        """python-rtmidi's callback: parse, look up, enqueue. Never raises, never blocks."""
        try:
            self.counters.messages += 1
            for kind, ch, num, value in self._decoder.feed(event[0]):
                slot = self._lookup.get((kind if kind != "nrpn_step" else "nrpn", ch, num))
                if slot is None:
                    slot = self._lookup.get((kind if kind != "nrpn_step" else "nrpn", None, num))
                if slot is None:
                    self.counters.unmapped += 1
                    continue
                self._control(slot, kind, value)
        except Exception as exc:
            self.counters.errors += 1
            self.last_error = _one_line(exc)

    def _control(self, slot: _Slot, kind: str, value: int) -> None:
        b = slot.binding
        if b.continuous:
            if kind == "nrpn_step":
                slot.detents += value
            elif b.relative:
                slot.detents += relative_delta(b.mode, value >> 7 if kind == "nrpn" else value)
            else:
                full = 127.0 if kind == "cc" else 16383.0
                pos = value / full
                if slot.span_epoch != slot.tick_epoch:
                    slot.lo = slot.hi = pos
                    slot.span_epoch = slot.tick_epoch
                elif pos < slot.lo:
                    slot.lo = pos
                elif pos > slot.hi:
                    slot.hi = pos
                slot.pos = pos
                slot.seq += 1
            return
        pressed = value > 0
        if pressed == slot.pressed:
            return  # a repeated press or release: edges only
        slot.pressed = pressed
        action = b.action
        if action in ("chain_bypass", "plugin_bypass"):
            if b.button == "momentary":
                self._queue_chain_op(slot, pressed)
            elif pressed:
                self._queue_chain_op(slot, None)
            return
        if not pressed and not (b.button == "momentary" and action in _HOLDABLE):
            return
        self._fire(slot, pressed)

    def _fire(self, slot: _Slot, pressed: bool) -> None:
        b = slot.binding
        action = b.action
        if action == "ab_toggle":
            self._post("select", "toggle")
        elif action == "select_a":
            self._post("select", "A")
        elif action == "select_b":
            self._post("select", "B")
        elif action in ("dim", "mono", "mute"):
            on = pressed if b.button == "momentary" else not self._current(action)
            if self._post("monitor", {action: on}):
                self._expect[action] = (on, time.monotonic() + _EXPECT_S)
        elif action == "match":
            on = pressed if b.button == "momentary" else not self._current("match")
            if self._post("match", on):
                self._expect["match"] = (on, time.monotonic() + _EXPECT_S)
        elif action == "snapshot":
            self._post("snapshot", b.text) if b.text else self._post("snapshot")
        elif action == "marker":
            self._post("marker", b.text) if b.text else self._post("marker")
        elif action in ("next_reference", "previous_reference"):
            self._step_reference(1 if action == "next_reference" else -1)
        elif action == "reset_meters":
            self._post("reset_meters")

    def _post(self, *command: Any) -> bool:
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._refill_at) * self._rate)
        self._refill_at = now
        if self._tokens < 1.0:
            self.counters.rate_limited += 1
            return False
        self._tokens -= 1.0
        session = self._session
        if session is None or not session.post(*command):
            self.counters.dropped += 1
            return False
        self.counters.posted += 1
        return True

    def _queue_chain_op(self, slot: _Slot, on: bool | None) -> None:
        if len(self._chain_ops) >= _MAX_CHAIN_OPS:
            self.counters.rate_limited += 1
            return
        self._chain_ops.append((slot, on))

    def _state(self) -> Any:
        # The state the last tick saw (the session refreshes it ~10 Hz anyway): the MIDI
        # thread never asks the engine for a fresh one, which would compute percentiles.
        return self._last_state

    def _current(self, what: str) -> Any:
        expected = self._expect.get(what)
        if expected is not None and time.monotonic() < expected[1]:
            return expected[0]
        state = self._state()
        if state is None:
            return False
        if what == "match":
            return bool(state.loudness_match)
        if what == "b":
            return state.b
        return bool(state.monitor.get(what))

    def _step_reference(self, step: int) -> None:
        state = self._state()
        if state is None:
            return
        a = state.a
        others = [i for i in range(len(state.paths)) if i != a]
        if not others:
            return
        b = self._current("b")
        position = others.index(b) if b in others else (-1 if step > 0 else 0)
        new_b = others[(position + step) % len(others)]
        if self._post("compare", a, new_b):
            self._expect["b"] = (new_b, time.monotonic() + _EXPECT_S)

    # -- the session thread ---------------------------------------------------------------------

    def _saw(self, what: str) -> Callable[..., None]:
        def seen(session: Any, *args: Any) -> None:
            self._blink_until[what] = time.monotonic() + _BLINK_S

        return seen

    def _path_index(self, path: str | int, state: Any) -> int | None:
        index = state.a if path == "A" else state.b if path == "B" else path
        return index if isinstance(index, int) and 0 <= index < len(state.paths) else None

    def _chain(self, session: Any, slot: _Slot, state: Any) -> tuple[int, Any] | tuple[None, None]:
        """The path index and chain ``slot`` acts on now (read only: edits are session commands)."""
        index = self._path_index(slot.binding.path, state)
        if index is None:
            return None, None
        chains = session.chains()
        chain = chains[index] if index < len(chains) else None
        return (index, chain) if hasattr(chain, "set_parameter") else (None, None)

    def _post_edit(self, session: Any, *command: Any) -> bool:
        """Post a chain edit (``bypass``, ``parameter``) to the session's command queue.

        The session thread runs it before this surface's next tick (LiveSession._loop),
        so the next tick reads the value it set. Not through the token bucket of
        :meth:`_post`: the edits have their own limits (_MAX_CHAIN_OPS,
        _MAX_PARAM_SETS_PER_TICK).
        """
        if session.post(*command):
            return True
        self.counters.dropped += 1
        return False

    def _run_chain_ops(self, session: Any, state: Any) -> None:
        while self._chain_ops:
            slot, on = self._chain_ops.popleft()
            b = slot.binding
            index, chain = self._chain(session, slot, state)
            if chain is None or not len(chain):
                self.counters.param_errors += 1
                continue
            plugin = None
            if b.action == "plugin_bypass":
                if b.plugin >= len(chain.bypassed):
                    self.counters.param_errors += 1
                    continue
                plugin = b.plugin
            # on None: toggle, decided by the session when it runs the command.
            if self._post_edit(session, "bypass", index, plugin, on):
                self.counters.chain_ops += 1

    def _apply_continuous(self, session: Any, state: Any) -> None:
        budget = _MAX_PARAM_SETS_PER_TICK
        for slot in self._continuous:
            b = slot.binding
            moved = slot.seq != slot.seen_seq
            detents = slot.detents - slot.applied_detents
            if not moved and not detents:
                continue
            if budget <= 0:
                break  # the rest keep their latest value for the next tick
            slot.seen_seq = slot.seq
            slot.applied_detents += detents
            pos = slot.pos
            swept = (slot.lo, slot.hi)
            slot.tick_epoch += 1
            if b.action == "trim":
                current = float(state.monitor.get("trim_db", 0.0))
                expected = self._expect.get("trim")
                if expected is not None and time.monotonic() < expected[1]:
                    current = expected[0]
                chain = None
            else:
                index, chain = self._chain(session, slot, state)
                if chain is None:
                    self.counters.param_errors += 1
                    continue
                current = current_value(chain, b.plugin, b.key)
            if b.relative:
                start = b.to_position(current) if current is not None else 0.5
                value = b.to_value(start + detents * b.step)
            else:
                value = self._takeover(slot, pos, current, swept)
                if value is None:
                    continue
            if current is not None and value == current:
                continue
            budget -= 1
            if chain is None:
                if self._post("monitor", {"trim_db": value}):
                    self._expect["trim"] = (value, time.monotonic() + _EXPECT_S)
            elif self._post_edit(session, "parameter", index, b.plugin, b.key, value):
                # A value the plugin refuses (out of its range) is the session's
                # "parameter failed" status line, as for any other control.
                self.counters.param_sets += 1
            slot.last_set = value

    def _takeover(
        self, slot: _Slot, pos: float, current: float | None, swept: tuple[float, float]
    ) -> float | None:
        """Soft takeover: the value for control position ``pos``, or None while waiting."""
        b = slot.binding
        prev, slot.prev_pos = slot.prev_pos, pos
        if b.takeover == "jump" or current is None:
            return b.to_value(pos)
        here = b.to_position(current)
        moved_elsewhere = (
            slot.last_set is not None and abs(b.to_position(slot.last_set) - here) > b.tolerance
        )
        if slot.picked and moved_elsewhere:
            # Changed from the dashboard or another control since we set it: pick up again.
            slot.picked = False
        if not slot.picked:
            crossed = (prev is not None and (prev - here) * (pos - here) <= 0) or (
                swept[0] <= here <= swept[1]
            )
            if abs(pos - here) <= b.tolerance or crossed:
                slot.picked = True
            else:
                self.counters.pickup_waiting += 1
                return None
        return b.to_value(pos)

    # -- LEDs -------------------------------------------------------------------------------

    @property
    def _led_off(self) -> dict[tuple[str, int, int], int]:
        return {
            (b.led.kind, b.led.channel, b.led.number): b.led.off
            for b in self.map.controls
            if b.led is not None
        }

    def _update_leds(self, session: Any, state: Any, now: float) -> None:
        if self._out is None or self.output_port is None:
            return
        sent = 0
        chains = None
        for slot in self._slots:
            b = slot.binding
            led = b.led
            if led is None:
                continue
            if b.action in ("chain_bypass", "plugin_bypass") and chains is None:
                chains = session.chains()
            value = self._led_value(b, led, state, chains, now)
            key = (led.kind, led.channel, led.number)
            if self._led_sent.get(key) == value:
                continue
            if sent >= _MAX_LED_PER_TICK:
                break
            self._send_led(led.kind, led.channel, led.number, value)
            sent += 1

    def _led_value(self, b: Binding, led: Led, state: Any, chains: Any, now: float) -> int:
        action = b.action
        on: bool
        if action in ("ab_toggle", "select_b"):
            on = state.audible == "B"
        elif action == "select_a":
            on = state.audible == "A"
        elif action in ("dim", "mono", "mute"):
            on = bool(state.monitor.get(action))
        elif action == "match":
            on = bool(state.loudness_match)
        elif action in ("snapshot", "marker"):
            left = self._blink_until.get(action, 0.0) - now
            on = left > 0 and int((_BLINK_S - left) / _BLINK_PHASE_S) % 2 == 0
        elif action in ("chain_bypass", "plugin_bypass"):
            index = self._path_index(b.path, state)
            chain = chains[index] if index is not None and index < len(chains) else None
            bypassed = tuple(getattr(chain, "bypassed", ()))
            if action == "chain_bypass":
                on = bool(bypassed) and all(bypassed)
            else:
                on = b.plugin < len(bypassed) and bypassed[b.plugin]
        elif action in ("parameter", "trim"):
            if action == "trim":
                current = float(state.monitor.get("trim_db", 0.0))
            else:
                index = self._path_index(b.path, state)
                chain = None
                if index is not None:
                    found = self._session.chains() if self._session is not None else []
                    chain = found[index] if index < len(found) else None
                current = None if chain is None else current_value(chain, b.plugin, b.key)
            if current is None:
                return led.off
            return round(led.off + (led.on - led.off) * b.to_position(current))
        else:
            on = False
        return led.on if on else led.off

    def _send_led(self, kind: str, ch: int, num: int, value: int) -> None:
        status = (0x90 if kind == "note" else 0xB0) | ch
        try:
            self._out.send_message([status, num, value])
        except Exception as exc:
            self.last_error = _one_line(exc)
            self.counters.errors += 1
            return
        self._led_sent[(kind, ch, num)] = value
        self.counters.led_sent += 1


_HOLDABLE = ("ab_toggle", "dim", "mono", "mute", "match")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
