"""Finding profiles: shipped ones (``earmark.presets``, folder ``profiles``) and the user's.

``load_profile("jazz")`` looks the name up among the shipped profiles, then in the
user's folder (:func:`earmark.config.user_profiles_dir`, where ``earmark profile
build`` writes); anything with a path separator, or naming an existing file, is
read as a file. ``"jazz+spotify"`` combines profiles left to right (later ones
override), the same as a file saying ``extends = ["jazz", "spotify"]``.

The format and the profile itself live in :mod:`earmark.meters.profile`; errors
are :class:`~earmark.meters.profile.ProfileError` naming file, line and key.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from earmark import config
from earmark.meters.profile import Profile, ProfileData, ProfileError, build_profile, parse_profile
from earmark.presets.tomltools import toml_files

__all__ = [
    "DEFAULT_PROFILE",
    "ProfileError",
    "ProfileInfo",
    "default_profile",
    "list_profiles",
    "load_profile",
    "resolve_profile",
]

DEFAULT_PROFILE = "default"
_MAX_DEPTH = 8


@dataclass(frozen=True, slots=True)
class ProfileInfo:
    """One entry of ``earmark profile list``."""

    name: str
    kind: str
    description: str
    origin: str  # "built-in" or "user"
    path: str


def load_profile(name_or_path: str | os.PathLike[str], user_dir: Path | None = None) -> Profile:
    """Read a profile by name, file path or ``a+b`` combination.

    Raises:
        ProfileError: missing, malformed, or extending something missing; the
            message names the file, line and key.
    """
    text = os.fspath(name_or_path).strip()
    if not text:
        raise ProfileError("a profile name or file is needed")
    if "+" in text and not _is_file(text):
        parts = [p.strip() for p in text.split("+") if p.strip()]
        chain = _linear(parts, user_dir, ())
        return build_profile(chain, name="+".join(_name_of(p, user_dir) for p in parts))
    return build_profile(_chain(text, user_dir, ()))


def resolve_profile(profile: Profile | str | os.PathLike[str] | None) -> Profile:
    """A :class:`Profile` as given, loaded by name/path, or the default for None."""
    if profile is None:
        return default_profile()
    if isinstance(profile, Profile):
        return profile
    return load_profile(profile)


def default_profile() -> Profile:
    """Generic music: only unambiguous problems (``presets/profiles/default.toml``)."""
    return load_profile(DEFAULT_PROFILE)


def list_profiles(user_dir: Path | None = None) -> list[ProfileInfo]:
    """Built-in profiles, then the user's (a user profile may shadow nothing built in)."""
    out: list[ProfileInfo] = []
    seen: set[str] = set()
    for origin, folder in _folders(user_dir):
        for entry in toml_files(folder):
            stem = entry.name[: -len(".toml")]
            if _key(stem) in seen:
                continue
            seen.add(_key(stem))
            try:
                data = parse_profile(entry.read_text(encoding="utf-8"), entry.name)
                kind = str(data.top.get("kind", "generic"))
                description = str(data.top.get("description", ""))
                name = str(data.top.get("name", stem))
            except (ProfileError, OSError, UnicodeDecodeError) as exc:
                kind, description, name = "invalid", str(exc), stem
            out.append(ProfileInfo(name, kind, description, origin, str(entry)))
    return out


# -- internals ----------------------------------------------------------------------------


def _chain(text: str, user_dir: Path | None, seen: tuple[str, ...]) -> list[ProfileData]:
    """The parsed file for ``text`` preceded by everything it extends (bases first)."""
    path, shown = _find(text, user_dir)
    if shown in seen:
        raise ProfileError(f"extends itself through {' -> '.join((*seen, shown))}", shown)
    if len(seen) >= _MAX_DEPTH:
        raise ProfileError(f"extends more than {_MAX_DEPTH} profiles deep", shown)
    data = _read(path, shown)
    try:
        bases = _linear(list(data.extends), user_dir, (*seen, shown))
    except ProfileError as exc:
        if exc.source and exc.source != shown:
            raise
        raise ProfileError(
            f"extends: {exc.cause}", shown, data.lines.get("extends"), "extends"
        ) from None
    return [*bases, data]


def _linear(texts: list[str], user_dir: Path | None, seen: tuple[str, ...]) -> list[ProfileData]:
    """Several profiles in order: all their bases first, then the profiles themselves, so
    that what a later profile inherits never overrides what an earlier one sets itself
    (``jazz+spotify``: spotify's loudness target on jazz's dynamics, not the default's)."""
    chains = [_chain(t, user_dir, seen) for t in texts]
    ordered = [d for c in chains for d in c[:-1]] + [c[-1] for c in chains]
    out: list[ProfileData] = []
    for data in ordered:
        if not any(d is data or (d.source and d.source == data.source) for d in out):
            out.append(data)
    return out


def _find(text: str, user_dir: Path | None) -> tuple[Any, str]:
    as_path = Path(text).expanduser()
    if os.sep in text or "/" in text or _is_file(text):
        return as_path, text
    wanted = _key(text.removesuffix(".toml"))
    for _, folder in _folders(user_dir):
        for entry in toml_files(folder):
            if _key(entry.name[: -len(".toml")]) == wanted:
                return entry, entry.name
    names = ", ".join(p.name for p in list_profiles(user_dir)) or "none"
    raise ProfileError(f"no profile named {text!r} (available: {names})")


def _read(path: Any, shown: str) -> ProfileData:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProfileError("no such file", shown) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"cannot read: {exc}", shown) from None
    return parse_profile(text, shown)


def _name_of(text: str, user_dir: Path | None) -> str:
    path, shown = _find(text.strip(), user_dir)
    data = _read(path, shown)
    return str(data.top.get("name", _key(Path(shown).stem)))


def _folders(user_dir: Path | None) -> list[tuple[str, Any]]:
    return [
        ("built-in", resources.files("earmark.presets") / "profiles"),
        ("user", Path(user_dir) if user_dir is not None else config.user_profiles_dir()),
    ]


def _is_file(text: str) -> bool:
    return Path(text).expanduser().is_file()


def _key(name: str) -> str:
    return re.sub(r"[\s_]+", "-", name.strip().casefold())
