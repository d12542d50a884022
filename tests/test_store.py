"""The snapshot store on real SQLite files: durability, failures, concurrency, migrations.

Snapshot documents come from real engine runs (tests/snapdocs.py). Faults are
real: processes killed with SIGKILL, a tmpfs mounted read-only or filled to the
last byte, another connection holding the write lock.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from earmark.engine.sources import Player
from earmark.live.recorder import SessionRecorder
from earmark.live.session import LiveSession
from earmark.store import (
    KEY_COLUMNS,
    SCHEMA_VERSION,
    SnapshotPendingError,
    Store,
    StoreError,
    StoreWriter,
    connect,
    dumps,
    snapshots,
)

import snapdocs
from snapdocs import compressor, doc_for, gain, state_for

HERE = Path(__file__).resolve().parent


def wait_for(predicate, timeout_s: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def log_row(t_s: float, path: int = 1) -> tuple:
    return (time.time(), t_s, path, -20.0, -19.5, -19.0, -1.5, 9.5, 4.0, 12.0, 0.8)


# -- real mounts --------------------------------------------------------------------------


@contextlib.contextmanager
def tmpfs(folder: Path, size: str):
    """A tmpfs of ``size`` mounted at ``folder`` (we run as root; CI does too)."""
    folder.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs for the fault ({proc.stderr.strip()}); run as root")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def remount(folder: Path, mode: str) -> None:
    proc = subprocess.run(
        ["mount", "-o", f"remount,{mode}", str(folder)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr


# -- what is stored is what was measured -----------------------------------------------------


def test_a_snapshot_stores_every_reading_of_every_path_exactly(tmp_path):
    state = state_for(gain(6.0))
    doc = doc_for(gain(6.0), label="plus six")
    writer = StoreWriter(tmp_path / "earmark.sqlite")
    writer.start()
    writer.begin_session("exact")
    snapshot_id = writer.take_snapshot(doc)
    writer.stop()
    with Store(tmp_path / "earmark.sqlite") as store:
        back = store.snapshot(snapshot_id)
        keys = store.snapshot_paths([snapshot_id])[snapshot_id]
    for i, path in enumerate(state.paths):
        assert snapshots.readings_from_dict(back["paths"][i]["readings"]) == path.readings
    # The key columns are the readings themselves (the chain path is 6 dB up on the dry one).
    assert keys[1]["integrated_lufs"] == state.paths[1].readings.integrated_lufs
    assert keys[1]["integrated_lufs"] - keys[0]["integrated_lufs"] == pytest.approx(6.0, abs=0.01)
    for column in KEY_COLUMNS:
        assert keys[1][column] == snapshots._value(back["paths"][1], column)
    assert back["label"] == "plus six" and back["session"] == "exact"
    assert back["paths"][1]["chain"]["plugins"][0]["parameters"] == {"gain_db": 6.0}
    assert len(back["paths"][1]["history"]["short_term_lufs"]) == 80  # 8 s at 10 Hz (< 30 s)


def test_the_database_runs_in_wal_mode_with_full_sync(tmp_path):
    conn = connect(tmp_path / "earmark.sqlite")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000


# -- kill -9 -------------------------------------------------------------------------------

CHILD = r"""
import json, sys, time
from earmark.store import StoreWriter
db, docfile, prefix = sys.argv[1:4]
doc = json.load(open(docfile))
w = StoreWriter(db, batch_s=0.002, retry_s=0.02)
w.start()
w.begin_session(prefix)
n = 0
while True:
    w.log([(time.time(), n * 0.1, p, -20.0, -19.0, -18.0, -1.0, 8.0, 5.0, 9.0, 0.5)
           for p in range(3)])
    if n % 2 == 0:
        doc["label"] = f"{prefix}-{n}"
        i = w.take_snapshot(doc, timeout=60)
        print(i, doc["label"], flush=True)  # the acknowledgement, after the commit
    else:
        time.sleep(0.001)
    n += 1
