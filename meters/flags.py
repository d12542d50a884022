"""Flags as data: :class:`Flag` and :class:`Occurrence`, the codes, a flag's identity,
how occurrences group into flags, and how a flag's numbers read as text.

The one home of these concepts: the detectors (:mod:`earmark.meters.detectors`)
raise flags, the shell stores, compares and reports them, the dashboard draws them;
all of them name a flag, group it and write its frequencies through this module.

Grouping: one flag per code (and band) and *episode*. Each time a detector's
condition starts and ends is an *occurrence* (:class:`Occurrence`: an over
grouped with the overs less than 3 s after it, a passage of over-compression
from its onset to its release); occurrences of one code and band whose gap is
under :data:`EPISODE_GAP_S` belong to one flag, which lists them all
(``Flag.occurrences``), spans them, and takes its severity, value, threshold and
unit from the worst. With one occurrence the flag's message is that occurrence's
sentence; with several it is a summary ("at 7 places between 23.0 and 59.2 s,
worst +3.96 dBFS at 55.0 s") followed by the worst occurrence's sentence. The
worst is a problem before a warning, then the occurrence furthest past its
threshold (clipping: the highest sample peak, then the most clipped samples). A
flag holds at most :data:`MAX_OCCURRENCES`. A flag that is still gathering
occurrences keeps its start and band (a session log keys flags by them), so live
it grows in place.

Identity: :func:`problem_key` says two flags are the same problem (code and band:
in two versions of a programme, or two snapshots, times may move);
:func:`session_key` names one flag within a live session (path, code, band and
onset), so a flag that grows, closes and gathers occurrences keeps its row.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CODES",
    "EPISODE_GAP_S",
    "MAX_OCCURRENCES",
    "SEVERITIES",
    "Flag",
    "Occurrence",
    "OccurrenceRecord",
    "band_key",
    "band_text",
    "episodes",
    "group_flag",
    "hz_text",
    "problem_key",
    "session_key",
    "value_text",
]

CODES = (
    "over_compression",
    "collapsed_dynamics",
    "crushed_transients",
    "harsh_highs",
    "resonance",
    "true_peak_over",
    "clipping",
    "loudness_target",
    "album_inconsistent",
    "codec_clipping",
)
SEVERITIES = ("warning", "problem")

# Episodes (inference): occurrences of one code and band less than 30 s apart are one
# flag. 30 s is about one section of a song (8 to 16 bars at 90-130 bpm last 15-43 s),
# so a problem that keeps coming back through a chorus is one flag an engineer
# revisits as one passage, while the same problem in a later section, after a
# section without it, is a flag of its own. Live, a flag can still grow for 30 s
# after its last occurrence ended.
EPISODE_GAP_S = 30.0
# A flag lists at most this many occurrences; the next one starts a new flag. It
# bounds what a live session rewrites each time a long-running flag grows (the
# session log stores the whole flag); 100 overs 3 s apart are already 5 minutes.
MAX_OCCURRENCES = 100


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One time a detector's condition held: where, what it measured, and its sentence.

    ``value`` is in the flag's ``unit``. ``at_s`` is the start of the 100 ms block
    where the value was measured, for point-like problems (overs, clips); None for a
    passage, whose value is over its whole span.
    """

    start_s: float
    end_s: float
    value: float | None
    severity: str
    message: str
    at_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The occurrence as a JSON-ready dict."""
        return {
            "start_s": round(self.start_s, 3),
            "end_s": round(self.end_s, 3),
            "value": None if self.value is None else round(float(self.value), 2),
            "severity": self.severity,
            "at_s": None if self.at_s is None else round(self.at_s, 3),
            "message": self.message,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Occurrence:
        """The inverse of :meth:`to_dict`."""
        at = data.get("at_s")
        return cls(
            start_s=float(data["start_s"]),
            end_s=float(data["end_s"]),
            value=data.get("value"),
            severity=str(data.get("severity", "warning")),
            message=str(data.get("message", "")),
            at_s=None if at is None else float(at),
        )


@dataclass(frozen=True, slots=True)
class Flag:
    """One explained problem (DESIGN.md "Detectors and profiles").

    ``band_hz`` is a frequency for a resonance, a ``(low, high)`` range for
    harsh highs, else None. ``value`` is what was measured (the worst or the
    typical value over the flag, as the message says), ``threshold`` what the
    profile expects, both in ``unit``. ``occurrences`` are the times the problem
    happened in this episode (see the module docstring), in order; the flag's
    severity, value and threshold are those of the worst of them.
    """

    code: str
    severity: str  # "warning" | "problem"
    start_s: float
    end_s: float
    value: float | None
    threshold: float | None
    unit: str | None
    band_hz: float | tuple[float, float] | None
    message: str
    occurrences: tuple[Occurrence, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The flag as a JSON-ready dict (DESIGN.md's keys, in order, then ``occurrences``
        when the flag has them, as every detector's flag does)."""
        band = list(self.band_hz) if isinstance(self.band_hz, tuple) else self.band_hz
        out = {
            "code": self.code,
            "severity": self.severity,
            "start_s": round(self.start_s, 3),
            "end_s": round(self.end_s, 3),
            "value": None if self.value is None else round(float(self.value), 2),
            "threshold": None if self.threshold is None else round(float(self.threshold), 2),
            "unit": self.unit,
            "band_hz": band,
            "message": self.message,
        }
        if self.occurrences:
            out["occurrences"] = [o.to_dict() for o in self.occurrences]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Flag:
        """The inverse of :meth:`to_dict` (extra keys such as ``path`` are ignored)."""
        band = data.get("band_hz")
        return cls(
            code=str(data["code"]),
            severity=str(data["severity"]),
            start_s=float(data["start_s"]),
            end_s=float(data["end_s"]),
            value=data.get("value"),
            threshold=data.get("threshold"),
            unit=data.get("unit"),
            band_hz=tuple(band) if isinstance(band, list | tuple) else band,
            message=str(data.get("message", "")),
            occurrences=tuple(Occurrence.from_dict(o) for o in data.get("occurrences") or ()),
        )


