"""Two masters of one mix, judged side by side: one verdict, each move paired.

``compare(MIX, A, B)`` diffs each master against the same mix (so each move is what
that master did, not a side effect of comparing two processed versions), then:

- the verdict: how much louder A is than B before loudness matching; at matched
  loudness, how much brighter above 4 kHz and fuller below 150 Hz (the long-term
  1/3-octave spectra relative to their K-weighted total, the loudness), how much PSR
  and width differ, and where in time the two differ most;
- the moves paired: each EQ move of A beside B's analogous one (same kind, the nearest
  frequency within an octave) or beside "none", then compression, limiting, width and
  gain, each saying which master the profile favours and why;
- the flags each master introduced relative to the mix.

All numbers are earmark's own measurements (``analyze`` and ``diff``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from earmark.meters.flags import hz_text
from earmark.meters.tonal import band_sum_db, k_weighting_gain_db, relative_levels
from earmark.offline.transform import Transformation, diff, profile_and_name

__all__ = ["BRIGHT_HZ", "LOW_HZ", "Comparison", "PairedMove", "compare", "tone_db"]

BRIGHT_HZ = (4000.0, 20000.0)  # "brighter above 4 kHz"
LOW_HZ = (20.0, 150.0)  # "fuller below 150 Hz"
_SMOOTH_S = 5.0  # the running mean the "differ most" curve is read through
_GROW = 0.8  # the passage extends while the difference stays within this of its peak
_MAX_PASSAGE_S = 30.0
_PAIR_OCTAVES = 1.0  # two bells pair within this distance


@dataclass(frozen=True)
class PairedMove:
    """One kind of move, A's beside B's (None: that master made no such move).

    ``favours`` is "A", "B" or None (no reason to prefer either), ``why`` says why.
    """

    kind: str
    a: str | None
    b: str | None
    favours: str | None = None
    why: str = ""

    def text(self, a_name: str = "A", b_name: str = "B") -> str:
        """``high shelf: A +7.9 dB above 4.2 kHz | B none -> favours B (why)``."""
        line = f"{self.kind}: {a_name} {self.a or 'none'} | {b_name} {self.b or 'none'}"
        why = self.why.replace("{a}", a_name).replace("{b}", b_name)
        if self.favours is not None:
            line += f" -> favours {a_name if self.favours == 'A' else b_name} ({why})"
        elif why:
            line += f" ({why})"
        return line

    def to_dict(self, a_name: str = "A", b_name: str = "B") -> dict[str, Any]:
        why = self.why.replace("{a}", a_name).replace("{b}", b_name)
        return {"kind": self.kind, "a": self.a, "b": self.b, "favours": self.favours,
                "why": why, "text": self.text(a_name, b_name)}  # fmt: skip


@dataclass(frozen=True)
class Comparison:
    """Two masters (A, B) of one mix, each diffed against it; see the module docstring."""

    a_name: str
    b_name: str
    to_a: Transformation
    to_b: Transformation
    profile: str | None
    loudness_diff_lu: float | None  # A minus B, integrated, before matching
    brighter_db: float | None  # A minus B above 4 kHz, at matched loudness
    fuller_db: float | None  # A minus B below 150 Hz, at matched loudness
    psr_diff_db: float | None  # A minus B, median PSR
    plr_diff_db: float | None
    wider_pct: float | None  # A's side/mid energy against B's, %
    differ_most_s: tuple[float, float] | None  # on A's timeline
    differ_most_db: float | None  # the mean spectral difference there
    moves: tuple[PairedMove, ...] = ()
    explainability: dict[str, Any] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        """The one sentence: louder, brighter, PSR, width, where they differ most."""
        a, b = self.a_name, self.b_name
        parts: list[str] = []
        if self.loudness_diff_lu is not None:
            parts.append(
                f"{a} is {abs(self.loudness_diff_lu):.1f} LU "
                f"{'louder' if self.loudness_diff_lu >= 0 else 'quieter'} than {b} before "
                "matching"
            )
        matched: list[str] = []
        if self.brighter_db is not None:
            matched.append(f"{self.brighter_db:+.1f} dB above 4 kHz")
        if self.fuller_db is not None:
            matched.append(f"{self.fuller_db:+.1f} dB below 150 Hz")
        if self.psr_diff_db is not None:
            more = "more" if self.psr_diff_db >= 0 else "less"
            matched.append(f"{abs(self.psr_diff_db):.1f} dB {more} PSR")
        if self.wider_pct is not None:
            matched.append(
                f"{abs(self.wider_pct):.0f} % {'wider' if self.wider_pct >= 0 else 'narrower'}"
            )
        if matched:
            parts.append("at matched loudness: " + ", ".join(matched))
        if self.differ_most_s is not None:
            s, e = self.differ_most_s
            parts.append(f"the two differ most at {_clock(s)}-{_clock(e)} ({a}'s time)")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of ``earmark compare --json``."""
        return {
            "a": self.a_name,
            "b": self.b_name,
            "profile": self.profile,
            "verdict": self.verdict,
            "loudness_diff_lu": _r(self.loudness_diff_lu),
            "brighter_db": _r(self.brighter_db),
            "fuller_db": _r(self.fuller_db),
            "psr_diff_db": _r(self.psr_diff_db),
            "plr_diff_db": _r(self.plr_diff_db),
            "wider_pct": _r(self.wider_pct, 1),
            "differ_most_s": None
            if self.differ_most_s is None
            else [_r(v) for v in self.differ_most_s],
            "differ_most_db": _r(self.differ_most_db),
            "moves": [m.to_dict(self.a_name, self.b_name) for m in self.moves],
            "flags": {
                "a": list(self.to_a.flags_introduced),
                "b": list(self.to_b.flags_introduced),
            },
            "explainability": {
                k: None if v is None else v.to_dict() for k, v in self.explainability.items()
            },
            "a_diff": self.to_a.to_dict(),
            "b_diff": self.to_b.to_dict(),
        }


