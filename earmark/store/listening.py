"""Blind listening tests in the database: each answer committed as it is given.

A test is one row (mode, change, material, and once finished its score, p-value and
threshold); each trial one row committed before the next trial is played, so a test
killed at any moment (kill -9 included) keeps every answer it had. ``earmark history``
reads the thresholds over time (:func:`thresholds`).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator
from typing import Any

from earmark.store.schema import connect

__all__ = ["ListeningLog", "tests", "thresholds", "trials"]


class ListeningLog:
    """Writes one listening test (any thread that created it)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        mode: str,
        change: str,
        unit: str | None,
        material: str,
        adaptive: bool,
    ) -> None:
        self.conn = connect(path)
        with self._transaction():
            cur = self.conn.execute(
                "INSERT INTO listening_tests (time, mode, change, unit, material, adaptive) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (time.time(), mode, change, unit, material, int(adaptive)),
            )
        self.test_id = int(cur.lastrowid)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def trial(self, trial: Any, correct_so_far: int, p_value: float) -> None:
        """Commit one answered trial (an :class:`earmark.live.listen.Trial`) and the running
        score, durably (synchronous=FULL), before the next trial plays."""
        with self._transaction():
            self.conn.execute(
                "INSERT INTO listening_trials (test_id, n, time, amount, truth, answer, correct, "
                "response_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    self.test_id,
                    trial.n,
                    trial.time,
                    trial.amount,
                    trial.truth,
                    trial.answer,
                    int(trial.correct),
                    trial.response_s,
                ),
            )
            self.conn.execute(
                "UPDATE listening_tests SET trials = ?, correct = ?, p_value = ? WHERE id = ?",
                (trial.n, correct_so_far, p_value, self.test_id),
            )

    def finish(self, threshold: float | None, relation: str = "=") -> None:
        """Mark the test finished, with the staircase's threshold (None: not adaptive, or
        too few reversals) and its relation ("=" found, "<=" an upper bound, ">" a lower
        bound: see earmark.live.listen.Staircase.threshold)."""
        with self._transaction():
            self.conn.execute(
                "UPDATE listening_tests SET threshold = ?, threshold_relation = ?, finished = ? "
                "WHERE id = ?",
                (threshold, relation if threshold is not None else None, time.time(), self.test_id),
            )

    def close(self) -> None:
        self.conn.close()


def _rows(conn: sqlite3.Connection, sql: str, params: tuple = ()) -> list[dict]:
    cur = conn.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def tests(
    conn: sqlite3.Connection, since: float | None = None, until: float | None = None
) -> list[dict]:
    """Every listening test (oldest first), finished or not, with its score."""
    return _rows(
        conn,
        "SELECT * FROM listening_tests WHERE time >= ? AND time < ? ORDER BY time, id",
        (since if since is not None else -1e300, until if until is not None else 1e300),
    )


def trials(conn: sqlite3.Connection, test_id: int) -> list[dict]:
    """A test's trials in the order they were answered."""
    return _rows(conn, "SELECT * FROM listening_trials WHERE test_id = ? ORDER BY n", (test_id,))


def thresholds(
    conn: sqlite3.Connection, since: float | None = None, until: float | None = None
) -> list[dict]:
    """The adaptive tests that found a threshold, oldest first: the engineer's detection
    threshold per kind of change over time."""
    return [t for t in tests(conn, since, until) if t["adaptive"] and t["threshold"] is not None]
