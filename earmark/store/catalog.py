"""The audit catalogue: one SQLite file per ``earmark audit`` (``--out catalog.sqlite``).

Tables (schema versioned as :mod:`earmark.store.schema` versions the store:
``PRAGMA user_version``, :data:`MIGRATIONS` applied in order, each step recorded in
``schema_migrations``; a catalogue from a newer earmark is refused, never misread):

``audits``
    one row per run of ``earmark audit`` over the catalogue: when, where it ran
    (``local:N`` or the Dask scheduler's address), the profile.
``files``
    one row per audio file's content (``sha256``) and profile: its path as given, the
    manifest's ``release_date``, every reading of :data:`READING_COLUMNS` (the
    :data:`earmark.offline.measures.MEASURE` keys, unrounded, as
    :func:`earmark.offline.analysis.analyze` returned them), the flags (JSON, the
    ``analyze --json`` flag objects), ``analyze --json``'s whole object in ``data``,
    or the ``error`` text of a file that could not be analysed.
``file_flags``
    one row per file and flag code (its most severe occurrence): counting per flag is
    one ``GROUP BY``.
``pairs``
    one row per mix/master pair (content hashes of both) and profile: the key numbers
    of ``diff --json`` as columns, its whole object in ``data``, or the ``error``.

Durability: WAL, ``synchronous=FULL``, and one transaction per result, so a killed
audit loses only the files in flight and a re-run finds the rest (the resume rule is
:meth:`Catalog.done_keys`). An error row is replaced when the file is tried again.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from earmark.offline.measures import MEASURES
from earmark.store.schema import (
    BUSY_TIMEOUT_MS,
    Migration,
    StoreError,
    describe_error,
    dumps,
    number_or_none,
)

__all__ = [
    "FILE_COLUMNS",
    "MIGRATIONS",
    "PAIR_COLUMNS",
    "READING_COLUMNS",
    "SCHEMA_VERSION",
    "Catalog",
]

# Every measure of analyze's table, plus the length and the damage count.
READING_COLUMNS: tuple[str, ...] = (
    *(m.key for m in MEASURES),
    "duration_s",
    "non_finite_samples",
)

# The pair's key numbers, from ``diff --json`` (the top level and its ``dynamics``).
PAIR_NUMBERS: tuple[str, ...] = (
    "gain_db",
    "loudness_change_lu",
    "sharpness_change_acum",
    "offset_ms",
)
PAIR_DYNAMICS: tuple[str, ...] = (
    "ratio",
    "threshold_db",
    "gain_reduction_db",
    "psr_change_db",
    "lra_change_lu",
    "crest_change_db",
    "plr_change_db",
    "transient_crest_change_db",
)

FILE_COLUMNS: tuple[str, ...] = (
    "sha256",
    "path",
    "profile",
    "release_date",
    "size_bytes",
    "mtime_ns",
    "sample_rate",
    "channels",
    "format",
    "subtype",
    *READING_COLUMNS,
    "flags",
    "flag_codes",
    "problems",
    "error",
    "seconds",
    "worker",
    "analysed",
    "audit_id",
    "data",
)

PAIR_COLUMNS: tuple[str, ...] = (
    "mix_sha256",
    "master_sha256",
    "mix_path",
    "master_path",
    "profile",
    *PAIR_NUMBERS,
    *PAIR_DYNAMICS,
    "compressed",
    "limited",
    "eq_moves",
    "flags_introduced",
    "flags_removed",
    "summary",
    "error",
    "seconds",
    "worker",
    "analysed",
    "audit_id",
    "data",
)

_V1 = (
    """
