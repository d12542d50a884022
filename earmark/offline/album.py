"""Album mode: the tracks of one album measured as one programme, and the tracks that
stand out from it (``earmark analyze --album``).

The album's loudness is BS.1770's gated loudness of the whole programme, not an
average of the tracks' loudness: the tracks are fed in order, back to back, through
ONE :class:`~earmark.meters.MeterBank` (its gate sees every track's 400 ms blocks
together, as it would the concatenated file), which also gives the album's LRA and
true peak. A track at another sample rate than the first is resampled to the first's
rate for the album's meters (pedalboard's resampler, as ``diff`` does); its own
analysis stays at its own rate. Tracks with different channel counts are refused
(:class:`AlbumError`): a mono track among stereo ones has no one BS.1770 loudness
in the album (measured as mono or as dual mono it differs by 3 LU).

Per track, against the album:

- ``delta_lu``: the track's integrated loudness minus the album's;
- ``neighbours_delta_lu``: minus the median of its neighbours, the four nearest
  tracks (two either side, more on one side at the album's ends; fewer in a short
  album). Inference: a median of four tracks is not moved by one track that stands
  out, so the track beside a loud one is not blamed for it;
- ``presence_delta_db`` / ``air_delta_db``: the track's long-term 2-5 kHz and
  5-10 kHz level relative to its body (250 Hz-1.6 kHz), loudness-normalised
  (:mod:`earmark.meters.tonal`), minus the album's median of the same.

An ``album_inconsistent`` flag (a warning) names a track whose loudness differs from
its neighbours' median by :data:`NEIGHBOUR_LU` or more, or whose 2-5 kHz or 5-10 kHz
balance differs from the album's median by :data:`TONAL_DB` or more (both
inference, docs/reference.md "Album consistency").

Per platform, the album gain: a platform that normalises albums applies ONE gain to
every track, computed from the album's loudness under the platform's own rules
(:mod:`earmark.offline.platforms`: how far quiet masters are raised, turn-down only,
limiters).
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from earmark.engine.files import DEFAULT_BLOCK_FRAMES, iter_blocks
from earmark.errors import EXIT_USAGE, EarmarkError
from earmark.meters import MeterBank
from earmark.meters.flags import Flag, band_text
from earmark.meters.tonal import (
    AIR_HZ,
    BODY_HZ,
    PRESENCE_HZ,
    band_sum_db,
    k_weighting_gain_db,
    relative_levels,
)
from earmark.offline.analysis import Analysis, analyze

__all__ = [
    "NEIGHBOUR_LU",
    "TONAL_DB",
    "Album",
    "AlbumError",
    "AlbumTrack",
    "PlatformGain",
    "analyze_album",
]

# Inference (no published threshold for album consistency): 3 LU is three times the
# 1 LU a delivery tolerance allows (docs/reference.md "Delivery targets"), a step a
# listener notices between consecutive tracks played at one gain.
NEIGHBOUR_LU = 3.0
# Inference: the harsh-highs rule's "warning from 3 dB added" to 2-5 kHz or 5-10 kHz
# relative to the body (the default of a profile's harshness.rise_db), applied between tracks.
TONAL_DB = 3.0
# Neighbours: the nearest this many tracks (see the module docstring).
NEIGHBOURS = 4

CODE = "album_inconsistent"


class AlbumError(EarmarkError, ValueError):
    """The tracks cannot be one album (different channel counts, no track); a usage error."""

    exit_code = EXIT_USAGE


@dataclass(frozen=True, slots=True)
class PlatformGain:
    """What a platform normalising this album applies to every track."""

    platform: str
    profile: str
    target_lufs: float
    gain_db: float | None  # the gain the platform applies; None without an album loudness
    true_peak_dbtp: float | None  # the album's true peak after the gain
    # "album": the platform applies this one gain to every track; "track": it normalises
    # each track on its own (this is what it would do to the album as one programme).
    normalisation: str = "album"

    def to_json_dict(self) -> dict[str, Any]:
        """The ``platforms`` entry of the album's JSON."""
        return {
            "platform": self.platform,
            "profile": self.profile,
            "target_lufs": _r2(self.target_lufs),
            "gain_db": _r2(self.gain_db),
            "true_peak_dbtp": _r2(self.true_peak_dbtp),
            "normalisation": self.normalisation,
        }


