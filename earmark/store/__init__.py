"""Snapshots and session logs in SQLite: nothing recorded is ever lost.

One database file (``config.store_file()``, ``$EARMARK_HOME/earmark.sqlite`` in
tests) holds:

``sessions``
    one row per streaming run (``earmark run`` / ``earmark demo``): its name
    (``--session``), kind, start and end, sample rate and block size.
``snapshots``
    a whole snapshot as one JSON document (``earmark.store.snapshots`` builds it:
    every reading of every path, the last 30 s of curves, flags, chains,
    profile, audio settings) plus its time, label and note.
``snapshot_paths``
    the key readings of every path of every snapshot as columns, for queries
    and trends (integrated, short-term, LRA, true peak, PSR, PLR, crest, DR ...).
``snapshot_clips``
    an optional FLAC clip of the last seconds (off by default).
``session_log``
    the meters at about 10 Hz per path while a session streams, one compact row
    each, so a whole session can be replayed as curves.
``markers``, ``flags``
    every marker and every flag of a session (a flag's row is updated as it
    grows, gathers occurrences and closes; ``data`` holds its ``occurrences``).

Durability. The database runs in WAL mode with ``synchronous=FULL``: every
commit syncs the write-ahead log to the disk before it returns, so a snapshot
whose id was handed out survives a killed process *and* a power cut or kernel
crash. ``NORMAL`` would survive only the first: in WAL mode it skips the sync
at commit and can lose the last transactions when the machine itself stops.
The price is one fsync per commit; snapshots are rare and log rows are
committed in batches (about one transaction a second), so it is small.

Writing. :class:`StoreWriter` owns the only writing connection, on its own
thread, never the audio thread. :meth:`StoreWriter.take_snapshot` returns the
id only after the row is committed (the acknowledgement). When the database
cannot be written (disk full, read-only folder, another program holding a
lock), everything waits in memory in order, the error is reported once, and
the writer retries until it can; snapshots are never dropped. What is still
unwritten when the writer stops is saved to a rescue file, which the next
writer imports.

Trust. The database's folder, the rescue folder beside it and the fallback
rescue folder in the temporary folder (``earmark-rescue-UID/HASH``) are
private folders (:mod:`earmark.private`): created 0700, and refused unless
they are real folders of the user's that nobody else can write. A rescue file
is imported only if it is a regular file of the user's; anything else (a file
or folder planted by another user, a link) is refused with one status line
and never imported.

Reading. :class:`Store` reads (and migrates) the database; any number of
processes may read while one writes (WAL).

Schema versions. ``PRAGMA user_version`` holds the schema version; the
:data:`MIGRATIONS` table lists every step from an empty file to the current
schema, each applied once, in order, inside one transaction and recorded in
the ``schema_migrations`` table. A database from an older earmark is migrated
forward when it is opened; one from a newer earmark is refused with a clear
message rather than misread.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import sqlite3
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from earmark.errors import EarmarkError
from earmark.meters.flags import session_key
from earmark.private import (
    FolderError,
    MissingFolderError,
    PrivateFolder,
    open_private,
    write_problem,
)

__all__ = [
    "KEY_COLUMNS",
    "LOG_COLUMNS",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Migration",
    "SnapshotPendingError",
    "Store",
    "StoreError",
    "StoreWriter",
    "connect",
    "describe_error",
]

BUSY_TIMEOUT_MS = 2000
# Session log rows waiting in memory while the database cannot be written: at 10 Hz
# and a few paths this is hours. Past it the oldest rows go (and that is reported);
# snapshots, markers and flags are never dropped.
MAX_PENDING_LOG_ROWS = 500_000

# The key readings of each path, as columns of snapshot_paths (name, unit in the name).
KEY_COLUMNS: tuple[str, ...] = (
    "integrated_lufs",
    "short_term_lufs",
    "momentary_lufs",
    "loudness_range_lu",
    "true_peak_dbtp",
    "sample_peak_dbfs",
    "psr_db",
    "psr_min_db",
    "psr_median_db",
    "plr_db",
    "crest_db",
    "dr",
    "spectral_tilt_db_per_oct",
    "harshness_db",
    "correlation_programme",
)

# A session log row: the meters of one path at one moment.
LOG_COLUMNS: tuple[str, ...] = (
    "time",  # wall clock, seconds since the epoch
    "t_s",  # the session's transport position, seconds
    "path",  # path index
    "momentary_lufs",
    "short_term_lufs",
    "integrated_lufs",
    "true_peak_dbtp",  # the highest true peak since the previous row
    "psr_db",
    "loudness_range_lu",
    "plr_db",
    "correlation",
)


class StoreError(EarmarkError):
    """The database cannot be opened, read or written. ``str()`` is one line naming the file;
    ``cause`` is the reason alone ("the disk is full")."""

    def __init__(self, message: str, cause: str | None = None) -> None:
        super().__init__(message)
        self.cause = cause or message


class SnapshotPendingError(StoreError):
    """A snapshot was not stored yet; it is kept in memory and written when possible.

    Not an acknowledgement: no id exists until the row is committed.
    """


# -- schema -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Migration:
    """One forward step of the schema: SQL, then an optional Python backfill."""

    version: int
    description: str
    sql: str
    backfill: Callable[[sqlite3.Connection], None] | None = None


_V1 = """
CREATE TABLE sessions (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT,
    started REAL NOT NULL,
    ended REAL,
    sample_rate INTEGER,
    block_size INTEGER,
    meta TEXT
);
CREATE INDEX sessions_name ON sessions(name, started);
CREATE TABLE snapshots (
    id INTEGER PRIMARY KEY,
    session_id INTEGER REFERENCES sessions(id),
    time REAL NOT NULL,
    label TEXT,
    note TEXT,
    data TEXT NOT NULL
);
CREATE INDEX snapshots_time ON snapshots(time);
CREATE INDEX snapshots_session ON snapshots(session_id, time);
CREATE TABLE session_log (
    session_id INTEGER NOT NULL REFERENCES sessions(id),
    time REAL NOT NULL,
    t_s REAL,
    path INTEGER NOT NULL,
    momentary_lufs REAL,
    short_term_lufs REAL,
    integrated_lufs REAL,
    true_peak_dbtp REAL,
    psr_db REAL
);
CREATE INDEX session_log_session ON session_log(session_id, path, time);
CREATE TABLE markers (
    id INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES sessions(id),
    time REAL NOT NULL,
    t_s REAL,
    label TEXT
);
CREATE TABLE flags (
    id INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES sessions(id),
    time REAL NOT NULL,
    path INTEGER,
    code TEXT NOT NULL,
    severity TEXT,
    start_s REAL,
    end_s REAL,
    message TEXT,
    data TEXT
);
"""

_V2 = (
    """
