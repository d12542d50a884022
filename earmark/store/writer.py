"""Writing the store off the session thread: ``StoreWriter`` (a thread, a queue, rescue
files when the database cannot be written, so nothing recorded is ever lost)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from earmark.meters.flags import session_key
from earmark.private import (
    FolderError,
    MissingFolderError,
    PrivateFolder,
    open_private,
)
from earmark.store.schema import (
    LOG_COLUMNS,
    SnapshotPendingError,
    StoreError,
    connect,
    describe_error,
    dumps,
    insert_key_rows,
    number_or_none,
)

# Session log rows waiting in memory while the database cannot be written: at 10 Hz
# and a few paths this is hours. Past it the oldest rows go (and that is reported);
# snapshots, markers and flags are never dropped.
MAX_PENDING_LOG_ROWS = 500_000


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
    insert_key_rows(conn, snapshot_id, doc)
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
            number_or_none(flag.get("start_s")),
            number_or_none(flag.get("end_s")),
            flag.get("message"),
            dumps(flag),
            session_key(flag),
        ),
    )
