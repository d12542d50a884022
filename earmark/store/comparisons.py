"""`earmark compare` verdicts in the database, so `history` can show how the engineer's
masters (B) move against the automatic ones (A) over time: the "good enough" drift."""

from __future__ import annotations

import os
import sqlite3
import time
from typing import Any

from earmark.store.schema import connect, dumps

__all__ = ["comparisons", "store_comparison"]

_COLUMNS = (
    "loudness_diff_lu",
    "brighter_db",
    "fuller_db",
    "psr_diff_db",
    "plr_diff_db",
    "wider_pct",
)


def store_comparison(path: str | os.PathLike[str], doc: dict[str, Any], mix: str) -> int:
    """Store one comparison (``Comparison.to_dict()`` without the two whole diffs) and
    return its id."""
    conn = connect(path)
    try:
        conn.execute("BEGIN IMMEDIATE")
        cur = conn.execute(
            "INSERT INTO comparisons (time, mix, a, b, verdict, data, "
            + ", ".join(_COLUMNS)
            + ") VALUES (?, ?, ?, ?, ?, ?, "
            + ", ".join("?" * len(_COLUMNS))
            + ")",
            (time.time(), mix, doc.get("a"), doc.get("b"), doc.get("verdict"),
             dumps({k: v for k, v in doc.items() if k not in ("a_diff", "b_diff")}),
             *(doc.get(c) for c in _COLUMNS)),
        )  # fmt: skip
        conn.execute("COMMIT")
        return int(cur.lastrowid)
    finally:
        conn.close()


def comparisons(
    conn: sqlite3.Connection, since: float | None = None, until: float | None = None
) -> list[dict]:
    """Every stored comparison, oldest first (A minus B in each number)."""
    cur = conn.execute(
        "SELECT id, time, mix, a, b, verdict, " + ", ".join(_COLUMNS) + " FROM comparisons "
        "WHERE time >= ? AND time < ? ORDER BY time, id",
        (since if since is not None else -1e300, until if until is not None else 1e300),
    )
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
