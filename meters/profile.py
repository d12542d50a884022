"""Profiles: a genre's or a delivery's expectations, as data the detectors read.

A profile is a TOML file (``presets/profiles/*.toml`` ships several; ``earmark
profile build`` learns one from trusted masters). Every section is optional and a
missing section turns its checks off; a numeric threshold set to ``false`` turns
that one check off (useful with ``extends``)::

    name = "jazz"
    description = "Acoustic jazz: wide dynamics, natural transients"
    kind = "genre"                 # genre | delivery | generic | learned
    extends = "default"            # optional: start from other profiles (name or list)

    [loudness]                     # loudness_target
    target_lufs = -14.0
    tolerance_lu = 1.0
    severity = "warning"           # or "problem" (a binding spec, e.g. broadcast)
    platform = "Spotify"           # named in messages
    normalised_playback = false    # true (learned): quieter counts only without headroom

    [true_peak]                    # true_peak_over
    ceiling_dbtp = -1.0

    [dynamics]                     # over_compression, collapsed_dynamics
    psr_min_db = 10.0              # PSR (3 s) below this, sustained -> warning
    psr_problem_db = 8.0           # ... below this -> problem
    judge_above_lufs = -20.0       # only windows this loud are judged for over-compression
    sustain_s = 5.0
    lra_min_lu = 6.0               # programme LRA below -> warning
    lra_problem_lu = 5.0           # ... below -> problem (genre mismatch)
    plr_min_db = 11.0
    plr_problem_db = 9.0
    dr_min = 8
    min_programme_s = 20.0         # LRA/PLR/DR are judged after this much programme
    corroborate = false            # true: over_compression also needs the programme's
                                   # PLR <= 10 dB or DR < 8 so far (a loud master's)

    [transients]                   # crushed_transients
    crest_min_db = 8.0             # onset peak above short-term loudness (median, 10 s)
    drop_db = 3.0                  # with a BEFORE version: onsets lost this much
    drop_problem_db = 6.0
    sustain_s = 3.0

    [tonal]                        # target curve: a model ...
    model = "popular-music"
    lows_db = 0.0
    mids_db = 0.0
    highs_db = 0.0
    spread_db = 3.0
    # ... or learned bands: band_hz = [...], level_db = [...], spread_db = [...]

    [harshness]                    # harsh_highs (needs [tonal])
    presence_excess_db = 3.0       # 2-5 kHz above the target
    air_excess_db = 5.0            # 5-10 kHz above the target (needs a BEFORE version)
    sustain_s = 5.0
    body_deficit_db = 6.0          # highs over a missing body are a passage, not a master
    rise_db = 3.0                  # with BEFORE: the processing added this much (vs the body)
    rise_problem_db = 6.0          # ... this much -> problem
    require_before = false

    [resonance]                    # resonance (needs nothing else)
    prominence_db = 6.0
    narrow_db = 3.0
    sustain_s = 10.0
    persistence = 0.8
    min_hz = 100.0
    max_hz = 10000.0

:func:`parse_profile` checks one file's text: errors name the file, the line and
the key (``jazz.toml:12: 'dynamics.psr_min_db': must be a number ...``).
:func:`build_profile` turns one or more parsed files (bases first) into a
:class:`Profile`. Finding files by name is the application's job
(``earmark.profiles``).
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from earmark.errors import PresetError

from .bands import NOMINAL_HZ
from .tonal import popular_music_curve

__all__ = [
    "Dynamics",
    "Harshness",
    "LoudnessTarget",
    "Profile",
    "ProfileData",
    "Resonance",
    "Tonal",
    "Transients",
    "TruePeak",
    "build_profile",
    "parse_profile",
]

KINDS = ("genre", "delivery", "generic", "learned")
_K_TOTAL_OVER_LUFS = 0.691  # BS.1770-4 eq. 2: LUFS = -0.691 + 10 log10(K-weighted power)
SEVERITIES = ("warning", "problem")
TONAL_MODELS = ("popular-music",)


# -- the profile ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoudnessTarget:
    """``loudness_target``: integrated loudness within ``tolerance_lu`` of ``target_lufs``."""

    target_lufs: float
    tolerance_lu: float = 1.0
    severity: str = "warning"
    platform: str | None = None
    min_programme_s: float = 10.0
    # A learned range (``profile build``): the references' taste, judged as loudness-
    # normalised playback hears it. Quieter than the range only counts when the true
    # peak leaves too little headroom for a platform to raise it into the range.
    normalised_playback: bool = False


@dataclass(frozen=True, slots=True)
class TruePeak:
    """``true_peak_over``: true peak above ``ceiling_dbtp`` (a problem above 0 dBTP)."""

    ceiling_dbtp: float = -1.0


@dataclass(frozen=True, slots=True)
class Dynamics:
    """``over_compression`` (PSR, sustained) and ``collapsed_dynamics`` (LRA, PLR, DR)."""

    psr_min_db: float | None = None
    psr_problem_db: float | None = None
    judge_above_lufs: float = -20.0
    sustain_s: float = 5.0
    lra_min_lu: float | None = None
    lra_problem_lu: float | None = None
    plr_min_db: float | None = None
    plr_problem_db: float | None = None
    dr_min: int | None = None
    min_programme_s: float = 20.0
    corroborate: bool = False


@dataclass(frozen=True, slots=True)
class Transients:
    """``crushed_transients``: onset peaks too close to the loudness, or lower than BEFORE's."""

    crest_min_db: float | None = None
    drop_db: float | None = 3.0
    drop_problem_db: float | None = 6.0
    sustain_s: float = 3.0


