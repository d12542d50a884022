"""The root of every error earmark raises, the exit codes, and the one-line message.

A leaf module: it imports nothing of the project, so every room (meters/ and engine/
included, which otherwise import nothing of the shell) may import it. Each error class
of earmark derives from :class:`EarmarkError` (and, where callers already catch a
built-in kind, from that too: a ``PresetError`` is still a ``ValueError``), so a caller
can catch earmark's errors apart from bugs, and the command line maps each one to its
documented exit code with :func:`exit_code_of`.

The exit codes are the command line's contract (README, "Exit codes"):

==== ===================== ==========================================================
code name                  meaning
==== ===================== ==========================================================
0    ``EXIT_OK``           done; no problem flag (or no ``--strict``)
1    ``EXIT_PROBLEM``      a problem flag was raised and ``--strict`` was given
2    ``EXIT_USAGE``        a usage error: bad arguments, an output that must not be written
3    ``EXIT_UNAVAILABLE``  unreadable input, no device or display, no session, doubtful alignment
==== ===================== ==========================================================
"""

from __future__ import annotations

__all__ = [
    "EXIT_OK",
    "EXIT_PROBLEM",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "EarmarkError",
    "PresetError",
    "exit_code_of",
    "one_line",
]

EXIT_OK = 0
EXIT_PROBLEM = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3


class EarmarkError(Exception):
    """Base of every error earmark raises on purpose (not a bug).

    ``exit_code`` is the command line's code for it; subclasses set their own.
    """

    exit_code: int = EXIT_UNAVAILABLE


class PresetError(EarmarkError, ValueError):
    """A preset (a chain, a profile, a controller map) is missing or invalid, or a live
    edit is (a chain parameter out of range): a usage error, exit code 2.

    Here, not in ``earmark.presets``, because the profile format lives in meters/, which
    imports nothing of the project but this leaf. ``str()`` is one line,
    ``"<file>:<line>: <table> <number> '<key>': <cause>"`` with the unknown parts left
    out (``gentle.toml:14: plugin 2 'ratio': must be between 1 and 100, got 0.5``);
    ``table`` and ``number`` name an array-of-tables entry (``plugin``, ``control``),
    counted from 1 as the file's ``[[plugin]]`` tables are.
    """

    exit_code = EXIT_USAGE

    def __init__(
        self,
        cause: str,
        source: str | None = None,
        line: int | None = None,
        key: str | None = None,
        *,
        table: str | None = None,
        number: int | None = None,
    ) -> None:
        self.cause = cause
        self.source = source
        self.line = line
        self.key = key
        self.table = table
        self.number = number
        where = ""
        if source:
            where = f"{source}:{line}: " if line else f"{source}: "
        subject = []
        if table is not None and number is not None:
            subject.append(f"{table} {number}")
        if key is not None:
            subject.append(f"'{key}'")
        super().__init__(where + (" ".join(subject) + ": " if subject else "") + cause)


def exit_code_of(exc: BaseException, default: int = EXIT_UNAVAILABLE) -> int:
    """The documented exit code of ``exc``: its class's ``exit_code`` when it is one of
    earmark's errors, else ``default``."""
    return exc.exit_code if isinstance(exc, EarmarkError) else default


def one_line(exc: BaseException, name: bool = False) -> str:
    """``exc`` as one line for a terminal or a log: its text with every run of whitespace
    (newlines included) folded to one space; ``name`` puts the class name first (for
    errors that are not earmark's own, where the class says what went wrong)."""
    text = " ".join(str(exc).split())
    if not name:
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
