"""The chain preset format: parsing and checking a chain description, and the one unit table.

Preset format
=============

A chain preset is a TOML file (read with the standard library's ``tomllib``)::

    name = "Gentle master"                      # shown in the UI; default: the file name
    description = "2:1 glue, a little air, -1 dBTP ceiling"
    version = 1                                 # optional; the format's version

    [[plugin]]                                  # one table per plugin, in signal order
    builtin = "Compressor"                      # a pedalboard built-in class ...
    label = "Glue"                              # optional name shown in the UI
    threshold_db = -20.0                        # parameters by name, unit in the name
    ratio = 2.0
    attack_ms = 30

    [[plugin]]
    vst3 = "ZaMaximX2"                          # ... or a VST3: scanned name or bundle path
    bypass = false                              # optional, default false
    mono = "auto"                               # optional: "auto" | "dual" | "off"
    output_ceiling_db = -1.0

Each ``[[plugin]]`` table names exactly one of ``builtin`` (a pedalboard
built-in, see :data:`BUILTINS`), ``vst3`` (a name found by ``earmark plugins
scan`` or a path to a ``.vst3`` bundle) or ``au`` (reserved for macOS Audio
Units). The other reserved keys are ``label``, ``bypass`` and ``mono``; every
other key is a parameter. A file without ``[[plugin]]`` tables is an empty
chain: it passes audio through untouched.

Parameter names carry their unit, as earmark's own names do: ``threshold_db``,
``attack_ms``, ``cutoff_frequency_hz``, ``mix`` (a fraction, 0-1). Time and
frequency may be given in either unit of their kind (``attack_ms = 30`` or
``attack_s = 0.03``; ``cutoff_frequency_khz = 8``), fractions as percent
(``mix_percent = 50``). A unitless parameter has the bare name (``ratio``,
``q``). For built-ins the names follow pedalboard's constructor arguments;
``Delay``'s ``delay_seconds`` is spelled ``delay_s`` or ``delay_ms``. For a
VST3 the names are pedalboard's (``plugin.parameters``), which already end in
the plugin's unit (ZamCompX2's "Threshold" in dB is ``threshold_db``); a
parameter in percent takes ``_percent`` (Dragonfly's "Dry Level" is
``dry_level_percent``). Values are checked against the range the plugin
accepts; meters a plugin reports (``gain_reduction_db``) cannot be set.

``mono`` says what happens to a plugin that has fewer inputs than the
material has channels: ``"auto"`` (default) runs a mono-only plugin as
dual-mono (one instance per channel, identical parameters) and a stereo one
as it is; ``"dual"`` always runs one instance per channel (unlinked
processing, e.g. independent L/R compression); ``"off"`` refuses a mono-only
plugin on stereo material.

Errors name the file, the line and the key::

    gentle.toml:14: plugin 2 'ratio': must be between 1 and 100, got 0.5

Parameter units
===============

:data:`UNITS` is earmark's one table of the units a parameter key may end in
(``_db``, ``_ms``, ``_khz``...): the word shown for it and how it converts
within its kind. The preset checks here, the dashboard's parameter list, the
snapshot and the MIDI controller's maps all read it.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from earmark import presets
from earmark.errors import PresetError
from earmark.presets.tomltools import (
    TomlLines,
    choices,
    did_you_mean,
    num,
    parse_toml,
    show_value,
)

if TYPE_CHECKING:
    from earmark.engine.plugins import ParameterInfo

__all__ = [
    "BUILTINS",
    "UNITS",
    "ChainSpec",
    "ParamDef",
    "ParamValue",
    "PluginSpec",
    "PresetError",
    "Unit",
    "builtin_defs",
    "chain_names",
    "convert_unit",
    "external_defs",
    "load_chain",
    "parse_chain",
    "resolve_values",
    "spec_error",
    "split_unit",
    "unit_word",
]

PRESET_VERSION = 1
MONO_MODES = ("auto", "dual", "off")
KINDS = ("builtin", "vst3", "au")
RESERVED_KEYS = (*KINDS, "label", "bypass", "mono")
TOP_LEVEL_KEYS = ("name", "description", "version", "plugin")

ParamValue = float | int | bool | str


# -- specs ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PluginSpec:
    """One plugin of a chain, as written in a preset.

    ``params`` keeps the preset's keys (with their units) and values in file
    order. ``source``, ``number`` and ``lines`` say where it was read, for
    error messages; they take no part in equality.
    """

    kind: str  # "builtin" | "vst3" | "au"
    target: str  # built-in class name, scanned plugin name or bundle path
    params: tuple[tuple[str, ParamValue], ...] = ()
    label: str | None = None
    bypass: bool = False
    mono: str = "auto"
    source: str | None = field(default=None, compare=False)
    number: int | None = field(default=None, compare=False)
    lines: tuple[tuple[str, int], ...] = field(default=(), compare=False)

    @classmethod
    def builtin(cls, name: str, **params: ParamValue) -> PluginSpec:
        """A built-in, e.g. ``PluginSpec.builtin("Gain", gain_db=6.0)``."""
        return cls("builtin", name, tuple(params.items()))

    @classmethod
    def vst3(cls, name_or_path: str | os.PathLike[str], **params: ParamValue) -> PluginSpec:
        """A VST3 by scanned name or bundle path, e.g. ``PluginSpec.vst3("ZaMaximX2")``."""
        return cls("vst3", os.fspath(name_or_path), tuple(params.items()))

    @property
    def title(self) -> str:
        """The label, else the plugin's name."""
        if self.label:
            return self.label
        return Path(self.target).stem if self.kind != "builtin" else self.target

    def line_of(self, key: str | None = None) -> int | None:
        """The line of ``key`` in the file, else of the plugin's ``[[plugin]]`` header."""
        lines = dict(self.lines)
        if key is not None and key in lines:
            return lines[key]
        return lines.get("")


