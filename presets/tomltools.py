"""What every TOML parser in earmark shares: the parse, line numbers, value wording.

Chain presets (``engine.chains``) and controller maps (``ui.midi.map``) are
parsed with :func:`parse_toml`, and all name the file, line and key of a mistake
and word values the same way. (``meters.profile`` keeps its own small copy of the
parse and the line finder: the meters import nothing of ours but ``earmark.errors``,
whose :class:`~earmark.errors.PresetError` it raises too.)
"""

from __future__ import annotations

import difflib
import json
import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from typing import Any

from earmark.errors import PresetError

__all__ = [
    "TomlLines",
    "chain_text",
    "choices",
    "did_you_mean",
    "num",
    "parse_toml",
    "show_value",
    "toml_files",
    "toml_value",
]


def parse_toml(text: str, source: str | None = None) -> tuple[dict[str, Any], TomlLines]:
    """The TOML ``text`` as a dict, with where its keys sit (:class:`TomlLines`).

    Raises:
        PresetError: invalid TOML, naming ``source`` and the line the parser stopped at
            (the last line when the document ended too early).
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"\(at line (\d+), column \d+\)", str(exc))
        if found:
            line: int | None = int(found.group(1))
        elif "end of document" in str(exc):
            line = max(1, len(text.splitlines()))
        else:
            line = None
        raise PresetError(f"invalid TOML: {exc}", source, line) from None
    return data, TomlLines(text)


def toml_files(folder: Any) -> list[Any]:
    """The ``*.toml`` files in ``folder`` (a Path or importlib resource), sorted; [] if none."""
    try:
        entries = [e for e in folder.iterdir() if e.name.endswith(".toml") and e.is_file()]
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(entries, key=lambda e: e.name)


def did_you_mean(word: str, options: Sequence[str] | Mapping[str, Any]) -> str:
    """`` (did you mean 'x'?)`` for the closest option, or ``""``."""
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def choices(options: Sequence[str], quote: str = '"') -> str:
    """``"a", "b", "c"``."""
    return ", ".join(f"{quote}{o}{quote}" for o in options)


def num(value: float) -> str:
    """A number as the engineer typed it: no trailing zeros, 10 significant digits."""
    return f"{value:.10g}"


def show_value(value: Any, string_word: bool = False) -> str:
    """A TOML value as an error message shows it (``string "x"`` with ``string_word``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'string "{value}"' if string_word else f'"{value}"'
    if isinstance(value, (int, float)):
        return num(float(value))
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__


def toml_value(value: Any) -> str:
    """A value written as TOML: ``true``, ``-3.5``, ``"text"`` (finite numbers only)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"TOML has no value for {value}")
        text = repr(float(value))
        return text if ("." in text or "e" in text) else text + ".0"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON's escapes are TOML's basic string's
    raise TypeError(f"cannot write {type(value).__name__} as a TOML value")


def _comment(lines: Sequence[str]) -> list[str]:
    return ["# " + part if part else "#" for line in lines for part in str(line).splitlines()]


def chain_text(
    name: str,
    description: str,
    plugins: Sequence[tuple[Mapping[str, Any], Sequence[str]]],
    header: Sequence[str] = (),
) -> str:
    """A chain preset's TOML text (the format of ``earmark.engine.chains.spec``).

    ``plugins`` are (table, comment lines) in signal order: each table's keys and
    values (``builtin``, ``label``, parameters with their units) are written in
    order under a ``[[plugin]]`` header, its comment lines just above it;
    ``header`` lines open the file as comments.
    """
    out = _comment(header)
    out += [f"name = {toml_value(name)}", f"description = {toml_value(description)}", "version = 1"]
    for table, comments in plugins:
        out.append("")
        out += _comment(comments)
        out.append("[[plugin]]")
        out += [f"{key} = {toml_value(value)}" for key, value in table.items()]
    return "\n".join(out) + "\n"


class TomlLines:
    """Where keys sit in a TOML text (tomllib reports positions only for syntax errors).

    Records the first line of each ``key =`` per table: ``tables[""]`` is the top
    level (which also holds each table's name at its header line), ``tables[NAME]``
    a plain table, and ``arrays[NAME]`` one dict per ``[[NAME]]`` entry, whose
    header line is stored under the key ``""``. The insides of multi-line strings
    are skipped.
    """

    _KEY = re.compile(r"""^\s*(?:"([^"]*)"|'([^']*)'|([A-Za-z0-9_-]+))\s*(?:\.|=)""")
    _ARRAY_TABLE = re.compile(r"^\s*\[\[\s*([^\]]+?)\s*\]\]")
    _TABLE = re.compile(r"^\s*\[\s*([^\]]+?)\s*\]")

    def __init__(self, text: str) -> None:
        self.tables: dict[str, dict[str, int]] = {"": {}}
        self.arrays: dict[str, list[dict[str, int]]] = {}
        current: dict[str, int] | None = self.tables[""]
        open_quote: str | None = None
        for number, line in enumerate(text.splitlines(), start=1):
            if open_quote is not None:
                if line.count(open_quote) % 2 == 1:
                    open_quote = None
                continue
            header = self._ARRAY_TABLE.match(line)
            if header:
                current = {"": number}
                self.arrays.setdefault(header.group(1).strip(), []).append(current)
                continue
            table = self._TABLE.match(line)
            if table:
                name = table.group(1).strip()
                current = self.tables.setdefault(name, {"": number})
                self.tables[""].setdefault(name.split(".")[0].strip().strip("\"'"), number)
                continue
            key = self._KEY.match(line)
            if key and current is not None:
                current.setdefault(next(g for g in key.groups() if g is not None), number)
                rest = line[key.end() :]
                for quote in ('"""', "'''"):
                    if rest.count(quote) % 2 == 1:
                        open_quote = quote
                        break

    @property
    def top(self) -> dict[str, int]:
        """Top-level keys and table names -> line."""
        return self.tables[""]

    def line(self, table: str, key: str | None) -> int | None:
        """The line of ``key`` in a plain table (``""``: top level), else the table's header."""
        found = self.tables.get(table, {})
        return found.get(key, found.get("")) if key is not None else found.get("")

    def array(self, name: str, number: int) -> dict[str, int]:
        """Key -> line for the ``number``-th (from 1) ``[[name]]`` entry; {} if none."""
        entries = self.arrays.get(name, [])
        return entries[number - 1] if 0 < number <= len(entries) else {}
