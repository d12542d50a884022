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
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest
import rtmidi

from earmark.engine.chains import build_chain, load_chain
from earmark.engine.drivers import NullDriver
from earmark.engine.engine import Engine, Path
from earmark.engine.sources import Player
from earmark.session import LiveSession
from earmark.ui.controller_map import Binding, ControllerMap, load_map, map_names, parse_map
from earmark.ui.midi import ControllerSurface, current_value

from synth import sine

FS = 48000
JACK = rtmidi.API_UNIX_JACK
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
    """The test's hardware: a virtual JACK MIDI output (the controls) and input (the LEDs)."""

    def __init__(self, port: str, client: str = "fake-ctl") -> None:
        self.port = port
        self.client = client
        self.out = rtmidi.MidiOut(JACK, name=client)
        self.out.open_virtual_port(port)
        self.leds_in = rtmidi.MidiIn(JACK, name=f"{client}-leds")
        self.leds_in.open_virtual_port(port)
        self.received: list[list[int]] = []
        self.leds_in.set_callback(lambda event, data=None: self.received.append(event[0]))

    def send(self, *messages: list[int]) -> None:
        for m in messages:
            self.out.send_message(m)

    def led(self, kind: str, channel: int, number: int) -> int | None:
        """The last value sent to this LED."""
        status = (0x90 if kind == "note" else 0xB0) | channel
        for m in reversed(self.received):
            if len(m) == 3 and m[0] == status and m[1] == number:
                return m[2]
        return None

    def close(self) -> None:
        for obj in (self.out, self.leds_in):
            obj.close_port()
            obj.delete()


# -- playing a binding's messages ---------------------------------------------------------------


def _ch(b: Binding) -> int:
    return 0 if b.channel is None else b.channel


def press(ctl: Controller, b: Binding) -> None:
    """Press and release a button control."""
    ch = _ch(b)
    if b.kind == "note":
        ctl.send([0x90 | ch, b.number, 127], [0x80 | ch, b.number, 0])
    else:
        ctl.send([0xB0 | ch, b.number, 127], [0xB0 | ch, b.number, 0])


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
        Path("mix -> gentle-master", Player(mix, "mix"), build_chain(load_chain("gentle-master"), FS, 2)),
        Path("reference 1", Player(sine(-12, 4, freq_hz=500, dtype=np.float32), "ref 1")),
        Path("reference 2", Player(sine(-16, 4, freq_hz=2000, dtype=np.float32), "ref 2")),
    ]
    return Engine(FS, paths, a=1, b=2, loudness_match=True)


class Rig:
    def __init__(self, session: LiveSession, surface: ControllerSurface, ctl: Controller) -> None:
        self.session = session
        self.engine = session.engine
        self.surface = surface
        self.ctl = ctl
        self.snapshots: list[object] = []

    @property
    def chain(self):
        return self.engine.paths[self.engine.a].chain

    def state(self):
        return self.engine.state()


@contextlib.contextmanager
def live(cmap: ControllerMap, port: str, *, surface_port: str | None = None, **kw) -> Iterator[Rig]:
    ctl = Controller(port)
    engine = make_engine()
    driver = NullDriver(engine, 64)
    driver.start()
    session = LiveSession(engine, driver, say=None)
    surface = ControllerSurface(cmap, port=surface_port, **kw)
    rig = Rig(session, surface, ctl)
    session.handle("snapshot", lambda s, label=None: rig.snapshots.append(label) or len(rig.snapshots))
    session.add_service(surface)
    session.start()
    try:
        assert wait_for(lambda: surface.connected, 3.0), surface.status
        yield rig
    finally:
        session.stop()
        ctl.close()


# -- every control of every shipped map -------------------------------------------------------


