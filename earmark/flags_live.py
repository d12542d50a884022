"""Live flags: one Detector per path, fed each path's new 10 Hz history rows.

:class:`FlagService` is a session service (``LiveSession.add_service``): on every
tick (10 Hz, on the session thread, never the audio thread) it reads only the rows
each path's MeterBank completed since the last tick (``MeterBank.history(since=)``)
and feeds them to that path's :class:`~earmark.meters.detectors.Detector` — the
same code ``earmark analyze`` runs on a file, so the same audio gives the same flags.
``session.flags`` then holds every flag of every path as DESIGN.md's dicts plus
``path`` (the path's index) and ``open`` (the problem is still going on).

A path may be compared with a BEFORE path (``befores={1: 0}``: the chain's output
against the dry input, which the engine delays by the chain's latency so that
their rows line up): its crushed-transient and harsh-highs flags then use the
BEFORE version as evidence, as ``earmark diff`` does.

Programme flags (``loudness_target``, ``collapsed_dynamics``) are provisional while
the session runs and final when it stops. Resetting a path's meters starts its
detector afresh.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

from earmark.meters.detectors import Detector, Flag
from earmark.meters.profile import Profile

__all__ = ["FlagService"]


class FlagService:
    """Keep ``session.flags`` current from every path's meters (see the module docstring).

    Args:
        profile: a Profile, a name or file, or None for the session's profile
            (``session.profile``), else the default profile.
        befores: path index -> index of the path holding its BEFORE version.
    """

    tick_hz = 10.0

    def __init__(
        self,
        profile: Profile | str | os.PathLike[str] | None = None,
        befores: Mapping[int, int] | None = None,
    ) -> None:
        self._profile_arg = profile
        self.befores = dict(befores or {})
        self.profile: Profile | None = None
        self.detectors: list[Detector] = []
        self._rows_seen: list[int] = []

    # -- service ------------------------------------------------------------------------

    def start(self, session: Any) -> None:
        """Resolve the profile (and publish it as ``session.profile``), one Detector per path."""
        from earmark.profiles import resolve_profile

        arg = self._profile_arg if self._profile_arg is not None else session.profile
        self.profile = resolve_profile(arg)
        session.profile = self.profile
        n = len(session.engine.paths)
        self.detectors = [self._detector(session, i) for i in range(n)]
        self._rows_seen = [0] * n
        for path, before in self.befores.items():
            if not (0 <= path < n and 0 <= before < n and path != before):
                raise ValueError(f"befores: no paths {path} and {before} among {n}")

    def tick(self, session: Any, state: Any) -> None:
        """Feed the rows completed since the last tick; refresh ``session.flags``."""
        changed = False
        for i, path in enumerate(session.engine.paths):
            bank = path.bank
            total = bank.history_rows
            det = self.detectors[i]
            if total < self._rows_seen[i]:  # meters reset: a new programme
                det = self.detectors[i] = self._detector(session, i)
                changed = True
            self._rows_seen[i] = total
            before = self.befores.get(i)
            if before is not None:
                before_bank = session.engine.paths[before].bank
                if before_bank.history_rows >= det.next_before_row:
                    det.add_before(before_bank.history(since=det.next_before_row))
            if total > det.next_row:
                changed |= bool(det.update(bank.history(since=det.next_row)))
                # Let the audio callback's thread take the GIL between paths: a tick is
                # a few hundred microseconds of Python per path.
                time.sleep(0)
        if changed:
            session.flags = self._session_flags(final=False)

    def stop(self, session: Any) -> None:
        """The programme ended: final flags (programme measures judged on the whole)."""
        for det in self.detectors:
            det.finish()
        session.flags = self._session_flags(final=True)

    # -- helpers ---------------------------------------------------------------------------

    def _detector(self, session: Any, i: int) -> Detector:
        bank = session.engine.paths[i].bank
        assert self.profile is not None
        return Detector(self.profile, bank.sample_rate, bank.channels)

    def _session_flags(self, final: bool) -> list[dict]:
        out: list[dict] = []
        for i, det in enumerate(self.detectors):
            open_now = set() if final else {_key(f) for f in det.open_flags()}
            for flag in det.flags():
                out.append({**flag.to_dict(), "path": i, "open": _key(flag) in open_now})
        out.sort(key=lambda f: (f["start_s"], f["path"]))
        return out


def _key(flag: Flag) -> tuple:
    return (flag.code, flag.start_s, flag.band_hz)
