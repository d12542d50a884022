"""Dynamics rules of the Detector: peaks and clipping, over-compression, crushed
transients and the programme measures (LRA, PLR, DR, integrated loudness).

A mixin of :class:`earmark.meters.detectors.Detector`: the methods read and write the
detector's own state (set up in its ``__init__``); one rule family per module.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .flags import OccurrenceRecord
from .kernels import (
    CLIP_RUN,
    INTEGRATED_RELATIVE_LU,
    LOUDNESS_OFFSET,
    gated_mean_energy,
    loudness_range,
)
from .onsets import (
    ONSET_MIN_COUNT,
    ONSET_WINDOW_ROWS,
    is_onset,
    onset_loss,
)
from .rules import (
    CREST_OVER_PSR_DB,
    DR_AWARD_MIN,
    HYSTERESIS,
    LOUD_GENRE_PSR_DB,
    LOUD_MASTER_LRA_LU,
    LOUD_MASTER_PLR_DB,
    LRA_STABLE_S,
    ROW_S,
    SHORT_TERM_ROWS,
    join_words,
    measure_text,
)


class DynamicsRules:
    """The Detector's dynamics rules (a mixin)."""

    # -- peaks and clipping ------------------------------------------------------------------

    def _peaks_and_clips(self, row: dict[str, Any]) -> None:
        """``true_peak_over`` and ``clipping``, one fact each (see the module docstring)."""
        r, t = row["row"], row["t"]
        tp, sp, clipped = row["tp"], row["sp"], int(row["clip"])
        block_s = t - ROW_S  # where this row's 100 ms block starts
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

    # -- over-compression --------------------------------------------------------------------

    def _over_compression(self, row: dict[str, Any]) -> None:
        dyn = self.profile.dynamics
        if dyn is None or dyn.psr_min_db is None:
            return
        t, psr, s = row["t"], row["psr"], row["s"]
        peak, ms = max(p for p, _ in self._crest_ring), np.mean([m for _, m in self._crest_ring])
        crest = 20.0 * math.log10(peak) - 10.0 * math.log10(ms) if peak > 0 and ms > 0 else math.nan
        judged = (
            len(self._crest_ring) == SHORT_TERM_ROWS
            and s >= dyn.judge_above_lufs
            and row["gated"]
            and math.isfinite(psr)
        )
        floor = dyn.psr_min_db
        crest_low = crest < floor + CREST_OVER_PSR_DB
        low = judged and psr < floor and crest_low
        tr = self._oc
        plr, dr = self._plr_so_far(), self._dr_so_far()
        if judged and crest_low and not low and dyn.corroborate:
            # Crest-led (inference): PSR's loudness is K-weighted, which discounts the bass
            # (BS.1770's high-pass) and lifts the highs, so on a bass-heavy master PSR reads
            # above the unweighted crest. The crest held under the same evidence line, in a
            # programme whose DR is under the DR Day minimum, is the same loss.
            low = dr is not None and dr < DR_AWARD_MIN
        if low and tr.record is None and dyn.corroborate:
            # A flag opens only when the programme agrees: its PLR or DR so far is a loud
            # master's. A dense passage of a dynamic piece has a low PSR for a while; a
            # master whose peaks were held down has it everywhere, so its PLR and DR fall.
            low = (plr is not None and plr <= LOUD_MASTER_PLR_DB) or (
                dr is not None and dr < DR_AWARD_MIN
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
            below = f"PSR was below {problem:g} dB for {tr.problem_rows * ROW_S:.1f} s of "
            verdict = f"the {self.profile.title} calls PSR below {problem:g} dB a problem"
        elif median >= floor:
            # Crest-led (see above): the crest carried the flag; PSR read high.
            line = floor + CREST_OVER_PSR_DB
            crest_median = float(np.nanmedian(tr.extras))
            rec.value, rec.threshold = crest_median, line
            rec.message = (
                f"the short-term crest stayed below {line:g} dB for {span:.1f} s "
                f"({rec.start_s:.1f}-{rec.end_s:.1f} s; median {crest_median:.1f} dB, lowest "
                f"{crest_low:.1f} dB; {join_words(evidence[1:])}) while PSR read a median "
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
            f"lowest {lowest:.1f} dB; {join_words(evidence)}): the peaks are held down to the "
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

    # -- transients --------------------------------------------------------------------------

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
                "crushed_transients", tr.run[0][0] - ONSET_WINDOW_ROWS * ROW_S, "dB"
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

    # -- programme measures ------------------------------------------------------------------

    def _dr_row(self, r: int, ms: np.ndarray, pk: np.ndarray) -> None:
        if self._dr_acc is None or self._dr_acc.shape[0] != len(ms):
            self._dr_acc = np.zeros((len(ms), 2))
            self._dr_rows = 0
        acc = self._dr_acc
        acc[:, 0] += np.nan_to_num(ms)
        acc[:, 1] = np.maximum(acc[:, 1], np.nan_to_num(pk))
        self._dr_rows += 1
        if r % SHORT_TERM_ROWS == SHORT_TERM_ROWS - 1:
            if self._dr_rows == SHORT_TERM_ROWS:
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
        recover = abs(off) <= lt.tolerance_lu - min(HYSTERESIS, 0.5 * lt.tolerance_lu)
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
        hysteresis = min(HYSTERESIS, 0.5 * lt.tolerance_lu)
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
        if dyn is None or self._gated_st_rows * ROW_S < dyn.min_programme_s:
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
        if dyn.lra_min_lu is not None and lra is not None and played >= LRA_STABLE_S:
            checks.append(("LRA", lra, dyn.lra_min_lu, dyn.lra_problem_lu, "LU"))
        if dyn.plr_min_db is not None and plr is not None:
            checks.append(("PLR", plr, dyn.plr_min_db, dyn.plr_problem_db, "dB"))
        if dyn.dr_min is not None and dr is not None:
            checks.append(("DR", float(dr), float(dyn.dr_min), None, ""))
        below = [c for c in checks if c[1] < c[2]]
        recover = bool(checks) and all(c[1] >= c[2] + HYSTERESIS for c in checks)
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
        measured = join_words([measure_text(n, v, u) for n, v, _, _, u in checks])
        if problems:
            under = join_words(
                [f"{n} below {p:g}{' ' + u if u else ''}" for n, _, _, p, u in problems]
            )
            expects = f"calls {under} a problem"
        else:
            floors = join_words([f"{n} >= {f:g}{' ' + u if u else ''}" for n, _, f, _, u in below])
            expects = f"expects {floors}"
        loud_genre = dyn.psr_min_db is not None and dyn.psr_min_db <= LOUD_GENRE_PSR_DB
        loud_master = (lra is not None and lra <= LOUD_MASTER_LRA_LU) or (
            plr is not None and plr <= LOUD_MASTER_PLR_DB
        )
        if loud_master and not loud_genre:
            verdict = "dynamics typical of a loud pop master"
        else:
            verdict = "dynamics narrower than the genre's"
        rec.message = (
            f"over {played:.0f} s of programme {measured}: {verdict}; the "
            f"{self.profile.title} {expects}"
        )
