"""The local control channel: how ``earmark snapshot take`` reaches a running session.

A running session (``earmark run`` / ``earmark demo``) listens on a Unix domain
socket, ``config.control_socket_file()``: ``control.sock`` in the run folder,
``$EARMARK_HOME/run`` when ``EARMARK_HOME`` is set, else
``$XDG_RUNTIME_DIR/earmark`` (``/run/user/UID/earmark``, or
``/tmp/runtime-UID/earmark`` without a runtime folder; see ``earmark.config``).

Only the user who runs the session can talk to it, and a client talks only to
that user's session. The run folder is a private folder (``earmark.private``:
created 0700, refused when it is a link, another user's or writable by
others); the socket is made 0600 there. The server checks each client's user
id (``SO_PEERCRED`` on Linux); the client checks the folder, that the socket
file is a socket of its own user, and the server's user id. There is no
network listener. The socket is bound and reached through the folder's open
descriptor (``/proc/self/fd/N/control.sock`` on Linux), so a long
``EARMARK_HOME`` does not hit the 108-byte limit of a socket address.

Protocol: one JSON object per line each way, one request per connection::

    -> {"v": 1, "cmd": "snapshot", "label": "v3", "note": "more air"}
    <- {"ok": true, "id": 17, "session": "album master"}
    <- {"ok": false, "error": "snapshot not stored yet: ...", "pending": true}

Commands: ``ping`` (the session's name and process id), ``snapshot`` (label,
note; answers once the snapshot is committed), ``marker`` (label), ``status``
(position and each path's loudness).

A socket file left by a session that died (kill -9, power cut) is stale: the
next session finds nobody answering on it and takes it over; the client says
plainly that no session is running.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import select
import socket
import struct
import sys
import threading
from pathlib import Path
from typing import Any

from earmark.errors import EarmarkError, one_line
from earmark.private import FolderError, MissingFolderError, PrivateFolder, open_private

__all__ = [
    "PROTOCOL_VERSION",
    "ControlError",
    "ControlServer",
    "NoSessionError",
    "attach",
    "request",
]

PROTOCOL_VERSION = 1
_MAX_LINE = 64 * 1024
_CLIENT_READ_S = 5.0
_CALL_TIMEOUT_S = 15.0
_COMMANDS = ("ping", "snapshot", "marker", "status")


class ControlError(EarmarkError):
    """The control channel failed; ``str()`` is one line."""


class NoSessionError(ControlError):
    """No earmark session is running (no socket, or a stale one)."""


def socket_path() -> Path:
    """The control socket of the running session (see the module docstring)."""
    from earmark.config import control_socket_file

    return control_socket_file()


def _answering(address: str) -> bool:
    """True if a process accepts connections on the socket at ``address``."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(address)
        return True
    except OSError:
        return False
    finally:
        probe.close()