@dataclass(frozen=True, slots=True)
class Tonal:
    """Target 1/3-octave levels relative to the K-weighted total (see ``meters.tonal``)."""

    band_hz: tuple[float, ...]
    level_db: tuple[float, ...]  # NaN where the profile has no target
    spread_db: tuple[float, ...]
    description: str = ""

    def at(self, band_hz: Sequence[float]) -> tuple[list[float], list[float]]:
        """Target level and spread for the given nominal band centres (NaN where unknown)."""
        index = {round(f, 1): i for i, f in enumerate(self.band_hz)}
        levels, spreads = [], []
        for f in band_hz:
            i = index.get(round(float(f), 1))
            levels.append(math.nan if i is None else self.level_db[i])
            spreads.append(math.nan if i is None else self.spread_db[i])
        return levels, spreads


@dataclass(frozen=True, slots=True)
class Harshness:
    """``harsh_highs``: loudness-normalised 2-5 kHz / 5-10 kHz above the tonal target."""

    presence_excess_db: float | None = 3.0
    air_excess_db: float | None = 5.0
    sustain_s: float = 5.0
    body_deficit_db: float = 6.0
    rise_db: float = 3.0
    rise_problem_db: float | None = 6.0
    require_before: bool = False
    # Learned profiles: each reference's long-term 2-5 / 5-10 kHz level relative to its
    # body (250 Hz-1.6 kHz), so a verdict can rank a master among them.
    reference_presence_db: tuple[float, ...] = ()
    reference_air_db: tuple[float, ...] = ()
    # and its long-term DIN 45692 sharpness (acum), to rank a master's.
    reference_sharpness_acum: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class Resonance:
    """``resonance``: a narrow band standing out of its neighbourhood, persistently."""

    prominence_db: float = 6.0
    narrow_db: float = 3.0
    sustain_s: float = 10.0
    persistence: float = 0.8
    min_hz: float = 100.0
    max_hz: float = 10000.0


