"""MIDI back-ends and ports: which back-end opens (JACK first, then the platform's own),
earmark's JACK ports (registered once and never closed: libjack is not safe against
closing one while the graph changes), listing ports and finding a controller's by name.

``EARMARK_MIDI_API`` (``jack``, ``alsa``, ``coremidi``, ``winmm``) picks one back-end.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from earmark.errors import EarmarkError, one_line

__all__ = [
    "CLIENT_PREFIX",
    "JackEnd",
    "MidiUnavailableError",
    "find_port",
    "is_own_port",
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


# -- back-ends and ports ---------------------------------------------------------------


class MidiUnavailableError(EarmarkError, RuntimeError):
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
    text = one_line(exc, name=True)
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
