"""``earmark.diff``: what a transformation (a master, a chain, a service) did to a programme.

Given BEFORE (say the unmastered mix) and AFTER (say an automatic master), read
both, bring them to one sample rate, align them (offset and polarity, by
cross-correlation) and explain AFTER as dynamics(gain x EQ(BEFORE)) with
:func:`earmark.meters.diff.compare`; measure both with the same MeterBank as
``earmark analyze``; and compare their explained flags. The result, a
:class:`Transformation`, speaks JSON (:meth:`Transformation.to_dict`, the
``earmark diff --json`` contract of DESIGN.md) and plain English
(:attr:`Transformation.narrative`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from earmark.engine.files import DEFAULT_BLOCK_FRAMES, iter_blocks, open_audio
from earmark.errors import EarmarkError
from earmark.meters import History
from earmark.meters.diff import Alignment, DiffResult, EqMove, align, compare
from earmark.meters.flags import hz_text, problem_key
from earmark.offline.analysis import Analysis, analyze, meter_history
from earmark.offline.residual import Residual, residual
from earmark.store.snapshots import flag_dict

__all__ = ["CONTRACT_KEYS", "DoubtfulAlignmentError", "Transformation", "diff"]

# Keys of the ``diff --json`` contract (DESIGN.md, "Command line"), first and in order.
CONTRACT_KEYS: tuple[str, ...] = (
    "gain_db",
    "eq_curve",
    "eq_moves",
    "dynamics",
    "stereo",
    "flags",
)
DYNAMICS_KEYS: tuple[str, ...] = (
    "ratio",
    "threshold_db",
    "psr_change_db",
    "lra_change_lu",
    "crest_change_db",
    "limited",
)

_WIDTH_SAY_PCT = 3.0
_HEAVY_GR_DB = 6.0  # gain reduction from which compression visibly reshapes the spectrum
_SMALL_MOVE_DB = 2.0  # width changes smaller than this are "unchanged"
_SAME_DB = 0.05


Source = str | os.PathLike[str] | np.ndarray


@dataclass(frozen=True)
class Transformation:
    """What AFTER changed relative to BEFORE.

    ``before`` and ``after`` are the two versions measured exactly as
    ``earmark analyze`` measures them; ``result`` holds the aligned
    comparison (EQ curve and moves, level transfer and compressor fit,
    limiting, transients, stereo). Histories are the 10 Hz meter curves, both
    on AFTER's timeline (BEFORE shifted by the offset), for plots.
    """

    before: Analysis
    after: Analysis
    result: DiffResult
    before_history: History = field(repr=False)
    after_history: History = field(repr=False)
    flags_before: tuple[dict[str, Any], ...] = ()
    flags_after: tuple[dict[str, Any], ...] = ()
    profile: str | None = None
    warnings: tuple[str, ...] = ()
    # AFTER minus the aligned, gain-matched BEFORE: what the processing added or removed.
    residual: Residual | None = None

    # -- the contract ------------------------------------------------------------------

    @property
    def gain_db(self) -> float:
        """Broadband gain on the quiet passages (the linear part of the level transfer), dB."""
        return self.result.gain_db

    @property
    def loudness_change_lu(self) -> float | None:
        """Integrated loudness of AFTER minus BEFORE (None if either is undefined)."""
        return _delta(self.before.integrated_lufs, self.after.integrated_lufs)

    @property
    def eq_curve(self) -> list[tuple[float, float]]:
        """The EQ as (Hz, dB) pairs, 1/6 octave apart, where both versions have energy."""
        r = self.result
        return [
            (float(f), float(d))
            for f, d in zip(r.curve_hz, r.curve_db, strict=True)
            if np.isfinite(d)
        ]

    @property
    def eq_moves(self) -> tuple[EqMove, ...]:
        """The EQ curve summarised as shelves, bells and cuts, lowest frequency first."""
        return self.result.moves

    @property
    def compressed(self) -> bool:
        """A level-dependent gain (compression) was found."""
        return self.result.compressed

    @property
    def limited(self) -> bool:
        """AFTER's peaks are held at a ceiling that BEFORE's were not."""
        return self.result.limiting.limited

    @property
    def flags_introduced(self) -> tuple[dict[str, Any], ...]:
        """AFTER's flags that BEFORE did not have (same code and band)."""
        keys = {problem_key(f) for f in self.flags_before}
        return tuple(f for f in self.flags_after if problem_key(f) not in keys)

    @property
    def flags_removed(self) -> tuple[dict[str, Any], ...]:
        """BEFORE's flags that AFTER no longer has."""
        keys = {problem_key(f) for f in self.flags_after}
        return tuple(f for f in self.flags_before if problem_key(f) not in keys)

    @property
    def flags_kept(self) -> tuple[dict[str, Any], ...]:
        """AFTER's flags that BEFORE had too."""
        keys = {problem_key(f) for f in self.flags_before}
        return tuple(f for f in self.flags_after if problem_key(f) in keys)

    def dynamics(self) -> dict[str, Any]:
        """The ``dynamics`` object of the JSON contract (plus extras), unrounded.

        The ``transient_crest_*`` keys quote the measure the ``crushed_transients``
        flag and the narrative quote (:func:`earmark.meters.onsets.transient_loss`:
        onset peaks over the short-term loudness at BEFORE's onsets), so one loss has
        one number. ``transient_crest_change_db`` is AFTER minus BEFORE, the median of
        the per-onset changes: negative when the onsets lost height (-4.7 dB for a
        flag saying "lost a median 4.7 dB"); ``transient_crest_before_db`` and
        ``_after_db`` are the medians over the same onsets. All None with fewer than
        four onsets.
        """
        from earmark.meters.onsets import transient_loss

        r = self.result
        fit = r.transfer.fit
        b, a = self.before, self.after
        loss = transient_loss(self.before_history, self.after_history)
        return {
            "ratio": fit.ratio if r.compressed else 1.0,
            "threshold_db": fit.threshold_db if r.compressed else None,
            "psr_change_db": _delta(b.psr_median_db, a.psr_median_db),
            "lra_change_lu": _delta(b.loudness_range_lu, a.loudness_range_lu),
            "crest_change_db": _delta(b.crest_db, a.crest_db),
            "limited": r.limiting.limited,
            "compressed": r.compressed,
            "knee_db": fit.knee_db if r.compressed else None,
            "gain_reduction_db": r.gain_reduction_db if r.compressed else 0.0,
            "attack_ms": r.transfer.attack_s * 1000.0 if r.compressed else None,
            "release_ms": r.transfer.release_s * 1000.0 if r.compressed else None,
            "ceiling_dbfs": r.limiting.ceiling_dbfs if r.limiting.limited else None,
            "ceiling_dbtp": a.true_peak_dbtp if r.limiting.limited else None,
            "pinned_fraction": r.limiting.pinned_fraction,
            "plr_change_db": _delta(b.plr_db, a.plr_db),
            "psr_before_db": b.psr_median_db,
            "psr_after_db": a.psr_median_db,
            "dr_change": None if b.dr is None or a.dr is None else a.dr - b.dr,
            "transient_crest_change_db": None if loss is None else -loss.drop_db,
            "transient_crest_before_db": None if loss is None else loss.before_db,
            "transient_crest_after_db": None if loss is None else loss.after_db,
            "transient_onsets": 0 if loss is None else loss.onsets,
        }

    def stereo(self) -> dict[str, Any]:
        """The ``stereo`` object of the JSON contract, unrounded."""
        s = self.result.stereo
        return {
            "width_change_pct": s.width_change_pct,
            "side_to_mid_change_db": s.side_to_mid_change_db,
            "side_to_mid_before_db": s.side_to_mid_before_db,
            "side_to_mid_after_db": s.side_to_mid_after_db,
            "correlation_before": s.correlation_before,
            "correlation_after": s.correlation_after,
            "bands": [
                {"low_hz": lo, "high_hz": hi, "side_to_mid_change_db": d}
                for (lo, hi), d in zip(s.bands_hz, s.side_to_mid_change_bands_db, strict=True)
            ],
        }

    @property
    def alignment_doubt(self) -> str | None:
        """Why the offset should not be trusted (None when it can be); see ``diff(force=)``."""
        return self.result.alignment.doubt

    @property
    def narrative(self) -> tuple[str, ...]:
        """What changed, one short clause each, in the order an engineer reads a master."""
        return self.narrate()

    def narrate(self, before: str = "BEFORE", after: str = "AFTER") -> tuple[str, ...]:
        """The narrative with the versions called ``before`` and ``after`` (e.g. file names)."""
        return tuple(_narrative(self, before, after))

    @property
    def summary(self) -> str:
        """The narrative on one line: ``AFTER is 6.2 dB louder; +4.8 dB high shelf ...``."""
        return "; ".join(self.narrative)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of ``earmark diff --json``.

        Contract keys first, in DESIGN.md's order (``gain_db``, ``eq_curve``,
        ``eq_moves``, ``dynamics``, ``stereo``, ``flags``), then extras.
        ``flags`` is ``{"introduced": [...], "removed": [...], "kept": [...]}``
        (each a flag object as in ``analyze --json``). dB rounded to 0.01, Hz to
        0.1; undefined values are ``null``, never NaN or infinity.
        """
        r = self.result
        out: dict[str, Any] = {
            "gain_db": _r(self.gain_db, 2),
            "eq_curve": [[_r(f, 1), _r(d, 2)] for f, d in self.eq_curve],
            "eq_moves": [m.to_dict() for m in self.eq_moves],
            "dynamics": _rounded(self.dynamics()),
            "stereo": _rounded(self.stereo()),
            "flags": {
                "introduced": [_rounded(f) for f in self.flags_introduced],
                "removed": [_rounded(f) for f in self.flags_removed],
                "kept": [_rounded(f) for f in self.flags_kept],
            },
            "loudness_change_lu": _r(self.loudness_change_lu, 2),
            "sharpness_change_acum": _r(
                _delta(self.before.sharpness_acum, self.after.sharpness_acum), 2
            ),
            "offset_ms": _r(r.alignment.offset_ms, 3),
            "polarity_inverted": r.alignment.polarity < 0,
            "alignment_correlation": _r(r.alignment.correlation, 3),
            "alignment": _alignment_dict(r.alignment),
            "compared_sample_rate": r.sample_rate,
            "compared_s": _r(r.duration_s, 3),
            "profile": self.profile,
            "before": _summary(self.before),
            "after": _summary(self.after),
            "summary": self.summary,
            "narrative": list(self.narrative),
            "warnings": list(self.warnings),
            "residual": self.residual.to_json_dict() if self.residual is not None else None,
        }
        return out


# -- the API ---------------------------------------------------------------------------


def diff(
    before: Source,
    after: Source,
    *,
    sample_rate: int | None = None,
    profile: Any = None,
    force: bool = False,
) -> Transformation:
    """Explain what turned ``before`` into ``after``.

    Args:
        before, after: audio file paths (anything ``earmark analyze`` reads) or
            arrays shaped ``(frames,)`` / ``(frames, channels)``, full scale at
            1.0. They may differ in sample rate, length and start (an offset of
            any length that leaves them overlapping), and AFTER may be
            polarity-inverted.
        sample_rate: the rate of the array arguments (required for arrays,
            ignored for files).
        profile: a profile name, file or :class:`~earmark.meters.profile.Profile`
            for the flags (default: the generic profile).
        force: explain the two even when their alignment is doubtful (the
            doubt is then the first of ``warnings``, and ``alignment_doubt``).

    Returns:
        A :class:`Transformation`.

    Raises:
        earmark.engine.files.AudioFileError: a file cannot be read (its
            message names the file).
        DoubtfulAlignmentError: (a ValueError) the offset found cannot be
            trusted: the two are probably not versions of one programme, or one
            is time-stretched or drowned in reverb (not raised with ``force``).
        ValueError: a bad array or sample rate, an unknown profile, audio too
            short to compare (under 1 s of overlap), or versions that do not
            overlap.
    """
    prof, prof_name = profile_and_name(profile)
    vb = _load(before, sample_rate, "BEFORE")
    va = _load(after, sample_rate, "AFTER")
    for v in (vb, va):
        if not np.any(v.audio):
            raise ValueError(f"{v.file or v.label} is digital silence: there is nothing to compare")
    rate = max(vb.rate, va.rate)
    xb = _resample(vb.audio, vb.rate, rate)
    xa = _resample(va.audio, va.rate, rate)
    if min(xb.shape[0], xa.shape[0]) < rate:
        raise ValueError("BEFORE and AFTER must each be at least 1 s long to be compared")
    # Align first, so that a doubtful pair is refused before anything is measured.
    alignment = align(xb, xa, rate)
    if alignment.doubtful and not force:
        raise DoubtfulAlignmentError(alignment)
    lag = alignment.offset_samples
    overlap_s = min(xb.shape[0] - max(0, -lag), xa.shape[0] - max(0, lag)) / rate
    if overlap_s < 1.0:
        raise ValueError(
            f"BEFORE and AFTER overlap for only {max(overlap_s, 0.0):.2f} s at the best offset"
            f" ({alignment.offset_ms:.0f} ms); they cannot be compared"
        )
    result = compare(xb, xa, rate, top_hz=0.45 * min(vb.rate, va.rate), alignment=alignment)
    vb, va = _analysed(vb), _analysed(va)
    warnings = list(result.warnings)
    if alignment.doubt is not None:
        warnings.insert(0, f"alignment doubtful: {alignment.doubt}")
    if vb.rate != va.rate:
        low = "BEFORE" if vb.rate < va.rate else "AFTER"
        warnings.append(
            f"{low} was resampled to {rate} Hz to be compared; the EQ curve stops at"
            f" {hz_text(0.45 * min(vb.rate, va.rate))}"
        )

    # BEFORE on AFTER's timeline (its own rate): the detectors compare them row by row.
    lag_b = int(round(result.alignment.offset_ms * vb.rate / 1000.0))
    shifted = _shift(vb.audio, lag_b, int(round(va.audio.shape[0] * vb.rate / va.rate)))
    if result.alignment.polarity < 0:
        shifted = -shifted
    # Each version's own history is the one analyze() kept; only BEFORE moved onto
    # AFTER's timeline is metered again.
    hist_b_native = vb.analysis.history
    hist_b = meter_history(shifted, vb.rate)
    hist_a = va.analysis.history
    flags_b, flags_a = _flags(vb, va, hist_b_native, hist_b, hist_a, prof)
    flags_a = tuple(_with_eq_move(f, result.moves) for f in flags_a)
    on_after = _resample(shifted, vb.rate, va.rate) if vb.rate != va.rate else shifted
    heard = residual(on_after, va.audio, va.rate, va.analysis.spectrum_long_db)
    return Transformation(
        before=vb.analysis,
        after=va.analysis,
        result=result,
        before_history=hist_b,
        after_history=hist_a,
        flags_before=flags_b,
        flags_after=flags_a,
        profile=prof_name,
        warnings=tuple(warnings),
        residual=heard,
    )


# -- loading -----------------------------------------------------------------------------


class DoubtfulAlignmentError(EarmarkError, ValueError):
    """The offset :func:`diff` found cannot be trusted; ``alignment`` says how far it got."""

    def __init__(self, alignment: Alignment) -> None:
        self.alignment = alignment
        super().__init__(f"alignment doubtful: {alignment.doubt}")


@dataclass(frozen=True, slots=True)
class _Version:
    label: str
    file: str | None
    audio: np.ndarray  # float32 (frames, channels)
    rate: int
    source: Any  # the path or the array as given: what ``analysis`` measures
    analysis: Analysis | None = None  # measured once the two are known to align


def _load(source: Source, sample_rate: int | None, label: str) -> _Version:
    if isinstance(source, str | os.PathLike):
        path = os.fspath(source)
        info = open_audio(path)
        blocks = list(iter_blocks(path, DEFAULT_BLOCK_FRAMES, dtype="float32"))
        audio = (
            np.concatenate(blocks, axis=0)
            if blocks
            else np.zeros((0, info.channels), dtype=np.float32)
        )
        return _Version(label, path, audio, info.sample_rate, path)
    if sample_rate is None:
        raise ValueError(f"{label}: sample_rate is required for an array")
    audio = np.asarray(source)
    if audio.ndim == 1:
        audio = audio[:, None]
    if audio.ndim != 2:
        raise ValueError(
            f"{label}: audio must be (frames,) or (frames, channels), got {audio.shape}"
        )
    if audio.shape[1] > 64 and audio.shape[1] > audio.shape[0]:
        raise ValueError(f"{label}: shape {audio.shape} looks like (channels, frames); pass .T")
    source = audio
    if np.issubdtype(audio.dtype, np.integer):
        audio = audio.astype(np.float64) / 2.0 ** (np.iinfo(audio.dtype).bits - 1)
    audio = np.nan_to_num(
        np.ascontiguousarray(audio, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0
    )
    return _Version(label, None, audio, int(sample_rate), source)


def _analysed(v: _Version) -> _Version:
    """``v`` measured as ``earmark analyze`` measures it."""
    if v.file is not None:
        return replace(v, analysis=analyze(v.file))
    return replace(v, analysis=analyze(v.source, sample_rate=v.rate))


def _resample(audio: np.ndarray, rate: int, target: int) -> np.ndarray:
    """``audio`` at ``target`` Hz (pedalboard's windowed-sinc resampler, latency compensated)."""
    if rate == target:
        return audio
    from pedalboard.io import StreamResampler

    r = StreamResampler(rate, target, audio.shape[1])
    head = r.process(np.ascontiguousarray(audio.T))
    tail = r.process(None)
    return np.ascontiguousarray(np.concatenate([head, tail], axis=1).T)


def _shift(audio: np.ndarray, lag: int, length: int) -> np.ndarray:
    """``out[n + lag] = audio[n]``, cut or padded with silence to ``length`` frames."""
    out = np.zeros((max(length, 0), audio.shape[1]), dtype=np.float32)
    src0 = max(0, -lag)
    dst0 = max(0, lag)
    n = min(audio.shape[0] - src0, out.shape[0] - dst0)
    if n > 0:
        out[dst0 : dst0 + n] = audio[src0 : src0 + n]
    return out


# -- profiles and flags --------------------------------------------------------------------


def profile_and_name(profile: Any) -> tuple[Any, str | None]:
    """The :class:`Profile` for a name, file, Profile or None (the default), and its name.

    Raises:
        ValueError: an unknown or malformed profile (the message names file, line, key).
    """
    try:
        from earmark.profiles import resolve_profile
    except ImportError:
        if profile is not None:
            raise ValueError("profiles are not available in this build of earmark") from None
        return None, None
    prof = resolve_profile(profile)
    return prof, getattr(prof, "name", None)


def _flags(
    vb: _Version, va: _Version, hist_b: History, hist_b_on_a: History, hist_a: History, prof: Any
) -> tuple[tuple[dict[str, Any], ...], tuple[dict[str, Any], ...]]:
    """BEFORE's flags on its own; AFTER's with BEFORE known (crushed transients, harsh highs)."""
    try:
        from earmark.meters.detectors import detect
    except ImportError:
        detect = None
    if detect is None or prof is None:
        return (
            tuple(flag_dict(f) for f in vb.analysis.flags),
            tuple(flag_dict(f) for f in va.analysis.flags),
        )
    channels_b, channels_a = vb.audio.shape[1], va.audio.shape[1]
    before = detect(hist_b, prof, vb.rate, channels_b)
    after = detect(hist_a, prof, va.rate, channels_a, before=hist_b_on_a)
    return tuple(flag_dict(f) for f in before), tuple(flag_dict(f) for f in after)


def _with_eq_move(flag: dict[str, Any], moves: Sequence[EqMove]) -> dict[str, Any]:
    """A harsh_highs flag names the EQ boosts diff found in (or reaching into) its band.

    A high shelf lifts everything above its corner, so one with its corner below the
    band's top counts; a bell counts when its centre lies within half an octave of
    the band.
    """
    band = flag.get("band_hz")
    if flag.get("code") != "harsh_highs" or not isinstance(band, list | tuple):
        return flag
    lo, hi = float(band[0]), float(band[1])
    found = [
        m
        for m in moves
        if m.gain_db > 0.0
        and (
            (m.kind == "high_shelf" and m.freq_hz <= hi)
            or (m.kind == "bell" and lo / math.sqrt(2.0) <= m.freq_hz <= hi * math.sqrt(2.0))
        )
    ]
    if not found:
        return flag
    text = _join([m.describe() for m in found])
    return {**flag, "message": f"{flag['message']}; diff found {text}"}


# -- narrative ---------------------------------------------------------------------------------


def _narrative(t: Transformation, before: str, after: str) -> list[str]:
    out: list[str] = []
    r = t.result
    b, a = t.before, t.after
    loud = t.loudness_change_lu
    if loud is not None:
        way = "louder" if loud > 0 else "quieter"
        if abs(loud) < _SAME_DB:
            out.append(f"{after} is as loud as {before} ({a.integrated_lufs:.1f} LUFS)")
        else:
            out.append(
                f"{after} is {abs(loud):.1f} dB {way} ({b.integrated_lufs:.1f} -> "
                f"{a.integrated_lufs:.1f} LUFS)"
            )
    if abs(t.gain_db) >= _SAME_DB and (loud is None or abs(t.gain_db - loud) >= 0.3):
        # Under compression the gain depends on the level: name where it was measured.
        where = "quiet passages" if r.compressed else "broadband gain"
        out.append(f"{where} {t.gain_db:+.1f} dB")
    if t.eq_moves:
        out.extend(describe_move(t, m) for m in t.eq_moves)
    else:
        out.append("no EQ move of 1 dB or more")
    fit = r.transfer.fit
    if r.compressed:
        ratio = f"{fit.ratio:.0f}:1 or more" if fit.ratio >= 20 else f"about {fit.ratio:.1f}:1"
        ratio = ratio.replace(".0:1", ":1")
        out.append(
            f"compression {ratio} above {fit.threshold_db:.0f} dBFS"
            f" (up to {r.gain_reduction_db:.0f} dB of gain reduction)"
        )
    else:
        out.append("no compression")
    if r.limiting.limited:
        tp = a.true_peak_dbtp
        ceiling = r.limiting.ceiling_dbfs
        if tp is not None and ceiling is not None and tp > ceiling + 0.5:
            out.append(
                f"limited: sample peaks held at {ceiling:.1f} dBFS, true peak {tp:+.1f} dBTP"
            )
        elif tp is not None:
            out.append(f"limited at {tp:.1f} dBTP")
        else:
            out.append("limited")
    if b.psr_median_db is not None and a.psr_median_db is not None:
        out.append(f"PSR {b.psr_median_db:.1f} -> {a.psr_median_db:.1f} dB")
    lra = _delta(b.loudness_range_lu, a.loudness_range_lu)
    if lra is not None and abs(lra) >= 0.5:
        out.append(f"LRA {b.loudness_range_lu:.1f} -> {a.loudness_range_lu:.1f} LU")
    clause = _transients_clause(t, before, after)
    if clause:
        out.append(clause)
    width = r.stereo.width_change_pct
    if width is not None and abs(width) >= _WIDTH_SAY_PCT:
        out.append(f"width {width:+.0f}%")
    if r.alignment.polarity < 0:
        out.append("polarity inverted")
    off = r.alignment.offset_ms
    if abs(off) >= 0.05:
        out.append(f"{after} starts {abs(off):.1f} ms {'later' if off > 0 else 'earlier'}")
    intro = t.flags_introduced
    if intro:
        out.append("introduces " + _join(sorted({str(f.get("code")) for f in intro})))
    gone = t.flags_removed
    if gone:
        out.append("removes " + _join(sorted({str(f.get("code")) for f in gone})))
    return out


def _transients_clause(t: Transformation, before: str, after: str) -> str | None:
    """The transients, in the measure the ``crushed_transients`` flag quotes.

    One number per fact: onset peaks over the short-term loudness at BEFORE's onsets
    (:func:`earmark.meters.onsets.transient_loss`), so a flag spanning the
    programme and this clause give the same median loss.
    """
    try:
        from earmark.meters.onsets import transient_loss
    except ImportError:
        return None
    loss = transient_loss(t.before_history, t.after_history)
    if loss is None or abs(loss.drop_db) < 1.0:
        return None
    verb = "lost" if loss.drop_db > 0 else "gained"
    return (
        f"onset peaks {verb} a median {abs(loss.drop_db):.1f} dB over the short-term loudness"
        f" ({loss.before_db:.1f} -> {loss.after_db:.1f} dB, {loss.onsets} onsets of {before})"
    )


def describe_move(t: Transformation, move: EqMove) -> str:
    """A move's phrase; a small one beside heavy compression says it may be the compressor's.

    Fast compression of a few dB or more does reshape the spectrum (the kick's
    attack passes, its body is turned down), by up to about 1.5 dB around 100-300 Hz
    in earmark's own tests with pedalboard's compressor.
    """
    text = move.describe()
    r = t.result
    if r.compressed and r.gain_reduction_db >= _HEAVY_GR_DB and abs(move.gain_db) < _SMALL_MOVE_DB:
        text += " (may be the compression's doing)"
    return text


def _join(parts: Sequence[str]) -> str:
    parts = list(parts)
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


# -- JSON ----------------------------------------------------------------------------------------


def _delta(before: float | int | None, after: float | int | None) -> float | None:
    if before is None or after is None:
        return None
    return float(after) - float(before)


def _summary(a: Analysis) -> dict[str, Any]:
    keys = (
        "file", "sample_rate", "channels", "duration_s", "integrated_lufs", "loudness_range_lu",
        "true_peak_dbtp", "sample_peak_dbfs", "plr_db", "psr_median_db", "psr_min_db",
        "crest_db", "dr", "spectral_tilt_db_per_oct", "sharpness_acum", "correlation_programme",
        "side_to_mid_db",
    )  # fmt: skip
    return _rounded({k: getattr(a, k) for k in keys})


def _alignment_dict(al: Alignment) -> dict[str, Any]:
    """The ``alignment`` object of ``diff --json``: the offset and how far to trust it."""
    return {
        "offset_ms": _r(al.offset_ms, 3),
        "polarity_inverted": al.polarity < 0,
        "correlation": _r(al.correlation, 3),
        "confidence": _r(al.confidence, 3),
        "peak_ratio": _r(al.peak_ratio, 1),
        "coarse_agrees": al.coarse_agrees,
        "doubtful": al.doubtful,
        "doubt": al.doubt,
    }


def _r(value: Any, digits: int) -> Any:
    if value is None:
        return None
    v = float(value)
    if not math.isfinite(v):
        return None
    rounded = round(v, digits)
    return 0.0 if rounded == 0.0 else rounded


def _rounded(obj: Any, key: str = "") -> Any:
    """JSON-ready copy: Hz to 0.1, correlations to 0.001, the rest to 0.01; no NaN/inf."""
    if isinstance(obj, Mapping):
        return {k: _rounded(v, str(k)) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_rounded(v, key) for v in obj]
    if isinstance(obj, bool | str) or obj is None:
        return obj
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        if key.endswith("_hz"):
            return _r(obj, 1)
        if key.startswith("correlation") or key.endswith("fraction"):
            return _r(obj, 3)
        if key.endswith("_s"):
            return _r(obj, 3)
        return _r(obj, 2)
    return obj
