"""The detectors' fixed rules: row timing and the constants no profile sets, each with
its source or "inference" (docs/reference.md), and the small helpers the rule families
share (:mod:`earmark.meters.detectors`, :mod:`earmark.meters.judge_dynamics`,
:mod:`earmark.meters.judge_tonal`)."""

from __future__ import annotations

import math

import numpy as np

ROW_S = 0.1
SHORT_TERM_ROWS = 30  # 3 s
EVAL_EVERY_ROWS = 10  # programme measures (LRA, PLR, DR, integrated) once a second
HYSTERESIS = 0.5  # dB / LU a programme measure must recover by to close its flag
# A high band this far below the programme's loudness (K-weighted total) is not judged
# for what the processing added (inference: inaudible under the rest of the mix).
HARSH_AUDIBLE_DB = -40.0
SHARP_EVERY_ROWS = 10  # harsh_highs' sharpness evidence: one 3 s spectrum a second
# A learned profile's programme verdict (inference): a median this far above every
# reference's (the run-to-run spread of a 3 s median on one master's sections) ...
HARSH_RANK_MARGIN_DB = 0.5
HARSH_RANK_MIN_S = 10  # ... over at least this many one-a-second windows
RESONANCE_AUDIBLE_DB = 40.0  # bands further below the row's loudest are not judged
RESONANCE_NEAR = (2, 3, 4)  # neighbourhood: 2/3 to 4/3 octave either side
# Across notes (inference): over the sustain window the neighbourhood's level must move
# (its standard deviation at least 1.5 dB, three times the 3 s spectra's own scatter on
# steady noise: a loop or a drone is one held sound), and the peak's prominence vary at
# most half as much as that.
RESONANCE_MOVING_DB = 1.5
RESONANCE_STEADIER = 0.5
# Lund (AES 2012): the most popular tracks of 2006-08 averaged a PLR just over 9 dB;
# Anderton: rock/EDM LRA about 5-6 LU, hip-hop <= 5 LU. Dynamics at or below these
# are called "typical of a loud pop master" when a dynamic genre's profile rejects them.
LOUD_MASTER_PLR_DB = 10.0
LOUD_MASTER_LRA_LU = 5.0
LOUD_GENRE_PSR_DB = 8.0  # a profile whose PSR floor is at most this is a loud genre
# The unweighted crest of a stereo programme reads about 3 dB above its PSR (a stereo
# sine: PSR 0 dB, crest 3 dB), so the crest evidence uses the PSR floor + 3 dB.
CREST_OVER_PSR_DB = 3.0
# EBU Tech 3341 (v3, 2016) asks a meter to show LRA as not yet stable within the
# first 60 s of a programme: LRA measures the spread between passages, and an excerpt
# shorter than that is often one passage (docs/reference.md, "Loudness range by
# genre"). collapsed_dynamics judges LRA only from then on; PLR and DR from the
# profile's min_programme_s.
LRA_STABLE_S = 60.0
# DR8 is the minimum for the Dynamic Range Day award (docs/reference.md, "Dynamics"):
# a programme DR below it corroborates a low PSR as over-compression.
DR_AWARD_MIN = 8


def median3(values: np.ndarray) -> np.ndarray:
    """Median of the last axis of length 3 (NaN if any is NaN), without sorting."""
    return values.sum(axis=-1) - values.max(axis=-1) - values.min(axis=-1)


def finite_median(values: list[float]) -> float:
    """Median of the finite values; -inf when there are none."""
    finite = [v for v in values if math.isfinite(v)]
    return float(np.median(finite)) if finite else -math.inf


def measure_text(name: str, value: float, unit: str) -> str:
    if name == "DR":
        return f"DR {int(value)}"
    return f"{name} {value:.1f} {unit}"


def join_words(parts: list[str]) -> str:
    if not parts:
        return ""
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