@dataclass(frozen=True, slots=True)
class ChainSpec:
    """A whole chain: name, description and plugins in signal order."""

    name: str
    description: str = ""
    plugins: tuple[PluginSpec, ...] = ()
    source: str | None = field(default=None, compare=False)


# -- units ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Unit:
    """A unit a parameter key may end in."""

    word: str  # as shown: "dB", "kHz", "%"
    kind: str  # units of one kind convert into each other
    scale: float  # one of this unit in the kind's base unit


#: earmark's one table of parameter units, by the suffix a key ends in
#: (``threshold_db``, ``attack_ms``, ``cutoff_frequency_khz``, ``mix_percent``).
UNITS: Mapping[str, Unit] = {
    "db": Unit("dB", "level", 1.0),
    "dbtp": Unit("dBTP", "true peak", 1.0),
    "lufs": Unit("LUFS", "loudness", 1.0),
    "ms": Unit("ms", "time", 1e-3),
    "s": Unit("s", "time", 1.0),
    "hz": Unit("Hz", "frequency", 1.0),
    "khz": Unit("kHz", "frequency", 1e3),
    "percent": Unit("%", "percent", 1.0),
}


def split_unit(key: str) -> tuple[str, str]:
    """A parameter key split into (name, unit word): ``threshold_db`` -> (``threshold``,
    ``dB``); (``key``, ``""``) when it ends in no unit of :data:`UNITS`."""
    base, sep, token = key.rpartition("_")
    unit = UNITS.get(token.lower()) if sep else None
    return (base, unit.word) if unit is not None else (key, "")


def convert_unit(value: float, from_token: str, to_token: str) -> float | None:
    """``value`` in unit ``from_token`` (``"ms"``) expressed in ``to_token`` (``"s"``);
    None unless both are units of :data:`UNITS` of one kind."""
    a, b = UNITS.get(from_token.lower()), UNITS.get(to_token.lower())
    if a is None or b is None or a.kind != b.kind:
        return None
    return value * a.scale / b.scale


def unit_word(token: str) -> str:
    """The word shown for a unit suffix (``"khz"`` -> ``"kHz"``); an unknown one as it is."""
    unit = UNITS.get(token)
    return token if unit is None else unit.word


