"""Private folders: the one place that decides whether a folder may be trusted.

earmark reads back what it wrote in a few folders: the database's folder, the
rescue files a writer could not store, and the run folder where a running
session leaves its control socket and its dashboard address. If another user
of the machine could write there, they could plant snapshots in your store, or
make a command talk to their process. So each of these folders goes through
:func:`open_private`:

- a missing folder is created exclusively, mode 0700 (missing parents too);
- it is opened with ``O_DIRECTORY | O_NOFOLLOW`` and checked on the open
  descriptor (``fstat``: nothing can be swapped between the check and the
  use): a real directory, not a symbolic link, owned by the current user,
  not writable by the group or others. A private one (``tighten``) is set
  to 0700 through the descriptor, never through a path that could be a link;
- everything inside is reached relative to that descriptor (``dir_fd``):
  files are created with ``O_CREAT | O_EXCL | O_NOFOLLOW``, mode 0600, and a
  file read back must be a regular file of the same user that nobody else
  can write.

A folder or file that fails a check raises :class:`FolderError`, whose
``str()`` is one line naming it and the cause, ready for a status line or
the command line. Nothing is repaired behind the user's back except the mode
of a folder that is already theirs.

Unix sockets in a private folder are bound and connected through
``/proc/self/fd/N/NAME`` on Linux: that address is short whatever the
folder's length (``sun_path`` holds 108 bytes, a long ``EARMARK_HOME`` does
not fit), and it names the checked folder itself, not whatever a path leads
to at the time. Elsewhere the plain path is used, and one that is too long is
reported as exactly that.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import os
import pwd
import secrets
import stat
import sys
from pathlib import Path

from earmark.errors import EarmarkError

__all__ = [
    "SOCKET_PATH_MAX_BYTES",
    "FolderError",
    "MissingFolderError",
    "PrivateFolder",
    "make_folder",
    "open_private",
    "write_problem",
]

# sun_path is 108 bytes on Linux and 104 on macOS and the BSDs, the final NUL included.
SOCKET_PATH_MAX_BYTES = (108 if sys.platform.startswith("linux") else 104) - 1

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
# O_NONBLOCK: opening a FIFO planted under the name must not hang the reader.
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class FolderError(EarmarkError):
    """A folder (or a file in it) cannot be created, opened or trusted.

    ``str()`` is one line, ``"<path>: <cause>"``; ``path`` and ``cause`` are
    also kept apart for callers that phrase their own line.
    """

    def __init__(self, path: str | os.PathLike[str], cause: str) -> None:
        self.path = Path(path)
        self.cause = cause
        super().__init__(f"{self.path}: {cause}")


class MissingFolderError(FolderError):
    """The folder does not exist (and was not to be created)."""


def _who(uid: int) -> str:
    try:
        return f"uid {uid} ({pwd.getpwuid(uid).pw_name})"
    except KeyError:
        return f"uid {uid}"


def _trust_problem(info: os.stat_result) -> str | None:
    """Why a folder or file with this ``stat`` is not the current user's alone, or None."""
    me = os.geteuid()
    if info.st_uid != me:
        return f"belongs to {_who(info.st_uid)}, not to you ({_who(me)})"
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o022:
        return f"is writable by other users (mode {mode:04o}; `chmod go-w` it)"
    return None


def _kind(info: os.stat_result) -> str:
    if stat.S_ISLNK(info.st_mode):
        return "a symbolic link"
    if stat.S_ISDIR(info.st_mode):
        return "a folder"
    if stat.S_ISREG(info.st_mode):
        return "a file"
    if stat.S_ISSOCK(info.st_mode):
        return "a socket"
    if stat.S_ISFIFO(info.st_mode):
        return "a named pipe"
    return "a special file"


def _create_cause(path: Path, exc: OSError) -> str:
    """What stops a folder from being created, in terms an engineer can act on."""
    for part in (*reversed(path.parents), path):
        try:
            info = part.stat()
        except OSError:
            break
        if not stat.S_ISDIR(info.st_mode):
            return f"cannot create it: {part} is {_kind(info)}, not a folder"
    if exc.errno == errno.EROFS:
        return "cannot create it: the file system is mounted read-only"
    if exc.errno == errno.ENOSPC:
        return "cannot create it: the disk is full"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "cannot create it: no write permission in its parent folder"
    return f"cannot create it: {exc.strerror or exc}"


