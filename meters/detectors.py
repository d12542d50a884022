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
``album_inconsistent``
    Not raised by the Detector but by ``earmark analyze --album``
    (``earmark.offline.album``): a track of an album 3 LU or more louder or quieter
    than the median of its neighbours, or 3 dB or more brighter or duller in 2-5 kHz
    or 5-10 kHz (relative to its body) than the album's median (inference).
``codec_clipping``
    Not raised by the Detector: ``earmark analyze --codecs`` encodes and decodes the
    programme (:mod:`earmark.offline.codecs`) and raises it when samples clip on
    decode (a problem) or the decoded true peak is above the profile's ceiling (a
    warning); its sentence names the codec and the ceiling that avoids it.

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

from .flags import Flag, OccurrenceRecord, episodes, group_flag
from .judge_dynamics import DynamicsRules
from .judge_tonal import ResonanceBand, TonalRules
from .kernels import (
    HIST_BINS,
    LRA_RELATIVE_LU,
    add_loudness,
)
from .onsets import (
    SILENCE_LUFS,
    is_onset,
    power_db,
)
from .profile import Profile
from .readings import History
from .rules import (
    EVAL_EVERY_ROWS,
    RESONANCE_AUDIBLE_DB,
    RESONANCE_NEAR,
    ROW_S,
    SHARP_EVERY_ROWS,
    SHORT_TERM_ROWS,
    median3,
)
from .sharpness import sharpness_acum
from .tonal import AIR_HZ, BODY_HZ, PRESENCE_HZ, band_sum_db, k_weighting_gain_db, relative_levels
from .trackers import Events, Sustained

__all__ = [
    "Detector",
    "detect",
]


class Detector(DynamicsRules, TonalRules):
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
        self._crest_ring: deque[tuple[float, float]] = deque(maxlen=SHORT_TERM_ROWS)
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

    # -- public ------------------------------------------------------------------------------

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

    # -- feeding -----------------------------------------------------------------------------

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
            self._first_t = float(rows.t_s[start]) - ROW_S

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
        far = max(RESONANCE_NEAR)
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
            below = np.stack([spec[:, bands - d] for d in RESONANCE_NEAR], axis=-1)
            above = np.stack([spec[:, bands + d] for d in RESONANCE_NEAR], axis=-1)
            with np.errstate(invalid="ignore"):
                side_lo, side_hi = median3(below), median3(above)
                # Against the mean of the two sides (a sloped spectrum cancels), and above
                # each side on its own: a peak, not the cliff at a band-limited edge.
                side = 0.5 * (side_lo + side_hi)
                prom = level - side
                clear = level - np.maximum(side_lo, side_hi)
                left, right = spec[:, bands - 1], spec[:, bands + 1]
                narrow = np.minimum(level - np.minimum(left, right), clear)
                loudest = np.nanmax(np.where(np.isnan(spec), -np.inf, spec), axis=1)
                audible = level >= (loudest[:, None] - RESONANCE_AUDIBLE_DB)
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
        ``SHARP_EVERY_ROWS``, NaN for the others. The 3 s spectra of rows 0.1 s apart
        overlap by 97 %, so a value a second loses nothing for a median over seconds
        and costs a tenth; the absolute rows keep live and offline batches equal."""
        assert self._band_hz is not None
        out = np.full(spec.shape[0], np.nan)
        pick = np.flatnonzero((first_row + np.arange(spec.shape[0])) % SHARP_EVERY_ROWS == 0)
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

    # -- one row -----------------------------------------------------------------------------

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
        if r % EVAL_EVERY_ROWS == EVAL_EVERY_ROWS - 1:
            self._programme(r, t, final=False)

    # -- peaks and clipping ------------------------------------------------------------------

    def _make_trackers(self) -> None:
        p = self.profile
        self._tp_events = Events()
        self._clip_events = Events()
        dyn = p.dynamics
        self._oc = Sustained(int(round((dyn.sustain_s if dyn else 5.0) / ROW_S)))
        tr = p.transients
        self._ct = Sustained(int(round((tr.sustain_s if tr else 3.0) / ROW_S)))
        ha = p.harshness
        need = int(round((ha.sustain_s if ha else 5.0) / ROW_S))
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
        self._res_state: dict[int, ResonanceBand] = {}

    def _new(self, code: str, start_s: float, unit: str | None) -> OccurrenceRecord:
        rec = OccurrenceRecord(code, self._seq, start_s, unit)
        self._seq += 1
        self._records.append(rec)
        return rec

    def _close(self, tracker: Events | Sustained) -> None:
        if tracker.record is not None:
            tracker.record.open = False
            tracker.record = None

    # -- bookkeeping -------------------------------------------------------------------------

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