def compare(
    mix: Any,
    a: Any,
    b: Any,
    *,
    sample_rate: int | None = None,
    profile: Any = None,
    force: bool = False,
    names: tuple[str, str] = ("A", "B"),
    explain: bool = True,
) -> Comparison:
    """Compare masters ``a`` and ``b`` of ``mix`` (files or arrays, as ``diff`` takes).

    ``explain``: also reconstruct each master's moves as a chain, render the mix through
    it and measure how much of each master they explain (earmark.offline.explainability;
    about one diff's time more per master).
    """
    prof, prof_name = profile_and_name(profile)
    to_a = diff(mix, a, sample_rate=sample_rate, profile=prof, force=force)
    to_b = diff(mix, b, sample_rate=sample_rate, profile=prof, force=force)
    explained: dict[str, Any] = {}
    if explain:
        explained = _explained(mix, (a, b), (to_a, to_b), sample_rate)
    A, B = to_a.after, to_b.after
    tone_a, tone_b = tone_db(A), tone_db(B)
    span = _differ_most(to_a, to_b)
    return Comparison(
        a_name=names[0],
        b_name=names[1],
        to_a=to_a,
        to_b=to_b,
        profile=prof_name,
        loudness_diff_lu=_minus(A.integrated_lufs, B.integrated_lufs),
        brighter_db=_minus(tone_a.get("bright"), tone_b.get("bright")),
        fuller_db=_minus(tone_a.get("low"), tone_b.get("low")),
        psr_diff_db=_minus(A.psr_median_db, B.psr_median_db),
        plr_diff_db=_minus(A.plr_db, B.plr_db),
        wider_pct=_wider(A.side_to_mid_db, B.side_to_mid_db),
        differ_most_s=None if span is None else span[:2],
        differ_most_db=None if span is None else span[2],
        moves=tuple(pair_moves(to_a, to_b, prof)),
        explainability=explained,
    )