"""


def test_kill_9_while_writing_never_loses_an_acknowledged_snapshot(tmp_path):
    db = tmp_path / "earmark.sqlite"
    docfile = tmp_path / "doc.json"
    doc = doc_for(compressor(4.0))
    docfile.write_text(json.dumps(doc))
    rng = random.Random(5)
    acked: dict[int, str] = {}
    rounds = 20
    for k in range(rounds):
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(db), str(docfile), f"round{k}"],
            stdout=subprocess.PIPE,
            text=True,
        )
        out = proc.stdout.readline()  # it is writing
        time.sleep(rng.uniform(0.0, 0.4))
        os.kill(proc.pid, signal.SIGKILL)
        out += proc.stdout.read()
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
        # Only whole lines are acknowledgements: the kill can cut the last one mid-write.
        for line in out.split("\n")[:-1]:
            if line.strip():
                i, label = line.split()
                acked[int(i)] = label
        conn = sqlite3.connect(db)
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = dict(conn.execute("SELECT id, label FROM snapshots").fetchall())
        conn.close()
        missing = {i: lab for i, lab in acked.items() if stored.get(i) != lab}
        assert not missing, f"round {k}: acknowledged but not stored: {missing}"
    assert len(acked) >= rounds  # every round acknowledged at least one
    print(f"{len(acked)} acknowledged snapshots over {rounds} kills")
    with Store(db) as store:
        last = store.snapshot(max(acked))
        assert len(store.sessions()) == rounds
        assert len(store.log(store.sessions()[0]["id"])) > 0
    want = state_for(compressor(4.0)).paths[1].readings
    assert snapshots.readings_from_dict(last["paths"][1]["readings"]) == want


# -- faults: read-only, locked, full ------------------------------------------------------------


@pytest.mark.parametrize("existing", [False, True], ids=["new-database", "existing-database"])
def test_a_read_only_folder_is_reported_once_and_snapshots_wait_in_memory(tmp_path, existing):
    with tmpfs(tmp_path / "ro", "8m") as folder:
        db = folder / "earmark.sqlite"
        if existing:
            w = StoreWriter(db)
            w.start()
            w.begin_session("before")
            first = w.take_snapshot(doc_for(gain(0.0), label="before"))
            w.stop()
        remount(folder, "ro")
        messages: list[str] = []
        writer = StoreWriter(db, on_status=messages.append, retry_s=0.05)
        writer.start()
        writer.begin_session("read-only")
        for n in range(3):
            with pytest.raises(SnapshotPendingError, match="kept in memory"):
                writer.take_snapshot(doc_for(gain(6.0), label=f"ro-{n}"), timeout=0.3)
        for n in range(50):
            writer.log([log_row(n / 10)])
        wait_for(lambda: writer.error is not None, what="the write error")
        time.sleep(0.3)  # several retries fail meanwhile
        failures = [m for m in messages if m.startswith("cannot write")]
        assert len(failures) == 1, messages  # once, not per row or per retry
        assert "read-only" in failures[0] and str(db) in failures[0]
        assert writer.pending_snapshots == 3
        remount(folder, "rw")
        assert writer.flush(timeout=30)
        assert writer.pending_snapshots == 0 and writer.error is None
        assert any("again" in m for m in messages)
        writer.stop()
        with Store(db) as store:
            labels = [r["label"] for r in store.snapshots()]
            session = store.sessions(name="read-only")[0]
            rows = store.log(session["id"])
    assert labels == (["before"] if existing else []) + ["ro-0", "ro-1", "ro-2"]
    assert [r["t_s"] for r in rows] == pytest.approx([n / 10 for n in range(50)])
    if existing:
        assert first == 1


def test_a_locked_database_keeps_snapshots_until_the_lock_is_released(tmp_path):
    db = tmp_path / "earmark.sqlite"
    messages: list[str] = []
    writer = StoreWriter(db, on_status=messages.append, retry_s=0.05)
    writer.start()
    writer.begin_session("locked")
    first = writer.take_snapshot(doc_for(gain(0.0), label="free"))
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        for n in range(2):
            with pytest.raises(SnapshotPendingError):
                writer.take_snapshot(doc_for(gain(6.0), label=f"locked-{n}"), timeout=0.2)
        writer.log([log_row(0.1 * n) for n in range(20)])
        wait_for(lambda: writer.error is not None, what="the lock to be noticed")
        # Other readers still read while the writer waits (WAL).
        reader = sqlite3.connect(db)
        assert reader.execute("SELECT label FROM snapshots").fetchall() == [("free",)]
        reader.close()
        assert writer.pending_snapshots == 2
    finally:
        other.execute("COMMIT")
        other.close()
    assert writer.flush(timeout=30)
    writer.stop()
    failures = [m for m in messages if m.startswith("cannot write")]
    assert len(failures) == 1 and "locked by another program" in failures[0]
    with Store(db) as store:
        rows = store.snapshots()
    assert [(r["id"], r["label"]) for r in rows] == [
        (first, "free"),
        (first + 1, "locked-0"),
        (first + 2, "locked-1"),
    ]


def test_a_full_disk_is_reported_and_pending_snapshots_are_written_after_space_is_freed(tmp_path):
    with tmpfs(tmp_path / "small", "256k") as folder:
        db = folder / "earmark.sqlite"
        ballast = folder / "ballast"
        ballast.write_bytes(b"\0" * 64 * 1024)  # freed later, as an engineer clears the disk
        messages: list[str] = []
        writer = StoreWriter(db, on_status=messages.append, retry_s=0.05)
        writer.start()
        writer.begin_session("full")
        doc = doc_for(compressor(2.0))
        acked: list[int] = []
        pending: list[str] = []
        for n in range(40):
            doc["label"] = f"full-{n}"
            try:
                acked.append(writer.take_snapshot(doc, timeout=2.0))
            except SnapshotPendingError as exc:
                pending.append(doc["label"])
                assert "disk is full" in str(exc)
                if len(pending) == 3:
                    break
        assert acked and len(pending) == 3, (acked, messages)
        print(f"{len(acked)} snapshots fitted before the disk was full")
        failures = [m for m in messages if m.startswith("cannot write")]
        assert len(failures) == 1 and "the disk is full" in failures[0]
        ballast.unlink()
        assert writer.flush(timeout=30)
        writer.stop()
        conn = sqlite3.connect(db)
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        labels = [r[0] for r in conn.execute("SELECT label FROM snapshots ORDER BY id")]
        conn.close()
    assert labels == [f"full-{n}" for n in range(len(acked))] + pending


def test_what_cannot_be_written_at_stop_is_rescued_and_stored_by_the_next_writer(tmp_path):
    db = tmp_path / "earmark.sqlite"
    rescue = tmp_path / "rescue"
    messages: list[str] = []
    writer = StoreWriter(db, on_status=messages.append, retry_s=0.05, rescue_dir=rescue)
    writer.start()
    writer.begin_session("rescued")
    writer.take_snapshot(doc_for(gain(0.0), label="stored"))
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    with pytest.raises(SnapshotPendingError):
        writer.take_snapshot(doc_for(gain(6.0), label="pending"), timeout=0.2)
    writer.log([log_row(1.0), log_row(1.1)])
    left = writer.stop(timeout=10)
    other.execute("COMMIT")
    other.close()
    assert left >= 2 and len(writer.rescued) == 1 and writer.rescued[0].parent == rescue
    assert any(str(writer.rescued[0]) in m for m in messages)
    nxt = StoreWriter(db, rescue_dir=rescue)
    nxt.start()
    nxt.begin_session("next")
    nxt.take_snapshot(doc_for(gain(3.0), label="next"))
    nxt.stop()
    assert not list(rescue.glob("*.jsonl"))
    with Store(db) as store:
        rows = store.snapshots()
        first = store.sessions(name="rescued")[0]
        log = store.log(first["id"])
    assert [(r["label"], r["session"]) for r in rows] == [
        ("stored", "rescued"),
        ("pending", "rescued"),  # back in its own session
        ("next", "next"),
    ]
    assert [r["t_s"] for r in log] == [1.0, 1.1]


# -- concurrent readers ------------------------------------------------------------------------

READER = r"""
import sys, time
from pathlib import Path
from earmark.store import Store
db, done = sys.argv[1], Path(sys.argv[2])
store = Store(db)
while True:
    finished = done.exists()
    rows = store.snapshots()
    if rows:
        doc = store.snapshot(rows[-1]["id"])
        assert doc["paths"][1]["readings"]["integrated_lufs"] is not None
    print(len(rows), flush=True)
    if finished:
        break
    time.sleep(0.005)
