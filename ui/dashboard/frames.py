"""What every panel reads from a state frame: which paths are A and B, and their names."""

from __future__ import annotations

from ..conventions import path_number
from ..stateframe import Frame, PathFrame


def ab(frame: Frame) -> tuple[PathFrame | None, PathFrame | None]:
    """The paths shown as A and B (None where the frame has no such path)."""
    a = int(frame.h("a") or 0)
    b = int(frame.h("b") or 0)
    pa = frame.paths[a] if a < len(frame.paths) else None
    pb = frame.paths[b] if b < len(frame.paths) else None
    return pa, pb


def ab_indices(frame: Frame) -> tuple[int, int]:
    """The path indices (from 0) of A and B."""
    return int(frame.h("a") or 0), int(frame.h("b") or 0)


def audible_side(frame: Frame) -> str:
    """ "A" or "B": the side being heard."""
    return "B" if frame.h("audible") else "A"


def path_names(frame: Frame) -> list[str]:
    """Every path's name (``path N``, numbered from 1, where the session gave none)."""
    return [
        p.get("name", f"path {path_number(i)}") for i, p in enumerate(frame.info.get("paths", []))
    ]
