"""Tonal rules of the Detector: harsh highs (against a BEFORE version, the profile's
tonal target, or the learned references) and persistent narrow resonances.

A mixin of :class:`earmark.meters.detectors.Detector`: the methods read and write the
detector's own state (set up in its ``__init__``); one rule family per module.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np

from .flags import OccurrenceRecord, band_text, hz_text
from .rules import (
    HARSH_AUDIBLE_DB,
    HARSH_RANK_MARGIN_DB,
    HARSH_RANK_MIN_S,
    RESONANCE_MOVING_DB,
    RESONANCE_STEADIER,
    ROW_S,
    SHARP_EVERY_ROWS,
    finite_median,
)
from .tonal import AIR_HZ, PRESENCE_HZ


class ResonanceBand:
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
        return sd_side >= RESONANCE_MOVING_DB and sd_prom <= RESONANCE_STEADIER * sd_side

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


class TonalRules:
    """The Detector's tonal rules (a mixin)."""

    # -- harsh highs -------------------------------------------------------------------------

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
        if ha.reference_presence_db and row["gated"] and r % SHARP_EVERY_ROWS == 0:
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
                audible = row[band] >= HARSH_AUDIBLE_DB
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
            gains = [finite_median([e[i] for e in run]) for i in (0, 1)]
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
        after_acum, before_acum = (finite_median([e[i] for e in tr.extras]) for i in (2, 3))
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
            enough = len(window) * 2 * SHARP_EVERY_ROWS >= self._harsh_need
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
        above every reference's median by ``HARSH_RANK_MARGIN_DB``, corroborated by a
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
        if len(sharp) * 2 >= max(1, len(values["sharp"])) and len(sharp) >= HARSH_RANK_MIN_S:
            sharp_med = float(np.median(sharp))
            sharper = sharp_med > max(ha.reference_sharpness_acum)
            for name, refs in (
                ("presence", ha.reference_presence_db),
                ("air", ha.reference_air_db),
            ):
                vals = [v for v in values[name] if math.isfinite(v)]
                if not refs or len(vals) < HARSH_RANK_MIN_S:
                    continue
                med = float(np.median(vals))
                over = med - max(refs) - HARSH_RANK_MARGIN_DB
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
        rec.threshold = max(refs) + HARSH_RANK_MARGIN_DB
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
            f"{HARSH_RANK_MARGIN_DB:g} dB and sharper than every reference"
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
        value = finite_median(sharp_acum)
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

    # -- resonance ---------------------------------------------------------------------------

    def _resonance(self, row: dict[str, Any]) -> None:
        res = self.profile.resonance
        if res is None or "res_cand" not in row or not len(self._res_bands) or not row["gated"]:
            return
        t = row["t"]
        cand, prom, freq = row["res_cand"], row["res_prom"], row["res_freq"]
        side = row["res_side"]
        n = int(round(res.sustain_s / ROW_S))
        nb = len(self._res_bands)
        need = math.ceil(res.persistence * n)
        states = self._res_state
        if not states:
            for j in range(nb):
                # hits: a candidate at j or next to it (a narrow peak on a band edge
                # alternates between two bands); own: at j itself; best: the cluster's
                # strongest candidate (prominence, frequency, t) or None.
                states[j] = ResonanceBand(n)
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
        self, rec: OccurrenceRecord, st: ResonanceBand, res: Any, n: int
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
