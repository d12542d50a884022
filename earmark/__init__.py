"""earmark: real-time metering plugin host for mastering engineers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from earmark.offline.analysis import Analysis, analyze
    from earmark.offline.transform import Transformation, diff

__all__ = ["Analysis", "Transformation", "analyze", "diff"]
_HOMES = {
    "Analysis": "offline.analysis",
    "analyze": "offline.analysis",
    "Transformation": "offline.transform",
    "diff": "offline.transform",
}


def __getattr__(name: str) -> Any:
    # Lazy, so that `earmark --help` and light imports do not load numba.
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(f"earmark.{_HOMES[name]}"), name)
    raise AttributeError(f"module 'earmark' has no attribute {name!r}")
