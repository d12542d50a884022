"""The state frame: the sequence-counter protocol across real processes, staleness, commands.

Writers and readers run in separate Python processes (``python -c``), on a
real POSIX shared-memory segment and a real Unix socket, as the session and
the dashboard do.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import threading
import time
from multiprocessing import shared_memory

import numpy as np
import pytest

from earmark.ui.stateframe import (
    PATH_FIELDS,
    CommandInbox,
    CommandSender,
    Layout,
    StateFrameError,
    StateFrameReader,
    StateFrameWriter,
    header_index,
)

SMALL = Layout(max_paths=2, history_points=600, gonio_points=256, json_capacity=1 << 14)


def python(code: str, *args: str, **kw) -> subprocess.Popen:
    """A child Python running ``code`` (stdout piped, line-buffered text)."""
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        stdout=subprocess.PIPE,
        stdin=subprocess.PIPE,
        text=True,
        bufsize=1,
        **kw,
    )


def unlink_quietly(name: str) -> None:
    try:
        seg = shared_memory.SharedMemory(name=name)
    except FileNotFoundError:
        return
    seg.close()
    seg.unlink()


# A writer that fills every numeric field of frame k with the value k (and, every
# fifth frame, the JSON area with {"k": k}), as fast as it can: a reader that ever
# sees two different values in one frame has seen a torn write.
FAST_WRITER = """
    import json, select, sys, time
    from earmark.ui.stateframe import Layout, StateFrameWriter
    w = StateFrameWriter(Layout())
    with w.writing():
        w.header["n_paths"] = w.layout.max_paths
    print(w.name, flush=True)
    end = time.monotonic() + float(sys.argv[1])
    k = 0
    while time.monotonic() < end:  # or until the reader says stop (a line on stdin)
        if k % 200 == 0 and select.select([sys.stdin], [], [], 0)[0]:
            break
        k += 1
        with w.writing():
            w.header["trim_db"] = k
            for name in ("v", "band_hz", "spectrum_long_db", "spectrum_short_db", "history", "gonio"):
                w.paths[name][...] = k
            if k % 5 == 0:
                w.set_json(json.dumps({"k": k, "pad": "x" * 3000}).encode())
        time.sleep(0.0002)  # thousands of frames a second, yet readers get a turn
    print(k, flush=True)
    sys.stdin.readline()
    w.close()
