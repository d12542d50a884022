"""Words for values: OK / WATCH / PROBLEM against the profile's targets (or sourced defaults).

The dashboard never shows a state by colour alone; these functions give the
word, the colour follows from it. Without a profile the defaults are the
streaming delivery targets and the dynamics floors in docs/reference.md: -14 LUFS
integrated (Spotify, YouTube, TIDAL), -1 dBTP ceiling, PSR >= 8 dB
(Dynameter's "Limited" floor), PLR >= 8 dB (below is "generally detrimental",
Robjohns). A profile overrides each of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["OK", "PROBLEM", "WATCH", "Targets", "flag_word", "judge"]

OK = "OK"
WATCH = "WATCH"
PROBLEM = "PROBLEM"
NONE = ""


@dataclass(frozen=True)
class Targets:
    """What the values are judged against."""

    name: str = ""
    target_lufs: float = -14.0
    tolerance_lu: float = 1.0
    ceiling_dbtp: float = -1.0
    psr_min_db: float = 8.0
    plr_min_db: float = 8.0
    # No genre, no LRA expectation (docs/reference.md "Loudness range by genre").
    lra_min_lu: float | None = None
    tonal: tuple[tuple[float, float, float], ...] = ()  # (hz, low_db, high_db) vs integrated
    harsh: tuple[tuple[float, float, float], ...] = ((2000.0, 5000.0, 0.0), (5000.0, 10000.0, 0.0))
    from_profile: bool = False

    @classmethod
    def from_info(cls, profile: Mapping[str, Any] | None) -> Targets:
        """Targets from the state frame's ``profile`` entry (None: the defaults)."""
        if not profile:
            return cls()
        base = cls()
        kw: dict[str, Any] = {"from_profile": True, "name": str(profile.get("name") or "")}
        for key in (
            "target_lufs",
            "tolerance_lu",
            "ceiling_dbtp",
            "psr_min_db",
            "plr_min_db",
            "lra_min_lu",
        ):
            value = profile.get(key)
            kw[key] = float(value) if isinstance(value, int | float) else getattr(base, key)
        tonal = profile.get("tonal") or ()
        kw["tonal"] = tuple((float(r[0]), float(r[1]), float(r[2])) for r in tonal if _triple(r))
        harsh = profile.get("harsh")
        if harsh:
            kw["harsh"] = tuple(
                (float(r[0]), float(r[1]), float(r[2])) for r in harsh if _triple(r)
            )
        return cls(**kw)


def _triple(row: Any) -> bool:
    return (
        isinstance(row, list | tuple)
        and len(row) >= 3
        and all(isinstance(v, int | float) for v in row[:3])
    )


def judge(kind: str, value: float | None, t: Targets) -> str:
    """The word for ``value`` of ``kind`` ("integrated", "true_peak", "psr", "plr", "lra")."""
    if value is None:
        return NONE
    if kind == "integrated":
        off = abs(value - t.target_lufs)
        return OK if off <= t.tolerance_lu else (WATCH if off <= 2 * t.tolerance_lu else PROBLEM)
    if kind == "true_peak":
        if value > t.ceiling_dbtp:
            return PROBLEM
        return WATCH if value > t.ceiling_dbtp - 0.5 else OK
    if kind in ("psr", "plr"):
        floor = t.psr_min_db if kind == "psr" else t.plr_min_db
        if value < floor:
            return PROBLEM
        return WATCH if value < floor + 2.0 else OK
    if kind == "lra":
        if t.lra_min_lu is None:
            return NONE
        if value < t.lra_min_lu - 1.0:
            return PROBLEM
        return WATCH if value < t.lra_min_lu else OK
    raise ValueError(f"unknown value kind {kind!r}")


def flag_word(severity: str | None) -> str:
    """A flag's severity in the dashboard's words ("warning" reads WATCH)."""
    return PROBLEM if severity == "problem" else WATCH
