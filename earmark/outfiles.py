"""Writing an output file a command was asked for (reports, exports), safely.

One home for the rules every report and export follows (``analyze --report``,
``diff --report``, ``snapshots export --out``):

- An input of the same command is never written over, even with ``--force``:
  the same file is recognised through symbolic links and hard links
  (:func:`os.path.samefile`) as well as by its resolved path.
- An existing file (or symbolic link) is replaced only with ``force``.
- The data goes to a temporary file created exclusively in the target's own
  folder, is flushed to disk, then renamed onto the target in one step, so a
  reader (or a crash) sees the old file or the new one, never half of one. A
  symbolic link at the target is replaced by the new file, never written
  through.

Every refusal or failure is an :class:`OutputError` whose ``str()`` is one line
naming the option and the file; the command line prints it as
``earmark: <line>`` and exits 2 (``OutputError.exit_code``: a usage error).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Iterable
from pathlib import Path

from earmark.errors import EXIT_USAGE, EarmarkError

__all__ = ["OutputError", "check", "write"]


StrPath = str | os.PathLike[str]


class OutputError(EarmarkError):
    """An output file that must not or cannot be written. ``str()`` is one line."""

    exit_code = EXIT_USAGE


def check(
    path: StrPath, *, inputs: Iterable[StrPath] = (), force: bool = False, option: str = "--out"
) -> Path:
    """Raise :class:`OutputError` if ``path`` must not or cannot be written; return it.

    Called before a long piece of work (so a refusal comes first) and again by
    :func:`write` just before the file is replaced. ``inputs`` are the files the
    command reads; ``option`` names the output in the message (``--report``).
    """
    target = Path(os.fspath(path))
    where = f"{option} {target}"
    for source in inputs:
        if _same_file(target, Path(os.fspath(source))):
            raise OutputError(
                f"{where}: is the input {os.fspath(source)}; choose another file "
                "(--force never replaces an input)"
            )
    if target.is_dir():
        raise OutputError(f"{where}: is a folder; give a file name")
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise OutputError(f"{where}: cannot write: no such folder {folder}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{where}: cannot write: permission denied in {folder}")
    if os.path.lexists(target) and not force:
        raise OutputError(f"{where}: exists; give --force to replace it, or another file name")
    return target


def write(
    path: StrPath,
    data: bytes | str,
    *,
    inputs: Iterable[StrPath] = (),
    force: bool = False,
    option: str = "--out",
) -> Path:
    """Write ``data`` (``str`` as UTF-8) to ``path`` under the rules above; return the path.

    Without ``force`` the file is put in place with a hard link, which fails if a
    file appeared there in the meantime (no window between the check and the
    write); on a file system without hard links the check is made again just
    before the rename.
    """
    inputs = tuple(inputs)
    target = check(path, inputs=inputs, force=force, option=option)
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    where = f"{option} {target}"
    tmp = _write_temporary(target, payload, where)
    try:
        if force:
            os.replace(tmp, target)
        else:
            _link_new(tmp, target, where, inputs, option)
    except OSError as exc:
        raise OutputError(f"{where}: cannot write: {_cause(exc)}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    _sync_folder(target.parent)
    return target


def _write_temporary(target: Path, payload: bytes, where: str) -> Path:
    """The data in a new file next to ``target``: created exclusively (never an existing
    file or a planted link), flushed and synced."""
    folder = target.parent if str(target.parent) else Path(".")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    for _ in range(16):
        tmp = folder / f".{target.name}.{secrets.token_hex(6)}.tmp"
        try:
            # 0o666 before the umask: the same permissions as any file the user creates.
            fd = os.open(tmp, flags, 0o666)
        except FileExistsError:
            continue
        except OSError as exc:
            raise OutputError(f"{where}: cannot write: {_cause(exc)}") from None
        break
    else:  # pragma: no cover - 16 collisions of 48 random bits
        raise OutputError(f"{where}: cannot write: no free temporary name in {folder}")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise OutputError(f"{where}: cannot write: {_cause(exc)}") from None
    return tmp


def _link_new(tmp: Path, target: Path, where: str, inputs: tuple, option: str) -> None:
    """Put ``tmp`` at ``target`` only if nothing is there (atomically where possible)."""
    try:
        os.link(tmp, target, follow_symlinks=False)
    except FileExistsError:
        raise OutputError(
            f"{where}: exists; give --force to replace it, or another file name"
        ) from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
            raise
        # No hard links here (FAT, some network shares): check again, then rename.
        check(target, inputs=inputs, force=False, option=option)
        os.replace(tmp, target)


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable (best effort: not every file system allows it)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder if str(folder) else ".", os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` name one file: one inode (links of either kind), or one
    resolved path (when either does not exist yet)."""
    with contextlib.suppress(OSError):
        if os.path.samefile(a, b):
            return True
    # A dangling link at ``a`` pointing at ``b`` (or the reverse) resolves to the same path.
    with contextlib.suppress(OSError, RuntimeError):
        return os.path.realpath(a) == os.path.realpath(b)
    return False


def _cause(exc: OSError) -> str:
    return (exc.strerror or str(exc) or type(exc).__name__).lower()
