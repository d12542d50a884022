"""The MIDI controller surface against a real engine, with real JACK MIDI ports.

The test plays the controller: a virtual JACK MIDI output (its keys, faders and
encoders) and a virtual JACK MIDI input (its LEDs), named like the hardware so
the maps' port patterns find them. The engine is real (a pedalboard chain on A,
references on B) and streams in real time into a null sink, inside a real
``LiveSession``; assertions read the engine's own state and the chain's own
parameters.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import queue
import re
import subprocess
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from functools import partial
from typing import NamedTuple

import numpy as np
import pytest

from earmark.engine.chains import build_chain, load_chain
from earmark.engine.drivers import NullDriver
from earmark.engine.engine import Engine, Path
from earmark.engine.sources import Player
from earmark.live.session import LiveSession
from earmark.ui.midi.decoder import Decoder, relative_delta
from earmark.ui.midi.map import Binding, ControllerMap, Led, load_map, map_names, parse_map
from earmark.ui.midi.ports import jack_graph, jack_ports_registered, open_jack_end, park_jack_end
from earmark.ui.midi.surface import ControllerSurface, current_value

from synth import sine

FS = 48000
SHIPPED = ["korg-nanokontrol2", "behringer-x-touch-mini", "behringer-x-touch-mini-mc",
           "novation-launch-control-xl", "generic"]  # fmt: skip
# The port names the hardware shows (ALSA/JACK bridges add their own prefixes; the maps'
# patterns search inside the name).
HARDWARE_PORT = {
    "korg-nanokontrol2": "nanoKONTROL2 MIDI 1",
    "behringer-x-touch-mini": "X-TOUCH MINI MIDI 1",
    "behringer-x-touch-mini-mc": "X-TOUCH MINI MIDI 1",
    "novation-launch-control-xl": "Launch Control XL MIDI 1",
    "generic": "Some Controller MIDI 1",
}


def wait_for(check: Callable[[], object], timeout: float = 3.0, every: float = 0.005):
    """Poll ``check`` until it returns something truthy; return it (or the last value)."""
    end = time.monotonic() + timeout
    value = check()
    while not value and time.monotonic() < end:
        time.sleep(every)
        value = check()
    return value


class Controller:
    """The test's hardware: a virtual JACK MIDI output (the controls) and input (the LEDs).

    Its ports are registered once and kept, like earmark's own (ui/midi/ports.py says why:
    closing a JACK port while the graph changes can crash the process in libjack);
    ``close`` parks them, and the next Controller on the same port name takes them again.
    A controller that must really disappear is a :class:`Device` (a process of its own).
    """

    def __init__(self, port: str, client: str = "fake-ctl") -> None:
        self.port = port
        self._out_end = open_jack_end("out", client, port)
        self._leds_end = open_jack_end("in", f"{client}-leds", port)
        self.client = self._out_end.port.split(":", 1)[0]
        self.out = self._out_end.obj
        self.leds_in = self._leds_end.obj
        self.leds_in.ignore_types(sysex=True, timing=True, active_sense=True)
        self.received: list[list[int]] = []
        self.sent = 0  # messages sent by the controls
        self.closed = False

    def send(self, *messages: list[int]) -> None:
        for m in messages:
            self.out.send_message(m)
            self.sent += 1

    def led(self, kind: str, channel: int, number: int) -> int | None:
        """The last value sent to this LED."""
        # Read from rtmidi's queue (no Python in JACK's process cycle, as the surface does).
        self._drain()
        status = (0x90 if kind == "note" else 0xB0) | channel
        for m in reversed(self.received):
            if len(m) == 3 and m[0] == status and m[1] == number:
                return m[2]
        return None

    def history(self, led: Led, since: int = 0) -> list[int]:
        """The values sent to this LED, oldest first, from the ``since``-th message received."""
        self._drain()
        status = (0x90 if led.kind == "note" else 0xB0) | led.channel
        return [m[2] for m in self.received[since:] if m[:2] == [status, led.number]]

    def count(self) -> int:
        """LED messages received so far."""
        self._drain()
        return len(self.received)

    def _drain(self) -> None:
        if self.closed:
            return
        while (message := self.leds_in.get_message()) is not None:
            self.received.append(message[0])

    def close(self) -> None:
        if self.closed:
            return
        time.sleep(0.05)  # the last LED messages still in flight
        self._drain()
        self.closed = True
        park_jack_end(self._out_end)
        park_jack_end(self._leds_end)


# A controller that really comes and goes: its own process, killed to unplug it (jackd
# drops its client and ports; nothing is unregistered in a process that goes on living).
_DEVICE = """
import json, os, sys
import rtmidi
J = rtmidi.API_UNIX_JACK
client, port = sys.argv[1], sys.argv[2]
out = rtmidi.MidiOut(J, name=client)
out.open_virtual_port(port)
leds = rtmidi.MidiIn(J, name=client + "-leds")
leds.open_virtual_port(port)
leds.set_callback(lambda event, data=None: print(json.dumps(event[0]), flush=True))
print("ready", flush=True)
for line in sys.stdin:
    out.send_message(json.loads(line))