class ControlServer:
    """The session's end of the control channel (a LiveSession service).

    Its own thread accepts connections and runs each request through
    ``session.call``, so the command executes on the session thread like one
    from a key or the controller.
    """

    tick_hz = 1.0

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self._path_error: str | None = None
        try:
            self.path = Path(path) if path is not None else socket_path()
        except FolderError as exc:  # the run folder's fallback name is another user's
            self.path = exc.path / "control.sock"
            self._path_error = str(exc)
        self.serving = False
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._session: Any = None
        self._folder: PrivateFolder | None = None
        self._inode: int | None = None
        self._wake: tuple[int, int] = (-1, -1)

    def attach(self, session: Any) -> ControlServer:
        """Add this service to ``session``."""
        session.add_service(self, "control socket")
        return self

    def start(self, session: Any) -> None:
        """Bind the socket (taking over a stale one) and start answering."""
        self._session = session
        try:
            self._bind()
        except ControlError as exc:
            session.note("control", f"{exc}; `earmark snapshot take` cannot reach this session")
            return
        self.serving = True
        self._wake = os.pipe()
        self._thread = threading.Thread(target=self._serve, name="earmark-control", daemon=True)
        self._thread.start()

    def _bind(self) -> None:
        if self._path_error is not None:
            raise ControlError(self._path_error)
        name = self.path.name
        try:
            folder = open_private(self.path.parent)
        except FolderError as exc:
            raise ControlError(str(exc)) from None
        try:
            address = folder.socket_address(name)
            try:
                folder.check_socket(name)
            except FileNotFoundError:
                pass
            else:
                if _answering(address):
                    raise ControlError(f"another earmark session already answers on {self.path}")
                folder.unlink(name)  # stale: its session died without cleaning up
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.bind(address)
                folder.chmod(name, 0o600)
                sock.listen(8)
            except OSError as exc:
                sock.close()
                raise ControlError(f"{self.path}: cannot listen: {exc.strerror or exc}") from None
        except FolderError as exc:
            folder.close()
            raise ControlError(str(exc)) from None
        except BaseException:
            folder.close()
            raise
        self._sock = sock
        self._folder = folder
        self._inode = folder.lstat(name).st_ino

    def tick(self, session: Any, state: Any) -> None:
        """Nothing to do per tick: the socket has its own thread."""

    def stop(self, session: Any) -> None:
        """Stop answering and remove the socket file (if it is still ours)."""
        self._stop.set()
        with contextlib.suppress(OSError):
            os.write(self._wake[1], b"x")
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._folder is not None:
            with contextlib.suppress(OSError):
                if self._folder.lstat(self.path.name).st_ino == self._inode:
                    self._folder.unlink(self.path.name)
            self._folder.close()
            self._folder = None
        for fd in self._wake:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._wake = (-1, -1)
        self.serving = False

    def _serve(self) -> None:
        assert self._sock is not None
        wake_r = self._wake[0]
        while not self._stop.is_set():
            # Wait for a client or for stop() (the wake pipe): stopping never waits out a
            # timeout, so the session (and its audio) stops at once.
            ready, _, _ = select.select([self._sock, wake_r], [], [])
            if wake_r in ready or self._stop.is_set():
                return
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            with conn:
                try:
                    self._answer(conn)
                except Exception as exc:  # one bad client never stops the channel
                    with contextlib.suppress(OSError):
                        _send(conn, {"ok": False, "error": one_line(exc, name=True)})

    def _answer(self, conn: socket.socket) -> None:
        conn.settimeout(_CLIENT_READ_S)
        if not _same_user(conn):
            _send(conn, {"ok": False, "error": "refused: not the session's user"})
            return
        line = _read_line(conn)
        try:
            req = json.loads(line)
            if not isinstance(req, dict):
                raise ValueError("expected a JSON object")
        except ValueError as exc:
            _send(conn, {"ok": False, "error": f"bad request: {exc}"})
            return
        _send(conn, self.handle(req))

    def handle(self, req: dict) -> dict:
        """Answer one request (a dict as in the module docstring)."""
        session = self._session
        cmd = req.get("cmd")
        if cmd not in _COMMANDS:
            return {"ok": False, "error": f"unknown command {cmd!r}; known: {', '.join(_COMMANDS)}"}
        base = {"ok": True, "session": session.name}
        if cmd == "ping":
            return {**base, "pid": os.getpid(), "v": PROTOCOL_VERSION}
        if cmd == "status":
            state = session.state()
            paths = [
                {
                    "name": p.name,
                    "integrated_lufs": p.readings.integrated_lufs,
                    "short_term_lufs": p.readings.short_term_lufs,
                }
                for p in state.paths
            ]
            return {**base, "position_s": state.position_s, "audible": state.audible,
                    "paths": paths}  # fmt: skip
        try:
            label, note = _text(req.get("label"), "label"), _text(req.get("note"), "note")
        except ValueError as exc:
            return {"ok": False, "error": str(exc), "pending": False}
        try:
            if cmd == "marker":
                return {**base, "marker": session.call("marker", label, timeout=_CALL_TIMEOUT_S)}
            snapshot_id = session.call("snapshot", label, note, timeout=_CALL_TIMEOUT_S)
        except Exception as exc:
            from earmark.store import SnapshotPendingError

            pending = isinstance(exc, SnapshotPendingError)
            return {"ok": False, "error": one_line(exc, name=not pending), "pending": pending}
        return {**base, "id": snapshot_id}


def attach(session: Any, path: str | os.PathLike[str] | None = None) -> ControlServer:
    """Serve the control channel for ``session``."""
    return ControlServer(path).attach(session)


