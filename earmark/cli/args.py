"""Argument checks the commands share: argparse ``type=`` functions for the live commands
(``demo``, ``run``), and :func:`files_back` for ``analyze`` and ``diff``.

Each one turns the text of an option into its value or raises
``argparse.ArgumentTypeError`` with the bad value and the valid range, so that
argparse reports it as a usage error (exit 2) before anything is rendered,
loaded or opened: ``argument --blocksize: must be a whole number of frames from
16 to 8192, got -64``.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Sequence

from earmark.engine.rt import MAX_BLOCK_FRAMES, MIN_BLOCK_FRAMES  # the engine's own range
from earmark.meters.bank import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE

__all__ = [
    "MAX_BLOCK_FRAMES",
    "MAX_CLIP_SECONDS",
    "MAX_TRIALS",
    "MIN_BLOCK_FRAMES",
    "blocksize",
    "clip_seconds",
    "files_back",
    "sample_rate",
    "seconds",
    "start_seconds",
    "trials",
]

MAX_CLIP_SECONDS = 60.0
MAX_TRIALS = 200  # a blind test longer than this measures fatigue, not hearing (inference)


def seconds(text: str) -> float:
    """``--seconds``: a finite number of seconds above 0 (leave it out to stream until q)."""
    value = _number(text, "seconds")
    if not (math.isfinite(value) and value > 0.0):
        raise argparse.ArgumentTypeError(
            f"must be a number of seconds above 0 (leave it out to stream until q or Ctrl-C), "
            f"got {text}"
        )
    return value


def blocksize(text: str) -> int:
    """``--blocksize``: frames per audio block, from MIN_BLOCK_FRAMES to MAX_BLOCK_FRAMES."""
    value = _whole(text, "a whole number of frames")
    if not MIN_BLOCK_FRAMES <= value <= MAX_BLOCK_FRAMES:
        raise argparse.ArgumentTypeError(
            f"must be a whole number of frames from {MIN_BLOCK_FRAMES} to {MAX_BLOCK_FRAMES}, "
            f"got {text}"
        )
    return value


def sample_rate(text: str) -> int:
    """``--samplerate``: a whole number of Hz the meters support (8000 to 384000)."""
    value = _whole(text, "a whole number of Hz")
    if not MIN_SAMPLE_RATE <= value <= MAX_SAMPLE_RATE:
        raise argparse.ArgumentTypeError(
            f"must be a whole number of Hz from {MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE}, got {text}"
        )
    return value


def clip_seconds(text: str) -> float:
    """``--clip-seconds``: 0 (no clips) to MAX_CLIP_SECONDS."""
    value = _number(text, "seconds")
    if not 0.0 <= value <= MAX_CLIP_SECONDS:  # nan fails both comparisons
        raise argparse.ArgumentTypeError(
            f"must be between 0 and {MAX_CLIP_SECONDS:g} seconds, got {text}"
        )
    return value


def start_seconds(text: str) -> float:
    """``--start``: a finite number of seconds from 0."""
    value = _number(text, "seconds")
    if not (math.isfinite(value) and value >= 0.0):
        raise argparse.ArgumentTypeError(f"must be a number of seconds from 0, got {text}")
    return value


def trials(text: str) -> int:
    """``--trials``: a whole number of trials, 1 to MAX_TRIALS."""
    value = _whole(text, "a whole number of trials")
    if not 1 <= value <= MAX_TRIALS:
        raise argparse.ArgumentTypeError(f"must be from 1 to {MAX_TRIALS} trials, got {text}")
    return value


def files_back(args: argparse.Namespace, files: Sequence[str]) -> list[str]:
    """The FILEs, with any that ``--codecs [LIST]`` or ``--platforms [LIST]`` swallowed given
    back (``analyze --codecs master.wav``, ``diff --platforms mix.wav master.wav``).

    An optional LIST takes the next word; a value that is no list of names but an existing
    file goes back to the front of the files, and the option means its default (all).
    A value that is neither stays, for the option's own one-line error.
    """
    from earmark.offline.codecs import parse_codecs
    from earmark.offline.platforms import parse_platforms

    out = list(files)
    # Both options swallowing a file (`--platforms a.wav --codecs b.wav`) gives them back
    # as platforms' then codecs' (the order the options were written in is not kept).
    for option, parse in (("codecs", parse_codecs), ("platforms", parse_platforms)):
        value = getattr(args, option, None)
        if not isinstance(value, str) or value == "all" or not os.path.exists(value):
            continue
        try:
            parse(value)
        except ValueError:
            setattr(args, option, "all")
            out.insert(0, value)
    return out


def _number(text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None


def _whole(text: str, what: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