@dataclass(frozen=True, slots=True)
class AlbumTrack:
    """One track measured against its album."""

    file: str | None
    start_s: float  # where it starts in the album
    duration_s: float
    integrated_lufs: float | None
    loudness_range_lu: float | None
    true_peak_dbtp: float | None
    delta_lu: float | None  # track - album loudness
    neighbours_delta_lu: float | None  # track - median of its neighbours
    presence_db: float | None  # 2-5 kHz relative to the body (250 Hz-1.6 kHz)
    air_db: float | None  # 5-10 kHz relative to the body
    presence_delta_db: float | None  # presence_db - the album's median
    air_delta_db: float | None

    def to_json_dict(self) -> dict[str, Any]:
        """The ``tracks`` entry of the album's JSON."""
        return {
            "file": self.file,
            "start_s": round(self.start_s, 3),
            "duration_s": round(self.duration_s, 3),
            "integrated_lufs": _r2(self.integrated_lufs),
            "loudness_range_lu": _r2(self.loudness_range_lu),
            "true_peak_dbtp": _r2(self.true_peak_dbtp),
            "delta_lu": _r2(self.delta_lu),
            "neighbours_delta_lu": _r2(self.neighbours_delta_lu),
            "presence_db": _r2(self.presence_db),
            "air_db": _r2(self.air_db),
            "presence_delta_db": _r2(self.presence_delta_db),
            "air_delta_db": _r2(self.air_delta_db),
        }


@dataclass(frozen=True, slots=True)
class Album:
    """The album as one programme, its tracks against it, its platform gains and flags."""

    sample_rate: int
    channels: int
    duration_s: float
    integrated_lufs: float | None
    loudness_range_lu: float | None
    true_peak_dbtp: float | None
    tracks: tuple[AlbumTrack, ...]
    platforms: tuple[PlatformGain, ...]
    # album_inconsistent flags (Flag.to_dict() plus "file"), times on the album's timeline
    flags: tuple[Mapping[str, Any], ...] = ()
    warnings: tuple[str, ...] = ()

    def to_json_dict(self) -> dict[str, Any]:
        """The ``album`` object of ``earmark analyze --album --json``."""
        return {
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "duration_s": round(self.duration_s, 3),
            "integrated_lufs": _r2(self.integrated_lufs),
            "loudness_range_lu": _r2(self.loudness_range_lu),
            "true_peak_dbtp": _r2(self.true_peak_dbtp),
            "tracks": [t.to_json_dict() for t in self.tracks],
            "platforms": [p.to_json_dict() for p in self.platforms],
            "flags": [dict(f) for f in self.flags],
            "warnings": list(self.warnings),
        }


def _platform_gains(r: Any) -> tuple[PlatformGain, ...]:
    """What each platform does to the album played as an album: one gain for every track,
    from the album's loudness, under the platform's own rules (earmark.offline.platforms:
    Spotify raises only to 1 dB of true-peak headroom, YouTube only turns down ...)."""
    from earmark.offline.platforms import playback, rules

    out = []
    for rule in rules():
        o = playback(rule, r.integrated_lufs, r.true_peak_dbtp, r.plr_db, r.integrated_lufs)
        out.append(
            PlatformGain(
                rule.label,
                rule.profile or rule.name,
                rule.target_lufs,
                o.gain_db,
                o.playback_true_peak_dbtp,
                o.normalisation,
            )
        )
    return tuple(out)


Source = str | os.PathLike[str] | np.ndarray