"""


def consistent(frame) -> bool:
    """Every value of a FAST_WRITER frame agrees with its header."""
    k = frame.header["trim_db"]
    if k is None:
        return True  # nothing written yet
    for p in frame.paths:
        if any(v != k for v in p.values.values()):
            return False
        for arr in (p.band_hz, p.spectrum_long_db, p.spectrum_short_db, p.gonio):
            if arr.size and not np.all(arr == k):
                return False
        for curve in p.history.values():
            if curve.size and not np.all(curve == k):
                return False
    if frame.info:
        return frame.info["k"] == k - k % 5
    return True


def test_torn_frames_never_reach_a_reader_under_a_fast_writer():
    writer = python(FAST_WRITER, "12.0")
    name = writer.stdout.readline().strip()
    try:
        reader = StateFrameReader(name)
        # The same copy without the protocol: proof that this writer does tear frames.
        naive_torn = naive = 0
        reads = torn = 0
        seqs = set()
        # At least 2.5 s; on a loaded machine, until the race was seen both ways (a retried
        # copy, a naive copy torn), for up to 10 s: the writer runs 12 s.
        start = time.monotonic()
        while (elapsed := time.monotonic() - start) < 2.5 or (
            elapsed < 10.0 and not (reader.retries and naive_torn)
        ):
            frame = reader.read()
            if frame is None:  # not one whole copy yet: the writer never pauses
                continue
            reads += 1
            seqs.add(frame.seq)
            torn += not consistent(frame)
            # The mapped frame itself, copied here without looking at the counter.
            live = reader._live
            k_header = float(live.hv[header_index("trim_db")])
            values = np.array(live.paths["v"][:, 0])
            naive += 1
            naive_torn += bool(np.any(values != k_header))
        frames_written = int(writer.communicate("\n", timeout=10)[0].strip())
        reader.close()
    finally:
        if writer.poll() is None:
            writer.kill()
        unlink_quietly(name)
    assert frames_written > 1000
    assert reads > 200 and len(seqs) > 100
    assert torn == 0
    assert reader.retries > 0  # the writer really was caught mid-write, and the copy retried
    assert naive_torn > 0  # without the counter the same reads do tear


# The same writer as a reader on a weakly ordered CPU (arm64) may see it: its stores
# land while the counter is even and unchanged (here they really are made outside the
# counter's bracket), and only the update that follows seals them. The counter cannot
# tell such a copy is torn; the checksum must.
UNORDERED_WRITER = """
    import json, sys, time
    from earmark.ui.stateframe import Layout, StateFrameWriter
    w = StateFrameWriter(Layout(max_paths=2, history_points=600, gonio_points=256))
    with w.writing():
        w.header["n_paths"] = w.layout.max_paths
    print(w.name, flush=True)
    end = time.monotonic() + float(sys.argv[1])
    k = 0
    while time.monotonic() < end:
        k += 1
        w.header["trim_db"] = k  # no begin(): the counter stays even throughout
        for name in ("v", "band_hz", "spectrum_long_db", "spectrum_short_db", "history", "gonio"):
            w.paths[name][...] = k
        if k % 5 == 0:
            w.set_json(json.dumps({"k": k, "pad": "x" * 3000}).encode())
        w.heartbeat()  # seals what is there now
        time.sleep(0.0005)
    print(k, flush=True)
    sys.stdin.readline()
    w.close()
