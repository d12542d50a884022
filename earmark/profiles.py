"""Finding profiles: shipped ones (``earmark.presets``, folder ``profiles``) and the user's.

``load_profile("jazz")`` looks the name up among the shipped profiles, then in the
user's folder (``$EARMARK_HOME/profiles``, where ``earmark profile build`` writes),
through :mod:`earmark.presets`; anything with a path separator, or naming an
existing file, is read as a file. ``"jazz+spotify"`` combines profiles left to right
(later ones override), the same as a file saying ``extends = ["jazz", "spotify"]``.

The format and the profile itself live in :mod:`earmark.meters.profile`; errors
are :class:`~earmark.errors.PresetError` naming file, line and key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from earmark import presets
from earmark.errors import PresetError
from earmark.meters.profile import Profile, ProfileData, build_profile, parse_profile

__all__ = [
    "DEFAULT_PROFILE",
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
        PresetError: missing, malformed, or extending something missing; the
            message names the file, line and key.
    """
    text = os.fspath(name_or_path).strip()
    if not text:
        raise PresetError("a profile name or file is needed")
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
    for preset in presets.listing("profiles", user_dir):
        try:
            data = parse_profile(preset.read(), preset.source)
            kind = str(data.top.get("kind", "generic"))
            description = str(data.top.get("description", ""))
            name = str(data.top.get("name", preset.name))
        except PresetError as exc:
            kind, description, name = "invalid", str(exc), preset.name
        out.append(ProfileInfo(name, kind, description, preset.origin, preset.path))
    return out


# -- internals ----------------------------------------------------------------------------


def _chain(text: str, user_dir: Path | None, seen: tuple[str, ...]) -> list[ProfileData]:
    """The parsed file for ``text`` preceded by everything it extends (bases first)."""
    preset = presets.find("profiles", text, user_dir)
    shown = preset.source
    if shown in seen:
        raise PresetError(f"extends itself through {' -> '.join((*seen, shown))}", shown)
    if len(seen) >= _MAX_DEPTH:
        raise PresetError(f"extends more than {_MAX_DEPTH} profiles deep", shown)
    data = parse_profile(preset.read(), shown)
    try:
        bases = _linear(list(data.extends), user_dir, (*seen, shown))
    except PresetError as exc:
        if exc.source and exc.source != shown:
            raise
        raise PresetError(
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


def _name_of(text: str, user_dir: Path | None) -> str:
    text, shown = presets.load("profiles", text.strip(), user_dir)
    data = parse_profile(text, shown)
    return str(data.top.get("name", presets.name_key(Path(shown).stem)))


def _is_file(text: str) -> bool:
    return Path(text).expanduser().is_file()
