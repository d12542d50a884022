"""``earmark analyze`` and ``earmark demo --offline``: meter files, print the table.

``earmark analyze FILE... [--json] [--strict] [--profile NAME|FILE] [--report OUT.html [--force]]``
    Measure each file. Default output is a table with the measures as rows
    and one column per readable file. ``--json`` prints exactly one JSON
    array on stdout, one object per FILE in argument order; a file that could
    not be read is the object ``{"file": FILE, "error": CAUSE}`` in its place,
    so positions always match the arguments. Warnings and errors go to stderr,
    one line each: ``earmark: FILE: cause`` (``earmark: FILE: warning: ...``).
    ``--profile NAME|FILE`` judges the flags against a genre or delivery profile
    (default: the generic one); a bad profile is a usage error (exit 2).
    ``--platforms [LIST]`` adds what each streaming platform's playback does to it
    (:mod:`earmark.offline.platforms`): a table per file, and a ``platforms`` list in
    each JSON object; an unknown platform name is a usage error (exit 2).
    ``--report`` never writes onto a FILE, and replaces an existing file only with
    ``--force`` (:mod:`earmark.outfiles`); a refusal is a usage error (exit 2).

``earmark analyze --album FILE...``
    The FILEs are one album, in this order (:mod:`earmark.offline.album`): after the
    files' table, each track against the album, the album's row and its gain per
    platform, and ``album_inconsistent`` flags. With ``--json`` the album is the
    array's last element, ``{"album": {...}}`` (``{"album": null, "error": ...}``
    when it cannot be measured), so the files keep their positions. Tracks with
    different channel counts are a usage error (exit 2).

``earmark demo --offline [--chain PRESET|FILE] [--profile NAME|FILE]``
    Render the built-in demo mix and an aggressive master of it (and the mix
    through ``--chain``, the live demo's path A), and print the analyses side
    by side, flags judged against ``--profile``, with a plain reading of what
    the master did.

Exit codes: 0 ok; 1 ``--strict`` and a flag of severity ``problem`` was found;
2 usage error; 3 at least one input could not be read (every readable input
is still analysed and printed; 3 wins over 1). Errors never print a
traceback unless ``EARMARK_DEBUG=1``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from earmark.errors import EXIT_OK, EXIT_PROBLEM, EXIT_UNAVAILABLE, EXIT_USAGE
from earmark.offline.measures import MEASURES, fmt_signed, fmt_value

if TYPE_CHECKING:
    from earmark.offline.analysis import Analysis


_PROG = "earmark"
_PIPE_WIDTH = 160  # table width when stdout is not a terminal


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``analyze`` to the command line's subcommands."""
    analyze = sub.add_parser(
        "analyze",
        help="measure audio files (loudness, LRA, true peak, PLR/PSR, crest, DR, tilt, stereo)",
        description="Measure each FILE over its whole length. A file that cannot be read "
        "is reported on stderr as 'earmark: FILE: cause' and the others are still "
        "analysed (exit code 3).",
    )
    # nargs "*" and checked in _cmd_analyze: `--codecs FILE...` and `--platforms FILE...`
    # must give FILE back to the files (an optional LIST swallows the next word).
    analyze.add_argument("files", nargs="*", metavar="FILE", help="audio file (WAV, FLAC, ...)")
    analyze.add_argument(
        "--json",
        action="store_true",
        help="print one JSON array, one object per FILE in argument order "
        '(an unreadable FILE is {"file": ..., "error": ...})',
    )
    analyze.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 if any flag of severity 'problem' is raised",
    )
    analyze.add_argument(
        "--profile",
        metavar="NAME|FILE",
        help="genre or delivery profile the flags are judged against (earmark profile list; "
        "combine with +, e.g. jazz+spotify); default: generic",
    )
    analyze.add_argument(
        "--report",
        metavar="OUT.html",
        help="also write an HTML report with plots (earmark.offline.report); never onto a FILE",
    )
    analyze.add_argument("--force", action="store_true", help="replace an existing --report file")
    analyze.add_argument(
        "--album",
        action="store_true",
        help="the FILEs are one album in this order: album loudness, LRA and true peak over "
        "the whole programme, each track against it, album gain per platform "
        '(--json: a last element {"album": {...}})',
    )
    add_platforms_option(analyze)
    add_codecs_option(analyze)
    analyze.set_defaults(handler=_cmd_analyze, subparser=analyze)


