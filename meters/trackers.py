"""How a detector's condition becomes occurrences, row by row (10 Hz history rows):
:class:`Sustained` for a condition that must hold for a while (over-compression, harsh
highs), :class:`Events` for sparse events grouped while they keep coming (overs, clips).
Each holds the :class:`~earmark.meters.flags.OccurrenceRecord` it has open."""

from __future__ import annotations

import math
from typing import Any

from .flags import OccurrenceRecord

__all__ = ["EVENT_GAP_ROWS", "RELEASE_ROWS", "Events", "Sustained"]

EVENT_GAP_ROWS = 30  # overs/clips closer than 3 s are one occurrence
RELEASE_ROWS = 10  # a sustained condition must be gone for 1 s to close its flag


class Sustained:
    """A condition that must hold for ``need`` rows in a row to open a flag and be
    absent for ``release`` rows to close it (its end is the last row it held).

    ``values`` and ``extras`` collect what each row where it held brought, from the
    first row of the run that opened the flag.
    """

    def __init__(self, need: int, release: int = RELEASE_ROWS) -> None:
        self.need = max(1, need)
        self.release = max(1, release)
        self.run: list[tuple[float, float, Any]] = []  # (t, value, extra) of the current run
        self.absent = 0
        self.record: OccurrenceRecord | None = None
        self.values: list[float] = []
        self.extras: list[Any] = []
        self.problem_run = 0
        self.problem_rows = 0

    def step(self, cond: bool, t: float, value: float, extra: Any = None) -> str | None:
        """Feed one row; returns "open", "extend", "close" or None."""
        if cond:
            self.absent = 0
            if self.record is not None:
                self.values.append(value)
                self.extras.append(extra)
                return "extend"
            self.run.append((t, value, extra))
            if len(self.run) >= self.need:
                self.values = [v for _, v, _ in self.run]
                self.extras = [e for _, _, e in self.run]
                return "open"
            return None
        self.run.clear()
        self.problem_run = 0
        if self.record is not None:
            self.absent += 1
            if self.absent >= self.release:
                return "close"
        return None


class Events:
    """Sparse events (overs, clips) grouped into one occurrence until ``gap`` rows pass
    without one; ``worst`` and ``worst_t`` are its worst value and that block's start."""

    def __init__(self, gap: int = EVENT_GAP_ROWS) -> None:
        self.gap = gap
        self.record: OccurrenceRecord | None = None
        self.last_row = -(10**9)
        self.rows = 0
        self.worst = -math.inf
        self.worst_t = 0.0
        self.worst_clipped = 0
        self.total = 0.0

    def event(self, row: int) -> bool:
        """An event on ``row``; True when it starts a new occurrence."""
        new = self.record is None
        if new:
            self.rows = 0
            self.worst = -math.inf
            self.worst_clipped = 0
            self.total = 0.0
        self.last_row = row
        self.rows += 1
        return new

    def quiet(self, row: int) -> bool:
        """No event on ``row``; True when the open occurrence closes now."""
        return self.record is not None and row - self.last_row >= self.gap
