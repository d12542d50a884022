"""earmark.presets: the shipped presets (chains/, profiles/, controllers/: TOML data) and
the one loader that finds them, and the user's, by name.

``load(kind, name_or_path)`` gives a preset's text and the name its messages use;
``names(kind)`` and ``listing(kind)`` what a name can reach (shipped first: a shipped
preset wins over a user's of the same name); ``user_folder(kind)`` where the user's
are. Every failure is one :class:`~earmark.errors.PresetError` naming the file, and
the line and key when they are known. Imports nothing of the project but the leaves
``earmark.errors`` and ``earmark.private``.
"""

from earmark.errors import PresetError

from .folders import HOME_ENV, KINDS, home, shipped_folder, user_folder
from .loader import Preset, find, listing, load, name_key, names, shipped

__all__ = [
    "HOME_ENV",
    "KINDS",
    "Preset",
    "PresetError",
    "find",
    "home",
    "listing",
    "load",
    "name_key",
    "names",
    "shipped",
    "shipped_folder",
    "user_folder",
]
