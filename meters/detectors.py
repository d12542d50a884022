"""Explained flags: what is wrong with a master, where, and against which expectation.

One :class:`Detector` runs on the MeterBank's 10 Hz history rows
(:class:`~earmark.meters.History`), one row at a time in order, so it gives the
same flags whether it is fed live as the audio streams (a few rows every tick) or
offline with a whole file's rows at once::

    det = Detector(profile, sample_rate=48000, channels=2)
    for block in blocks:
        bank.process(block)
        det.update(bank.history(since=det.next_row))   # new/changed flags
    flags = det.finish()                               # every flag, open ones closed

A flag (:class:`Flag`) is data: a code, a severity, where (start/end seconds and,
for spectral flags, the band), the measured value against the threshold, and one
sentence saying what was measured, against what, for how long and where. Times are
good to the measure's window: PSR and the spectra use 3 s, so a flag's start is
placed one window before the first row that showed the problem, and its end at the
last row that did.

Codes and what raises them (thresholds come from the :class:`Profile`):

``over_compression``
    PSR (true peak over 3 s minus short-term loudness) below the profile's floor,
    with the short-term crest factor collapsed too, for ``dynamics.sustain_s``,
    in windows at least ``dynamics.judge_above_lufs`` loud. Quiet passages are not
    judged: a held note or a drone has a low PSR by nature, not by limiting.
``collapsed_dynamics``
    The programme's LRA, PLR or DR below the profile's range: PLR and DR once
    ``dynamics.min_programme_s`` of programme has played, LRA once 60 s have (EBU
    Tech 3341: LRA is not stable before; a shorter excerpt is often one passage).
    For a dynamic genre the message names the mismatch ("typical of a loud pop master").
    Like ``loudness_target`` it is provisional while the programme plays (withdrawn
    if a crescendo lifts the measures) and judged on the whole programme at the end.
``crushed_transients``
    Onsets (100 ms blocks with twice the power of the two before them) whose true
    peaks stand too little above the short-term loudness (median over 10 s); with a
    BEFORE version, the BEFORE's onsets compared with the same moments after the
    processing: how much of their rise above the loudness was lost.
``harsh_highs``
    Loudness-normalised 2-5 kHz (or 5-10 kHz) above the profile's tonal target,
    sustained. Without a BEFORE version only 2-5 kHz is judged, and only while the
    body (250 Hz-1.6 kHz) is there: a passage of cymbals alone is bright by
    nature, and brightness above 5 kHz is a style until a BEFORE version shows
    that the processing added it.
``resonance``
    A narrow 1/3-octave band standing ``resonance.prominence_db`` above its
    neighbourhood (2/3 to 4/3 octave either side) and above both adjacent bands,
    in most 3 s spectra over ``resonance.sustain_s``; reports its frequency.
``true_peak_over``
    True peak above the profile's ceiling (0 dBTP without one): the one code for
    an over between the samples. A problem above 0 dBTP, where a DAC or a lossy
    encoder will clip what the samples do not show.
``clipping``
    The waveform itself is clipped: runs of three or more full-scale samples, or
    samples beyond full scale. Never raised by an inter-sample peak alone (that is
    ``true_peak_over``'s fact), so one over is reported once. Its value is the sample
    peak in dBFS (0 for runs at full scale); its sentence counts the clipped samples.
``loudness_target``
    Integrated loudness off the delivery target by more than its tolerance.

Grouping: one flag per code (and band) and *episode*, the occurrences of a
problem less than :data:`~earmark.meters.flags.EPISODE_GAP_S` apart; the flags, their
grouping and their identity live in :mod:`earmark.meters.flags`; how a condition
becomes occurrences row by row in :mod:`earmark.meters.trackers`; the onsets that
``crushed_transients`` judges (and ``earmark diff`` summarises) in
:mod:`earmark.meters.onsets`.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np

from .flags import Flag, OccurrenceRecord, band_text, episodes, group_flag, hz_text
from .kernels import (
    CLIP_RUN,
    HIST_BINS,
    INTEGRATED_RELATIVE_LU,
    LOUDNESS_OFFSET,
    LRA_RELATIVE_LU,
    add_loudness,
    gated_mean_energy,
    loudness_range,
)
from .onsets import (
    ONSET_MIN_COUNT,
    ONSET_WINDOW_ROWS,
    SILENCE_LUFS,
    is_onset,
    onset_loss,
    power_db,
)
from .profile import Profile
from .readings import History
from .sharpness import sharpness_acum
from .tonal import AIR_HZ, BODY_HZ, PRESENCE_HZ, band_sum_db, k_weighting_gain_db, relative_levels
from .trackers import Events, Sustained

__all__ = [
    "Detector",
    "detect",
]


_ROW_S = 0.1
_SHORT_TERM_ROWS = 30  # 3 s
_EVAL_EVERY_ROWS = 10  # programme measures (LRA, PLR, DR, integrated) once a second
_HYSTERESIS = 0.5  # dB / LU a programme measure must recover by to close its flag
# A high band this far below the programme's loudness (K-weighted total) is not judged
# for what the processing added (inference: inaudible under the rest of the mix).
_HARSH_AUDIBLE_DB = -40.0
_SHARP_EVERY_ROWS = 10  # harsh_highs' sharpness evidence: one 3 s spectrum a second
# A learned profile's programme verdict (inference): a median this far above every
# reference's (the run-to-run spread of a 3 s median on one master's sections) ...
_HARSH_RANK_MARGIN_DB = 0.5
_HARSH_RANK_MIN_S = 10  # ... over at least this many one-a-second windows
_RESONANCE_AUDIBLE_DB = 40.0  # bands further below the row's loudest are not judged
_RESONANCE_NEAR = (2, 3, 4)  # neighbourhood: 2/3 to 4/3 octave either side
# Across notes (inference): over the sustain window the neighbourhood's level must move
# (its standard deviation at least 1.5 dB, three times the 3 s spectra's own scatter on
# steady noise: a loop or a drone is one held sound), and the peak's prominence vary at
# most half as much as that.
_RESONANCE_MOVING_DB = 1.5
_RESONANCE_STEADIER = 0.5
# Lund (AES 2012): the most popular tracks of 2006-08 averaged a PLR just over 9 dB;
# Anderton: rock/EDM LRA about 5-6 LU, hip-hop <= 5 LU. Dynamics at or below these
# are called "typical of a loud pop master" when a dynamic genre's profile rejects them.
_LOUD_MASTER_PLR_DB = 10.0
_LOUD_MASTER_LRA_LU = 5.0
_LOUD_GENRE_PSR_DB = 8.0  # a profile whose PSR floor is at most this is a loud genre
# The unweighted crest of a stereo programme reads about 3 dB above its PSR (a stereo
# sine: PSR 0 dB, crest 3 dB), so the crest evidence uses the PSR floor + 3 dB.
_CREST_OVER_PSR_DB = 3.0
# EBU Tech 3341 (v3, 2016) asks a meter to show LRA as not yet stable within the
# first 60 s of a programme: LRA measures the spread between passages, and an excerpt
# shorter than that is often one passage (docs/reference.md, "Loudness range by
# genre"). collapsed_dynamics judges LRA only from then on; PLR and DR from the
# profile's min_programme_s.
_LRA_STABLE_S = 60.0
# DR8 is the minimum for the Dynamic Range Day award (docs/reference.md, "Dynamics"):
# a programme DR below it corroborates a low PSR as over-compression.
_DR_AWARD_MIN = 8


class _ResonanceBand:
    """The last ``n`` judged rows of one band: was a narrow peak at or next to it, was it
    the peak itself, and the cluster's strongest candidate (prominence, frequency, t)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.hits: deque[bool] = deque()
        self.own: deque[bool] = deque()
        self.best: deque[tuple[float, float, float] | None] = deque()
        self.hit_count = 0
        self.own_count = 0
        self.record: OccurrenceRecord | None = None
        self.values: list[tuple[float, float, float]] = []
        self.flag_rows = 0  # judged rows since the window that opened the flag began
        self.flag_hits = 0
        self.open_share = 0.0  # share of the opening window's spectra with the peak
        # The band's prominence and its neighbourhood's level, per judged row: a
        # resonance stays while the music around it changes.
        self.prom: deque[float] = deque(maxlen=n)
        self.side: deque[float] = deque(maxlen=n)

    @property
    def full(self) -> bool:
        return len(self.hits) == self.n

    def across_notes(self) -> bool:
        """Does the peak keep its height while the spectrum around it changes?

        An EQ boost or a room mode lifts whatever passes through it, so its
        prominence varies less than the music around it does. A note (a bass line's
        tonic, a held chord over a moving part) comes and goes with the playing: its
        prominence varies as much as the neighbourhood or more (inference).
        """
        pairs = [(p, q) for p, q in zip(self.prom, self.side, strict=True)]
        pairs = [(p, q) for p, q in pairs if math.isfinite(p) and math.isfinite(q)]
        if len(pairs) < 0.5 * self.n:
            return False
        sd_prom = float(np.std([p for p, _ in pairs]))
        sd_side = float(np.std([q for _, q in pairs]))
        return sd_side >= _RESONANCE_MOVING_DB and sd_prom <= _RESONANCE_STEADIER * sd_side

    def push(
        self,
        best: tuple[float, float, float] | None,
        own: bool,
        prom_db: float = math.nan,
        side_db: float = math.nan,
    ) -> None:
        self.prom.append(prom_db)
        self.side.append(side_db)
        if len(self.hits) == self.n:
            self.hit_count -= self.hits.popleft()
            self.own_count -= self.own.popleft()
            self.best.popleft()
        self.hits.append(best is not None)
        self.own.append(own)
        self.best.append(best)
        self.hit_count += best is not None
        self.own_count += own