def _key_units(native: str | None) -> tuple[tuple[str, float], ...]:
    """The suffixes a key may carry for a parameter whose native unit (what pedalboard
    takes) is ``native``, each with the factor that turns its value into the native
    unit; the native one first (it makes the canonical key)."""
    if native is None:
        return (("", 1.0),)
    if native == "fraction":  # 0-1, also given in percent
        return (("", 1.0), ("percent", 0.01))
    unit = UNITS.get(native)
    if unit is None:  # a plugin's own unit token: taken as it is
        return ((native, 1.0),)
    same_kind = (
        (token, other.scale / unit.scale)
        for token, other in UNITS.items()
        if other.kind == unit.kind and token != native
    )
    return ((native, 1.0), *same_kind)


# -- parameter definitions ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ParamDef:
    """How preset keys map to one plugin parameter and what values it accepts."""

    base: str  # the key without its unit suffix
    target: str  # built-in attribute / pedalboard parameter name
    unit: str | None  # native unit: a token of UNITS, "fraction", another token or None
    low: float | None = None  # native units
    high: float | None = None
    kind: str = "float"  # "float" | "bool" | "choice"
    choices: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()  # more keys, in native units
    nyquist: bool = False  # a frequency that must stay below half the sample rate
    latency: bool = False  # changing it moves the plugin's latency (measured again)
    writable: bool = True
    cpp_name: str | None = None  # an external plugin's own parameter name

    def key_factors(self) -> dict[str, float]:
        units = _key_units(self.unit)
        keys = {(f"{self.base}_{token}" if token else self.base): f for token, f in units}
        keys.update(dict.fromkeys(self.aliases, 1.0))
        return keys

    @property
    def key(self) -> str:
        """The canonical preset key."""
        return next(iter(self.key_factors()))


def _p(base: str, target: str, unit: str | None, low: float | None = None,
       high: float | None = None, **more: Any) -> ParamDef:  # fmt: skip
    low, high = (None if v is None else float(v) for v in (low, high))
    return ParamDef(base, target, unit, low, high, **more)


def _filter(cutoff_low_hz: float = 10.0) -> tuple[ParamDef, ...]:
    return (
        _p("cutoff_frequency", "cutoff_frequency_hz", "hz", cutoff_low_hz, 96000, nyquist=True),
        _p("gain", "gain_db", "db", -48, 48),
        _p("q", "q", None, 0.01, 100),
    )