def _explained(mix: Any, masters: tuple[Any, Any], diffs: tuple[Any, Any], rate: int | None):
    """{"a": Explainability, "b": ...}; a master at another rate than the mix: None."""
    from earmark.offline.explainability import explain_master

    mix_audio, mix_rate = _audio(mix, rate)
    out: dict[str, Any] = {}
    for key, master, t in zip(("a", "b"), masters, diffs, strict=True):
        audio, master_rate = _audio(master, rate)
        out[key] = (
            explain_master(t, mix_audio, audio, mix_rate)[0] if master_rate == mix_rate else None
        )
    return out


def _audio(source: Any, rate: int | None) -> tuple[np.ndarray, int]:
    """(frames, channels) float32 audio and its rate, from a file or an array."""
    if isinstance(source, np.ndarray):
        x = source if source.ndim == 2 else source[:, None]
        return np.ascontiguousarray(x, dtype=np.float32), int(rate or 0)
    from earmark.engine.files import iter_blocks, open_audio

    info = open_audio(source)
    return np.concatenate(list(iter_blocks(source, 65536, dtype="float32"))), info.sample_rate


def tone_db(analysis: Any) -> dict[str, float]:
    """The analysis' long-term level above 4 kHz ("bright") and below 150 Hz ("low"), dB
    relative to its K-weighted total: the balance at matched loudness."""
    if not analysis.band_hz or not analysis.spectrum_long_db:
        return {}
    levels = np.array([np.nan if v is None else v for v in analysis.spectrum_long_db])
    rel = relative_levels(levels, k_weighting_gain_db(analysis.band_hz, analysis.sample_rate))
    out = {}
    for key, (lo, hi) in (("bright", BRIGHT_HZ), ("low", LOW_HZ)):
        v = float(band_sum_db(rel, analysis.band_hz, lo, hi))
        if math.isfinite(v):
            out[key] = v
    return out


# -- where they differ --------------------------------------------------------------------------


def _differ_most(to_a: Transformation, to_b: Transformation) -> tuple[float, float, float] | None:
    """Where the two masters differ most in time (on A's timeline): per 10 Hz row, the RMS
    over bands of their short-term spectra's difference, each relative to its own total
    (so a loudness difference alone does not count), smoothed over 5 s; the passage
    around the peak while it stays within 80 % of it (at most 30 s)."""
    ha, hb = to_a.after_history, to_b.after_history
    if ha is None or hb is None or not len(ha) or not len(hb) or ha.spectrum_db.size == 0:
        return None
    # B's rows onto A's: both masters are aligned to the mix; B starts later by the
    # difference of their offsets.
    lag_s = (to_b.result.alignment.offset_ms - to_a.result.alignment.offset_ms) / 1000.0
    rows_b = np.rint((ha.t_s + lag_s - hb.t_s[0]) * 10.0).astype(int)
    ok = (rows_b >= 0) & (rows_b < len(hb))
    if ok.sum() < 10 * _SMOOTH_S:
        return None
    ka = k_weighting_gain_db(ha.band_hz, ha.sample_rate)
    kb = k_weighting_gain_db(hb.band_hz, hb.sample_rate)
    ra = relative_levels(ha.spectrum_db[ok], ka)
    rb = relative_levels(hb.spectrum_db[rows_b[ok]], kb)
    hz = np.asarray(ha.band_hz)
    use = (hz >= 50.0) & (hz <= 16000.0)
    d = ra[:, use] - rb[:, use]
    with warnings.catch_warnings():  # a row with no band in common: NaN, counted as 0
        warnings.simplefilter("ignore", RuntimeWarning)
        per_row = np.sqrt(np.nanmean(d * d, axis=1))
    t = ha.t_s[ok]
    per_row = np.where(np.isfinite(per_row), per_row, 0.0)
    k = max(1, int(_SMOOTH_S * 10))
    smooth = np.convolve(per_row, np.ones(k) / k, mode="same")
    peak = int(np.argmax(smooth))
    level = float(smooth[peak])
    if level <= 0.0:
        return None
    lo = hi = peak
    limit = int(_MAX_PASSAGE_S * 10)
    while lo > 0 and smooth[lo - 1] >= _GROW * level and hi - lo < limit:
        lo -= 1
    while hi < len(smooth) - 1 and smooth[hi + 1] >= _GROW * level and hi - lo < limit:
        hi += 1
    # A row's spectrum covers the 3 s before its time.
    return max(0.0, float(t[lo]) - 3.0), float(t[hi]), level