CREATE TABLE snapshot_paths (
    snapshot_id INTEGER NOT NULL REFERENCES snapshots(id) ON DELETE CASCADE,
    path INTEGER NOT NULL,
    name TEXT,
    role TEXT,
"""
    + "".join(f"    {c} REAL,\n" for c in KEY_COLUMNS)
    + """    PRIMARY KEY (snapshot_id, path)
) WITHOUT ROWID;
CREATE TABLE snapshot_clips (
    snapshot_id INTEGER PRIMARY KEY REFERENCES snapshots(id) ON DELETE CASCADE,
    format TEXT NOT NULL,
    sample_rate INTEGER,
    seconds REAL,
    data BLOB NOT NULL
);
ALTER TABLE snapshots ADD COLUMN sample_rate INTEGER;
ALTER TABLE snapshots ADD COLUMN block_size INTEGER;
ALTER TABLE session_log ADD COLUMN loudness_range_lu REAL;
ALTER TABLE session_log ADD COLUMN plr_db REAL;
ALTER TABLE session_log ADD COLUMN correlation REAL;
ALTER TABLE flags ADD COLUMN flag_key TEXT;
CREATE UNIQUE INDEX flags_key ON flags(session_id, flag_key);
CREATE INDEX markers_session ON markers(session_id, time);
"""
)


def _backfill_v2(conn: sqlite3.Connection) -> None:
    """Key columns and audio settings of snapshots stored before v2; keys of old flags."""
    rows = conn.execute("SELECT id, data FROM snapshots").fetchall()
    for snapshot_id, data in rows:
        doc = json.loads(data)
        audio = doc.get("audio") or {}
        conn.execute(
            "UPDATE snapshots SET sample_rate = ?, block_size = ? WHERE id = ?",
            (audio.get("sample_rate"), audio.get("block_size"), snapshot_id),
        )
        _insert_key_rows(conn, snapshot_id, doc)
    for flag_id, data in conn.execute("SELECT id, data FROM flags").fetchall():
        flag = json.loads(data) if data else {}
        conn.execute("UPDATE flags SET flag_key = ? WHERE id = ?", (session_key(flag), flag_id))


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "sessions, snapshots as JSON documents, session log, markers, flags", _V1),
    Migration(
        2,
        "per-path key readings as columns; audio clips; LRA, PLR and correlation in the log; "
        "flags updated in place",
        _V2,
        _backfill_v2,
    ),
)
SCHEMA_VERSION = MIGRATIONS[-1].version

_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied REAL NOT NULL
)
"""


