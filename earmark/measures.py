"""The measures every table of an :class:`~earmark.analysis.Analysis` shows.

Shared by ``analyze``'s table, ``diff``'s before/after table and the HTML
reports, so the three list the same rows in the same words and units. A light
module: the command line imports it without loading the meters.
"""

from __future__ import annotations

__all__ = ["MEASURES"]

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
    ("Correlation min", "", "correlation_min", 2),
    ("Correlation", "", "correlation_programme", 2),
    ("Side/mid", "dB", "side_to_mid_db", 1),
)