@dataclass(frozen=True, slots=True)
class Profile:
    """What a genre or a delivery expects; a missing section turns its checks off."""

    name: str
    description: str = ""
    kind: str = "generic"
    source: str | None = None  # the file it was read from (the last of an extends chain)
    loudness: LoudnessTarget | None = None
    true_peak: TruePeak | None = field(default_factory=TruePeak)
    dynamics: Dynamics | None = None
    transients: Transients | None = None
    tonal: Tonal | None = None
    harshness: Harshness | None = None
    resonance: Resonance | None = None

    @property
    def title(self) -> str:
        """How messages name it: ``jazz profile``."""
        return f"{self.name} profile"

    def dashboard_targets(self) -> dict[str, Any]:
        """What the dashboard draws: targets, floors, and the tonal band as
        ``[[hz, low_db, high_db], ...]`` relative to a stereo programme's integrated
        loudness (the K-weighted total reads 0.691 dB above it, BS.1770's offset)."""
        out: dict[str, Any] = {"name": self.name}
        if self.loudness is not None:
            out["target_lufs"] = self.loudness.target_lufs
            out["tolerance_lu"] = self.loudness.tolerance_lu
        if self.true_peak is not None:
            out["ceiling_dbtp"] = self.true_peak.ceiling_dbtp
        if self.dynamics is not None:
            out["psr_min_db"] = self.dynamics.psr_min_db
            out["plr_min_db"] = self.dynamics.plr_min_db
            out["lra_min_lu"] = self.dynamics.lra_min_lu
        if self.tonal is not None:
            out["tonal"] = [
                [f, level + _K_TOTAL_OVER_LUFS - spread, level + _K_TOTAL_OVER_LUFS + spread]
                for f, level, spread in zip(
                    self.tonal.band_hz, self.tonal.level_db, self.tonal.spread_db, strict=True
                )
                if math.isfinite(level)
            ]
        return out


# -- parsing ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProfileData:
    """One profile file, checked: top-level values, sections, and where each key was."""

    source: str | None
    top: dict[str, Any]
    sections: dict[str, dict[str, Any]]
    lines: dict[str, int]  # "section.key" (or "key" at top level) -> line

    @property
    def extends(self) -> tuple[str, ...]:
        value = self.top.get("extends", ())
        return (value,) if isinstance(value, str) else tuple(value)


# Checkers: (kind, low, high) with kind in float, int, bool, str, severity, model, floats.
_NUM = "float"
_SCHEMA: dict[str, dict[str, tuple[str, float | None, float | None]]] = {
    "": {
        "name": ("str", None, None),
        "description": ("str", None, None),
        "kind": ("kind", None, None),
        "extends": ("names", None, None),
        "version": ("int", 1, 1),
    },
    "loudness": {
        "target_lufs": (_NUM, -60.0, 0.0),
        "tolerance_lu": (_NUM, 0.1, 20.0),
        "severity": ("severity", None, None),
        "platform": ("str", None, None),
        "min_programme_s": (_NUM, 1.0, 3600.0),
        "normalised_playback": ("bool", None, None),
    },
    "true_peak": {"ceiling_dbtp": (_NUM, -30.0, 6.0)},
    "dynamics": {
        "psr_min_db": (_NUM, 0.0, 40.0),
        "psr_problem_db": (_NUM, 0.0, 40.0),
        "judge_above_lufs": (_NUM, -70.0, 0.0),
        "sustain_s": (_NUM, 0.5, 600.0),
        "lra_min_lu": (_NUM, 0.0, 40.0),
        "lra_problem_lu": (_NUM, 0.0, 40.0),
        "plr_min_db": (_NUM, 0.0, 40.0),
        "plr_problem_db": (_NUM, 0.0, 40.0),
        "dr_min": ("int", 1, 30),
        "min_programme_s": (_NUM, 3.0, 3600.0),
        "corroborate": ("bool", None, None),
    },
    "transients": {
        "crest_min_db": (_NUM, 0.0, 40.0),
        "drop_db": (_NUM, 0.1, 40.0),
        "drop_problem_db": (_NUM, 0.1, 40.0),
        "sustain_s": (_NUM, 0.5, 600.0),
    },
    "tonal": {
        "model": ("model", None, None),
        "lows_db": (_NUM, -24.0, 24.0),
        "mids_db": (_NUM, -24.0, 24.0),
        "highs_db": (_NUM, -24.0, 24.0),
        "spread_db": ("floats_or_float", 0.1, 30.0),
        "band_hz": ("floats", 10.0, 40000.0),
        "level_db": ("floats", -120.0, 20.0),
        "description": ("str", None, None),
    },
    "harshness": {
        "presence_excess_db": (_NUM, 0.1, 40.0),
        "air_excess_db": (_NUM, 0.1, 40.0),
        "sustain_s": (_NUM, 0.5, 600.0),
        "body_deficit_db": (_NUM, 0.0, 60.0),
        "rise_db": (_NUM, 0.1, 40.0),
        "rise_problem_db": (_NUM, 0.1, 40.0),
        "require_before": ("bool", None, None),
        "reference_presence_db": ("floats", -120.0, 60.0),
        "reference_air_db": ("floats", -120.0, 60.0),
        "reference_sharpness_acum": ("floats", 0.0, 20.0),
    },
    "resonance": {
        "prominence_db": (_NUM, 1.0, 60.0),
        "narrow_db": (_NUM, 0.0, 60.0),
        "sustain_s": (_NUM, 2.0, 3600.0),
        "persistence": (_NUM, 0.1, 1.0),
        "min_hz": (_NUM, 20.0, 20000.0),
        "max_hz": (_NUM, 20.0, 20000.0),
    },
}
# Thresholds that may be `false` (turned off).
_OPTIONAL = {
    "dynamics": {
        "psr_min_db",
        "psr_problem_db",
        "lra_min_lu",
        "lra_problem_lu",
        "plr_min_db",
        "plr_problem_db",
        "dr_min",
    },
    "transients": {"crest_min_db", "drop_db", "drop_problem_db"},
    "harshness": {"presence_excess_db", "air_excess_db", "rise_problem_db"},
}