def _check_button(rig: Rig, b: Binding) -> None:
    ctl, engine = rig.ctl, rig.engine
    before = rig.state()
    act = b.action
    if act == "ab_toggle":
        press(ctl, b)
        want = "A" if before.audible == "B" else "B"
        assert wait_for(lambda: rig.state().audible == want), f"{b.name}: audible stayed {before.audible}"
    elif act in ("select_a", "select_b"):
        engine.post("select", "B" if act == "select_a" else "A")
        wait_for(lambda: rig.state().audible == ("B" if act == "select_a" else "A"))
        press(ctl, b)
        want = "A" if act == "select_a" else "B"
        assert wait_for(lambda: rig.state().audible == want), b.name
    elif act in ("dim", "mono", "mute"):
        was = bool(before.monitor[act])
        press(ctl, b)
        assert wait_for(lambda: bool(rig.state().monitor[act]) != was), f"{b.name}: {act} stayed {was}"
    elif act == "match":
        was = before.loudness_match
        press(ctl, b)
        assert wait_for(lambda: rig.state().loudness_match != was), b.name
    elif act == "snapshot":
        n = len(rig.snapshots)
        press(ctl, b)
        assert wait_for(lambda: len(rig.snapshots) == n + 1), b.name
    elif act == "marker":
        n = len(rig.session.markers)
        press(ctl, b)
        assert wait_for(lambda: len(rig.session.markers) == n + 1), b.name
        assert rig.session.markers[-1]["t_s"] > 0
    elif act in ("next_reference", "previous_reference"):
        others = [i for i in range(len(before.paths)) if i != before.a]
        step = 1 if act == "next_reference" else -1
        want = others[(others.index(before.b) + step) % len(others)]
        press(ctl, b)
        assert wait_for(lambda: rig.state().b == want), f"{b.name}: B is {rig.state().b}, not {want}"
        assert rig.state().a == before.a
    elif act == "reset_meters":
        a = before.a
        assert wait_for(lambda: rig.state().paths[a].readings.integrated_lufs is not None, 3.0)
        press(ctl, b)
        assert wait_for(lambda: rig.state().paths[a].readings.integrated_lufs is None, 1.0), b.name
    elif act == "chain_bypass":
        chain = rig.chain
        assert not any(chain.bypassed)
        press(ctl, b)
        assert wait_for(lambda: all(chain.bypassed)), b.name
        _check_led(rig, b, on=True)
        press(ctl, b)
        assert wait_for(lambda: not any(chain.bypassed)), f"{b.name}: not restored"
    elif act == "plugin_bypass":
        chain = rig.chain
        was = chain.bypassed[b.plugin]
        press(ctl, b)
        assert wait_for(lambda: chain.bypassed[b.plugin] != was), b.name
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


def _check_led(rig: Rig, b: Binding, on: bool | None = None) -> None:
    led = b.led
    if led is None:
        return
    if b.action in ("snapshot", "marker"):
        # "Taken": the LED blinks (on, then off again).
        assert wait_for(lambda: rig.ctl.led(led.kind, led.channel, led.number) == led.on, 1.0), b.name
        assert wait_for(lambda: rig.ctl.led(led.kind, led.channel, led.number) == led.off, 2.0), b.name
        return
    if on is None:
        on = _led_state(rig, b)
    if on is None:
        return
    want = led.on if on else led.off
    got = wait_for(lambda: rig.ctl.led(led.kind, led.channel, led.number) == want, 2.0)
    assert got, f"{b.name}: LED {led} shows {rig.ctl.led(led.kind, led.channel, led.number)}, want {want}"


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
        turn(rig.ctl, b, 5 * up)
        want = b.to_value(b.to_position(start) + 5 * up * b.step)
        assert wait_for(lambda: read() == pytest.approx(want, rel=1e-9, abs=1e-9)), (
            f"{b.name}: {read()} after {5 * up} detents from {start}, want {want}"
        )
        turn(rig.ctl, b, -2 * up)
        want2 = b.to_value(b.to_position(want) - 2 * up * b.step)
        assert wait_for(lambda: read() == pytest.approx(want2, rel=1e-9, abs=1e-9)), (
            f"{b.name}: {read()} after {-2 * up} detents from {want}, want {want2}"
        )
        return
    here = b.to_position(start)
    far = 0.0 if here > 0.5 else 1.0
    # Soft takeover: the control starts far from the value; moving it there changes nothing ...
    move(rig.ctl, b, far)
    time.sleep(0.15)
    assert read() == start, f"{b.name}: jumped from {start} to {read()} before pickup"
    # ... until it reaches the current value; from then on it follows.
    move(rig.ctl, b, here)
    time.sleep(0.1)
    move(rig.ctl, b, far)
    want = b.to_value(far)
    assert wait_for(lambda: read() == pytest.approx(want, abs=1e-9)), (
        f"{b.name}: {read()} after pickup, want {want}"
    )


@pytest.mark.parametrize("name", SHIPPED)
def test_every_control_of_a_shipped_map_drives_the_engine_and_its_led(jack_server, name):
    cmap = load_map(name)
    port = HARDWARE_PORT[name]
    with live(cmap, port, surface_port=port if name == "generic" else None) as rig:
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