def make_folder(path: str | os.PathLike[str], mode: int = 0o700) -> Path:
    """Create ``path`` and its missing parents with ``mode``; an existing folder is fine.

    Unlike ``os.makedirs`` the parents get ``mode`` too. Raises
    :class:`FolderError` naming what stops it (a file in the way, a read-only
    file system, no permission).
    """
    path = Path(path)
    if path.is_dir():
        return path
    missing: list[Path] = []
    for part in (path, *path.parents):
        if part.is_dir():
            break
        missing.append(part)
    try:
        for part in reversed(missing):
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, mode)
    except OSError as exc:
        raise FolderError(path, _create_cause(path, exc)) from exc
    if not path.is_dir():
        try:
            info = path.lstat()
        except OSError as exc:
            raise FolderError(path, _create_cause(path, exc)) from exc
        raise FolderError(path, f"is {_kind(info)}, not a folder")
    return path


def write_problem(folder: str | os.PathLike[str]) -> str | None:
    """Why files cannot be created in the existing ``folder`` now, or None if they can
    (a read-only file system, no write permission)."""
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return f"the file system holding {folder} is mounted read-only"
    except OSError:
        return None
    if not os.access(folder, os.W_OK):
        return f"the folder {folder} is read-only (no write permission)"
    return None


def _open_dir(
    shown: Path, name: str | os.PathLike[str], dir_fd: int | None, *, own_symlink: bool
) -> int:
    """Open a folder without following a final symbolic link (unless ours and allowed)."""
    try:
        return os.open(name, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=dir_fd)
    except FileNotFoundError:
        raise MissingFolderError(shown, "does not exist") from None
    except OSError as exc:
        try:
            info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except OSError:
            raise FolderError(shown, f"cannot open it: {exc.strerror or exc}") from None
        if stat.S_ISLNK(info.st_mode):
            if own_symlink and info.st_uid == os.geteuid():
                # A link the user made (a data folder moved to another disk): as good as
                # the folder it leads to, which is checked next. One planted by another
                # user is refused below.
                try:
                    return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
                except OSError as again:
                    raise FolderError(
                        shown, f"cannot open the folder it links to: {again.strerror or again}"
                    ) from None
            target = os.readlink(name, dir_fd=dir_fd)
            owner = "" if info.st_uid == os.geteuid() else f" made by {_who(info.st_uid)}"
            raise FolderError(
                shown, f"is a symbolic link{owner} (to {target}); refusing to follow it"
            ) from None
        if not stat.S_ISDIR(info.st_mode):
            raise FolderError(shown, f"is {_kind(info)}, not a folder") from None
        raise FolderError(shown, f"cannot open it: {exc.strerror or exc}") from None


def _checked(shown: Path, fd: int, tighten: bool) -> None:
    """Refuse (closing ``fd``) a folder that is not the user's alone; tighten it to 0700."""
    try:
        info = os.fstat(fd)
        problem = _trust_problem(info)
        if problem is not None:
            raise FolderError(shown, f"{problem}; refusing to use it")
        if tighten and stat.S_IMODE(info.st_mode) & 0o077:
            os.fchmod(fd, 0o700)
    except BaseException:
        os.close(fd)
        raise


def open_private(
    path: str | os.PathLike[str],
    *,
    create: bool = True,
    tighten: bool = True,
    own_symlink: bool = False,
) -> PrivateFolder:
    """Open ``path`` as a :class:`PrivateFolder` (see the module docstring).

    Args:
        path: the folder.
        create: create it (and missing parents) 0700 when missing; otherwise a
            missing folder raises :class:`MissingFolderError`.
        tighten: set an existing folder of the user's to 0700 (the run and rescue
            folders). ``False`` leaves a readable mode alone (the data folder).
        own_symlink: accept a final symbolic link owned by the user (then the
            folder it leads to is checked); one owned by anybody else is refused.

    Raises :class:`FolderError` (one line) when the folder cannot be trusted.
    """
    shown = Path(path)
    if create:
        make_folder(shown)
    fd = _open_dir(shown, shown, None, own_symlink=own_symlink)
    _checked(shown, fd, tighten)
    return PrivateFolder(shown, fd)