def parse_profile(text: str, source: str | None = None) -> ProfileData:
    """Check one profile file's text; ``source`` names it in errors.

    Raises:
        PresetError: invalid TOML, an unknown section or key, a value of the
            wrong type or outside its range; the message names file, line and key.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        line = int(found.group(1)) if found else None
        if line is None and "end of document" in str(exc):
            line = max(1, len(text.splitlines()))
        raise PresetError(f"invalid TOML: {exc}", source, line) from None
    lines = _key_lines(text)
    top: dict[str, Any] = {}
    sections: dict[str, dict[str, Any]] = {}

    def fail(key: str, cause: str) -> PresetError:
        return PresetError(cause, source, lines.get(key), key)

    for key, value in data.items():
        if isinstance(value, dict):
            if key not in _SCHEMA or key == "":
                raise fail(key, f"unknown section{_did_you_mean(key, list(_SCHEMA)[1:])}")
            sections[key] = {}
            for sub, item in value.items():
                dotted = f"{key}.{sub}"
                if sub not in _SCHEMA[key]:
                    raise fail(dotted, f"unknown key{_did_you_mean(sub, list(_SCHEMA[key]))}")
                sections[key][sub] = _check(key, sub, item, fail)
        else:
            if key not in _SCHEMA[""]:
                known = list(_SCHEMA[""]) + [f"[{s}]" for s in list(_SCHEMA)[1:]]
                raise fail(key, f"unknown key{_did_you_mean(key, known)}")
            top[key] = _check("", key, value, fail)
    tonal = sections.get("tonal", {})
    if ("band_hz" in tonal) != ("level_db" in tonal):
        raise fail("tonal", "a learned curve needs both 'band_hz' and 'level_db'")
    if "band_hz" in tonal:
        if "model" in tonal:
            raise fail("tonal.model", "give either 'model' or 'band_hz'/'level_db', not both")
        if len(tonal["band_hz"]) != len(tonal["level_db"]):
            raise fail("tonal.level_db", f"needs {len(tonal['band_hz'])} values, one per band_hz")
        spread = tonal.get("spread_db")
        if isinstance(spread, tuple) and len(spread) != len(tonal["band_hz"]):
            raise fail("tonal.spread_db", f"needs {len(tonal['band_hz'])} values or one number")
    elif isinstance(tonal.get("spread_db"), tuple):
        raise fail("tonal.spread_db", "a list needs 'band_hz'; with a model give one number")
    return ProfileData(source=source, top=top, sections=sections, lines=lines)


def build_profile(chain: Sequence[ProfileData], name: str | None = None) -> Profile:
    """Merge parsed files (bases first, the profile itself last) into a :class:`Profile`.

    Raises:
        PresetError: values that contradict each other after merging (a problem
            threshold less strict than its warning threshold, an empty range).
    """
    if not chain:
        raise ValueError("build_profile needs at least one parsed profile")
    own = chain[-1]
    top: dict[str, Any] = {}
    merged: dict[str, dict[str, Any]] = {}
    for data in chain:
        top.update({k: v for k, v in data.top.items() if k != "extends"})
        for section, values in data.sections.items():
            merged.setdefault(section, {}).update(values)
    src = own.source

    def fail(key: str, cause: str) -> PresetError:
        for data in reversed(chain):
            if key in data.lines:
                return PresetError(cause, data.source, data.lines[key], key)
        return PresetError(cause, src, None, key)

    def val(section: str, key: str, default: Any) -> Any:
        value = merged.get(section, {}).get(key, default)
        return None if value is False and key in _OPTIONAL.get(section, ()) else value

    def pair(section: str, warn: str, problem: str, higher_is_better: bool = True) -> None:
        w, p = val(section, warn, None), val(section, problem, None)
        if w is None or p is None:
            return
        if (p > w) if higher_is_better else (p < w):
            word = "at most" if higher_is_better else "at least"
            raise fail(f"{section}.{problem}", f"must be {word} {warn} ({w:g}), got {p:g}")

    loudness = None
    if "loudness" in merged:
        if "target_lufs" not in merged["loudness"]:
            raise fail("loudness", "needs 'target_lufs'")
        # A platform names the target it set: a later file that moves the target without
        # naming a platform has its own target, and messages must not call it the platform's.
        set_by = {
            key: max((i for i, d in enumerate(chain) if key in d.sections.get("loudness", {})),
                     default=-1)
            for key in ("target_lufs", "platform")
        }  # fmt: skip
        platform = val("loudness", "platform", None)
        if set_by["platform"] < set_by["target_lufs"]:
            platform = None
        loudness = LoudnessTarget(
            target_lufs=val("loudness", "target_lufs", None),
            tolerance_lu=val("loudness", "tolerance_lu", 1.0),
            severity=val("loudness", "severity", "warning"),
            platform=platform,
            min_programme_s=val("loudness", "min_programme_s", 10.0),
            normalised_playback=val("loudness", "normalised_playback", False),
        )
    true_peak = None
    if "true_peak" in merged:
        true_peak = TruePeak(ceiling_dbtp=val("true_peak", "ceiling_dbtp", -1.0))
    dynamics = None
    if "dynamics" in merged:
        pair("dynamics", "psr_min_db", "psr_problem_db")
        pair("dynamics", "lra_min_lu", "lra_problem_lu")
        pair("dynamics", "plr_min_db", "plr_problem_db")
        d = Dynamics()
        dynamics = Dynamics(**{k: val("dynamics", k, getattr(d, k)) for k in _SCHEMA["dynamics"]})
    transients = None
    if "transients" in merged:
        pair("transients", "drop_db", "drop_problem_db", higher_is_better=False)
        t = Transients()
        transients = Transients(
            **{k: val("transients", k, getattr(t, k)) for k in _SCHEMA["transients"]}
        )
    tonal = None
    if "tonal" in merged:
        tonal = _tonal(merged["tonal"])
    harshness = None
    if "harshness" in merged:
        if tonal is None:
            raise fail("harshness", "needs a [tonal] target to compare the highs with")
        pair("harshness", "rise_db", "rise_problem_db", higher_is_better=False)
        h = Harshness()
        harshness = Harshness(
            **{k: val("harshness", k, getattr(h, k)) for k in _SCHEMA["harshness"]}
        )
    resonance = None
    if "resonance" in merged:
        r = Resonance()
        resonance = Resonance(
            **{k: val("resonance", k, getattr(r, k)) for k in _SCHEMA["resonance"]}
        )
        if resonance.min_hz >= resonance.max_hz:
            raise fail("resonance.max_hz", f"must be above min_hz ({resonance.min_hz:g})")
    default_name = _stem(src) if src else "profile"
    return Profile(
        # The profile in force is the last file: an extending profile is not its base.
        name=name or own.top.get("name", default_name),
        description=top.get("description", ""),
        kind=top.get("kind", "generic"),
        source=src,
        loudness=loudness,
        true_peak=true_peak,
        dynamics=dynamics,
        transients=transients,
        tonal=tonal,
        harshness=harshness,
        resonance=resonance,
    )


def _tonal(values: Mapping[str, Any]) -> Tonal:
    spread = values.get("spread_db", 3.0)
    if "band_hz" in values:
        bands = tuple(float(f) for f in values["band_hz"])
        levels = tuple(float(v) for v in values["level_db"])
        description = values.get("description", "learned from trusted masters")
    else:
        bands = tuple(float(f) for f in NOMINAL_HZ)
        curve = popular_music_curve(
            bands,
            lows_db=values.get("lows_db", 0.0),
            mids_db=values.get("mids_db", 0.0),
            highs_db=values.get("highs_db", 0.0),
        )
        levels = tuple(float(v) for v in curve)
        description = values.get(
            "description", "average popular-music spectrum (Elowsson & Friberg 2017)"
        )
    spreads = spread if isinstance(spread, tuple) else (float(spread),) * len(bands)
    return Tonal(bands, levels, tuple(float(s) for s in spreads), description)


def _check(section: str, key: str, value: Any, fail: Any) -> Any:
    kind, low, high = _SCHEMA[section][key]
    dotted = f"{section}.{key}" if section else key
    if value is False and key in _OPTIONAL.get(section, ()):
        return False
    if kind in (_NUM, "int"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            off = " or false to turn the check off" if key in _OPTIONAL.get(section, ()) else ""
            raise fail(dotted, f"must be a number{off}, got {_show(value)}")
        if kind == "int" and not float(value).is_integer():
            raise fail(dotted, f"must be a whole number, got {_show(value)}")
        if not math.isfinite(value) or (low is not None and not low <= value <= high):
            raise fail(dotted, f"must be between {low:g} and {high:g}, got {_show(value)}")
        return int(value) if kind == "int" else float(value)
    if kind == "bool":
        if not isinstance(value, bool):
            raise fail(dotted, f"must be true or false, got {_show(value)}")
        return value
    if kind == "str":
        if not isinstance(value, str):
            raise fail(dotted, f"must be a string, got {_show(value)}")
        return value
    if kind in ("kind", "severity", "model"):
        options = {"kind": KINDS, "severity": SEVERITIES, "model": TONAL_MODELS}[kind]
        if value not in options:
            raise fail(
                dotted, f"must be one of {', '.join(map(repr, options))}, got {_show(value)}"
            )
        return value
    if kind == "names":
        names = [value] if isinstance(value, str) else value
        if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
            raise fail(dotted, f"must be a profile name or a list of names, got {_show(value)}")
        return tuple(names)
    # Lists of numbers (or, for spread, one number).
    if kind == "floats_or_float" and isinstance(value, int | float) and not isinstance(value, bool):
        if not low <= value <= high:
            raise fail(dotted, f"must be between {low:g} and {high:g}, got {_show(value)}")
        return float(value)
    if not isinstance(value, list) or not value:
        raise fail(dotted, f"must be a list of numbers, got {_show(value)}")
    out = []
    for i, item in enumerate(value, start=1):
        if isinstance(item, bool) or not isinstance(item, int | float):
            raise fail(dotted, f"item {i} must be a number, got {_show(item)}")
        if not low <= item <= high:
            raise fail(dotted, f"item {i} must be between {low:g} and {high:g}, got {item:g}")
        out.append(float(item))
    return tuple(out)


def _key_lines(text: str) -> dict[str, int]:
    """Where each ``[section]`` and ``key =`` sits, as "section.key" -> line number."""
    out: dict[str, int] = {}
    section = ""
    open_quote: str | None = None
    key_re = re.compile(r"""^\s*(?:"([^"]*)"|'([^']*)'|([A-Za-z0-9_-]+))\s*=""")
    table_re = re.compile(r"^\s*\[\s*([^\]\[]+?)\s*\]")
    for number, line in enumerate(text.splitlines(), start=1):
        if open_quote is not None:
            if line.count(open_quote) % 2 == 1:
                open_quote = None
            continue
        table = table_re.match(line)
        if table:
            section = table.group(1).strip().strip("\"'")
            out.setdefault(section, number)
            continue
        key = key_re.match(line)
        if key:
            name = next(g for g in key.groups() if g is not None)
            out.setdefault(f"{section}.{name}" if section else name, number)
            rest = line[key.end() :]
            for quote in ('"""', "'''"):
                if rest.count(quote) % 2 == 1:
                    open_quote = quote
                    break
    return out


def _did_you_mean(word: str, options: Sequence[str]) -> str:
    import difflib

    close = difflib.get_close_matches(word, options, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return str(value)


def _stem(source: str) -> str:
    base = re.split(r"[\\/]", source)[-1]
    return base[: -len(".toml")] if base.endswith(".toml") else base