os._exit(0)
"""


class Device:
    """A controller in a process of its own: ``close`` pulls its plug (SIGKILL)."""

    def __init__(self, port: str, client: str = "fake-device") -> None:
        self.port = port
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _DEVICE, client, port],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.received: list[list[int]] = []
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        assert self._lines.get(timeout=20) == "ready\n"

    def _pump(self) -> None:
        for line in self.proc.stdout:
            self._lines.put(line)

    def send(self, *messages: list[int]) -> None:
        for m in messages:
            self.proc.stdin.write(json.dumps(m) + "\n")
        self.proc.stdin.flush()

    def led(self, kind: str, channel: int, number: int) -> int | None:
        """The last value sent to this LED."""
        while not self._lines.empty():
            self.received.append(json.loads(self._lines.get()))
        status = (0x90 if kind == "note" else 0xB0) | channel
        for m in reversed(self.received):
            if len(m) == 3 and m[0] == status and m[1] == number:
                return m[2]
        return None

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


class Witness:
    """A second, plain rtmidi JACK input on the controller's output: what JACK delivered.

    JACK MIDI is not lossless. A sender late for its cycles loses events for every
    reader alike, and a reader that misses a cycle (an xrun; jackd logs the client's
    name) loses or repeats events for itself alone. This witness reads the same port as
    the surface: while neither of them missed a cycle, it received exactly what reached
    the surface's port. Its queue holds more than a flood sends and is read only
    afterwards, so no Python runs in JACK's cycle and the witness itself drops nothing.
    """

    def __init__(self, ctl: Controller, queue_size: int = 1 << 15) -> None:
        self.source = f"{ctl.client}:{ctl.port}"
        self.end = open_jack_end("in", f"{ctl.client}-witness", "witness", queue_size)
        self.client = self.end.port.split(":", 1)[0]
        self.midi_in = self.end.obj
        self.midi_in.ignore_types(sysex=False, timing=True, active_sense=True)  # as the surface
        assert jack_graph().connect(self.source, self.end.port)
        self.received: list[list[int]] = []

    def count(self) -> int:
        """Messages received so far (reading rtmidi's queue)."""
        while (message := self.midi_in.get_message()) is not None:
            self.received.append(message[0])
        return len(self.received)

    def settle(self, expected: int, timeout: float = 5.0, quiet: float = 0.5) -> int:
        """The final count: ``expected`` messages, or none more for ``quiet`` seconds."""
        end = time.monotonic() + timeout
        n, grew = self.count(), time.monotonic()
        while n < expected and time.monotonic() < min(end, grew + quiet):
            time.sleep(0.01)
            if (m := self.count()) > n:
                n, grew = m, time.monotonic()
        return n

    def close(self) -> None:
        park_jack_end(self.end)


class ServerLog:
    """The run's jackd log (scripts/jackd-dummy keeps it) from now on: its xruns."""

    _LATE = re.compile(r"JackEngine::XRun: client (?:= )?(\S+)")

    def __init__(self, server) -> None:
        rundir = os.environ.get("EARMARK_JACK_RUNDIR", f"/tmp/earmark-jackd-{os.getuid()}")
        self.path = pathlib.Path(rundir) / f"{server.name}.log"
        self.start = self.path.stat().st_size

    def since(self) -> str:
        with self.path.open("rb") as f:
            f.seek(self.start)
            return f.read().decode(errors="replace")

    def late(self) -> Counter[str]:
        """The cycles each client missed ("client = X was not finished", "client X finished
        after current callback")."""
        return Counter(self._LATE.findall(self.since()))

    def xruns(self) -> int:
        """Xrun reports: the server's own (late wake-ups) and each late client's."""
        return self.since().count("XRun")


# -- playing a binding's messages ---------------------------------------------------------------


def _ch(b: Binding) -> int:
    return 0 if b.channel is None else b.channel


def button(b: Binding, down: bool) -> list[int]:
    """The message a button control sends when pressed (``down``) or released."""
    ch = _ch(b)
    if b.kind == "note":
        return [0x90 | ch, b.number, 127] if down else [0x80 | ch, b.number, 0]
    return [0xB0 | ch, b.number, 127 if down else 0]


def press(ctl: Controller, b: Binding) -> None:
    """Press and release a button control."""
    ctl.send(button(b, True), button(b, False))


def move(ctl: Controller, b: Binding, position: float) -> None:
    """Put an absolute control at ``position`` (0..1) at its own resolution."""
    ch = _ch(b)
    if b.kind == "cc":
        ctl.send([0xB0 | ch, b.number, round(position * 127)])
        return
    v = round(position * 16383)
    msb, lsb = v >> 7, v & 0x7F
    if b.kind == "cc14":
        ctl.send([0xB0 | ch, b.number, msb], [0xB0 | ch, b.number + 32, lsb])
    elif b.kind == "nrpn":
        ctl.send(
            [0xB0 | ch, 99, b.number >> 7],
            [0xB0 | ch, 98, b.number & 0x7F],
            [0xB0 | ch, 6, msb],
            [0xB0 | ch, 38, lsb],
        )
    elif b.kind == "pitchbend":
        ctl.send([0xE0 | ch, lsb, msb])


def encode_detents(mode: str, detents: int) -> int:
    """The 7-bit value a relative encoder sends for ``detents`` (one message)."""
    if mode == "relative-twos":
        return detents & 0x7F
    if mode == "relative-binary-offset":
        return 64 + detents
    if mode == "relative-sign-magnitude":
        return (0x40 | -detents) if detents < 0 else detents
    raise ValueError(mode)


def turn(ctl: Controller, b: Binding, detents: int) -> None:
    """Turn a relative encoder by ``detents``, one detent per message."""
    one = 1 if detents > 0 else -1
    for _ in range(abs(detents)):
        ctl.send([0xB0 | _ch(b), b.number, encode_detents(b.mode, one)])


# -- the rig ------------------------------------------------------------------------------------


def make_engine() -> Engine:
    """The dry mix, the mix through gentle-master (A), two references (B = the first)."""
    mix = sine(-20, 4, dtype=np.float32)
    paths = [
        Path("mix (dry)", Player(mix, "mix")),
        Path(
            "mix -> gentle-master",
            Player(mix, "mix"),
            build_chain(load_chain("gentle-master"), FS, 2),
        ),
        Path("reference 1", Player(sine(-12, 4, freq_hz=500, dtype=np.float32), "ref 1")),
        Path("reference 2", Player(sine(-16, 4, freq_hz=2000, dtype=np.float32), "ref 2")),
    ]
    return Engine(FS, paths, a=1, b=2, loudness_match=True)


class Rig:
    def __init__(
        self, session: LiveSession, surface: ControllerSurface, ctl: Controller, server=None
    ) -> None:
        self.session = session
        self.engine = session.engine
        self.surface = surface
        self.ctl = ctl
        self.server = server  # the JACK server, whose log tells when JACK lost messages
        self.window: Window | None = None  # from the last `send_until`: what JACK carried
        self.snapshots: list[object] = []

    @property
    def chain(self):
        return self.engine.paths[self.engine.a].chain

    def state(self):
        return self.engine.state()


@contextlib.contextmanager
def live(
    cmap: ControllerMap,
    port: str,
    *,
    surface_port: str | None = None,
    server=None,
    ctl: Controller | Device | None = None,
    **kw,
) -> Iterator[Rig]:
    ctl = ctl if ctl is not None else Controller(port)
    engine = make_engine()
    driver = NullDriver(engine, 64)
    driver.start()
    session = LiveSession(engine, driver, say=None)
    surface = ControllerSurface(cmap, port=surface_port, **kw)
    rig = Rig(session, surface, ctl, server)
    session.handle(
        "snapshot", lambda s, label=None: rig.snapshots.append(label) or len(rig.snapshots)
    )
    session.add_service(surface)
    session.start()
    try:
        assert wait_for(lambda: surface.connected, 3.0), surface.status
        yield rig
    finally:
        session.stop()
        rig.ctl.close()


# -- messages JACK may lose -----------------------------------------------------------------------


class Counts(NamedTuple):
    sent: int  # by the controls
    messages: int  # taken by the surface
    led_sent: int  # by the surface to the LEDs
    received: int  # by the LEDs


class Window:
    """From now on: the messages JACK carried each way, and the xruns jackd logged."""

    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        self.log = None if rig.server is None else ServerLog(rig.server)
        self.start = self._counts()

    def _counts(self) -> Counts:
        ctl, counters = self.rig.ctl, self.rig.surface.counters
        return Counts(ctl.sent, counters.messages, counters.led_sent, ctl.count())

    def carried(self, leds: bool = False) -> tuple[int, int]:
        """Messages sent and messages arrived since: at the surface, or at the LEDs."""
        now, start = self._counts(), self.start
        if leds:
            return now.led_sent - start.led_sent, now.received - start.received
        return now.sent - start.sent, now.messages - start.messages

    def complete(self, leds: bool = False) -> bool:
        sent, arrived = self.carried(leds)
        return arrived >= sent

    def xruns(self) -> int:
        return 0 if self.log is None else self.log.xruns()

    def lost(self, leds: bool = False) -> bool:
        """JACK lost (or repeated) messages: not each arrived once, and jackd logged xruns."""
        sent, arrived = self.carried(leds)
        return arrived != sent and self.xruns() > 0

    def report(self, leds: bool = False) -> str:
        sent, arrived = self.carried(leds)
        where = "the LEDs" if leds else "the surface"
        if self.log is None:
            return f"{arrived} of {sent} messages arrived at {where} (no jackd log)"
        late = dict(self.log.late())
        return (
            f"{arrived} of {sent} messages arrived at {where}; jackd logged {self.xruns()}"
            f" xruns since, clients late {late or 'none'}"
        )


def expect(
    rig: Rig,
    window: Window,
    check: Callable[[], object],
    what: str | Callable[[], str],
    again: Callable[[], object],
    *,
    leds: bool = False,
) -> None:
    """Wait for ``check`` (what the messages sent since ``window`` began must do); assert it.

    JACK MIDI is not lossless (see Witness): in a cycle a client misses, that cycle's
    events can be lost. When ``check`` does not come, the messages sent since did not
    all arrive exactly once at the surface (or, ``leds``, at the controller's LEDs) and
    jackd logged an xrun meanwhile, JACK lost one: ``again`` sends it once more (only
    while ``check`` is still false: a toggle that did act is never pressed back), and
    ``check`` must come then. Without that evidence, or a second time, the assertion
    fails as it always did: a bug of earmark's stays a failure. Each resend is listed in
    the run's JACK summary.
    """
    if wait_for(check):
        return
    first = window.report(leds)
    message = what if isinstance(what, str) else what()
    assert window.lost(leds), f"{message}; {first}"
    if check():  # it came after all (late): nothing to send again
        return
    rig.server.note(f"MIDI {rig.surface.map.name}: {message}: {first}; sent again")
    window = rig.window = Window(rig)
    again()
    assert wait_for(check), (
        f"{what if isinstance(what, str) else what()}; {window.report(leds)}"
        f" (sent again after: {first})"
    )


def send_until(
    rig: Rig, send: Callable[[], object], check: Callable[[], object], what: str | Callable[[], str]
) -> Window:
    """``send()`` controller messages, then ``check`` must come (see ``expect``).

    ``send`` must be safe to repeat once JACK lost some of its messages.
    """
    window = rig.window = Window(rig)
    send()
    expect(rig, window, check, what, send)
    return rig.window


def press_until(
    rig: Rig, b: Binding, check: Callable[[], object], what: str | Callable[[], str]
) -> None:
    """Press and release button ``b``, then ``check`` must come (see ``expect``).

    A press JACK lost is pressed again once, and only then: a toggle acts once. A lost
    release would leave the surface's button held, and its next press no edge: after an
    xrun, a release that has not arrived is sent again (where it did arrive, a second
    release is no edge either, and does nothing).
    """
    window = send_until(rig, lambda: press(rig.ctl, b), check, what)
    if not wait_for(window.complete, 1.0) and window.xruns():
        rig.ctl.send(button(b, False))


# -- every control of every shipped map -------------------------------------------------------


def _check_button(rig: Rig, b: Binding) -> None:
    engine = rig.engine
    before = rig.state()
    act = b.action
    if act == "ab_toggle":
        want = "A" if before.audible == "B" else "B"
        press_until(
            rig,
            b,
            lambda: rig.state().audible == want,
            f"{b.name}: audible stayed {before.audible}",
        )
    elif act in ("select_a", "select_b"):
        other = "B" if act == "select_a" else "A"
        engine.post("select", other)
        assert wait_for(lambda: rig.state().audible == other), f"the engine never selected {other}"
        want = "A" if act == "select_a" else "B"
        press_until(rig, b, lambda: rig.state().audible == want, b.name)
    elif act in ("dim", "mono", "mute"):
        was = bool(before.monitor[act])
        press_until(
            rig, b, lambda: bool(rig.state().monitor[act]) != was, f"{b.name}: {act} stayed {was}"
        )
    elif act == "match":
        was = before.loudness_match
        press_until(rig, b, lambda: rig.state().loudness_match != was, b.name)
    elif act == "snapshot":
        n = len(rig.snapshots)
        press_until(rig, b, lambda: len(rig.snapshots) == n + 1, b.name)
    elif act == "marker":
        n = len(rig.session.markers)
        press_until(rig, b, lambda: len(rig.session.markers) == n + 1, b.name)
        assert rig.session.markers[-1]["t_s"] > 0
    elif act in ("next_reference", "previous_reference"):
        others = [i for i in range(len(before.paths)) if i != before.a]
        step = 1 if act == "next_reference" else -1
        want = others[(others.index(before.b) + step) % len(others)]
        press_until(
            rig,
            b,
            lambda: rig.state().b == want,
            lambda: f"{b.name}: B is {rig.state().b}, not {want}",
        )
        assert rig.state().a == before.a
    elif act == "reset_meters":
        a = before.a
        assert wait_for(lambda: rig.state().paths[a].readings.integrated_lufs is not None)
        press_until(rig, b, lambda: rig.state().paths[a].readings.integrated_lufs is None, b.name)
    elif act == "chain_bypass":
        chain = rig.chain
        assert not any(chain.bypassed)
        press_until(rig, b, lambda: all(chain.bypassed), b.name)
        _check_led(rig, b, on=True)
        press_until(rig, b, lambda: not any(chain.bypassed), f"{b.name}: not restored")
    elif act == "plugin_bypass":
        chain = rig.chain
        was = chain.bypassed[b.plugin]
        press_until(rig, b, lambda: chain.bypassed[b.plugin] != was, b.name)
    elif act in ("codec_toggle", "codec_solo"):
        # The session command the C and X keys send (the codec monitor's service
        # handles it in a --codec-monitor session; test_codec_monitor runs one).
        seen: list[tuple] = rig.__dict__.setdefault("codec_commands", [])
        if not rig.session.handles("codec"):
            rig.session.handle("codec", lambda _s, *args: seen.append(args))
        n = len(seen)
        want = ("toggle",) if act == "codec_toggle" else ("solo",)
        press_until(rig, b, lambda: len(seen) > n and seen[-1] == want, b.name)
    else:
        raise AssertionError(f"no check for {act}")


def _led_state(rig: Rig, b: Binding) -> bool | None:
    state = rig.state()
    act = b.action
    if act in ("ab_toggle", "select_b"):
        return state.audible == "B"
    if act == "select_a":
        return state.audible == "A"
    if act in ("dim", "mono", "mute"):
        return bool(state.monitor[act])
    if act == "match":
        return state.loudness_match
    if act == "chain_bypass":
        return all(rig.chain.bypassed)
    if act == "plugin_bypass":
        return rig.chain.bypassed[b.plugin]
    return None


def _show_again(rig: Rig, b: Binding, want: int) -> None:
    """Have the surface send ``b``'s LED again: JACK lost the message that set it.

    The surface sends an LED only when what it should show changes. So change that from
    the session's side (as the keys and the dashboard do), wait until the LED is sent
    that (at most 3 s: were that message lost too, the surface sent it all the same),
    and change it back. A blink is started again.
    """
    act, session, chain, led = b.action, rig.session, rig.chain, b.led
    assert led is not None
    if act in ("snapshot", "marker"):
        session.call(act, "blink again")
        return
    state, bypassed = rig.state(), chain.bypassed

    def bypass(values) -> None:
        for i, value in enumerate(values):
            if chain.bypassed[i] != value:
                chain.set_bypass(i, value)

    if act in ("ab_toggle", "select_a", "select_b"):
        away = back = partial(session.post, "select", "toggle")
    elif act in ("dim", "mono", "mute"):
        on = bool(state.monitor[act])
        away = partial(session.post, "monitor", {act: not on})
        back = partial(session.post, "monitor", {act: on})
    elif act == "match":
        away = partial(session.post, "match", not state.loudness_match)
        back = partial(session.post, "match", state.loudness_match)
    elif act == "plugin_bypass":
        away = partial(bypass, [v != (i == b.plugin) for i, v in enumerate(bypassed)])
        back = partial(bypass, bypassed)
    elif act == "chain_bypass":
        away = partial(bypass, [not all(bypassed)] * len(bypassed))
        back = partial(bypass, bypassed)
    else:
        raise AssertionError(f"no way to show {b.name}'s LED again")
    other = led.off if want == led.on else led.on
    since = rig.ctl.count()  # (the LED may show `other` already: the message lost was `want`)
    away()
    wait_for(lambda: other in rig.ctl.history(led, since))
    back()


def _check_led(rig: Rig, b: Binding, on: bool | None = None) -> None:
    """``b``'s LED shows what the engine's state says (``on``, if given), since its press."""
    led = b.led
    if led is None:
        return
    ctl = rig.ctl
    window = rig.window or Window(rig)
    if b.action in ("snapshot", "marker"):
        # "Taken": the LED blinks (on, then off again). Everything it was sent since the
        # press is read, so a poll that comes late still sees the blink.
        since = window.start.received

        def blinked() -> bool:
            values = ctl.history(led, since)
            return led.on in values and values[-1] == led.off

        expect(
            rig,
            window,
            blinked,
            lambda: (
                f"{b.name}: LED {led} sent {ctl.history(led, since)} since the press, "
                f"want a blink ({led.on}) ending {led.off}"
            ),
            partial(_show_again, rig, b, led.off),
            leds=True,
        )
        return
    if on is None:
        on = _led_state(rig, b)
    if on is None:
        return
    want = led.on if on else led.off

    def shows() -> int | None:
        return ctl.led(led.kind, led.channel, led.number)

    expect(
        rig,
        window,
        lambda: shows() == want,
        lambda: (
            f"{b.name}: LED {led} shows {shows()}, want {want}; session says "
            f"{[s.text for s in rig.session.status]}; error {rig.surface.last_error}"
        ),
        partial(_show_again, rig, b, want),
        leds=True,
    )


def _check_continuous(rig: Rig, b: Binding) -> None:
    if b.action == "trim":
        read = lambda: float(rig.state().monitor.get("trim_db", 0.0))  # noqa: E731
    else:
        chain = rig.chain
        read = lambda: current_value(chain, b.plugin, b.key)  # noqa: E731
    start = read()
    assert start is not None, f"{b.name}: {b.key} unreadable"
    if b.relative:
        # Away from the nearer end of the range, then back: each detent moves `step` of it.
        up = 1 if b.to_position(start) < 0.5 else -1
        for detents in (5 * up, -2 * up):
            _check_turn(rig, b, read, detents)
        return
    here = b.to_position(start)
    far = 0.0 if here > 0.5 else 1.0
    counters = rig.surface.counters
    # Soft takeover: the control starts far from the value; moving it there changes nothing
    # (once the surface has held it: it counts a move waiting for pickup) ...
    waiting = counters.pickup_waiting
    send_until(
        rig,
        lambda: move(rig.ctl, b, far),
        lambda: counters.pickup_waiting > waiting,
        f"{b.name}: no move to {far} waiting for pickup",
    )
    assert read() == start, f"{b.name}: jumped from {start} to {read()} before pickup"

    # ... until it reaches the current value; from then on it follows.
    def pick_up() -> None:
        move(rig.ctl, b, here)
        time.sleep(0.1)
        move(rig.ctl, b, far)

    want = b.to_value(far)
    send_until(
        rig,
        pick_up,
        lambda: read() == pytest.approx(want, abs=1e-9),
        lambda: f"{b.name}: {read()} after pickup, want {want}",
    )


def _check_turn(rig: Rig, b: Binding, read: Callable[[], float | None], detents: int) -> None:
    """Turning ``b`` by ``detents`` moves its value ``detents`` steps from where it is."""
    start: list[float] = []

    def turned() -> None:  # from the value measured now (JACK may have lost a detent)
        start[:] = [read()]
        turn(rig.ctl, b, detents)

    def want() -> float:
        return b.to_value(b.to_position(start[0]) + detents * b.step)

    send_until(
        rig,
        turned,
        lambda: read() == pytest.approx(want(), rel=1e-9, abs=1e-9),
        lambda: f"{b.name}: {read()} after {detents} detents from {start[0]}, want {want()}",
    )


@pytest.mark.parametrize("name", SHIPPED)
def test_every_control_of_a_shipped_map_drives_the_engine_and_its_led(jack_server, name):
    cmap = load_map(name)
    port = HARDWARE_PORT[name]
    with live(
        cmap, port, surface_port=port if name == "generic" else None, server=jack_server
    ) as rig:
        assert wait_for(lambda: rig.surface.output_port is not None or not cmap.output, 3.0)
        for b in cmap.controls:
            if b.continuous:
                _check_continuous(rig, b)
            else:
                _check_button(rig, b)
                _check_led(rig, b)
        counters = rig.surface.counters
        assert counters.errors == 0, rig.surface.last_error
        assert counters.param_errors == 0, rig.surface.last_error
        assert counters.junk == 0 and counters.rate_limited == 0


def test_the_shipped_maps_are_the_ones_tested():
    assert sorted(map_names(user_dir="/nonexistent")) == sorted(SHIPPED)


# -- parsing: known bytes, known events ------------------------------------------------------


def test_the_decoder_reads_running_status_realtime_bytes_and_counts_junk():
    d = Decoder()
    # Two CCs in one buffer, the second by running status, a clock byte in between.
    assert d.feed([0xB0, 7, 100, 0xF8, 8, 50]) == [("cc", 0, 7, 100), ("cc", 0, 8, 50)]
    assert d.counters.system == 1
    # Note off both ways; pitch bend LSB first.
    assert d.feed([0x91, 60, 0]) == [("note", 1, 60, 0)]
    assert d.feed([0x81, 60, 64]) == [("note", 1, 60, 0)]
    assert d.feed([0xE8, 0x7F, 0x7F]) == [("pitchbend", 8, 0, 16383)]
    # Junk: truncated, data with no status, a status where data belongs, a byte > 255.
    assert d.feed([0x90, 60]) == []
    assert d.feed([0x40, 0x40]) == []
    assert d.feed([0xB0, 0x85, 0x10]) == []
    assert d.feed([0xB0, 7, 300]) == []
    assert d.counters.junk == 1 + 2 + 1 + 1
    # SysEx is skipped whole, and what follows it in the buffer still decodes.
    assert d.feed([0xF0, 0x42, 0x40, 0x00, 0xF7, 0xB2, 1, 2]) == [("cc", 2, 1, 2)]
    assert d.counters.sysex == 1
    assert d.feed([]) == []


def test_14_bit_pairs_and_nrpn_decode_to_known_values():
    d = Decoder(cc14=[(0, 20)], nrpn_channels=[3])
    # MSB alone scales the 7-bit value exactly onto 14 bits; the LSB refines it.
    assert d.feed([0xB0, 20, 127]) == [("cc14", 0, 20, 16383)]
    assert d.feed([0xB0, 20, 96, 0xB0, 52, 57]) == [
        ("cc14", 0, 20, 96 * 129),
        ("cc14", 0, 20, 12345),
    ]
    # CC 20 on another channel is a plain CC.
    assert d.feed([0xB1, 20, 5]) == [("cc", 1, 20, 5)]
    # NRPN 300 (MSB 2, LSB 44) = 9000 (70 << 7 | 40); then data increment/decrement.
    events = d.feed([0xB3, 99, 2, 0xB3, 98, 44, 0xB3, 6, 70, 0xB3, 38, 40])
    assert events[-1] == ("nrpn", 3, 300, 9000)
    assert d.feed([0xB3, 96, 0, 0xB3, 97, 0]) == [
        ("nrpn_step", 3, 300, 1),
        ("nrpn_step", 3, 300, -1),
    ]
    # An RPN selection deselects the NRPN: the next data entry goes nowhere.
    assert d.feed([0xB3, 101, 0, 0xB3, 100, 0, 0xB3, 6, 2]) == []
    # NRPN data CCs on a channel without NRPN bindings stay plain CCs (a knob on CC 6).
    assert d.feed([0xB0, 6, 64]) == [("cc", 0, 6, 64)]


@pytest.mark.parametrize(
    "mode, sent, detents",
    [
        ("relative-twos", [1, 3, 127, 125], [1, 3, -1, -3]),
        ("relative-binary-offset", [65, 67, 63, 61], [1, 3, -1, -3]),
        ("relative-sign-magnitude", [1, 3, 65, 67], [1, 3, -1, -3]),
    ],
)
def test_relative_encoder_encodings(mode, sent, detents):
    assert [relative_delta(mode, v) for v in sent] == detents
    assert [encode_detents(mode, d) for d in detents] == sent


# -- 14-bit, NRPN, pitch bend and relative encoders through real ports ----------------------------

TEST_MAP = """
name = "Test surface"
version = 1
[port]
input = "Test Surface"
output = "Test Surface"

[[control]]
name = "14-bit fader"
cc14 = 1
action = "parameter"
plugin = 1
key = "threshold_db"
min = -60.0
max = 0.0
takeover = "jump"

[[control]]
name = "NRPN knob"
nrpn = 300
channel = 4
action = "parameter"
plugin = 2
key = "gain_db"
min = -12.0
max = 12.0
takeover = "jump"

[[control]]
name = "Pitch-bend fader"
pitchbend = true
channel = 9
action = "trim"
min = -30.0
max = 10.0
takeover = "jump"

[[control]]
name = "NRPN encoder"
nrpn = 301
channel = 4
mode = "relative-binary-offset"
action = "parameter"
plugin = 3
key = "gain_db"
min = 0.0
max = 12.0
step = 0.01

[[control]]
name = "Hold for B"
note = 1
action = "ab_toggle"
button = "momentary"
led = true

[[control]]
name = "Hold to dim"
note = 2
action = "dim"
button = "momentary"
led = true

[[control]]
name = "Bypass 2 while held"
cc = 3
action = "plugin_bypass"
plugin = 2
button = "momentary"
"""


def test_14_bit_nrpn_and_pitch_bend_controls_set_known_values(jack_server):
    cmap = parse_map(TEST_MAP, "test.toml")
    with live(cmap, "Test Surface") as rig:
        chain = rig.chain
        # CC 1 MSB 96 + CC 33 LSB 57 = 12345 of 16383.
        rig.ctl.send([0xB0, 1, 12345 >> 7], [0xB0, 33, 12345 & 0x7F])
        want = -60.0 + 60.0 * 12345 / 16383
        assert wait_for(
            lambda: current_value(chain, 0, "threshold_db") == pytest.approx(want, abs=1e-9)
        )
        # NRPN 300 on channel 4 = 9000.
        rig.ctl.send([0xB3, 99, 2], [0xB3, 98, 44], [0xB3, 6, 9000 >> 7], [0xB3, 38, 9000 & 0x7F])
        want = -12.0 + 24.0 * 9000 / 16383
        assert wait_for(lambda: current_value(chain, 1, "gain_db") == pytest.approx(want, abs=1e-9))
        # Pitch bend 4096 on channel 9 (LSB first).
        rig.ctl.send([0xE8, 4096 & 0x7F, 4096 >> 7])
        want = -30.0 + 40.0 * 4096 / 16383
        assert wait_for(lambda: rig.state().monitor.get("trim_db") == pytest.approx(want, abs=1e-9))
        # A relative NRPN encoder: data increments (CC 96) and offset-coded data entry (65 = +1).
        start = current_value(chain, 2, "gain_db")  # gentle-master's drive: 6.5 dB
        rig.ctl.send([0xB3, 99, 2], [0xB3, 98, 45], [0xB3, 96, 0], [0xB3, 96, 0], [0xB3, 6, 67])
        want = start + 5 * 0.01 * 12.0  # 2 increments + 3 detents
        assert wait_for(lambda: current_value(chain, 2, "gain_db") == pytest.approx(want, abs=1e-9))
        assert rig.surface.counters.errors == 0 and rig.surface.counters.junk == 0


def test_momentary_buttons_act_while_held(jack_server):
    cmap = parse_map(TEST_MAP, "test.toml")
    with live(cmap, "Test Surface") as rig:
        assert rig.state().audible == "A"
        rig.ctl.send([0x90, 1, 127])
        assert wait_for(lambda: rig.state().audible == "B")
        assert wait_for(lambda: rig.ctl.led("note", 0, 1) == 127)
        rig.ctl.send([0x80, 1, 0])
        assert wait_for(lambda: rig.state().audible == "A")
        assert wait_for(lambda: rig.ctl.led("note", 0, 1) == 0)
        rig.ctl.send([0x90, 2, 100])
        assert wait_for(lambda: rig.state().monitor["dim"])
        rig.ctl.send([0x90, 2, 0])  # note on, velocity 0: a release
        assert wait_for(lambda: not rig.state().monitor["dim"])
        chain = rig.chain
        rig.ctl.send([0xB0, 3, 127])
        assert wait_for(lambda: chain.bypassed[1])
        rig.ctl.send([0xB0, 3, 0])
        assert wait_for(lambda: not chain.bypassed[1])


def test_a_midi_move_reaches_the_chain_through_the_session_command_queue(jack_server):
    """Faders and bypass buttons edit the chain as the dashboard does: with the session's
    ``parameter`` and ``bypass`` commands, run by their handlers on the session thread."""
    cmap = parse_map(TEST_MAP, "test.toml")
    with live(cmap, "Test Surface") as rig:
        chain, session = rig.chain, rig.session
        queued: list[tuple] = []  # what went through the queue (a second handler sees it)
        session.handle("parameter", lambda s, *args: queued.append(("parameter", *args)))
        session.handle("bypass", lambda s, *args: queued.append(("bypass", *args)))
        edits: list[tuple[str, str, bool]] = []  # (edit, thread, inside a command handler)

        def watched(name: str, handler: str, edit: Callable) -> Callable:
            def call(*args):
                stack = {f.name for f in traceback.extract_stack()}
                edits.append((name, threading.current_thread().name, handler in stack))
                return edit(*args)

            return call

        chain.set_parameter = watched("parameter", "_set_parameter", chain.set_parameter)
        chain.set_bypass = watched("bypass", "_bypass", chain.set_bypass)

        rig.ctl.send([0xB0, 1, 8000 >> 7], [0xB0, 33, 8000 & 0x7F])  # the 14-bit fader
        want = -60.0 + 60.0 * 8000 / 16383
        assert wait_for(
            lambda: current_value(chain, 0, "threshold_db") == pytest.approx(want, abs=1e-9)
        )
        assert ("parameter", rig.engine.a, 0, "threshold_db", pytest.approx(want)) in queued
        rig.ctl.send([0xB0, 3, 127])  # hold "Bypass 2"
        assert wait_for(lambda: chain.bypassed[1])
        assert ("bypass", rig.engine.a, 1, True) in queued
        rig.ctl.send([0xB0, 3, 0])
        assert wait_for(lambda: not chain.bypassed[1])
        assert ("bypass", rig.engine.a, 1, False) in queued
        assert {name for name, _, _ in edits} == {"parameter", "bypass"}
        outside = [e for e in edits if e[1] != "earmark-session" or not e[2]]
        assert not outside, f"chain edits outside the session's command handlers: {outside}"
        assert rig.surface.counters.param_sets >= 1 and rig.surface.counters.chain_ops == 2


# -- soft takeover, and LEDs that follow changes made elsewhere -------------------------------------


def test_soft_takeover_holds_a_parameter_until_the_fader_reaches_it(jack_server):
    cmap = load_map("korg-nanokontrol2")
    fader = next(b for b in cmap.controls if b.name == "Slider 1")  # threshold_db, -40..0 dB
    with live(cmap, HARDWARE_PORT["korg-nanokontrol2"]) as rig:
        chain = rig.chain
        threshold = lambda: current_value(chain, 0, "threshold_db")  # noqa: E731
        assert threshold() == -20.0  # the preset's value: the fader's middle
        for value in (0, 20, 40, 60):  # below the value: nothing moves
            rig.ctl.send([0xB0, 0, value])
            time.sleep(0.1)
            assert threshold() == -20.0, f"jumped at fader {value}"
        assert rig.surface.counters.pickup_waiting >= 4
        rig.ctl.send([0xB0, 0, 70])  # crossed 63.5: picked up, follows from here
        assert wait_for(lambda: threshold() == pytest.approx(fader.to_value(70 / 127), abs=1e-9))
        rig.ctl.send([0xB0, 0, 90])
        assert wait_for(lambda: threshold() == pytest.approx(fader.to_value(90 / 127), abs=1e-9))
        # The dashboard sets -30 dB: the fader (at 90) must reach it again before it acts.
        chain.set_parameter(0, "threshold_db", -30.0)
        rig.ctl.send([0xB0, 0, 80])
        time.sleep(0.15)
        assert threshold() == -30.0
        rig.ctl.send([0xB0, 0, 33])  # within 2/127 of -30 dB (31.75): picked up
        assert wait_for(lambda: threshold() == pytest.approx(fader.to_value(33 / 127), abs=1e-9))


def test_leds_follow_changes_made_from_the_keys_and_the_dashboard(jack_server):
    cmap = load_map("korg-nanokontrol2")
    with live(cmap, HARDWARE_PORT["korg-nanokontrol2"]) as rig:
        ctl = rig.ctl
        assert wait_for(lambda: ctl.led("cc", 0, 46) == 0)  # Cycle: A is heard
        rig.session.post("monitor", {"dim": True})  # what the d key does
        assert wait_for(lambda: ctl.led("cc", 0, 32) == 127)
        rig.session.post("select", "toggle")  # space
        assert wait_for(lambda: ctl.led("cc", 0, 46) == 127)
        rig.chain.set_bypass(0, True)  # the dashboard's bypass button
        assert wait_for(lambda: ctl.led("cc", 0, 49) == 127)
        rig.session.call("snapshot", "from the CLI")
        assert wait_for(lambda: ctl.led("cc", 0, 45) == 127, 1.0)  # Rec blinks ...
        time.sleep(0.8)
        assert ctl.led("cc", 0, 45) == 0  # ... and goes dark again
        sent = rig.surface.counters.led_sent
        time.sleep(0.5)  # nothing changes: nothing is sent
        assert rig.surface.counters.led_sent == sent


# -- floods and junk ------------------------------------------------------------------------------


def _is_subsequence(part: list[list[int]], whole: Iterator[list[int]]) -> bool:
    """Every message of ``part`` occurs in ``whole``, in order (some of ``whole`` missing)."""
    return all(any(m == w for w in whole) for m in part)


def test_a_10000_message_per_second_flood_with_sysex_and_junk_is_bounded_and_survived(
    jack_server, capfd
):
    cmap = load_map("korg-nanokontrol2")
    fader = next(b for b in cmap.controls if b.name == "Slider 1")
    with live(cmap, HARDWARE_PORT["korg-nanokontrol2"]) as rig:
        ctl, surface, engine = rig.ctl, rig.surface, rig.engine
        sysex = [0xF0, 0x42, 0x40, 0x00, 0x01, 0x13, 0x00, 0x1F, 0x12, 0xF7]
        batch: list[list[int]] = []
        for k in range(40):  # slider 1 sweeping (crosses the parameter's value every batch)
            batch.append([0xB0, 0, (k * 13) % 128])
        for k in range(20):  # Cycle pressed and released ten times: 1000 A/B toggles a second
            batch.append([0xB0, 46, 127 if k % 2 == 0 else 0])
        batch += [sysex] * 10
        batch += [[0x90, 60]] * 5  # truncated
        batch += [[0x40, 0x40]] * 5  # data with no status
        batch += [[0xB5, 99, 1]] * 10  # well-formed, bound to nothing
        batch += [[0xF8]] * 10  # MIDI clock: rtmidi filters it before the surface
        assert len(batch) == 100
        witness = Witness(ctl)
        try:
            log = ServerLog(jack_server)
            blocks_before, t_before = engine.callbacks, time.monotonic()
            start = time.monotonic()
            batches = 200  # 100 messages every 10 ms for 2 s: 10,000 a second
            for n in range(batches):
                for m in batch:
                    ctl.out.send_message(m)
                delay = start + (n + 1) * 0.01 - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            sent_s = time.monotonic() - start
            reaching = batches * 90  # all but the clocks
            witness.settle(reaching)  # all of it, unless JACK dropped some: then what came
            # The xruns while the flood was in flight (JACK logs one at the next cycle).
            time.sleep(0.02)
            late, xruns = log.late(), log.xruns()
            exact = late[f"{surface.client}-in"] == 0 and late[witness.client] == 0
            # What reached the surface's port: as much as the witness got, unless one of
            # them missed a cycle (then a lost message never comes: do not wait long).
            wait_for(lambda: surface.counters.messages >= witness.count(), 5.0 if exact else 1.0)
            delivered = witness.count()
            got = witness.received
        finally:
            witness.close()
        c = surface.counters
        blocks = engine.callbacks - blocks_before
        real_time_blocks = (time.monotonic() - t_before) * FS / 64
        surface_late = late[f"{surface.client}-in"]
        witness_late = late[witness.client]
        transport = (
            f"JACK delivered {delivered} of {reaching} to the witness; {xruns} xrun reports, "
            f"cycles missed by the surface's input {surface_late}, by the witness {witness_late}"
        )
        jack_server.note(
            f"MIDI flood: {batches * 100} messages in {sent_s:.2f} s; {transport}; surface saw "
            f"{c.messages}, posted {c.posted} commands, rate-limited {c.rate_limited}, parameter"
            f" sets {c.param_sets}; engine ran {blocks / real_time_blocks:.1%} of real-time blocks;"
            f" counts checked {'exactly' if exact else 'for consistency only'}"
        )
        # Neither reader's rtmidi queue overflowed (the surface's holds 16,384 messages;
        # the one place it could drop): xruns or not, the surface lost nothing that
        # reached its port.
        assert "message queue limit reached" not in capfd.readouterr().err
        assert c.errors == 0, surface.last_error
        # A stall that leaves no flood to survive fails the test too.
        assert delivered >= reaching // 2 and c.messages >= reaching // 2, transport
        # Each message the surface took is exactly one of SysEx, junk or a channel message.
        assert c.messages == c.sysex + c.junk + c.events
        assert c.system == 0
        if exact:
            # The surface's port got what the witness's did: JACK only dropped (what
            # arrived was sent, whole and in order), and the surface counted every message
            # as what it is. With nothing dropped: 90, 10, 10 and 10 a batch, 2000 presses
            # (Cycle is a toggle: a press after a release posts one command), and the
            # fader's last position is the batch's last, 123.
            sent = (m for _ in range(batches) for m in batch if m != [0xF8])
            assert _is_subsequence(got, sent), f"{transport}, but not as sent"
            assert c.messages == delivered, f"surface saw {c.messages}; {transport}"
            assert c.sysex == sum(m[0] == 0xF0 for m in got)
            assert c.junk == sum(m in ([0x90, 60], [0x40, 0x40]) for m in got)
            assert c.unmapped == sum(m == [0xB5, 99, 1] for m in got)
            presses, pressed = 0, False
            for m in got:
                if m[:2] == [0xB0, 46] and (m[2] > 0) != pressed:
                    pressed = m[2] > 0
                    presses += pressed
            assert c.posted + c.rate_limited == presses
            last_position = next(m[2] for m in reversed(got) if m[:2] == [0xB0, 0])
            assert last_position == batch[39][2] or delivered < reaching
        else:
            # A reader missed cycles: JACK lost or repeated some of them for that reader
            # alone, so what reached the surface's port is not known message by message.
            # The final fader position is sent again, to be sure it arrives.
            assert c.unmapped <= c.events and c.posted + c.rate_limited <= c.events
            last_position = batch[39][2]
            ctl.send([0xB0, 0, last_position])
        # At most 100 A/B commands a second (+ a burst of 20) reach the engine.
        assert c.posted <= 100 * (sent_s + 0.5) + 20
        assert engine.dropped_commands == 0
        # The sweeps crossed the threshold's value between ticks: picked up, then coalesced
        # to at most one set per tick, and the last one is the fader's last position.
        assert c.param_sets <= surface.tick_hz * (sent_s + 1.0)
        last = fader.to_value(last_position / 127)
        assert wait_for(
            lambda: current_value(rig.chain, 0, "threshold_db") == pytest.approx(last, abs=1e-9)
        )
        # The audio kept its pace (the null sink renders in real time).
        assert blocks >= 0.9 * real_time_blocks
        # And the surface still works: A/B switches, the fader sets its value. (Cycle is
        # released first: after a dropped release it would be held, and a press no edge.)
        time.sleep(0.3)  # let the token bucket refill
        before = rig.state().audible
        ctl.send([0xB0, 46, 0], [0xB0, 46, 127], [0xB0, 46, 0])
        assert wait_for(lambda: rig.state().audible != before)
        ctl.send([0xB0, 0, 64])
        time.sleep(0.1)
        ctl.send([0xB0, 0, 100])
        want = fader.to_value(100 / 127)
        assert wait_for(
            lambda: current_value(rig.chain, 0, "threshold_db") == pytest.approx(want, abs=1e-9)
        )


# -- hot-plug and missing back-ends ---------------------------------------------------------------


def test_a_controller_that_disappears_and_returns_is_reopened(jack_server):
    cmap = load_map("korg-nanokontrol2")
    port = "Replugged nanoKONTROL2 MIDI 1"
    with live(cmap, port, surface_port=port, ctl=Device(port)) as rig:
        surface = rig.surface
        registered = jack_ports_registered()
        rig.ctl.send([0xB0, 46, 127], [0xB0, 46, 0])
        assert wait_for(lambda: rig.state().audible == "B")
        rig.ctl.close()  # unplugged: its client and ports go with its process
        assert wait_for(lambda: not surface.connected, 3.0)
        assert "lost" in surface.status and port in surface.status
        assert any("lost" in s.text for s in rig.session.status)
        rig.ctl = Device(port)  # plugged in again, same name
        assert wait_for(lambda: surface.connected and surface.output_port is not None, 3.0)
        assert surface.counters.reconnects == 1
        assert "reconnected" in surface.status
        # Every LED is sent again to the returning controller: Cycle lit (B is heard).
        assert wait_for(lambda: rig.ctl.led("cc", 0, 46) == 127)
        rig.ctl.send([0xB0, 46, 127], [0xB0, 46, 0])
        assert wait_for(lambda: rig.state().audible == "A")
        assert surface.counters.errors == 0
        # Left and joined again by name: not one JACK port closed or registered meanwhile.
        assert jack_ports_registered() == registered


class Churn:
    """Graph changes without pause: a port joined and left as fast as JACK allows, from a
    thread of its own. Each change makes jackd run a latency pass in every client's
    notification thread: the moment libjack crashes a client that unregisters a port."""

    def __init__(self) -> None:
        self.ctl = Controller("Churn MIDI 1", client="churn")
        self.sink = open_jack_end("in", "churn-sink", "sink")
        self.changes = 0
        self._on = True
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        graph, source = jack_graph(), f"{self.ctl.client}:{self.ctl.port}"
        while self._on:
            graph.connect(source, self.sink.port)
            graph.disconnect_all(self.sink.port)
            self.changes += 2

    def stop(self) -> None:
        self._on = False
        self._thread.join(10)
        park_jack_end(self.sink)
        self.ctl.close()


def test_unplugging_and_stopping_under_graph_churn_never_closes_a_jack_port(jack_server):
    """The SIGSEGV that killed one `make test` in three: libjack crashes a client that
    unregisters a port while a graph change is being handled (ui/midi/ports.py). Here the graph
    changes without pause while a controller is unplugged and plugged in 12 times, and a
    second surface is started and stopped 40 times (each of which used to close two
    ports): the process lives, every return is noticed, and the surfaces register their
    ports once in all: two for the session's surface, two for the other."""
    cmap = load_map("korg-nanokontrol2")
    port = "Churned nanoKONTROL2 MIDI 1"
    churn = Churn()
    try:
        with live(cmap, port, surface_port=port, ctl=Device(port), poll_s=0.02) as rig:
            surface = rig.surface
            before = jack_ports_registered()
            for k in range(12):
                rig.ctl.close()
                assert wait_for(lambda: not surface.connected, 3.0), surface.status
                rig.ctl = Device(port)
                assert wait_for(lambda: surface.connected, 3.0), surface.status
                assert surface.counters.reconnects == k + 1
            assert jack_ports_registered() == before
            # Started and stopped: with a controller there, the LED port opens too.
            other_port = HARDWARE_PORT["korg-nanokontrol2"]
            other_ctl = Controller(other_port)
            before = jack_ports_registered()
            try:
                for k in range(40):
                    other = ControllerSurface(cmap, client="earmark-midi-other")
                    other.start(None)
                    assert other.connected and other.output_port is not None, other.status
                    other.stop()
                    assert other.counters.errors == 0, other.last_error
                    if k == 0:
                        first = jack_ports_registered()
            finally:
                other_ctl.close()
            assert first == before + 2
            assert jack_ports_registered() == first
            assert surface.counters.errors == 0, surface.last_error
    finally:
        churn.stop()
    assert churn.changes > 100  # the graph did change all along


def test_no_controller_and_no_midi_back_end_leave_a_status_and_the_session_running(
    jack_server, monkeypatch
):
    cmap = parse_map(TEST_MAP, "test.toml")
    engine = make_engine()
    with LiveSession(engine, NullDriver(engine, 64), say=None) as session:
        session.driver.start()
        waiting = ControllerSurface(cmap, port="No Such Controller")
        session.add_service(waiting, name="midi")
        assert wait_for(lambda: "no MIDI input matching 'No Such Controller'" in waiting.status)
        monkeypatch.setenv("EARMARK_MIDI_API", "winmm")  # not built into rtmidi on Linux
        without = ControllerSurface(cmap, client="earmark-midi-2")
        session.add_service(without, name="midi 2")
        assert "python-rtmidi has no MIDI back-end" in without.status
        assert any("no MIDI back-end" in s.text for s in session.status)
        assert session.post("select", "B")
        assert wait_for(lambda: engine.state().audible == "B")


# -- the command line ------------------------------------------------------------------------------


class Lines:
    """A child's stderr, line by line, readable with a timeout."""

    def __init__(self, stream) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream) -> None:
        for line in stream:
            self.lines.put(line)

    def until(self, text: str, timeout: float = 20.0) -> str:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                line = self.lines.get(timeout=max(0.01, end - time.monotonic()))
            except queue.Empty:
                break
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"{text!r} never said; got {self.seen}")