# -- moves ----------------------------------------------------------------------------------


_KIND_TEXT = {
    "high_shelf": "high shelf",
    "low_shelf": "low shelf",
    "bell": "bell",
    "low_cut": "low cut",
    "high_cut": "high cut",
}


def pair_moves(to_a: Transformation, to_b: Transformation, profile: Any) -> list[PairedMove]:
    """Each master's moves against the mix, paired kind by kind (see the module docstring)."""
    out: list[PairedMove] = []
    left = list(to_b.eq_moves)
    for m in to_a.eq_moves:
        match = _partner(m, left)
        if match is not None:
            left.remove(match)
        out.append(_eq_pair(m, match, to_a, to_b, profile))
    for m in left:
        out.append(_eq_pair(None, m, to_a, to_b, profile))
    da, db = to_a.dynamics(), to_b.dynamics()
    out.append(_compression_pair(da, db, to_a, to_b, profile))
    out.append(_limiting_pair(da, db, to_a, to_b, profile))
    sa, sb = to_a.stereo()["width_change_pct"], to_b.stereo()["width_change_pct"]
    if sa is not None or sb is not None:
        out.append(
            PairedMove(
                "width",
                None if sa is None or abs(sa) < 5 else f"{sa:+.0f} %",
                None if sb is None or abs(sb) < 5 else f"{sb:+.0f} %",
            )
        )
    out.append(PairedMove("gain (quiet passages)", f"{to_a.gain_db:+.1f} dB",
                          f"{to_b.gain_db:+.1f} dB"))  # fmt: skip
    return out


def _partner(move: Any, candidates: Sequence[Any]) -> Any:
    same = [c for c in candidates if c.kind == move.kind]
    if not same:
        return None
    best = min(same, key=lambda c: abs(math.log2(c.freq_hz / move.freq_hz)))
    if move.kind == "bell" and abs(math.log2(best.freq_hz / move.freq_hz)) > _PAIR_OCTAVES:
        return None
    return best


def _move_text(m: Any) -> str | None:
    if m is None:
        return None
    f = hz_text(m.freq_hz)
    if m.kind == "high_shelf":
        return f"{m.gain_db:+.1f} dB above {f}"
    if m.kind == "low_shelf":
        return f"{m.gain_db:+.1f} dB below {f}"
    if m.kind == "bell":
        return f"{m.gain_db:+.1f} dB at {f}, Q {m.q:.1f}"
    return f"at {f} ({m.slope_db_per_oct} dB/oct)"


def _eq_pair(ma: Any, mb: Any, to_a: Transformation, to_b: Transformation, profile: Any):
    kind = _KIND_TEXT.get((ma or mb).kind, (ma or mb).kind)
    move = ma or mb
    lo, hi = _region(move)
    favours, why = _tonal_favour(to_a.after, to_b.after, profile, lo, hi)
    return PairedMove(kind, _move_text(ma), _move_text(mb), favours, why)


def _region(move: Any) -> tuple[float, float]:
    """The frequencies a move acts on, for judging the result there."""
    f = move.freq_hz
    if move.kind in ("high_shelf", "low_cut"):
        return (f, 20000.0) if move.kind == "high_shelf" else (20.0, f)
    if move.kind in ("low_shelf", "high_cut"):
        return (20.0, f) if move.kind == "low_shelf" else (f, 20000.0)
    return f / 2**0.5, f * 2**0.5


