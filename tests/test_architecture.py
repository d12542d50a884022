"""The rooms of docs/architecture.md, checked: imports point one way, and nobody reads
another module's private names.

Every import statement of the product (module level or inside a function: both are
dependencies) is read from the source with ``ast``, resolved to a module name, and
judged against the rules of docs/architecture.md, "Rooms and what they may import".
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Folder -> the package it is installed as (pyproject.toml's package-dir).
ROOMS = {
    "earmark": "earmark",
    "engine": "earmark.engine",
    "meters": "earmark.meters",
    "ui": "earmark.ui",
    "presets": "earmark.presets",
}
# Leaves every room may import: they import nothing of the project but each other
# (errors: the error root; private: the private-folder checks every reader uses).
LEAVES = ("earmark.errors", "earmark.private")
# What each room may import besides itself and the leaves.
ALLOWED = {
    "earmark.meters": (),
    "earmark.presets": (),
    "earmark.engine": ("earmark.meters", "earmark.presets"),
    "earmark.ui": ("earmark.meters", "earmark.engine", "earmark.presets"),
}
# engine modules that are the engine's own business: ui reaches the engine through
# its public types, never through these.
ENGINE_INTERNALS = ("earmark.engine.childproc", "earmark.engine.native", "earmark.engine.rt")


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT)
    package = ROOMS[rel.parts[0]]
    parts = [*package.split("."), *rel.parts[1:]]
    parts[-1] = parts[-1].removesuffix(".py")
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> list[Path]:
    return sorted(p for room in ROOMS for p in (ROOT / room).rglob("*.py"))


def _imports(path: Path) -> list[tuple[int, str, tuple[str, ...]]]:
    """(line, module, names) for every import in ``path``; relative ones resolved."""
    me = _module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, a.name, ()) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            out.append((node.lineno, module, tuple(a.name for a in node.names)))
    return out


def _room(module: str) -> str:
    for room in sorted(ALLOWED, key=len, reverse=True):
        if module == room or module.startswith(room + "."):
            return room
    return "earmark"  # the shell


def _within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _ours(module: str) -> bool:
    return module == "earmark" or module.startswith("earmark.")


def _violations() -> list[str]:
    found = []
    modules = {_module_name(p) for p in _sources()}
    for path in _sources():
        me = _module_name(path)
        room = _room(me)
        where = path.relative_to(ROOT)
        for line, module, names in _imports(path):
            if not _ours(module):
                continue
            # `from earmark.meters import kernels` names a module: judge that module.
            targets = [module]
            if names:
                targets = [f"{module}.{n}" if f"{module}.{n}" in modules else module for n in names]
            for target in targets:
                if room != "earmark" and not _within(target, (room, *LEAVES)):
                    if not _within(target, ALLOWED[room]):
                        found.append(f"{where}:{line}: {room} imports {target}")
                    elif room == "earmark.ui" and _within(target, ENGINE_INTERNALS):
                        found.append(f"{where}:{line}: ui imports engine internal {target}")
            for name in names:
                private = name.startswith("_") and not name.startswith("__")
                if private and module != me:
                    found.append(f"{where}:{line}: imports private {module}.{name}")
    return found


def test_every_room_imports_only_what_docs_architecture_allows():
    assert _violations() == []


def test_the_checker_catches_a_meters_module_importing_the_shell(tmp_path, monkeypatch):
    # The checker itself can fail: a meters module that imports the shell, or a
    # private name of another module, is reported with its line.
    bad = ROOT / "meters" / "_architecture_probe.py"
    bad.write_text("from earmark.offline.analysis import analyze\nfrom .bank import _x\n")
    try:
        found = [v for v in _violations() if "_architecture_probe" in v]
    finally:
        bad.unlink()
    assert found == [
        "meters/_architecture_probe.py:1: earmark.meters imports earmark.offline.analysis",
        "meters/_architecture_probe.py:2: imports private earmark.meters.bank._x",
    ]


@pytest.mark.parametrize("room", sorted(ROOMS))
def test_no_file_is_over_about_800_lines_unless_it_says_why(room):
    # "Each file holds one concept": a file over 800 lines must say in its docstring
    # why it is one concept ("One concept:" ...).
    long = []
    for path in (ROOT / room).rglob("*.py"):
        text = path.read_text()
        if text.count("\n") > 800 and "One concept:" not in text[:4000]:
            long.append(f"{path.relative_to(ROOT)} ({text.count(chr(10))} lines)")
    assert long == []


def test_docs_architecture_names_every_module_and_only_modules_that_exist():
    # The map stays true: each module of the product is named on docs/architecture.md
    # (as `name.py`, or a package as `name/`), and every `name.py` it names exists.
    doc = (ROOT / "docs" / "architecture.md").read_text()
    missing = []
    for path in _sources():
        if path.name == "__init__.py":
            if f"{path.parent.name}/" not in doc:
                missing.append(str(path.relative_to(ROOT)))
        elif path.name != "__main__.py" and path.name not in doc:
            missing.append(str(path.relative_to(ROOT)))
    assert missing == []
    import re

    named = set(re.findall(r"\b([a-z_]+\.py)\b", doc))
    existing = {p.name for p in _sources()}
    existing |= {p.name for folder in ("tests", "bench") for p in (ROOT / folder).glob("*.py")}
    assert named - existing == set()