"""


def test_the_checksum_catches_torn_copies_the_counter_cannot_see():
    writer = python(UNORDERED_WRITER, "3.0")
    name = writer.stdout.readline().strip()
    try:
        reader = StateFrameReader(name)
        reads = torn = 0
        seqs = set()
        end = time.monotonic() + 2.5
        while time.monotonic() < end:
            frame = reader.read()
            if frame is None:
                continue
            reads += 1
            seqs.add(frame.seq)
            torn += not consistent(frame)
        frames_written = int(writer.communicate("\n", timeout=10)[0].strip())
        reader.close()
    finally:
        if writer.poll() is None:
            writer.kill()
        unlink_quietly(name)
    assert frames_written > 1000
    assert reads > 200 and len(seqs) > 100
    assert torn == 0
    assert reader.torn > 0  # copies with an even, unchanged counter were torn, and refused


def test_a_reader_in_another_process_sees_the_values_the_writer_wrote():
    w = StateFrameWriter(SMALL)
    try:
        with w.writing():
            w.header["n_paths"] = 2
            w.header["xruns"] = 7
            w.header["audible"] = 1
            w.path_values(1)[PATH_FIELDS.index("short_term_lufs")] = -14.25
            w.path_values(1)[PATH_FIELDS.index("integrated_lufs")] = np.nan  # None
            w.paths[1]["spectrum_short_db"][:3] = (-30.0, -20.0, -10.0)
            w.path_values(1)[PATH_FIELDS.index("n_bands")] = 3
            w.set_json(json.dumps({"paths": [{"name": "dry"}, {"name": "chain"}]}).encode())
        child = python(
            """
            import json, sys
            from earmark.ui.stateframe import StateFrameReader
            f = StateFrameReader(sys.argv[1]).read()
            p = f.paths[1]
            print(json.dumps([f.header["xruns"], f.header["audible"], p["short_term_lufs"],
                              p["integrated_lufs"], p.spectrum_short_db.tolist(), f.info,
                              f.stale]))
            """,
            w.name,
        )
        # The writer keeps publishing, as a live session does ten times a second: a child
        # that takes longer than the staleness limit to start (a loaded machine) still
        # reads a fresh frame.
        done = threading.Event()

        def publish() -> None:
            while not done.wait(0.05):
                with w.writing():
                    w.header["xruns"] = 7

        beat = threading.Thread(target=publish, daemon=True)
        beat.start()
        try:
            out, _ = child.communicate(timeout=30)
        finally:
            done.set()
            beat.join()
    finally:
        w.close()
    xruns, audible, st, integrated, spectrum, info, stale = json.loads(out)
    assert (xruns, audible, st, integrated) == (7.0, 1.0, -14.25, None)
    assert spectrum == [-30.0, -20.0, -10.0]
    assert info["paths"][1]["name"] == "chain"
    assert stale is False


def test_history_rows_come_back_in_order_across_the_ring():
    w = StateFrameWriter(SMALL)
    size = SMALL.history_points
    try:
        rows = size + 150  # the ring has wrapped
        r = np.arange(rows, dtype=np.float64)
        slots = r.astype(int) % size
        with w.writing():
            w.header["n_paths"] = 1
            w.paths[0]["history"][1, slots] = r  # short-term curve: the row number
            w.path_values(0)[PATH_FIELDS.index("history_rows")] = rows
            w.path_values(0)[PATH_FIELDS.index("history_row_s")] = 0.1
        frame = StateFrameReader(w.name).read()
    finally:
        w.close()
    p = frame.paths[0]
    assert p.history["short_term_lufs"].tolist() == list(range(rows - size, rows))
    assert p.history_t_s[0] == pytest.approx((rows - size + 1) * 0.1)
    assert p.history_t_s[-1] == pytest.approx(rows * 0.1)


def test_a_frame_is_stale_after_half_a_second_without_writes_and_fresh_again_after():
    w = StateFrameWriter(SMALL)
    try:
        w.heartbeat()
        reader = StateFrameReader(w.name, stale_after_s=0.5)
        assert reader.read().stale is False
        time.sleep(0.3)
        assert reader.read().stale is False
        time.sleep(0.35)
        frame = reader.read()
        assert frame.stale is True
        assert frame.stale_reason.startswith("no update for 0.")
        w.heartbeat()
        assert reader.read().stale is False
        reader.close()
    finally:
        w.close()


def test_a_killed_writer_reads_as_stale_at_once():
    writer = python(
        """
        import time
        from earmark.ui.stateframe import Layout, StateFrameWriter
        w = StateFrameWriter(Layout(max_paths=1, history_points=10))
        w.heartbeat()
        print(w.name, flush=True)
        while True:
            w.heartbeat()
            time.sleep(1 / 30)
        """
    )
    name = writer.stdout.readline().strip()
    try:
        reader = StateFrameReader(name)
        assert reader.read().stale is False
        writer.send_signal(signal.SIGKILL)
        writer.wait(10)
        killed = time.monotonic()
        frame = reader.read()
        while not frame.stale and time.monotonic() - killed < 2:
            frame = reader.read()
        detected_after_s = time.monotonic() - killed
        reader.close()
    finally:
        unlink_quietly(name)
    assert frame.stale
    assert frame.stale_reason == "the session's process is gone"
    assert detected_after_s < 0.1  # the pid check, not the 0.5 s timeout


def test_a_writer_stuck_in_the_middle_of_an_update_leaves_the_last_whole_frame_stale():
    writer = python(
        """
        import sys, time
        from earmark.ui.stateframe import Layout, StateFrameWriter
        w = StateFrameWriter(Layout(max_paths=1, history_points=10))
        with w.writing():
            w.header["xruns"] = 5
        print(w.name, flush=True)
        sys.stdin.readline()
        w.begin()
        w.header["xruns"] = 6  # never finished
        print("writing", flush=True)
        time.sleep(60)
        """
    )
    name = writer.stdout.readline().strip()
    try:
        reader = StateFrameReader(name)
        assert reader.read().header["xruns"] == 5
        writer.stdin.write("\n")
        writer.stdin.flush()
        assert writer.stdout.readline().strip() == "writing"
        fresh = reader.read(tries=20)  # the counter just moved: not stale yet
        time.sleep(0.6)
        hung = reader.read(tries=20)
        hung_reason = hung.stale_reason
        writer.kill()
        writer.wait(10)
        dead = reader.read(tries=20)
        reader.close()
    finally:
        unlink_quietly(name)
    assert fresh.header["xruns"] == 5 and not fresh.stale
    assert hung.header["xruns"] == 5  # the last whole frame, not the half-written one
    assert hung_reason == "the session stopped in the middle of an update"
    assert dead.stale_reason == "the session's process is gone"


def test_a_closed_frame_reads_as_ended_and_is_gone_for_new_readers():
    w = StateFrameWriter(SMALL)
    w.heartbeat()
    reader = StateFrameReader(w.name)
    assert not reader.read().stale
    name = w.name
    w.close()
    frame = reader.read()
    assert frame.stale and frame.stale_reason == "the session has ended"
    reader.close()
    with pytest.raises(StateFrameError, match="no state frame named"):
        StateFrameReader(name)


def test_a_reader_process_exiting_leaves_the_frame_in_place():
    """Python < 3.13 hands attached segments to the resource tracker, which would delete
    the session's frame when a dashboard exits; the reader must opt out."""
    w = StateFrameWriter(SMALL)
    try:
        child = python(
            """
            import sys
            from earmark.ui.stateframe import StateFrameReader
            r = StateFrameReader(sys.argv[1]); r.read(); r.close()
            """,
            w.name,
            stderr=subprocess.PIPE,
        )
        _, err = child.communicate(timeout=30)
        assert child.returncode == 0
        assert "leaked" not in err
        again = StateFrameReader(w.name)  # still there
        assert again.read() is not None
        again.close()
    finally:
        w.close()


