"""Reading the store: sessions, snapshots, logs, markers and flags (``Store``)."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from earmark.store.schema import KEY_COLUMNS, LOG_COLUMNS, StoreError, connect, describe_error


class Store:
    """The database for reading (any thread that created it; any number of processes).

    Opening migrates an older schema forward. ``create=False`` raises
    :class:`StoreError` when there is no database yet instead of creating one.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, create: bool = True) -> None:
        if path is None:
            from earmark.config import store_file

            path = store_file()
        self.path = Path(path)
        if not create and not self.path.exists():
            raise StoreError(f"{self.path}: no snapshots or session logs yet (no database)")
        self.conn = connect(self.path)
        self.conn.row_factory = sqlite3.Row

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        try:
            return self.conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {describe_error(exc)}") from exc

    # sessions

    def sessions(
        self, name: str | None = None, since: float | None = None, until: float | None = None
    ) -> list[dict]:
        """Sessions, oldest first, with their snapshot count (filters: name, start time)."""
        where, params = _filters(("s.name", name), ("s.started", since, until))
        rows = self._query(
            "SELECT s.*, (SELECT COUNT(*) FROM snapshots WHERE session_id = s.id) AS snapshots "
            f"FROM sessions s {where} ORDER BY s.started, s.id",
            params,
        )
        return [dict(r) for r in rows]

    # snapshots

    def snapshots(
        self,
        session: str | None = None,
        label: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> list[dict]:
        """Snapshot summaries, oldest first: id, time, session, label, note and the A path's
        key readings (``label`` matches a part of the label, case-insensitively)."""
        where, params = _filters(("s.name", session), ("n.time", since, until))
        if label is not None:
            where += (" AND " if where else "WHERE ") + "n.label LIKE ? ESCAPE '\\'"
            params.append("%" + _like_escape(label) + "%")
        cols = ", ".join(f"p.{c}" for c in KEY_COLUMNS)
        rows = self._query(
            "SELECT n.id, n.time, n.label, n.note, n.session_id, s.name AS session, "
            f"p.path, p.name AS path_name, p.role, {cols}, "
            "json_array_length(n.data, '$.flags') AS flag_count "
            "FROM snapshots n LEFT JOIN sessions s ON s.id = n.session_id "
            "LEFT JOIN snapshot_paths p ON p.snapshot_id = n.id AND p.path = "
            "json_extract(n.data, '$.source.a') "
            f"{where} ORDER BY n.time, n.id",
            params,
        )
        return [dict(r) for r in rows]

    def snapshot(self, snapshot_id: int) -> dict:
        """The whole snapshot document (``id`` and ``session`` as stored)."""
        rows = self._query(
            "SELECT n.id, n.time, n.label, n.note, n.data, s.name AS session "
            "FROM snapshots n LEFT JOIN sessions s ON s.id = n.session_id WHERE n.id = ?",
            (int(snapshot_id),),
        )
        if not rows:
            raise StoreError(f"{self.path}: no snapshot {snapshot_id}")
        row = rows[0]
        doc = json.loads(row["data"])
        doc.update(id=row["id"], time=row["time"], label=row["label"], note=row["note"])
        if row["session"] is not None:
            doc["session"] = row["session"]
        return doc

    def clip(self, snapshot_id: int) -> tuple[str, bytes] | None:
        """The snapshot's audio clip as (format, bytes), or None."""
        rows = self._query(
            "SELECT format, data FROM snapshot_clips WHERE snapshot_id = ?", (int(snapshot_id),)
        )
        return (rows[0]["format"], bytes(rows[0]["data"])) if rows else None

    def snapshot_paths(self, snapshot_ids: Iterable[int]) -> dict[int, list[dict]]:
        """The key readings of every path of the given snapshots."""
        ids = [int(i) for i in snapshot_ids]
        out: dict[int, list[dict]] = {i: [] for i in ids}
        for chunk in range(0, len(ids), 500):
            part = ids[chunk : chunk + 500]
            rows = self._query(
                f"SELECT * FROM snapshot_paths WHERE snapshot_id IN ({','.join('?' * len(part))}) "
                "ORDER BY snapshot_id, path",
                part,
            )
            for r in rows:
                out[r["snapshot_id"]].append(dict(r))
        return out

    # session logs

    def log(self, session_id: int, path: int | None = None) -> list[dict]:
        """A session's meter log, in time order (one path, or all)."""
        where = "WHERE session_id = ?" + ("" if path is None else " AND path = ?")
        params: list[Any] = [int(session_id)] + ([] if path is None else [int(path)])
        cols = ", ".join(LOG_COLUMNS)
        rows = self._query(
            f"SELECT {cols} FROM session_log {where} ORDER BY time, path, rowid", params
        )
        return [dict(r) for r in rows]

    def markers(self, session_id: int) -> list[dict]:
        """A session's markers, in time order."""
        rows = self._query(
            "SELECT id, time, t_s, label FROM markers WHERE session_id = ? ORDER BY time, id",
            (int(session_id),),
        )
        return [dict(r) for r in rows]

    def flags(self, session_id: int) -> list[dict]:
        """A session's flags as last written (dicts as DESIGN.md, with path and time)."""
        rows = self._query(
            "SELECT data FROM flags WHERE session_id = ? ORDER BY start_s, id", (int(session_id),)
        )
        return [json.loads(r["data"]) for r in rows]


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _filters(*specs: tuple) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    for spec in specs:
        column = spec[0]
        if len(spec) == 2:
            if spec[1] is not None:
                clauses.append(f"{column} = ?")
                params.append(spec[1])
        else:
            low, high = spec[1], spec[2]
            if low is not None:
                clauses.append(f"{column} >= ?")
                params.append(float(low))
            if high is not None:
                clauses.append(f"{column} < ?")
                params.append(float(high))
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", params
