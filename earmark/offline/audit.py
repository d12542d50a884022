"""``earmark audit``: a whole catalogue analysed, judged and diffed, on one machine or a cluster.

::

    from earmark.offline.audit import audit
    summary = audit(["masters/", "manifest.csv"], out="catalog.sqlite", profile="pop")

What it does:

- :func:`collect` walks folders (every file whose extension libsndfile reads) and
  manifests (``.txt``: one path a line; ``.csv``: a ``path`` column and an optional
  ``release_date``, ``YYYY-MM-DD``, ``YYYY-MM`` or ``YYYY``); relative paths in a
  manifest are relative to it.
- :func:`audit_file` is the one task: hash the file (SHA-256 of its bytes), then
  :func:`earmark.offline.analysis.analyze` it with the profile, exactly as
  ``earmark analyze`` does; a file that cannot be read becomes an error row, never
  an exception. :func:`audit_pair` diffs a mix/master pair with
  :func:`earmark.offline.transform.diff` (the object of ``diff --json``).
- The tasks run in a local process pool (``workers``, default all cores) or on a
  Dask cluster (``client``, or ``address`` of its scheduler); the cluster's workers
  read the files themselves, so the paths must be the same there (a shared folder).
  Results are written to the catalogue (:class:`earmark.store.catalog.Catalog`) one
  transaction each, as they finish.
- Resumable: a file whose path, size and modification time match a row already
  analysed is not even read; a file whose content hash is in the catalogue is
  hashed by its worker and skipped. A killed audit loses only the files in flight.
  A worker that dies takes its tasks with it: they run again (Dask reschedules
  them; the local pool is rebuilt), at most :data:`MAX_TRIES` times, after which the
  file is an error row naming the cause.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import math
import os
import re
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from earmark.errors import EarmarkError
from earmark.offline.measures import MEASURES

__all__ = [
    "MAX_TRIES",
    "AuditSummary",
    "FileTask",
    "ManifestError",
    "PairTask",
    "audio_extensions",
    "audit",
    "audit_file",
    "audit_pair",
    "collect",
    "read_pairs",
]

# A task whose worker died this many times becomes an error row (a file that crashes
# the decoder must not stop the audit). Dask's own limit is its
# ``distributed.scheduler.allowed-failures`` (3 by default): the same number.
MAX_TRIES = 3
_HASH_CHUNK_BYTES = 1 << 20
_ASK_CLUSTER_S = 5.0  # how often the cluster's size is asked again (inference: cheap enough)
# Extensions of the formats libsndfile reads (checked against soundfile's list).
_EXTENSIONS = {
    "WAV": ("wav", "wave", "bwf"),
    "RF64": ("rf64",),
    "W64": ("w64",),
    "AIFF": ("aif", "aiff", "aifc"),
    "FLAC": ("flac",),
    "OGG": ("ogg", "oga", "opus"),
    "MP3": ("mp3",),
    "CAF": ("caf",),
    "AU": ("au", "snd"),
}
_MANIFEST_SUFFIXES = (".csv", ".txt", ".m3u", ".m3u8")
_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")


class ManifestError(EarmarkError):
    """A manifest or pairs file that cannot be read or is malformed (one line)."""


@dataclass(frozen=True, slots=True)
class FileTask:
    """One file to audit: its absolute path and the manifest's release date, if any."""

    path: str
    release_date: str | None = None
    size_bytes: int | None = None
    mtime_ns: int | None = None


@dataclass(frozen=True, slots=True)
class PairTask:
    """One mix/master pair to diff (absolute paths)."""

    mix: str
    master: str


