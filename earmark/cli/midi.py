"""``earmark midi ports`` and ``earmark midi learn`` (DESIGN.md, "Command line").

``earmark midi ports [--json]``
    The MIDI inputs (controllers' keys and faders) and outputs (their LEDs)
    earmark can open, and the back-end used (JACK first, then the platform's).

``earmark midi learn [--port PATTERN] [--out NAME|FILE] [--name TITLE] [--force]
[--bind ACTION[:KEY=VALUE,...]]... [--timeout S]``
    Move a control, pick an action; repeat; the bindings are written as a
    controller map (by default ``learned.toml`` in the user's controllers
    folder, where ``--controller NAME`` finds it). Without ``--bind`` it asks
    for each control's action on the terminal; with ``--bind`` (repeated) it
    captures the next control moved for each action in turn, for scripts.

Exit codes: 0 ok; 2 usage error (a bad action or parameter, an existing map
without --force); 3 no MIDI back-end or port, or no control moved in time.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from earmark.errors import EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE

__all__ = ["register"]


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``midi ports`` and ``midi learn`` to the ``earmark`` command's subparsers."""
    midi = subparsers.add_parser(
        "midi",
        help="list MIDI ports, learn a controller map",
        description="MIDI controllers: list the ports earmark can open, and learn a map "
        "by moving controls (use it with --controller on run and demo).",
    )
    midi.set_defaults(handler=_cmd_help, subparser=midi)
    sub = midi.add_subparsers(dest="midi_command", metavar="SUBCOMMAND")

    ports = sub.add_parser(
        "ports",
        help="list MIDI inputs and outputs",
        description="List the MIDI inputs (a controller's keys, faders, encoders) and "
        "outputs (its LEDs) earmark can open, with the back-end in use.",
    )
    ports.add_argument("--json", action="store_true", help="print one JSON object")
    ports.set_defaults(handler=_cmd_ports, subparser=ports)

    learn = sub.add_parser(
        "learn",
        help="move a control, pick an action; writes a controller map",
        description="Move a control on the controller, then pick what it does; repeat, "
        "and finish with Ctrl-D (or Ctrl-C). With --bind ACTION (repeated) the next "
        "control moved is bound to each ACTION in turn, without questions. Turn encoders "
        "both ways so their encoding can be told apart.",
        epilog="Actions: ab_toggle, select_a, select_b, dim, mono, mute, match, snapshot, "
        "marker, next_reference, previous_reference, reset_meters, chain_bypass (path), "
        "plugin_bypass (path, plugin), parameter (path, plugin, key, min, max, curve), "
        "trim (min, max). Example: --bind ab_toggle --bind "
        "'parameter:plugin=1,key=threshold_db,min=-40,max=0'",
    )
    learn.add_argument(
        "--port", default=None, metavar="PATTERN", help="listen only to inputs matching this"
    )
    learn.add_argument(
        "--out",
        default="learned",
        metavar="NAME|FILE",
        help="map name (saved in the user's controllers folder) or a .toml path",
    )
    learn.add_argument("--name", default=None, metavar="TITLE", help="the map's title")
    learn.add_argument("--force", action="store_true", help="replace an existing map")
    learn.add_argument(
        "--bind",
        action="append",
        default=[],
        metavar="ACTION[:KEY=VALUE,...]",
        help="bind the next control moved to ACTION (repeatable; no questions asked)",
    )
    learn.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        metavar="S",
        help="with --bind: give up when no control moves for S seconds (default 60)",
    )
    learn.set_defaults(handler=_cmd_learn, subparser=learn)
    return midi


def _say(text: str) -> None:
    print(f"earmark: {text}", file=sys.stderr, flush=True)


