"""The MIDI controller surface: A/B, bypass, parameters, snapshots and markers from hardware.

One concept: the surface as a session service, input (moves queued) and output
(LEDs following the state) together, because each LED mirrors what a control did.

The controller is earmark's second user interface. :class:`ControllerSurface`
is a session service (``earmark.live.session.LiveSession.add_service``):

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

The MIDI back-ends and ports are :mod:`.ports`, the parsing :mod:`.decoder`, the
controller map :mod:`.map`.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from earmark.errors import one_line

from .decoder import Counters, Decoder, relative_delta
from .map import Binding, ControllerMap, Led
from .ports import (
    CLIENT_PREFIX,
    JackEnd,
    MidiUnavailableError,
    find_port,
    jack_graph,
    open_port_client,
    park_jack_end,
)

__all__ = ["DELIVERIES", "ControllerSurface", "current_value"]

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


# -- chain parameters ---------------------------------------------------------------------------


def current_value(chain: Any, plugin: int, key: str) -> float | None:
    """The value of ``key`` (a chain preset key with its unit) of plugin ``plugin`` now.

    From the chain's spec (it includes live edits), converting between units of
    one family (``attack_s`` for a preset that says ``attack_ms``); else the
    plugin's own current value (``parameter_values``). None when neither knows it.
    """
    # Here, not at the top: the MIDI commands must not load the engine's compiled kernels
    # (a chain, when there is one, has loaded them already).
    from earmark.engine.chains import convert_unit

    try:
        spec = chain.spec.plugins[plugin]
    except (AttributeError, IndexError, TypeError):
        spec = None
    if spec is not None:
        params = dict(spec.params)
        if key in params and _is_number(params[key]):
            return float(params[key])
        base, _, unit = key.rpartition("_")
        for other, value in params.items():
            b2, _, u2 = other.rpartition("_")
            if b2 == base and _is_number(value):
                converted = convert_unit(float(value), u2, unit)
                if converted is not None:
                    return converted
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
                    self.last_error = one_line(exc, name=True)
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
                self.last_error = one_line(exc, name=True)
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
                self.last_error = one_line(exc, name=True)
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
            self.last_error = one_line(exc, name=True)

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
        elif action in ("codec_toggle", "codec_solo"):
            self._post("codec", "toggle" if action == "codec_toggle" else "solo")

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
        elif action in ("codec_toggle", "codec_solo"):
            # Lit while the codec (or its artefacts) is heard (a session without one: off).
            monitor = getattr(self._session, "codec_monitor", None)
            heard = "on" if action == "codec_toggle" else "artefacts"
            on = monitor is not None and monitor.mode == heard
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
            self.last_error = one_line(exc, name=True)
            self.counters.errors += 1
            return
        self._led_sent[(kind, ch, num)] = value
        self.counters.led_sent += 1


_HOLDABLE = ("ab_toggle", "dim", "mono", "mute", "match")
