"""The store's schema: tables, migrations, connecting, and documents turned into rows."""

from __future__ import annotations

import json
import math
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from earmark.errors import EarmarkError
from earmark.meters.flags import session_key
from earmark.private import (
    FolderError,
    open_private,
    write_problem,
)

BUSY_TIMEOUT_MS = 2000


# The key readings of each path, as columns of snapshot_paths (name, unit in the name):
# those schema v2 created, then the ones later migrations added (KEY_COLUMNS: all).
KEY_COLUMNS_V2: tuple[str, ...] = (
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
KEY_COLUMNS: tuple[str, ...] = (*KEY_COLUMNS_V2, "sharpness_acum")


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
    + "".join(f"    {c} REAL,\n" for c in KEY_COLUMNS_V2)
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
        insert_key_rows(conn, snapshot_id, doc, KEY_COLUMNS_V2)
    for flag_id, data in conn.execute("SELECT id, data FROM flags").fetchall():
        flag = json.loads(data) if data else {}
        conn.execute("UPDATE flags SET flag_key = ? WHERE id = ?", (session_key(flag), flag_id))


_V3 = "ALTER TABLE snapshot_paths ADD COLUMN sharpness_acum REAL;"


def _backfill_v3(conn: sqlite3.Connection) -> None:
    """The sharpness of snapshots stored before v3, from their JSON documents."""
    for snapshot_id, data in conn.execute("SELECT id, data FROM snapshots").fetchall():
        for i, p in enumerate(json.loads(data).get("paths") or ()):
            value = number_or_none((p.get("readings") or {}).get("sharpness_acum"))
            conn.execute(
                "UPDATE snapshot_paths SET sharpness_acum = ? WHERE snapshot_id = ? AND path = ?",
                (value, snapshot_id, p.get("index", i)),
            )


# Blind listening (earmark listen): one row per test, one per trial, committed as each
# answer is given, so a killed test keeps every answer it had.
_V4 = """
CREATE TABLE listening_tests (
    id INTEGER PRIMARY KEY,
    time REAL NOT NULL,
    mode TEXT NOT NULL,
    change TEXT NOT NULL,
    unit TEXT,
    material TEXT,
    adaptive INTEGER NOT NULL,
    trials INTEGER NOT NULL DEFAULT 0,
    correct INTEGER NOT NULL DEFAULT 0,
    p_value REAL,
    threshold REAL,
    threshold_relation TEXT,
    finished REAL
);
CREATE TABLE listening_trials (
    test_id INTEGER NOT NULL REFERENCES listening_tests(id) ON DELETE CASCADE,
    n INTEGER NOT NULL,
    time REAL NOT NULL,
    amount REAL,
    truth TEXT NOT NULL,
    answer TEXT NOT NULL,
    correct INTEGER NOT NULL,
    response_s REAL,
    PRIMARY KEY (test_id, n)
) WITHOUT ROWID;
CREATE INDEX listening_tests_time ON listening_tests(time);
CREATE TABLE comparisons (
    id INTEGER PRIMARY KEY,
    time REAL NOT NULL,
    mix TEXT,
    a TEXT,
    b TEXT,
    loudness_diff_lu REAL,
    brighter_db REAL,
    fuller_db REAL,
    psr_diff_db REAL,
    plr_diff_db REAL,
    wider_pct REAL,
    verdict TEXT,
    data TEXT
);
CREATE INDEX comparisons_time ON comparisons(time);
"""


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "sessions, snapshots as JSON documents, session log, markers, flags", _V1),
    Migration(
        2,
        "per-path key readings as columns; audio clips; LRA, PLR and correlation in the log; "
        "flags updated in place",
        _V2,
        _backfill_v2,
    ),
    Migration(
        3, "psychoacoustic sharpness (acum) among the per-path key columns", _V3, _backfill_v3
    ),
    Migration(4, "blind listening tests and their trials (earmark listen); compare verdicts", _V4),
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


def number_or_none(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def insert_key_rows(
    conn: sqlite3.Connection,
    snapshot_id: int,
    doc: dict,
    columns: tuple[str, ...] = KEY_COLUMNS,
) -> None:
    """The snapshot's per-path key readings as columns (``columns``: the ones the schema
    has at this point; a migration's backfill passes its own version's)."""
    cols = ", ".join(columns)
    marks = ", ".join("?" * (4 + len(columns)))
    for i, p in enumerate(doc.get("paths") or ()):
        readings = p.get("readings") or {}
        values = [number_or_none(p.get(c, readings.get(c))) for c in columns]
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
