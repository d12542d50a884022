"""The measures every table of an :class:`~earmark.offline.analysis.Analysis` shows.

Shared by ``analyze``'s table, ``diff``'s before/after table and the HTML
reports, so the three list the same rows in the same words and units. A light
module: the command line imports it without loading the meters. The two
formatters write a measure the same way everywhere ("-" when undefined, never "-0.0").
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["MEASURES", "fmt_signed", "fmt_value"]

# (label, unit, attribute, decimals); decimals None = integer.
MEASURES: tuple[tuple[str, str, str, int | None], ...] = (
    ("Integrated", "LUFS", "integrated_lufs", 1),
    ("Loudness range", "LU", "loudness_range_lu", 1),
    ("Max momentary", "LUFS", "max_momentary_lufs", 1),
    ("Max short-term", "LUFS", "max_short_term_lufs", 1),
    ("True peak", "dBTP", "true_peak_dbtp", 1),
    ("Sample peak", "dBFS", "sample_peak_dbfs", 1),
    ("RMS", "dBFS", "rms_dbfs", 1),
    ("PLR", "dB", "plr_db", 1),
    ("PSR min", "dB", "psr_min_db", 1),
    ("PSR median", "dB", "psr_median_db", 1),
    ("Crest factor", "dB", "crest_db", 1),
    ("DR", "", "dr", None),
    ("Spectral tilt", "dB/oct", "spectral_tilt_db_per_oct", 2),
    ("Sharpness", "acum", "sharpness_acum", 2),
    ("Correlation min", "", "correlation_min", 2),
    ("Correlation", "", "correlation_programme", 2),
    ("Side/mid", "dB", "side_to_mid_db", 1),
)


def fmt_value(value: Any, decimals: int | None) -> str:
    """A measure as shown: ``-`` when undefined, an integer for ``decimals=None``, no ``-0.0``."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if decimals is None:
        return str(int(round(value)))
    text = f"{float(value):.{decimals}f}"
    return text.lstrip("-") if float(text) == 0.0 else text


def fmt_signed(value: float | None, decimals: int | None) -> str:
    """A change, with its sign (``+1.5``, ``-0.3``; zero as ``0.0``; ``-`` when undefined)."""
    if value is None:
        return "-"
    text = f"{value:+.{decimals or 0}f}"
    return "0" + text[2:] if float(text) == 0.0 else text