def add_platforms_option(parser: argparse.ArgumentParser) -> None:
    """``--platforms [LIST]`` (analyze and diff): what each platform's playback does."""
    from earmark.offline.platforms import PLATFORM_NAMES

    parser.add_argument(
        "--platforms",
        nargs="?",
        const="all",
        metavar="LIST",
        help="what each streaming platform's playback does to it: gain, loudness and true "
        "peak heard, loudness penalty and its PLR cost (LIST: comma-separated, default all: "
        f"{', '.join(PLATFORM_NAMES)}); a FILE right after it is taken as a FILE",
    )


def platforms_or_error(args: argparse.Namespace, parser: argparse.ArgumentParser) -> tuple:
    """The platform rules ``--platforms`` names (empty without it); unknown: usage error."""
    from earmark.offline.platforms import parse_platforms

    if args.platforms is None:
        return ()
    try:
        return parse_platforms(args.platforms)
    except ValueError as exc:
        hint = ""
        if os.path.exists(args.platforms):  # `--platforms FILE...` took the FILE as LIST
            hint = "; a FILE right after --platforms is read as LIST: use --platforms=all"
        parser.error(f"--platforms: {exc}{hint}")


def add_codecs_option(parser: argparse.ArgumentParser) -> None:
    """``--codecs [LIST]``, shared with ``diff`` (earmark.offline.codecs)."""
    from earmark.offline.codecs import CODECS

    parser.add_argument(
        "--codecs",
        nargs="?",
        const="all",
        metavar="LIST",
        help="also encode and decode each file through lossy codecs and measure the damage "
        "(decoded true peak, clipped samples, loudness change, loss above 16 kHz, the ceiling "
        f"that avoids clipping); LIST: comma-separated, of {', '.join(CODECS)} (default: all); "
        "a FILE right after it is taken as a FILE",
    )


def codecs_chosen(args: argparse.Namespace, parser: argparse.ArgumentParser) -> tuple[Any, ...]:
    """The codecs ``--codecs`` names (empty without the option); unknown: usage error."""
    from earmark.offline.codecs import parse_codecs

    if args.codecs is None:
        return ()
    try:
        return parse_codecs(args.codecs)
    except ValueError as exc:
        parser.error(f"--codecs: {exc}")


# -- analyze ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Outcome:
    file: str
    analysis: Analysis | None = None
    error: str | None = None
    codecs: tuple[Any, ...] = ()  # CodecResult per codec of --codecs