class Detector:
    """Every flag of one programme, from its 10 Hz history rows, fed in order.

    Args:
        profile: what the genre or delivery expects (``earmark.profiles.load_profile``).
        sample_rate: the programme's rate (for the loudness-normalised spectrum).
        channels: its channel count.
        before: the whole history of a BEFORE version (the unmastered mix), aligned
            row for row (row n of both covers the same audio). For a live BEFORE,
            leave it None and feed its rows with :meth:`add_before` as they come.

    Feed rows with :meth:`update` (any number at a time; rows already seen are
    skipped, so ``update(bank.history())`` every tick also works). Flags open a
    few seconds after a problem starts and close when it ends; :meth:`finish`
    closes what is still open at the end of the programme.
    """

    def __init__(
        self,
        profile: Profile,
        sample_rate: int,
        channels: int,
        before: History | None = None,
    ) -> None:
        if not isinstance(profile, Profile):
            raise TypeError(f"profile must be a Profile, got {type(profile).__name__}")
        self.profile = profile
        self.sample_rate = int(sample_rate)
        self.channels = int(channels)
        self._records: list[OccurrenceRecord] = []  # occurrences, in order of creation
        self._reported: dict[int, Flag] = {}  # flag by its first occurrence, as last reported
        self._seq = 0
        self._next_row: int | None = None  # next absolute row to accept
        self._first_t: float | None = None
        self._last_t = 0.0
        self._finished = False
        # Rows accepted but not yet judged (waiting for look-ahead or BEFORE rows).
        self._pending: deque[dict[str, Any]] = deque()
        self._band_hz: tuple[float, ...] | None = None
        self._k_gain: np.ndarray | None = None
        self._targets: dict[str, float] = {}
        # BEFORE rows by absolute row number.
        self._before: dict[int, dict[str, Any]] = {}
        self._before_raw: deque[dict[str, Any]] = deque()
        self._before_live = before is None
        self._before_end = -1  # last BEFORE row known (for a complete one, its length)
        self._has_before = before is not None
        # Programme state.
        # The programme's gating histograms, (counts, energy sums) as the MeterBank keeps
        # them and gated by the same kernels, so the live integrated loudness and LRA
        # are the bank's on the same rows.
        self._m_hist = np.zeros((2, HIST_BINS))
        self._s_hist = np.zeros((2, HIST_BINS))
        self._integrated: float | None = None
        self._max_tp = -math.inf
        self._gated_st_rows = 0
        self._dr_acc: np.ndarray | None = None
        self._dr_blocks: list[np.ndarray] = []  # (channels, 2): ms2, peak per 3 s block
        self._dr_cache: tuple[int, int | None] = (0, None)  # (blocks, DR) of the last _dr()
        self._crest_ring: deque[tuple[float, float]] = deque(maxlen=_SHORT_TERM_ROWS)
        self._energy: deque[float] = deque(maxlen=3)  # row power (dB), for onsets
        self._last_row_index = -1
        self._onsets: deque[tuple[int, float]] = deque()
        self._before_onsets: deque[tuple[int, tuple[float, float]]] = deque()
        self._ct_pairs: list[tuple[float, float]] = []  # onsets of the open crushed flag
        self._before_energy: deque[float] = deque(maxlen=3)
        self._programme_records: dict[str, OccurrenceRecord] = {}
        self._final = False
        self._make_trackers()
        if before is not None:
            self._add_before_rows(before)
            self._before_end = max(self._before) if self._before else -1
            self._before_live = False

    # -- public ------------------------------------------------------------------------

    @property
    def next_row(self) -> int:
        """The first history row not yet fed (pass it to ``MeterBank.history(since=)``)."""
        return 0 if self._next_row is None else self._next_row

    @property
    def next_before_row(self) -> int:
        """The first BEFORE row not yet fed (for ``MeterBank.history(since=)``)."""
        return self._before_end + 1

    def add_before(self, rows: History) -> None:
        """Feed the BEFORE version's rows as they stream (live A/B against the dry path)."""
        self._has_before = True
        self._add_before_rows(rows)

    def update(self, rows: History) -> list[Flag]:
        """Feed the next history rows; returns the flags opened or changed by them."""
        if self._finished:
            raise RuntimeError("this Detector has finished; make a new one")
        self._accept(rows)
        self._drain(final=False)
        return self._changes()

    def finish(self, duration_s: float | None = None) -> list[Flag]:
        """End of programme: judge what is pending, close open flags, return every flag.

        ``duration_s`` is accepted for symmetry with the live side and only used
        when no row was ever fed.
        """
        if not self._finished:
            self._finished = True
            self._drain(final=True)
            if self._next_row is not None:
                self._programme(self._last_row_index, self._last_t, final=True)
            for rec in self._records:
                rec.open = False
            self._close_trackers()
            if self._first_t is None and duration_s is not None:
                self._last_t = float(duration_s)
        return self.flags()

    def flags(self) -> list[Flag]:
        """Every flag so far (closed and open), one per code, band and episode, in order
        of start."""
        return [group_flag(g) for g in episodes(self._records)]

    def open_flags(self) -> list[Flag]:
        """The flags whose problem is still going on (their latest occurrence is open)."""
        return [group_flag(g) for g in episodes(self._records) if any(r.open for r in g)]

    # -- feeding -----------------------------------------------------------------------

    def _accept(self, rows: History) -> None:
        n = len(rows)
        if n == 0:
            return
        first = int(rows.first_row)
        start = 0
        if self._next_row is not None:
            start = max(0, self._next_row - first)
            if start >= n:
                return
        if self._band_hz is None and rows.band_hz:
            self._setup_spectrum(rows.band_hz)
        feats = self._row_features(rows, start)
        for i in range(start, n):
            row = {k: v[i - start] for k, v in feats.items()}
            row["row"] = first + i
            row["t"] = float(rows.t_s[i])
            self._pending.append(row)
        self._next_row = first + n
        if self._first_t is None:
            self._first_t = float(rows.t_s[start]) - _ROW_S

    def _row_features(self, rows: History, start: int) -> dict[str, np.ndarray]:
        """Everything row-local, vectorised over the batch."""
        sl = slice(start, len(rows))
        ms = np.asarray(rows.channel_mean_square)[sl]
        pk = np.asarray(rows.channel_peak)[sl]
        out: dict[str, np.ndarray] = {
            "m": np.asarray(rows.momentary_lufs)[sl],
            "s": np.asarray(rows.short_term_lufs)[sl],
            "psr": np.asarray(rows.psr_db)[sl],
            "tp": np.asarray(rows.true_peak_dbtp)[sl],
            "sp": np.asarray(rows.sample_peak_dbfs)[sl],
            "clip": np.asarray(rows.clipped_samples)[sl],
            "ms": ms,
            "pk": pk,
            "e": power_db(ms),
        }
        spec = np.asarray(rows.spectrum_db)[sl]
        if self._k_gain is not None and spec.shape[1:] == self._k_gain.shape:
            out.update(self._spectral_features(spec, int(rows.first_row) + start))
        return out

    def _setup_spectrum(self, band_hz: tuple[float, ...]) -> None:
        self._band_hz = tuple(band_hz)
        self._k_gain = k_weighting_gain_db(band_hz, self.sample_rate)
        self._k_power = 10.0 ** (self._k_gain / 10.0)
        hz_arr = np.asarray(band_hz)
        self._sum_bands = {
            name: (hz_arr >= lo) & (hz_arr <= hi)
            for name, (lo, hi) in (("presence", PRESENCE_HZ), ("air", AIR_HZ), ("body", BODY_HZ))
        }
        tonal = self.profile.tonal
        self._spreads: dict[str, float] = {}
        self._target_sharp = math.nan  # the sharpness the tonal target implies (acum)
        if tonal is not None:
            levels, spreads = tonal.at(band_hz)
            target = np.array(levels, dtype=np.float64)
            spread = np.array(spreads, dtype=np.float64)
            for name, (lo, hi) in (("presence", PRESENCE_HZ), ("air", AIR_HZ), ("body", BODY_HZ)):
                v = float(band_sum_db(target, band_hz, lo, hi))
                if math.isfinite(v):
                    self._targets[name] = v
                # The band's tolerance: the profile's spread, power-weighted over its bands.
                sel = (hz_arr >= lo) & (hz_arr <= hi) & np.isfinite(target) & np.isfinite(spread)
                if sel.any():
                    w = 10.0 ** (target[sel] / 10.0)
                    self._spreads[name] = float((w * spread[sel]).sum() / w.sum())
            if self.profile.harshness is not None and np.isfinite(target).any():
                self._target_sharp = float(
                    sharpness_acum(target, self._band_hz, sample_rate=self.sample_rate)
                )
        res = self.profile.resonance
        hz = np.asarray(band_hz)
        nb = len(hz)
        far = max(_RESONANCE_NEAR)
        self._res_bands = np.array(
            [
                b
                for b in range(far, nb - far)
                if res is not None and res.min_hz <= hz[b] <= res.max_hz
            ],
            dtype=np.int64,
        )
        # Exact base-ten 1/3-octave centres (IEC 61260) of the nominal bands.
        self._exact_hz = 1000.0 * 10.0 ** (np.round(10.0 * np.log10(hz / 1000.0)) / 10.0)

    def _spectral_features(self, spec: np.ndarray, first_row: int) -> dict[str, np.ndarray]:
        assert self._band_hz is not None and self._k_gain is not None
        # Loudness-normalised band sums (meters.tonal's relative_levels and band_sum_db,
        # written out on powers once for the batch).
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            power = 10.0 ** (spec / 10.0)
            power[~np.isfinite(power)] = 0.0
            total_db = 10.0 * np.log10((power * self._k_power).sum(axis=1))
            out = {}
            for name, sel in self._sum_bands.items():
                out[name] = 10.0 * np.log10(power[:, sel].sum(axis=1)) - total_db
                out[name][~np.isfinite(out[name])] = np.nan
        if self._wants_sharpness():
            # DIN 45692 sharpness (supporting evidence of harsh_highs), vectorised over
            # the batch, of one 3 s spectrum a second (NaN between).
            out["sharp"] = self._sharpness(spec, first_row)
        bands = self._res_bands
        rows = spec.shape[0]
        prom = np.full((rows, len(bands)), np.nan)
        side = np.full((rows, len(bands)), np.nan)
        cand = np.zeros((rows, len(bands)), dtype=bool)
        freq = np.full((rows, len(bands)), np.nan)
        if len(bands) and self.profile.resonance is not None:
            res = self.profile.resonance
            level = spec[:, bands]
            below = np.stack([spec[:, bands - d] for d in _RESONANCE_NEAR], axis=-1)
            above = np.stack([spec[:, bands + d] for d in _RESONANCE_NEAR], axis=-1)
            with np.errstate(invalid="ignore"):
                side_lo, side_hi = _median3(below), _median3(above)
                # Against the mean of the two sides (a sloped spectrum cancels), and above
                # each side on its own: a peak, not the cliff at a band-limited edge.
                side = 0.5 * (side_lo + side_hi)
                prom = level - side
                clear = level - np.maximum(side_lo, side_hi)
                left, right = spec[:, bands - 1], spec[:, bands + 1]
                narrow = np.minimum(level - np.minimum(left, right), clear)
                loudest = np.nanmax(np.where(np.isnan(spec), -np.inf, spec), axis=1)
                audible = level >= (loudest[:, None] - _RESONANCE_AUDIBLE_DB)
                cand = (
                    (level >= left)
                    & (level >= right)
                    & (prom >= res.prominence_db)
                    & (narrow >= res.narrow_db)
                    & audible
                )
                # Parabolic peak position between the adjacent bands, in bands.
                denom = left - 2.0 * level + right
                delta = np.where(denom < 0.0, 0.5 * (left - right) / denom, 0.0)
                delta = np.clip(np.where(np.isfinite(delta), delta, 0.0), -0.5, 0.5)
                freq = self._exact_hz[bands][None, :] * 2.0 ** (delta / 3.0)
        out["res_prom"] = prom
        out["res_side"] = side
        out["res_cand"] = cand
        out["res_freq"] = freq
        return out

    def _wants_sharpness(self) -> bool:
        """Only harsh_highs reads sharpness: with a BEFORE, or against a tonal target
        without one; otherwise (the default profile alone) it costs nothing."""
        ha = self.profile.harshness
        if ha is None:
            return False
        return self._has_before or (bool(self._targets) and not ha.require_before)

    def _sharpness(self, spec: np.ndarray, first_row: int) -> np.ndarray:
        """Sharpness (acum) of the rows whose absolute number is a multiple of
        ``_SHARP_EVERY_ROWS``, NaN for the others. The 3 s spectra of rows 0.1 s apart
        overlap by 97 %, so a value a second loses nothing for a median over seconds
        and costs a tenth; the absolute rows keep live and offline batches equal."""
        assert self._band_hz is not None
        out = np.full(spec.shape[0], np.nan)
        pick = np.flatnonzero((first_row + np.arange(spec.shape[0])) % _SHARP_EVERY_ROWS == 0)
        if len(pick):
            out[pick] = sharpness_acum(spec[pick], self._band_hz, sample_rate=self.sample_rate)
        return out

    def _add_before_rows(self, rows: History) -> None:
        n = len(rows)
        if n == 0:
            return
        first = int(rows.first_row)
        if self._band_hz is None and rows.band_hz:
            self._setup_spectrum(rows.band_hz)
        spec = np.asarray(rows.spectrum_db)
        have_spec = self._k_gain is not None and spec.shape[1:] == self._k_gain.shape
        if have_spec:
            assert self._band_hz is not None and self._k_gain is not None
            rel = relative_levels(spec, self._k_gain)
            presence = band_sum_db(rel, self._band_hz, *PRESENCE_HZ)
            air = band_sum_db(rel, self._band_hz, *AIR_HZ)
            body = band_sum_db(rel, self._band_hz, *BODY_HZ)
            sharp = self._sharpness(spec, first) if self._wants_sharpness() else None
        energy = power_db(np.asarray(rows.channel_mean_square))
        for i in range(n):
            r = first + i
            if r in self._before or r <= self._before_end:
                continue
            s_b, tp_b = float(rows.short_term_lufs[i]), float(rows.true_peak_dbtp[i])
            prev = list(self._before_energy)
            self._before_energy.append(float(energy[i]))
            self._before[r] = {
                "tp": tp_b,
                "s": s_b,
                "onset": bool(
                    s_b >= SILENCE_LUFS and math.isfinite(tp_b) and is_onset(energy[i], prev)
                ),
                "presence": float(presence[i]) if have_spec else math.nan,
                "air": float(air[i]) if have_spec else math.nan,
                "body": float(body[i]) if have_spec else math.nan,
                "sharp": float(sharp[i]) if have_spec and sharp is not None else math.nan,
            }
            self._before_end = r

    def _drain(self, final: bool) -> None:
        while self._pending:
            row = self._pending[0]
            # A live BEFORE: wait for its row to arrive.
            waiting = row["row"] > self._before_end
            if self._has_before and self._before_live and not final and waiting:
                return
            self._pending.popleft()
            self._judge(row)

    # -- one row -----------------------------------------------------------------------

    def _judge(self, row: dict[str, Any]) -> None:
        r, t = row["row"], row["t"]
        self._last_row_index = r
        self._last_t = t
        add_loudness(self._m_hist, float(row["m"]))
        s = row["s"]
        add_loudness(self._s_hist, float(s))
        tp = row["tp"]
        if tp > self._max_tp:
            self._max_tp = tp
        self._dr_row(r, row["ms"], row["pk"])
        gate = SILENCE_LUFS
        if self._integrated is not None:
            # Tech 3342's relative gate, on the programme so far.
            gate = max(gate, self._integrated + LRA_RELATIVE_LU)
        row["gated"] = bool(s >= gate)
        if row["gated"]:
            self._gated_st_rows += 1
        ms_mean = float(np.mean(row["ms"]))
        self._crest_ring.append((float(np.max(row["pk"])), ms_mean))
        self._peaks_and_clips(row)
        self._over_compression(row)
        self._harsh(row)
        self._resonance(row)
        self._transients(row)
        if r % _EVAL_EVERY_ROWS == _EVAL_EVERY_ROWS - 1:
            self._programme(r, t, final=False)

    # -- peaks and clipping ------------------------------------------------------------

    def _make_trackers(self) -> None:
        p = self.profile
        self._tp_events = Events()
        self._clip_events = Events()
        dyn = p.dynamics
        self._oc = Sustained(int(round((dyn.sustain_s if dyn else 5.0) / _ROW_S)))
        tr = p.transients
        self._ct = Sustained(int(round((tr.sustain_s if tr else 3.0) / _ROW_S)))
        ha = p.harshness
        need = int(round((ha.sustain_s if ha else 5.0) / _ROW_S))
        self._harsh_tracks = {
            "presence": Sustained(need),
            "air": Sustained(need),
            "added": Sustained(max(1, need // 2)),  # on a running median over `need` rows
        }
        self._harsh_rises: dict[str, deque[float]] = {
            "presence": deque(maxlen=need),
            "air": deque(maxlen=need),
        }
        # The gated rows' sharpness (acum) over the same window, for the single-file test.
        self._harsh_sharp: deque[tuple[int, float]] = deque()
        self._harsh_need = need
        # Learned profiles: the gated 3 s windows' 2-5 / 5-10 kHz minus body (dB) and
        # sharpness (acum), one a second over the programme, ranked among the references.
        self._harsh_programme: dict[str, list[float]] = {"presence": [], "air": [], "sharp": []}
        self._res_state: dict[int, _ResonanceBand] = {}

    def _new(self, code: str, start_s: float, unit: str | None) -> OccurrenceRecord:
        rec = OccurrenceRecord(code, self._seq, start_s, unit)
        self._seq += 1
        self._records.append(rec)
        return rec

    def _peaks_and_clips(self, row: dict[str, Any]) -> None:
        """``true_peak_over`` and ``clipping``, one fact each (see the module docstring)."""
        r, t = row["row"], row["t"]
        tp, sp, clipped = row["tp"], row["sp"], int(row["clip"])
        block_s = t - _ROW_S  # where this row's 100 ms block starts
        title = self.profile.title
        ceiling = self.profile.true_peak.ceiling_dbtp if self.profile.true_peak else None
        # true_peak_over: above the ceiling; without one, above 0 dBTP (what a DAC clips)
        limit = 0.0 if ceiling is None else ceiling
        ev = self._tp_events
        if tp > limit:
            if ev.event(r):
                ev.record = self._new("true_peak_over", block_s, "dBTP")
            rec = ev.record
            assert rec is not None
            if tp > ev.worst:
                ev.worst, ev.worst_t = tp, block_s
            rec.end_s = t
            rec.value = ev.worst
            rec.at_s = ev.worst_t
            rec.threshold = limit
            rec.severity = "problem" if ev.worst > 0.0 else "warning"
            tail = ""
            if ev.worst > 0.0:
                tail = ": above 0 dBTP a DAC or a lossy encoder will clip them"
                if not sp > 0.0:
                    tail += " (the samples stay within full scale: an inter-sample over)"
            worst = f"{ev.worst:+.2f}"  # as value_text writes it: one number for the fact
            above = (
                "above 0 dBTP"
                if ceiling is None
                else f"above the {title}'s {ceiling:+.1f} dBTP ceiling"
            )
            rec.message = (
                f"true peak reached {worst} dBTP, {above}, in {ev.rows} of the 100 ms "
                f"blocks between {rec.start_s:.1f} and {rec.end_s:.1f} s{tail}"
            )
        elif ev.quiet(r):
            self._close(ev)
        # clipping: the waveform itself, full-scale runs or samples beyond full scale.
        # Its value is the sample peak (0 dBFS for runs at full scale); the worst place
        # is the one furthest beyond full scale, then the one with most clipped samples.
        ev = self._clip_events
        if clipped > 0 or sp > 0.0:
            if ev.event(r):
                ev.record = self._new("clipping", block_s, "dBFS")
            rec = ev.record
            assert rec is not None
            ev.total += clipped
            peak = sp if sp > 0.0 else 0.0
            if (peak, clipped) > (ev.worst, ev.worst_clipped):
                ev.worst, ev.worst_t, ev.worst_clipped = peak, block_s, clipped
            rec.end_s = t
            rec.value = ev.worst
            rec.at_s = ev.worst_t
            rec.threshold = 0.0
            rec.severity = "problem"
            rec.rank = (ev.worst, ev.total)
            parts = []
            if ev.total:
                parts.append(
                    f"{int(ev.total)} samples sat at full scale in runs of {CLIP_RUN} or more"
                )
            if ev.worst > 0.0:
                parts.append(f"sample peaks reached {ev.worst:+.2f} dBFS, beyond full scale,")
            else:
                rec.worst_text = f"{int(ev.total)} samples at full scale"
            rec.message = (
                " and ".join(parts)
                + f" in {ev.rows} of the 100 ms blocks between {rec.start_s:.1f} and "
                f"{rec.end_s:.1f} s: the waveform is clipped"
            )
        elif ev.quiet(r):
            self._close(ev)

    def _close(self, tracker: Events | Sustained) -> None:
        if tracker.record is not None:
            tracker.record.open = False
            tracker.record = None

    # -- over-compression --------------------------------------------------------------

    def _over_compression(self, row: dict[str, Any]) -> None:
        dyn = self.profile.dynamics
        if dyn is None or dyn.psr_min_db is None:
            return
        t, psr, s = row["t"], row["psr"], row["s"]
        peak, ms = max(p for p, _ in self._crest_ring), np.mean([m for _, m in self._crest_ring])
        crest = 20.0 * math.log10(peak) - 10.0 * math.log10(ms) if peak > 0 and ms > 0 else math.nan
        judged = (
            len(self._crest_ring) == _SHORT_TERM_ROWS
            and s >= dyn.judge_above_lufs
            and row["gated"]
            and math.isfinite(psr)
        )
        floor = dyn.psr_min_db
        crest_low = crest < floor + _CREST_OVER_PSR_DB
        low = judged and psr < floor and crest_low
        tr = self._oc
        plr, dr = self._plr_so_far(), self._dr_so_far()
        if judged and crest_low and not low and dyn.corroborate:
            # Crest-led (inference): PSR's loudness is K-weighted, which discounts the bass
            # (BS.1770's high-pass) and lifts the highs, so on a bass-heavy master PSR reads
            # above the unweighted crest. The crest held under the same evidence line, in a
            # programme whose DR is under the DR Day minimum, is the same loss.
            low = dr is not None and dr < _DR_AWARD_MIN
        if low and tr.record is None and dyn.corroborate:
            # A flag opens only when the programme agrees: its PLR or DR so far is a loud
            # master's. A dense passage of a dynamic piece has a low PSR for a while; a
            # master whose peaks were held down has it everywhere, so its PLR and DR fall.
            low = (plr is not None and plr <= _LOUD_MASTER_PLR_DB) or (
                dr is not None and dr < _DR_AWARD_MIN
            )
        event = tr.step(low, t, psr, crest)
        if event is None:
            return
        if event == "close":
            self._close(tr)
            return
        if event == "open":
            first_t = tr.run[0][0]
            tr.record = self._new("over_compression", first_t - 3.0, "dB")
            tr.run.clear()
            tr.problem_rows = 0
        rec = tr.record
        assert rec is not None
        problem = dyn.psr_problem_db
        if problem is not None and psr < problem:
            tr.problem_run += 1
            tr.problem_rows += 1
            if tr.problem_run >= tr.need:
                rec.severity = "problem"
        else:
            tr.problem_run = 0
        rec.end_s = t
        lowest = min(tr.values)
        median = float(np.median(tr.values))
        rec.value = lowest
        span = rec.end_s - rec.start_s
        crest_low = float(np.nanmin(tr.extras))
        evidence = [f"short-term crest down to {crest_low:.1f} dB"]
        if plr is not None:
            evidence.append(f"programme PLR {plr:.1f} dB")
        if dr is not None:
            evidence.append(f"DR {dr}")
        # One threshold per sentence: the one that set the severity.
        if rec.severity == "problem" and problem is not None:
            rec.threshold = problem
            below = f"PSR was below {problem:g} dB for {tr.problem_rows * _ROW_S:.1f} s of "
            verdict = f"the {self.profile.title} calls PSR below {problem:g} dB a problem"
        elif median >= floor:
            # Crest-led (see above): the crest carried the flag; PSR read high.
            line = floor + _CREST_OVER_PSR_DB
            crest_median = float(np.nanmedian(tr.extras))
            rec.value, rec.threshold = crest_median, line
            rec.message = (
                f"the short-term crest stayed below {line:g} dB for {span:.1f} s "
                f"({rec.start_s:.1f}-{rec.end_s:.1f} s; median {crest_median:.1f} dB, lowest "
                f"{crest_low:.1f} dB; {_join(evidence[1:])}) while PSR read a median "
                f"{median:.1f} dB, high because its K-weighted loudness discounts the bass: "
                "the peaks are held down to the level, the mark of heavy compression and "
                f"limiting; the {self.profile.title} expects a short-term crest >= {line:g} dB"
            )
            return
        else:
            rec.threshold = floor
            below = f"PSR stayed below {floor:g} dB for "
            verdict = f"the {self.profile.title} expects PSR >= {floor:g} dB"
        rec.message = (
            f"{below}{span:.1f} s ({rec.start_s:.1f}-{rec.end_s:.1f} s; median {median:.1f} dB, "
            f"lowest {lowest:.1f} dB; {_join(evidence)}): the peaks are held down to the "
            f"loudness, the mark of heavy compression and limiting; {verdict}"
        )

    def _plr_so_far(self) -> float | None:
        """The programme's PLR so far (max true peak minus integrated loudness), dB."""
        if self._integrated is None or not math.isfinite(self._max_tp):
            return None
        return self._max_tp - self._integrated

    def _dr_so_far(self) -> int | None:
        """The programme's DR so far, recomputed only when a 3 s block was added."""
        if self._dr_cache[0] != len(self._dr_blocks):
            dr_db = self._dr()
            self._dr_cache = (len(self._dr_blocks), None if dr_db is None else round(dr_db))
        return self._dr_cache[1]

    # -- transients --------------------------------------------------------------------

    def _transients(self, row: dict[str, Any]) -> None:
        tr_p = self.profile.transients
        energy = row["e"]
        prev = list(self._energy)
        self._energy.append(energy)
        if tr_p is None:
            return
        r, t = row["row"], row["t"]
        tp, s = row["tp"], row["s"]
        if row["gated"] and math.isfinite(tp) and is_onset(energy, prev):
            self._onsets.append((r, tp - s))
        while self._onsets and self._onsets[0][0] <= r - ONSET_WINDOW_ROWS:
            self._onsets.popleft()
        before = self._before.get(r) if self._has_before else None
        if before is not None and before["onset"] and math.isfinite(tp) and math.isfinite(s):
            pair = (before["tp"] - before["s"], tp - s)
            self._before_onsets.append((r, pair))
            if self._ct.record is not None:
                self._ct_pairs.append(pair)
        while self._before_onsets and self._before_onsets[0][0] <= r - ONSET_WINDOW_ROWS:
            self._before_onsets.popleft()

        cond, value, detail = False, math.nan, None
        with_before = self._has_before and (before is not None or not self._before_live)
        if with_before and before is not None and tr_p.drop_db is not None:
            pairs = [v for _, v in self._before_onsets]
            if len(pairs) >= ONSET_MIN_COUNT:
                drops = [b - a for b, a in pairs]  # type: ignore[misc]
                value = float(np.median(drops))
                cond = value >= tr_p.drop_db
                detail = (
                    float(np.median([b for b, _ in pairs])),  # type: ignore[misc]
                    float(np.median([a for _, a in pairs])),  # type: ignore[misc]
                )
        elif tr_p.crest_min_db is not None:
            dyn = self.profile.dynamics
            loud_enough = dyn is None or s >= dyn.judge_above_lufs
            crests = [c for _, c in self._onsets]
            if len(crests) >= ONSET_MIN_COUNT and loud_enough:
                value = float(np.median(crests))
                cond = value < tr_p.crest_min_db
        tr = self._ct
        event = tr.step(cond, t, value, detail)
        if event is None:
            return
        if event == "close":
            self._close(tr)
            return
        if event == "open":
            tr.record = self._new(
                "crushed_transients", tr.run[0][0] - ONSET_WINDOW_ROWS * _ROW_S, "dB"
            )
            tr.run.clear()
            # The onsets of the window that opened the flag, then every later one: the
            # flag quotes the loss over its own onsets (transient_loss's measure).
            self._ct_pairs = [v for _, v in self._before_onsets]
        rec = tr.record
        assert rec is not None
        rec.end_s = t
        details = [d for d in tr.extras if d is not None]
        if details and self._ct_pairs:
            loss = onset_loss(self._ct_pairs)
            drop = loss.drop_db
            problem = tr_p.drop_problem_db
            # The severity follows the loss the sentence quotes (all the flag's onsets).
            rec.severity = "problem" if problem is not None and drop >= problem else "warning"
            rec.value = drop
            # One threshold per sentence: the one that set the severity.
            if rec.severity == "problem" and problem is not None:
                rec.threshold = problem
                verdict = f"calls a loss of {problem:g} dB or more a problem"
            else:
                rec.threshold = tr_p.drop_db
                verdict = f"flags a loss of {tr_p.drop_db:g} dB or more"
            rec.message = (
                f"onset peaks lost a median {drop:.1f} dB against the BEFORE version (from "
                f"{loss.before_db:.1f} to {loss.after_db:.1f} dB above the short-term "
                f"loudness, {loss.onsets} onsets) over {rec.end_s - rec.start_s:.1f} s "
                f"({rec.start_s:.1f}-{rec.end_s:.1f} s): the transients were crushed; the "
                f"{self.profile.title} {verdict}"
            )
        else:
            med = float(np.median(tr.values))
            rec.value = med
            rec.threshold = tr_p.crest_min_db
            rec.message = (
                f"onset peaks stood a median {med:.1f} dB above the short-term loudness for "
                f"{rec.end_s - rec.start_s:.1f} s ({rec.start_s:.1f}-{rec.end_s:.1f} s), below "
                f"the {tr_p.crest_min_db:g} dB the {self.profile.title} expects: the attacks are "
                "flattened into the body of the sound"
            )

    # -- harsh highs -------------------------------------------------------------------

    def _harsh(self, row: dict[str, Any]) -> None:
        ha = self.profile.harshness
        if ha is None or "presence" not in row:
            return
        r = row["row"]
        before = self._before.get(r) if self._has_before else None
        if self._has_before:
            self._harsh_added(row, before, ha)
        if self._targets:
            self._harsh_target(row, ha)
        if ha.reference_presence_db and row["gated"] and r % _SHARP_EVERY_ROWS == 0:
            values = self._harsh_programme
            for band in ("presence", "air"):
                values[band].append(float(row[band] - row["body"]))
            values["sharp"].append(float(row.get("sharp", math.nan)))

    def _harsh_added(self, row: dict[str, Any], before: dict[str, Any] | None, ha: Any) -> None:
        """With a BEFORE version: what the processing added to 2-5 / 5-10 kHz against the body.

        Each band's level relative to the body (250 Hz-1.6 kHz) after, minus the same
        before, row by row on the aligned 3 s spectra: a gain change or a limiter moves
        both alike and adds nothing; an EQ boost in the highs adds its dB. The row's
        value is the median over the last ``harshness.sustain_s`` (a running median, so
        one cymbal crash in either version does not open or close the flag).
        """
        t = row["t"]
        rises = self._harsh_rises
        for band in rises:
            rise = math.nan
            if before is not None and row["gated"]:
                now, then = row[band] - row["body"], before[band] - before["body"]
                audible = row[band] >= _HARSH_AUDIBLE_DB
                if audible and math.isfinite(now) and math.isfinite(then):
                    # Rounded to 1 µdB: a live BEFORE's rows come in other batches, whose
                    # vectorised sums may differ in the last bit, and the flags must not.
                    rise = round(now - then, 6)
            rises[band].append(rise)
        medians = {}
        for band, window in rises.items():
            valid = [v for v in window if math.isfinite(v)]
            # Judged once half the window holds rows both versions can be compared on.
            ok = len(valid) * 2 >= window.maxlen
            medians[band] = float(np.median(valid)) if ok else math.nan
        best = max(medians, key=lambda b: medians[b] if math.isfinite(medians[b]) else -math.inf)
        value = medians[best]
        cond = math.isfinite(value) and value >= ha.rise_db
        tr = self._harsh_tracks["added"]
        sharp_then = before["sharp"] if before is not None else math.nan
        sharp = (row.get("sharp", math.nan), sharp_then) if row["gated"] else (math.nan, math.nan)
        event = tr.step(cond, t, value, (rises["presence"][-1], rises["air"][-1], *sharp))
        if event is None:
            return
        if event == "close":
            self._close(tr)
            return
        if event == "open":
            # The band that gained most over the opening run names the flag (its identity).
            run = [e for _, _, e in tr.run]
            gains = [_finite_median([e[i] for e in run]) for i in (0, 1)]
            band = "air" if gains[1] > gains[0] else "presence"
            tr.record = self._new("harsh_highs", tr.run[0][0] - ha.sustain_s, "dB")
            tr.record.band_hz = AIR_HZ if band == "air" else PRESENCE_HZ
        tr.run.clear()
        rec = tr.record
        assert rec is not None
        rec.end_s = t
        named = 1 if rec.band_hz == AIR_HZ else 0
        per_band = []
        for i in (0, 1):
            vals = [e[i] for e in tr.extras if math.isfinite(e[i])]
            per_band.append(float(np.median(vals)) if vals else math.nan)
        added = per_band[named]
        other = per_band[1 - named]
        rec.value = added
        rec.threshold = ha.rise_db
        problem = ha.rise_problem_db
        rec.severity = "problem" if problem is not None and added >= problem else "warning"
        name = band_text(*rec.band_hz)
        other_name = band_text(*(AIR_HZ if named == 0 else PRESENCE_HZ))
        also = ""
        if math.isfinite(other) and other >= ha.rise_db:
            also = f", and {other:.1f} dB to {other_name}"
        tail = f" (a problem from {problem:g} dB)" if problem is not None else ""
        after_acum, before_acum = (_finite_median([e[i] for e in tr.extras]) for i in (2, 3))
        sharp_text = ""
        if math.isfinite(after_acum) and math.isfinite(before_acum):
            sharp_text = f", sharpness {before_acum:.2f} -> {after_acum:.2f} acum (DIN 45692)"
        rec.message = (
            f"the processing added {added:.1f} dB to {name} relative to the body (250 Hz-1.6 kHz)"
            f"{also}, loudness-normalised, against the BEFORE version, over "
            f"{rec.end_s - rec.start_s:.1f} s ({rec.start_s:.1f}-{rec.end_s:.1f} s){sharp_text}: "
            f"harsher highs; the {self.profile.title} flags {ha.rise_db:g} dB added{tail}"
        )

    def _harsh_target(self, row: dict[str, Any], ha: Any) -> None:
        """Without evidence of what was added: the highs against the profile's tonal target.

        Each band is judged relative to the body against the target's same difference,
        so a bass-heavy or a mid-heavy mix is not called bright for what its lows do.
        """
        t = row["t"]
        body_target = self._targets.get("body")
        body_ok = (
            body_target is not None
            and math.isfinite(row["body"])
            and body_target - row["body"] <= ha.body_deficit_db
        )
        added = self._harsh_tracks["added"].record is not None
        # Corroboration (inference): without a BEFORE, a 2-5 kHz excess is called harsh
        # only while the master is also sharper (DIN 45692, running median over the
        # sustain window) than what the profile expects: its tonal target's sharpness,
        # or the learned references' median. A band excess in a master that is not
        # sharper overall (a thin body, a dark top) is a balance, not harshness; on the
        # bench's untouched pieces this removed every false warning and kept 94 % of
        # the single-file recall (docs/reference.md, "Harshness").
        sharp = row.get("sharp", math.nan)
        window = self._harsh_sharp
        if row["gated"] and math.isfinite(sharp):
            window.append((row["row"], float(sharp)))
        while window and window[0][0] <= row["row"] - self._harsh_need:
            window.popleft()
        expected = self._expected_sharp()
        sharper = True
        if math.isfinite(expected):
            # Judged once half the window's one-a-second values are there.
            enough = len(window) * 2 * _SHARP_EVERY_ROWS >= self._harsh_need
            sharper = enough and float(np.median([v for _, v in window])) > expected
        for band, limit, lo_hi in (
            ("presence", ha.presence_excess_db, PRESENCE_HZ),
            ("air", ha.air_excess_db, AIR_HZ),
        ):
            target = self._targets.get(band)
            if limit is None or target is None or body_target is None:
                continue
            limit = max(limit, self._spreads.get(band, 0.0))
            excess = (row[band] - row["body"]) - (target - body_target)
            over = row["gated"] and math.isfinite(excess) and excess >= limit
            # Above 5 kHz brightness is a style until a BEFORE version shows the processing
            # added it; what a BEFORE explains is the "added" flag's (no second flag).
            cond = over and band == "presence" and body_ok and not ha.require_before
            cond = cond and not added and sharper
            tr = self._harsh_tracks[band]
            event = tr.step(cond, t, excess, row.get("sharp", math.nan))
            if event is None:
                continue
            if event == "close":
                self._close(tr)
                continue
            if event == "open":
                tr.record = self._new("harsh_highs", tr.run[0][0] - 3.0, "dB")
                tr.record.band_hz = lo_hi
            tr.run.clear()
            rec = tr.record
            assert rec is not None
            rec.end_s = t
            med = float(np.median(tr.values))
            rec.value = med
            rec.threshold = limit
            name = band_text(*lo_hi)
            rank = ""
            refs = ha.reference_presence_db if band == "presence" else ha.reference_air_db
            if refs:
                level = med + target - body_target
                brighter = sum(1 for v in refs if level > v)
                rank = f": brighter in {name} than {brighter} of your {len(refs)} references"
            rec.message = (
                f"{name} sat a median {med:.1f} dB (up to {max(tr.values):.1f} dB) above the "
                f"{self.profile.title}'s tonal target relative to the body (250 Hz-1.6 kHz), "
                f"loudness-normalised, for {rec.end_s - rec.start_s:.1f} s "
                f"({rec.start_s:.1f}-{rec.end_s:.1f} s){rank}{self._sharp_text(tr.extras)}; "
                f"the profile allows {limit:g} dB"
            )

    def _harsh_references(self, t: float) -> None:
        """A learned profile: the programme's highs against each reference's, ranked.

        The references' brightest 3 s set the per-window thresholds (every reference
        passes its own profile), which leaves them wide: the 2-5 kHz level of finished
        masters spans about 14 dB while a harsh EQ adds a few. This verdict is the
        programme's: its median 3 s 2-5 kHz (or 5-10 kHz) level relative to the body
        above every reference's median by ``_HARSH_RANK_MARGIN_DB``, corroborated by a
        median sharpness (DIN 45692) above every reference's. A master brighter than
        some of the references is a taste; brighter and sharper than all of them is
        what none of the masters the engineer trusts does (inference). Provisional
        while the programme plays, like the other programme measures.
        """
        ha = self.profile.harshness
        if ha is None or not ha.reference_presence_db or not ha.reference_sharpness_acum:
            return
        values = self._harsh_programme
        sharp = [v for v in values["sharp"] if math.isfinite(v)]
        cond, excess, band, level = False, -math.inf, "presence", math.nan
        if len(sharp) * 2 >= max(1, len(values["sharp"])) and len(sharp) >= _HARSH_RANK_MIN_S:
            sharp_med = float(np.median(sharp))
            sharper = sharp_med > max(ha.reference_sharpness_acum)
            for name, refs in (
                ("presence", ha.reference_presence_db),
                ("air", ha.reference_air_db),
            ):
                vals = [v for v in values[name] if math.isfinite(v)]
                if not refs or len(vals) < _HARSH_RANK_MIN_S:
                    continue
                med = float(np.median(vals))
                over = med - max(refs) - _HARSH_RANK_MARGIN_DB
                if over > excess:
                    excess, band, level = over, name, med
            cond = sharper and excess > 0.0
        # One fact, one flag: a BEFORE's evidence or a sustained excess already said it.
        others = [
            r
            for r in self._records
            if r.code == "harsh_highs" and r is not self._programme_records.get("harsh_highs")
        ]
        cond = cond and not others
        rec = self._programme_flag("harsh_highs", cond, not cond, t)
        if rec is None:
            return
        refs = ha.reference_presence_db if band == "presence" else ha.reference_air_db
        lo_hi = PRESENCE_HZ if band == "presence" else AIR_HZ
        rec.unit = "dB"
        rec.band_hz = lo_hi
        rec.value = level
        rec.threshold = max(refs) + _HARSH_RANK_MARGIN_DB
        rec.severity = "warning"
        n = len(refs)
        sharp_refs = ha.reference_sharpness_acum
        rec.message = (
            f"{band_text(*lo_hi)} sat a median {level:.1f} dB relative to the body "
            f"(250 Hz-1.6 kHz), loudness-normalised, over {rec.end_s - rec.start_s:.0f} s: "
            f"brighter than all {n} of your references (up to {max(refs):.1f} dB), and its "
            f"sharpness {float(np.median(sharp)):.2f} acum (DIN 45692) is above all "
            f"{len(sharp_refs)} (up to {max(sharp_refs):.2f}): harsher highs than any master "
            f"the {self.profile.title} was learned from; it flags a master brighter by "
            f"{_HARSH_RANK_MARGIN_DB:g} dB and sharper than every reference"
        )

    def _expected_sharp(self) -> float:
        """The sharpness (acum) the profile expects: its learned references' median, else
        the one its tonal target implies; NaN when it has neither."""
        ha = self.profile.harshness
        refs = ha.reference_sharpness_acum if ha is not None else ()
        if refs:
            return float(np.median(refs))
        return getattr(self, "_target_sharp", math.nan)

    def _sharp_text(self, sharp_acum: list[float]) -> str:
        """The master's median sharpness over a flag's rows, against the profile's."""
        value = _finite_median(sharp_acum)
        if not math.isfinite(value):
            return ""
        text = f"; sharpness {value:.2f} acum (DIN 45692)"
        refs = self.profile.harshness.reference_sharpness_acum if self.profile.harshness else ()
        if refs:
            sharper = sum(1 for v in refs if value > v)
            return f"{text}, sharper than {sharper} of your {len(refs)} references"
        if math.isfinite(self._target_sharp):
            return f"{text}, the {self.profile.title}'s tonal target reads {self._target_sharp:.2f}"
        return text

    # -- resonance ---------------------------------------------------------------------

    def _resonance(self, row: dict[str, Any]) -> None:
        res = self.profile.resonance
        if res is None or "res_cand" not in row or not len(self._res_bands) or not row["gated"]:
            return
        t = row["t"]
        cand, prom, freq = row["res_cand"], row["res_prom"], row["res_freq"]
        side = row["res_side"]
        n = int(round(res.sustain_s / _ROW_S))
        nb = len(self._res_bands)
        need = math.ceil(res.persistence * n)
        states = self._res_state
        if not states:
            for j in range(nb):
                # hits: a candidate at j or next to it (a narrow peak on a band edge
                # alternates between two bands); own: at j itself; best: the cluster's
                # strongest candidate (prominence, frequency, t) or None.
                states[j] = _ResonanceBand(n)
        for j in range(nb):
            best = None
            for k in (j - 1, j, j + 1):
                if 0 <= k < nb and cand[k] and (best is None or prom[k] > best[0]):
                    best = (float(prom[k]), float(freq[k]), t)
            st = states[j]
            st.push(best, bool(cand[j]), float(prom[j]), float(side[j]))
            rec = st.record
            if rec is None:
                continue
            if best is not None:
                st.values.append(best)
            st.flag_rows += 1
            st.flag_hits += best is not None
            if st.hit_count < need:  # no longer as persistent as the profile asks: closed
                rec.open = False
                st.record = None
                continue
            self._resonance_message(rec, st, res, n)
        # Open at most one flag per cluster: the band that was itself the peak most often.
        ready = [
            j
            for j, st in states.items()
            if st.record is None and st.full and st.hit_count >= need and st.own_count > 0
        ]
        ready = [j for j in ready if states[j].across_notes()]
        for j in sorted(ready, key=lambda j: (-states[j].own_count, j)):
            if any(states[k].record is not None for k in range(max(0, j - 2), min(nb, j + 3))):
                continue
            st = states[j]
            st.values = [b for b in st.best if b is not None]
            st.flag_rows, st.flag_hits = len(st.hits), st.hit_count
            st.open_share = st.hit_count / max(1, len(st.hits))
            st.record = self._new("resonance", st.values[0][2] - 3.0, "dB")
            self._resonance_message(st.record, st, res, n)

    def _resonance_message(
        self, rec: OccurrenceRecord, st: _ResonanceBand, res: Any, n: int
    ) -> None:
        values = st.values
        prom_med = float(np.median([v[0] for v in values]))
        if rec.band_hz is None:
            # Estimated once, over the window that opened the flag: the frequency is
            # part of the flag's identity (a session log keys flags by it).
            rec.band_hz = round(float(2.0 ** np.median([math.log2(v[1]) for v in values])), 1)
        f_med = float(rec.band_hz)  # type: ignore[arg-type]
        rec.end_s = values[-1][2]
        rec.value = prom_med
        rec.threshold = res.prominence_db
        # The flag stays open only while every sustain window keeps the profile's
        # persistence, so that is the share the sentence can quote.
        asked = 100.0 * res.persistence
        rec.message = (
            f"a narrow peak near {hz_text(f_med)} stood a median {prom_med:.1f} dB above its "
            f"neighbourhood (2/3 to 4/3 octave either side) in at least {asked:.0f} % of the "
            f"3 s spectra of every {res.sustain_s:g} s over {rec.end_s - rec.start_s:.1f} s "
            f"({rec.start_s:.1f}-{rec.end_s:.1f} s), steady while the music around it "
            f"changed: a resonance; the {self.profile.title} flags narrow peaks of "
            f"{res.prominence_db:g} dB or more in {asked:.0f} % of {res.sustain_s:g} s"
        )

    # -- programme measures ------------------------------------------------------------

    def _dr_row(self, r: int, ms: np.ndarray, pk: np.ndarray) -> None:
        if self._dr_acc is None or self._dr_acc.shape[0] != len(ms):
            self._dr_acc = np.zeros((len(ms), 2))
            self._dr_rows = 0
        acc = self._dr_acc
        acc[:, 0] += np.nan_to_num(ms)
        acc[:, 1] = np.maximum(acc[:, 1], np.nan_to_num(pk))
        self._dr_rows += 1
        if r % _SHORT_TERM_ROWS == _SHORT_TERM_ROWS - 1:
            if self._dr_rows == _SHORT_TERM_ROWS:
                # TT DR meter: RMS scaled by sqrt(2), per 3 s block and channel.
                self._dr_blocks.append(np.stack([2.0 * acc[:, 0] / self._dr_rows, acc[:, 1]], 1))
            acc[:] = 0.0
            self._dr_rows = 0

    def _dr(self) -> float | None:
        blocks = self._dr_blocks
        if not blocks:
            return None
        data = np.stack(blocks)  # (blocks, channels, 2)
        top = max(1, int(round(0.2 * len(blocks))))
        values = []
        for c in range(data.shape[1]):
            ms2 = np.sort(data[:, c, 0])[::-1][:top]
            peaks = np.sort(data[:, c, 1])[::-1]
            peak2 = peaks[1] if len(peaks) >= 2 else peaks[0]
            mean = float(np.mean(ms2))
            if mean > 0.0 and peak2 > 0.0:
                values.append(20.0 * math.log10(peak2) - 10.0 * math.log10(mean))
        return float(np.mean(values)) if values else None

    def _programme(self, r: int, t: float, final: bool) -> None:
        """Programme measures (integrated loudness, LRA, PLR, DR) and their flags.

        While the programme plays these flags are provisional: judged on the
        programme so far, withdrawn when it recovers (a crescendo after a quiet
        start). At the end they are judged once more on the whole programme, and
        only that verdict stays: one flag per code spanning the programme, or none.
        """
        energy = gated_mean_energy(self._m_hist, INTEGRATED_RELATIVE_LU)
        self._integrated = LOUDNESS_OFFSET + 10.0 * math.log10(energy) if energy > 0.0 else None
        if self._first_t is None:
            return
        if final:
            for code, rec in list(self._programme_records.items()):
                self._records.remove(rec)
                del self._programme_records[code]
        self._final = final
        played = t - self._first_t
        self._loudness_target(t, played)
        self._collapsed(t, played)
        self._harsh_references(t)

    def _programme_flag(
        self, code: str, cond: bool, recover: bool, t: float
    ) -> OccurrenceRecord | None:
        rec = self._programme_records.get(code)
        if rec is not None and recover:
            self._records.remove(rec)  # provisional, and the programme recovered: withdrawn
            del self._programme_records[code]
            return None
        if rec is None and cond:
            rec = self._new(code, self._first_t or 0.0, None)
            self._programme_records[code] = rec
        if rec is not None:
            rec.end_s = t
        return rec

    def _loudness_target(self, t: float, played: float) -> None:
        lt = self.profile.loudness
        if lt is None or self._integrated is None or played < lt.min_programme_s:
            return
        if lt.normalised_playback:
            self._loudness_range(t, played, lt)
            return
        i = self._integrated
        off = i - lt.target_lufs
        cond = abs(off) > lt.tolerance_lu
        recover = abs(off) <= lt.tolerance_lu - min(_HYSTERESIS, 0.5 * lt.tolerance_lu)
        recover = recover or (self._final and not cond)
        rec = self._programme_flag("loudness_target", cond, recover, t)
        if rec is None:
            return
        rec.unit = "LUFS"
        rec.value = i
        rec.threshold = lt.target_lufs
        rec.severity = lt.severity
        where = lt.platform or self.profile.name
        way = "above" if off > 0 else "below"
        if lt.severity == "problem":
            tail = "the delivery specification is not met"
        elif off > 0:
            tail = (
                f"normalisation will turn it down {off:.1f} dB, so the extra loudness only "
                "costs dynamics"
            )
        else:
            tail = (
                f"it will play {-off:.1f} dB quieter than normalised tracks unless the "
                "platform turns it up, which needs headroom below the true-peak ceiling"
            )
        rec.message = (
            f"integrated loudness {i:.1f} LUFS over {played:.0f} s is {abs(off):.1f} LU {way} "
            f"the {where} target of {lt.target_lufs:g} LUFS (±{lt.tolerance_lu:g} LU): {tail}"
        )

    def _loudness_range(self, t: float, played: float, lt: Any) -> None:
        """A learned loudness range, judged as loudness-normalised playback hears it.

        The range is the references' taste, not a delivery specification. A master
        louder than its top is louder than every reference: normalisation turns it
        down, so what it kept is only the limiting none of them needed. A quieter one
        loses nothing while a platform can raise it into the range; what stops that is
        the true peak, so it is judged by the loudness it reaches with its peaks at the
        ceiling (integrated + ceiling - true peak, which a gain change does not move).
        """
        i = self._integrated
        assert i is not None
        low, high = lt.target_lufs - lt.tolerance_lu, lt.target_lufs + lt.tolerance_lu
        ceiling = self.profile.true_peak.ceiling_dbtp if self.profile.true_peak else -1.0
        headroom = max(0.0, ceiling - self._max_tp) if math.isfinite(self._max_tp) else 0.0
        reach = i + headroom
        hysteresis = min(_HYSTERESIS, 0.5 * lt.tolerance_lu)
        louder, quieter = i - high, low - reach
        cond = louder > 0.0 or quieter > 0.0
        recover = max(louder, quieter) <= -hysteresis or (self._final and not cond)
        rec = self._programme_flag("loudness_target", cond, recover, t)
        if rec is None:
            return
        rec.unit = "LUFS"
        rec.value = i
        rec.threshold = high if louder > 0.0 else low
        rec.severity = lt.severity
        where = lt.platform or self.profile.name
        span = f"the {where} range of {low:.1f} to {high:.1f} LUFS"
        if louder > 0.0:
            rec.message = (
                f"integrated loudness {i:.1f} LUFS over {played:.0f} s is {louder:.1f} LU above "
                f"{span}: louder than every reference; normalisation will turn it down, so the "
                "extra loudness only bought limiting none of them needed"
            )
            return
        rec.message = (
            f"integrated loudness {i:.1f} LUFS over {played:.0f} s is {low - i:.1f} LU below "
            f"{span}, and its true peak of {self._max_tp:.1f} dBTP leaves "
            f"{headroom:.1f} dB below the {ceiling:g} dBTP ceiling: turned up that far it "
            f"reaches {reach:.1f} LUFS, still {quieter:.1f} LU under the range, "
            "so it will play quieter than them in loudness-normalised playback"
        )

    def _collapsed(self, t: float, played: float) -> None:
        dyn = self.profile.dynamics
        if dyn is None or self._gated_st_rows * _ROW_S < dyn.min_programme_s:
            return
        if dyn.lra_min_lu is None and dyn.plr_min_db is None and dyn.dr_min is None:
            return
        lra_lu = loudness_range(self._s_hist)
        lra = lra_lu if math.isfinite(lra_lu) else None
        plr = None
        if self._integrated is not None and math.isfinite(self._max_tp):
            plr = self._max_tp - self._integrated
        dr_db = self._dr() if dyn.dr_min is not None else None
        dr = None if dr_db is None else int(round(dr_db))
        checks = []  # (name, value, floor, problem floor, unit, text)
        if dyn.lra_min_lu is not None and lra is not None and played >= _LRA_STABLE_S:
            checks.append(("LRA", lra, dyn.lra_min_lu, dyn.lra_problem_lu, "LU"))
        if dyn.plr_min_db is not None and plr is not None:
            checks.append(("PLR", plr, dyn.plr_min_db, dyn.plr_problem_db, "dB"))
        if dyn.dr_min is not None and dr is not None:
            checks.append(("DR", float(dr), float(dyn.dr_min), None, ""))
        below = [c for c in checks if c[1] < c[2]]
        recover = bool(checks) and all(c[1] >= c[2] + _HYSTERESIS for c in checks)
        recover = recover or (self._final and not below)
        rec = self._programme_flag("collapsed_dynamics", bool(below), recover, t)
        if rec is None or not below:
            return
        # One threshold per measure and sentence: the problem floors when a measure is
        # under one (that set the severity), else the warning floors.
        problems = [c for c in below if c[3] is not None and c[1] < c[3]]
        _, value, floor, problem_floor, unit = (problems or below)[0]
        rec.unit = unit or None
        rec.value = value
        rec.threshold = problem_floor if problems else floor
        rec.severity = "problem" if problems else "warning"
        measured = _join([_measure(n, v, u) for n, v, _, _, u in checks])
        if problems:
            under = _join([f"{n} below {p:g}{' ' + u if u else ''}" for n, _, _, p, u in problems])
            expects = f"calls {under} a problem"
        else:
            floors = _join([f"{n} >= {f:g}{' ' + u if u else ''}" for n, _, f, _, u in below])
            expects = f"expects {floors}"
        loud_genre = dyn.psr_min_db is not None and dyn.psr_min_db <= _LOUD_GENRE_PSR_DB
        loud_master = (lra is not None and lra <= _LOUD_MASTER_LRA_LU) or (
            plr is not None and plr <= _LOUD_MASTER_PLR_DB
        )
        if loud_master and not loud_genre:
            verdict = "dynamics typical of a loud pop master"
        else:
            verdict = "dynamics narrower than the genre's"
        rec.message = (
            f"over {played:.0f} s of programme {measured}: {verdict}; the "
            f"{self.profile.title} {expects}"
        )

    # -- bookkeeping -------------------------------------------------------------------

    def _close_trackers(self) -> None:
        for tr in (self._tp_events, self._clip_events, self._oc, self._ct):
            tr.record = None
        for tr in self._harsh_tracks.values():
            tr.record = None
        for st in self._res_state.values():
            st.record = None
        self._programme_records.clear()

    def _changes(self) -> list[Flag]:
        """The flags opened or changed since the last call."""
        out = []
        seen: dict[int, Flag] = {}
        for group in episodes(self._records):
            flag = group_flag(group)
            seq = group[0].seq
            seen[seq] = flag
            if self._reported.get(seq) != flag:
                out.append(flag)
        self._reported = seen
        return out


def detect(
    rows: History, profile: Profile, sample_rate: int, channels: int, before: History | None = None
) -> list[Flag]:
    """All flags of a whole programme's rows (offline convenience around :class:`Detector`)."""
    det = Detector(profile, sample_rate, channels, before=before)
    det.update(rows)
    return det.finish()


def _median3(values: np.ndarray) -> np.ndarray:
    """Median of the last axis of length 3 (NaN if any is NaN), without sorting."""
    return values.sum(axis=-1) - values.max(axis=-1) - values.min(axis=-1)


def _finite_median(values: list[float]) -> float:
    """Median of the finite values; -inf when there are none."""
    finite = [v for v in values if math.isfinite(v)]
    return float(np.median(finite)) if finite else -math.inf


def _measure(name: str, value: float, unit: str) -> str:
    if name == "DR":
        return f"DR {int(value)}"
    return f"{name} {value:.1f} {unit}"


def _join(parts: list[str]) -> str:
    if not parts:
        return ""
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