# Built-ins usable in a chain, with the ranges earmark accepts. pedalboard checks
# only some of these (Delay, Reverb, Chorus mix...); the rest are where JUCE's
# DSP stays meaningful (a compressor ratio below 1 would expand, a cutoff at or
# above Nyquist is undefined).
BUILTIN_DEFS: dict[str, tuple[ParamDef, ...]] = {
    "Gain": (_p("gain", "gain_db", "db", -100, 40),),
    "Compressor": (
        _p("threshold", "threshold_db", "db", -100, 0),
        _p("ratio", "ratio", None, 1, 100),
        _p("attack", "attack_ms", "ms", 0.01, 1000),
        _p("release", "release_ms", "ms", 1, 5000),
    ),
    "Limiter": (
        _p("threshold", "threshold_db", "db", -60, 0),
        _p("release", "release_ms", "ms", 1, 5000),
    ),
    "BrickwallLimiter": (
        _p("ceiling", "ceiling_db", "db", -60, 0),
        _p("release", "release_ms", "ms", 1, 5000),
        _p("lookahead", "lookahead_ms", "ms", 0.1, 100, latency=True),
        _p("true_peak", "true_peak", None, kind="bool", latency=True),
    ),
    "HighShelfFilter": _filter(),
    "LowShelfFilter": _filter(),
    "PeakFilter": _filter(),
    "HighpassFilter": (
        _p("cutoff_frequency", "cutoff_frequency_hz", "hz", 1, 96000, nyquist=True),
    ),
    "LowpassFilter": (_p("cutoff_frequency", "cutoff_frequency_hz", "hz", 1, 96000, nyquist=True),),
    "LadderFilter": (
        _p(
            "mode",
            "mode",
            None,
            kind="choice",
            choices=("LPF12", "HPF12", "BPF12", "LPF24", "HPF24", "BPF24"),
        ),
        _p("cutoff", "cutoff_hz", "hz", 10, 96000, nyquist=True),
        _p("resonance", "resonance", "fraction", 0, 1),
        _p("drive", "drive", None, 1, 100),
    ),
    "Delay": (
        _p("delay", "delay_seconds", "s", 0, 30, aliases=("delay_seconds",), latency=True),
        _p("feedback", "feedback", "fraction", 0, 1),
        _p("mix", "mix", "fraction", 0, 1, latency=True),
    ),
    "Reverb": tuple(
        _p(name, name, "fraction", 0, 1)
        for name in ("room_size", "damping", "wet_level", "dry_level", "width", "freeze_mode")
    ),
    "Chorus": (
        _p("rate", "rate_hz", "hz", 0, 100),
        _p("depth", "depth", "fraction", 0, 1),
        _p("centre_delay", "centre_delay_ms", "ms", 1, 100),
        _p("feedback", "feedback", None, -1, 1),
        _p("mix", "mix", "fraction", 0, 1),
    ),
    "Phaser": (
        _p("rate", "rate_hz", "hz", 0, 100),
        _p("depth", "depth", "fraction", 0, 1),
        _p("centre_frequency", "centre_frequency_hz", "hz", 10, 96000, nyquist=True),
        _p("feedback", "feedback", None, -1, 1),
        _p("mix", "mix", "fraction", 0, 1),
    ),
    "Distortion": (_p("drive", "drive_db", "db", 0, 100),),
    "NoiseGate": (
        _p("threshold", "threshold_db", "db", -100, 0),
        _p("ratio", "ratio", None, 1, 100),
        _p("attack", "attack_ms", "ms", 0.01, 1000),
        _p("release", "release_ms", "ms", 1, 5000),
    ),
    "Clipping": (_p("threshold", "threshold_db", "db", -60, 0),),
    "Bitcrush": (_p("bit_depth", "bit_depth", None, 0, 32),),
    "Invert": (),
    "PitchShift": (_p("semitones", "semitones", None, -72, 72),),
    "MP3Compressor": (_p("vbr_quality", "vbr_quality", None, 0, 10),),
}

#: The pedalboard built-ins a chain may use, with their canonical parameter keys.
BUILTINS: Mapping[str, tuple[str, ...]] = {
    name: tuple(d.key for d in defs) for name, defs in BUILTIN_DEFS.items()
}


def _unit_token(label: str | None) -> tuple[str | None, str]:
    """(family, suffix token) for a plugin's unit label: "dB" -> ("db", "db")."""
    if label is None:
        return None, ""
    text = label.strip()
    if text == "%":
        return "percent", "percent"
    token = re.sub(r"[^0-9a-z]+", "_", text.lower()).strip("_")
    if not token:
        return None, ""
    return token, token


def external_defs(infos: Sequence[ParameterInfo]) -> tuple[ParamDef, ...]:
    defs = []
    for info in infos:
        unit, token = _unit_token(info.units)
        base = info.name
        if token and unit != "percent" and base.endswith("_" + token):
            base = base[: -len(token) - 1]
        elif token and unit != "percent":
            unit = None  # pedalboard did not put the unit in the name: keep its name as is
        defs.append(
            ParamDef(
                base=base,
                target=info.name,
                unit=unit,
                low=info.minimum,
                high=info.maximum,
                kind=info.kind,
                choices=info.choices,
                writable=info.writable,
                cpp_name=info.display_name,
            )
        )
    return tuple(defs)


# -- reading presets ------------------------------------------------------------------


def load_chain(
    name_or_path: str | os.PathLike[str], user_dir: str | os.PathLike[str] | None = None
) -> ChainSpec:
    """Read a chain preset by name or path (``earmark.presets``: a name is looked up
    among the shipped presets, then in the user's folder, ``$EARMARK_HOME/chains`` or
    ``user_dir``; anything with a path separator, or naming an existing file, is read
    as a file).

    Raises:
        PresetError: the preset is missing or malformed; the message names
            the file, line and key.
    """
    text, source = presets.load("chains", name_or_path, user_dir)
    return parse_chain(text, source)


