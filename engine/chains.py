"""Chains are data: TOML presets turned into pedalboard plugins, edited live without blocking audio.

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

Running a chain
===============

:func:`build_chain` turns a :class:`ChainSpec` into a :class:`Chain` for one
sample rate and channel count. :meth:`Chain.process` is called from the audio
thread with one block at a time; the edits (:meth:`Chain.set_parameter`,
:meth:`Chain.set_bypass`, :meth:`Chain.add`, :meth:`Chain.remove`) are called
from any other thread. An edit prepares a new immutable list of plugin slots
off the audio thread and publishes it with one attribute assignment; the
audio thread reads that attribute once per block and never waits for an edit
(STYLE.md item 7). Parameter values reach the live plugin instances at the
next block boundary, applied by the audio thread itself, so a plugin is only
ever touched by one thread while it streams and keeps its state (a
compressor's envelope, a limiter's lookahead) across the change.

:attr:`Chain.latency_samples` is the sum of the plugins' latencies: a VST3's
own report (pedalboard exposes it; an impulse pushed through at build time
cross-checks it and a disagreement lands in :attr:`Chain.warnings`), a
built-in's measured with an impulse through a fresh copy (pedalboard reports
none for built-ins). Every plugin is prepared for :data:`MAX_BLOCK_FRAMES`
before it streams, so no block size ever makes pedalboard re-prepare (and
clear) it mid-stream; a latent plugin's short first outputs are padded, so
every block comes back as long as it went in.

Bypass keeps a chain's timing: a bypassed plugin still runs (its state stays
current, and it still costs its CPU), its output is replaced by the input
delayed by the plugin's latency, and the switch is a linear crossfade of at
most :data:`BYPASS_RAMP_S` within the next block. Adding or removing a plugin
changes :attr:`Chain.latency_samples`.

Non-finite plugin output (NaN/Inf) never leaves the chain: the block becomes
silence, :attr:`Chain.nonfinite_blocks` counts it and
:attr:`Chain.last_nonfinite_plugin` names the plugin (0-based index). Nor does
an output of the wrong shape or type: it counts as the plugin raising, in
:attr:`Chain.error_blocks` and :attr:`Chain.last_error`. (An empty output is
silence, whatever its shape: pedalboard shapes a latent plugin's first, empty
outputs for 1- and 2-frame stereo blocks (frames, 0).)
"""

from __future__ import annotations

import math
import os
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from earmark import presets
from earmark.engine import plugins as _plugins
from earmark.errors import PresetError
from earmark.presets.tomltools import (
    TomlLines,
    choices,
    did_you_mean,
    num,
    parse_toml,
    show_value,
)

from . import rt
from .rt import MAX_BLOCK_FRAMES

__all__ = [
    "BUILTINS",
    "BYPASS_RAMP_S",
    "MAX_BLOCK_FRAMES",
    "Chain",
    "ChainSpec",
    "PluginSpec",
    "PresetError",
    "build_chain",
    "chain_names",
    "load_chain",
    "parse_chain",
]

PRESET_VERSION = 1
MONO_MODES = ("auto", "dual", "off")
KINDS = ("builtin", "vst3", "au")
RESERVED_KEYS = (*KINDS, "label", "bypass", "mono")
TOP_LEVEL_KEYS = ("name", "description", "version", "plugin")

# Every plugin is prepared once for blocks of MAX_BLOCK_FRAMES (rt) and then always
# handed blocks no larger (pedalboard splits bigger ones), so a stream never
# triggers a re-prepare, which would clear the plugin's state mid-stream.
BYPASS_RAMP_S = 0.005  # 5 ms: long enough not to click, short enough to feel instant
_LATENCY_PROBE_S = 1.0  # the impulse response window: longer than any plugin's latency
_LATENCY_IMPULSE = 0.25  # -12 dBFS: below limiter ceilings, above gates' thresholds
_RETIRE_AFTER_S = 2.0  # removed plugins are freed off the audio thread after this

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


# -- parameter definitions ---------------------------------------------------------------

# Unit families: the suffixes a key may carry for a parameter whose native unit
# (what pedalboard takes) is the family's name, with the factor that turns a
# value in that suffix's unit into the native unit.
_FAMILIES: dict[str | None, tuple[tuple[str, float], ...]] = {
    None: (("", 1.0),),
    "db": (("db", 1.0),),
    "ms": (("ms", 1.0), ("s", 1000.0)),
    "s": (("s", 1.0), ("ms", 0.001)),
    "hz": (("hz", 1.0), ("khz", 1000.0)),
    "khz": (("khz", 1.0), ("hz", 0.001)),
    "percent": (("percent", 1.0),),
    "fraction": (("", 1.0), ("percent", 0.01)),
}
_UNIT_WORDS = {"db": "dB", "ms": "ms", "s": "s", "hz": "Hz", "khz": "kHz", "percent": "%"}


