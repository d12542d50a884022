"""`earmark dashboard`: open the dashboard on a running session (again).

Every live session (`earmark run`, `earmark demo`) publishes its state frame
and leaves its address in ``config.home()/run``; this command finds it and
opens a window on it, in this process. Closing the window leaves the session
running; if the session ends, the window says so and attaches to the next
session that starts.
"""

from __future__ import annotations

import argparse
import sys

from earmark.errors import EXIT_OK, EXIT_UNAVAILABLE


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``dashboard`` to the top-level subparsers."""
    p = sub.add_parser(
        "dashboard",
        help="open the dashboard on a running session (re-attach after closing it)",
        description="Open the dashboard window on a running `earmark run` or `earmark demo` "
        "session (the newest, or --session NAME). It needs an X display; the session "
        "keeps running when the window closes.",
    )
    p.add_argument("--session", default=None, metavar="NAME", help="the session to attach to")
    p.add_argument("--list", action="store_true", help="list the running sessions and exit")
    p.add_argument("--width", type=int, default=1600, help="window width (default 1600)")
    p.add_argument("--height", type=int, default=960, help="window height (default 960)")
    p.add_argument("--seconds", type=float, default=None, metavar="N", help="close after N s")
    p.add_argument("--screenshot", default=None, metavar="PNG", help="save the window as PNG")
    p.add_argument(
        "--screenshot-after",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds before the screenshot (default 10)",
    )
    p.set_defaults(handler=_cmd_dashboard, subparser=p)


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _cmd_dashboard(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from earmark.live.publisher import find_sessions, run_dir
    from earmark.private import FolderError

    try:
        sessions = find_sessions()
    except FolderError as exc:  # the run folder is a link, another user's, or open to all
        _say(f"earmark: {exc}")
        return EXIT_UNAVAILABLE
    if args.list:
        if not sessions:
            print(f"no running sessions (looked in {run_dir()})")
        for s in sessions:
            print(f"{s['session']}\tpid {s['pid']}\tframe {s['frame']}")
        return EXIT_OK
    if args.width < 800 or args.height < 600:
        parser.error("--width and --height must be at least 800 x 600")

    def pick() -> dict | None:
        try:
            found = find_sessions()
        except FolderError:
            return None
        if args.session is not None:
            found = [s for s in found if s.get("session") == args.session]
        return found[0] if found else None

    chosen = pick()
    if chosen is None:
        which = f" named {args.session!r}" if args.session else ""
        _say(f"earmark: no running session{which} (start one with `earmark run` or `earmark demo`)")
        return EXIT_UNAVAILABLE

    from earmark.ui.dashboard import Dashboard, be_polite, run

    be_polite()
    from earmark.ui.stateframe import CommandSender, StateFrameError, StateFrameReader
    from earmark.ui.xdisplay import display_available

    ok, reason = display_available()
    if not ok:
        _say(f"earmark: {reason}: the dashboard cannot open (the terminal shows `earmark run`)")
        return EXIT_UNAVAILABLE
    try:
        reader = StateFrameReader(chosen["frame"])
    except StateFrameError as exc:
        _say(f"earmark: {exc}")
        return EXIT_UNAVAILABLE

    def locate() -> tuple[str, str] | None:
        s = pick()
        return (s["frame"], s["commands"]) if s else None

    dash = Dashboard(
        reader,
        CommandSender(chosen["commands"]),
        width=args.width,
        height=args.height,
        locate=locate,
    )
    rc = run(
        dash,
        title=f"earmark · {chosen['session']}",
        seconds=args.seconds,
        screenshot=args.screenshot,
        screenshot_after_s=args.screenshot_after,
    )
    if dash.reader is not None:
        dash.reader.close()
    return rc
