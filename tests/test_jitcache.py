"""numba's cache and the files a kernel depends on (meters/jitcache.py).

numba alone reuses a cached kernel after a file it calls into has changed; these
tests build a real two-module package, compile it into a real cache, edit the
dependency and import it again in a fresh interpreter, as an upgrade would.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

_DEP = """
import numba as nb

@nb.njit(cache=True)
def level():
    return {value}
"""

_USER = """
import numba as nb
from earmark.meters import jitcache
from . import dep

def _cache_probe():
    pass

if {guarded}:
    jitcache.drop_stale(_cache_probe, [dep.__file__])

@nb.njit(cache=True)
def block():
    return dep.level() + 0.5
"""


def _package(tmp_path: Path, *, guarded: bool, value: int) -> Path:
    pkg = tmp_path / "kern"
    pkg.mkdir(exist_ok=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "user.py").write_text(textwrap.dedent(_USER.format(guarded=guarded)))
    (pkg / "dep.py").write_text(textwrap.dedent(_DEP.format(value=value)))
    return pkg


def _run(tmp_path: Path) -> float:
    out = subprocess.run(
        [sys.executable, "-c", "from kern import user; print(user.block())"],
        cwd=tmp_path,
        # No .pyc: Python's bytecode cache keys a source on its mtime (whole seconds) and
        # size, so two edits of dep.py within one second, of one size, would load the
        # first one's bytecode and this test would measure Python's cache, not numba's.
        env={
            "PYTHONPATH": f"{tmp_path}:{ROOT}",
            "PATH": "/usr/bin:/bin",
            "PYTHONDONTWRITEBYTECODE": "1",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return float(out.stdout.strip())


def test_numba_alone_keeps_a_stale_kernel_after_its_dependency_changed(tmp_path: Path) -> None:
    """The fault jitcache exists for: without it the edit to dep.py is ignored."""
    _package(tmp_path, guarded=False, value=1)
    assert _run(tmp_path) == 1.5
    _package(tmp_path, guarded=False, value=7)
    assert _run(tmp_path) == 1.5  # numba's cache: the old machine code


@pytest.mark.parametrize("edits", [1, 2])
def test_a_changed_dependency_recompiles_the_cached_kernel(tmp_path: Path, edits: int) -> None:
    _package(tmp_path, guarded=True, value=1)
    assert _run(tmp_path) == 1.5
    assert _run(tmp_path) == 1.5  # cached, and the stamp is kept
    for value in range(2, 2 + edits):
        _package(tmp_path, guarded=True, value=value)
        assert _run(tmp_path) == value + 0.5
    stamps = list((tmp_path / "kern" / "__pycache__").glob("user.deps-*"))
    assert len(stamps) == 1


def test_the_engine_and_meter_kernels_declare_their_dependencies() -> None:
    """native.py compiles in block/rt/abi, block.py rt/abi, rt.py abi; kernels.py fft."""
    kernels = (ROOT / "meters" / "kernels.py").read_text()
    for name, modules in (
        ("native", ("block", "rt", "abi")),
        ("block", ("rt", "abi")),
        ("rt", ("abi",)),
    ):
        source = (ROOT / "engine" / f"{name}.py").read_text()
        assert "jitcache.drop_stale(" in source, name
        declared = source.split("jitcache.drop_stale(", 1)[1].split(")\n", 1)[0]
        for module in modules:
            assert f"{module}.__file__" in declared, (name, module)
    assert "jitcache.drop_stale(_cache_probe, [fft.__file__])" in kernels
