"""The live commands: `earmark demo`, `earmark run`, `earmark devices`."""

from __future__ import annotations

import argparse
import contextlib
import errno
import sys

from earmark.cli import args as cli_args
from earmark.cli.midi import CONTROLLER_HELP, load_surfaces
from earmark.errors import EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE

_SESSION_HELP = "name the session in the session log and its snapshots (default: date and time)"
_PROFILE_HELP = (
    "genre or delivery profile the live flags are judged against (earmark profile list; "
    "combine with +, e.g. jazz+spotify); default: generic"
)
_CLIP_HELP = (
    "keep the last N seconds (up to 60) of the audible path with each snapshot, as FLAC "
    "(default 0: no clips)"
)
_ISOLATE_HELP = (
    "host each chain in its own child process (the default): a crashing plugin mutes its "
    "path instead of ending the session, and the audio callback runs as machine code that "
    "no Python thread can delay; costs two blocks of latency, compensated. --no-isolate "
    "runs the chains in this process, with the Python callback"
)
_CODEC_MONITOR_HELP = (
    "hear the audible path through a lossy codec as a listener will, encoded and decoded "
    "live in a child process, delay compensated: NAME is one of {names}; C switches decoded "
    "and clean (the clean path delayed alike), X solos the codec's artefacts (decoded minus "
    "clean); the codec's true peak and overs show beside the clean path's"
)
_SECONDS_HELP = "stop after N seconds, N > 0 (default: until q or Ctrl-C)"
_RATE_HELP = "stream rate in Hz (default: the output device's own rate; 48000 with no device)"
_BLOCK_HELP = (
    f"frames per audio block, {cli_args.MIN_BLOCK_FRAMES} to {cli_args.MAX_BLOCK_FRAMES} "
    "(default 64)"
)


def register(sub: argparse._SubParsersAction, offline_demo) -> None:
    """Add demo, run and devices to the top-level subparsers."""
    demo = sub.add_parser(
        "demo",
        help="stream the built-in mix through a chain (A) against an aggressive master (B)",
        description="Stream the built-in demo mix through a chain (A) against an over-eager "
        "automatic master of it (B), loudness-matched, every path metered, in real time. "
        "With no audio device it runs into a null sink at real-time pace; with no display "
        "it shows the terminal view. --offline prints the measured comparison instead.",
    )
    demo.add_argument(
        "--seconds", type=cli_args.seconds, default=None, metavar="N", help=_SECONDS_HELP
    )
    demo.add_argument(
        "--chain",
        default=None,
        metavar="PRESET|FILE",
        help="the chain on path A (default gentle-master); with --offline, measured "
        "offline beside the mix and the master",
    )
    demo.add_argument(
        "--samplerate", type=cli_args.sample_rate, default=None, metavar="HZ", help=_RATE_HELP
    )
    demo.add_argument(
        "--blocksize", type=cli_args.blocksize, default=64, metavar="FRAMES", help=_BLOCK_HELP
    )
    demo.add_argument("--output", default=None, metavar="DEV", help="output device (name or index)")
    demo.add_argument("--profile", default=None, metavar="NAME|FILE", help=_PROFILE_HELP)
    demo.add_argument(
        "--controller", action="append", default=[], metavar="MAP[@PORT]", help=CONTROLLER_HELP
    )
    demo.add_argument("--session", default=None, metavar="NAME", help=_SESSION_HELP)
    demo.add_argument("--no-ui", action="store_true", help="terminal view instead of the dashboard")
    demo.add_argument(
        "--isolate", action=argparse.BooleanOptionalAction, default=True, help=_ISOLATE_HELP
    )
    demo.add_argument(
        "--clip-seconds", type=cli_args.clip_seconds, default=0.0, metavar="N", help=_CLIP_HELP
    )
    _add_platform_monitor(demo)
    _codec_monitor_option(demo)
    demo.add_argument(
        "--offline",
        action="store_true",
        help="measure the mix, the master (and --chain's output) offline and compare, "
        "judged against --profile (no streaming)",
    )
    demo.set_defaults(
        handler=lambda a, p: offline_demo(a, p) if a.offline else _cmd_demo(a, p), subparser=demo
    )

    run = sub.add_parser(
        "run",
        help="stream the live input through a chain, A/B against references",
        description="Stream the input through CHAIN with the dry input, the chain and each "
        "reference metered in parallel; A is the chain, B the last reference (or the dry "
        "input), loudness-matched.",
    )
    run.add_argument("--input", default=None, metavar="DEV", help="input device (name or index)")
    run.add_argument("--output", default=None, metavar="DEV", help="output device")
    run.add_argument(
        "--samplerate", type=cli_args.sample_rate, default=None, metavar="HZ", help=_RATE_HELP
    )
    run.add_argument(
        "--blocksize", type=cli_args.blocksize, default=64, metavar="FRAMES", help=_BLOCK_HELP
    )
    run.add_argument(
        "--channels",
        default="1,2",
        metavar="L,R",
        help="input channels to use, 1-based (default 1,2)",
    )
    run.add_argument("--chain", default=None, metavar="PRESET|FILE")
    run.add_argument("--reference", action="append", default=[], metavar="FILE")
    run.add_argument("--profile", default=None, metavar="NAME|FILE", help=_PROFILE_HELP)
    run.add_argument(
        "--controller", action="append", default=[], metavar="MAP[@PORT]", help=CONTROLLER_HELP
    )
    run.add_argument("--session", default=None, metavar="NAME", help=_SESSION_HELP)
    run.add_argument(
        "--seconds", type=cli_args.seconds, default=None, metavar="N", help=_SECONDS_HELP
    )
    run.add_argument("--no-ui", action="store_true")
    run.add_argument(
        "--isolate", action=argparse.BooleanOptionalAction, default=True, help=_ISOLATE_HELP
    )
    run.add_argument(
        "--clip-seconds", type=cli_args.clip_seconds, default=0.0, metavar="N", help=_CLIP_HELP
    )
    _add_platform_monitor(run)
    _codec_monitor_option(run)
    run.set_defaults(handler=_cmd_run, subparser=run)

    devices = sub.add_parser("devices", help="list audio devices (PortAudio)")
    devices.set_defaults(handler=_cmd_devices, subparser=devices)


