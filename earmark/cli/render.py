"""``earmark render --chain CHAIN IN OUT [--force]``: a file through a chain, offline.

CHAIN is a preset name or file, resolved as ``earmark run --chain`` resolves it.
IN runs through the chain block by block, as the audio callback runs it
(:func:`earmark.engine.chains.render.render`); the chain's latency is removed, so
OUT lines up with IN sample for sample, and OUT runs on past IN's end while the
chain still sounds (a reverb's or delay's tail). OUT is written as 32-bit float
(WAV, AIFF, W64, CAF or RF64, by its extension) so that nothing over 0 dBFS is
clipped: a mastering engineer decides where the output goes next; a peak over
0 dBFS is reported on stderr, never silently kept or silently clipped. Nothing
non-finite is ever written (a plugin's NaN/Inf block becomes silence, reported).

OUT never replaces IN and replaces an existing file only with ``--force``
(:mod:`earmark.outfiles`). Exit codes: 0 ok; 2 a bad chain (the preset's file,
line and key named), a bad OUT; 3 IN cannot be read. One line on stderr per
cause, never a traceback unless ``EARMARK_DEBUG=1``.
"""

from __future__ import annotations

import argparse
import io
import math
import os
import sys
import traceback
from typing import Any

from earmark.errors import EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE, one_line

__all__ = ["FLOAT_FORMATS", "register"]

_PROG = "earmark"
#: OUT's extension -> libsndfile's format: the containers that hold 32-bit float.
FLOAT_FORMATS = {
    ".wav": "WAV",
    ".aif": "AIFF",
    ".aiff": "AIFF",
    ".w64": "W64",
    ".caf": "CAF",
    ".rf64": "RF64",
}


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``render`` to the ``earmark`` command's subparsers."""
    p = subparsers.add_parser(
        "render",
        help="render a file through a chain offline (latency compensated, tail included)",
        description="Run IN through the chain CHAIN offline, block by block as the live engine "
        "runs it, and write OUT as 32-bit float, aligned with IN (the chain's latency removed) "
        "and with the chain's tail.",
        epilog="Exit codes: 0 ok, 2 usage error or a bad chain, 3 unreadable input.",
    )
    p.add_argument("--chain", required=True, metavar="PRESET|FILE", help="the chain to render")
    p.add_argument("input", metavar="IN", help="the audio file to render")
    p.add_argument("output", metavar="OUT", help="the file to write (.wav, .aiff, .w64, .caf)")
    p.add_argument("--force", action="store_true", help="replace an existing OUT (never IN)")
    p.set_defaults(handler=_cmd_render, subparser=p)
    return p


def _cmd_render(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from earmark.engine.chains import PresetError, load_chain
    from earmark.engine.files import AudioFileError, iter_blocks, open_audio
    from earmark.outfiles import OutputError, check

    ext = os.path.splitext(args.output)[1].lower()
    if ext not in FLOAT_FORMATS:
        _say(
            args.output,
            f"write {', '.join(sorted(FLOAT_FORMATS))}: render writes 32-bit float, "
            "so that nothing over 0 dBFS is clipped",
        )
        return EXIT_USAGE
    try:
        spec = load_chain(args.chain)
    except PresetError as exc:
        _say("--chain", one_line(exc))
        return EXIT_USAGE
    try:
        info = open_audio(args.input)
    except AudioFileError as exc:
        _say(exc.path, exc.cause)
        return EXIT_UNAVAILABLE
    try:
        check(args.output, inputs=[args.input], force=args.force, option="OUT")
    except OutputError as exc:
        print(f"{_PROG}: {exc}", file=sys.stderr, flush=True)
        return EXIT_USAGE
    try:
        import numpy as np

        blocks = list(iter_blocks(args.input, 65536, dtype="float32"))
        audio = np.concatenate(blocks) if blocks else np.zeros((0, info.channels), dtype=np.float32)
    except AudioFileError as exc:
        _say(exc.path, exc.cause)
        return EXIT_UNAVAILABLE
    try:
        rendered = _render(spec, audio, info.sample_rate)
    except PresetError as exc:
        _say("--chain", one_line(exc))
        return EXIT_USAGE
    except Exception as exc:  # a plugin's own failure while building: one line
        if _debug():
            traceback.print_exc()
        _say(args.chain, f"cannot render: {one_line(exc, name=True)}")
        return EXIT_USAGE
    try:
        _write(args.output, rendered.audio, info.sample_rate, FLOAT_FORMATS[ext], args)
    except OutputError as exc:
        print(f"{_PROG}: {exc}", file=sys.stderr, flush=True)
        return EXIT_USAGE
    _report(args, rendered, info.sample_rate)
    return EXIT_OK


def _render(spec: Any, audio: Any, sample_rate: int) -> Any:
    from earmark.engine.chains.render import render

    # VST3s are found as `earmark run` finds them (plugins.resolve: scanned name or path).
    return render(spec, audio, sample_rate)


def _write(path: str, audio: Any, sample_rate: int, fmt: str, args: argparse.Namespace) -> None:
    import soundfile as sf

    from earmark.outfiles import write

    buffer = io.BytesIO()
    sf.write(buffer, audio, int(sample_rate), subtype="FLOAT", format=fmt)
    write(path, buffer.getvalue(), inputs=[args.input], force=args.force, option="OUT")


def _report(args: argparse.Namespace, rendered: Any, sample_rate: int) -> None:
    import numpy as np

    peak = float(np.max(np.abs(rendered.audio), initial=0.0))
    peak_db = 20.0 * math.log10(peak) if peak > 0 else -math.inf
    seconds = rendered.audio.shape[0] / sample_rate
    print(
        f"{_PROG}: rendered {args.input} through {args.chain} to {args.output}"
        f" ({seconds:.1f} s, 32-bit float; latency {rendered.latency_samples} samples removed,"
        f" tail {rendered.tail_frames / sample_rate:.2f} s; sample peak {peak_db:+.1f} dBFS)",
        file=sys.stderr,
    )
    if peak_db > 0.0:
        _say(
            args.output,
            f"warning: sample peak {peak_db:+.2f} dBFS, kept in float and not "
            "clipped; lower the chain's output before a fixed-point delivery",
        )
    if rendered.muted_blocks:
        _say(
            args.output,
            f"warning: {rendered.muted_blocks} block(s) silenced: a plugin raised "
            "or output NaN/Inf",
        )
    if rendered.nonfinite_input_samples:
        _say(
            args.input,
            f"warning: {rendered.nonfinite_input_samples} NaN/Inf sample(s) played as silence",
        )
    for w in rendered.warnings:
        _say(args.chain, f"warning: {w}")


def _say(what: str, message: str) -> None:
    print(f"{_PROG}: {what}: {' '.join(str(message).split())}", file=sys.stderr, flush=True)


def _debug() -> bool:
    return os.environ.get("EARMARK_DEBUG", "") not in ("", "0")
