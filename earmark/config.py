"""Where earmark keeps its files (DESIGN.md, "Environment").

``EARMARK_HOME`` overrides everything, so a test or a portable install keeps
its data in one folder: ``$EARMARK_HOME`` for data and ``$EARMARK_HOME/cache``
for caches. Without it, the platform's conventional folders are used through
platformdirs (on Linux ``~/.local/share/earmark`` and ``~/.cache/earmark``).

:func:`home` itself, and the user's preset folders (``$EARMARK_HOME/chains``,
``profiles``, ``controllers``), are ``earmark.presets.folders``'s.

Nothing here creates a folder: callers create what they write, and the
folders read back as trusted (the database's, the run folder, the rescue
folders) are opened through ``earmark.private.open_private``.

Where the run folder is (the control socket and the dashboard addresses):

- ``$EARMARK_HOME/run`` when ``EARMARK_HOME`` is set;
- else ``$XDG_RUNTIME_DIR/earmark`` when that variable names a private folder
  of the user's (as the XDG spec requires; on Linux usually ``/run/user/UID``);
- else ``/run/user/UID/earmark`` when that folder exists and is the user's,
- else ``runtime-UID/earmark`` in the temporary folder (``/tmp/runtime-UID``),
  as platformdirs decides. If another user already owns that name, the
  folder is refused with one line (set ``XDG_RUNTIME_DIR`` or ``EARMARK_HOME``).
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import platformdirs

# The data folder (and EARMARK_HOME) has one home, beside the user's preset folders
# (``earmark.presets.user_folder(kind)``) that engine/ and ui/ reach without the shell.
from earmark.presets.folders import HOME_ENV, home

__all__ = [
    "HOME_ENV",
    "cache_dir",
    "control_socket_file",
    "home",
    "plugin_cache_file",
    "runtime_dir",
    "store_file",
]

_APP = "earmark"


def cache_dir() -> Path:
    """The cache folder: ``$EARMARK_HOME/cache`` if set, else the platform's user cache folder."""
    override = os.environ.get(HOME_ENV, "")
    if override:
        return Path(override).expanduser() / "cache"
    return platformdirs.user_cache_path(_APP, appauthor=False)


def plugin_cache_file() -> Path:
    """The JSON file holding the results of ``earmark plugins scan``."""
    return cache_dir() / "plugins.json"


def store_file() -> Path:
    """The SQLite database of snapshots and session logs (earmark.store)."""
    return home() / "earmark.sqlite"


def runtime_dir() -> Path:
    """The run folder: a running session's control socket and dashboard address
    (``$EARMARK_HOME/run`` if set, else the platform's user runtime folder; see the
    module docstring).

    Raises ``earmark.private.FolderError`` (one line) when the platform's fallback
    folder belongs to another user.
    """
    override = os.environ.get(HOME_ENV, "")
    if override:
        return Path(override).expanduser() / "run"
    with warnings.catch_warnings():
        # Without XDG_RUNTIME_DIR platformdirs falls back to /run/user/UID or
        # /tmp/runtime-UID and warns; the fallback is what we want (created 0700, checked).
        warnings.simplefilter("ignore")
        try:
            return platformdirs.user_runtime_path(_APP, appauthor=False)
        except PermissionError as exc:
            # Recent platformdirs refuses a /tmp/runtime-UID planted by another user.
            from earmark.private import FolderError

            fallback = Path(tempfile.gettempdir()) / f"runtime-{os.geteuid()}"
            text = " ".join(str(exc).split())
            prefix = f"runtime directory {fallback} "
            raise FolderError(fallback, text.removeprefix(prefix)) from None


def control_socket_file() -> Path:
    """The Unix domain socket a running session answers ``earmark snapshot take`` on:
    ``control.sock`` in :func:`runtime_dir`."""
    return runtime_dir() / "control.sock"