def _add_platform_monitor(parser: argparse.ArgumentParser) -> None:
    """``--platform-monitor NAME`` (demo and run): A and B as that platform plays them."""
    from earmark.offline.platforms import PLATFORM_NAMES

    parser.add_argument(
        "--platform-monitor",
        type=str.lower,
        choices=PLATFORM_NAMES,
        default=None,
        metavar="NAME",
        help="play A and B the way this platform would (its gain from each one's measured "
        "loudness and true peak) instead of the loudness match; P cycles the platforms and "
        f"off. NAME: {', '.join(PLATFORM_NAMES)}",
    )


def _codec_monitor_option(parser: argparse.ArgumentParser) -> None:
    from earmark.engine.codec import LIVE_CODECS

    parser.add_argument(
        "--codec-monitor",
        type=_live_codec_name,
        default=None,
        metavar="NAME",
        help=_CODEC_MONITOR_HELP.format(names=", ".join(LIVE_CODECS)),
    )


def _live_codec_name(text: str) -> str:
    """``--codec-monitor``'s value: a codec the live monitor streams (else a usage error)."""
    from earmark.engine.codec import live_codec

    try:
        return live_codec(text).name
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def show_session(session, seconds, **kw) -> None:
    """The dashboard window, or the terminal view (earmark.live.publisher)."""
    from earmark.live.publisher import show_session as show

    show(session, seconds, **kw)


def _say(msg: str) -> None:
    # A closed terminal (SIGHUP) makes writes fail with EIO: a line nobody can read
    # must not stop the session from writing its flags and its last snapshot.
    with contextlib.suppress(OSError, ValueError):
        print(msg, file=sys.stderr, flush=True)


def _device(text: str | None):
    if text is None:
        return None
    return int(text) if text.isdigit() else text


def _profile(args: argparse.Namespace, parser: argparse.ArgumentParser):
    from earmark.errors import PresetError
    from earmark.profiles import resolve_profile

    try:
        return resolve_profile(args.profile)
    except PresetError as exc:
        parser.error(f"--profile: {exc}")


