"""earmark: real-time metering plugin host for mastering engineers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from earmark.analysis import Analysis, analyze

__all__ = ["Analysis", "analyze"]


def __getattr__(name: str) -> Any:
    # Lazy, so that `earmark --help` and light imports do not load numba.
    if name in __all__:
        from earmark import analysis

        return getattr(analysis, name)
    raise AttributeError(f"module 'earmark' has no attribute {name!r}")