def _cmd_help(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def _cmd_ports(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from earmark.ui.midi import MidiUnavailableError, list_ports

    try:
        ports = list_ports()
    except MidiUnavailableError as exc:
        _say(str(exc))
        return EXIT_UNAVAILABLE
    if args.json:
        print(json.dumps(ports))
        return EXIT_OK
    print(f"MIDI back-end: {ports['api']}")
    for title, names in (
        ("inputs (controls)", ports["inputs"]),
        ("outputs (LEDs)", ports["outputs"]),
    ):
        print(f"{title}:")
        for name in names or ["(none)"]:
            print(f"  {name}")
    return EXIT_OK


def _out_path(text: str) -> Path:
    from earmark.presets import user_folder

    if "/" in text or text.endswith(".toml"):
        return Path(text).expanduser()
    return user_folder("controllers") / f"{text}.toml"


def _cmd_learn(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from earmark.errors import PresetError
    from earmark.ui.midi import MidiUnavailableError
    from earmark.ui.midi.learn import Listener, parse_bind, write_map

    try:
        binds = [parse_bind(b) for b in args.bind]
    except ValueError as exc:
        parser.error(f"--bind: {exc}")
    out = _out_path(args.out)
    if out.exists() and not args.force:
        _say(f"{out}: exists; give --force to replace it, or another --out")
        return EXIT_USAGE
    try:
        listener = Listener(args.port)
    except MidiUnavailableError as exc:
        _say(str(exc))
        return EXIT_UNAVAILABLE
    controls: list[dict[str, Any]] = []
    taken: set[tuple[str, int, int]] = set()
    port = ""
    try:
        _say(f"listening to {', '.join(repr(p) for p in listener.ports)} ({listener.api})")
        if binds:
            for action, params in binds:
                _say(f"move the control for {action}")
                learned = _next_new(listener, taken, args.timeout)
                if learned is None:
                    _say(f"no control moved within {args.timeout:g} s for {action}")
                    return EXIT_UNAVAILABLE
                port = port or learned.port
                controls.append(_control(learned, action, params))
                _say(f"{learned.describe()} -> {action}" + _doubt(learned))
        else:
            port = _interactive(listener, controls, taken)
    finally:
        listener.close()
    if not controls:
        _say("nothing learned; no map written")
        return EXIT_OK
    title = args.name or out.stem
    try:
        cmap, text = write_map(
            title,
            port,
            controls,
            str(out),
            header=f"Learned with `earmark midi learn` from {port!r}.\nEdit freely: "
            "the format is described in the README, section Controllers.",
        )
    except PresetError as exc:
        _say(str(exc))
        return EXIT_USAGE
    from earmark import outfiles
    from earmark.private import FolderError, make_folder

    try:
        # 0700: the user's maps folder is read back only when it is the user's alone.
        make_folder(out.parent)
    except FolderError as exc:
        _say(str(exc))
        return EXIT_UNAVAILABLE
    try:
        # Through a new temporary file, never a fixed name a link could be planted at.
        outfiles.write(out, text, force=args.force, option="--out")
    except outfiles.OutputError as exc:
        _say(str(exc))
        return EXIT_USAGE
    print(f"wrote {out} ({len(cmap.controls)} controls); use it with --controller {out.stem}")
    return EXIT_OK


def _next_new(listener, taken: set, timeout: float | None):
    while True:
        learned = listener.next_control(timeout)
        if learned is None:
            return None
        ident = (learned.kind, learned.channel, learned.number)
        if ident not in taken:
            taken.add(ident)
            return learned
        _say(f"{learned.describe()} is already bound; move another control")


def _doubt(learned) -> str:
    return f" ({learned.note})" if learned.note else ""


def _control(learned, action: str, params: dict[str, Any]) -> dict[str, Any]:
    control = learned.table()
    control["action"] = action
    control.update(params)
    return control


_QUESTIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "chain_bypass": (("path", 'path ("A", "B" or a number from 1) [A]'),),
    "plugin_bypass": (
        ("path", 'path ("A", "B" or a number from 1) [A]'),
        ("plugin", "plugin number (from 1)"),
    ),
    "parameter": (
        ("path", 'path ("A", "B" or a number from 1) [A]'),
        ("plugin", "plugin number (from 1)"),
        ("key", "parameter key, with its unit (threshold_db, attack_ms ...)"),
        ("min", "value at the bottom"),
        ("max", "value at the top"),
        ("curve", "curve, lin or log [lin]"),
    ),
    "trim": (("min", "trim at the bottom, dB [-30]"), ("max", "trim at the top, dB [10]")),
}


def _interactive(listener, controls: list[dict[str, Any]], taken: set) -> str:
    from earmark.ui.midi.learn import parse_value
    from earmark.ui.midi.map import ACTIONS, CONTINUOUS_ACTIONS

    port = ""
    print("Move a control (Ctrl-D or Ctrl-C when done).", flush=True)
    try:
        while True:
            learned = _next_new(listener, taken, None)
            if learned is None:
                continue
            port = port or learned.port
            print(f"  {learned.describe()}{_doubt(learned)}", flush=True)
            fitting = [a for a in ACTIONS if (a in CONTINUOUS_ACTIONS) != learned.button]
            for i, a in enumerate(fitting, start=1):
                print(f"    {i:2d} {a}", flush=True)
            answer = input("  action (number or name; empty skips): ").strip()
            if not answer:
                taken.discard((learned.kind, learned.channel, learned.number))
                continue
            action = (
                fitting[int(answer) - 1]
                if answer.isdigit() and 0 < int(answer) <= len(fitting)
                else answer
            )
            if action not in ACTIONS:
                print(f"  unknown action {action!r}; skipped", flush=True)
                taken.discard((learned.kind, learned.channel, learned.number))
                continue
            params: dict[str, Any] = {}
            for key, question in _QUESTIONS.get(action, ()):
                text = input(f"  {question}: ").strip()
                if text:
                    params[key] = parse_value(text)
            if learned.button and input("  light its LED (y/N)? ").strip().lower() == "y":
                params["led"] = True
            controls.append(_control(learned, action, params))
            print(f"  bound to {action}. Move the next control.", flush=True)
    except (EOFError, KeyboardInterrupt):
        print("", flush=True)
    return port


CONTROLLER_HELP = (
    "drive the session from a MIDI controller: a map name (earmark midi learn writes "
    "them; shipped: korg-nanokontrol2, behringer-x-touch-mini, behringer-x-touch-mini-mc, "
    "novation-launch-control-xl, generic) or a map file, with @PORT to choose the port "
    "by name or pattern; repeatable"
)


def load_surfaces(specs: list[str] | None, say=print) -> list[Any] | None:
    """``--controller MAP[@PORT]`` values -> controller surfaces (session services).

    Returns None (after one line on stderr naming the file, line and key) when a
    map cannot be read, so the command exits with a usage error before streaming.
    """
    from earmark.errors import PresetError
    from earmark.ui.midi import ControllerSurface, load_map

    surfaces = []
    for k, spec in enumerate(specs or []):
        name, _, port = spec.partition("@")
        try:
            cmap = load_map(name)
        except PresetError as exc:
            say(f"earmark: --controller: {exc}")
            return None
        client = "earmark-midi" if k == 0 else f"earmark-midi-{k + 1}"
        surfaces.append(ControllerSurface(cmap, port=port or None, client=client))
    return surfaces
