"""The one preset loader: chains, profiles and controller maps, by name or by path.

A name (``"gentle-master"``, ``"Gentle Master"``, ``"gentle_master.toml"``) is
matched case-insensitively, with spaces and underscores read as hyphens, against
the file names (without ``.toml``) of

1. the shipped presets (:func:`~earmark.presets.folders.shipped_folder`), then
2. the user's (:func:`~earmark.presets.folders.user_folder`, ``$EARMARK_HOME/KIND``).

The shipped preset wins a tie: a name the README documents ("gentle-master",
"jazz", "korg-nanokontrol2") means the same on every machine, and ``earmark
profile build`` refuses the names of shipped profiles. Anything with a path
separator, or naming an existing file, is read as that file.

The user's folder is read only when it is the user's alone (``earmark.private``,
a leaf of the standard library like ``earmark.errors``): a chain preset can name
a plugin bundle to load, so a folder or file another user can write, or a link in
it, is refused in one line rather than followed. A missing folder holds no presets.

Every failure is a :class:`~earmark.errors.PresetError` naming the file (the file
name for a preset found by name, the path as given otherwise); the parsers of each
kind add the line and the key.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from earmark.errors import PresetError
from earmark.private import FolderError, MissingFolderError, PrivateFolder, open_private

from .folders import KINDS, shipped_folder, user_folder
from .tomltools import toml_files

__all__ = ["Preset", "find", "listing", "load", "name_key", "names", "shipped"]

BUILT_IN = "built-in"
USER = "user"
FILE = "file"


@dataclass(frozen=True, slots=True)
class Preset:
    """One preset file, found but not read yet.

    ``name`` is the file name without ``.toml``; ``origin`` is ``"built-in"``,
    ``"user"`` or ``"file"`` (a path given as such); ``path`` where it is;
    ``source`` how messages name it.
    """

    kind: str
    name: str
    origin: str
    path: str
    source: str

    def read(self) -> str:
        """The preset's text. Raises :class:`PresetError` (one line) when it cannot be read,
        or when a user's preset or its folder is not the user's alone."""
        try:
            if self.origin == USER:
                folder = Path(self.path).parent
                with _open_user(folder) as private:
                    return private.read_text(Path(self.path).name)
            if self.origin == BUILT_IN:
                return (shipped_folder(self.kind) / Path(self.path).name).read_text(
                    encoding="utf-8"
                )
            return Path(self.path).expanduser().read_text(encoding="utf-8")
        except FolderError as exc:
            raise PresetError(exc.cause, str(exc.path)) from None
        except FileNotFoundError:
            raise PresetError("no such file", self.source) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise PresetError(f"cannot read: {exc}", self.source) from None


def load(
    kind: str, name_or_path: str | os.PathLike[str], user_dir: str | os.PathLike[str] | None = None
) -> tuple[str, str]:
    """The text of a preset of ``kind`` (``"chains"``, ``"profiles"``, ``"controllers"``)
    given by name or path, and its ``source`` (the name its messages use).

    ``user_dir`` replaces the user's folder (tests; default ``user_folder(kind)``).

    Raises:
        PresetError: no such preset (naming those available), or unreadable.
    """
    preset = find(kind, name_or_path, user_dir)
    return preset.read(), preset.source


def find(
    kind: str, name_or_path: str | os.PathLike[str], user_dir: str | os.PathLike[str] | None = None
) -> Preset:
    """The preset of ``kind`` named or pointed to by ``name_or_path`` (see the module
    docstring for the order), not read yet.

    Raises:
        PresetError: no preset of that name (the message lists those available), or
            the user's folder cannot be trusted.
    """
    text = os.fspath(name_or_path)
    as_path = Path(text).expanduser()
    separator = os.sep in text or "/" in text
    if separator or as_path.is_file() or (text.endswith(".toml") and as_path.exists()):
        return Preset(kind, as_path.stem, FILE, str(as_path), text)
    wanted = name_key(text.removesuffix(".toml"))
    for preset in shipped(kind):
        if name_key(preset.name) == wanted:
            return preset
    for preset in _user(kind, user_dir):
        if name_key(preset.name) == wanted:
            return preset
    available = ", ".join(names(kind, user_dir)) or "none"
    raise PresetError(f"no {KINDS[kind]} named {text!r} (available: {available})")


def listing(kind: str, user_dir: str | os.PathLike[str] | None = None) -> list[Preset]:
    """Every preset of ``kind`` a name can reach: the shipped ones, then the user's that
    no shipped one shadows, each in file-name order.

    Raises:
        PresetError: the user's folder cannot be trusted (one line naming it).
    """
    out = shipped(kind)
    taken = {name_key(p.name) for p in out}
    for preset in _user(kind, user_dir):
        if name_key(preset.name) not in taken:
            taken.add(name_key(preset.name))
            out.append(preset)
    return out


def names(kind: str, user_dir: str | os.PathLike[str] | None = None) -> list[str]:
    """The names of :func:`listing` (shipped first)."""
    return [p.name for p in listing(kind, user_dir)]


def name_key(name: str) -> str:
    """How names are matched: case folded, runs of spaces and underscores read as one
    hyphen (``"Gentle Master"``, ``"gentle_master"`` -> ``"gentle-master"``)."""
    return re.sub(r"[\s_]+", "-", name.strip().casefold())


def shipped(kind: str) -> list[Preset]:
    """The shipped presets of ``kind``, in file-name order (no user's folder read)."""
    return [
        Preset(kind, e.name[: -len(".toml")], BUILT_IN, str(e), e.name)
        for e in toml_files(shipped_folder(kind))
    ]


# -- internals ----------------------------------------------------------------------------


def _user(kind: str, user_dir: str | os.PathLike[str] | None) -> list[Preset]:
    folder = Path(user_dir).expanduser() if user_dir is not None else user_folder(kind)
    try:
        with _open_user(folder) as private:
            found = []
            for name in private.names("*.toml"):
                mode = private.lstat(name).st_mode
                # A link is listed so that reading it says why it is refused.
                if stat.S_ISREG(mode) or stat.S_ISLNK(mode):
                    found.append(name)
    except MissingFolderError:
        return []
    except FolderError as exc:
        raise PresetError(exc.cause, str(exc.path)) from None
    return [Preset(kind, n[: -len(".toml")], USER, str(folder / n), n) for n in found]


def _open_user(folder: Path) -> PrivateFolder:
    """The user's preset folder, checked (never created, its mode left alone; a link the
    user made to it is followed, like the data folder's)."""
    return open_private(folder, create=False, tighten=False, own_symlink=True)
