"""How the live views word the codec monitor (the terminal view and the dashboard alike)."""

from __future__ import annotations

import math
from typing import Any

from earmark.engine.abi import CODEC_MODES as MODES

__all__ = ["codec_line", "frame_codec_values", "mode_name"]

_NAMES = {v: k for k, v in MODES.items()}


def mode_name(code: float | None) -> str | None:
    """The mode a state frame's ``codec_mode`` number stands for (None: no monitor)."""
    if code is None or not math.isfinite(code) or code < 0:
        return None
    return _NAMES.get(int(code))


def _db(v: float | None) -> str:
    return "-" if v is None or not math.isfinite(v) else f"{v:+.1f}"


def codec_line(label: str, mode: str, values: dict[str, Any]) -> str:
    """One line: what is heard, the decoded and the clean true peaks and overs, and the
    blocks heard clean because the host fell behind or died (``values``: the keys of
    ``CodecMonitor.readings``)."""
    text = (
        f"codec {label}: {mode.upper()}  TP {_db(values.get('codec_true_peak_dbtp'))} dBTP"
        f" (clean {_db(values.get('clean_true_peak_dbtp'))})  overs "
        f"{int(values.get('codec_overs') or 0)} (clean {int(values.get('clean_overs') or 0)})"
    )
    if values.get("fallbacks"):
        text += f"  clean fallback {int(values['fallbacks'])} blocks"
    if values.get("alive") is False:
        text += "  HOST ENDED: clean mix plays"
    return text


def frame_codec_values(h: Any) -> dict[str, Any]:
    """The readings' keys from a state frame's header (``Frame.h``)."""
    alive = h("codec_alive")
    return {
        "codec_true_peak_dbtp": h("codec_true_peak_dbtp"),
        "clean_true_peak_dbtp": h("codec_clean_true_peak_dbtp"),
        "codec_overs": h("codec_overs") or 0,
        "clean_overs": h("codec_clean_overs") or 0,
        "fallbacks": h("codec_fallbacks") or 0,
        "alive": None if alive is None else bool(alive),
    }
