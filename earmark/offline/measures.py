"""The measures every table of an :class:`~earmark.offline.analysis.Analysis` shows.

Shared by ``analyze``'s table, ``diff``'s before/after table and the HTML
reports, so the three list the same rows in the same words and units. A light
module: the command line imports it without loading the meters. The two
formatters write a measure the same way everywhere ("-" when undefined, never "-0.0").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["MEASURE", "MEASURES", "Measure", "fmt_signed", "fmt_value", "measures"]


@dataclass(frozen=True, slots=True)
class Measure:
    """One measure, named, united and rounded the same way in every table of earmark."""

    key: str  # the Analysis attribute, the reading's key in snapshots and the store
    label: str
    unit: str
    decimals: int | None  # None: an integer
    # The smallest change between two versions that a comparison puts in a sentence
    # (snapshots diff; inference: about the run-to-run spread of the measure).
    step: float | None = None
    heading: str | None = None  # a compact column heading (snapshots history)

    @property
    def change_unit(self) -> str:
        """The unit of a difference of two readings (LUFS and dBTP differ in LU and dB)."""
        return {"LUFS": "LU", "dBTP": "dB", "dBFS": "dB"}.get(self.unit, self.unit)

    @property
    def title(self) -> str:
        """``label unit`` as a table row shows it."""
        return f"{self.label} {self.unit}".strip()


MEASURE: dict[str, Measure] = {
    m.key: m
    for m in (
        Measure("integrated_lufs", "Integrated", "LUFS", 1, 0.05, "I LUFS"),
        Measure("loudness_range_lu", "Loudness range", "LU", 1, 0.5, "LRA"),
        Measure("max_momentary_lufs", "Max momentary", "LUFS", 1),
        Measure("max_short_term_lufs", "Max short-term", "LUFS", 1),
        Measure("momentary_lufs", "Momentary", "LUFS", 1),
        Measure("short_term_lufs", "Short-term", "LUFS", 1, 0.5),
        Measure("true_peak_dbtp", "True peak", "dBTP", 1, 0.1, "TP dBTP"),
        Measure("sample_peak_dbfs", "Sample peak", "dBFS", 1),
        Measure("rms_dbfs", "RMS", "dBFS", 1),
        Measure("plr_db", "PLR", "dB", 1, 0.5, "PLR"),
        Measure("psr_db", "PSR", "dB", 1, 0.5, "PSR"),
        Measure("psr_min_db", "PSR min", "dB", 1),
        Measure("psr_median_db", "PSR median", "dB", 1, 0.5),
        Measure("crest_db", "Crest factor", "dB", 1, 0.5),
        Measure("dr", "DR", "", None, 1.0),
        Measure("spectral_tilt_db_per_oct", "Spectral tilt", "dB/oct", 2, 0.2),
        Measure("harshness_db", "Harshness 2-5 kHz", "dB", 1, 0.5, "Harsh"),
        Measure("sharpness_acum", "Sharpness", "acum", 2, 0.1),
        Measure("correlation_min", "Correlation min", "", 2),
        Measure("correlation_programme", "Correlation", "", 2, 0.1),
        Measure("correlation", "Correlation (400 ms)", "", 2),
        Measure("side_to_mid_db", "Side/mid", "dB", 1, 1.0),
        Measure("duration_s", "Duration metered", "s", 1),
        Measure("non_finite_samples", "Non-finite samples", "", None),
    )
}


def measures(*keys: str) -> tuple[Measure, ...]:
    """The measures of ``keys``, in that order (a table's rows)."""
    return tuple(MEASURE[k] for k in keys)


# The rows of every table of an Analysis (analyze, diff, the HTML reports).
MEASURES: tuple[Measure, ...] = measures(
    "integrated_lufs",
    "loudness_range_lu",
    "max_momentary_lufs",
    "max_short_term_lufs",
    "true_peak_dbtp",
    "sample_peak_dbfs",
    "rms_dbfs",
    "plr_db",
    "psr_min_db",
    "psr_median_db",
    "crest_db",
    "dr",
    "spectral_tilt_db_per_oct",
    "sharpness_acum",
    "correlation_min",
    "correlation_programme",
    "side_to_mid_db",
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
