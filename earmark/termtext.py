"""Stored text made safe to print on a terminal.

Labels, notes, session, path, chain and plugin names come from the store, from
imported files and from other programs: any of them can hold control characters,
and an escape sequence printed raw can recolour, clear or retitle the terminal,
or hide the text around it. :func:`printable` shows every such character as a
visible escape (``\\x1b``, ``\\x9b``, ``\\u202e``) instead, so the text reads
as stored and does nothing.
"""

from __future__ import annotations

import unicodedata
from typing import Any

__all__ = ["printable", "printable_data", "printable_lines"]

# Unicode characters that reorder or hide the text around them (bidirectional
# overrides and isolates; line and paragraph separators) though they are not
# "control" characters: shown escaped too.
_INVISIBLE = frozenset(
    [0x061C, 0x200E, 0x200F, 0x2028, 0x2029, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
)


def printable(value: Any) -> str:
    """``str(value)`` with C0 and C1 control characters, DEL (so every ESC sequence)
    and bidirectional controls shown as ``\\xNN`` / ``\\uNNNN`` escapes; any other
    text is unchanged. ``None`` stays ``"None"`` (callers choose their own dash)."""
    text = str(value)
    if text.isprintable() and not any(ord(c) in _INVISIBLE for c in text):
        return text  # the common case: nothing to do
    return "".join(_escaped(c) for c in text)


def _escaped(char: str) -> str:
    code = ord(char)
    if code in _INVISIBLE or unicodedata.category(char) == "Cc":
        return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"
    return char


def printable_lines(text: str) -> str:
    """:func:`printable` for text of several lines (CSV): line breaks are kept."""
    return "".join(
        printable(line[: len(line) - len(ending)]) + ending
        for line in text.splitlines(keepends=True)
        for ending in (_ending(line),)
    )


def _ending(line: str) -> str:
    for ending in ("\r\n", "\n"):
        if line.endswith(ending):
            return ending
    return ""


def printable_data(value: Any) -> Any:
    """A copy of a JSON-like document (dicts, lists, scalars) with every string, keys
    included, made :func:`printable`; numbers and ``None`` unchanged."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {printable_data(k): printable_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [printable_data(v) for v in value]
    return value