class OccurrenceRecord:
    """One occurrence while it is being built (mutable). The detectors set its
    fields; :func:`episodes` groups records and :func:`group_flag` makes each group a flag.

    ``at_s`` (the block of the worst value, for point-like problems), ``rank`` (a
    tuple, larger is worse, default: how far the value is past the threshold) and
    ``worst_text`` (how the value reads in a summary, default :func:`value_text`)
    are optional.
    """

    __slots__ = (
        "at_s",
        "band_hz",
        "code",
        "end_s",
        "message",
        "open",
        "rank",
        "seq",
        "severity",
        "start_s",
        "threshold",
        "unit",
        "value",
        "worst_text",
    )  # fmt: skip

    def __init__(self, code: str, seq: int, start_s: float, unit: str | None) -> None:
        self.code = code
        self.seq = seq
        self.severity = "warning"
        self.start_s = max(0.0, start_s)
        self.end_s = self.start_s
        self.value: float | None = None
        self.threshold: float | None = None
        self.unit = unit
        self.band_hz: float | tuple[float, float] | None = None
        self.message = ""
        self.open = True
        self.at_s: float | None = None
        self.rank: tuple[float, ...] | None = None
        self.worst_text: str | None = None

    def occurrence(self) -> Occurrence:
        """The occurrence as it stands (times rounded to the millisecond)."""
        return Occurrence(
            round(self.start_s, 3),
            round(max(self.end_s, self.start_s), 3),
            None if self.value is None else float(self.value),
            self.severity,
            self.message,
            None if self.at_s is None else round(self.at_s, 3),
        )

    def badness(self) -> tuple[bool, tuple[float, ...]]:
        """Sort key of the worst occurrence: problems first, then ``rank``."""
        if self.rank is not None:
            rank = self.rank
        elif self.value is not None and self.threshold is not None:
            past = abs(float(self.value) - float(self.threshold))
            rank = (past if math.isfinite(past) else 0.0,)  # a NaN must not win or lose
        else:
            rank = (0.0,)
        return self.severity == "problem", rank


def band_key(band: float | tuple[float, float] | list[float] | None) -> Any:
    """Which flags or occurrences are the same band: a range by its ends (a JSON list
    as the tuple it was), a frequency by its 1/3-octave band (a resonance's estimate
    moves a little between occurrences, and between versions of a programme)."""
    if isinstance(band, int | float):
        return round(3.0 * math.log2(max(float(band), 1e-3) / 1000.0))
    if isinstance(band, list | tuple):
        return tuple(float(b) for b in band)
    return band


