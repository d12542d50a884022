"""The real VST3 bundles the suite loads: zam-plugins, installed by scripts/bootstrap
(Debian 13's packages; on Debian 12 unpacked into .cache/plugins/usr/lib/vst3)."""

from __future__ import annotations

from pathlib import Path

import pytest

from earmark.engine import plugins

BOOTSTRAP_VST3 = Path(__file__).resolve().parent.parent / ".cache/plugins/usr/lib/vst3"


def zam(name: str) -> Path | None:
    """The bundle ``<name>.vst3`` in the VST3 search path (or the bootstrap's cache)."""
    roots = [*plugins.default_search_path(), BOOTSTRAP_VST3]
    found = [b for b in plugins.find_bundles(roots) if b.name == f"{name}.vst3"]
    return found[0] if found else None


ZAM = {n: zam(n) for n in ("ZamCompX2", "ZaMaximX2", "ZamComp", "ZamEQ2")}


def needs(*names: str) -> pytest.MarkDecorator:
    """Skip a test when one of the named Zam bundles is not installed (say which)."""
    missing = [n for n in names if ZAM[n] is None]
    return pytest.mark.skipif(
        bool(missing),
        reason=f"{', '.join(missing)}.vst3 not found in EARMARK_PLUGIN_PATH or the VST3 folders "
        "(scripts/bootstrap installs zam-plugins)",
    )