def connect(path: str | os.PathLike[str], *, migrate_to: int | None = None) -> sqlite3.Connection:
    """Open (creating if needed) the database at ``path``, configured and migrated.

    ``migrate_to`` stops at an older schema version (tests build old databases
    with it). Raises :class:`StoreError` with a clear cause on failure.
    """
    path = Path(path)
    _check_folder(path)
    conn = None
    try:
        # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE ... COMMIT), so
        # a write never upgrades a read lock halfway (the source of most "database is
        # locked" surprises in WAL mode).
        conn = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
        )
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"{path}: cannot switch to WAL mode (the file system gave {mode})")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        _migrate(conn, path, SCHEMA_VERSION if migrate_to is None else migrate_to)
        return conn
    except sqlite3.Error as exc:
        if conn is not None:
            conn.close()
        cause = _folder_cause(path) or describe_error(exc)
        raise StoreError(f"{path}: {cause}", cause) from exc
    except StoreError:
        if conn is not None:
            conn.close()
        raise


def _migrate(conn: sqlite3.Connection, path: Path, target: int) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path}: schema version {version} is newer than this earmark understands "
            f"({SCHEMA_VERSION}); upgrade earmark to read it"
        )
    if version >= target:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Another process may have migrated while we waited for the write lock.
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        conn.execute(_MIGRATIONS_TABLE)
        for step in MIGRATIONS:
            if version < step.version <= target:
                for statement in _statements(step.sql):
                    conn.execute(statement)
                if step.backfill is not None:
                    step.backfill(conn)
                conn.execute(
                    "INSERT INTO schema_migrations (version, description, applied) VALUES (?,?,?)",
                    (step.version, step.description, time.time()),
                )
                conn.execute(f"PRAGMA user_version = {step.version}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _check_folder(path: Path) -> None:
    """Create the database's folder (0700) or check that the existing one is the user's
    and that nobody else can write into it: a database or journal planted there would
    be read as ours. A link the user made to a folder elsewhere is followed."""
    try:
        # tighten=False: a data folder the user chose to make readable stays so.
        open_private(path.parent, tighten=False, own_symlink=True).close()
    except FolderError as exc:
        cause = f"its folder {exc}"
        raise StoreError(f"{path}: {cause}", cause) from None


def _folder_cause(path: Path) -> str | None:
    """Why the database's folder cannot take writes, when that is the cause."""
    return write_problem(path.parent)


def _statements(sql: str) -> list[str]:
    return [s.strip() for s in sql.split(";") if s.strip()]


def describe_error(exc: BaseException) -> str:
    """A plain cause for a SQLite or OS error (what an engineer can act on)."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    text = " ".join(str(exc).split())
    if name.startswith("SQLITE_FULL") or "disk is full" in text:
        return "the disk is full"
    if name.startswith("SQLITE_READONLY") or "readonly" in text or "read-only" in text:
        return "the database or its folder is read-only"
    if name.startswith("SQLITE_CANTOPEN") or "unable to open" in text:
        return "cannot open the database file (its folder is missing, read-only or full)"
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in text:
        return "the database is locked by another program"
    if name.startswith("SQLITE_IOERR"):
        return f"disk I/O error ({text})"
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        return f"the file is damaged or not an earmark database ({text})"
    if isinstance(exc, OSError):
        return exc.strerror or text
    return text or type(exc).__name__


# -- documents -> rows ------------------------------------------------------------------


def _num(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _insert_key_rows(conn: sqlite3.Connection, snapshot_id: int, doc: dict) -> None:
    cols = ", ".join(KEY_COLUMNS)
    marks = ", ".join("?" * (4 + len(KEY_COLUMNS)))
    for i, p in enumerate(doc.get("paths") or ()):
        readings = p.get("readings") or {}
        values = [_num(p.get(c, readings.get(c))) for c in KEY_COLUMNS]
        conn.execute(
            f"INSERT OR REPLACE INTO snapshot_paths (snapshot_id, path, name, role, {cols}) "
            f"VALUES ({marks})",
            (snapshot_id, p.get("index", i), p.get("name"), p.get("role"), *values),
        )


def dumps(doc: Any) -> str:
    """JSON text of a document: compact, never NaN/Infinity (null instead)."""
    return json.dumps(_finite(doc), separators=(",", ":"), allow_nan=False, default=_plain)


def _plain(value: Any) -> Any:
    """NumPy scalars and arrays (a detector's float32) as plain JSON values."""
    if hasattr(value, "tolist"):
        return _finite(value.tolist())
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


# -- reading ----------------------------------------------------------------------------


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


# -- writing ----------------------------------------------------------------------------


@dataclass
class _Job:
    kind: str  # "session" | "end" | "snapshot" | "log" | "marker" | "flag"
    payload: Any
    future: Future | None = None
    time: float = 0.0


class StoreWriter:
    """The one writer of a session: a thread that commits what the session hands it.

    Everything is written in the order it was handed over. :meth:`take_snapshot`
    waits for the commit and returns the id; the other methods queue and return
    at once. When writing fails the cause is reported once through ``on_status``
    (and once more when writing works again), nothing is dropped, and the writer
    retries every ``retry_s``.

    Args:
        path: the database (default ``config.store_file()``).
        on_status: called with one line when writing stops or resumes working.
        retry_s: the pause between attempts while the database cannot be written.
        batch_s: how long log rows gather before a commit (snapshots do not wait).
        rescue_dir: where unwritten items go at stop (default ``rescue`` beside the
            database; the temporary folder's ``earmark-rescue-UID`` is the fallback).
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        on_status: Callable[[str], None] | None = None,
        retry_s: float = 1.0,
        batch_s: float = 1.0,
        rescue_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if path is None:
            from earmark.config import store_file

            path = store_file()
        self.path = Path(path)
        self.rescue_dir = Path(rescue_dir) if rescue_dir else self.path.parent / "rescue"
        self.on_status = on_status
        self.retry_s = float(retry_s)
        self.batch_s = float(batch_s)
        self.session_id: int | None = None
        self.error: str | None = None  # the current cause while writing fails
        self.dropped_log_rows = 0
        self.written_snapshots = 0
        self.rescued: list[Path] = []
        self._jobs: deque[_Job] = deque()
        self._log_rows = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: sqlite3.Connection | None = None
        self._reported_drop = False
        # Called before each transaction: in the audio process, Engine.after_callback,
        # so that the writer's Python work falls between audio callbacks.
        self.pace: Callable[[], object] | None = None

    # -- handing over (any thread) ----------------------------------------------------------

    def begin_session(
        self,
        name: str,
        kind: str = "run",
        sample_rate: int | None = None,
        block_size: int | None = None,
        meta: dict | None = None,
        started: float | None = None,
    ) -> None:
        """Open a session row; everything handed over after this belongs to it.

        ``started`` (seconds since the epoch) defaults to now; an import gives the
        original time.
        """
        started = time.time() if started is None else float(started)
        self._put(_Job("session", (name, kind, started, sample_rate, block_size, meta or {})))

    def end_session(self) -> None:
        """Close the current session row (its end time)."""
        self._put(_Job("end", time.time()))

    def take_snapshot(
        self, doc: dict, clip: tuple[str, bytes, int, float] | None = None, timeout: float = 5.0
    ) -> int:
        """Store a snapshot document; return its id once committed (the acknowledgement).

        ``clip`` is (format, bytes, sample_rate, seconds). Raises
        :class:`SnapshotPendingError` when the commit has not happened within
        ``timeout`` (the database cannot be written now): the snapshot stays queued
        and is written as soon as possible, it is not lost.
        """
        future: Future = Future()
        # Frozen now, as plain JSON values: the caller may reuse or change its dict, and a
        # value JSON cannot hold fails here, in the caller, not later in the writer.
        frozen = json.loads(dumps({k: v for k, v in doc.items() if k != "id"}))
        self._put(_Job("snapshot", (frozen, clip), future, time.time()), urgent=True)
        if self._thread is None:  # not started: write here
            self._write_pending()
        try:
            return future.result(timeout=timeout)
        except FutureTimeout:
            cause = self.error or "the writer is busy"
            raise SnapshotPendingError(
                f"snapshot not stored yet: {self.path}: {cause}; it is kept in memory "
                f"({self.pending_snapshots} pending) and written as soon as possible"
            ) from None

    def log(self, rows: Sequence[Sequence[Any]]) -> None:
        """Append session log rows (tuples in :data:`LOG_COLUMNS` order)."""
        if rows:
            self._put(_Job("log", [tuple(r) for r in rows]))

    def marker(self, marker: dict) -> None:
        """Record a marker (``time``, ``t_s``, ``label``)."""
        self._put(_Job("marker", dict(marker)))

    def flag(self, flag: dict) -> None:
        """Record a flag, or update it (same path, code, band and start)."""
        self._put(_Job("flag", dict(flag), time=time.time()))

    @property
    def pending_snapshots(self) -> int:
        """Snapshots handed over and not yet committed."""
        with self._lock:
            return sum(1 for j in self._jobs if j.kind == "snapshot")

    @property
    def pending_log_rows(self) -> int:
        with self._lock:
            return self._log_rows

    def _put(self, job: _Job, urgent: bool = False) -> None:
        with self._lock:
            self._jobs.append(job)
            if job.kind == "log":
                self._log_rows += len(job.payload)
                self._trim_log()
        if urgent or len(self._jobs) == 1:
            self._wake.set()

    def _trim_log(self) -> None:
        """Bound the rows waiting while the database is unwritable (oldest go first)."""
        while self._log_rows > MAX_PENDING_LOG_ROWS:
            for job in self._jobs:
                if job.kind == "log" and job.payload:
                    job.payload.pop(0)
                    self._log_rows -= 1
                    self.dropped_log_rows += 1
                    break
            else:
                return

    # -- the thread --------------------------------------------------------------------------

    def start(self) -> None:
        """Start the writer thread (and import rescue files of earlier runs)."""
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="earmark-store", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> int:
        """Write what is queued, stop, and return how many jobs could not be written.

        Those are saved to a rescue file (named in the status line) that the next
        writer imports; nothing is dropped silently.
        """
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stopping.set()
            self._wake.set()
            thread.join(timeout=timeout)
        else:
            self._write_pending()
        with self._lock:
            left = list(self._jobs)
            self._jobs.clear()
            self._log_rows = 0
        if left:
            self._rescue(left)
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None
        return len(left)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything handed over so far is committed; False on timeout."""
        future: Future = Future()
        self._put(_Job("barrier", None, future), urgent=True)
        if self._thread is None:
            self._write_pending()
        try:
            future.result(timeout=timeout)
            return True
        except FutureTimeout:
            return False

    def _run(self) -> None:
        self._import_rescue()
        while True:
            self._wake.clear()
            stopping = self._stopping.is_set()
            ok = self._write_pending()
            if stopping:
                if not ok:
                    # A lock about to be released, a disk being cleared: a short last chance
                    # before what is left goes to a rescue file.
                    deadline = time.monotonic() + max(2.0 * self.retry_s, 1.0)
                    while not ok and time.monotonic() < deadline:
                        time.sleep(min(self.retry_s, 0.2))
                        ok = self._write_pending()
                return
            self._wake.wait(self.batch_s if ok else self.retry_s)

    def _write_pending(self) -> bool:
        """Commit everything queued now in one transaction; False if it failed."""
        with self._lock:
            batch = list(self._jobs)
        if not batch:
            return True
        if self.pace is not None:
            self.pace()
        try:
            if self._conn is None:
                self._conn = connect(self.path)
            ids = self._write(self._conn, batch)
        except (sqlite3.Error, StoreError, OSError) as exc:
            self._failed(exc)
            return False
        with self._lock:
            for _ in batch:
                job = self._jobs.popleft()
                if job.kind == "log":
                    self._log_rows -= len(job.payload)
        self._recovered()
        for job, result in zip(batch, ids, strict=True):
            if job.future is not None and not job.future.done():
                job.future.set_result(result)
        return True

    def _write(self, conn: sqlite3.Connection, batch: list[_Job]) -> list[Any]:
        results: list[Any] = []
        session_id = self.session_id
        conn.execute("BEGIN IMMEDIATE")
        try:
            for job in batch:
                result = None
                if job.kind == "use_session":
                    session_id = job.payload
                elif session_id is None and job.kind in ("end", "log", "marker", "flag"):
                    # Rows handed over without a session row still need one to belong to.
                    session_id = conn.execute(
                        "INSERT INTO sessions (name, kind, started) VALUES (?,?,?)",
                        ("(unnamed)", "unknown", job.time or time.time()),
                    ).lastrowid
                if job.kind == "session":
                    name, kind, started, rate, block, meta = job.payload
                    session_id = conn.execute(
                        "INSERT INTO sessions (name, kind, started, sample_rate, block_size, meta)"
                        " VALUES (?,?,?,?,?,?)",
                        (name, kind, started, rate, block, dumps(meta)),
                    ).lastrowid
                    result = session_id
                elif job.kind == "end":
                    conn.execute(
                        "UPDATE sessions SET ended = ? WHERE id = ?", (job.payload, session_id)
                    )
                elif job.kind == "snapshot":
                    doc, clip = job.payload
                    result = _insert_snapshot(conn, session_id, doc, clip)
                elif job.kind == "log":
                    cols = ", ".join(LOG_COLUMNS)
                    conn.executemany(
                        f"INSERT INTO session_log (session_id, {cols}) "
                        f"VALUES (?, {', '.join('?' * len(LOG_COLUMNS))})",
                        [(session_id, *r) for r in job.payload],
                    )
                elif job.kind == "marker":
                    m = job.payload
                    result = conn.execute(
                        "INSERT INTO markers (session_id, time, t_s, label) VALUES (?,?,?,?)",
                        (session_id, m.get("time", job.time), m.get("t_s"), m.get("label")),
                    ).lastrowid
                elif job.kind == "flag":
                    _upsert_flag(conn, session_id, job.payload, job.time)
                results.append(result)
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        self.session_id = session_id
        self.written_snapshots += sum(1 for j in batch if j.kind == "snapshot")
        return results

    def _failed(self, exc: BaseException) -> None:
        cause = exc.cause if isinstance(exc, StoreError) else describe_error(exc)
        if self._conn is not None:
            # A connection that hit a full disk or I/O error is reopened on the next try.
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None
        if cause != self.error:
            self.error = cause
            self._say(
                f"cannot write to {self.path}: {cause}; the audio goes on, "
                f"{self.pending_snapshots} snapshot(s) and {self.pending_log_rows} log rows "
                f"are kept in memory and written when possible (retrying every {self.retry_s:g} s)"
            )
        if self.dropped_log_rows and not self._reported_drop:
            self._reported_drop = True
            self._say(
                f"the session log waited too long for {self.path}: the oldest "
                f"{self.dropped_log_rows} log rows were let go (snapshots are all kept)"
            )

    def _recovered(self) -> None:
        if self.error is not None:
            self.error = None
            self._say(f"writing to {self.path} again; everything kept in memory is stored")

    def _say(self, text: str) -> None:
        if self.on_status is not None:
            with contextlib.suppress(Exception):
                self.on_status(text)

    # -- rescue files ---------------------------------------------------------------------

    def _rescue(self, jobs: list[_Job]) -> None:
        """Save unwritten jobs as JSON lines: in the database's folder, else the temp folder.

        Both are private folders (earmark.private): created 0700, refused when they are
        links, another user's or writable by others; the file is created exclusively.
        """
        if self.session_id is not None and jobs[0].kind != "session":
            # Rows of a session whose row is already stored go back to that session.
            jobs = [_Job("use_session", self.session_id), *jobs]
        lines = [
            dumps({"kind": j.kind, "time": j.time, "payload": _rescuable(j)})
            for j in jobs
            if j.kind not in ("barrier", "restore")
        ]
        if not lines:
            return
        name = f"pending-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.jsonl"
        causes: list[str] = []
        for opener in (self._own_rescue_folder, self._temp_rescue_folder):
            try:
                with opener(create=True) as folder:
                    target = folder.write_new(name, "\n".join(lines) + "\n")
            except FolderError as exc:
                causes.append(str(exc))
                continue
            except OSError as exc:
                causes.append(f"{exc.filename or name}: {exc.strerror or exc}")
                continue
            self.rescued.append(target)
            self._say(
                f"{len(lines)} unwritten item(s) saved to {target}; the next session "
                "stores them in the database"
            )
            return
        self._say(
            f"could not write {len(lines)} item(s) to {self.path} nor to a rescue folder "
            f"({'; '.join(causes)}): they are lost"
        )

    def _own_rescue_folder(self, create: bool) -> PrivateFolder:
        return open_private(self.rescue_dir, create=create)

    def _temp_rescue_folder(self, create: bool) -> PrivateFolder:
        """The fallback in the temporary folder: ``earmark-rescue-UID/HASH``, both levels
        private. The name is predictable, so another user may have made it first: then
        it is refused, never used."""
        top, digest = _temp_rescue_dir(self.path)
        with open_private(top, create=create) as parent:
            return parent.folder(digest, create=create)

    def _import_rescue(self) -> None:
        """Queue what earlier runs rescued, ahead of this run's jobs; delete once committed.

        Only files of this user in private folders are read; anything else is refused
        with one status line and left where it is.
        """
        for opener in (self._own_rescue_folder, self._temp_rescue_folder):
            try:
                folder = opener(create=False)
            except MissingFolderError:
                continue
            except FolderError as exc:
                self._say(f"refusing the rescue folder {exc}; nothing is imported from it")
                continue
            with folder:
                for name in folder.names("pending-*.jsonl"):
                    try:
                        text = folder.read_text(name)
                        jobs = [_from_rescue(json.loads(x)) for x in text.splitlines() if x]
                    except FolderError as exc:
                        self._say(f"refusing the rescue file {exc}; it is not imported")
                        continue
                    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
                        self._say(
                            f"rescue file {folder.path / name} cannot be read "
                            f"({type(exc).__name__}: {exc}); it is left as it is"
                        )
                        continue
                    with self._lock:
                        # Rescued jobs carry their own session rows; this run's session id
                        # is restored by a marker job after them.
                        own = list(self._jobs)
                        self._jobs.clear()
                        self._jobs.extend(jobs)
                        self._jobs.append(_Job("restore", None))
                        self._jobs.extend(own)
                    self._write_rescued(folder, name)

    def _write_rescued(self, folder: PrivateFolder, name: str) -> bool:
        saved = self.session_id
        self.session_id = None
        ok = self._write_pending_until("restore")
        self.session_id = saved
        if ok:
            with contextlib.suppress(OSError):
                folder.unlink(name)
        return ok

    def _write_pending_until(self, marker_kind: str) -> bool:
        with self._lock:
            batch: list[_Job] = []
            for job in self._jobs:
                batch.append(job)
                if job.kind == marker_kind:
                    break
        try:
            if self._conn is None:
                self._conn = connect(self.path)
            self._write(self._conn, batch)
        except (sqlite3.Error, StoreError, OSError) as exc:
            # Leave the rescued jobs for the next run; this run goes on without them.
            with self._lock:
                for _ in batch:
                    self._jobs.popleft()
            self._failed(exc)
            return False
        with self._lock:
            for _ in batch:
                self._jobs.popleft()
        return True


def _rescuable(job: _Job) -> Any:
    if job.kind == "snapshot":
        doc, clip = job.payload
        clip_hex = None if clip is None else [clip[0], clip[1].hex(), clip[2], clip[3]]
        return [doc, clip_hex]
    return job.payload


def _from_rescue(item: dict) -> _Job:
    kind, payload = item["kind"], item["payload"]
    if kind == "snapshot":
        doc, clip = payload
        payload = (doc, None if clip is None else (clip[0], bytes.fromhex(clip[1]), *clip[2:]))
    elif kind == "session":
        payload = tuple(payload)
    return _Job(kind, payload, None, item.get("time") or 0.0)


def _temp_rescue_dir(database: Path) -> tuple[Path, str]:
    """The fallback rescue folder and its sub-folder for this database (only its own
    writer imports it): ``$TMPDIR/earmark-rescue-UID``, ``HASH``."""
    digest = hashlib.sha1(str(database.resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"earmark-rescue-{os.geteuid()}", digest


def _insert_snapshot(
    conn: sqlite3.Connection,
    session_id: int | None,
    doc: dict,
    clip: tuple[str, bytes, int, float] | None,
) -> int:
    audio = doc.get("audio") or {}
    snapshot_id = conn.execute(
        "INSERT INTO snapshots (session_id, time, label, note, data, sample_rate, block_size) "
        "VALUES (?,?,?,?,?,?,?)",
        (
            session_id,
            float(doc.get("time") or time.time()),
            doc.get("label"),
            doc.get("note"),
            dumps(doc),
            audio.get("sample_rate"),
            audio.get("block_size"),
        ),
    ).lastrowid
    _insert_key_rows(conn, snapshot_id, doc)
    if clip is not None:
        fmt, data, rate, seconds = clip
        conn.execute(
            "INSERT INTO snapshot_clips (snapshot_id, format, sample_rate, seconds, data) "
            "VALUES (?,?,?,?,?)",
            (snapshot_id, fmt, rate, seconds, sqlite3.Binary(data)),
        )
    return snapshot_id


def _upsert_flag(conn: sqlite3.Connection, session_id: int, flag: dict, now: float) -> None:
    conn.execute(
        "INSERT INTO flags (session_id, time, path, code, severity, start_s, end_s, message, "
        "data, flag_key) VALUES (?,?,?,?,?,?,?,?,?,?) "
        "ON CONFLICT (session_id, flag_key) DO UPDATE SET severity = excluded.severity, "
        "end_s = excluded.end_s, message = excluded.message, data = excluded.data",
        (
            session_id,
            now,
            flag.get("path"),
            str(flag.get("code", "")),
            flag.get("severity"),
            _num(flag.get("start_s")),
            _num(flag.get("end_s")),
            flag.get("message"),
            dumps(flag),
            session_key(flag),
        ),
    )
