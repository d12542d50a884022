"""Controller maps: which control on a MIDI controller does what in earmark.

A map is a TOML file (shipped ones in ``earmark.presets/controllers``, the
engineer's own in ``$EARMARK_HOME/controllers``, written by ``earmark midi
learn``; found through ``earmark.presets``)::

    name = "Korg nanoKONTROL2"
    version = 1

    [port]
    input = "nanoKONTROL2"      # regex, case-insensitive, searched in the port names
    output = "nanoKONTROL2"     # where LED messages go (omit for no feedback)

    [defaults]
    channel = 1                 # 1-16, or "any"

    [[control]]
    name = "Cycle"
    cc = 46                     # or note, cc14 (MSB n, LSB n+32), nrpn, pitchbend = true
    action = "ab_toggle"
    button = "toggle"           # toggle (each press) | momentary (while held)
    led = true                  # echo the control's own message: on 127, off 0

    [[control]]
    name = "Knob 1"
    cc = 16
    mode = "absolute"           # relative-twos, relative-binary-offset, relative-sign-magnitude
    action = "parameter"
    path = "A"                  # "A", "B" or a path number as the views list them (from 1)
    plugin = 1                  # counts from 1, as the chain file's [[plugin]] tables
    key = "threshold_db"        # the chain preset's key, with its unit
    min = -40.0
    max = 0.0
    curve = "lin"               # or "log" (frequencies, times, ratios)

Errors name the file, line and key, like the chain presets'
(``nano.toml:14: control 3 'mode': must be one of ...``).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from earmark import presets
from earmark.errors import PresetError
from earmark.presets.tomltools import choices, did_you_mean, num, parse_toml
from earmark.presets.tomltools import show_value as _show

from ..conventions import path_index, path_number

__all__ = [
    "ACTIONS",
    "BUTTONS",
    "CONTINUOUS_ACTIONS",
    "KINDS",
    "MODES",
    "Binding",
    "ControllerMap",
    "Led",
    "dump_map",
    "load_map",
    "map_names",
    "parse_map",
]

MAP_VERSION = 1

#: Message kinds a control can send; each is also the key that carries its number.
KINDS = ("cc", "note", "cc14", "nrpn", "pitchbend")
#: How a continuous control's value is read.
MODES = ("absolute", "relative-twos", "relative-binary-offset", "relative-sign-magnitude")
BUTTONS = ("toggle", "momentary")
CURVES = ("lin", "log")
TAKEOVERS = ("pickup", "jump")

#: One-shot actions: a press fires them (``ab_toggle`` held as ``momentary`` fires
#: again on release, so B is heard only while the button is down).
TRIGGER_ACTIONS = (
    "ab_toggle",
    "select_a",
    "select_b",
    "snapshot",
    "marker",
    "next_reference",
    "previous_reference",
    "reset_meters",
    "codec_toggle",  # the codec monitor (--codec-monitor): decoded <-> clean (key C)
    "codec_solo",  # its artefacts only <-> decoded (key X)
)
#: On/off actions: ``toggle`` flips them on each press, ``momentary`` holds them on.
SWITCH_ACTIONS = ("dim", "mono", "mute", "match", "chain_bypass", "plugin_bypass")
#: Actions driven by a fader, knob or encoder.
CONTINUOUS_ACTIONS = ("parameter", "trim")
ACTIONS = TRIGGER_ACTIONS + SWITCH_ACTIONS + CONTINUOUS_ACTIONS

# Keys each action takes beyond the control's own.
_ACTION_KEYS: dict[str, tuple[str, ...]] = {
    "snapshot": ("text",),
    "marker": ("text",),
    "chain_bypass": ("path",),
    "plugin_bypass": ("path", "plugin"),
    "parameter": (
        "path",
        "plugin",
        "key",
        "min",
        "max",
        "curve",
        "units",
        "step",
        "takeover",
        "tolerance",
    ),
    "trim": ("min", "max", "units", "step", "takeover", "tolerance"),
}
_CONTROL_KEYS = (*KINDS, "name", "channel", "mode", "button", "action", "led")
_ALL_CONTROL_KEYS = tuple(
    dict.fromkeys(_CONTROL_KEYS + tuple(k for ks in _ACTION_KEYS.values() for k in ks))
)
_TOP_KEYS = ("name", "description", "version", "port", "defaults", "control")
_PORT_KEYS = ("input", "output")
_DEFAULT_KEYS = ("channel",)
_LED_KEYS = ("cc", "note", "channel", "on", "off")

# Monitor trim: the range a fader covers unless the map says otherwise.
TRIM_RANGE_DB = (-30.0, 10.0)
DEFAULT_STEP = 1.0 / 128.0  # a relative encoder detent moves this share of the range
DEFAULT_TOLERANCE = 2.0 / 127.0  # soft takeover: close enough to pick up


@dataclass(frozen=True, slots=True)
class Led:
    """A feedback message: ``kind`` "cc" or "note" on ``channel`` (0-15), values on/off."""

    kind: str
    channel: int
    number: int
    on: int = 127
    off: int = 0


@dataclass(frozen=True, slots=True)
class Binding:
    """One control and what it does. Channels count from 0 here (1 in the file);
    ``plugin`` from 0 (1 in the file); ``path`` is "A", "B" or a 0-based index."""

    name: str
    kind: str
    channel: int | None  # None: any channel
    number: int
    action: str
    mode: str = "absolute"
    button: str = "toggle"
    path: str | int = "A"
    plugin: int = 0
    key: str | None = None
    low: float | None = None
    high: float | None = None
    curve: str = "lin"
    units: str = ""
    step: float = DEFAULT_STEP
    takeover: str = "pickup"
    tolerance: float = DEFAULT_TOLERANCE
    text: str | None = None
    led: Led | None = None
    number_in_file: int | None = field(default=None, compare=False)  # [[control]] from 1
    line: int | None = field(default=None, compare=False)

    @property
    def continuous(self) -> bool:
        return self.action in CONTINUOUS_ACTIONS

    @property
    def relative(self) -> bool:
        return self.mode != "absolute"

    def to_value(self, position: float) -> float:
        """The action's value for a control position in [0, 1] (range and curve)."""
        low, high = float(self.low), float(self.high)  # type: ignore[arg-type]
        position = min(1.0, max(0.0, position))
        if self.curve == "log":
            return low * (high / low) ** position
        return low + (high - low) * position

    def to_position(self, value: float) -> float:
        """Where ``value`` sits in [0, 1] (the inverse of :meth:`to_value`, clamped)."""
        low, high = float(self.low), float(self.high)  # type: ignore[arg-type]
        if self.curve == "log":
            if value <= 0:
                return 0.0
            position = math.log(value / low) / math.log(high / low)
        else:
            position = (value - low) / (high - low)
        return min(1.0, max(0.0, position))

    def describe(self) -> str:
        """``CC 16 ch 1`` — the control as the engineer sees it."""
        kind = {"cc": "CC", "note": "note", "cc14": "CC14", "nrpn": "NRPN"}.get(self.kind, "")
        ch = "any ch" if self.channel is None else f"ch {self.channel + 1}"
        if self.kind == "pitchbend":
            return f"pitch bend {ch}"
        return f"{kind} {self.number} {ch}"


