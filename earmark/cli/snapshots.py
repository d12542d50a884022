"""`earmark snapshots ...`, `earmark snapshot take`, `earmark history`.

``snapshots list | show ID | diff A B | export ID`` read the store
(``config.store_file()``); ``snapshot take`` asks the running session through
the control socket; ``history`` follows each session's final snapshot over time.

Exit codes: 0 ok, 2 usage error (a bad WHEN, a label or note too long, an export
that would replace an existing file without ``--force`` or the database itself), 3
nothing to read (no database, no such snapshot, no running session, a snapshot not
stored yet).

Text from the store (labels, notes, session, path, chain and plugin names, flag
messages) is printed through :func:`earmark.termtext.printable`: a control
character or escape sequence shows as ``\x1b``..., it never acts on the terminal.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from earmark.errors import EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE
from earmark.offline.measures import MEASURE, MEASURES, Measure, fmt_signed, fmt_value, measures
from earmark.termtext import printable, printable_data, printable_lines

_PIPE_WIDTH = 160

FORMATS = ("json", "csv", "html", "png", "flac", "chain")
# Snapshot ids are SQLite integers: a larger number names no snapshot.
_MAX_ID = 2**63 - 1


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``snapshots``, ``snapshot`` and ``history`` to the top-level subparsers."""
    snaps = sub.add_parser(
        "snapshots",
        help="list, show, compare and export stored meter snapshots",
        description="Snapshots are stored in the earmark database "
        "($EARMARK_HOME/earmark.sqlite, else the user data folder).",
    )
    verbs = snaps.add_subparsers(dest="verb", metavar="VERB")

    ls = verbs.add_parser("list", help="list snapshots (oldest first)")
    ls.add_argument("--session", metavar="NAME", help="only this session's snapshots")
    ls.add_argument("--label", metavar="TEXT", help="labels containing TEXT (any case)")
    ls.add_argument("--since", metavar="WHEN", type=_since, help="from WHEN (2025-03-01, 7d, 12h)")
    ls.add_argument(
        "--until",
        metavar="WHEN",
        type=_until,
        help="up to WHEN; a day (2025-03-01, today, yesterday) is included whole",
    )
    ls.add_argument("--json", action="store_true", help="one JSON array")
    ls.set_defaults(handler=_cmd_list, subparser=ls)

    show = verbs.add_parser("show", help="every reading of every path, flags and chains")
    show.add_argument("id", type=int, metavar="ID")
    show.add_argument("--json", action="store_true", help="the whole snapshot as JSON")
    show.set_defaults(handler=_cmd_show, subparser=show)

    diff = verbs.add_parser(
        "diff",
        help="compare two snapshots: readings, flags and chain parameters with deltas",
        description="Compare a path of snapshot A with a path of snapshot B (default: each "
        "snapshot's A path, the chain being worked on).",
    )
    diff.add_argument("a", type=int, metavar="A")
    diff.add_argument("b", type=int, metavar="B")
    diff.add_argument(
        "--path", metavar="A|B|NAME|NUMBER", help="the path to compare in both (A, B: by role)"
    )
    diff.add_argument("--path-b", metavar="A|B|NAME|NUMBER", help="another path in B")
    diff.add_argument("--json", action="store_true")
    diff.set_defaults(handler=_cmd_diff, subparser=diff)

    export = verbs.add_parser(
        "export",
        help="write a snapshot as JSON, CSV, HTML or PNG (or its audio clip as FLAC, or its "
        "chain as a preset: --format chain)",
    )
    export.add_argument("id", type=int, metavar="ID")
    export.add_argument("--format", choices=FORMATS, default="json")
    export.add_argument("--out", metavar="FILE", help="output file (default: stdout for json/csv, "
                        "snapshot-ID.html/.png/.flac/.toml otherwise)")  # fmt: skip
    export.add_argument("--force", action="store_true", help="replace an existing FILE")
    export.set_defaults(handler=_cmd_export, subparser=export)
    snaps.set_defaults(handler=_need_verb, subparser=snaps)

    snap = sub.add_parser("snapshot", help="take a snapshot of the running session")
    snap_verbs = snap.add_subparsers(dest="verb", metavar="VERB")
    take = snap_verbs.add_parser(
        "take",
        help="snapshot the running `earmark run`/`demo` session; prints the id once stored",
    )
    # The length limit (earmark.store.snapshots.TEXT_MAX_CHARS) is checked lazily: importing
    # the snapshot module for every command's start-up is not worth a number in --help.
    take.add_argument("--label", metavar="TEXT", type=_stored_text, help="a short label")
    take.add_argument("--note", metavar="TEXT", type=_stored_text, help="a note")
    take.set_defaults(handler=_cmd_take, subparser=take)
    snap.set_defaults(handler=_need_verb, subparser=snap)

    hist = sub.add_parser(
        "history",
        help="trends across sessions: loudness, PSR, LRA, harshness of each final snapshot",
        description="For each session, its final snapshot (the last one labelled 'final', "
        "else the last one) measured on its A path, oldest first, and how the measures "
        "drifted from the first to the last.",
    )
    hist.add_argument("--session", metavar="NAME", help="only sessions with this name")
    hist.add_argument("--since", metavar="WHEN", type=_since)
    hist.add_argument("--until", metavar="WHEN", type=_until, help="up to WHEN (a day: all of it)")
    hist.add_argument("--json", action="store_true")
    hist.set_defaults(handler=_history, subparser=hist)