def group_flag(group: list[OccurrenceRecord]) -> Flag:
    """The flag of one episode: its occurrences, spanned, named by the worst."""
    first = group[0]
    occurrences = tuple(rec.occurrence() for rec in group)
    worst = max(group, key=lambda rec: rec.badness())  # the first of equals
    start = occurrences[0].start_s
    end = max(o.end_s for o in occurrences)
    message = worst.message
    if len(group) > 1:
        text = worst.worst_text or value_text(worst.value, worst.unit)
        where = (
            f"at {worst.at_s:.1f} s"
            if worst.at_s is not None
            else f"in {worst.start_s:.1f}-{max(worst.end_s, worst.start_s):.1f} s"
        )
        places = "at {} places" if all(r.at_s is not None for r in group) else "in {} passages"
        message = (
            f"{places.format(len(group))} between {start:.1f} and {end:.1f} s, worst "
            f"{text} {where}. The worst: {worst.message}"
        )
    return Flag(
        first.code,
        worst.severity,
        start,
        end,
        None if worst.value is None else float(worst.value),
        None if worst.threshold is None else float(worst.threshold),
        worst.unit,
        first.band_hz,
        message,
        occurrences,
    )


def value_text(value: float | None, unit: str | None) -> str:
    """A flag's or an occurrence's value as a summary writes it: ``+3.96 dBFS``,
    ``412 samples``, ``4.1 dB``."""
    if value is None:
        return "-"
    v = float(value)
    if unit in ("dBTP", "dBFS"):
        return f"{v:+.2f} {unit}"
    if unit == "samples":
        return f"{int(round(v))} samples"
    return f"{v:.1f} {unit}" if unit else f"{v:.1f}"


def episodes(records: Iterable[OccurrenceRecord]) -> list[list[OccurrenceRecord]]:
    """``records`` (in order of creation) grouped into episodes (module docstring), in
    order of start.

    Occurrences of one code and band arrive in order, so a group only ever gains
    occurrences at its end: its first occurrence, and so its start and band, stay
    what they were when it opened.
    """
    last: dict[tuple[str, Any], list[OccurrenceRecord]] = {}
    groups: list[list[OccurrenceRecord]] = []
    for rec in records:
        key = (rec.code, band_key(rec.band_hz))
        group = last.get(key)
        if (
            group is None
            or len(group) >= MAX_OCCURRENCES
            or rec.start_s - max(o.end_s for o in group) >= EPISODE_GAP_S
        ):
            group = last[key] = []
            groups.append(group)
        group.append(rec)
    groups.sort(key=lambda g: (g[0].start_s, g[0].seq))
    return groups


# -- identity -----------------------------------------------------------------------------


def problem_key(flag: Flag | Mapping[str, Any]) -> tuple[str, Any]:
    """Which flags are the same problem: code and band (:func:`band_key`), whatever
    their times (in two versions of a programme, or two snapshots, times move).
    ``flag`` is a :class:`Flag` or its dict (``band_hz`` a list there)."""
    if isinstance(flag, Flag):
        return flag.code, band_key(flag.band_hz)
    return str(flag.get("code")), band_key(flag.get("band_hz"))


def session_key(flag: Mapping[str, Any]) -> str:
    """A flag's identity within a live session: ``"path:code:band:start"`` of its dict
    (:meth:`Flag.to_dict` plus the session's ``path``). A flag keeps them while it grows,
    closes and gathers occurrences (it starts at its first occurrence), so a session log
    updates its row in place. The text is a stored key: it must not change."""
    start = flag.get("start_s")
    start_text = "" if start is None else f"{float(start):.3f}"
    return f"{flag.get('path', '')}:{flag.get('code', '')}:{flag.get('band_hz') or ''}:{start_text}"


# -- numbers as text ------------------------------------------------------------------------


def hz_text(hz: float) -> str:
    """A frequency as a sentence writes it, two or three significant figures:
    ``310 Hz``, ``4.0 kHz``, ``4.2 kHz``, ``12 kHz``."""
    hz = float(hz)
    if hz < 1000.0:
        return f"{hz:.0f} Hz"
    khz = hz / 1000.0
    return f"{khz:.1f} kHz" if khz < 10.0 else f"{khz:.0f} kHz"


def hz_short(hz: float) -> str:
    """A frequency as an axis tick or a column name writes it: ``250``, ``1k``, ``12.5k``."""
    return f"{hz / 1000:g}k" if hz >= 1000 else f"{hz:g}"


def band_text(lo_hz: float, hi_hz: float) -> str:
    """A frequency range: ``2-5 kHz``, ``100-200 Hz``, ``250 Hz-1.6 kHz`` (the unit
    written once when both ends share it)."""

    def number(hz: float) -> str:
        return f"{hz / 1000:g}" if hz >= 1000 else f"{round(hz):g}"

    lo_hz, hi_hz = float(lo_hz), float(hi_hz)
    if lo_hz >= 1000:
        return f"{number(lo_hz)}-{number(hi_hz)} kHz"
    if hi_hz < 1000:
        return f"{number(lo_hz)}-{number(hi_hz)} Hz"
    return f"{number(lo_hz)} Hz-{number(hi_hz)} kHz"
