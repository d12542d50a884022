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

The package: ``schema`` (tables, migrations, ``connect``, documents turned into rows),
``reader`` (``Store``), ``writer`` (``StoreWriter``: a thread, a queue and rescue
files), ``snapshots`` (building and comparing snapshot documents) and ``report``
(a snapshot's HTML and PNG).
"""

from __future__ import annotations

from earmark.store.reader import Store
from earmark.store.schema import (
    BUSY_TIMEOUT_MS,
    KEY_COLUMNS,
    LOG_COLUMNS,
    MIGRATIONS,
    SCHEMA_VERSION,
    Migration,
    SnapshotPendingError,
    StoreError,
    connect,
    describe_error,
    dumps,
    insert_key_rows,
    number_or_none,
)
from earmark.store.writer import MAX_PENDING_LOG_ROWS, StoreWriter

__all__ = [
    "BUSY_TIMEOUT_MS",
    "KEY_COLUMNS",
    "LOG_COLUMNS",
    "MAX_PENDING_LOG_ROWS",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Migration",
    "SnapshotPendingError",
    "Store",
    "StoreError",
    "StoreWriter",
    "connect",
    "describe_error",
    "dumps",
    "insert_key_rows",
    "number_or_none",
]