# -- client -------------------------------------------------------------------------------


def request(
    cmd: str,
    *,
    path: str | os.PathLike[str] | None = None,
    timeout: float = 30.0,
    **fields: Any,
) -> dict:
    """Send one request to the running session and return its answer.

    Raises :class:`NoSessionError` when no session is running and
    :class:`ControlError` when the channel fails.
    """
    try:
        path = Path(path) if path is not None else socket_path()
    except FolderError as exc:
        raise ControlError(f"{exc}; refusing to look for a session there") from None
    no_socket = NoSessionError(
        f"no earmark session is running (no control socket at {path}); "
        "start one with `earmark run` or `earmark demo`"
    )
    try:
        # tighten=False: a client looks, it does not change the session's folder.
        folder = open_private(path.parent, create=False, tighten=False)
    except MissingFolderError:
        raise no_socket from None
    except FolderError as exc:
        raise ControlError(f"{exc}; refusing to look for a session there") from None
    with folder:
        try:
            folder.check_socket(path.name)
            address = folder.socket_address(path.name)
        except FileNotFoundError:
            raise no_socket from None
        except FolderError as exc:
            raise ControlError(f"{exc}; not connecting") from None
        line = _exchange(path, address, timeout, {"v": PROTOCOL_VERSION, "cmd": cmd, **fields})
    if not line:
        raise ControlError(f"{path}: the session closed the connection without answering")
    try:
        answer = json.loads(line)
    except ValueError:
        raise ControlError(f"{path}: the session answered something that is not JSON") from None
    return answer


# -- helpers --------------------------------------------------------------------------------


def _exchange(path: Path, address: str, timeout: float, req: dict) -> str:
    """Connect to ``address`` (the socket ``path``), check who answers, send ``req``,
    return the answer's line."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(address)
        except OSError as exc:
            if exc.errno in (errno.ECONNREFUSED, errno.ENOENT):
                raise NoSessionError(
                    f"no earmark session is running (stale control socket at {path}, left by "
                    "a session that ended without cleaning up)"
                ) from None
            raise ControlError(f"{path}: cannot connect: {exc.strerror or exc}") from None
        peer = _peer_uid(sock)
        if peer is not None and peer != os.geteuid():
            raise ControlError(
                f"{path}: the process answering there runs as uid {peer}, not as you "
                f"(uid {os.geteuid()}); not talking to it"
            )
        _send(sock, req)
        return _read_line(sock)
    except TimeoutError:
        raise ControlError(f"{path}: the session did not answer within {timeout:g} s") from None
    except OSError as exc:
        raise ControlError(f"{path}: {exc.strerror or exc}") from None
    finally:
        sock.close()


def _send(conn: socket.socket, obj: dict) -> None:
    conn.sendall((json.dumps(obj, allow_nan=False, default=str) + "\n").encode())


def _read_line(conn: socket.socket) -> str:
    chunks: list[bytes] = []
    size = 0
    while True:
        data = conn.recv(4096)
        if not data:
            break
        chunks.append(data)
        size += len(data)
        if b"\n" in data or size > _MAX_LINE:
            break
    return b"".join(chunks).split(b"\n", 1)[0].decode("utf-8", "replace")


def _peer_uid(conn: socket.socket) -> int | None:
    """The user id of the process at the other end (SO_PEERCRED, Linux); None elsewhere
    (there the private folder and the socket's 0600 mode decide)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return -1  # unknown: treated as somebody else
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid


def _same_user(conn: socket.socket) -> bool:
    """The client runs as the session's user (Linux: SO_PEERCRED; elsewhere the 0600
    socket in its private folder decides)."""
    peer = _peer_uid(conn)
    return peer is None or peer == os.geteuid()


def _text(value: Any, what: str) -> str | None:
    """A label or note as stored: whitespace folded; longer than the store's limit
    (``snapshots.TEXT_MAX_CHARS``) is refused, never cut without a word."""
    from earmark.store.snapshots import TEXT_MAX_CHARS

    if value is None:
        return None
    text = " ".join(str(value).split())
    if len(text) > TEXT_MAX_CHARS:
        raise ValueError(f"{what} too long: {len(text)} characters (at most {TEXT_MAX_CHARS})")
    return text or None