def earmark(*args: str, env: dict | None = None, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "earmark", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
        **kw,
    )


def test_without_a_jack_server_the_controller_says_so_in_one_line_and_nothing_else():
    """No JACK server by that name: the back-ends' own messages ("MidiInJack::initialize:
    JACK server not running?", "Cannot connect to server socket", ...) used to reach the
    terminal at every retry (10 s), under the live header. Now one status line says it."""
    env = {
        **os.environ,
        "JACK_DEFAULT_SERVER": f"earmark-no-such-server-{os.getpid()}",
        "EARMARK_MIDI_API": "jack",
    }
    proc = earmark(
        "demo", "--no-ui", "--seconds", "11", "--controller", "korg-nanokontrol2", env=env
    )
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    lines = err.splitlines()
    noise = [line for line in lines if re.search(r"JACK server not running|Cannot connect to "
             r"server|jack server is not running|JackShm|MidiInJack|ALSA lib", line)]  # fmt: skip
    assert noise == []
    said = [line for line in lines if "controller Korg nanoKONTROL2" in line]
    assert said == [
        "earmark: controller Korg nanoKONTROL2: no MIDI back-end could be opened "
        "(no JACK server); controller off, trying again every 10 s"
    ]


def test_midi_ports_lists_the_controller_and_its_led_port(jack_server):
    ctl = Controller("Port Lister MIDI 1")
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "earmark", "midi", "ports", "--json"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    finally:
        ctl.close()
    assert proc.returncode == 0, proc.stderr
    ports = json.loads(proc.stdout)
    assert ports["api"] == "jack"
    assert f"{ctl.client}:Port Lister MIDI 1" in ports["inputs"]
    assert ctl._leds_end.port in ports["outputs"]
    assert not any(p.startswith("earmark-midi") for p in ports["inputs"] + ports["outputs"])