@dataclass(frozen=True, slots=True)
class _ParamDef:
    """How preset keys map to one plugin parameter and what values it accepts."""

    base: str  # the key without its unit suffix
    target: str  # built-in attribute / pedalboard parameter name
    unit: str | None  # native unit family (see _FAMILIES) or another unit token
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
        family = _FAMILIES.get(self.unit, ((self.unit or "", 1.0),))
        keys = {(f"{self.base}_{token}" if token else self.base): f for token, f in family}
        keys.update(dict.fromkeys(self.aliases, 1.0))
        return keys

    @property
    def key(self) -> str:
        """The canonical preset key."""
        return next(iter(self.key_factors()))


def _p(base: str, target: str, unit: str | None, low: float | None = None,
       high: float | None = None, **more: Any) -> _ParamDef:  # fmt: skip
    low, high = (None if v is None else float(v) for v in (low, high))
    return _ParamDef(base, target, unit, low, high, **more)


def _filter(cutoff_low_hz: float = 10.0) -> tuple[_ParamDef, ...]:
    return (
        _p("cutoff_frequency", "cutoff_frequency_hz", "hz", cutoff_low_hz, 96000, nyquist=True),
        _p("gain", "gain_db", "db", -48, 48),
        _p("q", "q", None, 0.01, 100),
    )