"""


def test_another_process_reads_while_the_writer_writes(tmp_path):
    db = tmp_path / "earmark.sqlite"
    done = tmp_path / "done"
    writer = StoreWriter(db, batch_s=0.01)
    writer.start()
    writer.begin_session("concurrent")
    writer.take_snapshot(doc_for(gain(0.0), label="first"))
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(db), str(done)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    doc = doc_for(gain(6.0))
    for n in range(40):
        doc["label"] = f"n{n}"
        writer.take_snapshot(doc)
        writer.log([log_row(n / 10, p) for p in range(2)])
    writer.stop()
    done.touch()
    out, err = reader.communicate(timeout=60)
    assert reader.returncode == 0, err
    counts = [int(x) for x in out.split()]
    assert counts == sorted(counts)  # never a step back, never a torn read
    assert counts[-1] == 41


# -- migrations --------------------------------------------------------------------------------


def test_a_version_1_database_migrates_forward_keeping_everything(tmp_path):
    db = tmp_path / "earmark.sqlite"
    old = connect(db, migrate_to=1)
    assert old.execute("PRAGMA user_version").fetchone()[0] == 1
    doc = doc_for(gain(6.0), label="from v1")
    flag = {"code": "true_peak_over", "severity": "problem", "start_s": 2.0, "end_s": None,
            "value": -0.2, "threshold": -1.0, "unit": "dBTP", "band_hz": None, "path": 1,
            "message": "true peak reached -0.2 dBTP, above the -1 dBTP ceiling"}  # fmt: skip
    with old:
        old.execute("BEGIN")
        old.execute("INSERT INTO sessions (id, name, kind, started) VALUES (1, 'v1', 'run', 1.0)")
        old.execute(
            "INSERT INTO snapshots (session_id, time, label, note, data) VALUES (1, ?, ?, ?, ?)",
            (doc["time"], doc["label"], None, dumps(doc)),
        )
        old.execute(
            "INSERT INTO session_log (session_id, time, t_s, path, momentary_lufs, "
            "short_term_lufs, integrated_lufs, true_peak_dbtp, psr_db) "
            "VALUES (1, 2.0, 0.1, 1, -20, -20, -20, -3, 9)"
        )
        old.execute(
            "INSERT INTO flags (session_id, time, path, code, severity, start_s, end_s, message, "
            "data) VALUES (1, 2.0, 1, ?, ?, 2.0, NULL, ?, ?)",
            (flag["code"], flag["severity"], flag["message"], dumps(flag)),
        )
        old.execute("COMMIT")
    old.close()

    with Store(db) as store:
        versions = store.conn.execute("SELECT version FROM schema_migrations").fetchall()
        assert [v[0] for v in versions] == [1, 2, 3, 4]
        assert store.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
        rows = store.snapshots()
        keys = store.snapshot_paths([rows[0]["id"]])[rows[0]["id"]]
        log = store.log(1)
    # The v2 key columns were filled from the v1 JSON documents.
    want = state_for(gain(6.0)).paths[1].readings
    assert rows[0]["label"] == "from v1" and rows[0]["integrated_lufs"] == want.integrated_lufs
    assert rows[0]["path_name"] == "chain" and rows[0]["role"] == "A"
    # v3 added the sharpness column and filled it from the same documents.
    assert want.sharpness_acum is not None
    assert keys[1]["sharpness_acum"] == pytest.approx(want.sharpness_acum, abs=1e-9)
    assert log[0]["psr_db"] == 9 and log[0]["loudness_range_lu"] is None
    # The old flag got its v2 key: a later writer updates it in place as it closes.
    writer = StoreWriter(db)
    writer.start()
    writer.take_snapshot(doc_for(gain(0.0)))  # opens the connection
    writer.session_id = 1
    writer.flag({**flag, "end_s": 7.5})
    assert writer.flush()
    writer.stop()
    with Store(db) as store:
        flags = store.flags(1)
    assert len(flags) == 1 and flags[0]["end_s"] == 7.5


def test_a_database_from_a_newer_earmark_is_refused_not_misread(tmp_path):
    db = tmp_path / "earmark.sqlite"
    connect(db).close()
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(StoreError, match="schema version 99 is newer"):
        Store(db)


# -- the session log service ---------------------------------------------------------------------


def test_the_session_log_records_meters_markers_flags_and_snapshots(tmp_path):
    engine = snapdocs.chain_engine(gain(6.0), seconds=0)
    db = tmp_path / "earmark.sqlite"
    session = LiveSession(engine, name="logged", tick_hz=20)
    recorder = SessionRecorder(StoreWriter(db, batch_s=0.05), kind="test").attach(session)
    from earmark.engine.drivers import render

    with session:
        for _ in range(6):
            render(engine, 0.5, 512)
            time.sleep(0.12)  # let the session thread see each half second
        marker = session.call("marker", "second chorus")
        tp = session.state().paths[1].readings.true_peak_dbtp
        flag = {"code": "true_peak_over", "severity": "problem", "start_s": 1.0, "end_s": None,
                "value": tp, "threshold": tp - 1.0, "unit": "dBTP", "band_hz": None, "path": 1,
                "message": f"true peak {tp:.1f} dBTP"}  # fmt: skip
        session.flags.append(flag)
        time.sleep(0.3)
        session.flags[0] = {**flag, "end_s": 2.5}  # the flag closes
        time.sleep(0.3)
        final = session.state()
        snapshot_id = session.call("snapshot", "v1", "first pass")
    assert recorder.rows_logged > 0
    with Store(db) as store:
        (row,) = store.sessions(name="logged")
        log = store.log(row["id"], path=1)
        markers = store.markers(row["id"])
        flags = store.flags(row["id"])
        doc = store.snapshot(snapshot_id)
    assert row["kind"] == "test" and row["ended"] is not None and row["sample_rate"] == 48000
    assert [r["t_s"] for r in log] == sorted(r["t_s"] for r in log)
    assert log[-1]["t_s"] == pytest.approx(3.0, abs=1e-6)
    assert log[-1]["integrated_lufs"] == final.paths[1].readings.integrated_lufs
    assert [(m["label"], m["t_s"]) for m in markers] == [("second chorus", marker["t_s"])]
    assert len(flags) == 1 and flags[0]["end_s"] == 2.5
    assert doc["label"] == "v1" and doc["note"] == "first pass" and doc["session"] == "logged"
    assert doc["flags"][0]["end_s"] == 2.5
    for i, path in enumerate(final.paths):
        got = snapshots.readings_from_dict(doc["paths"][i]["readings"])
        assert got.integrated_lufs == path.readings.integrated_lufs


def test_audio_keeps_streaming_and_logging_while_the_database_is_locked(tmp_path):
    from earmark.engine.drivers import NullDriver

    x = snapdocs.material()
    engine = snapdocs.chain_engine(gain(0.0), seconds=0)
    engine.paths[0].source = Player(np.tile(x, (8, 1)), "long")
    db = tmp_path / "earmark.sqlite"
    messages: list[str] = []
    driver = NullDriver(engine, blocksize=256)
    session = LiveSession(engine, driver, name="streaming", tick_hz=10)
    SessionRecorder(StoreWriter(db, on_status=messages.append, retry_s=0.05)).attach(session)
    driver.start()
    session.start()
    try:
        wait_for(lambda: db.exists(), what="the database")
        first = session.call("snapshot", "before")
        other = sqlite3.connect(db, isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        locked_at = time.time()
        blocks = engine.callbacks
        with pytest.raises(SnapshotPendingError):
            session.call("snapshot", "during", timeout=10)
        wait_for(lambda: engine.callbacks > blocks + 100, what="audio to go on")
        time.sleep(0.5)
        other.execute("COMMIT")
        other.close()
        released_at = time.time()
        time.sleep(0.3)
    finally:
        session.stop()
    with Store(db) as store:
        rows = store.snapshots()
        (s,) = store.sessions(name="streaming")
        log = store.log(s["id"], path=0)
    assert [r["label"] for r in rows] == ["before", "during", "session end"]
    assert rows[0]["id"] == first
    assert any(locked_at < r["time"] < released_at for r in log)  # kept, then written
    assert sum(m.startswith("cannot write") for m in messages) == 1


def test_detector_flags_and_the_profile_travel_with_the_log_and_the_snapshot(tmp_path):
    from earmark.meters.detectors import detect
    from earmark.profiles import load_profile

    engine = snapdocs.chain_engine(gain(30.0))  # +30 dB: true peaks far above 0 dBTP
    profile = load_profile("pop")
    flags = detect(engine.paths[1].bank.history(), profile, snapdocs.FS, 2)
    assert "true_peak_over" in {f.code for f in flags}
    db = tmp_path / "earmark.sqlite"
    session = LiveSession(engine, name="flagged", profile=profile)
    SessionRecorder(StoreWriter(db, batch_s=0.05), end_snapshot=False).attach(session)
    with session:
        session.flags.extend(flags)  # detector Flag objects, as a detector service adds them
        time.sleep(0.3)
        snapshot_id = session.call("snapshot", "hot")
    want = [f.to_dict() for f in flags]
    with Store(db) as store:
        (row,) = store.sessions(name="flagged")
        logged = store.flags(row["id"])
        doc = store.snapshot(snapshot_id)
    assert sorted(logged, key=json.dumps) == sorted(want, key=json.dumps)
    assert doc["flags"] == want
    assert doc["profile"]["name"] == profile.name == "pop"
    assert json.loads(row["meta"])["profile"]["name"] == "pop"


def test_a_flag_growing_live_is_one_row_that_ends_with_every_occurrence(tmp_path):
    from earmark.meters import MeterBank
    from earmark.meters.detectors import Detector
    from earmark.profiles import load_profile

    import material

    x = material.with_bursts(material.SEVEN_PLACES)  # clips at 7 places, 23.0-59.2 s
    engine = snapdocs.chain_engine(gain(0.0), seconds=0)
    db = tmp_path / "earmark.sqlite"
    session = LiveSession(engine, name="growing", tick_hz=50)
    SessionRecorder(StoreWriter(db, batch_s=0.02), end_snapshot=False).attach(session)
    bank, det = MeterBank(2, snapdocs.FS), Detector(load_profile("default"), snapdocs.FS, 2)
    written = []  # the clipping flag's occurrence counts, as the session showed them
    with session:
        for i in range(0, len(x), snapdocs.FS):  # a second of audio per step
            bank.process(x[i : i + snapdocs.FS])
            det.update(bank.history(since=det.next_row))
            session.flags = [{**f.to_dict(), "path": 1} for f in det.flags()]
            written += [len(f["occurrences"]) for f in session.flags if f["code"] == "clipping"]
            time.sleep(0.06)  # the recorder's tick sees each step
        session.flags = [{**f.to_dict(), "path": 1} for f in det.finish()]
        time.sleep(0.3)
    with Store(db) as store:
        (row,) = store.sessions(name="growing")
        logged = store.flags(row["id"])
    assert sorted(set(written)) == list(range(1, 8))  # it grew a place at a time...
    (clip,) = [f for f in logged if f["code"] == "clipping"]  # ...in one row
    assert clip["start_s"] == 23.0 and clip["end_s"] == 59.2
    assert [o["at_s"] for o in clip["occurrences"]] == [s for s, _ in material.SEVEN_PLACES]