def _cmd_demo(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from earmark.engine.codec_host import CodecMonitorError
    from earmark.engine.isolated import IsolationError
    from earmark.live import audio as live
    from earmark.live.build import build_session

    profile = _profile(args, parser)
    controllers = load_surfaces(args.controller, _say)
    if controllers is None:
        return EXIT_USAGE
    setup = _audio_setup(live, output=_device(args.output), sample_rate=args.samplerate)
    if setup is None:
        return EXIT_UNAVAILABLE
    plan = _plan("demo", args, setup, profile, controllers)
    try:
        session = build_session(plan, _say)
    except CodecMonitorError as exc:
        _say(f"earmark: {exc}")
        return EXIT_UNAVAILABLE
    except (ValueError, OSError, IsolationError) as exc:
        _say(f"earmark: {exc}")
        return EXIT_USAGE
    return _stream(session, args, "earmark demo")


def _cmd_run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from earmark.engine.codec_host import CodecMonitorError
    from earmark.engine.files import AudioFileError
    from earmark.engine.isolated import IsolationError
    from earmark.live import audio as live
    from earmark.live.build import build_session

    profile = _profile(args, parser)
    try:
        channels = [int(c) - 1 for c in args.channels.split(",") if c]
        if not channels or min(channels) < 0:
            raise ValueError
    except ValueError:
        parser.error(f"--channels: expected 1-based numbers like 1,2, got {args.channels!r}")
    if len(channels) > 2:
        parser.error(
            f"--channels: live paths are stereo; pick one input (mono, played on both sides)"
            f" or two (left,right), got {args.channels!r}"
        )
    controllers = load_surfaces(args.controller, _say)
    if controllers is None:
        return EXIT_USAGE
    setup = _audio_setup(
        live,
        output=_device(args.output),
        input=_device(args.input),
        input_channels=max(channels) + 1,
        sample_rate=args.samplerate,
    )
    if setup is None:
        return EXIT_UNAVAILABLE
    plan = _plan(
        "run",
        args,
        setup,
        profile,
        controllers,
        references=tuple(args.reference or ()),
        channels=tuple(channels),
    )
    try:
        session = build_session(plan, _say)
    except (AudioFileError, CodecMonitorError) as exc:
        _say(f"earmark: {exc}")
        return EXIT_UNAVAILABLE
    except (ValueError, IsolationError) as exc:
        _say(f"earmark: {exc}")
        return EXIT_USAGE
    return _stream(session, args, "earmark run")


def _plan(kind: str, args: argparse.Namespace, setup, profile, controllers, **more):
    """The session ``earmark demo`` / ``run`` asked for (options common to both, and
    ``more``: run's references and input channels)."""
    from earmark.live.build import SessionPlan

    return SessionPlan(
        kind,  # type: ignore[arg-type]
        setup,
        chain=args.chain,
        blocksize=args.blocksize,
        isolate=args.isolate,
        clip_seconds=args.clip_seconds,
        name=args.session,
        profile=profile,
        controllers=tuple(controllers),
        platform_monitor=getattr(args, "platform_monitor", None),
        codec_monitor=args.codec_monitor,
        **more,
    )


def _audio_setup(live, **kw):
    """The checked device and rate (``live.audio_setup``), or None once a device error
    has been said (one line naming the device; the command exits 3)."""
    try:
        return live.audio_setup(**kw)
    except live.DeviceError as exc:
        _say(f"earmark: {exc}")
        return None


def _stream(session, args: argparse.Namespace, title: str) -> int:
    """Stream the session until --seconds, q, Ctrl-C, SIGTERM or SIGHUP; then the summary
    and the flags."""
    from earmark.live.session import AudioStartError

    try:
        show_session(session, args.seconds, no_ui=args.no_ui, title=title, say=_say)
    except AudioStartError as exc:
        _say(f"earmark: {exc}")
        return EXIT_UNAVAILABLE
    except Exception as exc:
        if not _terminal_gone(exc):
            raise
        # The terminal closed under the view (its SIGHUP stopped the session, which
        # has written its flags and last snapshot): a stop, not a failure.
    _summary(session.engine)
    _flag_summary(session)
    return EXIT_OK


def _terminal_gone(exc: BaseException) -> bool:
    """Whether ``exc`` is the view's terminal gone: after a hangup, reading, writing and
    setting its modes fail with EIO (OSError, or termios.error from the key reader)."""
    code = exc.errno if isinstance(exc, OSError) else None
    if code is None and type(exc).__name__ == "error" and exc.args:  # termios.error
        code = exc.args[0]
    return code == errno.EIO


def _summary(engine) -> None:
    state = engine.state()
    _say(f"earmark: stopped after {state.callbacks} blocks, {state.xruns} xruns")
    for i, p in enumerate(state.paths):
        tag = "A" if i == state.a else ("B" if i == state.b else " ")
        r = p.readings
        i_lufs = "-" if r.integrated_lufs is None else f"{r.integrated_lufs:.1f} LUFS"
        tp = "-" if r.true_peak_dbtp is None else f"{r.true_peak_dbtp:.1f} dBTP"
        _say(f"  {tag} {p.name}: {i_lufs}, {tp}")


def _flag_summary(session) -> None:
    """The session's final flags, one explained line each, under their path."""
    from earmark.ui.flags_text import flag_lines

    names = [p.name for p in session.engine.paths]
    profile = getattr(session.profile, "name", "default")
    for i, name in enumerate(names):
        flags = [f for f in session.flags if f.get("path") == i]
        if flags:
            _say(f"earmark: {name} ({profile} profile):")
            for line in flag_lines(flags):
                _say(f"  {line}")


def _cmd_devices(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from rich.console import Console
    from rich.table import Table

    from earmark.live import audio as live

    try:
        devices = live.describe_devices()
    except Exception as exc:  # PortAudio missing or failing
        _say(f"earmark: cannot query audio devices: {exc}")
        return EXIT_UNAVAILABLE
    if not devices:
        print("no audio devices (start a JACK server, or connect an interface)")
        return EXIT_OK
    table = Table(header_style="bold")
    for col in ("#", "name", "host API", "in", "out", "default rate", "default"):
        table.add_column(col)
    for d in devices:
        default = " ".join(
            k for k, v in (("input", d["default_input"]), ("output", d["default_output"])) if v
        )
        table.add_row(
            str(d["index"]),
            d["name"],
            d["hostapi"],
            str(d["inputs"]),
            str(d["outputs"]),
            f"{d['default_samplerate']:.0f}",
            default,
        )
    Console().print(table)
    return EXIT_OK