# Built-ins usable in a chain, with the ranges earmark accepts. pedalboard checks
# only some of these (Delay, Reverb, Chorus mix...); the rest are where JUCE's
# DSP stays meaningful (a compressor ratio below 1 would expand, a cutoff at or
# above Nyquist is undefined).
_BUILTIN_DEFS: dict[str, tuple[_ParamDef, ...]] = {
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
    name: tuple(d.key for d in defs) for name, defs in _BUILTIN_DEFS.items()
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


def _external_defs(infos: Sequence[_plugins.ParameterInfo]) -> tuple[_ParamDef, ...]:
    defs = []
    for info in infos:
        unit, token = _unit_token(info.units)
        base = info.name
        if token and unit != "percent" and base.endswith("_" + token):
            base = base[: -len(token) - 1]
        elif token and unit != "percent":
            unit = None  # pedalboard did not put the unit in the name: keep its name as is
        defs.append(
            _ParamDef(
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
        _resolve_values(spec, _builtin_defs(spec), sample_rate=None)
    return spec


# -- checking values --------------------------------------------------------------------


def _builtin_defs(spec: PluginSpec) -> tuple[_ParamDef, ...]:
    defs = _BUILTIN_DEFS.get(spec.target)
    if defs is None:
        hint = did_you_mean(spec.target, _BUILTIN_DEFS)
        raise _spec_error(
            spec,
            spec.kind,
            f"unknown built-in {spec.target!r}{hint} (built-ins: {', '.join(_BUILTIN_DEFS)})",
        )
    return defs


def _resolve_values(
    spec: PluginSpec, defs: Sequence[_ParamDef], sample_rate: float | None
) -> dict[str, tuple[_ParamDef, ParamValue]]:
    """Check every parameter of ``spec``; return target -> (definition, native value)."""
    index: dict[str, tuple[_ParamDef, float]] = {}
    for d in defs:
        for key, factor in d.key_factors().items():
            index.setdefault(key, (d, factor))
    values: dict[str, tuple[_ParamDef, ParamValue]] = {}
    seen: dict[str, str] = {}
    for key, value in spec.params:
        d, native = _check_param(spec, key, value, index, sample_rate)
        if d.target in seen:
            raise _spec_error(spec, key, f"sets the same parameter as '{seen[d.target]}'")
        seen[d.target] = key
        values[d.target] = (d, native)
    return values


def _check_param(
    spec: PluginSpec,
    key: str,
    value: Any,
    index: Mapping[str, tuple[_ParamDef, float]],
    sample_rate: float | None,
) -> tuple[_ParamDef, ParamValue]:
    if key not in index:
        raise _spec_error(spec, key, _unknown_param(spec, key, index))
    d, factor = index[key]
    if not d.writable:
        raise _spec_error(spec, key, f"is a value {spec.title} reports, not a setting")
    if d.kind == "bool":
        if not isinstance(value, bool):
            raise _spec_error(spec, key, f"must be true or false, got {_shown(value)}")
        return d, value
    if d.kind == "choice":
        if not isinstance(value, str) or value not in d.choices:
            raise _spec_error(
                spec, key, f"must be one of {choices(d.choices)}, got {_shown(value)}"
            )
        return d, value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _spec_error(spec, key, f"must be a number, got {_shown(value)}")
    if not math.isfinite(value):
        raise _spec_error(spec, key, f"must be a finite number, got {_shown(value)}")
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
        raise _spec_error(spec, key, f"must be {bounds}, got {num(float(value))}")
    if d.nyquist and sample_rate is not None and native >= sample_rate / 2.0:
        raise _spec_error(
            spec,
            key,
            f"must be below half the sample rate ({num(sample_rate / 2.0 / factor)}{unit} at "
            f"{num(sample_rate)} Hz), got {num(float(value))}",
        )
    return d, native


def _key_unit(key: str, d: _ParamDef) -> str:
    token = key[len(d.base) + 1 :] if key.startswith(d.base + "_") else ""
    word = _UNIT_WORDS.get(token, token)
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


def _spec_error(spec: PluginSpec, key: str | None, cause: str) -> PresetError:
    line = spec.line_of(key)
    return PresetError(cause, spec.source, line, key, table="plugin", number=spec.number)


def _shown(value: Any) -> str:
    return show_value(value, string_word=True)


# -- running chains ---------------------------------------------------------------------


class _DelayLine:
    """A whole-sample delay for the bypass path (audio thread only).

    Fed every block (so its history is right the moment bypass engages) through
    a preallocated ring; the delayed block is copied out only when it is heard.
    """

    __slots__ = ("_delay", "_out", "_pos", "_ring")

    def __init__(self, delay: int, channels: int) -> None:
        self._delay = delay
        self._ring = np.zeros((delay + 1, channels), dtype=np.float32)
        self._out = np.zeros((MAX_BLOCK_FRAMES, channels), dtype=np.float32)
        self._pos = 0

    def feed(self, x: np.ndarray) -> None:
        if self._delay:
            self._pos = rt.delay(x, x.shape[0], self._ring, self._pos, self._delay, self._out)

    def delayed(self, x: np.ndarray) -> np.ndarray:
        """The block fed last, delayed (``x`` itself when there is no delay)."""
        return self._out[: x.shape[0]].copy() if self._delay else x


class _Runtime:
    """Per-slot state owned by the audio thread: bypass path and fault counters."""

    __slots__ = ("bypassed", "delay", "errors", "last_error", "nonfinite")

    def __init__(self, latency: int, channels: int, bypassed: bool) -> None:
        self.delay = _DelayLine(latency, channels)
        self.bypassed = bypassed  # what the audio thread rendered last
        self.nonfinite = 0
        self.errors = 0
        self.last_error: str | None = None

    def moved_to(self, latency: int, channels: int) -> _Runtime:
        """A runtime for a new latency, keeping the counters and the bypass state."""
        other = _Runtime(latency, channels, self.bypassed)
        other.nonfinite, other.errors, other.last_error = self.nonfinite, self.errors, None
        return other


class _Slot:
    """One plugin of a published chain state.

    Immutable once published, except ``applied`` (set by the audio thread once
    ``writes`` reached the instances; shared by versions with the same writes)
    and ``runtime`` (the audio thread's own state).
    """

    __slots__ = (
        "applied",
        "bypass",
        "defs",
        "external",
        "instances",
        "latency",
        "parameters",
        "runtime",
        "sample_rate",
        "spec",
        "values",
        "writes",
    )

    def __init__(
        self,
        spec: PluginSpec,
        instances: tuple[Any, ...],
        defs: tuple[_ParamDef, ...],
        values: dict[str, tuple[_ParamDef, ParamValue]],
        latency: int,
        runtime: _Runtime,
        sample_rate: float,
        external: bool = False,
        parameters: Mapping[str, Any] | None = None,
        writes: tuple[tuple[str, Any], ...] = (),
    ) -> None:
        self.spec = spec
        self.instances = instances
        self.defs = defs
        self.values = values
        self.latency = latency
        self.runtime = runtime
        self.sample_rate = sample_rate
        self.external = external
        self.parameters = parameters  # pedalboard's parameter objects (external plugins)
        self.bypass = spec.bypass
        self.writes = writes
        self.applied = [not writes]

    def evolve(self, **changes: Any) -> _Slot:
        names = (
            "spec",
            "instances",
            "defs",
            "values",
            "latency",
            "runtime",
            "sample_rate",
            "external",
            "parameters",
            "writes",
        )
        fields = {name: changes.get(name, getattr(self, name)) for name in names}
        new = _Slot(**fields)
        if "writes" not in changes:
            new.applied = self.applied
        return new

    def run(self, x: np.ndarray, frames: int) -> np.ndarray:
        """The plugin's output for ``x``, exactly ``frames`` long (audio thread)."""
        instances = self.instances
        if len(instances) == 1:
            y = instances[0].process(x, self.sample_rate, MAX_BLOCK_FRAMES, False)
            return _pad(y, frames, x.shape[1])
        out = np.empty_like(x)
        for channel, inst in enumerate(instances):
            mono = np.ascontiguousarray(x[:, channel : channel + 1])
            y = inst.process(mono, self.sample_rate, MAX_BLOCK_FRAMES, False)
            out[:, channel : channel + 1] = _pad(y, frames, 1)
        return out

    def apply_writes(self) -> None:
        """Hand pending parameter values to the plugin instances (audio thread)."""
        try:
            if self.external:
                for inst in self.instances:
                    for cpp_name, raw in self.writes:
                        parameter = inst._get_parameter(cpp_name)
                        if parameter is not None:
                            parameter.raw_value = raw
            else:
                for inst in self.instances:
                    for attr, value in self.writes:
                        setattr(inst, attr, value)
        finally:
            # Once is enough, even when a value was refused: retrying every block would
            # repeat the error forever.
            self.applied[0] = True


@dataclass(frozen=True, slots=True)
class _State:
    slots: tuple[_Slot, ...]
    spec: ChainSpec
    latency: int


class Chain:
    """A running chain of pedalboard plugins for one sample rate and channel count.

    Built by :func:`build_chain`. :meth:`process` belongs to the audio thread;
    every other method may be called from any other thread, and none of them
    makes :meth:`process` wait. Indexes count from 0.
    """

    def __init__(
        self,
        spec: ChainSpec,
        slots: Sequence[_Slot],
        sample_rate: float,
        channels: int,
        search_path: Sequence[str | os.PathLike[str]] | None = None,
        cache_file: str | os.PathLike[str] | None = None,
        warnings: Sequence[str] = (),
    ) -> None:
        self.sample_rate = float(sample_rate)
        self.channels = int(channels)
        self.warnings: list[str] = list(warnings)
        self.nonfinite_blocks = 0  # blocks replaced by silence because a plugin output NaN/Inf
        self.last_nonfinite_plugin: int | None = None
        self.nonfinite_input_blocks = 0  # blocks whose input was not finite (silenced on entry)
        self.error_blocks = 0  # blocks silenced because a plugin raised
        self.last_error: str | None = None
        self._search_path = search_path
        self._cache_file = cache_file
        self._edit_lock = threading.Lock()
        self._retired: list[tuple[float, _Slot]] = []
        self._ramp_frames = max(1, round(BYPASS_RAMP_S * self.sample_rate))
        self._state = _State(tuple(slots), spec, sum(s.latency for s in slots))

    # -- reading ---------------------------------------------------------------------

    @property
    def spec(self) -> ChainSpec:
        """The chain as it is now, edits included (save it to reproduce the sound)."""
        return self._state.spec

    @property
    def latency_samples(self) -> int:
        """Delay from input to output in samples; bypassed plugins keep theirs."""
        return self._state.latency

    @property
    def plugins(self) -> tuple[Any, ...]:
        """The pedalboard plugin objects (the first instance of a dual-mono pair)."""
        return tuple(slot.instances[0] for slot in self._state.slots)

    @property
    def instances(self) -> tuple[tuple[Any, ...], ...]:
        """Every plugin instance per slot (one per channel for dual-mono)."""
        return tuple(slot.instances for slot in self._state.slots)

    @property
    def bypassed(self) -> tuple[bool, ...]:
        return tuple(slot.bypass for slot in self._state.slots)

    @property
    def dual_mono(self) -> tuple[bool, ...]:
        return tuple(len(slot.instances) > 1 for slot in self._state.slots)

    @property
    def plugin_latencies(self) -> tuple[int, ...]:
        return tuple(slot.latency for slot in self._state.slots)

    @property
    def nonfinite_counts(self) -> tuple[int, ...]:
        """Per plugin: blocks in which it produced non-finite output."""
        return tuple(slot.runtime.nonfinite for slot in self._state.slots)

    def parameter_values(self, index: int) -> dict[str, float]:
        """Plugin ``index``'s numeric parameters as it holds them now, by pedalboard
        name (``threshold_db``): the values a preset left at the plugin's default
        included, an edit the audio thread has not applied yet too. Not for the
        audio thread."""
        slot = self._slot(self._state, index)
        plugin = slot.instances[0]
        values: dict[str, float] = {}
        for d in slot.defs:
            if d.kind != "float":
                continue
            if d.target in slot.values:
                value = slot.values[d.target][1]
            else:
                try:
                    value = getattr(plugin, d.target)
                except Exception:  # a plugin may refuse to report one
                    continue
            try:
                number = float(value)
            except (TypeError, ValueError):
                continue
            if math.isfinite(number):
                values[d.target] = number
        return values

    def __len__(self) -> int:
        return len(self._state.slots)

    def _reset_counters(self) -> None:
        """Forget faults counted so far (after the warm-up block, before streaming)."""
        self.nonfinite_blocks = self.nonfinite_input_blocks = self.error_blocks = 0
        self.last_nonfinite_plugin = self.last_error = None
        for slot in self._state.slots:
            slot.runtime.nonfinite = slot.runtime.errors = 0
            slot.runtime.last_error = None

    # -- the audio thread ----------------------------------------------------------------

    def process(self, block: np.ndarray) -> np.ndarray:
        """Run one block, float32 shaped (frames, channels); return a new array of that shape.

        Audio-thread rules: no locks, bounded work, never raises for a plugin's
        fault. Pending parameter values are applied first; a plugin that raises
        or outputs NaN/Inf turns the block into silence and is counted.
        """
        state = self._state  # the one read of the published state for this block
        x = block
        if x.dtype != np.float32 or not x.flags.c_contiguous:
            x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.channels:
            raise ValueError(
                f"block must be shaped (frames, {self.channels}), got {np.shape(block)}"
            )
        frames = x.shape[0]
        if not rt.all_finite(x, frames):
            self.nonfinite_input_blocks += 1
            clean = np.empty_like(x)
            rt.copy_zeroing_non_finite(x, frames, clean)
            x = clean
        if frames == 0 or not state.slots:
            return x.copy() if x is block else x
        raised: int | None = None  # first plugin that raised in this block
        nonfinite: int | None = None  # first audible plugin that output NaN/Inf
        for index, slot in enumerate(state.slots):
            runtime = slot.runtime
            try:
                if not slot.applied[0]:
                    slot.apply_writes()
                wet = slot.run(x, frames)
            except Exception as exc:
                runtime.errors += 1
                runtime.last_error = str(exc)
                self.last_error = f"plugin {index + 1} ({slot.spec.title}): {exc}"
                raised = index if raised is None else raised
                wet = np.zeros_like(x)
            if not rt.all_finite(wet, frames):
                # Downstream plugins get silence, so the fault does not poison their state.
                wet = np.zeros_like(x)
                if not (slot.bypass and runtime.bypassed):  # an audible plugin
                    runtime.nonfinite += 1
                    nonfinite = index if nonfinite is None else nonfinite
            x = self._mix(slot, runtime, x, wet, frames)
        if raised is not None or nonfinite is not None:
            if raised is not None:
                self.error_blocks += 1
            if nonfinite is not None:
                self.nonfinite_blocks += 1
                self.last_nonfinite_plugin = nonfinite
            return np.zeros_like(x)
        # Never hand back the caller's own array (all plugins bypassed, no latency).
        return x.copy() if x is block else x

    def _mix(
        self, slot: _Slot, runtime: _Runtime, dry: np.ndarray, wet: np.ndarray, frames: int
    ) -> np.ndarray:
        runtime.delay.feed(dry)
        target = slot.bypass
        if target == runtime.bypassed:
            return runtime.delay.delayed(dry) if target else wet
        delayed = runtime.delay.delayed(dry)
        # A bypass switch: a linear crossfade (both sides are the same signal, in phase).
        runtime.bypassed = target
        n = min(frames, self._ramp_frames)
        start, end = (wet, delayed) if target else (delayed, wet)
        out = end.copy()
        fade = (np.arange(1, n + 1, dtype=np.float32) / np.float32(n))[:, None]
        out[:n] = end[:n] * fade + start[:n] * (np.float32(1.0) - fade)  # exact at both ends
        return out

    # -- edits (any thread but the audio thread) --------------------------------------------

    def set_parameter(self, index: int, name_with_unit: str, value: ParamValue) -> None:
        """Set a parameter by its preset key (``"threshold_db"``, ``"attack_s"``).

        Checked like a preset value (:class:`PresetError` on a bad one); reaches
        the plugin at the next block. A built-in whose latency depends on the
        parameter (BrickwallLimiter's lookahead) is measured again.
        """
        with self._edit_lock:
            state = self._state
            slot = self._slot(state, index)
            probe = replace(
                slot.spec,
                params=((name_with_unit, value),),
                source=None,
                lines=(),
                number=index + 1,
            )
            ((d, native),) = _resolve_values(probe, slot.defs, self.sample_rate).values()
            values = dict(slot.values)
            values[d.target] = (d, native)
            # Values published but not yet applied must travel with this edit: the audio
            # thread may skip straight to the newest state.
            pending = {name for name, _ in slot.writes} if not slot.applied[0] else set()
            pending.add(str(d.cpp_name) if slot.external else d.target)
            writes = tuple(self._write(slot, values, name) for name in sorted(pending))
            spec = replace(slot.spec, params=_replace_param(slot, d.target, name_with_unit, value))
            latency = slot.latency
            if d.latency and not slot.external:
                width = self._slot_channels(slot)
                fresh = _make_builtin(spec.target, values)
                latency = _measure_latency([fresh], self.sample_rate, width, _window_s(values)) or 0
            runtime = slot.runtime
            if latency != slot.latency:
                runtime = runtime.moved_to(latency, self.channels)
            new = slot.evolve(
                spec=spec, values=values, writes=writes, latency=latency, runtime=runtime
            )
            self._publish(state, index, new)

    def set_bypass(self, index: int, bypass: bool) -> None:
        """Bypass or restore a plugin from the next block on (with a 5 ms crossfade)."""
        with self._edit_lock:
            state = self._state
            slot = self._slot(state, index)
            self._publish(state, index, slot.evolve(spec=replace(slot.spec, bypass=bool(bypass))))

    def add(self, plugin: PluginSpec, index: int | None = None) -> None:
        """Insert a plugin (at the end by default). It is built and measured here, off
        the audio thread; only the finished list is published."""
        if not plugin.number:
            plugin = replace(plugin, number=len(self) + 1 if index is None else index + 1)
        slot = _build_slot(
            plugin,
            self.sample_rate,
            self.channels,
            self._search_path,
            self._cache_file,
            self.warnings,
        )
        with self._edit_lock:
            state = self._state
            slots = list(state.slots)
            position = len(slots) if index is None else index
            if not 0 <= position <= len(slots):
                raise IndexError(f"plugin index {index} out of range 0..{len(slots)}")
            slots.insert(position, slot)
            self._swap(slots, state.spec)

    def remove(self, index: int) -> PluginSpec:
        """Take a plugin out and return its spec (its instances are freed off the audio thread)."""
        with self._edit_lock:
            state = self._state
            slot = self._slot(state, index)
            slots = list(state.slots)
            del slots[index]
            self._swap(slots, state.spec)
            # The audio thread may still be inside a block that uses it; freeing a
            # plugin (unloading a VST3) there would cost that block dearly.
            self._retired.append((time.monotonic(), slot))
            return slot.spec

    def reset(self) -> None:
        """Clear every plugin's internal state (tails, envelopes). Not while streaming."""
        with self._edit_lock:
            for slot in self._state.slots:
                for inst in slot.instances:
                    inst.reset()
                _prime(slot.instances, self.sample_rate, self._slot_channels(slot))
                slot.runtime.delay = _DelayLine(slot.latency, self.channels)

    # -- helpers -------------------------------------------------------------------------

    def _slot(self, state: _State, index: int) -> _Slot:
        if not isinstance(index, int) or not 0 <= index < len(state.slots):
            raise IndexError(f"plugin index {index} out of range 0..{len(state.slots) - 1}")
        return state.slots[index]

    def _slot_channels(self, slot: _Slot) -> int:
        return 1 if len(slot.instances) > 1 else self.channels

    def _write(self, slot: _Slot, values: Mapping[str, Any], name: str) -> tuple[str, Any]:
        if slot.external:
            d = next(d for d in slot.defs if d.cpp_name == name)
            parameter = (slot.parameters or {})[d.target]
            return name, float(parameter.get_raw_value_for(values[d.target][1]))
        d, native = values[name]
        return name, _builtin_value(slot.spec.target, name, native)

    def _publish(self, state: _State, index: int, slot: _Slot) -> None:
        slots = list(state.slots)
        slots[index] = slot
        self._swap(slots, state.spec)

    def _swap(self, slots: Sequence[_Slot], spec: ChainSpec) -> None:
        spec = replace(spec, plugins=tuple(s.spec for s in slots))
        # The single publishing step: the audio thread sees the old or the new state.
        self._state = _State(tuple(slots), spec, sum(s.latency for s in slots))
        now = time.monotonic()
        self._retired = [(t, s) for t, s in self._retired if now - t < _RETIRE_AFTER_S]


def _replace_param(
    slot: _Slot, target: str, key: str, value: ParamValue
) -> tuple[tuple[str, ParamValue], ...]:
    """The spec's parameters with ``target`` set by ``key``, in place when it was set before."""
    params: list[tuple[str, ParamValue]] = []
    for k, v in slot.spec.params:
        if _target_of(slot.defs, k) != target:
            params.append((k, v))
        elif (key, value) not in params:
            params.append((key, value))
    if (key, value) not in params:
        params.append((key, value))
    return tuple(params)


def _target_of(defs: Sequence[_ParamDef], key: str) -> str | None:
    for d in defs:
        if key in d.key_factors():
            return d.target
    return None


def _pad(y: np.ndarray, frames: int, channels: int) -> np.ndarray:
    """Left-pad a short output with silence: a latent plugin's first blocks are short.

    An empty output is no output, whatever its shape: pedalboard shapes a latent
    plugin's empty output for a 1- or 2-frame stereo block (frames, 0), whose memory
    the audio kernels would read past. Raises ValueError for anything else that is
    not a float32 array of at most (``frames``, ``channels``).
    """
    if isinstance(y, np.ndarray) and y.size == 0:
        return np.zeros((frames, channels), dtype=np.float32)
    if (
        not isinstance(y, np.ndarray)
        or y.dtype != np.float32
        or y.ndim != 2
        or y.shape[1] != channels
        or y.shape[0] > frames
    ):
        shown = tuple(y.shape) if isinstance(y, np.ndarray) else type(y).__name__
        raise ValueError(
            f"returned {shown} for a ({frames}, {channels}) block"
            + (f" ({y.dtype})" if isinstance(y, np.ndarray) and y.dtype != np.float32 else "")
        )
    if y.shape[0] == frames:
        return y
    out = np.zeros((frames, channels), dtype=np.float32)
    out[frames - y.shape[0] :] = y
    return out


# -- building chains ---------------------------------------------------------------------


def build_chain(
    spec: ChainSpec,
    sample_rate: float,
    channels: int,
    search_path: Sequence[str | os.PathLike[str]] | None = None,
    cache_file: str | os.PathLike[str] | None = None,
) -> Chain:
    """Instantiate every plugin of ``spec`` for ``sample_rate`` and ``channels``.

    VST3 plugins are found by :func:`earmark.engine.plugins.resolve` (scanned
    name or path) and validated in a child process before they are loaded
    here. Each plugin's latency is measured with an impulse (built-ins on a
    fresh copy; external plugins on the instance, which is then reset) and
    compared with what the plugin reports.

    Raises:
        PresetError: naming the file, line and key, e.g. an unknown VST3, a
            parameter outside the plugin's range, a mono-only plugin with
            ``mono = "off"`` on stereo material.
    """
    if not 1 <= int(channels) <= 64:
        raise ValueError(f"channels must be between 1 and 64, got {channels}")
    if not 8000 <= float(sample_rate) <= 384000:
        raise ValueError(f"sample_rate must be between 8000 and 384000 Hz, got {sample_rate}")
    warnings: list[str] = []
    numbered = [p if p.number else replace(p, number=i) for i, p in enumerate(spec.plugins, 1)]
    slots = [
        _build_slot(p, float(sample_rate), int(channels), search_path, cache_file, warnings)
        for p in numbered
    ]
    chain = Chain(spec, slots, sample_rate, channels, search_path, cache_file, warnings)
    # The first block loads compiled kernels (~0.3 s): do it here, not in the audio
    # callback. One sample of silence, as if the stream had started a sample earlier.
    chain.process(np.zeros((1, int(channels)), dtype=np.float32))
    chain._reset_counters()
    return chain


def _build_slot(
    spec: PluginSpec,
    sample_rate: float,
    channels: int,
    search_path: Sequence[str | os.PathLike[str]] | None,
    cache_file: str | os.PathLike[str] | None,
    warnings: list[str],
) -> _Slot:
    if spec.kind == "builtin":
        return _build_builtin(spec, sample_rate, channels)
    return _build_external(spec, sample_rate, channels, search_path, cache_file, warnings)


def _build_builtin(spec: PluginSpec, sample_rate: float, channels: int) -> _Slot:
    import pedalboard

    defs = _builtin_defs(spec)
    if getattr(pedalboard, spec.target, None) is None:
        raise _spec_error(
            spec,
            "builtin",
            f"built-in {spec.target!r} is not in the installed pedalboard "
            f"{getattr(pedalboard, '__version__', '')}; a newer pedalboard has it",
        )
    values = _resolve_values(spec, defs, sample_rate)
    dual = spec.mono == "dual" and channels > 1
    count = channels if dual else 1
    instances = tuple(_make_builtin(spec.target, values) for _ in range(count))
    width = 1 if dual else channels
    fresh = _make_builtin(spec.target, values)
    latency = _measure_latency([fresh], sample_rate, width, _window_s(values)) or 0
    _prime(instances, sample_rate, width)
    runtime = _Runtime(latency, channels, spec.bypass)
    return _Slot(spec, instances, defs, values, latency, runtime, sample_rate)


def _make_builtin(name: str, values: Mapping[str, tuple[_ParamDef, ParamValue]]) -> Any:
    import pedalboard

    cls = getattr(pedalboard, name)
    kwargs = {
        target: _builtin_value(name, target, native) for target, (_d, native) in values.items()
    }
    return cls(**kwargs)


def _builtin_value(name: str, target: str, native: ParamValue) -> Any:
    if name == "LadderFilter" and target == "mode":
        import pedalboard

        return getattr(pedalboard.LadderFilter.Mode, str(native))
    return native


def _build_external(
    spec: PluginSpec,
    sample_rate: float,
    channels: int,
    search_path: Sequence[str | os.PathLike[str]] | None,
    cache_file: str | os.PathLike[str] | None,
    warnings: list[str],
) -> _Slot:
    import pedalboard

    cls_name = "VST3Plugin" if spec.kind == "vst3" else "AudioUnitPlugin"
    cls = getattr(pedalboard, cls_name, None)
    if cls is None:
        where = "macOS" if spec.kind == "au" else "this platform's pedalboard"
        raise _spec_error(spec, spec.kind, f"{spec.kind.upper()} plugins need {where}")
    try:
        bundle = _plugins.resolve(spec.target, cache_file, search_path)
    except _plugins.PluginNotFoundError as exc:
        raise _spec_error(spec, spec.kind, str(exc)) from None
    for record in _plugins.load_records(cache_file) if cache_file is not None else ():
        if record.path == str(bundle) and not record.ok:
            warnings.append(f"{spec.title}: its probe found {record.reason}")

    def load() -> Any:
        try:
            names = cls.get_plugin_names_for_file(str(bundle))
            wanted = [n for n in names if n.casefold() == spec.target.casefold()]
            return cls(str(bundle), plugin_name=(wanted or names)[0])
        except Exception as exc:
            raise _spec_error(spec, spec.kind, f"cannot load {bundle}: {exc}") from None

    first = load()
    infos = _plugins.parameter_infos(first)
    defs = _external_defs(infos)
    values = _resolve_values(spec, defs, sample_rate)
    parameters = first.parameters
    mono_only = channels > 1 and not _accepts(first, channels, sample_rate)
    if mono_only and spec.mono == "off":
        raise _spec_error(
            spec,
            "mono" if spec.line_of("mono") != spec.line_of() else spec.kind,
            f"{first.name} is mono-only and the material has {channels} channels; "
            'set mono = "auto" or "dual" to run one instance per channel',
        )
    dual = channels > 1 and (mono_only or spec.mono == "dual")
    if dual and not mono_only and not _accepts(first, 1, sample_rate):
        raise _spec_error(
            spec, "mono", f'{first.name} does not accept one channel: mono = "dual" cannot run it'
        )
    instances = [first] + [load() for _ in range(channels - 1 if dual else 0)]
    raws = [
        (d.cpp_name, float(parameters[d.target].get_raw_value_for(native)))
        for d, native in values.values()
    ]
    for inst in instances:
        for cpp_name, raw in raws:
            inst._get_parameter(cpp_name).raw_value = raw
    width = 1 if dual else channels
    # The plugin's own report is the latency (an impulse cannot tell a delay from a
    # wet effect); the impulse is the cross-check, and a disagreement is reported.
    measured = _measure_latency(instances, sample_rate, width)
    reported = int(getattr(first, "reported_latency_samples", 0) or 0)
    for inst in instances:
        inst.reset()
    _prime(instances, sample_rate, width)
    latency = reported
    if measured is not None and measured != reported:
        warnings.append(
            f"{spec.title}: reports {reported} samples of latency but an impulse came out "
            f"after {measured}; using the reported value"
        )
    runtime = _Runtime(latency, channels, spec.bypass)
    return _Slot(
        spec,
        tuple(instances),
        defs,
        values,
        latency,
        runtime,
        sample_rate,
        external=True,
        parameters=parameters,
    )


def _accepts(plugin: Any, channels: int, sample_rate: float) -> bool:
    """Whether a plugin processes ``channels`` channels (mono-only plugins refuse 2)."""
    try:
        plugin.process(np.zeros((64, channels), np.float32), sample_rate, 64, False)
    except Exception:
        plugin.reset()
        return False
    plugin.reset()
    return True


def _prime(instances: Sequence[Any], sample_rate: float, channels: int) -> None:
    """Prepare each plugin for the largest block it will see, so streaming never re-prepares."""
    silence = np.zeros((MAX_BLOCK_FRAMES, channels), np.float32)
    for inst in instances:
        inst.process(silence, sample_rate, MAX_BLOCK_FRAMES, False)


def _window_s(values: Mapping[str, tuple[_ParamDef, ParamValue]]) -> float:
    """How long to listen for the impulse: a long Delay needs more than the default."""
    delay = values.get("delay_seconds")
    return max(_LATENCY_PROBE_S, float(delay[1]) + 0.1) if delay else _LATENCY_PROBE_S


def _measure_latency(
    instances: Sequence[Any],
    sample_rate: float,
    channels: int,
    window_s: float = _LATENCY_PROBE_S,
) -> int | None:
    """Samples from an impulse in to the largest absolute sample out, streamed as live.

    None when nothing came out (a gate shut on the impulse).
    """
    # Whole blocks: a tail of a frame or two would defeat pedalboard's layout guess.
    frames = -(-max(MAX_BLOCK_FRAMES, round(window_s * sample_rate)) // MAX_BLOCK_FRAMES)
    frames *= MAX_BLOCK_FRAMES
    impulse = np.zeros((frames, channels), np.float32)
    impulse[0] = _LATENCY_IMPULSE
    response = np.zeros(frames, np.float32)
    for inst in instances[:1]:
        for start in range(0, frames, MAX_BLOCK_FRAMES):
            block = impulse[start : start + MAX_BLOCK_FRAMES]
            y = _pad(inst.process(block, sample_rate, MAX_BLOCK_FRAMES, False), *block.shape)
            response[start : start + block.shape[0]] = np.max(np.abs(y), axis=1)
    if not np.isfinite(response).all() or response.max() < 1e-3 * _LATENCY_IMPULSE:
        return None
    return int(np.argmax(response))
