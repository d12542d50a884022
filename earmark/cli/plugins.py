"""``earmark plugins scan`` and ``earmark plugins list`` (DESIGN.md, "Command line").

``earmark plugins scan [PATH...] [--force] [--timeout S] [--jobs N]``
    Validate every plugin bundle under PATH (folders or bundles; default: the
    platform's VST3/AU folders after ``EARMARK_PLUGIN_PATH``), each in its own
    child process, and cache the results. A plugin that crashes, hangs, exits
    or outputs NaN/Inf is listed as ``bad`` with the reason; the scan goes on.
    Unchanged bundles are not probed again unless ``--force`` is given.

``earmark plugins list [--json]``
    Show the cached results: name, format, channels, latency, CPU, status, reason;
    bundles found in the search path but not scanned yet are listed as such
    (``--json`` prints the cached records only).

Exit codes: 0 ok (bad plugins are a result, not an error); 2 usage error;
3 a PATH given to ``scan`` does not exist (the others are still scanned).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from earmark import config
from earmark.errors import EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE

__all__ = ["register"]

_PIPE_WIDTH = 160


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``plugins scan`` and ``plugins list`` to the ``earmark`` command's subparsers."""
    plugins = subparsers.add_parser(
        "plugins",
        help="scan and list VST3/AU plugins (each validated in a child process)",
        description="Find plugins, validate each one in a child process (a crash or hang "
        "marks it bad instead of stopping the scan), and list the results.",
    )
    plugins.set_defaults(handler=_cmd_help, subparser=plugins)
    sub = plugins.add_subparsers(dest="plugins_command", metavar="SUBCOMMAND")

    scan = sub.add_parser(
        "scan",
        help="validate plugin bundles and cache the results",
        description="Probe each bundle under PATH in a child process: load it, process 1 s "
        "of noise at 48 kHz, check the output is finite, read its channels, latency and "
        "parameters. Default PATHs: EARMARK_PLUGIN_PATH, then the platform's plugin folders.",
    )
    scan.add_argument("paths", nargs="*", metavar="PATH", help="folder or plugin bundle")
    scan.add_argument(
        "--force", action="store_true", help="probe again even bundles that have not changed"
    )
    scan.add_argument(
        "--timeout",
        type=_positive_float,
        default=20.0,
        metavar="S",
        help="seconds one probe may take before it is killed (default 20)",
    )
    scan.add_argument(
        "--jobs", type=_positive_int, default=None, metavar="N", help="probes run at once"
    )
    scan.set_defaults(handler=_cmd_scan, subparser=scan)

    listing = sub.add_parser("list", help="show the results of the last scan")
    listing.add_argument("--json", action="store_true", help="print the cached records as JSON")
    listing.set_defaults(handler=_cmd_list, subparser=listing)
    return plugins


def _cmd_help(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def _cmd_scan(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from earmark.engine import plugins

    status = EXIT_OK
    paths = list(args.paths)
    for path in paths:
        if not os.path.exists(path):
            print(f"earmark: {path}: no such file or directory", file=sys.stderr)
            status = EXIT_UNAVAILABLE
    roots = [p for p in paths if os.path.exists(p)] if paths else plugins.default_search_path()
    if paths and not roots:
        return status
    cache = config.plugin_cache_file()
    bundles = plugins.find_bundles(roots)
    if not bundles:
        where = ", ".join(str(r) for r in roots) or "nowhere"
        print(f"earmark: no plugin bundles found in {where}", file=sys.stderr)
        return status
    print(
        f"earmark: checking {len(bundles)} plugin bundle{'s' if len(bundles) != 1 else ''} "
        f"(up to {args.timeout:g} s each)...",
        file=sys.stderr,
        flush=True,
    )
    records = plugins.scan(bundles, cache, timeout_s=args.timeout, force=args.force, jobs=args.jobs)
    _print_records(records)
    bad = sum(1 for r in records if not r.ok)
    print(
        f"earmark: {len(records) - bad} ok, {bad} bad; results cached in {cache}", file=sys.stderr
    )
    return status


def _cmd_list(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from earmark.engine import plugins

    cache = config.plugin_cache_file()
    records = plugins.load_records(cache)
    if args.json:
        sys.stdout.write(json.dumps([r.to_json() for r in records], indent=2) + "\n")
        return EXIT_OK
    unscanned = plugins.unscanned_bundles(records)
    if not records and not unscanned:
        where = ", ".join(str(p) for p in plugins.default_search_path())
        print(f"earmark: no plugins scanned and no plugin bundles in {where}", file=sys.stderr)
        return EXIT_OK
    formats = plugins.BUNDLE_FORMATS
    waiting = [
        plugins.PluginRecord(str(b), formats.get(b.suffix.lower(), "vst3"), 0, "not scanned")
        for b in unscanned
    ]
    _print_records([*records, *waiting])
    if waiting:
        print(
            f"earmark: {len(waiting)} plugin bundle{'s' if len(waiting) != 1 else ''} not "
            "scanned yet; run 'earmark plugins scan' to validate them",
            file=sys.stderr,
        )
    return EXIT_OK


def _print_records(records: list[Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(show_header=True, header_style="bold")
    table.add_column("Name")
    table.add_column("Format")
    table.add_column("Channels")
    table.add_column("Latency", justify="right")
    table.add_column("CPU", justify="right")
    table.add_column("Status")
    table.add_column("Reason", overflow="fold")
    for r in sorted(records, key=lambda r: (r.display_name.casefold(), r.path)):
        channels = {1: "mono", 2: "stereo"}.get(r.input_channels or 0, "-")
        latency = "-" if r.latency_samples is None else f"{r.latency_samples} smp"
        # Probe time for 1 s of audio, as a share of real time.
        cpu = "-" if r.process_ms is None else f"{r.process_ms / 10.0:.1f}%"
        status = "ok" if r.ok else "[red]bad[/red]" if r.status == "bad" else r.status
        table.add_row(r.display_name, r.format.upper(), channels, latency, cpu, status, r.reason)
    out = sys.stdout
    width = None if out.isatty() else _PIPE_WIDTH
    Console(file=out, width=width, highlight=False, soft_wrap=False).print(table)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 < value <= 3600.0:
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most 3600, got {text}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value
