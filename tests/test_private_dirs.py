"""Private folders: another local user cannot plant data in your store or answer your commands.

Everything here is real: the second user is uid 65534 (nobody), acting in its
own processes (``subprocess`` with ``user=65534``) or owning files through a
real ``chown``; links are real symbolic links; the read-only home is a real
tmpfs remounted read-only; sockets are real Unix sockets. We run as root (CI
does too), which is also the hardest case: root can read anything, so only
the checks stop it from reading what another user planted.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import sqlite3
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from earmark.config import control_socket_file, runtime_dir, store_file
from earmark.live import control
from earmark.live.publisher import DashboardService, find_sessions
from earmark.live.recorder import SessionRecorder
from earmark.live.session import LiveSession
from earmark.store import SnapshotPendingError, Store, StoreError, StoreWriter

import snapdocs
from clirun import earmark
from snapdocs import doc_for, gain

NOBODY = 65534
# The second user runs the system's Python: the project's virtualenv lives under /root.
SYSTEM_PYTHON = "/usr/bin/python3"


@pytest.fixture(autouse=True)
def _root() -> None:
    if os.geteuid() != 0:
        pytest.fail("these tests act as a second user (uid 65534): run them as root, as CI does")


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """EARMARK_HOME for this process and the `earmark` processes it starts."""
    folder = tmp_path / "h"
    monkeypatch.setenv("EARMARK_HOME", str(folder))
    return folder


@pytest.fixture
def shared_tmp(monkeypatch) -> Iterator[Path]:
    """A temporary folder every local user can write to (1777, like /tmp), used as this
    process's ``tempfile.gettempdir()``: where the predictable rescue name lives."""
    folder = Path(tempfile.mkdtemp(prefix="earmark-shared-tmp-", dir="/tmp"))
    os.chmod(folder, 0o1777)
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def as_nobody(code: str, *args: str) -> subprocess.CompletedProcess:
    """Run Python ``code`` as uid and gid 65534: a real second user of the machine."""
    proc = subprocess.run(
        [SYSTEM_PYTHON, "-c", code, *map(str, args)],
        user=NOBODY,
        group=NOBODY,
        extra_groups=[],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return proc


def one_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    assert stderr.count("\n") == 1, stderr
    return stderr.strip()


def rescue_line(name: str) -> str:
    """One rescued job, as a writer writes it: a session row named ``name``."""
    now = time.time()
    job = {"kind": "session", "time": now, "payload": [name, "run", now, 48000, 512, {}]}
    return json.dumps(job) + "\n"


def temp_rescue_folder(database: Path, temp: Path) -> tuple[Path, Path]:
    """The fallback rescue folder of ``database`` as earmark.store documents it:
    ``$TMPDIR/earmark-rescue-UID/<first 16 hex digits of sha1(database path)>``."""
    top = temp / f"earmark-rescue-{os.geteuid()}"
    return top, top / hashlib.sha1(str(database.resolve()).encode()).hexdigest()[:16]


def session_names(database: Path) -> list[str]:
    with Store(database) as store:
        return sorted(s["name"] for s in store.sessions())


def write_and_stop(database: Path, **writer) -> list[str]:
    """A writer's whole life (it imports rescue files when it starts); its status lines."""
    messages: list[str] = []
    w = StoreWriter(database, on_status=messages.append, **writer)
    w.start()
    w.begin_session("mine")
    w.take_snapshot(doc_for(gain(0.0), label="mine"))
    assert w.stop() == 0
    return messages


def leave_items_unwritten(database: Path, **writer) -> tuple[StoreWriter, list[str]]:
    """A writer stopped while another program holds the database's write lock: what it
    could not write goes to a rescue file."""
    messages: list[str] = []
    w = StoreWriter(database, on_status=messages.append, retry_s=0.05, **writer)
    w.start()
    w.begin_session("stored first")
    w.take_snapshot(doc_for(gain(0.0), label="stored"))
    other = sqlite3.connect(database, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(SnapshotPendingError):
            w.take_snapshot(doc_for(gain(6.0), label="pending"), timeout=0.2)
        assert w.stop(timeout=10) >= 1
    finally:
        other.execute("COMMIT")
        other.close()
    return w, messages


PLANT_RESCUE = r"""
import os, sys
top, sub, line = sys.argv[1], sys.argv[2], sys.argv[3]
# 0700, like earmark's own: the folders look private, only their owner differs.
os.mkdir(top, 0o700)
os.mkdir(os.path.join(top, sub), 0o700)
with open(os.path.join(top, sub, "pending-20250101-000000-1.jsonl"), "w") as f:
    f.write(line)
"""


# -- item 3: rescue files -----------------------------------------------------------------------


def test_a_rescue_folder_another_user_made_in_the_temp_folder_is_refused_not_imported(
    tmp_path, shared_tmp
):
    database = tmp_path / "earmark.sqlite"
    top, sub = temp_rescue_folder(database, shared_tmp)
    as_nobody(PLANT_RESCUE, top, sub.name, rescue_line("FORGED-by-nobody"))
    planted = sub / "pending-20250101-000000-1.jsonl"
    assert planted.stat().st_uid == NOBODY

    messages = write_and_stop(database)

    assert session_names(database) == ["mine"]  # before the fix: FORGED-by-nobody too
    refusals = [m for m in messages if m.startswith("refusing")]
    assert refusals == [
        f"refusing the rescue folder {top}: belongs to uid {NOBODY} (nobody), not to you "
        "(uid 0 (root)); refusing to use it; nothing is imported from it"
    ]
    assert planted.exists()  # left where it is, for the user to look at


def test_a_rescue_file_of_another_user_in_our_own_rescue_folder_is_refused(tmp_path):
    database = tmp_path / "earmark.sqlite"
    rescue = tmp_path / "rescue"
    rescue.mkdir(mode=0o700)
    (rescue / "pending-1-ours.jsonl").write_text(rescue_line("rescued by me"))
    theirs = rescue / "pending-2-theirs.jsonl"
    theirs.write_text(rescue_line("FORGED-by-nobody"))
    os.chown(theirs, NOBODY, NOBODY)

    messages = write_and_stop(database)

    assert session_names(database) == ["mine", "rescued by me"]
    assert [m for m in messages if m.startswith("refusing")] == [
        f"refusing the rescue file {theirs}: belongs to uid {NOBODY} (nobody), not to you "
        "(uid 0 (root)); refusing to read it; it is not imported"
    ]
    assert theirs.exists() and not (rescue / "pending-1-ours.jsonl").exists()


def test_a_rescue_folder_others_can_write_to_is_refused_even_if_it_is_ours(tmp_path):
    database = tmp_path / "earmark.sqlite"
    rescue = tmp_path / "rescue"
    rescue.mkdir()
    os.chmod(rescue, 0o777)
    (rescue / "pending-1.jsonl").write_text(rescue_line("anyone could have written this"))

    messages = write_and_stop(database)

    assert session_names(database) == ["mine"]
    assert [m for m in messages if m.startswith("refusing")] == [
        f"refusing the rescue folder {rescue}: is writable by other users (mode 0777; "
        "`chmod go-w` it); refusing to use it; nothing is imported from it"
    ]
    assert stat.S_IMODE(rescue.stat().st_mode) == 0o777  # not "repaired" behind the user's back


def test_links_in_place_of_a_rescue_folder_or_file_are_refused(tmp_path):
    database = tmp_path / "earmark.sqlite"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (elsewhere / "pending-1.jsonl").write_text(rescue_line("through a folder link"))
    (tmp_path / "rescue").symlink_to(elsewhere)
    messages = write_and_stop(database)
    assert session_names(database) == ["mine"]
    assert [m for m in messages if m.startswith("refusing")] == [
        f"refusing the rescue folder {tmp_path / 'rescue'}: is a symbolic link (to {elsewhere}); "
        "refusing to follow it; nothing is imported from it"
    ]

    (tmp_path / "rescue").unlink()
    (tmp_path / "rescue").mkdir(mode=0o700)
    (tmp_path / "rescue" / "pending-2.jsonl").symlink_to(elsewhere / "pending-1.jsonl")
    messages = write_and_stop(database)
    assert session_names(database) == ["mine", "mine"]
    assert [m for m in messages if m.startswith("refusing")] == [
        f"refusing the rescue file {tmp_path / 'rescue' / 'pending-2.jsonl'}: is a symbolic "
        "link; refusing to follow it; it is not imported"
    ]


def test_the_temp_fallback_is_made_private_and_imported_by_the_next_writer(tmp_path, shared_tmp):
    database = tmp_path / "earmark.sqlite"
    (tmp_path / "a-file").write_text("not a folder")
    blocked = tmp_path / "a-file" / "rescue"  # cannot be created: the fallback is used
    writer, messages = leave_items_unwritten(database, rescue_dir=blocked)
    top, sub = temp_rescue_folder(database, shared_tmp)
    (rescued,) = writer.rescued
    assert rescued.parent == sub
    modes = {p.name: (stat.S_IMODE(p.lstat().st_mode), p.lstat().st_uid) for p in (top, sub)}
    assert modes == {top.name: (0o700, 0), sub.name: (0o700, 0)}
    assert (stat.S_IMODE(rescued.stat().st_mode), rescued.stat().st_uid) == (0o600, 0)
    assert any(str(rescued) in m for m in messages)

    write_and_stop(database, rescue_dir=blocked)

    with Store(database) as store:
        labels = [s["label"] for s in store.snapshots()]
    assert labels == ["stored", "pending", "mine"]
    assert not rescued.exists()


def test_when_another_user_holds_the_temp_rescue_name_nothing_is_written_into_it(
    tmp_path, shared_tmp
):
    database = tmp_path / "earmark.sqlite"
    top, _ = temp_rescue_folder(database, shared_tmp)
    as_nobody("import os, sys; os.mkdir(sys.argv[1], 0o777); os.chmod(sys.argv[1], 0o777)", top)
    (tmp_path / "a-file").write_text("not a folder")
    writer, messages = leave_items_unwritten(database, rescue_dir=tmp_path / "a-file" / "rescue")
    assert writer.rescued == []
    assert os.listdir(top) == []  # before the fix: our snapshot went into nobody's folder
    (lost,) = [m for m in messages if m.startswith("could not write")]
    assert f"{top}: belongs to uid {NOBODY} (nobody)" in lost and lost.endswith("they are lost")


# -- the database's folder --------------------------------------------------------------------


def test_a_data_folder_of_another_user_is_refused_in_one_line(home):
    w = StoreWriter()
    w.start()
    w.begin_session("mine")
    w.take_snapshot(doc_for(gain(0.0), label="mine"))
    w.stop()
    os.chown(home, NOBODY, NOBODY)
    proc = earmark("snapshots", "list")
    assert proc.returncode == 3
    assert one_line(proc.stderr) == (
        f"earmark: {store_file()}: its folder {home}: belongs to uid {NOBODY} (nobody), not to "
        "you (uid 0 (root)); refusing to use it"
    )
    with pytest.raises(StoreError, match="belongs to uid 65534"):
        StoreWriter().take_snapshot(doc_for(gain(0.0)), timeout=1.0)


def test_a_data_folder_linked_by_the_user_is_used_one_linked_by_another_user_is_refused(
    tmp_path, monkeypatch
):
    target = tmp_path / "on-another-disk"
    target.mkdir(mode=0o755)
    link = tmp_path / "home"
    link.symlink_to(target)
    monkeypatch.setenv("EARMARK_HOME", str(link))
    write_and_stop(store_file())
    assert (target / "earmark.sqlite").exists() and session_names(store_file()) == ["mine"]

    os.lchown(link, NOBODY, NOBODY)  # now a link someone else made
    with pytest.raises(StoreError) as caught:
        Store(store_file())
    assert str(caught.value) == (
        f"{store_file()}: its folder {link}: is a symbolic link made by uid {NOBODY} (nobody) "
        f"(to {target}); refusing to follow it"
    )


# -- item 4: the run folder, the control socket ---------------------------------------------------


def started_session(name: str, notes: list[str]) -> tuple[LiveSession, object, DashboardService]:
    engine = snapdocs.chain_engine(gain(0.0), seconds=0)
    session = LiveSession(engine, name=name, say=notes.append, tick_hz=20)
    server = control.attach(session)
    dashboard = DashboardService()
    session.add_service(dashboard, "dashboard")
    session.start()
    return session, server, dashboard


def test_a_link_planted_at_the_session_file_s_names_is_never_followed(home, tmp_path):
    run = home / "run"
    run.mkdir(parents=True, mode=0o700)
    victim = tmp_path / "precious.txt"
    victim.write_text("the master's notes")
    pid = os.getpid()
    (run / f"session-{pid}.tmp").symlink_to(victim)  # the old fixed temp name
    (run / f"session-{pid}.json").symlink_to(victim)
    service = DashboardService()
    session = LiveSession(snapdocs.chain_engine(gain(0.0), seconds=0), name="linked")
    service.start(session)
    try:
        address = run / f"session-{pid}.json"
        info = address.lstat()
        found = find_sessions()
    finally:
        service.stop(session)
    assert victim.read_text() == "the master's notes"  # before the fix: the session's JSON
    assert stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o600
    assert [s["session"] for s in found] == ["linked"]


def test_dashboards_find_only_sessions_whose_address_and_command_socket_are_ours(home):
    service = DashboardService()
    session = LiveSession(snapdocs.chain_engine(gain(0.0), seconds=0), name="ours")
    service.start(session)
    run = runtime_dir()
    forged = run / "session-1.json"  # pid 1 is alive: only the owner checks can drop it
    try:
        forged.write_text(json.dumps({"pid": 1, "session": "forged", "frame": "x",
                                      "commands": str(service.inbox.path)}))  # fmt: skip
        os.chown(forged, NOBODY, NOBODY)
        before = [s["session"] for s in find_sessions()]
        os.chown(service.inbox.path, NOBODY, NOBODY)
        after = [s["session"] for s in find_sessions()]
    finally:
        service.stop(session)
    assert before == ["ours"]  # the file of another user is skipped
    assert after == []  # our address, but the socket it names is not ours any more


def test_a_run_folder_that_is_a_link_is_refused_and_its_target_keeps_its_mode(home, tmp_path):
    victim = tmp_path / "shared-folder"
    victim.mkdir()
    os.chmod(victim, 0o755)
    home.mkdir()
    (home / "run").symlink_to(victim)
    notes: list[str] = []
    session, server, _dashboard = started_session("linked run", notes)
    try:
        serving = server.serving
    finally:
        session.stop()
    assert stat.S_IMODE(victim.stat().st_mode) == 0o755  # before the fix: 0700
    assert os.listdir(victim) == []
    assert not serving
    cause = f"{home / 'run'}: is a symbolic link (to {victim}); refusing to follow it"
    assert set(notes) == {
        f"earmark: dashboard could not start and was stopped: FolderError: {cause}",
        f"earmark: {cause}; `earmark snapshot take` cannot reach this session",
    }
    proc = earmark("snapshot", "take")
    assert proc.returncode == 3
    assert one_line(proc.stderr) == f"earmark: {cause}; refusing to look for a session there"


def test_the_client_refuses_a_control_socket_owned_by_another_user(home):
    runtime_dir().mkdir(parents=True, mode=0o700)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(control_socket_file()))
    listener.listen(1)
    os.chown(control_socket_file(), NOBODY, NOBODY)
    listener.setblocking(False)
    try:
        with pytest.raises(control.ControlError) as caught:
            control.request("snapshot", label="v1", timeout=2.0)
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody connected (before the fix: the request went there)
    finally:
        listener.close()
    assert str(caught.value) == (
        f"{control_socket_file()}: belongs to uid {NOBODY} (nobody), not to you (uid 0 (root)); "
        "refusing it; not connecting"
    )


def test_the_client_refuses_a_run_folder_owned_by_another_user(home):
    runtime_dir().mkdir(parents=True, mode=0o700)
    os.chown(runtime_dir(), NOBODY, NOBODY)
    proc = earmark("snapshot", "take")
    assert proc.returncode == 3
    assert one_line(proc.stderr) == (
        f"earmark: {runtime_dir()}: belongs to uid {NOBODY} (nobody), not to you (uid 0 (root)); "
        "refusing to use it; refusing to look for a session there"
    )


def test_a_runtime_fallback_folder_another_user_made_first_is_one_line_not_a_traceback(
    shared_tmp,
):
    env = {k: v for k, v in os.environ.items() if k not in ("EARMARK_HOME", "XDG_RUNTIME_DIR")}
    env["TMPDIR"] = str(shared_tmp)
    where = subprocess.run(
        [sys.executable, "-c", "from earmark.config import runtime_dir; print(runtime_dir())"],
        capture_output=True,
        text=True,
        env=env,
    )
    fallback = shared_tmp / f"runtime-{os.geteuid()}"
    if where.stdout.strip() != str(fallback / "earmark"):
        pytest.skip(f"this machine has a runtime folder ({where.stdout.strip()}): no fallback")
    as_nobody(
        "import os, sys; os.mkdir(sys.argv[1], 0o777); os.chmod(sys.argv[1], 0o777)", fallback
    )
    proc = subprocess.run(
        [sys.executable, "-m", "earmark", "snapshot", "take"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 3  # before the fix: a PermissionError traceback, exit 1
    assert one_line(proc.stderr) == (
        f"earmark: {fallback}: is owned by uid {NOBODY}, not 0; set XDG_RUNTIME_DIR instead; "
        "refusing to look for a session there"
    )


IMPOSTOR = r"""
import os, socket, sys
os.chdir(sys.argv[1])
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind("control.sock")  # as root: the socket file is root's, like a real session's
os.setgroups([]); os.setgid(65534); os.setuid(65534)
s.listen(1)  # the listening process is now nobody
print("listening", flush=True)
s.settimeout(30)
conn, _ = s.accept()
conn.settimeout(5)
received = b""
try:
    while True:
        data = conn.recv(4096)
        if not data:
            break
        received += data
        if b"\n" in received:
            conn.sendall(b'{"ok": true, "id": 666, "session": "impostor"}\n')
            break
except OSError:
    pass
print(repr(received), flush=True)
"""


def test_the_client_refuses_a_session_socket_served_by_another_user(home):
    runtime_dir().mkdir(parents=True, mode=0o700)
    impostor = subprocess.Popen(
        [SYSTEM_PYTHON, "-c", IMPOSTOR, str(runtime_dir())],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert impostor.stdout.readline() == "listening\n", impostor.stderr.read()
        assert control_socket_file().lstat().st_uid == 0
        with pytest.raises(control.ControlError) as caught:
            control.request("snapshot", label="v1", timeout=5.0)
        out, err = impostor.communicate(timeout=30)
    finally:
        with contextlib.suppress(ProcessLookupError):
            impostor.kill()
    assert str(caught.value) == (
        f"{control_socket_file()}: the process answering there runs as uid {NOBODY}, not as "
        "you (uid 0); not talking to it"
    )
    assert out.strip() == "b''", err  # the request never reached it


# -- item 9: a long EARMARK_HOME -------------------------------------------------------------------


def test_snapshot_take_reaches_a_session_whose_socket_path_is_longer_than_an_address_holds(
    tmp_path, monkeypatch
):
    home = tmp_path / ("a-long-studio-folder-name-" * 5)
    monkeypatch.setenv("EARMARK_HOME", str(home))
    assert len(os.fsencode(control_socket_file())) > 108  # sun_path holds 108 bytes
    notes: list[str] = []
    engine = snapdocs.chain_engine(gain(0.0), seconds=0)
    session = LiveSession(engine, name="long home", say=notes.append, tick_hz=20)
    SessionRecorder(StoreWriter()).attach(session)
    server = control.attach(session)
    session.start()
    try:
        assert server.serving, notes
        proc = earmark("snapshot", "take", "--label", "long")
    finally:
        session.stop()
    # Before the fix: exit 3, "no earmark session is running (no control socket at ...)".
    assert proc.returncode == 0, proc.stderr
    with Store(store_file()) as store:
        assert store.snapshot(int(proc.stdout))["label"] == "long"
    assert not control_socket_file().exists()  # removed at stop


# -- item 7: profile build into a home it cannot write ---------------------------------------------


@contextlib.contextmanager
def read_only_tmpfs(folder: Path):
    folder.mkdir(parents=True)
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m,ro", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    assert mount.returncode == 0, mount.stderr
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


@pytest.mark.parametrize("kind", ["file", "under-a-file", "read-only"])
def test_profile_build_into_a_home_it_cannot_write_says_why_in_one_line(tmp_path, kind):
    master = tmp_path / "master.wav"
    t = np.arange(48000 * 3) / 48000
    x = 0.3 * np.sin(2 * np.pi * 997 * t)
    sf.write(master, np.stack([x, x], axis=1), 48000)
    blocker = tmp_path / "home-file"
    blocker.write_text("a file where a folder should be")
    with contextlib.ExitStack() as stack:
        if kind == "file":
            home, cause = blocker, f"{blocker} is a file, not a folder"
        elif kind == "under-a-file":
            home, cause = blocker / "earmark", f"{blocker} is a file, not a folder"
        else:
            home = stack.enter_context(read_only_tmpfs(tmp_path / "ro"))
            cause = "the file system is mounted read-only"
        env = dict(os.environ, EARMARK_HOME=str(home))
        proc = subprocess.run(
            [sys.executable, "-m", "earmark", "profile", "build", "mine", str(master)],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
    assert proc.returncode == 3
    assert one_line(proc.stderr) == (
        f"earmark: cannot write the profile: {home / 'profiles'}: cannot create it: {cause}"
    )
    assert proc.stdout == ""


# -- the private folder itself ---------------------------------------------------------------------


def test_a_private_folder_is_made_0700_with_its_parents_and_files_0600(tmp_path):
    from earmark.private import MissingFolderError, open_private

    with open_private(tmp_path / "a" / "b") as folder:
        written = folder.write_new("x.json", "{}")
        with pytest.raises(FileExistsError):
            folder.write_new("x.json", "again")  # exclusive: never onto an existing name
        text = folder.read_text("x.json")
    modes = {p: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "a", tmp_path / "a" / "b")}
    assert modes == {tmp_path / "a": 0o700, tmp_path / "a" / "b": 0o700}
    assert stat.S_IMODE(written.stat().st_mode) == 0o600 and text == "{}"
    with pytest.raises(MissingFolderError):
        open_private(tmp_path / "missing", create=False)


def test_a_private_folder_of_ours_is_tightened_through_its_descriptor_but_not_through_a_link(
    tmp_path,
):
    from earmark.private import FolderError, open_private

    ours = tmp_path / "ours"
    ours.mkdir()
    os.chmod(ours, 0o755)
    open_private(ours).close()
    assert stat.S_IMODE(ours.stat().st_mode) == 0o700
    os.chmod(ours, 0o755)
    (tmp_path / "link").symlink_to(ours)
    with pytest.raises(FolderError, match="is a symbolic link"):
        open_private(tmp_path / "link")
    assert stat.S_IMODE(ours.stat().st_mode) == 0o755
