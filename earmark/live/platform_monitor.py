"""The platform monitor: A and B played the way a streaming platform would play them.

Instead of earmark's own loudness match (the louder of A and B turned down to the
quieter), each of A and B gets the gain the chosen platform's playback would give it
(:func:`earmark.offline.platforms.playback`, from the path's measured integrated
loudness, true peak and PLR), so what is heard is what a listener of that platform
hears: a master louder than the target turned down, a quiet one turned up as far as
the platform's rule allows (Spotify: until 1 dB of true-peak headroom is left;
YouTube, TIDAL: never).

It is a session service (:class:`PlatformMonitor`, 10 Hz on the session thread); the
audio callback only receives the two gains through the engine's ``gains`` command and
applies them with the match's own per-sample smoothing. The gains follow the meters
as the integrated loudness settles, moved at most ``SLEW_DB_PER_S`` per second, so a
changing estimate (the first seconds, a new passage) never makes the gain jump.

A platform with a limiter (Spotify's "loud" setting) raises a quiet master to its
target and limits the peaks; no limiter runs live (the callback runs no new DSP, and
a limiter in a child process would add its delay to A and B). So the gain applied is
held where the true peak meets the platform's ceiling: the path plays quieter than on
the platform by ``held_back_db``, which the views say ("limiter not applied: played
2.3 dB quieter; the limiter would hold peaks above -1.0 dBTP").

The session command ``platform_monitor`` switches it: a platform name (``spotify``,
``youtube`` ...), ``next`` (the next platform, then off: the P key and the dashboard's
button) or ``off`` / None (back to the loudness match). It returns the name, or None.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from earmark.offline.platforms import PLATFORM_NAMES, PlatformOutcome, PlatformRule, playback, rule

__all__ = ["SLEW_DB_PER_S", "PathPlayback", "PlatformMonitor", "platform_rule"]

# How fast a platform gain may move (inference: slow enough that a settling loudness
# estimate is heard as a fade, not a step; fast enough to settle within seconds).
SLEW_DB_PER_S = 6.0


@dataclass(frozen=True, slots=True)
class PathPlayback:
    """What the platform does to one of A and B now, and the gain applied for it."""

    path: int
    side: str  # "A" or "B"
    outcome: PlatformOutcome
    applied_db: float  # the gain the engine is moving towards this moment (slewed)
    held_back_db: float  # how much quieter than on the platform (its limiter not applied)

    def to_json_dict(self) -> dict[str, Any]:
        """A snapshot's ``platform_monitor.paths`` entry: the outcome's keys, the gain applied."""
        return {
            "path": self.path,
            "side": self.side,
            **self.outcome.to_json_dict(),
            "applied_db": round(self.applied_db, 2) + 0.0,
            "held_back_db": round(self.held_back_db, 2) + 0.0,
        }


def platform_rule(name: str | None) -> PlatformRule | None:
    """The rule ``--platform-monitor`` / the command names; None for off. ValueError: unknown."""
    if name is None or str(name).strip().lower() in ("", "off", "none"):
        return None
    return rule(str(name).strip().lower())


class PlatformMonitor:
    """The platform monitor service (see the module docstring).

    Args:
        name: the platform to start with (``--platform-monitor``), or None (off).
        slew_db_per_s: how fast an applied gain may move.
    """

    tick_hz = 10.0

    def __init__(self, name: str | None = None, *, slew_db_per_s: float = SLEW_DB_PER_S) -> None:
        self.rule: PlatformRule | None = platform_rule(name)
        self.slew_db_per_s = float(slew_db_per_s)
        self.paths: tuple[PathPlayback, ...] = ()  # A's, then B's (when B is another path)
        self._applied: dict[str, float] | None = None
        self._pair: tuple[int, int] | None = None
        self._last_tick: float | None = None
        self._posted: tuple[float, float] | None = None  # the gains the engine has

    # -- what the views read -----------------------------------------------------------------

    @property
    def name(self) -> str | None:
        """The platform's name, or None when off."""
        return None if self.rule is None else self.rule.name

    def of_path(self, index: int) -> PathPlayback | None:
        """The playback of path ``index`` when it is A or B (None otherwise, or when off)."""
        for p in self.paths:
            if p.path == index:
                return p
        return None

    def note(self) -> str:
        """One line for the views: the platform and, if its limiter is left out, by how much."""
        if self.rule is None:
            return "platform monitor off"
        r = self.rule
        text = f"playing as {r.label} ({r.target_lufs:g} LUFS)"
        held = [p for p in self.paths if p.held_back_db > 0.05]
        if held:
            worst = max(held, key=lambda p: p.held_back_db)
            text += (
                f"; limiter not applied: {worst.side} plays {worst.held_back_db:.1f} dB quieter "
                f"than on {r.label}; the limiter would hold peaks above {r.ceiling_dbtp:g} dBTP"
            )
        return text

    def to_json_dict(self) -> dict[str, Any] | None:
        """A snapshot's ``platform_monitor`` (None when off)."""
        if self.rule is None:
            return None
        return {
            "name": self.rule.name,
            "label": self.rule.label,
            "note": self.note(),
            "paths": [p.to_json_dict() for p in self.paths],
        }

    # -- service protocol -----------------------------------------------------------------

    def start(self, session: Any) -> None:
        """Register the ``platform_monitor`` command; become the session's ``platform_monitor``."""
        session.platform_monitor = self
        session.handle("platform_monitor", self.switch)
        if self.rule is not None:
            session.note("platform", self.note())

    def tick(self, session: Any, state: Any) -> None:
        """Follow A's and B's loudness: the platform's gains, slewed, posted to the engine."""
        now = time.monotonic()
        # The first tick moves as far as one period's (the session ticks at tick_hz).
        dt = 1.0 / self.tick_hz if self._last_tick is None else now - self._last_tick
        self._last_tick = now
        r = self.rule
        if r is None or state is None:
            return
        pair = (int(state.a), int(state.b))
        if self._applied is None or pair != self._pair:
            # Start from the gains playing now: switching the mode or the pair fades.
            self._applied = {"A": _finite(state.match_a_db), "B": _finite(state.match_b_db)}
            self._pair = pair
        step = self.slew_db_per_s * dt
        paths = []
        for side, index in (("A", pair[0]), ("B", pair[1])):
            if side == "B" and index == pair[0]:
                self._applied["B"] = self._applied["A"]
                continue
            readings = state.paths[index].readings
            tp = readings.true_peak_dbtp
            outcome = playback(r, readings.integrated_lufs, tp, readings.plr_db)
            target, held = _target(outcome, tp)
            if target is not None:  # no loudness yet (start, a meter reset): hold the gain
                now_db = self._applied[side]
                self._applied[side] = now_db + max(-step, min(step, target - now_db))
            paths.append(PathPlayback(index, side, outcome, self._applied[side], held))
        self.paths = tuple(paths)
        gains = (self._applied["A"], self._applied["B"])
        # Only a change is sent: a settled monitor leaves the engine alone.
        changed = self._posted is None or any(
            abs(g - p) > 1e-3 for g, p in zip(gains, self._posted, strict=True)
        )
        if changed and session.post("gains", *gains):
            self._posted = gains

    def stop(self, session: Any) -> None:
        """Nothing to release (the engine stops with the session)."""

    # -- the command ----------------------------------------------------------------------

    def switch(self, session: Any, name: object = "next", *_: object) -> str | None:
        """The ``platform_monitor`` command: a platform's name, ``next``, or off."""
        if isinstance(name, str) and name.strip().lower() == "next":
            order = (None, *PLATFORM_NAMES)
            at = order.index(self.name) if self.name in order else 0
            name = order[(at + 1) % len(order)]
        new = platform_rule(None if name is None else str(name))  # ValueError: unknown
        self.rule = new
        self.paths = ()
        self._applied = None  # the next tick starts from the gains playing now
        self._posted = None
        if new is None:
            session.post("gains", None)  # the loudness match again (its smoothing fades)
        session.note("platform", self.note())
        return self.name


def _target(o: PlatformOutcome, true_peak_dbtp: float | None) -> tuple[float | None, float]:
    """(the gain to apply, how much of the platform's gain is held back for want of its
    limiter). A platform's limiter is not run live: its gain stops where the master's true
    peak meets the platform's ceiling."""
    if o.gain_db is None:
        return None, 0.0
    gain = o.gain_db
    if o.limited and true_peak_dbtp is not None:
        gain = min(o.gain_db, o.rule.ceiling_dbtp - true_peak_dbtp)
    return gain, max(0.0, o.gain_db - gain)


def _finite(db: float) -> float:
    return db if math.isfinite(db) else 0.0
