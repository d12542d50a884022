"""The local control channel: how ``earmark snapshot take`` reaches a running session.

A running session (``earmark run`` / ``earmark demo``) listens on a Unix domain
socket, ``config.control_socket_file()``: ``$XDG_RUNTIME_DIR/earmark/control.sock``
(``$EARMARK_HOME/run/control.sock`` when ``EARMARK_HOME`` is set). The folder is
made 0700 and the socket 0600, and on Linux the peer's user id is checked as
well, so only the user who runs the session can talk to it. There is no network
listener.

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
import stat
import struct
import sys
import threading
from pathlib import Path
from typing import Any

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


class ControlError(Exception):
    """The control channel failed; ``str()`` is one line."""


class NoSessionError(ControlError):
    """No earmark session is running (no socket, or a stale one)."""


def socket_path() -> Path:
    """The control socket of the running session (see the module docstring)."""
    from earmark.config import control_socket_file

    return control_socket_file()


def _private_dir(folder: Path) -> None:
    """Create ``folder`` 0700, or check that an existing one is ours and private."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    info = folder.stat()
    if info.st_uid != os.getuid():
        raise ControlError(f"{folder}: belongs to another user; refusing to use it")
    if stat.S_IMODE(info.st_mode) & 0o077:
        os.chmod(folder, 0o700)


def _answering(path: Path) -> bool:
    """True if a process accepts connections on the socket at ``path``."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(os.fspath(path))
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
        self.path = Path(path) if path is not None else socket_path()
        self.serving = False
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._session: Any = None
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
        path = self.path
        _private_dir(path.parent)
        if len(os.fsencode(path)) >= 104:  # sun_path: 108 bytes on Linux, 104 on macOS
            raise ControlError(f"{path}: path too long for a Unix socket")
        if path.exists() or path.is_symlink():
            if not stat.S_ISSOCK(path.lstat().st_mode):
                raise ControlError(f"{path}: exists and is not a socket")
            if _answering(path):
                raise ControlError(f"another earmark session already answers on {path}")
            path.unlink()  # stale: its session died without cleaning up
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(os.fspath(path))
            os.chmod(path, 0o600)
            sock.listen(8)
        except OSError as exc:
            sock.close()
            raise ControlError(f"{path}: cannot listen: {exc.strerror or exc}") from exc
        self._sock = sock
        self._inode = path.stat().st_ino

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
            with contextlib.suppress(OSError):
                if self.path.stat().st_ino == self._inode:
                    self.path.unlink()
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
                        _send(conn, {"ok": False, "error": _one_line(exc)})

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
        label, note = _text(req.get("label")), _text(req.get("note"))
        try:
            if cmd == "marker":
                return {**base, "marker": session.call("marker", label, timeout=_CALL_TIMEOUT_S)}
            snapshot_id = session.call("snapshot", label, note, timeout=_CALL_TIMEOUT_S)
        except Exception as exc:
            from earmark.store import SnapshotPendingError

            pending = isinstance(exc, SnapshotPendingError)
            return {"ok": False, "error": _one_line(exc, name=not pending), "pending": pending}
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
    path = Path(path) if path is not None else socket_path()
    if not path.exists():
        raise NoSessionError(
            f"no earmark session is running (no control socket at {path}); "
            "start one with `earmark run` or `earmark demo`"
        )
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(os.fspath(path))
        except OSError as exc:
            if exc.errno in (errno.ECONNREFUSED, errno.ENOENT):
                raise NoSessionError(
                    f"no earmark session is running (stale control socket at {path}, left by "
                    "a session that ended without cleaning up)"
                ) from None
            raise ControlError(f"{path}: cannot connect: {exc.strerror or exc}") from None
        _send(sock, {"v": PROTOCOL_VERSION, "cmd": cmd, **fields})
        line = _read_line(sock)
    except TimeoutError:
        raise ControlError(f"{path}: the session did not answer within {timeout:g} s") from None
    except OSError as exc:
        raise ControlError(f"{path}: {exc.strerror or exc}") from None
    finally:
        sock.close()
    if not line:
        raise ControlError(f"{path}: the session closed the connection without answering")
    try:
        answer = json.loads(line)
    except ValueError:
        raise ControlError(f"{path}: the session answered something that is not JSON") from None
    return answer


# -- helpers --------------------------------------------------------------------------------


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


def _same_user(conn: socket.socket) -> bool:
    """Linux: the peer's uid (SO_PEERCRED) is ours. Elsewhere the 0600 mode decides."""
    if not sys.platform.startswith("linux"):
        return True
    try:
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return False
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid == os.getuid()


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = " ".join(str(value).split())
    return text[:500] or None


def _one_line(exc: BaseException, name: bool = True) -> str:
    text = " ".join(str(exc).split())
    if not name:
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
