"""Flags as text for people: the analyze readout and the live terminal view.

Flags arrive as dicts (``Flag.to_dict()``, optionally with a ``path`` key from a
live session). Problems come first, then warnings, each in order of start. A flag
that groups several occurrences (``occurrences``, see ``earmark.meters.detectors``)
reads as one summary line, ``clipping at 7 places between 23.0 and 59.2 s, worst
+3.96 dBFS at 55.0 s. The worst: ...``, and :func:`flag_lines` lists its
occurrences on the line below.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from earmark.meters.flags import band_text, hz_text

__all__ = [
    "flag_bullet",
    "flag_lines",
    "flag_sentence",
    "flag_span",
    "occurrence_list",
    "occurrences",
    "short_flag",
    "sorted_flags",
]

_LISTED = 12  # occurrences listed under a flag before "and N more"


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


def occurrences(flag: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The flag's occurrences (empty for a flag stored before flags were grouped)."""
    occ = flag.get("occurrences")
    return [o for o in occ if isinstance(o, Mapping)] if isinstance(occ, list | tuple) else []


def _grouped(flag: Mapping[str, Any]) -> bool:
    return len(occurrences(flag)) > 1


def flag_sentence(flag: Mapping[str, Any]) -> str:
    """The flag in words, code first: ``clipping at 7 places between ... The worst: ...``
    for a group (its message says where), ``over_compression  61.2-74.9 s: PSR ...``
    for a single occurrence."""
    code = flag.get("code", "?")
    if _grouped(flag):
        return f"{code} {flag.get('message', '')}"
    return f"{code}  {flag_span(flag)}: {flag.get('message', '')}"


def occurrence_list(flag: Mapping[str, Any], limit: int = _LISTED) -> str:
    """A group's occurrences, times and values: ``places: 23.0 s +1.20 dBFS, 29.0 s
    +0.50 dBFS, ...`` (``passages: 12.0-20.3 s 4.1 dB, ...`` for sustained problems);
    empty for a single occurrence."""
    from earmark.meters.flags import value_text

    occ = occurrences(flag)
    if len(occ) < 2:
        return ""
    unit = flag.get("unit")
    points = all(o.get("at_s") is not None for o in occ)
    items = []
    for o in occ[:limit]:
        if points:
            where = f"{float(o['at_s']):.1f} s"
        else:
            where = f"{float(o.get('start_s') or 0.0):.1f}-{float(o.get('end_s') or 0.0):.1f} s"
        items.append(f"{where} {value_text(o.get('value'), unit)}")
    more = f" and {len(occ) - limit} more" if len(occ) > limit else ""
    return f"{'places' if points else 'passages'}: {', '.join(items)}{more}"


def flag_lines(flags: Iterable[Mapping[str, Any]]) -> list[str]:
    """One line per flag: severity, code, where, and the explanation; a group's
    occurrences on an indented line below it."""
    out = []
    for f in sorted_flags(flags):
        severity = str(f.get("severity", "warning")).upper()
        out.append(f"{severity:<7}  {flag_sentence(f)}")
        listed = occurrence_list(f)
        if listed:
            out.append(f"{'':<7}    {listed}")
    return out


def flag_bullet(flag: Mapping[str, Any]) -> str:
    """One line for a report's list: ``problem: clipping at 7 places ... (places: 23.0 s
    +1.20 dBFS, ...)``; the occurrences in brackets when the flag groups several."""
    listed = occurrence_list(flag)
    tail = f" ({listed})" if listed else ""
    return f"{flag.get('severity', 'warning')}: {flag_sentence(flag)}{tail}"


def short_flag(flag: Mapping[str, Any]) -> str:
    """A compact form for a live view: ``! over_compression 8.8 dB (from 61.2 s)``, or
    ``!! true_peak_over 7 times, worst +2.6 dBTP (from 23.0 s)`` for a group."""
    mark = "!!" if flag.get("severity") == "problem" else "!"
    value, unit = flag.get("value"), flag.get("unit")
    measured = ""
    if value is not None and unit not in (None, "samples"):
        measured = f" {value:+.1f} {unit}" if unit in ("dBTP", "dBFS") else f" {value:.1f} {unit}"
    band = flag.get("band_hz")
    if isinstance(band, int | float):
        measured += f" at {hz_text(band)}"
    elif isinstance(band, list | tuple) and len(band) == 2:
        measured += f" in {band_text(*band)}"
    n = len(occurrences(flag))
    if n > 1:
        measured = f" {n} times, worst{measured}"
    return f"{mark} {flag.get('code', '?')}{measured} ({flag_span(flag)})"
