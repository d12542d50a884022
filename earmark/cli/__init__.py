"""The ``earmark`` command line (a public interface: README, "Commands").

This package's ``main`` parses the arguments; every command group lives in its own
module and registers its subcommands in :func:`_parser`: ``analyze`` (analyze and
``demo --offline``), ``live`` (demo, run, devices), ``plugins``, ``diff``, ``render``,
``profile``, ``snapshots`` (snapshots, snapshot, history), ``midi``, ``dashboard``.
``args`` holds the argument checks every command shares.

Exit codes (earmark.errors): 0 ok; 1 ``--strict`` and a flag of severity ``problem``
was found; 2 usage error; 3 unreadable input or an unavailable device, display or
session. Errors never print a traceback unless ``EARMARK_DEBUG=1``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from earmark.errors import EXIT_OK, EXIT_USAGE

_PROG = "earmark"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (the console script exits with it)."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.handler(args, args.subparser))
    except KeyboardInterrupt:
        print(f"{_PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `earmark analyze ... | head`: stop quietly, as Unix tools do.
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line on stderr (the CLI contract), exit 2. Every subcommand's
    parser is one of these too (``add_subparsers`` makes its parsers of the same class)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {' '.join(message.split())} (see --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=_PROG,
        description="Real-time metering plugin host for mastering engineers.",
        epilog="Exit codes: 0 ok, 1 problem flags with --strict, 2 usage error, "
        "3 unreadable input. EARMARK_DEBUG=1 shows tracebacks.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    # Each command group registers its subcommands (imported here, not at the top, so
    # that `earmark --version` stays light).
    from earmark.cli import (
        analyze,
        compare,
        dashboard,
        diff,
        listen,
        live,
        midi,
        plugins,
        profile,
        render,
        snapshots,
    )
    from earmark.cli import audit as audit_cli  # earmark audit (issue 21)

    analyze.register(sub)
    live.register(sub, offline_demo=analyze.offline_demo)
    plugins.register(sub)
    diff.register(sub)
    compare.register(sub)
    render.register(sub)
    profile.register(sub)
    dashboard.register(sub)
    snapshots.register(sub)
    midi.register(sub)
    listen.register(sub)
    audit_cli.register(sub)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("earmark")
    except PackageNotFoundError:
        return "unknown"
