"""`earmark compare MIX A B`: two masters of one mix, one verdict, each move paired."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from typing import Any

from earmark.errors import EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE

_PROG = "earmark"
_DESCRIPTION = (
    "Compare two masters (for example an automatic one and a manual one) of the same mix. "
    "Each is diffed against MIX, so every move is what that master did; then one verdict "
    "(louder by how much before matching; at matched loudness, brighter above 4 kHz, "
    "fuller below 150 Hz, PSR and width; where in time they differ most), each EQ, "
    "compression, limiting and width move of A beside B's, with the one the profile "
    "favours, and the flags each master introduced."
)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``compare`` to the top-level subparsers."""
    p = sub.add_parser("compare", help="two masters of one mix: one verdict, moves paired",
                       description=_DESCRIPTION)  # fmt: skip
    p.add_argument("mix", metavar="MIX", help="the mix both masters were made from")
    p.add_argument("a", metavar="A", help="one master (e.g. the automatic one)")
    p.add_argument("b", metavar="B", help="the other (e.g. the manual one)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--report",
        metavar="OUT.html",
        help="also write a self-contained HTML page: the verdict, the moves paired, the "
        "explainability, the two masters side by side (--force replaces an existing one)",
    )
    p.add_argument("--profile", metavar="NAME|FILE", help="the profile that says which is favoured")
    p.add_argument(
        "--force",
        action="store_true",
        help="explain a pair whose alignment is doubtful anyway; replace an existing --report",
    )
    p.add_argument(
        "--no-explain",
        action="store_true",
        help="skip the explainability (each master's moves rebuilt as a chain and the mix "
        "rendered through it: about one diff's time more per master)",
    )
    p.add_argument(
        "--no-store",
        action="store_true",
        help="do not keep the verdict for `earmark history` (kept by default)",
    )
    p.set_defaults(handler=_cmd_compare, subparser=p)


def _say(what: str, message: str) -> None:
    with contextlib.suppress(OSError, ValueError):
        print(f"{_PROG}: {what}: {' '.join(str(message).split())}", file=sys.stderr, flush=True)


def _cmd_compare(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from earmark.engine.files import AudioFileError, open_audio
    from earmark.offline.compare import compare
    from earmark.offline.transform import DoubtfulAlignmentError, profile_and_name

    bad = False
    for path in dict.fromkeys((args.mix, args.a, args.b)):
        try:
            open_audio(path)
        except AudioFileError as exc:
            _say(exc.path, exc.cause)
            bad = True
    if bad:
        return EXIT_UNAVAILABLE
    inputs = [args.mix, args.a, args.b]
    if args.report is not None:
        from earmark.outfiles import OutputError, check

        try:  # before the (long) comparison; the write checks again
            check(args.report, inputs=inputs, force=args.force, option="--report")
        except OutputError as exc:
            _say("--report", str(exc))
            return EXIT_USAGE
    profile = None
    if args.profile is not None:
        try:
            profile, _ = profile_and_name(args.profile)
        except (ValueError, OSError) as exc:
            _say("--profile", str(exc))
            return EXIT_USAGE
    names = (_name(args.a), _name(args.b))
    try:
        c = compare(args.mix, args.a, args.b, profile=profile, force=args.force, names=names,
                    explain=not args.no_explain)  # fmt: skip
    except DoubtfulAlignmentError as exc:
        _say(f"{args.mix}, {args.a}, {args.b}", f"{exc}; nothing compared (--force does)")
        return EXIT_UNAVAILABLE
    except AudioFileError as exc:
        _say(exc.path, exc.cause)
        return EXIT_UNAVAILABLE
    except ValueError as exc:
        _say(f"{args.mix}, {args.a}, {args.b}", str(exc))
        return EXIT_UNAVAILABLE
    doc = _plain(c.to_dict())
    if not args.no_store:
        _store(doc, args.mix)
    if args.report is not None:
        from earmark.offline.report import compare_report, write_report
        from earmark.outfiles import OutputError

        try:
            write_report(args.report, compare_report(c, _name(args.mix)), inputs=inputs,
                         force=args.force)  # fmt: skip
        except OutputError as exc:
            _say("--report", str(exc))
            return EXIT_USAGE
        _say("report written to", args.report)
    if args.json:
        print(json.dumps(doc, indent=2, allow_nan=False))
        return EXIT_OK
    _print(c, _name(args.mix))
    return EXIT_OK


def _store(doc: dict, mix: str) -> None:
    """Keep the verdict for `earmark history`; a store that cannot be written is said in
    one line and the comparison still printed."""
    from earmark.config import store_file
    from earmark.store.comparisons import store_comparison
    from earmark.store.schema import StoreError

    try:
        store_comparison(store_file(), doc, os.path.basename(mix) or mix)
    except (StoreError, OSError) as exc:
        _say("not kept for history", str(exc))


def _name(path: str) -> str:
    return os.path.basename(path) or path


def _print(c: Any, mix: str) -> None:
    from rich.console import Console
    from rich.markup import escape

    from earmark.ui.flags_text import flag_bullet

    con = Console(highlight=False)
    con.print(f"[bold]earmark compare[/bold] · {escape(c.a_name)} vs {escape(c.b_name)}, "
              f"both against {escape(mix)}")  # fmt: skip
    con.print()
    con.print(escape(c.verdict) + ".", soft_wrap=True)
    con.print()
    con.print(f"[bold]Moves[/bold] ({escape(c.a_name)} | {escape(c.b_name)}, each against the mix)")
    for m in c.moves:
        con.print("  " + escape(m.text(c.a_name, c.b_name)), soft_wrap=True)
    if c.explainability:
        con.print("[bold]Explainability[/bold] (1 - what is left after the moves / the change)")
        for name, key in ((c.a_name, "a"), (c.b_name, "b")):
            ex = c.explainability.get(key)
            line = "not measured (another sample rate than the mix)" if ex is None else (
                ex.sentence(name)
                + ("" if ex.passed_fidelity else " (its chain failed the fidelity check)")
            )  # fmt: skip
            con.print(f"  {escape(line)}", soft_wrap=True)
    con.print("[bold]Flags introduced[/bold] (relative to the mix)")
    for name, t in ((c.a_name, c.to_a), (c.b_name, c.to_b)):
        flags = t.flags_introduced
        if not flags:
            con.print(f"  {escape(name)}: none")
            continue
        con.print(f"  {escape(name)}:")
        for f in flags:
            con.print(f"    {escape(flag_bullet(f))}", soft_wrap=True)
    for name, t in ((c.a_name, c.to_a), (c.b_name, c.to_b)):
        for w in t.warnings:
            con.print(f"[yellow]warning[/yellow] ({escape(name)}): {escape(w)}", soft_wrap=True)


def _plain(obj: Any) -> Any:
    """JSON-safe: NaN and infinities as null, tuples as lists."""
    if isinstance(obj, float):
        return obj if obj == obj and abs(obj) != float("inf") else None
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj
