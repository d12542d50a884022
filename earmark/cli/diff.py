"""``earmark diff BEFORE AFTER [--json] [--report OUT.html [--force]] [--profile P] [--mix MIX]``
``[--platforms [LIST]]`` ``[--chain OUT.toml]``.

Explains what turned BEFORE into AFTER (see :func:`earmark.diff`): loudness and
gain, the EQ as moves, compression and limiting, PSR/LRA/crest/transient and
width changes, and the flags AFTER gained or lost. With ``--mix MIX``, BEFORE and
AFTER are two masters of MIX: each is diffed against MIX and the two are shown
side by side, so each version's choices are described. ``--platforms [LIST]`` says
what AFTER's loudness change buys and costs on each platform (with ``--mix``: the
second master's against the first's), with both outcome tables; ``--json`` adds a
``platforms`` list (per platform ``name``, ``before``, ``after``, ``summary``).

``--chain OUT.toml`` writes what diff inferred as a chain preset of pedalboard
built-ins (:mod:`earmark.offline.reconstruct`), renders BEFORE through it and prints
the fidelity check against AFTER every time (``--json``: the ``reconstruction``
object, with ``chain`` the file written); OUT.toml follows the report's rules.

Output: a short readable report (default), one JSON object (``--json``; with
``--mix`` an object ``{"mix": ..., "versions": [...]}``), and optionally a
self-contained HTML page with plots (``--report``). The report never replaces
BEFORE, AFTER or MIX, and replaces an existing file only with ``--force``
(:mod:`earmark.outfiles`).

Alignment comes first: when the offset found cannot be trusted (the two are
probably not versions of one programme, or one is time-stretched or drowned in
reverb; :attr:`earmark.meters.diff.Alignment.doubt`), the diff says so in one
line on stderr and explains nothing. ``--force`` explains them anyway, with the
doubt as the first line of the output (on stderr with ``--json``, whose object
then has ``alignment.doubtful`` true).

Exit codes: 0 ok; 2 usage error (bad option, unknown profile, report path not
writable, an existing report without ``--force``, a report onto an input); 3 an
input cannot be read, the two cannot be compared, or their alignment is doubtful
(without ``--force``; one line on stderr per cause, naming the files). No
traceback unless ``EARMARK_DEBUG=1``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import traceback
from typing import TYPE_CHECKING, Any, TextIO

from earmark.errors import EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE, EarmarkError
from earmark.offline.measures import MEASURES, fmt_signed, fmt_value

if TYPE_CHECKING:
    from earmark.offline.transform import Transformation

__all__ = ["register"]

_PROG = "earmark"
_PIPE_WIDTH = 160


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``diff`` to the ``earmark`` command's subparsers."""
    p = subparsers.add_parser(
        "diff",
        help="explain what turned BEFORE into AFTER (gain, EQ moves, compression, limiting, "
        "width, flags)",
        description="Align AFTER to BEFORE (offset, sample rate, polarity) and explain the "
        "transformation: loudness and gain, the EQ curve as shelves/bells/cuts, compression "
        "threshold and ratio from the level transfer, limiting, PSR/LRA/crest/transient and "
        "stereo width changes, and the flags AFTER introduced or removed.",
        epilog="The two are aligned first; when the alignment is doubtful (not versions of one "
        "programme, time-stretched, drowned in reverb) nothing is explained unless --force. "
        "Exit codes: 0 ok, 2 usage error, 3 unreadable input, nothing to compare, or a "
        "doubtful alignment (without --force).",
    )
    # Optional here and checked in _cmd_diff: `--platforms BEFORE AFTER` and `--codecs
    # BEFORE AFTER` must give BEFORE back (an optional LIST swallows the next word).
    p.add_argument("before", nargs="?", metavar="BEFORE", help="the earlier version (e.g. the mix)")
    p.add_argument("after", nargs="?", metavar="AFTER", help="the later version (e.g. the master)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--report",
        metavar="OUT.html",
        help="write an HTML report with plots (never onto BEFORE, AFTER or MIX)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="replace an existing --report file, and explain a pair whose alignment is doubtful",
    )
    p.add_argument("--profile", metavar="NAME|FILE", help="genre or delivery profile for flags")
    p.add_argument(
        "--mix",
        metavar="MIX",
        help="BEFORE and AFTER are two masters of MIX: diff each against MIX, side by side",
    )
    p.add_argument(
        "--chain",
        metavar="OUT.toml",
        help="write the inferred moves as a chain preset, render BEFORE through it and print "
        "the fidelity check against AFTER",
    )
    from earmark.cli.analyze import add_codecs_option, add_platforms_option

    add_platforms_option(p)
    add_codecs_option(p)
    p.set_defaults(handler=_cmd_diff, subparser=p)
    return p


def _inputs(args: argparse.Namespace) -> list[str]:
    """The files this diff reads: the report is never written onto one of them."""
    return [args.mix, args.before, args.after] if args.mix else [args.before, args.after]


def _write_report(args: argparse.Namespace, page: str) -> bool:
    """Write the ``--report`` page; False (the cause said in one line) if refused."""
    from earmark.offline.report import write_report
    from earmark.outfiles import OutputError

    try:
        write_report(args.report, page, inputs=_inputs(args), force=args.force)
    except OutputError as exc:
        print(f"{_PROG}: {exc}", file=sys.stderr, flush=True)
        return False
    return True


def _cmd_diff(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from earmark.cli.analyze import platforms_or_error
    from earmark.cli.args import files_back

    files = files_back(args, [f for f in (args.before, args.after) if f is not None])
    if len(files) < 2:
        missing = " ".join(("BEFORE", "AFTER")[len(files) :])
        parser.error(f"the following arguments are required: {missing}")
    if len(files) > 2:
        parser.error(f"unrecognized arguments: {' '.join(files[2:])}")
    args.before, args.after = files
    args.platforms = platforms_or_error(args, parser)  # the rules, () without --platforms
    if args.report is not None:
        from earmark.outfiles import OutputError, check

        # Before the (long) diff; the write checks again.
        try:
            check(args.report, inputs=_inputs(args), force=args.force, option="--report")
        except OutputError as exc:
            print(f"{_PROG}: {exc}", file=sys.stderr, flush=True)
            return EXIT_USAGE
    if args.chain is not None and not _chain_writable(args, parser):
        return EXIT_USAGE
    profile = None
    if args.profile is not None:
        try:
            from earmark.offline.transform import profile_and_name

            profile, _ = profile_and_name(args.profile)
        except (ValueError, OSError) as exc:
            _say("--profile", str(exc))
            return EXIT_USAGE
    from earmark.cli.analyze import codecs_chosen

    codecs = codecs_chosen(args, parser)
    if codecs and args.mix:
        parser.error("--codecs: compares BEFORE and AFTER; not with --mix")
    bad = _unreadable(_inputs(args))
    if bad:
        return EXIT_UNAVAILABLE
    if args.mix:
        return _run_mix(args, profile)
    try:
        t = _diff(args.before, args.after, profile, args.force)
    except _DiffFailedError:
        return EXIT_UNAVAILABLE
    if args.json:
        _say_doubts([(f"{args.before}, {args.after}", t)])
    labels = ("BEFORE", "AFTER")
    compared = _codecs_of(args, t, codecs, profile) if codecs else None
    rec = _reconstruction(args, t) if args.chain else None
    written = True
    if args.report:
        from earmark.offline.report import diff_report

        page = diff_report(t, codecs=compared and compared[:2], platforms=args.platforms)
        written = _write_report(args, page)
    if args.json:
        obj = _with_platforms(t.to_dict(), t.before, t.after, args.platforms)
        if compared is not None:
            _add_codecs_json(obj, compared)
        if rec is not None:
            obj["reconstruction"] = {"chain": args.chain, **rec.to_dict()}
        _print_json(obj)
    else:
        _print_human(t, labels)
        _print_platforms(t.before, t.after, args.platforms, _labels(args.before, args.after))
        if compared is not None:
            _print_codecs(compared, labels)
        if rec is not None:
            _print_fidelity(args, rec)
        if args.report and written:
            print(f"{_PROG}: report written to {args.report}", file=sys.stderr)
    return EXIT_OK if written and (rec is not None or not args.chain) else EXIT_USAGE


def _chain_writable(args: argparse.Namespace, parser: argparse.ArgumentParser) -> bool:
    """``--chain``'s file can be written (before the long diff); not with ``--mix``."""
    from earmark.outfiles import OutputError, check

    if args.mix:
        parser.error("--chain: reconstructs BEFORE -> AFTER; not with --mix")
    try:
        check(args.chain, inputs=_inputs(args), force=args.force, option="--chain")
    except OutputError as exc:
        print(f"{_PROG}: {exc}", file=sys.stderr, flush=True)
        return False
    return True


def _reconstruction(args: argparse.Namespace, t: Transformation) -> Any:
    """Infer, render and check the chain, write it; None (the cause said) if not written."""
    from earmark.offline.reconstruct import reconstruct_file
    from earmark.outfiles import OutputError, write

    try:
        rec = reconstruct_file(t, args.before)
    except Exception as exc:  # one line, never a traceback (EARMARK_DEBUG=1 shows it)
        if _debug():
            traceback.print_exc()
        _say(args.chain, f"cannot reconstruct the chain: {type(exc).__name__}: {exc}")
        return None
    name = os.path.splitext(os.path.basename(args.chain))[0] or "reconstruction"
    text = rec.toml(name, os.path.basename(args.before), os.path.basename(args.after))
    try:
        write(args.chain, text, inputs=_inputs(args), force=args.force, option="--chain")
    except OutputError as exc:
        print(f"{_PROG}: {exc}", file=sys.stderr, flush=True)
        return None
    if args.json:  # stdout is JSON: the verdict on stderr, every time
        verdict = (
            "passed"
            if rec.fidelity.passed
            else "FAILED: " + ", ".join(c.label for c in rec.fidelity.failed)
        )
        _say(args.chain, f"chain written; fidelity check {verdict}")
    return rec


def _print_fidelity(args: argparse.Namespace, rec: Any) -> None:
    con = _console()
    fid = rec.fidelity
    con.print()
    con.print(
        f"[bold]Chain[/bold] written to {args.chain} ({len(rec.stages)} plugins)", soft_wrap=True
    )
    verdict = "[green]passed[/green]" if fid.passed else "[bold red]FAILED[/bold red]"
    con.print(f"[bold]Fidelity check[/bold] (BEFORE rendered through it, against AFTER): {verdict}")
    for line in fid.lines():
        con.print("  " + line, markup=False, soft_wrap=True)
    for note in rec.notes:
        con.print("  " + note, markup=False, soft_wrap=True)


def _run_mix(args: argparse.Namespace, profile: Any) -> int:
    pairs = [(args.mix, args.before), (args.mix, args.after)]
    done = []
    for before, after in pairs:  # both tried, so that each doubtful pair is named
        with contextlib.suppress(_DiffFailedError):  # its cause is already on stderr
            done.append(_diff(before, after, profile, args.force))
    if len(done) < len(pairs):
        return EXIT_UNAVAILABLE
    ta, tb = done
    if args.json:
        _say_doubts([(f"{m}, {v}", t) for (m, v), t in zip(pairs, done, strict=True)])
    label_a, label_b = _labels(args.before, args.after)
    mix_label = os.path.basename(args.mix) or args.mix
    written = True
    if args.report:
        from earmark.offline.report import mix_report

        page = mix_report(mix_label, [(label_a, ta), (label_b, tb)], platforms=args.platforms)
        written = _write_report(args, page)
    if args.json:
        _print_json(
            _with_platforms(
                {
                    "mix": args.mix,
                    "versions": [
                        {"file": args.before, **ta.to_dict()},
                        {"file": args.after, **tb.to_dict()},
                    ],
                },
                ta.after,
                tb.after,
                args.platforms,
            )
        )
    else:
        _print_mix(mix_label, [(label_a, ta), (label_b, tb)])
        _print_platforms(ta.after, tb.after, args.platforms, (label_a, label_b))
        if args.report and written:
            print(f"{_PROG}: report written to {args.report}", file=sys.stderr)
    return EXIT_OK if written else EXIT_USAGE


def _codecs_of(args: argparse.Namespace, t: Transformation, codecs: Any, profile: Any) -> Any:
    """(BEFORE's and AFTER's codec results, their codec_clipping flags); warnings said."""
    from earmark.cli.analyze import captured_native_stderr
    from earmark.offline.codec_report import measure_file
    from earmark.profiles import resolve_profile

    prof = profile if profile is not None else resolve_profile(None)
    out: list[Any] = []
    for path, analysis in ((args.before, t.before), (args.after, t.after)):
        with captured_native_stderr(enabled=not _debug()):
            results, flags, warnings = measure_file(path, codecs, analysis, prof)
        for warning in warnings:
            _say(path, f"warning: {warning}")
        out.append((results, flags))
    (rb, fb), (ra, fa) = out
    return rb, ra, fb, fa


def _add_codecs_json(obj: dict[str, Any], compared: Any) -> None:
    """``codecs`` (per codec, BEFORE and AFTER) and the codec flags in ``flags``."""
    from earmark.offline.codec_report import compared_json, flags_introduced

    rb, ra, fb, fa = compared
    obj["codecs"] = compared_json(rb, ra)
    introduced = flags_introduced(fb, fa)
    obj["flags"]["introduced"].extend(introduced)
    obj["flags"]["removed"].extend(flags_introduced(fa, fb))
    obj["flags"]["kept"].extend(f for f in fa if f not in introduced)


def _print_codecs(compared: Any, labels: tuple[str, str]) -> None:
    from rich.table import Table

    from earmark.offline.codec_report import compared_table, flags_introduced

    rb, ra, fb, fa = compared
    rows = compared_table(rb, ra, labels)
    table = Table(title="Codecs", title_justify="left", header_style="bold")
    for i, head in enumerate(rows[0]):
        table.add_column(head, justify="left" if i == 0 else "right")
    for row in rows[1:]:
        table.add_row(*row)
    con = _console()
    con.print()
    con.print(table)
    for flag in flags_introduced(fb, fa):
        line = f"{flag['severity'].upper()}  codec_clipping introduced: {flag['message']}"
        con.print("  " + line, soft_wrap=True, markup=False)


class _DiffFailedError(EarmarkError):
    """A diff could not be made; its cause is already on stderr."""


def _diff(before: str, after: str, profile: Any, force: bool) -> Transformation:
    from earmark.engine.files import AudioFileError
    from earmark.offline.transform import DoubtfulAlignmentError, diff

    try:
        return diff(before, after, profile=profile, force=force)
    except DoubtfulAlignmentError as exc:
        _say(f"{before}, {after}", f"{exc}; nothing explained (--force explains them anyway)")
    except AudioFileError as exc:
        _say(exc.path, exc.cause)
    except ValueError as exc:
        _say(f"{before}, {after}", str(exc))
    except Exception as exc:
        message = f"internal error: {type(exc).__name__}: {exc}"
        if _debug():
            traceback.print_exc()
        else:
            message += " (EARMARK_DEBUG=1 shows the traceback)"
        _say(f"{before}, {after}", message)
    raise _DiffFailedError


def _say_doubts(pairs: list[tuple[str, Transformation]]) -> None:
    """With ``--json``, a forced doubtful alignment's one line on stderr (stdout is JSON)."""
    for what, t in pairs:
        if t.alignment_doubt is not None:
            _say(what, f"alignment doubtful: {t.alignment_doubt}; explained because of --force")


def _doubt_line(t: Transformation, what: str = "") -> str:
    """The first line of a forced, doubtful diff's readable output."""
    where = f" ({what})" if what else ""
    return (
        f"[bold yellow]alignment doubtful{where}:[/bold yellow] {t.alignment_doubt};"
        " explained because of --force, read it with care"
    )


def _unreadable(paths: list[str]) -> list[str]:
    """Paths that cannot be opened as audio; each gets one line on stderr."""
    from earmark.engine.files import AudioFileError, open_audio

    bad = []
    for path in dict.fromkeys(paths):
        try:
            open_audio(path)
        except AudioFileError as exc:
            _say(exc.path, exc.cause)
            bad.append(path)
    return bad


def _labels(a: str, b: str) -> tuple[str, str]:
    na, nb = os.path.basename(a) or a, os.path.basename(b) or b
    return (na, nb) if na != nb else (a, b)


# -- output ---------------------------------------------------------------------------------


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, allow_nan=False) + "\n")
    sys.stdout.flush()


def _console(file: TextIO | None = None) -> Any:
    from rich.console import Console

    out = file or sys.stdout
    width = None if out.isatty() else _PIPE_WIDTH
    return Console(file=out, width=width, highlight=False, soft_wrap=False)


def _with_platforms(obj: dict, before: Any, after: Any, platforms: tuple) -> dict:
    """``--json``'s object with ``platforms``: per platform, both outcomes and the sentence
    (with ``--mix``, the two versions are compared, BEFORE then AFTER)."""
    if platforms:
        from earmark.offline.platforms import compare_sentence, outcomes

        obj["platforms"] = [
            {
                "name": b.rule.name,
                "before": b.to_json_dict(),
                "after": a.to_json_dict(),
                "summary": compare_sentence(b, a),
            }
            for b, a in zip(outcomes(before, platforms), outcomes(after, platforms), strict=True)
        ]
    return obj


def _print_platforms(before: Any, after: Any, platforms: tuple, labels: tuple[str, str]) -> None:
    """What each platform makes of BEFORE and AFTER: a sentence each, then both tables."""
    if not platforms:
        return
    from earmark.cli.analyze import print_platform_table
    from earmark.offline.platforms import compare_sentence, outcomes

    con = _console()
    ob, oa = outcomes(before, platforms), outcomes(after, platforms)
    con.print()
    con.print(f"Platforms (BEFORE = {labels[0]}, AFTER = {labels[1]}):", markup=False)
    for b, a in zip(ob, oa, strict=True):
        sentence = compare_sentence(b, a)
        con.print(f"  {sentence[:1].upper()}{sentence[1:]}.", markup=False, soft_wrap=True)
    for label, rows in ((labels[0], ob), (labels[1], oa)):
        print_platform_table(con, f"Platforms: {label}", rows)