def analyze_album(
    sources: Sequence[Source],
    sample_rate: int | None = None,
    *,
    analyses: Sequence[Analysis] | None = None,
) -> Album:
    """Measure ``sources`` as the tracks of one album, in the order given.

    Args:
        sources: audio file paths, or float arrays ``(frames, channels)`` at
            ``sample_rate`` (one track each).
        sample_rate: the arrays' rate (unused for files).
        analyses: each track's :func:`~earmark.offline.analysis.analyze` result,
            when the caller has them already (``earmark analyze`` does); else
            measured here.

    Raises:
        AlbumError: no track, or tracks with different channel counts.
        earmark.engine.files.AudioFileError: a file cannot be read.
    """
    if not sources:
        raise AlbumError("an album needs at least one track")
    if analyses is None:
        analyses = [
            analyze(s) if isinstance(s, str | os.PathLike) else analyze(s, sample_rate=sample_rate)
            for s in sources
        ]
    if len(analyses) != len(sources):
        raise ValueError("one analysis per source is needed")
    channels = {a.channels for a in analyses}
    if len(channels) > 1:
        counts = ", ".join(f"{_name(a, i)}: {a.channels}" for i, a in enumerate(analyses))
        raise AlbumError(
            f"--album: the tracks have different channel counts ({counts}); an album "
            "needs one (BS.1770 measures mono and stereo differently)"
        )
    rate = analyses[0].sample_rate
    bank = MeterBank(analyses[0].channels, rate, spectrum=False, history_s=1.0)
    starts: list[float] = []
    warnings: list[str] = []
    for i, (src, a) in enumerate(zip(sources, analyses, strict=True)):
        starts.append(bank.frames / rate)
        if a.sample_rate != rate:
            warnings.append(
                f"{_name(a, i)} is {a.sample_rate} Hz: resampled to {rate} Hz for the album's "
                "loudness, LRA and true peak"
            )
        for block in _resampled(_blocks(src), a.sample_rate, rate, a.channels):
            bank.process(block)
    r = bank.readings()
    tracks = _tracks(analyses, starts, r.integrated_lufs)
    platforms = _platform_gains(r)
    return Album(
        sample_rate=rate,
        channels=r.channels,
        duration_s=r.duration_s,
        integrated_lufs=r.integrated_lufs,
        loudness_range_lu=r.loudness_range_lu,
        true_peak_dbtp=r.true_peak_dbtp,
        tracks=tracks,
        platforms=platforms,
        flags=tuple(_flags(tracks)),
        warnings=tuple(warnings),
    )


# -- metering ---------------------------------------------------------------------------


def _blocks(source: Source) -> Iterator[np.ndarray]:
    """A track's samples in blocks, as ``analyze`` reads them."""
    if isinstance(source, str | os.PathLike):
        yield from iter_blocks(source, DEFAULT_BLOCK_FRAMES, dtype="float32")
        return
    audio = np.asarray(source)
    if not np.issubdtype(audio.dtype, np.floating):
        raise TypeError(f"album arrays must hold float samples, got dtype {audio.dtype}")
    if audio.ndim == 1:
        audio = audio.reshape(-1, 1)
    dtype = audio.dtype if audio.dtype in (np.float32, np.float64) else np.float64
    for start in range(0, audio.shape[0], DEFAULT_BLOCK_FRAMES):
        yield np.ascontiguousarray(audio[start : start + DEFAULT_BLOCK_FRAMES], dtype=dtype)


def _resampled(
    blocks: Iterator[np.ndarray], rate: int, target: int, channels: int
) -> Iterator[np.ndarray]:
    """The blocks at ``target`` Hz (pedalboard's streaming resampler, as the engine's files)."""
    if rate == target:
        yield from blocks
        return
    from pedalboard.io import StreamResampler

    resampler = StreamResampler(rate, target, channels)
    for block in blocks:
        out = resampler.process(np.ascontiguousarray(block.T, dtype=np.float32))
        if out.shape[-1]:
            yield np.ascontiguousarray(out.T)
    tail = resampler.process(None)
    if tail.shape[-1]:
        yield np.ascontiguousarray(tail.T)


# -- tracks against the album -------------------------------------------------------------


def _tracks(
    analyses: Sequence[Analysis], starts: Sequence[float], album_lufs: float | None
) -> tuple[AlbumTrack, ...]:
    lufs = [a.integrated_lufs for a in analyses]
    tonal = [_balance(a) for a in analyses]
    presence_median = _median([p for p, _ in tonal])
    air_median = _median([q for _, q in tonal])
    out = []
    for i, a in enumerate(analyses):
        neighbours = _median(_neighbours(lufs, i))
        presence, air = tonal[i]
        out.append(
            AlbumTrack(
                file=a.file,
                start_s=starts[i],
                duration_s=a.duration_s,
                integrated_lufs=a.integrated_lufs,
                loudness_range_lu=a.loudness_range_lu,
                true_peak_dbtp=a.true_peak_dbtp,
                delta_lu=_minus(a.integrated_lufs, album_lufs),
                neighbours_delta_lu=_minus(a.integrated_lufs, neighbours),
                presence_db=presence,
                air_db=air,
                presence_delta_db=_minus(presence, presence_median),
                air_delta_db=_minus(air, air_median),
            )
        )
    return tuple(out)