def _history(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from earmark.cli.history import cmd_history  # (it imports this module's helpers)

    return cmd_history(args, parser)


def _need_verb(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def _say(message: str) -> None:
    # printable: the message may quote a stored name (a path, a session).
    print(f"earmark: {printable(' '.join(message.split()))}", file=sys.stderr, flush=True)


def _since(text: str) -> float:
    """``--since WHEN``: the moment WHEN starts (seconds since the epoch)."""
    return _when(text)[0]


def _until(text: str) -> float:
    """``--until WHEN``: the moment WHEN ends. A day (``2025-03-01``, ``today``,
    ``yesterday``) is included whole; a time or a relative WHEN (``7d``) is a moment."""
    return _when(text)[1]


def _when(text: str) -> tuple[float, float]:
    """(start, end) of WHEN in seconds since the epoch: ISO date/time (local), 'today',
    'yesterday', or '7d'/'12h'/'30m'/'2w' ago (a moment: start == end)."""
    t = text.strip().lower()
    rel = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([dhmw])", t)
    day: date | None = None
    moment: datetime | None = None
    if t in ("today", "yesterday"):
        day = date.today() - timedelta(days=1 if t == "yesterday" else 0)
    elif not rel:
        try:
            day = date.fromisoformat(t)
        except ValueError:
            try:
                moment = datetime.fromisoformat(text.strip())
            except ValueError:
                raise argparse.ArgumentTypeError(
                    f"not a date or time: {text!r} "
                    "(use 2025-03-01, '2025-03-01 14:30', 7d, 12h, today)"
                ) from None
    try:
        if rel:
            unit = {"d": "days", "h": "hours", "m": "minutes", "w": "weeks"}[rel.group(2)]
            moment = datetime.now() - timedelta(**{unit: float(rel.group(1))})
        if day is not None:
            return _day(day)
        assert moment is not None
        return moment.timestamp(), moment.timestamp()
    except (OverflowError, OSError, ValueError):
        # datetime covers the years 1 to 9999 only (and local time a little less).
        raise argparse.ArgumentTypeError(
            f"out of range: {text!r} (dates from the year 2 to 9998; e.g. 3650d, 2015-01-01)"
        ) from None


def _day(day: date) -> tuple[float, float]:
    """The local midnight that starts ``day`` and the one that ends it."""
    start = datetime.combine(day, datetime.min.time())
    return start.timestamp(), (start + timedelta(days=1)).timestamp()


def _stored_text(text: str) -> str:
    """A ``--label`` or ``--note``: at most :data:`earmark.store.snapshots.TEXT_MAX_CHARS`
    characters (the session would otherwise cut it silently)."""
    from earmark.store.snapshots import TEXT_MAX_CHARS

    if len(text) > TEXT_MAX_CHARS:
        raise argparse.ArgumentTypeError(
            f"too long: {len(text)} characters (at most {TEXT_MAX_CHARS})"
        )
    return text


def open_store():
    from earmark.store import Store

    return Store(create=False)


def _snapshot(store: Any, snapshot_id: int) -> dict:
    """``store.snapshot(id)``; an id beyond SQLite's integers is no snapshot either."""
    from earmark.store import StoreError

    if not 0 <= snapshot_id <= _MAX_ID:
        raise StoreError(f"{store.path}: no snapshot {snapshot_id}")
    return store.snapshot(snapshot_id)


def make_console(file: TextIO | None = None) -> Any:
    from rich.console import Console

    out = file or sys.stdout
    width = None if out.isatty() else _PIPE_WIDTH
    # markup=False: labels, notes and flag texts are shown as typed ("[warning]" too).
    return Console(file=out, width=width, highlight=False, soft_wrap=False, markup=False)


def _f(value: Any, decimals: int | None = 1) -> str:
    return fmt_value(value, decimals)


def local_time(t: float | None) -> str:
    return "-" if t is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def run_guarded(fn) -> int:
    from earmark.store import StoreError

    try:
        return fn()
    except StoreError as exc:
        _say(str(exc))
        return EXIT_UNAVAILABLE


# -- list / show --------------------------------------------------------------------------


def _cmd_list(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    def go() -> int:
        with open_store() as store:
            rows = store.snapshots(args.session, args.label, args.since, args.until)
        if args.json:
            print(json.dumps(rows, indent=2, allow_nan=False))
            return EXIT_OK
        if not rows:
            print("no snapshots match")
            return EXIT_OK
        rows = printable_data(rows)
        from rich.table import Table

        table = Table(header_style="bold")
        for col, just in (("id", "right"), ("time", "left"), ("session", "left"),
                          ("label", "left"), ("A path", "left"), ("I LUFS", "right"),
                          ("S LUFS", "right"), ("LRA", "right"), ("TP dBTP", "right"),
                          ("PSR", "right"), ("PLR", "right"), ("flags", "right")):  # fmt: skip
            table.add_column(col, justify=just)
        for r in rows:
            table.add_row(
                str(r["id"]),
                local_time(r["time"]),
                r["session"] or "-",
                r["label"] or "",
                r["path_name"] or "-",
                _f(r["integrated_lufs"]),
                _f(r["short_term_lufs"]),
                _f(r["loudness_range_lu"]),
                _f(r["true_peak_dbtp"]),
                _f(r["psr_median_db"] if r["psr_median_db"] is not None else r["psr_db"]),
                _f(r["plr_db"]),
                str(r["flag_count"] or 0),
            )
        make_console().print(table)
        return EXIT_OK

    return run_guarded(go)


# (label, unit, key, decimals) for `show`: the live readings, then the measures every
# analysis table shows, then what a live snapshot adds.
_SHOW_ROWS: tuple[Measure, ...] = (
    *measures("momentary_lufs", "short_term_lufs", "psr_db", "correlation"),
    *MEASURES,
    *measures("harshness_db", "duration_s", "non_finite_samples"),
)


def _path_title(p: dict) -> str:
    role = p.get("role")
    return f"{role}: {p['name']}" if role else p["name"]


def _cmd_show(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    def go() -> int:
        from earmark.store import snapshots

        with open_store() as store:
            doc = _snapshot(store, args.id)
        if args.json:
            sys.stdout.write(snapshots.to_json(doc))  # JSON escapes control characters
            return EXIT_OK
        _print_snapshot(printable_data(doc))
        return EXIT_OK

    return run_guarded(go)


def _print_snapshot(doc: dict) -> None:
    from rich.table import Table

    from earmark.ui.flags_text import flag_lines

    console = make_console()
    src, audio = doc.get("source") or {}, doc.get("audio") or {}
    head = [
        f"Snapshot {doc.get('id')} · {local_time(doc.get('time'))} · session {doc.get('session')}",
    ]
    if doc.get("label") or doc.get("note"):
        head.append(f"Label: {doc.get('label') or '-'} · Note: {doc.get('note') or '-'}")
    match = "on" if src.get("loudness_match") else "off"
    head.append(
        f"Source: {src.get('kind')} at {_f(src.get('position_s'))} s · audible "
        f"{src.get('audible')} · loudness match {match} (A {_f(src.get('match_a_db'))} dB, "
        f"B {_f(src.get('match_b_db'))} dB)"
    )
    monitor = src.get("platform_monitor")
    if isinstance(monitor, dict):  # A and B played as a platform would (the gains above)
        sides = " · ".join(
            f"{p.get('side')} {fmt_signed(p.get('gain_db'), 1)} dB to "
            f"{_f(p.get('playback_lufs'))} LUFS, penalty {_f(p.get('penalty_lu'))} LU"
            for p in monitor.get("paths") or ()
        )
        head.append(f"Platform monitor: {monitor.get('label')} · {sides or '-'}")
        if monitor.get("note"):
            head.append(f"  {monitor['note']}")
    lat = 1e3 * ((audio.get("latency_in_s") or 0.0) + (audio.get("latency_out_s") or 0.0))
    head.append(
        f"Audio: {audio.get('sample_rate')} Hz / {audio.get('block_size') or '-'} frames · "
        f"latency {lat:.1f} ms · {audio.get('driver') or '-'} · xruns {audio.get('xruns')}"
    )
    for line in head:
        console.print(line)
    paths = doc.get("paths") or []
    table = Table(header_style="bold")
    table.add_column("Measure")
    table.add_column("Unit", style="dim")
    for p in paths:
        table.add_column(_path_title(p), justify="right", overflow="fold")
    for m in _SHOW_ROWS:
        label, unit, key, decimals = m.label, m.unit, m.key, m.decimals
        cells = [_f(p.get(key, p["readings"].get(key)), decimals) for p in paths]
        table.add_row(label, unit, *cells)
    console.print(table)
    _print_platforms(console, paths)
    flags = doc.get("flags") or []
    if not flags:
        console.print("Flags: none")
    # As analyze prints them (one line per flag, a group's occurrences below it), under
    # the path they were raised on: a grouped flag's message already says where.
    by_path: dict[str, list[dict]] = {}
    for f in flags:
        by_path.setdefault(_flag_path(f, paths), []).append(f)
    for where, group in by_path.items():
        console.print(f"Flags {where}:" if where else "Flags:")
        for line in flag_lines(group):
            console.print(f"  {line}")
    for p in paths:
        chain = p.get("chain")
        if chain is None:
            continue
        console.print(f"Chain on {_path_title(p)}: {chain.get('name')}"
                      f" (latency {chain.get('latency_samples')} samples)")  # fmt: skip
        for plug in chain.get("plugins") or []:
            params = ", ".join(f"{k} {_param(v)}" for k, v in plug["parameters"].items())
            state = " [bypassed]" if plug.get("bypass") else ""
            console.print(f"  {plug['index'] + 1}. {plug['title']}{state}: {params or '-'}")
    markers = doc.get("markers") or []
    if markers:
        console.print(
            "Markers: " + ", ".join(f"{m.get('label')} at {_f(m.get('t_s'))} s" for m in markers)
        )
    if doc.get("profile"):
        prof = doc["profile"]
        console.print(f"Profile: {prof.get('name') if isinstance(prof, dict) else prof}")


def _print_platforms(console: Any, paths: list[dict]) -> None:
    """Each path's platform outcomes (snapshot version 2; an older one has none)."""
    from rich.table import Table

    from earmark.offline.platform_report import outcome_cell

    names = list(dict.fromkeys(o["name"] for p in paths for o in p.get("platforms") or ()))
    if not names:
        return
    table = Table(header_style="bold", title="Platforms: plays at LUFS (gain dB) · "
                  "penalty LU · PLR cost dB", title_justify="left")  # fmt: skip
    table.add_column("Platform")
    for p in paths:
        table.add_column(_path_title(p), justify="right", overflow="fold")
    for name in names:
        cells = []
        for p in paths:
            o = next((o for o in p.get("platforms") or () if o.get("name") == name), None)
            cells.append(outcome_cell(o))
        table.add_row(name, *cells)
    console.print(table)


def _flag_path(flag: dict, paths: list[dict]) -> str:
    where = flag.get("path")
    if isinstance(where, int) and 0 <= where < len(paths):
        return f"on {paths[where]['name']}"
    return f"on {where}" if where is not None else ""


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


# -- diff ---------------------------------------------------------------------------------


def _cmd_diff(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    def go() -> int:
        from earmark.store import snapshots

        with open_store() as store:
            a, b = _snapshot(store, args.a), _snapshot(store, args.b)
        if not args.json:
            a, b = printable_data(a), printable_data(b)
        try:
            cmp = snapshots.compare(a, b, args.path, args.path_b)
        except ValueError as exc:
            _say(str(exc))
            return EXIT_USAGE
        if args.json:
            print(json.dumps(cmp.to_dict(), indent=2, allow_nan=False))
            return EXIT_OK
        _print_comparison(cmp)
        return EXIT_OK

    return run_guarded(go)


def _print_comparison(cmp: Any) -> None:
    from rich.table import Table

    from earmark.ui.flags_text import flag_bullet, sorted_flags

    console = make_console()
    decimals = {m.title: m.decimals for m in MEASURE.values()}
    table = Table(header_style="bold")
    table.add_column("Measure")
    table.add_column(f"A #{cmp.a.get('id')} {cmp.path_a['name']}", justify="right")
    table.add_column(f"B #{cmp.b.get('id')} {cmp.path_b['name']}", justify="right")
    table.add_column("B - A", justify="right")
    for _key, label, va, vb, delta in cmp.rows:
        d = decimals.get(label, 1)
        table.add_row(label, _f(va, d), _f(vb, d), fmt_signed(delta, d))
    console.print(table)
    if cmp.tonal:
        from earmark.meters.flags import band_text

        moves = ", ".join(f"{db:+.1f} dB at {band_text(lo, hi)}" for lo, hi, db in cmp.tonal)
        console.print(f"Tone (loudness-matched octave bands): {moves}")
    for title, flags in (("Flags only in B", cmp.flags_new), ("Flags only in A", cmp.flags_gone)):
        if flags:
            console.print(f"{title}:")
            for f in sorted_flags(flags):
                console.print(f"  {flag_bullet(f)}")
    if cmp.flags_both:
        console.print("Flags in both: " + ", ".join(str(b.get("code")) for _, b in cmp.flags_both))
    if cmp.chain_changes:
        console.print("Chain: " + "; ".join(cmp.chain_changes))
    console.print(cmp.summary)
    _print_platform_comparison(console, cmp)


def _print_platform_comparison(console: Any, cmp: Any) -> None:
    """Both paths' platform outcomes side by side, then what B's loudness buys on each."""
    from rich.table import Table

    from earmark.offline.platform_report import outcome_cell

    if not cmp.platforms:
        return
    table = Table(header_style="bold", title="Platforms: plays at LUFS (gain dB) · "
                  "penalty LU · PLR cost dB", title_justify="left")  # fmt: skip
    table.add_column("Platform")
    table.add_column(f"A #{cmp.a.get('id')} {cmp.path_a['name']}", justify="right")
    table.add_column(f"B #{cmp.b.get('id')} {cmp.path_b['name']}", justify="right")
    for row in cmp.platforms:
        table.add_row(row["name"], outcome_cell(row["a"]), outcome_cell(row["b"]))
    console.print(table)
    for row in cmp.platforms:
        text = row["summary"]
        console.print(f"  {text[:1].upper()}{text[1:]}.", markup=False, soft_wrap=True)


# -- export -------------------------------------------------------------------------------


def _cmd_export(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    def go() -> int:
        from earmark.store import snapshots

        with open_store() as store:
            doc = _snapshot(store, args.id)
            database = store.path
        # The database and its journals are what this command reads: never written over.
        inputs = [database, *(f"{database}{end}" for end in ("-wal", "-shm", "-journal"))]
        to_stdout = args.format in ("json", "csv") and args.out in (None, "-")
        ext = "toml" if args.format == "chain" else args.format
        out = Path(args.out or f"snapshot-{args.id}.{ext}")
        if not to_stdout:
            from earmark import outfiles

            try:  # before the plots are drawn; the write checks again
                outfiles.check(out, inputs=inputs, force=args.force)
            except outfiles.OutputError as exc:
                _say(str(exc))
                return EXIT_USAGE
        if args.format in ("json", "csv"):
            text = snapshots.to_json(doc) if args.format == "json" else snapshots.to_csv(doc)
            if to_stdout:
                if args.format == "csv" and sys.stdout.isatty():
                    text = printable_lines(text)  # shown, not interpreted (JSON escapes itself)
                sys.stdout.write(text)
                return EXIT_OK
            return _write(out, text.encode(), inputs, args.force)
        if args.format == "chain":
            text = snapshots.chain_preset(doc)
            if text is None:
                _say(f"snapshot {args.id} has no chain on any path")
                return EXIT_UNAVAILABLE
            return _write(out, text.encode(), inputs, args.force)
        if args.format == "flac":
            with open_store() as store:
                clip = store.clip(args.id)
            if clip is None:
                _say(f"snapshot {args.id} has no audio clip (clips are off by default)")
                return EXIT_UNAVAILABLE
            return _write(out, clip[1], inputs, args.force)
        try:
            from earmark.store import report as snapshot_report

            data = (
                snapshot_report.html(doc).encode()
                if args.format == "html"
                else snapshot_report.png(doc)
            )
        except ImportError as exc:
            _say(f"--format {args.format}: needs matplotlib ({exc})")
            return EXIT_UNAVAILABLE
        return _write(out, data, inputs, args.force)

    return run_guarded(go)


def _write(path: Path, data: bytes, inputs: list, force: bool) -> int:
    """Write an export under :mod:`earmark.outfiles`' rules; print its path."""
    from earmark import outfiles

    try:
        outfiles.write(path, data, inputs=inputs, force=force)
    except outfiles.OutputError as exc:
        _say(str(exc))
        return EXIT_USAGE
    print(printable(path))
    return EXIT_OK


# -- snapshot take --------------------------------------------------------------------------


def _cmd_take(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from earmark.live import control

    try:
        answer = control.request("snapshot", label=args.label, note=args.note)
    except control.ControlError as exc:
        _say(str(exc))
        return EXIT_UNAVAILABLE
    if not answer.get("ok"):
        _say(str(answer.get("error") or "the session refused the snapshot"))
        return EXIT_UNAVAILABLE
    print(answer["id"])
    return EXIT_OK