def test_midi_learn_binds_each_control_moved_and_the_map_drives_a_session(
    jack_server, tmp_path, monkeypatch
):
    monkeypatch.setenv("EARMARK_HOME", str(tmp_path))
    # A link planted where a fixed temporary name would be: never written through.
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "controllers").mkdir()
    (tmp_path / "controllers" / "desk.toml.tmp").symlink_to(victim)
    ctl = Controller("My Desk MIDI 1")
    try:
        proc = earmark(
            "midi", "learn", "--port", "My Desk", "--out", "desk", "--timeout", "30",
            "--bind", "ab_toggle:led=true",
            "--bind", "parameter:plugin=1,key=threshold_db,min=-40,max=0",
            "--bind", "parameter:plugin=3,key=gain_db,min=0,max=12,step=0.02",
            "--bind", "dim:button=momentary",
            env=dict(os.environ),
        )  # fmt: skip
        err = Lines(proc.stderr)
        err.until("move the control for ab_toggle")
        ctl.send([0x99, 36, 100])  # a pad: note 36 on channel 10
        time.sleep(0.05)
        ctl.send([0x89, 36, 0])
        err.until("note 36 ch 10 (button) -> ab_toggle")
        err.until("move the control for parameter")
        for v in range(40, 60, 2):  # a fader: absolute values, each once
            ctl.send([0xB0, 7, v])
            time.sleep(0.01)
        err.until("CC 7 ch 1 (absolute) -> parameter")
        err.until("move the control for parameter")
        for v in (1, 1, 2, 1, 127, 127):  # an encoder, both ways: two's complement
            ctl.send([0xB0, 21, v])
            time.sleep(0.02)
        err.until("CC 21 ch 1 (relative-twos) -> parameter")
        err.until("move the control for dim")
        ctl.send([0xB0, 64, 127], [0xB0, 64, 0])  # a CC button
        err.until("CC 64 ch 1 (button) -> dim")
        out, rest = proc.communicate(timeout=30)
        assert proc.returncode == 0, rest
        written = tmp_path / "controllers" / "desk.toml"
        assert f"wrote {written} (4 controls)" in out
        assert victim.read_text() == "precious" and not written.is_symlink()
    finally:
        ctl.close()
    cmap = load_map("desk", user_dir=tmp_path / "controllers")
    pad, fader, encoder, button = cmap.controls
    assert (pad.kind, pad.channel, pad.number, pad.action) == ("note", 9, 36, "ab_toggle")
    assert pad.led is not None and (pad.led.kind, pad.led.channel, pad.led.number) == (
        "note",
        9,
        36,
    )
    assert (fader.kind, fader.number, fader.mode, fader.key, fader.low, fader.high) == (
        "cc", 7, "absolute", "threshold_db", -40.0, 0.0)  # fmt: skip
    assert (encoder.number, encoder.mode, encoder.plugin, encoder.step) == (
        21,
        "relative-twos",
        2,
        0.02,
    )
    assert (button.kind, button.number, button.action, button.button) == (
        "cc",
        64,
        "dim",
        "momentary",
    )
    # The learned map drives a live session, LED included.
    with live(cmap, "My Desk MIDI 1") as rig:
        rig.ctl.send([0x99, 36, 100], [0x89, 36, 0])
        assert wait_for(lambda: rig.state().audible == "B")
        assert wait_for(lambda: rig.ctl.led("note", 9, 36) == 127)
        turn(rig.ctl, encoder, 3)
        assert wait_for(
            lambda: current_value(rig.chain, 2, "gain_db") == pytest.approx(6.5 + 3 * 0.02 * 12)
        )
    # An existing map is never overwritten without --force.
    again = earmark("midi", "learn", "--out", "desk", "--bind", "dim", env=dict(os.environ))
    _, said = again.communicate(timeout=30)
    assert again.returncode == 2 and "desk.toml: exists; give --force" in said