def _print_human(t: Transformation, labels: tuple[str, str]) -> None:
    from rich.table import Table

    con = _console()
    r = t.result
    if t.alignment_doubt is not None:
        con.print(_doubt_line(t), soft_wrap=True)
    con.print(
        f"[bold]earmark diff[/bold] · {t.before.file} → {t.after.file}  "
        f"[dim](offset {fmt_signed(r.alignment.offset_ms, 2)} ms, {r.sample_rate} Hz,"
        f" {r.duration_s:.1f} s compared)[/dim]"
    )
    con.print()
    con.print(t.summary + ".")
    con.print()
    table = Table(show_header=True, header_style="bold")
    table.add_column("Measure")
    table.add_column("Unit", style="dim")
    table.add_column(labels[0], justify="right")
    table.add_column(labels[1], justify="right")
    table.add_column("Change", justify="right")
    for m in MEASURES:
        name, unit, attr, dec = m.label, m.unit, m.key, m.decimals
        b, a = getattr(t.before, attr), getattr(t.after, attr)
        change = "-" if b is None or a is None else fmt_signed(a - b, dec)
        table.add_row(name, unit, fmt_value(b, dec), fmt_value(a, dec), change)
    con.print(table)
    _print_details(con, t)


def _print_details(con: Any, t: Transformation) -> None:
    from rich.markup import escape

    from earmark.offline.transform import describe_move
    from earmark.ui.flags_text import flag_bullet

    r = t.result
    lines = ["[bold]EQ[/bold]"]
    lines += [f"  {describe_move(t, m)}" for m in r.moves] or ["  no EQ move of 1 dB or more"]
    lines.append("[bold]Dynamics[/bold]")
    dyn = t.dynamics()
    if r.compressed:
        lines.append(
            f"  compression about {dyn['ratio']:.1f}:1 above {dyn['threshold_db']:.1f} dBFS,"
            f" up to {dyn['gain_reduction_db']:.1f} dB of gain reduction"
        )
    else:
        lines.append("  no compression")
    if r.limiting.limited:
        lines.append(
            f"  limited: {r.limiting.pinned_fraction * 100:.0f} % of 20 ms windows peak at"
            f" {r.limiting.ceiling_dbfs:.2f} dBFS;"
            f" true peak {fmt_value(t.after.true_peak_dbtp, 1)} dBTP"
        )
    else:
        lines.append("  no limiting")
    lines.append(f"  broadband gain on the quiet passages {t.gain_db:+.2f} dB")
    if dyn["transient_crest_change_db"] is not None:
        lines.append(f"  transient crest {dyn['transient_crest_change_db']:+.1f} dB")
    s = t.stereo()
    if s["width_change_pct"] is not None:
        lines.append("[bold]Stereo[/bold]")
        lines.append(
            f"  width {s['width_change_pct']:+.0f} % (side-to-mid {s['side_to_mid_before_db']:.1f}"
            f" -> {s['side_to_mid_after_db']:.1f} dB)"
        )
    if t.residual is not None:
        lines.append("[bold]Residual[/bold]")
        lines.append(f"  {escape(t.residual.sentence(*_residual_names(t)))}")
    lines.append("[bold]Flags[/bold]")
    for title, flags in (
        ("introduced", t.flags_introduced),
        ("removed", t.flags_removed),
    ):
        if flags:
            lines.append(f"  {title}:")
            # One line per flag (a flag groups its occurrences and lists them).
            lines += [f"    {escape(flag_bullet(f))}" for f in flags]
    if not t.flags_introduced and not t.flags_removed:
        kept = len(t.flags_kept)
        lines.append(f"  none introduced or removed ({kept} unchanged)")
    lines += _warning_lines(t)
    for line in lines:
        con.print(line, markup=True)