class PrivateFolder:
    """An open, checked private folder; everything in it is reached through its descriptor.

    Made by :func:`open_private` (or :meth:`folder` for a sub-folder). Close it
    (or use ``with``) when done.
    """

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self.fd = fd

    def close(self) -> None:
        """Close the descriptor."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> PrivateFolder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    def folder(self, name: str, *, create: bool = True) -> PrivateFolder:
        """The private sub-folder ``name``, created 0700 and checked like its parent."""
        if create:
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o700, dir_fd=self.fd)
        fd = _open_dir(self.path / name, name, self.fd, own_symlink=False)
        _checked(self.path / name, fd, tighten=True)
        return PrivateFolder(self.path / name, fd)

    def names(self, pattern: str = "*") -> list[str]:
        """The names in the folder matching the shell ``pattern``, sorted."""
        return sorted(n for n in os.listdir(self.fd) if fnmatch.fnmatchcase(n, pattern))

    def lstat(self, name: str) -> os.stat_result:
        """``lstat`` of ``name`` in the folder (a link is not followed)."""
        return os.stat(name, dir_fd=self.fd, follow_symlinks=False)

    def read_bytes(self, name: str) -> bytes:
        """The bytes of the file ``name``, refused unless it is a regular file of the
        user's alone (not a link, not a pipe, not another user's, not writable by others)."""
        shown = self.path / name
        try:
            fd = os.open(name, _READ_FLAGS, dir_fd=self.fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise FolderError(shown, "is a symbolic link; refusing to follow it") from None
            raise
        with os.fdopen(fd, "rb") as f:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise FolderError(shown, f"is {_kind(info)}, not a regular file; refusing it")
            problem = _trust_problem(info)
            if problem is not None:
                raise FolderError(shown, f"{problem}; refusing to read it")
            return f.read()

    def read_text(self, name: str) -> str:
        """:meth:`read_bytes` decoded as UTF-8."""
        return self.read_bytes(name).decode("utf-8")

    def write_new(self, name: str, data: bytes | str, *, sync: bool = True) -> Path:
        """Create ``name`` (0600, exclusively: an existing file or link fails) holding ``data``.

        ``sync`` flushes it to the disk before returning. A partial file is removed
        on failure. Returns the file's path.
        """
        raw = data.encode("utf-8") if isinstance(data, str) else data
        fd = os.open(name, _CREATE_FLAGS, 0o600, dir_fd=self.fd)
        try:
            view = memoryview(raw)
            while view:
                view = view[os.write(fd, view) :]
            if sync:
                os.fsync(fd)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(name, dir_fd=self.fd)
            raise
        os.close(fd)
        return self.path / name

    def replace(self, name: str, data: bytes | str, *, sync: bool = False) -> Path:
        """Write ``data`` to ``name`` atomically: a new, unpredictably named file renamed
        over it. A link at ``name`` is replaced, never followed."""
        temp = f".{name}.{os.getpid()}.{secrets.token_hex(6)}.tmp"
        self.write_new(temp, data, sync=sync)
        try:
            os.replace(temp, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp, dir_fd=self.fd)
            raise
        return self.path / name

    def unlink(self, name: str) -> None:
        """Remove ``name`` from the folder."""
        os.unlink(name, dir_fd=self.fd)

    def chmod(self, name: str, mode: int) -> None:
        """Set the mode of ``name`` (just made by us, in this folder nobody else can write)."""
        os.chmod(name, mode, dir_fd=self.fd)

    def socket_address(self, name: str) -> str:
        """The address to bind or connect a Unix socket ``name`` in this folder.

        On Linux ``/proc/self/fd/N/NAME`` (short, and bound to the checked folder);
        elsewhere the path, refused with :class:`FolderError` when longer than a
        socket address holds.
        """
        if sys.platform.startswith("linux") and os.path.isdir(f"/proc/self/fd/{self.fd}"):
            return f"/proc/self/fd/{self.fd}/{name}"
        full = self.path / name
        size = len(os.fsencode(full))
        if size > SOCKET_PATH_MAX_BYTES:
            raise FolderError(
                full,
                f"the path is {size} bytes, longer than a Unix socket address holds "
                f"({SOCKET_PATH_MAX_BYTES}); use a shorter folder",
            )
        return os.fspath(full)

    def check_socket(self, name: str) -> os.stat_result:
        """The ``lstat`` of the socket ``name``; :class:`FolderError` unless it is a socket
        of the user's. A missing one raises ``FileNotFoundError``."""
        info = self.lstat(name)
        if not stat.S_ISSOCK(info.st_mode):
            raise FolderError(self.path / name, f"is {_kind(info)}, not a socket; refusing it")
        if info.st_uid != os.geteuid():
            raise FolderError(
                self.path / name,
                f"belongs to {_who(info.st_uid)}, not to you ({_who(os.geteuid())}); refusing it",
            )
        return info