def test_demo_with_a_controller_answers_its_buttons_and_lights_its_leds(jack_server):
    ctl = Controller(HARDWARE_PORT["korg-nanokontrol2"])
    try:
        proc = earmark("demo", "--controller", "korg-nanokontrol2", "--seconds", "12", "--no-ui")
        err = Lines(proc.stderr)
        err.until(
            f"controller Korg nanoKONTROL2: listening to '{ctl.client}:nanoKONTROL2 MIDI 1'", 60
        )
        assert wait_for(lambda: ctl.led("cc", 0, 46) == 0, 5.0)  # Cycle dark: A is heard
        ctl.send([0xB0, 46, 127], [0xB0, 46, 0])
        assert wait_for(lambda: ctl.led("cc", 0, 46) == 127, 3.0)  # B heard now
        ctl.send([0xB0, 32, 127], [0xB0, 32, 0])  # S1: dim
        assert wait_for(lambda: ctl.led("cc", 0, 32) == 127, 3.0)
        proc.communicate(timeout=60)
        assert proc.returncode == 0
    finally:
        ctl.close()
    # On the way out the surface turns its LEDs off.
    assert ctl.led("cc", 0, 46) == 0 and ctl.led("cc", 0, 32) == 0


def test_a_broken_controller_map_stops_run_before_streaming_with_file_line_and_key(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[[control]]\ncc = 1\naction = "dimm"\n')
    proc = subprocess.run(
        [sys.executable, "-m", "earmark", "demo", "--controller", str(bad), "--seconds", "1"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        f"earmark: --controller: {bad}:4: control 1 'action': unknown action \"dimm\" "
        "(did you mean 'dim'?)"
    )