@dataclass
class AuditSummary:
    """What one run did."""

    catalog: str
    runs_on: str
    files: int = 0  # found by the walk and the manifests
    analysed: int = 0
    errors: int = 0
    skipped: int = 0  # already in the catalogue (same path and stat, or same content)
    pairs: int = 0
    pairs_diffed: int = 0
    pair_errors: int = 0
    pairs_skipped: int = 0
    seconds: float = 0.0
    audio_seconds: float = 0.0  # of the files analysed in this run
    error_rows: list[tuple[str, str]] = field(default_factory=list)  # (path, error)
    warnings: list[str] = field(default_factory=list)  # the manifests' (one line each)

    @property
    def files_per_s(self) -> float:
        """Files analysed per second of wall clock."""
        return self.analysed / self.seconds if self.seconds > 0 else 0.0

    @property
    def x_real_time(self) -> float:
        """Seconds of audio analysed per second of wall clock."""
        return self.audio_seconds / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        """The run in one line."""
        parts = [
            f"{self.files} file(s): {self.analysed} analysed, {self.errors} error(s), "
            f"{self.skipped} already in the catalogue"
        ]
        if self.pairs:
            parts.append(
                f"{self.pairs} pair(s): {self.pairs_diffed} diffed, {self.pair_errors} "
                f"error(s), {self.pairs_skipped} already in the catalogue"
            )
        parts.append(
            f"{self.seconds:.1f} s, {self.files_per_s:.2f} files/s, "
            f"{self.x_real_time:.0f}x real time on {self.runs_on}"
        )
        return "; ".join(parts) + f"; {self.catalog}"


# -- what to audit ----------------------------------------------------------------------------


def audio_extensions() -> frozenset[str]:
    """The file extensions (lower case, no dot) of the formats this libsndfile reads."""
    import soundfile

    have = soundfile.available_formats()
    return frozenset(ext for fmt, exts in _EXTENSIONS.items() if fmt in have for ext in exts)


def collect(paths: Iterable[str | os.PathLike[str]]) -> tuple[list[FileTask], list[str]]:
    """The files to audit, in order, each once, and warnings (one line each).

    A folder is walked (sorted, links to folders not followed) for audio files; a
    ``.csv``/``.txt``/``.m3u`` file is a manifest; anything else is an audio file
    (a missing one is still audited: it becomes an error row). Raises
    :class:`ManifestError` for a manifest that cannot be read.
    """
    exts = audio_extensions()
    found: dict[str, FileTask] = {}
    warnings: list[str] = []

    def add(path: str, date: str | None = None) -> None:
        path = os.path.abspath(path)
        old = found.get(path)
        if old is None or (date and not old.release_date):
            found[path] = FileTask(path, date, *_stat(path))

    for given in paths:
        p = os.fspath(given)
        if os.path.isdir(p):
            for folder, dirs, names in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(names):
                    if not name.startswith(".") and name.rsplit(".", 1)[-1].lower() in exts:
                        add(os.path.join(folder, name))
        elif p.lower().endswith(_MANIFEST_SUFFIXES):
            for path, date, warning in _manifest(p):
                if warning:
                    warnings.append(warning)
                add(path, date)
        else:
            add(p)
    return list(found.values()), warnings


def _stat(path: str) -> tuple[int | None, int | None]:
    try:
        st = os.stat(path)
    except OSError:
        return None, None
    return st.st_size, st.st_mtime_ns


def _manifest(path: str) -> Iterator[tuple[str, str | None, str | None]]:
    """(path, release date, warning) per entry of a manifest."""
    base = os.path.dirname(os.path.abspath(path))
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path}: cannot read the manifest: {_cause(exc)}") from None
    if not path.lower().endswith(".csv"):
        for line in text.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                yield os.path.join(base, line), None, None
        return
    rows = list(csv.reader(text.splitlines()))
    if not rows:
        return
    head = [c.strip().lower() for c in rows[0]]
    col = next((head.index(k) for k in ("path", "file") if k in head), None)
    if col is None:  # no header: the first column is the path
        col, date_col, body, first = 0, None, rows, 1
    else:
        date_col = head.index("release_date") if "release_date" in head else None
        body, first = rows[1:], 2
    for n, row in enumerate(body, start=first):
        if not row or not row[col].strip() or row[col].lstrip().startswith("#"):
            continue
        date = row[date_col].strip() if date_col is not None and date_col < len(row) else ""
        warning = None
        if date and not _DATE.match(date):
            warning = f"{path}:{n}: release_date '{date}' is not YYYY-MM-DD; left out"
            date = ""
        yield os.path.join(base, row[col].strip()), date or None, warning


