"""``earmark profile list`` and ``earmark profile build NAME FILE...``."""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

from earmark.errors import EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$")


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``profile list`` and ``profile build`` to the top-level subparsers."""
    profile = sub.add_parser(
        "profile",
        help="list profiles; learn one from trusted masters",
        description="Profiles hold a genre's or a delivery's expectations (loudness target, "
        "true-peak ceiling, PSR/LRA/PLR/DR floors, tonal target, harshness and resonance "
        "thresholds). Use them with --profile NAME|FILE.",
    )
    actions = profile.add_subparsers(dest="profile_command", metavar="ACTION")
    listing = actions.add_parser("list", help="built-in and user profiles")
    listing.set_defaults(handler=_cmd_list, subparser=listing)
    build = actions.add_parser(
        "build",
        help="learn a profile from masters you trust",
        description="Meter each FILE and write a commented profile NAME.toml to the user "
        "profiles folder: loudness, true-peak ceiling, PSR/LRA/PLR/DR floors, onset crest "
        "and the tonal target curve with its spread, each learned from the files with a "
        "margin so that every file passes it. An unreadable FILE is reported and skipped.",
    )
    build.add_argument("name", metavar="NAME", help="the new profile's name")
    build.add_argument("files", nargs="+", metavar="FILE", help="trusted masters")
    build.add_argument("--description", default="", metavar="TEXT")
    build.add_argument("--force", action="store_true", help="replace an existing user profile")
    build.set_defaults(handler=_cmd_build, subparser=build)
    profile.set_defaults(handler=_cmd_help, subparser=profile)


def _say(message: str) -> None:
    print(f"earmark: {' '.join(message.split())}", file=sys.stderr, flush=True)


def _cmd_help(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def _cmd_list(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from rich.console import Console
    from rich.table import Table

    from earmark.errors import PresetError
    from earmark.presets import user_folder
    from earmark.profiles import list_profiles

    try:
        profiles = list_profiles()
    except PresetError as exc:  # the user's folder is not theirs alone
        _say(str(exc))
        return EXIT_USAGE
    table = Table(header_style="bold")
    for col in ("name", "kind", "origin", "description"):
        table.add_column(col, overflow="fold")
    for p in profiles:
        origin = p.origin if p.origin == "built-in" else f"user ({p.path})"
        table.add_row(p.name, p.kind, origin, p.description)
    out = Console(width=None if sys.stdout.isatty() else 160, highlight=False)
    out.print(table)
    out.print(
        f"user profiles: {user_folder('profiles')}  ·  combine with +, e.g. jazz+spotify",
        markup=False,
    )
    return EXIT_OK


def _cmd_build(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from earmark.engine.files import AudioFileError
    from earmark.errors import PresetError
    from earmark.offline.learn import learn_profile_text, measure_reference
    from earmark.presets import name_key, shipped, user_folder
    from earmark.private import FolderError, make_folder, write_problem
    from earmark.profiles import load_profile
    from earmark.store import describe_error

    name = args.name.strip()
    if not _NAME.match(name) or name.endswith(".toml"):
        parser.error(
            f"NAME {args.name!r}: use letters, digits, space, '-', '_' or '.', up to 64"
            " characters, no path"
        )
    key = name.casefold().replace(" ", "-").replace("_", "-")
    builtin = {name_key(p.name) for p in shipped("profiles")}  # the user's folder may not exist
    if key in builtin:
        parser.error(f"NAME {name!r} is a built-in profile; choose another name")
    folder = user_folder("profiles")
    target = folder / f"{key}.toml"
    if target.exists() and not args.force:
        parser.error(f"{target} exists; add --force to replace it")
    # Before metering (which takes a while): can the profile be written at all?
    try:
        make_folder(folder)
    except FolderError as exc:
        _say(f"cannot write the profile: {exc}")
        return EXIT_UNAVAILABLE
    problem = write_problem(folder)
    if problem is not None:
        _say(f"cannot write the profile to {target}: {problem}")
        return EXIT_UNAVAILABLE
    measured = []
    for path in args.files:
        try:
            measured.append(measure_reference(path))
        except AudioFileError as exc:
            _say(f"{path}: {exc.cause} (skipped)")
    if not measured:
        _say("no readable reference; nothing written")
        return EXIT_UNAVAILABLE
    text = learn_profile_text(name, measured, args.description)
    try:
        # A fresh file of an unpredictable name (O_EXCL), renamed over the target: a
        # reader never sees half a profile, and no link at a known name is followed.
        fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{key}.", suffix=".toml.tmp")
        tmp = Path(tmp_name)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as exc:
        _say(f"cannot write the profile to {target}: {describe_error(exc)}")
        return EXIT_UNAVAILABLE
    try:
        profile = load_profile(str(tmp))  # what we wrote must read back
    except PresetError as exc:  # pragma: no cover - a bug in the writer
        tmp.unlink(missing_ok=True)
        _say(f"internal error: the learned profile does not read back: {exc}")
        return EXIT_USAGE
    try:
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        _say(f"cannot write the profile to {target}: {describe_error(exc)}")
        return EXIT_UNAVAILABLE
    print(f"wrote {target} ({len(measured)} reference{'s' if len(measured) != 1 else ''})")
    dyn = profile.dynamics
    if profile.loudness is not None:
        lt = profile.loudness
        print(f"  loudness {lt.target_lufs:.1f} LUFS ±{lt.tolerance_lu:.1f} LU")
    if dyn is not None:
        parts = [
            f"{label} >= {value:g}"
            for label, value in (
                ("PSR", dyn.psr_min_db),
                ("LRA", dyn.lra_min_lu),
                ("PLR", dyn.plr_min_db),
                ("DR", dyn.dr_min),
            )
            if value is not None
        ]
        print("  " + ", ".join(parts))
    print(f"  use it with: earmark analyze --profile {key} FILE")
    skipped = len(args.files) - len(measured)
    return EXIT_UNAVAILABLE if skipped else EXIT_OK