CREATE TABLE audits (
    id INTEGER PRIMARY KEY,
    started REAL NOT NULL,
    ended REAL,
    runs_on TEXT,
    profile TEXT,
    argv TEXT
);
CREATE TABLE files (
    id INTEGER PRIMARY KEY,
    file_key TEXT NOT NULL,
    sha256 TEXT,
    path TEXT NOT NULL,
    profile TEXT NOT NULL,
    release_date TEXT,
    size_bytes INTEGER,
    mtime_ns INTEGER,
    sample_rate INTEGER,
    channels INTEGER,
    format TEXT,
    subtype TEXT,
"""
    + "".join(f"    {c} REAL,\n" for c in READING_COLUMNS)
    + """    flags TEXT,
    flag_codes TEXT,
    problems INTEGER,
    error TEXT,
    seconds REAL,
    worker TEXT,
    analysed REAL NOT NULL,
    audit_id INTEGER REFERENCES audits(id),
    data TEXT
);
CREATE UNIQUE INDEX files_key ON files(file_key, profile);
CREATE INDEX files_path ON files(path, size_bytes, mtime_ns);
CREATE INDEX files_release ON files(release_date);
CREATE TABLE file_flags (
    file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    code TEXT NOT NULL,
    severity TEXT,
    PRIMARY KEY (file_id, code)
) WITHOUT ROWID;
CREATE INDEX file_flags_code ON file_flags(code);
CREATE TABLE pairs (
    id INTEGER PRIMARY KEY,
    pair_key TEXT NOT NULL,
    mix_sha256 TEXT,
    master_sha256 TEXT,
    mix_path TEXT NOT NULL,
    master_path TEXT NOT NULL,
    profile TEXT NOT NULL,
"""
    + "".join(f"    {c} REAL,\n" for c in (*PAIR_NUMBERS, *PAIR_DYNAMICS))
    + """    compressed INTEGER,
    limited INTEGER,
    eq_moves TEXT,
    flags_introduced TEXT,
    flags_removed TEXT,
    summary TEXT,
    error TEXT,
    seconds REAL,
    worker TEXT,
    analysed REAL NOT NULL,
    audit_id INTEGER REFERENCES audits(id),
    data TEXT
);
CREATE UNIQUE INDEX pairs_key ON pairs(pair_key, profile);
"""
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "audits, files (readings, flags, errors), file flags, mix/master pairs", _V1),
)
SCHEMA_VERSION = MIGRATIONS[-1].version


def file_key(sha256: str | None, path: str) -> str:
    """The identity of a file row: its content hash, or (unreadable) its absolute path."""
    return sha256 if sha256 else "unread:" + os.path.abspath(path)


def pair_key(mix_sha256: str | None, master_sha256: str | None, mix: str, master: str) -> str:
    """The identity of a pair row: both content hashes (paths when a file is unreadable)."""
    return f"{file_key(mix_sha256, mix)}>{file_key(master_sha256, master)}"


class Catalog:
    """The catalogue file, open for reading and writing (one connection, one process).

    ``Catalog(path)`` creates the file if needed and migrates it; every ``add_*`` is
    one committed transaction. Raises :class:`~earmark.store.schema.StoreError` (one
    line naming the file) when it cannot be opened or written.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {describe_error(exc)}") from None
        self._conn = conn
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"{self.path}: cannot switch to WAL mode ({mode})")
            # FULL: a committed row survives a power cut too, not only a killed process.
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            self._migrate()
        except sqlite3.Error as exc:
            conn.close()
            raise StoreError(f"{self.path}: {describe_error(exc)}") from None
        except StoreError:
            conn.close()
            raise

    def _migrate(self) -> None:
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: catalogue schema version {version} is newer than this earmark "
                f"understands ({SCHEMA_VERSION}); upgrade earmark to read it"
            )
        if version == SCHEMA_VERSION:
            return
        if version == 0 and self._conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            raise StoreError(f"{self.path}: is an SQLite file but not an earmark catalogue")
        with self._transaction() as c:
            version = c.execute("PRAGMA user_version").fetchone()[0]  # another process's?
            c.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
                " description TEXT NOT NULL, applied REAL NOT NULL)"
            )
            for step in MIGRATIONS:
                if step.version <= version:
                    continue
                for statement in (s.strip() for s in step.sql.split(";")):
                    if statement:
                        c.execute(statement)
                if step.backfill is not None:
                    step.backfill(c)
                c.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                    (step.version, step.description, time.time()),
                )
                c.execute(f"PRAGMA user_version = {step.version}")

    class _Txn:
        def __init__(self, conn: sqlite3.Connection) -> None:
            self.conn = conn

        def __enter__(self) -> sqlite3.Connection:
            self.conn.execute("BEGIN IMMEDIATE")
            return self.conn

        def __exit__(self, kind: Any, exc: Any, tb: Any) -> None:
            self.conn.execute("COMMIT" if kind is None else "ROLLBACK")

    def _transaction(self) -> Catalog._Txn:
        return Catalog._Txn(self._conn)

    def close(self) -> None:
        """Close the connection (rows are already committed)."""
        self._conn.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()

    # -- runs ------------------------------------------------------------------------------

    def start_audit(self, runs_on: str, profile: str, argv: Sequence[str] = ()) -> int:
        """Record the start of a run; return its id."""
        return self._write(
            "INSERT INTO audits (started, runs_on, profile, argv) VALUES (?, ?, ?, ?)",
            (time.time(), runs_on, profile, json.dumps(list(argv))),
        )

    def end_audit(self, audit_id: int) -> None:
        """Record the end of a run."""
        self._write("UPDATE audits SET ended = ? WHERE id = ?", (time.time(), audit_id))

    # -- resume ----------------------------------------------------------------------------

    def done_keys(self, profile: str) -> tuple[frozenset[str], frozenset[tuple[str, int, int]]]:
        """What a re-run skips for ``profile``: the content hashes already analysed without
        error, and their (absolute path, size, mtime) so unchanged files are not even read
        again to be hashed."""
        rows = self._conn.execute(
            "SELECT sha256, path, size_bytes, mtime_ns FROM files"
            " WHERE profile = ? AND error IS NULL AND sha256 IS NOT NULL",
            (profile,),
        ).fetchall()
        hashes = frozenset(r[0] for r in rows)
        stats = frozenset((r[1], int(r[2]), int(r[3])) for r in rows if r[2] is not None)
        return hashes, stats

    def done_pairs(self, profile: str) -> frozenset[str]:
        """The pair keys already diffed without error for ``profile``."""
        rows = self._conn.execute(
            "SELECT pair_key FROM pairs WHERE profile = ? AND error IS NULL", (profile,)
        ).fetchall()
        return frozenset(r[0] for r in rows)

    # -- rows ------------------------------------------------------------------------------

    def add_file(self, row: Mapping[str, Any]) -> bool:
        """Store one file's result (one transaction); False when its content is already
        there without error (a duplicate of another path): nothing is written then."""
        try:
            return self._add_file(row)
        except sqlite3.Error as exc:  # the disk is full, the file was taken away ...
            raise StoreError(f"{self.path}: {describe_error(exc)}") from None

    def _add_file(self, row: Mapping[str, Any]) -> bool:
        values = {c: _cell(row.get(c)) for c in FILE_COLUMNS}
        key = file_key(row.get("sha256"), str(row["path"]))
        values["analysed"] = values["analysed"] or time.time()
        with self._transaction() as c:
            old = c.execute(
                "SELECT id, error FROM files WHERE file_key = ? AND profile = ?",
                (key, values["profile"]),
            ).fetchone()
            if old is not None and old[1] is None:
                return False
            if old is not None:  # an error row, tried again
                c.execute("DELETE FROM files WHERE id = ?", (old[0],))
            cols = ", ".join(("file_key", *FILE_COLUMNS))
            marks = ", ".join("?" * (1 + len(FILE_COLUMNS)))
            cur = c.execute(
                f"INSERT INTO files ({cols}) VALUES ({marks})",
                (key, *(values[k] for k in FILE_COLUMNS)),
            )
            worst: dict[str, str] = {}
            for flag in row.get("flag_list") or ():
                code, sev = str(flag.get("code")), str(flag.get("severity") or "")
                if _RANK.get(sev, 0) >= _RANK.get(worst.get(code, ""), -1):
                    worst[code] = sev
            c.executemany(
                "INSERT INTO file_flags (file_id, code, severity) VALUES (?, ?, ?)",
                [(cur.lastrowid, code, sev) for code, sev in worst.items()],
            )
        return True

    def add_pair(self, row: Mapping[str, Any]) -> bool:
        """Store one pair's result (one transaction); False when it is already there."""
        try:
            return self._add_pair(row)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {describe_error(exc)}") from None

    def _add_pair(self, row: Mapping[str, Any]) -> bool:
        values = {c: _cell(row.get(c)) for c in PAIR_COLUMNS}
        key = pair_key(row.get("mix_sha256"), row.get("master_sha256"), row["mix_path"],
                       row["master_path"])  # fmt: skip
        values["analysed"] = values["analysed"] or time.time()
        with self._transaction() as c:
            old = c.execute(
                "SELECT id, error FROM pairs WHERE pair_key = ? AND profile = ?",
                (key, values["profile"]),
            ).fetchone()
            if old is not None and old[1] is None:
                return False
            if old is not None:
                c.execute("DELETE FROM pairs WHERE id = ?", (old[0],))
            cols = ", ".join(("pair_key", *PAIR_COLUMNS))
            marks = ", ".join("?" * (1 + len(PAIR_COLUMNS)))
            c.execute(
                f"INSERT INTO pairs ({cols}) VALUES ({marks})",
                (key, *(values[k] for k in PAIR_COLUMNS)),
            )
        return True

    def _write(self, sql: str, params: Sequence[Any]) -> int:
        try:
            with self._transaction() as c:
                return int(c.execute(sql, params).lastrowid or 0)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {describe_error(exc)}") from None

    # -- reading ---------------------------------------------------------------------------

    def files(self, profile: str | None = None) -> list[dict[str, Any]]:
        """Every file row (optionally of one profile), oldest first, as dicts."""
        return self._rows("files", profile)

    def pairs(self, profile: str | None = None) -> list[dict[str, Any]]:
        """Every pair row, oldest first, as dicts."""
        return self._rows("pairs", profile)

    def _rows(self, table: str, profile: str | None) -> list[dict[str, Any]]:
        where, params = ("WHERE profile = ?", (profile,)) if profile is not None else ("", ())
        cur = self._conn.execute(f"SELECT * FROM {table} {where} ORDER BY id", params)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def flag_counts(self) -> Iterator[tuple[str, str, str, int]]:
        """(profile, code, worst severity, files) for every flag code, most files first."""
        yield from self._conn.execute(
            "SELECT f.profile, ff.code, CASE max(CASE ff.severity WHEN 'problem' THEN 2"
            " WHEN 'warning' THEN 1 ELSE 0 END) WHEN 2 THEN 'problem' WHEN 1 THEN 'warning'"
            " ELSE 'info' END, count(*) FROM file_flags ff JOIN files f ON f.id = ff.file_id"
            " GROUP BY f.profile, ff.code ORDER BY count(*) DESC, ff.code"
        )


_RANK = {"info": 0, "warning": 1, "problem": 2}


def _cell(value: Any) -> Any:
    """A value as SQLite stores it: numbers finite or NULL, structures as JSON text."""
    if value is None or isinstance(value, str | bytes):
        return value
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) or getattr(value, "shape", None) == ():  # NumPy scalars too
        return number_or_none(value)
    return dumps(value)
