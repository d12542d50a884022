"""What a transformation did: align two versions of a programme and explain the difference.

The numeric half of ``earmark diff`` (DESIGN.md, "Transformation report"). It
works on two arrays at one sample rate, shaped ``(frames, channels)``:

1. :func:`align` (:mod:`.align`) finds the offset (and a polarity flip) by
   cross-correlation and says how far to trust it (``Alignment.confidence`` and
   ``doubt``).
2. :func:`compare` (:mod:`.explain`) explains AFTER as ``dynamics(gain * EQ(BEFORE))``
   from one measure per concept:

   - :mod:`.eq`: the level-independent transfer function of the mids, as a curve
     and as the EQ moves (shelves, bells, cuts) that explain it;
   - :mod:`.dynamics`: the level transfer and its compressor fit (gain of the quiet
     passages, threshold, ratio), and limiting;
   - :mod:`.transients`: the transient crest of BEFORE's onsets, in both versions;
   - :mod:`.stereo`: side-to-mid energy (overall and per band) and correlation.

:mod:`.signal` holds the primitives they share. Everything is numpy (no scipy at
run time). Levels are dB re full scale (a full-scale sample peak is 0 dBFS);
frequencies in Hz.
"""

from .align import Alignment, align, overlap
from .dynamics import (
    CompressorFit,
    LevelTransfer,
    Limiting,
    detect_limiting,
    fit_compressor,
    level_transfer,
)
from .eq import EqMeasurement, EqMove, eq_move_response_db, fit_eq_moves, log_grid, measure_eq
from .explain import DiffResult, compare
from .stereo import Stereo, stereo_change
from .transients import TransientCrest, transient_crest

__all__ = [
    "Alignment",
    "CompressorFit",
    "DiffResult",
    "EqMeasurement",
    "EqMove",
    "LevelTransfer",
    "Limiting",
    "Stereo",
    "TransientCrest",
    "align",
    "compare",
    "detect_limiting",
    "eq_move_response_db",
    "fit_compressor",
    "fit_eq_moves",
    "level_transfer",
    "log_grid",
    "measure_eq",
    "overlap",
    "stereo_change",
    "transient_crest",
]