def _residual_names(t: Transformation) -> tuple[str, str]:
    return "BEFORE", "AFTER"


def _warning_lines(t: Transformation) -> list[str]:
    """The warnings, less the alignment doubt (already the first line)."""
    shown = t.warnings[1:] if t.alignment_doubt is not None else t.warnings
    return [f"[yellow]warning:[/yellow] {w}" for w in shown]


def _print_mix(mix_label: str, versions: list[tuple[str, Transformation]]) -> None:
    from rich.table import Table

    con = _console()
    for label, t in versions:
        if t.alignment_doubt is not None:
            con.print(_doubt_line(t, f"{mix_label} → {label}"), soft_wrap=True)
    con.print(
        f"[bold]earmark diff[/bold] · two masters of {mix_label}: "
        + ", ".join(label for label, _ in versions)
    )
    con.print()
    table = Table(show_header=True, header_style="bold")
    table.add_column("Measure")
    table.add_column("Unit", style="dim")
    table.add_column(mix_label, justify="right")
    for label, _ in versions:
        table.add_column(label, justify="right")
    mix = versions[0][1].before
    for m in MEASURES:
        name, unit, attr, dec = m.label, m.unit, m.key, m.decimals
        table.add_row(
            name,
            unit,
            fmt_value(getattr(mix, attr), dec),
            *[fmt_value(getattr(t.after, attr), dec) for _, t in versions],
        )
    con.print(table)
    for label, t in versions:
        con.print()
        con.print(f"[bold]{mix_label} → {label}[/bold]")
        con.print("; ".join(t.narrate(mix_label, label)) + ".")
        for line in _warning_lines(t):
            con.print(line, markup=True)


def _say(what: str, message: str) -> None:
    one_line = " ".join(str(message).split())
    print(f"{_PROG}: {what}: {one_line}", file=sys.stderr, flush=True)


def _debug() -> bool:
    return os.environ.get("EARMARK_DEBUG", "") not in ("", "0")