def _cmd_analyze(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from earmark.cli.args import files_back
    from earmark.errors import PresetError
    from earmark.offline.analysis import analyze
    from earmark.profiles import resolve_profile

    args.files = files_back(args, args.files)
    if not args.files:
        parser.error("the following arguments are required: FILE")
    try:
        profile = resolve_profile(args.profile)
    except PresetError as exc:
        parser.error(f"--profile: {exc}")
    platforms = platforms_or_error(args, parser)
    codecs = codecs_chosen(args, parser)
    if args.report:
        from earmark import outfiles
        from earmark.offline import report

        # Checked before the (long) analysis, and again when the page is written.
        try:
            outfiles.check(args.report, inputs=args.files, force=args.force, option="--report")
        except outfiles.OutputError as exc:
            return _refuse_output(exc)
    outcomes = [_analyze_one(path, analyze, profile) for path in args.files]
    if codecs:
        outcomes = [with_codecs(o, codecs, profile) for o in outcomes]
    album = _album(args.files, outcomes) if args.album else None  # the report shows it too
    unwritten: Exception | None = None
    if args.report and any(o.analysis is not None for o in outcomes):
        done = [o.analysis for o in outcomes if o.analysis is not None]
        try:
            report.write_analysis_report(
                args.report,
                done,
                profile,
                inputs=args.files,
                force=args.force,
                codecs=[o.codecs for o in outcomes if o.analysis is not None] if codecs else None,
                platforms=platforms,
                album=None if album is None else album.album,
            )
        except outfiles.OutputError as exc:
            unwritten = exc  # said after the results, which are still printed
    if args.json:
        objects = [
            _with_platforms(o.analysis.to_json_dict(), o.analysis, platforms)
            if o.analysis is not None
            else {"file": o.file, "error": o.error}
            for o in outcomes
        ]
        if codecs:
            for obj, o in zip(objects, outcomes, strict=True):
                if o.analysis is not None:
                    obj["codecs"] = [r.to_json_dict() for r in o.codecs]
        if album is not None:  # the array's last element: the files keep their positions
            objects.append(album.json)
        # allow_nan=False: the contract says null, never NaN/Infinity.
        sys.stdout.write(json.dumps(objects, indent=2, allow_nan=False) + "\n")
        sys.stdout.flush()
    else:
        done = [o.analysis for o in outcomes if o.analysis is not None]
        if done:
            _print_table(list(zip(_column_labels([a.file or "" for a in done]), done, strict=True)))
            _print_platforms(done, platforms)
            if codecs:
                print_codecs([(o.file, o.codecs) for o in outcomes if o.analysis is not None])
            _print_flags(done)
        if album is not None:
            album.print()
    if unwritten is not None:
        return _refuse_output(unwritten)
    if any(o.analysis is None for o in outcomes):
        return EXIT_UNAVAILABLE
    if album is not None and album.exit_code:
        return album.exit_code
    if args.strict and any(o.analysis.problems for o in outcomes if o.analysis is not None):
        return EXIT_PROBLEM
    return EXIT_OK


def _with_platforms(obj: dict, analysis: Analysis, platforms: tuple) -> dict:
    """``--json``'s object, with its ``platforms`` list when --platforms was given."""
    if platforms:
        from earmark.offline.platforms import outcomes

        obj["platforms"] = [o.to_json_dict() for o in outcomes(analysis, platforms)]
    return obj


def _print_platforms(analyses: list[Analysis], platforms: tuple) -> None:
    """One table per file: what each platform's playback does to it."""
    if not platforms:
        return
    from earmark.offline.platforms import outcomes

    labels = _column_labels([a.file or "" for a in analyses])
    for label, a in zip(labels, analyses, strict=True):
        print_platform_table(_console(), f"Platforms: {label}", outcomes(a, platforms))


def print_platform_table(console: Any, title: str, rows: list) -> None:
    """A table of :class:`~earmark.offline.platforms.PlatformOutcome` rows (analyze, diff)."""
    from rich.table import Table

    from earmark.offline.platform_report import platform_rows

    head, *body = platform_rows(rows)  # the HTML report's numbers too
    table = Table(show_header=True, header_style="bold", title=title, title_justify="left")
    for name in head:
        table.add_column(name, justify="left" if name == "Platform" else "right")
    for row in body:
        table.add_row(*row)
    console.print(table)


def with_codecs(outcome: _Outcome, codecs: tuple[Any, ...], profile: Any) -> _Outcome:
    """The outcome with its codec results, their flags and warnings (said on stderr)."""
    import dataclasses

    from earmark.offline.codec_report import measure_file

    if outcome.analysis is None:
        return outcome
    a = outcome.analysis
    with captured_native_stderr(enabled=not _debug()):
        results, flags, warnings = measure_file(outcome.file, codecs, a, profile)
    for warning in warnings:
        _say(outcome.file, f"warning: {warning}")
    a = dataclasses.replace(
        a,
        flags=tuple(sorted((*a.flags, *flags), key=lambda f: f["start_s"])),
        warnings=(*a.warnings, *warnings),
    )
    return _Outcome(outcome.file, analysis=a, codecs=tuple(results))


def print_codecs(files: list[tuple[str, tuple[Any, ...]]]) -> None:
    """One table per file: what each codec did to it."""
    from rich.table import Table

    from earmark.offline.codec_report import codec_table

    console = _console()
    for path, results in files:
        if not results:
            continue
        rows = codec_table(results)
        table = Table(title=f"Codecs: {os.path.basename(path) or path}", title_justify="left")
        for i, head in enumerate(rows[0]):
            table.add_column(head, justify="left" if i == 0 else "right")
        for row in rows[1:]:
            table.add_row(*row)
        console.print(table)


def _refuse_output(exc: Exception) -> int:
    """An output that must not or cannot be written: one line, a usage error."""
    print(f"{_PROG}: {exc}", file=sys.stderr, flush=True)
    return EXIT_USAGE


def _analyze_one(path: str, analyze: Callable[..., Analysis], profile: Any = None) -> _Outcome:
    from earmark.engine.files import AudioFileError

    debug = _debug()
    with _captured_native_stderr(enabled=not debug) as captured:
        try:
            result = analyze(path, profile=profile)
        except AudioFileError as exc:
            error = exc.cause
        except Exception as exc:
            error = " ".join(f"internal error: {type(exc).__name__}: {exc}".split())
            if debug:
                traceback.print_exc()
            else:
                error += " (EARMARK_DEBUG=1 shows the traceback)"
        else:
            error = None
    if error is not None:
        _say(path, error)
        return _Outcome(path, error=error)
    # Native chatter (mpg123 writes straight to fd 2) becomes a warning about this file.
    for line in dict.fromkeys(line.strip() for line in captured.text.splitlines()):
        if line:
            _say(path, f"warning: {_strip_prefix(line, 'warning:')}")
    for warning in result.warnings:
        _say(path, f"warning: {warning}")
    return _Outcome(path, analysis=result)


def captured_native_stderr(enabled: bool = True) -> Any:
    """What C libraries write to fd 2 inside the block, collected (FFmpeg's chatter)."""
    return _captured_native_stderr(enabled=enabled)


def _strip_prefix(text: str, prefix: str) -> str:
    return text[len(prefix) :].lstrip() if text.lower().startswith(prefix) else text


def _say(path: str, message: str) -> None:
    one_line = " ".join(message.split())
    print(f"{_PROG}: {path}: {one_line}", file=sys.stderr, flush=True)


def _debug() -> bool:
    return os.environ.get("EARMARK_DEBUG", "") not in ("", "0")


class _Captured:
    text = ""


@contextlib.contextmanager
def _captured_native_stderr(enabled: bool = True) -> Iterator[_Captured]:
    """Collect what C libraries write to file descriptor 2 while the block runs.

    libsndfile's MP3 decoder (mpg123) prints warnings itself; captured, they
    can be reported as one prefixed line naming the file instead of raw text.
    """
    captured = _Captured()
    try:
        fd = sys.stderr.fileno() if enabled else -1
    except (AttributeError, OSError, ValueError):  # stderr replaced by a non-file object
        fd = -1
    if fd < 0:
        yield captured
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), fd)
        try:
            yield captured
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(saved, fd)
            os.close(saved)
            sink.seek(0)
            captured.text = sink.read().decode("utf-8", "replace")