def test_foreign_shared_memory_is_refused_with_a_clear_error():
    seg = shared_memory.SharedMemory(create=True, size=SMALL.size)
    try:
        with pytest.raises(StateFrameError, match="is not an earmark state frame"):
            StateFrameReader(seg.name)
    finally:
        seg.close()
        seg.unlink()


def test_json_larger_than_its_area_is_an_error_naming_both_sizes():
    w = StateFrameWriter(SMALL)
    try:
        with (
            pytest.raises(StateFrameError, match=r"20000 bytes, more than its 16384-byte"),
            w.writing(),
        ):
            w.set_json(b"x" * 20000)
    finally:
        w.close()


def test_commands_cross_processes_in_order_on_a_private_socket(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir(mode=0o700)
    inbox = CommandInbox(folder / "s.sock")
    try:
        mode = stat.S_IMODE(os.stat(folder / "s.sock").st_mode)
        child = python(
            """
            import sys
            from earmark.ui.stateframe import CommandSender
            s = CommandSender(sys.argv[1])
            ok = [s.send("select", "toggle"), s.send("monitor", {"dim": True}),
                  s.send("bypass", 1, None, True)]
            print(all(ok))
            """,
            str(folder / "s.sock"),
        )
        out, _ = child.communicate(timeout=30)
        raw = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        raw.sendto(b"not json", str(folder / "s.sock"))
        raw.sendto(b'{"a": 1}', str(folder / "s.sock"))
        raw.close()
        got = inbox.drain()
    finally:
        inbox.close()
    assert mode == 0o600
    assert out.strip() == "True"
    assert got == [("select", "toggle"), ("monitor", {"dim": True}), ("bypass", 1, None, True)]
    assert inbox.rejected == 2
    assert not (folder / "s.sock").exists()


def test_a_sender_without_a_session_says_so_instead_of_raising(tmp_path):
    sender = CommandSender(tmp_path / "nobody.sock")
    assert sender.send("select", "A") is False
    assert sender.failed == 1
    assert "FileNotFoundError" in sender.last_error