def _near(n: int, i: int) -> list[int]:
    """Track ``i``'s neighbours: the :data:`NEIGHBOURS` nearest tracks, in album order."""
    others = sorted((j for j in range(n) if j != i), key=lambda j: (abs(j - i), j))
    return sorted(others[:NEIGHBOURS])


def _neighbours(values: Sequence[float | None], i: int) -> list[float | None]:
    return [values[j] for j in _near(len(values), i)]


def _balance(a: Analysis) -> tuple[float | None, float | None]:
    """2-5 kHz and 5-10 kHz relative to the body, from the long-term spectrum (dB)."""
    if not a.band_hz:
        return None, None
    long_db = np.array([np.nan if v is None else v for v in a.spectrum_long_db])
    rel = relative_levels(long_db, k_weighting_gain_db(a.band_hz, a.sample_rate))
    body = float(band_sum_db(rel, a.band_hz, *BODY_HZ))
    out = []
    for lo, hi in (PRESENCE_HZ, AIR_HZ):
        v = float(band_sum_db(rel, a.band_hz, lo, hi)) - body
        out.append(v if np.isfinite(v) else None)
    return out[0], out[1]


def _flags(tracks: Sequence[AlbumTrack]) -> list[dict[str, Any]]:
    out = []
    n = len(tracks)
    for i, t in enumerate(tracks):
        label = f"track {i + 1} ({os.path.basename(t.file) if t.file else 'array'})"
        d = t.neighbours_delta_lu
        if d is not None and abs(d) >= NEIGHBOUR_LU and t.integrated_lufs is not None:
            near = [j + 1 for j in _near(n, i)]
            median = t.integrated_lufs - d
            who = "its neighbour" if len(near) == 1 else "the median of its neighbours"
            message = (
                f"{label} at {t.integrated_lufs:.1f} LUFS is {abs(d):.1f} LU "
                f"{'louder' if d > 0 else 'quieter'} than {who} (track"
                f"{'s' if len(near) > 1 else ''} {_list(near)}: {median:.1f} LUFS); "
                "played as an album, at one gain, it stands out"
            )
            out.append(_flag(t, d, NEIGHBOUR_LU, "LU", None, message))
        for delta, value, band in (
            (t.presence_delta_db, t.presence_db, PRESENCE_HZ),
            (t.air_delta_db, t.air_db, AIR_HZ),
        ):
            if delta is None or value is None or abs(delta) < TONAL_DB:
                continue
            message = (
                f"{label} is {abs(delta):.1f} dB {'brighter' if delta > 0 else 'duller'} in "
                f"{band_text(*band)} relative to its body ({band_text(*BODY_HZ)}) than the "
                f"album's median ({value:+.1f} dB against {value - delta:+.1f} dB, "
                "loudness-normalised long-term spectra)"
            )
            out.append(_flag(t, delta, TONAL_DB, "dB", band, message))
    return out


def _flag(
    t: AlbumTrack,
    value: float,
    threshold: float,
    unit: str,
    band: tuple[float, float] | None,
    message: str,
) -> dict[str, Any]:
    flag = Flag(
        code=CODE,
        severity="warning",
        start_s=t.start_s,
        end_s=t.start_s + t.duration_s,
        value=value,
        threshold=threshold if value > 0 else -threshold,
        unit=unit,
        band_hz=band,
        message=message,
    )
    return {**flag.to_dict(), "file": t.file}


# -- small helpers ------------------------------------------------------------------------


def _median(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _list(numbers: Sequence[int]) -> str:
    return ", ".join(str(n) for n in numbers)


def _name(a: Analysis, i: int) -> str:
    return os.path.basename(a.file) if a.file else f"track {i + 1}"


def _r2(value: float | None) -> float | None:
    if value is None or not np.isfinite(value):
        return None
    rounded = round(float(value), 2)
    return 0.0 if rounded == 0.0 else rounded