# -- demo ---------------------------------------------------------------------------


def offline_demo(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from earmark.engine.demo import aggressive_master, demo_mix, through_chain
    from earmark.errors import PresetError
    from earmark.offline.analysis import analyze
    from earmark.profiles import resolve_profile

    try:
        profile = resolve_profile(args.profile)
    except PresetError as exc:
        parser.error(f"--profile: {exc}")
    from earmark.live.audio import DEFAULT_SAMPLE_RATE

    # Options of the live demo that mean nothing offline are refused, never ignored.
    live_only = [
        option
        for option, given in (
            ("--output", args.output is not None),
            ("--controller", bool(args.controller)),
            ("--session", args.session is not None),
            ("--clip-seconds", bool(args.clip_seconds)),
        )
        if given
    ]
    if live_only:
        parser.error(
            f"{', '.join(live_only)}: only for the live demo; --offline renders and measures "
            "without a device, a controller or a session"
        )
    if args.chain:  # a chain that cannot load is said before anything is rendered
        from earmark.engine.chains import load_chain

        try:
            load_chain(args.chain)
        except (ValueError, OSError) as exc:
            print(f"{_PROG}: {' '.join(str(exc).split())}", file=sys.stderr, flush=True)
            return EXIT_USAGE
    sample_rate = args.samplerate or DEFAULT_SAMPLE_RATE  # the live demo's, with no device
    seconds = args.seconds or 30.0
    print(
        f"{_PROG}: rendering {seconds:g} s of demo material and its aggressive master...",
        file=sys.stderr,
        flush=True,
    )
    mix = demo_mix(seconds=seconds, sample_rate=sample_rate)
    versions = [("Mix", mix)]
    if args.chain:  # the live demo's path A, measured offline
        try:
            versions.append(
                (
                    f"Mix -> {args.chain}",
                    through_chain(mix, sample_rate, args.chain, args.blocksize),
                )
            )
        except (ValueError, OSError) as exc:
            print(f"{_PROG}: {' '.join(str(exc).split())}", file=sys.stderr, flush=True)
            return EXIT_USAGE
    versions.append(("Aggressive master", aggressive_master(mix, sample_rate)))
    columns = [
        (label, analyze(x, sample_rate=sample_rate, profile=profile)) for label, x in versions
    ]
    _print_table(columns, change=True)
    console = _console()
    console.print(_demo_reading(columns[0][1], columns[-1][1]))
    from earmark.ui.flags_text import flag_lines

    for label, a in columns:  # judged against --profile, explained as analyze does
        if a.flags:
            console.print(f"\n{label} ({a.profile or 'default'} profile):", markup=False)
            for line in flag_lines(a.flags):
                console.print("  " + line, soft_wrap=True, markup=False)
    return EXIT_OK


def _demo_reading(before: Analysis, after: Analysis) -> str:
    """One plain-English paragraph on what the master did, from the numbers."""
    sentences: list[str] = []

    def delta(name: str) -> tuple[float, float, float] | None:
        a, b = getattr(before, name), getattr(after, name)
        if a is None or b is None:
            return None
        return float(a), float(b), float(b) - float(a)

    loud = delta("integrated_lufs")
    if loud is not None:
        a, b, d = loud
        way = "louder" if d >= 0 else "quieter"
        sentences.append(
            f"The master is {abs(d):.1f} LU {way} than the mix"
            f" ({a:.1f} -> {b:.1f} LUFS integrated)."
        )
    dyn = [
        (label, d)
        for label, d in (
            ("PLR", delta("plr_db")),
            ("the lowest PSR", delta("psr_min_db")),
            ("the crest factor", delta("crest_db")),
        )
        if d is not None
    ]
    if dyn:
        parts = [f"{label} from {a:.1f} to {b:.1f} dB" for label, (a, b, _) in dyn]
        shrunk = all(d < 0 for _, (_, _, d) in dyn)
        if shrunk:
            sentences.append(
                "The peaks now sit much closer to the loudness: "
                + _join(parts)
                + ", the mark of heavy compression and limiting."
            )
        else:
            sentences.append("Peak-to-loudness measures moved: " + _join(parts) + ".")
    lra = delta("loudness_range_lu")
    if lra is not None and abs(lra[2]) >= 0.5:
        a, b, d = lra
        verb = "shrank" if d < 0 else "grew"
        sentences.append(f"The loudness range {verb} from {a:.1f} to {b:.1f} LU.")
    tilt = delta("spectral_tilt_db_per_oct")
    if tilt is not None:
        a, b, d = tilt
        if abs(d) >= 0.2:
            way = "brighter" if d > 0 else "darker"
            sentences.append(
                f"Tonally it is {way}: the spectral tilt moved by {d:+.2f} dB/oct"
                f" ({a:.2f} -> {b:.2f})."
            )
        else:
            sentences.append("The overall tonal tilt is about the same.")
    if after.true_peak_dbtp is not None and after.true_peak_dbtp > -1.0:
        sp = after.sample_peak_dbfs
        inter = (
            f"; sample peaks stop at {sp:.1f} dBFS, so the overs are between the samples"
            if sp is not None and after.true_peak_dbtp > sp + 0.1
            else ""
        )
        sentences.append(
            f"Its true peak reaches {after.true_peak_dbtp:.1f} dBTP, above the -1 dBTP"
            f" ceiling most delivery specifications ask for{inter}."
        )
    if not sentences:
        return "The demo material is too short to compare (loudness needs at least 400 ms)."
    return " ".join(sentences)


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


# -- table --------------------------------------------------------------------------


def _print_table(columns: list[tuple[str, Analysis]], change: bool = False) -> None:
    from rich.table import Table

    table = Table(show_header=True, header_style="bold", title=None)
    table.add_column("Measure")
    table.add_column("Unit", style="dim")
    for label, _ in columns:
        table.add_column(label, justify="right", overflow="fold")
    if change:
        table.add_column("Change", justify="right")
    for m in MEASURES:
        label, unit, attr, decimals = m.label, m.unit, m.key, m.decimals
        values = [getattr(a, attr) for _, a in columns]
        cells = [fmt_value(v, decimals) for v in values]
        if change:
            first, last = values[0], values[-1]
            diff = None if first is None or last is None else last - first
            cells.append(fmt_signed(diff, decimals))
        table.add_row(label, unit, *cells)
    table.add_section()
    rows: list[tuple[str, str, list[str]]] = [
        ("Duration", "", [_fmt_duration(a.duration_s) for _, a in columns]),
        ("Sample rate", "Hz", [str(a.sample_rate) for _, a in columns]),
        ("Channels", "", [str(a.channels) for _, a in columns]),
        ("Format", "", [" ".join(filter(None, (a.format, a.subtype))) or "-" for _, a in columns]),
        ("Flags", "", [_fmt_flags(a) for _, a in columns]),
    ]
    for label, unit, cells in rows:
        table.add_row(label, unit, *cells, *([""] if change else []))
    _console().print(table)


def _console(file: TextIO | None = None) -> Any:
    from rich.console import Console

    out = file or sys.stdout
    # Piped or redirected output is read by people later and by tools: no 80-column
    # squeeze, no colour codes.
    width = None if out.isatty() else _PIPE_WIDTH
    return Console(file=out, width=width, highlight=False, soft_wrap=False)


def _column_labels(paths: list[str]) -> list[str]:
    """File names when they tell the files apart (album folders), else the paths as given."""
    names = [os.path.basename(p) or p for p in paths]
    return names if len(set(names)) == len(names) else paths


def _fmt_duration(seconds: float) -> str:
    if seconds < 60.0:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(seconds, 60.0)
    return f"{int(minutes)}:{rest:04.1f}"


def _fmt_flags(analysis: Analysis) -> str:
    if not analysis.flags:
        return "none"
    return ", ".join(dict.fromkeys(str(f.get("code", "?")) for f in analysis.flags))


def _print_flags(analyses: list[Analysis]) -> None:
    """Each file's flags, one explained line each, problems first (the human readout)."""
    from earmark.ui.flags_text import flag_lines

    console = _console()
    for a in analyses:
        if not a.flags:
            continue
        name = os.path.basename(a.file or "") or "audio"
        console.print(f"\n{name} ({a.profile or 'default'} profile):", markup=False)
        for line in flag_lines(a.flags):
            console.print("  " + line, soft_wrap=True, markup=False)


# -- album --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _AlbumOutcome:
    json: dict[str, Any]  # the last element of the --json array
    album: Any = None  # earmark.offline.album.Album, or None when it could not be measured
    exit_code: int = EXIT_OK

    def print(self) -> None:
        if self.album is not None:
            _print_album(self.album)


def _album(files: list[str], outcomes: list[_Outcome]) -> _AlbumOutcome:
    """``--album``: the tracks as one programme; a refusal is one line on stderr."""
    from earmark.engine.files import AudioFileError
    from earmark.offline.album import AlbumError, analyze_album

    if any(o.analysis is None for o in outcomes):
        error = (
            "the album needs every track; "
            + ", ".join(o.file for o in outcomes if o.analysis is None)
            + " could not be read"
        )
        _say("--album", error)
        return _AlbumOutcome({"album": None, "error": error}, exit_code=EXIT_UNAVAILABLE)
    analyses = [o.analysis for o in outcomes if o.analysis is not None]
    try:
        album = analyze_album(files, analyses=analyses)
    except Exception as exc:
        if isinstance(exc, AudioFileError):  # a file changed after its own analysis
            error = f"{exc.path}: {exc.cause}"
        elif isinstance(exc, AlbumError):
            error = str(exc).removeprefix("--album: ")
        else:
            error = " ".join(f"internal error: {type(exc).__name__}: {exc}".split())
            if _debug():
                traceback.print_exc()
            else:
                error += " (EARMARK_DEBUG=1 shows the traceback)"
        _say("--album", error)
        code = EXIT_USAGE if isinstance(exc, AlbumError) else EXIT_UNAVAILABLE
        return _AlbumOutcome({"album": None, "error": error}, exit_code=code)
    for warning in album.warnings:
        _say("--album", f"warning: {warning}")
    return _AlbumOutcome({"album": album.to_json_dict()}, album=album)


def _print_album(album: Any) -> None:
    """Each track against the album, the album's row, its gain per platform, its flags."""
    from rich.table import Table

    from earmark.offline.platform_report import album_gain_rows, album_rows
    from earmark.ui.flags_text import flag_lines

    console = _console()
    labels = _column_labels([t.file or "" for t in album.tracks])
    for title, (head, *body) in (
        ("Album", album_rows(album, labels)),  # the HTML report's numbers too
        ("Album gain per platform", album_gain_rows(album)),
    ):
        table = Table(show_header=True, header_style="bold", title=title)
        for name in head:
            table.add_column(
                name, justify="left" if name in ("Track", "Platform") else "right", overflow="fold"
            )
        for i, row in enumerate(body):
            if title == "Album" and i == len(body) - 1:
                table.add_section()  # the album's own row under the tracks
            table.add_row(*row)
        console.print(table)
    if album.flags:
        console.print("\nAlbum:", markup=False)
        for line in flag_lines(album.flags):
            console.print("  " + line, soft_wrap=True, markup=False)