def chain_names(user_dir: str | os.PathLike[str] | None = None) -> list[str]:
    """Names of the shipped presets, then of the user's (``user_dir`` replaces the user's
    folder)."""
    return presets.names("chains", user_dir)


def parse_chain(text: str, source: str | None = None) -> ChainSpec:
    """Parse a preset's text; ``source`` is the file name used in error messages."""
    data, lines = parse_toml(text, source)

    def top_error(key: str, cause: str) -> PresetError:
        return PresetError(cause, source, lines.top.get(key), key=key)

    for key in data:
        if key not in TOP_LEVEL_KEYS:
            hint = did_you_mean(key, TOP_LEVEL_KEYS)
            raise top_error(
                key,
                f"unknown key{hint}; a chain has 'name', 'description', 'version' "
                "and [[plugin]] tables",
            )
    version = data.get("version", PRESET_VERSION)
    if isinstance(version, bool) or not isinstance(version, int):
        raise top_error("version", f"must be an integer, got {_shown(version)}")
    if version != PRESET_VERSION:
        raise top_error(
            "version", f"version {version} is not understood (this earmark reads {PRESET_VERSION})"
        )
    default_name = Path(source).stem if source else "chain"
    name = data.get("name", default_name)
    description = data.get("description", "")
    for key, value in (("name", name), ("description", description)):
        if not isinstance(value, str):
            raise top_error(key, f"must be a string, got {_shown(value)}")
    tables = data.get("plugin", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise top_error("plugin", "must be [[plugin]] tables")
    plugins = tuple(
        _parse_plugin(table, number, source, lines) for number, table in enumerate(tables, start=1)
    )
    return ChainSpec(name=name, description=description, plugins=plugins, source=source)


def _parse_plugin(
    table: dict[str, Any], number: int, source: str | None, lines: TomlLines
) -> PluginSpec:
    where = lines.array("plugin", number)

    def error(key: str | None, cause: str) -> PresetError:
        line = where.get(key or "", where.get(""))
        return PresetError(cause, source, line, key, table="plugin", number=number)

    kinds = [k for k in KINDS if k in table]
    if not kinds:
        raise error(None, "needs one of 'builtin', 'vst3' or 'au' to say which plugin it is")
    if len(kinds) > 1:
        raise error(kinds[1], f"a plugin is one of 'builtin', 'vst3' or 'au', not {kinds[0]!r} too")
    kind = kinds[0]
    target = table[kind]
    if not isinstance(target, str) or not target.strip():
        raise error(kind, f"must be a non-empty string, got {_shown(target)}")
    label = table.get("label")
    if label is not None and not isinstance(label, str):
        raise error("label", f"must be a string, got {_shown(label)}")
    bypass = table.get("bypass", False)
    if not isinstance(bypass, bool):
        raise error("bypass", f"must be true or false, got {_shown(bypass)}")
    mono = table.get("mono", "auto")
    if mono not in MONO_MODES:
        raise error("mono", f"must be one of {choices(MONO_MODES)}, got {_shown(mono)}")
    params = []
    for key, value in table.items():
        if key in RESERVED_KEYS:
            continue
        if isinstance(value, (dict, list)) or not isinstance(value, (int, float, bool, str)):
            raise error(key, f"must be a number, true/false or a string, got {_shown(value)}")
        params.append((key, value))
    spec = PluginSpec(
        kind=kind,
        target=target.strip(),
        params=tuple(params),
        label=label,
        bypass=bypass,
        mono=mono,
        source=source,
        number=number,
        lines=tuple(where.items()),
    )
    if kind == "builtin":
        resolve_values(spec, builtin_defs(spec), sample_rate=None)
    return spec


# -- checking values --------------------------------------------------------------------


def builtin_defs(spec: PluginSpec) -> tuple[ParamDef, ...]:
    defs = BUILTIN_DEFS.get(spec.target)
    if defs is None:
        hint = did_you_mean(spec.target, BUILTIN_DEFS)
        raise spec_error(
            spec,
            spec.kind,
            f"unknown built-in {spec.target!r}{hint} (built-ins: {', '.join(BUILTIN_DEFS)})",
        )
    return defs


def resolve_values(
    spec: PluginSpec, defs: Sequence[ParamDef], sample_rate: float | None
) -> dict[str, tuple[ParamDef, ParamValue]]:
    """Check every parameter of ``spec``; return target -> (definition, native value)."""
    index: dict[str, tuple[ParamDef, float]] = {}
    for d in defs:
        for key, factor in d.key_factors().items():
            index.setdefault(key, (d, factor))
    values: dict[str, tuple[ParamDef, ParamValue]] = {}
    seen: dict[str, str] = {}
    for key, value in spec.params:
        d, native = _check_param(spec, key, value, index, sample_rate)
        if d.target in seen:
            raise spec_error(spec, key, f"sets the same parameter as '{seen[d.target]}'")
        seen[d.target] = key
        values[d.target] = (d, native)
    return values


def _check_param(
    spec: PluginSpec,
    key: str,
    value: Any,
    index: Mapping[str, tuple[ParamDef, float]],
    sample_rate: float | None,
) -> tuple[ParamDef, ParamValue]:
    if key not in index:
        raise spec_error(spec, key, _unknown_param(spec, key, index))
    d, factor = index[key]
    if not d.writable:
        raise spec_error(spec, key, f"is a value {spec.title} reports, not a setting")
    if d.kind == "bool":
        if not isinstance(value, bool):
            raise spec_error(spec, key, f"must be true or false, got {_shown(value)}")
        return d, value
    if d.kind == "choice":
        if not isinstance(value, str) or value not in d.choices:
            raise spec_error(spec, key, f"must be one of {choices(d.choices)}, got {_shown(value)}")
        return d, value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise spec_error(spec, key, f"must be a number, got {_shown(value)}")
    if not math.isfinite(value):
        raise spec_error(spec, key, f"must be a finite number, got {_shown(value)}")
    native = float(value) * factor
    unit = _key_unit(key, d)
    # Plugin ranges are read from displayed values, so allow rounding of the last digit.
    slack = 1e-6 * max(abs(d.low or 0.0), abs(d.high or 0.0), 1.0)
    if (d.low is not None and native < d.low - slack) or (
        d.high is not None and native > d.high + slack
    ):
        if d.low is not None and d.high is not None:
            bounds = f"between {num(d.low / factor)} and {num(d.high / factor)}{unit}"
        elif d.low is not None:
            bounds = f"at least {num(d.low / factor)}{unit}"
        else:
            bounds = f"at most {num((d.high or 0.0) / factor)}{unit}"
        raise spec_error(spec, key, f"must be {bounds}, got {num(float(value))}")
    if d.nyquist and sample_rate is not None and native >= sample_rate / 2.0:
        raise spec_error(
            spec,
            key,
            f"must be below half the sample rate ({num(sample_rate / 2.0 / factor)}{unit} at "
            f"{num(sample_rate)} Hz), got {num(float(value))}",
        )
    return d, native


def _key_unit(key: str, d: ParamDef) -> str:
    token = key[len(d.base) + 1 :] if key.startswith(d.base + "_") else ""
    word = unit_word(token)
    if not word:
        return ""
    return word if word == "%" else " " + word


def _unknown_param(spec: PluginSpec, key: str, index: Mapping[str, Any]) -> str:
    canonical = list(dict.fromkeys(d.key for d, _ in index.values() if d.writable))
    for d, _ in index.values():
        if key == d.base and d.writable:
            options = " or ".join(d.key_factors())
            return f"give the unit in the name: {options}"
    hint = did_you_mean(key, [k for k in index if index[k][0].writable])
    listing = ", ".join(canonical) if canonical else "none"
    return f"unknown parameter of {spec.title}{hint} (parameters: {listing})"


def spec_error(spec: PluginSpec, key: str | None, cause: str) -> PresetError:
    line = spec.line_of(key)
    return PresetError(cause, spec.source, line, key, table="plugin", number=spec.number)


def _shown(value: Any) -> str:
    return show_value(value, string_word=True)
