"""Where presets are: the shipped folders and the user's, and where earmark keeps its data.

``EARMARK_HOME`` overrides everything, so a test or a portable install keeps its
data in one folder. Without it the platform's user data folder is used through
platformdirs (on Linux ``~/.local/share/earmark``). The user's presets sit in
``chains/``, ``profiles/`` and ``controllers/`` there (``earmark profile build``
and ``earmark midi learn`` write into the last two); the shipped ones in the same
folders of this package.

Here rather than in the shell's ``earmark.config`` (which uses :func:`home` for
everything else it places) so that engine/ and ui/, which may import presets/ but
not the shell, find the user's presets by name.
"""

from __future__ import annotations

import os
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import platformdirs

__all__ = ["HOME_ENV", "KINDS", "home", "shipped_folder", "user_folder"]

HOME_ENV = "EARMARK_HOME"
_APP = "earmark"

# kind -> what one preset of that kind is called in messages ("no chain preset named ...").
KINDS = {"chains": "chain preset", "profiles": "profile", "controllers": "controller map"}


def home() -> Path:
    """The data folder: ``$EARMARK_HOME`` if set, else the platform's user data folder."""
    override = os.environ.get(HOME_ENV, "")
    if override:
        return Path(override).expanduser()
    return platformdirs.user_data_path(_APP, appauthor=False)


def user_folder(kind: str) -> Path:
    """The folder of the user's presets of ``kind`` (one of :data:`KINDS`): ``kind`` in
    :func:`home`. Nothing is created here; what writes there creates it 0700."""
    _check_kind(kind)
    return home() / kind


def shipped_folder(kind: str) -> Traversable:
    """The folder of earmark's shipped presets of ``kind`` (an importlib resource)."""
    _check_kind(kind)
    return resources.files(__package__) / kind


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"no preset kind {kind!r}; kinds are {', '.join(KINDS)}")
