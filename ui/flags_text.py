"""Flags as text for people: the analyze readout and the live terminal view.

Flags arrive as dicts (``Flag.to_dict()``, optionally with a ``path`` key from a
live session). Problems come first, then warnings, each in order of start.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["flag_lines", "flag_span", "short_flag", "sorted_flags"]


def sorted_flags(flags: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Problems first, then warnings; each in order of start."""
    return sorted(
        flags,
        key=lambda f: (f.get("severity") != "problem", f.get("start_s") or 0.0, f.get("code", "")),
    )


def flag_span(flag: Mapping[str, Any]) -> str:
    """Where: ``61.2-74.9 s``, or ``from 61.2 s`` for a flag still open."""
    start, end = flag.get("start_s"), flag.get("end_s")
    if start is None:
        return ""
    if flag.get("open"):
        return f"from {start:.1f} s"
    return f"{start:.1f}-{end:.1f} s" if end is not None else f"{start:.1f} s"


def flag_lines(flags: Iterable[Mapping[str, Any]]) -> list[str]:
    """One line per flag: severity, code, where, and the explanation."""
    out = []
    for f in sorted_flags(flags):
        severity = str(f.get("severity", "warning")).upper()
        out.append(f"{severity:<7}  {f.get('code', '?')}  {flag_span(f)}: {f.get('message', '')}")
    return out


def short_flag(flag: Mapping[str, Any]) -> str:
    """A compact form for a live view: ``! over_compression 8.8 dB (from 61.2 s)``."""
    mark = "!!" if flag.get("severity") == "problem" else "!"
    value, unit = flag.get("value"), flag.get("unit")
    measured = ""
    if value is not None and unit not in (None, "samples"):
        measured = f" {value:.1f} {unit}"
    band = flag.get("band_hz")
    if isinstance(band, int | float):
        measured += f" at {band / 1000:.2g} kHz" if band >= 1000 else f" at {band:.0f} Hz"
    elif isinstance(band, list | tuple) and len(band) == 2:
        measured += f" in {band[0] / 1000:g}-{band[1] / 1000:g} kHz"
    return f"{mark} {flag.get('code', '?')}{measured} ({flag_span(flag)})"