@dataclass(frozen=True, slots=True)
class ControllerMap:
    """A whole map: which ports to open and every binding."""

    name: str
    input: str
    output: str | None = None
    description: str = ""
    controls: tuple[Binding, ...] = ()
    source: str | None = field(default=None, compare=False)


# -- loading ------------------------------------------------------------------------


def load_map(
    name_or_path: str | os.PathLike[str], user_dir: str | os.PathLike[str] | None = None
) -> ControllerMap:
    """Read a controller map by name (shipped, then the user's folder: ``user_dir``, by
    default ``$EARMARK_HOME/controllers``) or by path (``earmark.presets``).

    Raises:
        PresetError: the map is missing or malformed; the message names file, line and key.
    """
    text, source = presets.load("controllers", name_or_path, user_dir)
    return parse_map(text, source)


def map_names(user_dir: str | os.PathLike[str] | None = None) -> list[str]:
    """Names of the shipped maps, then of the user's."""
    return presets.names("controllers", user_dir)


def parse_map(text: str, source: str | None = None) -> ControllerMap:
    """Parse a map's text; ``source`` is the file name used in error messages."""
    data, lines = parse_toml(text, source)

    def top_error(key: str, cause: str, table: str = "") -> PresetError:
        return PresetError(cause, source, lines.line(table, key), key=key)

    _check_keys(data, _TOP_KEYS, lambda k, c: top_error(k, c), "a controller map has")
    version = data.get("version", MAP_VERSION)
    if isinstance(version, bool) or not isinstance(version, int):
        raise top_error("version", f"must be an integer, got {_show(version)}")
    if version != MAP_VERSION:
        raise top_error(
            "version", f"version {version} is not understood (this earmark reads {MAP_VERSION})"
        )
    name = data.get("name", Path(source).stem if source else "controller")
    description = data.get("description", "")
    for key, value in (("name", name), ("description", description)):
        if not isinstance(value, str):
            raise top_error(key, f"must be a string, got {_show(value)}")

    port = data.get("port", {})
    if not isinstance(port, dict):
        raise top_error("port", "must be a [port] table with 'input' and 'output'")
    _check_keys(port, _PORT_KEYS, lambda k, c: top_error(k, c, "port"), "[port] has")
    pattern_in = port.get("input", "")
    pattern_out = port.get("output")
    for key, value in (("input", pattern_in), ("output", pattern_out)):
        if value is not None and not isinstance(value, str):
            raise top_error(key, f"must be a string (a port name or pattern), got {_show(value)}")
        if value:
            try:
                re.compile(value)
            except re.error as exc:
                raise top_error(key, f"is not a valid pattern: {exc}", "port") from None

    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise top_error("defaults", "must be a [defaults] table")
    _check_keys(defaults, _DEFAULT_KEYS, lambda k, c: top_error(k, c, "defaults"), "[defaults] has")
    default_channel = _channel(
        defaults.get("channel", 1), lambda c: top_error("channel", c, "defaults")
    )

    tables = data.get("control", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise top_error("control", "must be [[control]] tables")
    controls = []
    seen: dict[tuple, int] = {}
    for number, table in enumerate(tables, start=1):
        where = lines.array("control", number)

        def error(key: str | None, cause: str, where=where, number=number) -> PresetError:
            line = where.get(key or "", where.get(""))
            return PresetError(cause, source, line, key, table="control", number=number)

        binding = _parse_control(table, number, default_channel, error, where.get(""))
        ident = (binding.kind, binding.channel, binding.number)
        if ident in seen:
            raise error(
                binding.kind,
                f"{binding.describe()} is already bound by control {seen[ident]}",
            )
        seen[ident] = number
        controls.append(binding)
    return ControllerMap(
        name=name,
        input=pattern_in or "",
        output=pattern_out or None,
        description=description,
        controls=tuple(controls),
        source=source,
    )


def _parse_control(
    table: dict[str, Any], number: int, default_channel: int | None, error, line: int | None
) -> Binding:
    _check_keys(table, _ALL_CONTROL_KEYS, error, "a control has")
    kinds = [k for k in KINDS if k in table]
    if not kinds:
        raise error(None, "needs one of 'cc', 'note', 'cc14', 'nrpn' or 'pitchbend' (the message)")
    if len(kinds) > 1:
        raise error(kinds[1], f"a control sends one kind of message, not {kinds[0]!r} too")
    kind = kinds[0]
    if kind == "pitchbend":
        if table[kind] is not True:
            raise error(kind, "must be true (pitch bend has no number)")
        num = 0
    else:
        high = {"cc": 127, "note": 127, "cc14": 31, "nrpn": 16383}[kind]
        num = _int(table[kind], 0, high, lambda c: error(kind, c))
    channel = (
        _channel(table["channel"], lambda c: error("channel", c))
        if "channel" in table
        else default_channel
    )
    action = table.get("action")
    if action is None:
        raise error(None, f"needs an 'action' (one of {choices(ACTIONS)})")
    if action not in ACTIONS:
        raise error("action", f"unknown action {_show(action)}{did_you_mean(str(action), ACTIONS)}")
    allowed = _ACTION_KEYS.get(action, ())
    for key in table:
        if key not in _CONTROL_KEYS and key not in allowed:
            raise error(key, f"is not used by action {action!r}" + _uses(allowed))
    mode = table.get("mode", "absolute")
    if mode not in MODES:
        raise error("mode", f"must be one of {choices(MODES)}, got {_show(mode)}")
    button = table.get("button", "toggle")
    if button not in BUTTONS:
        raise error("button", f"must be one of {choices(BUTTONS)}, got {_show(button)}")
    continuous = action in CONTINUOUS_ACTIONS
    if continuous and kind == "note":
        raise error("note", f"a note is a button; action {action!r} needs a fader, knob or encoder")
    if not continuous and kind in ("cc14", "nrpn", "pitchbend"):
        raise error(kind, f"action {action!r} needs a button (cc or note), not {kind}")
    if not continuous and mode != "absolute":
        raise error("mode", f"action {action!r} is a button: a relative mode makes no sense")
    if continuous and mode != "absolute" and kind not in ("cc", "nrpn"):
        raise error("mode", f"relative modes are for 7-bit cc or nrpn encoders, not {kind}")
    name = table.get("name", "")
    if not isinstance(name, str):
        raise error("name", f"must be a string, got {_show(name)}")
    fields: dict[str, Any] = {}
    if action in ("chain_bypass", "plugin_bypass", "parameter"):
        fields["path"] = _path(table.get("path", "A"), lambda c: error("path", c))
    if action in ("plugin_bypass", "parameter"):
        if "plugin" not in table:
            raise error(None, f"action {action!r} needs 'plugin' (counting from 1)")
        fields["plugin"] = _int(table["plugin"], 1, 999, lambda c: error("plugin", c)) - 1
    if action in ("snapshot", "marker") and "text" in table:
        if not isinstance(table["text"], str):
            raise error("text", f"must be a string, got {_show(table['text'])}")
        fields["text"] = table["text"]
    if continuous:
        fields.update(_continuous(table, action, error))
    led = _led(table.get("led"), kind, num, channel, error) if "led" in table else None
    return Binding(
        name=name or f"control {number}",
        kind=kind,
        channel=channel,
        number=num,
        action=action,
        mode=mode,
        button=button,
        led=led,
        number_in_file=number,
        line=line,
        **fields,
    )


def _continuous(table: dict[str, Any], action: str, error) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if action == "parameter":
        for key in ("key", "min", "max"):
            if key not in table:
                raise error(None, f"action 'parameter' needs {key!r}")
        key = table["key"]
        if not isinstance(key, str) or not key:
            raise error("key", f'must be a parameter key like "threshold_db", got {_show(key)}')
        out["key"] = key
        default_range: tuple[float, float] | None = None
    else:
        default_range = TRIM_RANGE_DB
    low = _float(table.get("min", default_range and default_range[0]), lambda c: error("min", c))
    high = _float(table.get("max", default_range and default_range[1]), lambda c: error("max", c))
    if low == high:
        raise error("max", f"must differ from 'min' ({num(low)})")
    curve = table.get("curve", "lin")
    if curve not in CURVES:
        raise error("curve", f"must be one of {choices(CURVES)}, got {_show(curve)}")
    if curve == "log" and not (low > 0 and high > 0):
        raise error("curve", f"a log curve needs min and max above 0, got {num(low)}..{num(high)}")
    units = table.get("units", _units_of(out.get("key")) if action == "parameter" else "dB")
    if not isinstance(units, str):
        raise error("units", f"must be a string, got {_show(units)}")
    step = _float(table.get("step", DEFAULT_STEP), lambda c: error("step", c))
    if not 0 < step <= 1:
        raise error("step", f"is the share of the range per detent: above 0, at most 1, got {step}")
    takeover = table.get("takeover", "pickup")
    if takeover not in TAKEOVERS:
        raise error("takeover", f"must be one of {choices(TAKEOVERS)}, got {_show(takeover)}")
    tolerance = _float(table.get("tolerance", DEFAULT_TOLERANCE), lambda c: error("tolerance", c))
    if not 0 <= tolerance <= 0.5:
        raise error("tolerance", f"is a share of the range: 0 to 0.5, got {tolerance}")
    out.update(
        low=low,
        high=high,
        curve=curve,
        units=units,
        step=step,
        takeover=takeover,
        tolerance=tolerance,
    )
    return out


def _led(value: Any, kind: str, number: int, channel: int | None, error) -> Led | None:
    if value is False:
        return None
    if value is True:
        if kind not in ("cc", "note"):
            raise error(
                "led", f"an echo LED needs a cc or note control; give {{cc = N}} for {kind}"
            )
        if channel is None:
            raise error("led", 'an echo LED needs the control\'s channel, not "any"')
        return Led(kind, channel, number)
    if not isinstance(value, dict):
        raise error("led", f"must be true, false or a table like {{note = 8}}, got {_show(value)}")
    for key in value:
        if key not in _LED_KEYS:
            hint = did_you_mean(str(key), _LED_KEYS)
            raise error("led", f"unknown LED key {key!r}{hint}" + _uses(_LED_KEYS))
    kinds = [k for k in ("cc", "note") if k in value]
    if len(kinds) != 1:
        raise error("led", "an LED is one message: give exactly one of 'cc' or 'note'")
    led_kind = kinds[0]
    led_number = _int(value[led_kind], 0, 127, lambda c: error("led", f"{led_kind}: {c}"))
    if "channel" not in value and channel is None:
        raise error("led", "channel: the control listens on any channel; give the LED's (1-16)")
    led_channel = _channel(
        value.get("channel", None if channel is None else channel + 1),
        lambda c: error("led", f"channel: {c}"),
    )
    if led_channel is None:
        raise error("led", "channel: an LED needs a channel (1-16)")
    on = _int(value.get("on", 127), 0, 127, lambda c: error("led", f"on: {c}"))
    off = _int(value.get("off", 0), 0, 127, lambda c: error("led", f"off: {c}"))
    return Led(led_kind, led_channel, led_number, on, off)


# -- small checks ----------------------------------------------------------------------


def _check_keys(table: dict[str, Any], known: tuple[str, ...], error, what: str) -> None:
    for key in table:
        if key not in known:
            hint = did_you_mean(str(key), known)
            raise error(key, f"unknown key{hint}; {what} {choices(known, quote=chr(39))}")


def _channel(value: Any, error) -> int | None:
    if value == "any":
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 16:
        raise error(f'must be a MIDI channel from 1 to 16 or "any", got {_show(value)}')
    return value - 1


def _path(value: Any, error) -> str | int:
    """Which path a binding acts on: A, B, or a number from 1 (maps always counted from 1)."""
    if value in ("A", "B", "a", "b"):
        return str(value).upper()
    return path_index(_int(value, 1, 64, lambda c: error(f'{c} (or "A" or "B")')))


def _int(value: Any, low: int, high: int, error) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise error(f"must be a whole number from {low} to {high}, got {_show(value)}")
    if not low <= value <= high:
        raise error(f"must be from {low} to {high}, got {value}")
    return value


def _float(value: Any, error) -> float:
    if value is None:
        raise error("is required")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise error(f"must be a finite number, got {_show(value)}")
    return float(value)


def _units_of(key: str | None) -> str:
    """The unit word of a chain parameter key (``threshold_db`` -> ``dB``), from the
    chains' one unit table."""
    # Here, not at the top: reading a map must not load the engine's compiled kernels.
    from earmark.engine.chains import split_unit

    return split_unit(key)[1] if key else ""


def _uses(keys: tuple[str, ...]) -> str:
    return f" (it takes {choices(keys, quote=chr(39))})" if keys else ""


# -- writing (midi learn) -----------------------------------------------------------------


def dump_map(cmap: ControllerMap, header: str = "") -> str:
    """The TOML text of ``cmap`` (what ``earmark midi learn`` writes); parses back equal."""
    out = [f"# {line}".rstrip() for line in header.splitlines()]
    out += [f"name = {_toml(cmap.name)}", f"version = {MAP_VERSION}"]
    if cmap.description:
        out.append(f"description = {_toml(cmap.description)}")
    out += ["", "[port]", f"input = {_toml(cmap.input)}"]
    if cmap.output:
        out.append(f"output = {_toml(cmap.output)}")
    for b in cmap.controls:
        out += ["", "[[control]]", f"name = {_toml(b.name)}"]
        out.append(f"{b.kind} = true" if b.kind == "pitchbend" else f"{b.kind} = {b.number}")
        out.append(f"channel = {_toml('any') if b.channel is None else b.channel + 1}")
        out.append(f"action = {_toml(b.action)}")
        if b.mode != "absolute":
            out.append(f"mode = {_toml(b.mode)}")
        if not b.continuous and b.button != "toggle":
            out.append(f"button = {_toml(b.button)}")
        if b.action in ("chain_bypass", "plugin_bypass", "parameter"):
            out.append(
                f"path = {_toml(b.path if isinstance(b.path, str) else path_number(b.path))}"
            )
        if b.action in ("plugin_bypass", "parameter"):
            out.append(f"plugin = {b.plugin + 1}")
        if b.text is not None:
            out.append(f"text = {_toml(b.text)}")
        if b.continuous:
            if b.key is not None:
                out.append(f"key = {_toml(b.key)}")
            out += [f"min = {_toml(b.low)}", f"max = {_toml(b.high)}"]
            if b.curve != "lin":
                out.append(f"curve = {_toml(b.curve)}")
            if b.units:
                out.append(f"units = {_toml(b.units)}")
            if b.step != DEFAULT_STEP:
                out.append(f"step = {_toml(b.step)}")
            if b.takeover != "pickup":
                out.append(f"takeover = {_toml(b.takeover)}")
            if b.tolerance != DEFAULT_TOLERANCE:
                out.append(f"tolerance = {_toml(b.tolerance)}")
        if b.led is not None:
            led = b.led
            out.append(
                f"led = {{ {led.kind} = {led.number}, channel = {led.channel + 1}, "
                f"on = {led.on}, off = {led.off} }}"
            )
    return "\n".join(out) + "\n"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'