def _tonal_favour(A: Any, B: Any, profile: Any, lo: float, hi: float) -> tuple[str | None, str]:
    """Which master sits nearer the profile's tonal target between lo and hi (relative
    levels, as the target), and by how much; None without a target there."""
    tonal = getattr(profile, "tonal", None)
    if tonal is None:
        return None, ""
    target = np.asarray(tonal.level_db, dtype=np.float64)
    t_rel = float(band_sum_db(target, tonal.band_hz, lo, hi))
    if not math.isfinite(t_rel):
        return None, ""
    dev = []
    for an in (A, B):
        levels = np.array([np.nan if v is None else v for v in an.spectrum_long_db])
        rel = relative_levels(levels, k_weighting_gain_db(an.band_hz, an.sample_rate))
        dev.append(float(band_sum_db(rel, an.band_hz, lo, hi)) - t_rel)
    if not all(math.isfinite(v) for v in dev) or abs(abs(dev[0]) - abs(dev[1])) < 1.0:
        return None, "both as near the profile's tonal target" if all(
            math.isfinite(v) for v in dev
        ) else ""
    who = "A" if abs(dev[0]) < abs(dev[1]) else "B"
    name = getattr(profile, "name", "the profile")
    return who, (
        f"{name}'s tonal target: {{a}} {dev[0]:+.1f} dB, {{b}} {dev[1]:+.1f} dB from it "
        f"at {hz_text(lo)}-{hz_text(hi)}"
    )


def _compression_pair(da, db, to_a, to_b, profile) -> PairedMove:
    def text(d: dict) -> str | None:
        if not d["compressed"]:
            return None
        return (
            f"{d['ratio']:.1f}:1 above {d['threshold_db']:.0f} dBFS "
            f"({d['gain_reduction_db']:.0f} dB of gain reduction)"
        )

    favours, why = None, ""
    dyn = getattr(profile, "dynamics", None)
    floor = getattr(dyn, "psr_min_db", None)
    pa, pb = to_a.after.psr_median_db, to_b.after.psr_median_db
    if floor is not None and pa is not None and pb is not None:
        below = [p < floor for p in (pa, pb)]
        if below[0] != below[1]:
            favours = "B" if below[0] else "A"
            why = f"PSR {{a}} {pa:.1f} dB, {{b}} {pb:.1f} dB; the profile's floor is {floor:g} dB"
    return PairedMove("compression", text(da), text(db), favours, why)


def _limiting_pair(da, db, to_a, to_b, profile) -> PairedMove:
    def text(d: dict, t: Transformation) -> str | None:
        if not d["limited"]:
            return None
        tp = t.after.true_peak_dbtp
        return f"ceiling {d['ceiling_dbfs']:.1f} dBFS" + (
            f", true peak {tp:+.1f} dBTP" if tp is not None else ""
        )

    favours, why = None, ""
    tp = getattr(profile, "true_peak", None)
    ceiling = getattr(tp, "ceiling_dbtp", None)
    ta, tb = to_a.after.true_peak_dbtp, to_b.after.true_peak_dbtp
    if ceiling is not None and ta is not None and tb is not None:
        over = [v > ceiling for v in (ta, tb)]
        if over[0] != over[1]:
            favours = "B" if over[0] else "A"
            why = f"true peak {{a}} {ta:+.1f}, {{b}} {tb:+.1f} dBTP; ceiling {ceiling:g} dBTP"
    return PairedMove("limiting", text(da, to_a), text(db, to_b), favours, why)


# -- small ------------------------------------------------------------------------------------


def _minus(x: float | None, y: float | None) -> float | None:
    if x is None or y is None:
        return None
    return float(x) - float(y)


def _wider(sm_a: float | None, sm_b: float | None) -> float | None:
    """A's side/mid energy ratio against B's, as a percentage change (width)."""
    if sm_a is None or sm_b is None:
        return None
    return (10.0 ** ((sm_a - sm_b) / 20.0) - 1.0) * 100.0


def _clock(seconds: float) -> str:
    m, s = divmod(max(0.0, seconds), 60.0)
    return f"{int(m)}:{s:04.1f}"


def _r(value: float | None, digits: int = 2) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), digits)