def read_pairs(path: str | os.PathLike[str]) -> list[PairTask]:
    """The mix/master pairs of a CSV: columns ``mix`` and ``master`` (or ``before`` and
    ``after``), or the first two columns without a header; paths relative to the CSV."""
    path = os.fspath(path)
    base = os.path.dirname(os.path.abspath(path))
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = [r for r in csv.reader(fh) if r and any(c.strip() for c in r)]
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path}: cannot read the pairs: {_cause(exc)}") from None
    if not rows:
        return []
    head = [c.strip().lower() for c in rows[0]]
    for a, b in (("mix", "master"), ("before", "after")):
        if a in head and b in head:
            cols, body = (head.index(a), head.index(b)), rows[1:]
            break
    else:
        cols, body = (0, 1), rows
    out = []
    for n, row in enumerate(body, start=len(rows) - len(body) + 1):
        if len(row) <= max(cols) or not row[cols[0]].strip() or not row[cols[1]].strip():
            raise ManifestError(f"{path}:{n}: a pair needs a mix and a master")
        mix, master = (os.path.join(base, row[c].strip()) for c in cols)
        out.append(PairTask(os.path.abspath(mix), os.path.abspath(master)))
    return out


def _cause(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return (exc.strerror or str(exc)).lower()
    return " ".join(str(exc).split())


# -- the tasks (run in the workers) ---------------------------------------------------------

# The content hashes already in the catalogue, for the local pool's workers (set by the
# pool's initializer; a Dask task gets them as an argument, scattered once).
_KNOWN: frozenset[str] = frozenset()


def _start_worker(known: frozenset[str], client_pid: int) -> None:
    """The local pool's initializer: the known hashes, and a watch on the client.

    The pool's processes are children of the forkserver, not of the client, and they
    hold both ends of their task queue: when the client is killed (kill -9) nothing
    tells them. The watch ends them within a second of the client's end.
    """
    global _KNOWN
    _KNOWN = known
    # Ctrl-C is the client's to handle (it stops the audit); a worker killed by it
    # would only print a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while True:
            time.sleep(1.0)
            try:
                os.kill(client_pid, 0)
            except ProcessLookupError:
                os._exit(0)
            except PermissionError:  # alive, another user's (the pid was reused)
                pass

    threading.Thread(target=watch, name="earmark-audit-watch", daemon=True).start()


def _worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def sha256_of(path: str) -> str:
    """The SHA-256 of a file's bytes, hex."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_HASH_CHUNK_BYTES):
            h.update(chunk)
    return h.hexdigest()


def _failure(exc: BaseException) -> str:
    from earmark.engine.files import AudioFileError

    if isinstance(exc, AudioFileError):
        return exc.cause
    if isinstance(exc, OSError):
        return _cause(exc)
    if isinstance(exc, EarmarkError | ValueError):
        return " ".join(str(exc).split())
    return " ".join(f"internal error: {type(exc).__name__}: {exc}".split())


def audit_file(task: FileTask, profile: Any, known: frozenset[str] | None = None) -> dict:
    """Hash and analyse one file; the catalogue row as a dict (never raises for a bad file).

    ``profile`` is a :class:`~earmark.meters.profile.Profile` (or a name); ``known`` the
    content hashes to skip (None: those the local pool's initializer set). A skipped
    file's row has ``skipped`` true and no readings.
    """
    from earmark.offline.analysis import analyze
    from earmark.profiles import resolve_profile

    started = time.perf_counter()
    prof = resolve_profile(profile)
    row: dict[str, Any] = {
        "kind": "file",
        "path": task.path,
        "profile": prof.name,
        "release_date": task.release_date,
        "size_bytes": task.size_bytes,
        "mtime_ns": task.mtime_ns,
        "worker": _worker(),
    }
    try:
        st = os.stat(task.path)
        row["size_bytes"], row["mtime_ns"] = st.st_size, st.st_mtime_ns
        row["sha256"] = sha256_of(task.path)
    except OSError as exc:
        row["error"] = _cause(exc)
        return _finished(row, started)
    if row["sha256"] in (_KNOWN if known is None else known):
        row["skipped"] = True
        return _finished(row, started)
    try:
        a = analyze(task.path, profile=prof)
    except Exception as exc:  # a bad file is a row, never the end of the audit
        row["error"] = _failure(exc)
        return _finished(row, started)
    data = a.to_json_dict()
    for key in (m.key for m in MEASURES):
        row[key] = getattr(a, key)
    row.update(
        duration_s=a.duration_s,
        non_finite_samples=a.non_finite_samples,
        sample_rate=a.sample_rate,
        channels=a.channels,
        format=a.format,
        subtype=a.subtype,
        flags=data["flags"],
        flag_list=data["flags"],
        flag_codes=",".join(dict.fromkeys(str(f.get("code")) for f in data["flags"])) or None,
        problems=len(a.problems),
        data=data,
    )
    return _finished(row, started)


def audit_pair(task: PairTask, profile: Any, known: frozenset[str] = frozenset()) -> dict:
    """Diff one mix/master pair (``diff --json``'s object); the pair row as a dict.

    ``known``: pair keys already in the catalogue (skipped after hashing both files).
    A doubtful alignment, an unreadable file or anything else is the row's ``error``.
    """
    from earmark.offline.transform import diff
    from earmark.profiles import resolve_profile
    from earmark.store.catalog import pair_key

    started = time.perf_counter()
    prof = resolve_profile(profile)
    row: dict[str, Any] = {
        "kind": "pair",
        "mix_path": task.mix,
        "master_path": task.master,
        "profile": prof.name,
        "worker": _worker(),
    }
    try:
        row["mix_sha256"] = sha256_of(task.mix)
        row["master_sha256"] = sha256_of(task.master)
    except OSError as exc:
        row["error"] = f"{exc.filename}: {_cause(exc)}"
        return _finished(row, started)
    key = pair_key(row["mix_sha256"], row["master_sha256"], task.mix, task.master)
    if key in known:
        row["skipped"] = True
        return _finished(row, started)
    try:
        d = diff(task.mix, task.master, profile=prof).to_dict()
    except Exception as exc:
        row["error"] = _failure(exc)
        return _finished(row, started)
    from earmark.store.catalog import PAIR_DYNAMICS, PAIR_NUMBERS

    row.update({k: d.get(k) for k in PAIR_NUMBERS})
    row.update({k: d["dynamics"].get(k) for k in PAIR_DYNAMICS})
    row.update(
        compressed=d["dynamics"].get("compressed"),
        limited=d["dynamics"].get("limited"),
        eq_moves=d["eq_moves"],
        flags_introduced=[f.get("code") for f in d["flags"]["introduced"]],
        flags_removed=[f.get("code") for f in d["flags"]["removed"]],
        summary=d["summary"],
        data=d,
    )
    return _finished(row, started)


def _finished(row: dict, started: float) -> dict:
    row["seconds"] = time.perf_counter() - started
    row["analysed"] = time.time()
    return row


# -- where the tasks run ---------------------------------------------------------------------


@dataclass
class _Job:
    fn: Callable[..., dict]
    task: Any
    tries: int = 0


def _died_row(job: _Job, profile_name: str, cause: str) -> dict:
    """The error row of a task whose worker died :data:`MAX_TRIES` times."""
    if isinstance(job.task, PairTask):
        row = {"kind": "pair", "mix_path": job.task.mix, "master_path": job.task.master}
    else:
        row = {"kind": "file", "path": job.task.path, "release_date": job.task.release_date}
    row.update(profile=profile_name, error=cause, worker=None, seconds=None, analysed=time.time())
    return row


class _LocalRunner:
    """A process pool on this machine; rebuilt (and its unfinished tasks sent again)
    when one of its processes dies."""

    def __init__(self, workers: int, known: frozenset[str], profile: Any) -> None:
        self.workers = workers
        self.known = known
        self.profile = profile
        self.pool = self._pool()
        self.running: dict[Any, _Job] = {}

    def _pool(self) -> Any:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        # forkserver: workers forked from a clean process that has the meters imported
        # (fast to start, and never a fork of this process's threads).
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["earmark.offline.audit", "earmark.offline.analysis"])
        return ProcessPoolExecutor(
            self.workers,
            mp_context=ctx,
            initializer=_start_worker,
            initargs=(self.known, os.getpid()),
        )

    @property
    def capacity(self) -> int:
        return 2 * self.workers

    known_pairs: frozenset[str] = frozenset()
    retries_itself = False

    def submit(self, job: _Job) -> None:
        extra = (self.known_pairs,) if job.fn is audit_pair else ()
        self.running[self.pool.submit(job.fn, job.task, self.profile, *extra)] = job

    def finished(self) -> Iterator[tuple[_Job, dict | None, str | None]]:
        """(job, row, None) or (job, None, cause of a worker's death) as tasks end."""
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool

        done, _ = wait(list(self.running), return_when=FIRST_COMPLETED)
        broken = False
        for fut in done:
            job = self.running.pop(fut)
            try:
                yield job, fut.result(), None
            except BrokenProcessPool:
                broken = True
                yield job, None, "a worker process died while analysing it"
            except Exception as exc:  # pickling and the like: this task only
                yield job, None, _failure(exc)
        if broken:
            # Every unfinished task of a broken pool is lost: send them again.
            lost = list(self.running.values())
            self.running.clear()
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = self._pool()
            for job in lost:
                self.submit(job)

    def close(self, abort: bool = False) -> None:
        # Aborted (Ctrl-C, a catalogue that cannot be written): the tasks in flight are
        # left to finish unheard rather than waited for.
        self.pool.shutdown(wait=not abort, cancel_futures=True)


class _DaskRunner:
    """The same tasks on a Dask cluster; the scheduler reschedules the tasks of a worker
    that dies (``KilledWorker`` after its ``allowed-failures``)."""

    def __init__(self, client: Any, known: frozenset[str], profile: Any) -> None:
        from distributed import as_completed

        self.client = client
        # Scattered once to every worker, not sent with each task.
        self.known = client.scatter([known], broadcast=True, hash=False)[0]
        self.profile = client.scatter([profile], broadcast=True, hash=False)[0]
        self.known_pairs: Any = frozenset()
        self.running: dict[Any, _Job] = {}
        self.done = as_completed([], with_results=False)
        self._capacity, self._asked = 2, -math.inf

    @property
    def capacity(self) -> int:
        """Twice the cluster's threads (asked again every few seconds: it may grow)."""
        if time.monotonic() - self._asked > _ASK_CLUSTER_S:
            self._asked = time.monotonic()
            self._capacity = 2 * max(1, sum(self.client.nthreads().values()))
        return self._capacity

    retries_itself = True

    def submit(self, job: _Job) -> None:
        extra = self.known if job.fn is audit_file else self.known_pairs
        fut = self.client.submit(job.fn, job.task, self.profile, extra, pure=False)
        self.running[fut] = job
        self.done.add(fut)

    def finished(self) -> Iterator[tuple[_Job, dict | None, str | None]]:
        fut = next(self.done)
        job = self.running.pop(fut)
        try:
            yield job, fut.result(), None
        except Exception as exc:  # KilledWorker: the workers running it kept dying
            if type(exc).__name__ == "KilledWorker":
                yield job, None, "the worker processes running it died"
            else:
                yield job, None, _failure(exc)
        finally:
            fut.release()

    def close(self, abort: bool = False) -> None:
        for fut in self.running:
            fut.cancel()


def audit(
    paths: Sequence[str | os.PathLike[str]],
    *,
    out: str | os.PathLike[str] = "catalog.sqlite",
    profile: Any = None,
    pairs: Sequence[PairTask] | str | os.PathLike[str] | None = None,
    workers: int | None = None,
    client: Any = None,
    address: str | None = None,
    argv: Sequence[str] = (),
    on_start: Callable[[int], None] | None = None,
    on_result: Callable[[dict, bool], None] | None = None,
) -> AuditSummary:
    """Audit ``paths`` (folders, manifests, files) and ``pairs`` into the catalogue ``out``.

    Args:
        out: the SQLite catalogue; created, or resumed when it exists.
        profile: a profile name, file or :class:`~earmark.meters.profile.Profile`
            (default: the generic one); rows are kept per profile.
        pairs: mix/master pairs, or the CSV that lists them (:func:`read_pairs`).
        workers: local processes (default: all cores); ignored with a cluster.
        client: a ``dask.distributed.Client`` to run on; ``address``: its
            scheduler's (``tcp://host:port``), connected and closed here.
        on_start: called once with the number of tasks to run.
        on_result: called with each row as it is stored, and whether it was new.

    Returns:
        An :class:`AuditSummary`. Raises :class:`ManifestError` (a bad manifest),
        :class:`~earmark.store.schema.StoreError` (the catalogue cannot be written),
        :class:`~earmark.errors.PresetError` (a bad profile), OSError when the
        scheduler cannot be reached.
    """
    from earmark.profiles import resolve_profile
    from earmark.store.catalog import Catalog

    started = time.perf_counter()
    prof = resolve_profile(profile)
    tasks, warnings = collect(paths)
    pair_tasks = read_pairs(pairs) if isinstance(pairs, str | os.PathLike) else list(pairs or ())
    catalog = Catalog(out)  # refused before any cluster is reached
    own_client = None
    try:
        if client is None and address is not None:
            from distributed import Client

            own_client = client = Client(address)  # connect timeout: dask config
        where = client.scheduler.address if client is not None else None
        runs_on = f"dask:{where}" if where else f"local:{_workers(workers)}"
        summary = AuditSummary(
            str(out), runs_on, files=len(tasks), pairs=len(pair_tasks), warnings=warnings
        )
        audit_id = catalog.start_audit(runs_on, prof.name, argv)
        known, stats = catalog.done_keys(prof.name)
        todo = []
        for t in tasks:
            if (t.path, t.size_bytes, t.mtime_ns) in stats:
                summary.skipped += 1
            else:
                todo.append(_Job(audit_file, t))
        todo += [_Job(audit_pair, t) for t in pair_tasks]
        if on_start is not None:
            on_start(len(todo))
        if client is not None:
            runner: Any = _DaskRunner(client, known, prof)
            runner.known_pairs = client.scatter(
                [catalog.done_pairs(prof.name)], broadcast=True, hash=False
            )[0]
        else:
            runner = _LocalRunner(_workers(workers), known, prof)
            runner.known_pairs = catalog.done_pairs(prof.name)
        try:
            _drive(runner, todo, catalog, audit_id, prof.name, summary, on_result)
        except BaseException:
            runner.close(abort=True)
            raise
        runner.close()
        catalog.end_audit(audit_id)
    finally:
        catalog.close()
        if own_client is not None:
            with contextlib.suppress(Exception):
                own_client.close()
    summary.seconds = time.perf_counter() - started
    return summary


def _workers(workers: int | None) -> int:
    if workers is not None:
        return max(1, int(workers))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _drive(
    runner: Any,
    todo: list[_Job],
    catalog: Any,
    audit_id: int,
    profile_name: str,
    summary: AuditSummary,
    on_result: Callable[[dict, bool], None] | None,
) -> None:
    """Keep the runner's window full; store every result as it comes (one commit each)."""
    queue = list(reversed(todo))
    while queue or runner.running:
        while queue and len(runner.running) < runner.capacity:
            runner.submit(queue.pop())
        for job, row, died in runner.finished():
            if row is None:
                job.tries += 1
                if runner.retries_itself:  # Dask: its scheduler already tried again
                    row = _died_row(job, profile_name, str(died))
                elif job.tries < MAX_TRIES:
                    queue.append(job)
                    continue
                else:
                    row = _died_row(job, profile_name, f"{died}; given up after {job.tries} tries")
            new = _store(row, catalog, audit_id, summary)
            if on_result is not None:
                on_result(row, new)


def _store(row: dict, catalog: Any, audit_id: int, summary: AuditSummary) -> bool:
    row["audit_id"] = audit_id
    pair = row.get("kind") == "pair"
    if row.get("skipped"):
        if pair:
            summary.pairs_skipped += 1
        else:
            summary.skipped += 1
        return False
    new = catalog.add_pair(row) if pair else catalog.add_file(row)
    if pair:
        if not new:
            summary.pairs_skipped += 1
        elif row.get("error"):
            summary.pair_errors += 1
            summary.error_rows.append((f"{row['mix_path']}, {row['master_path']}", row["error"]))
        else:
            summary.pairs_diffed += 1
    elif not new:
        summary.skipped += 1  # the same content under another path
    elif row.get("error"):
        summary.errors += 1
        summary.error_rows.append((row["path"], row["error"]))
    else:
        summary.analysed += 1
        summary.audio_seconds += float(row.get("duration_s") or 0.0)
    return new
