"""Offline analysis: a whole file or array through one MeterBank.

``analyze`` is the Python face of ``earmark analyze``: it streams a file in
blocks (memory does not grow with its length) or an array in the same blocks,
so a file and the array read from it give identical numbers, and returns an
:class:`Analysis` whose :meth:`~Analysis.to_json_dict` is the JSON contract of
DESIGN.md (keys in that order, rounded, ``null`` instead of ``-inf``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from earmark.engine.files import DEFAULT_BLOCK_FRAMES, iter_blocks, open_audio
from earmark.meters import History, MeterBank, Readings
from earmark.meters.detectors import Detector
from earmark.meters.profile import Profile

__all__ = ["Analysis", "analyze"]


# BS.1770 momentary block: nothing shorter has a loudness.
_MIN_LOUDNESS_S = 0.4
# The history is kept for the whole programme: its length plus a margin (the last
# partial row); a file that does not say its length (MP3 without a length header)
# keeps its last hour. At 10 Hz a row of every reading and a 1/3-octave spectrum is
# about 400 bytes: 1.5 MB an hour.
HISTORY_MARGIN_S = 10.0
UNKNOWN_LENGTH_HISTORY_S = 3600.0

# Keys of the JSON contract (DESIGN.md, Command line), in their order.
CONTRACT_KEYS: tuple[str, ...] = (
    "file",
    "sample_rate",
    "channels",
    "duration_s",
    "integrated_lufs",
    "loudness_range_lu",
    "max_momentary_lufs",
    "max_short_term_lufs",
    "true_peak_dbtp",
    "sample_peak_dbfs",
    "plr_db",
    "psr_min_db",
    "crest_db",
    "dr",
    "spectral_tilt_db_per_oct",
    "correlation_min",
    "flags",
)


@dataclass(frozen=True, slots=True)
class Analysis:
    """What earmark measured over a whole programme.

    Levels are in the unit their name carries; ``None`` means undefined
    (silence, shorter than 400 ms for loudness, mono for stereo measures),
    never ``-inf``. The fields up to ``flags`` are the ``analyze --json``
    contract; the rest are extras that may grow.
    """

    file: str | None  # path as given; None for an array
    sample_rate: int
    channels: int
    duration_s: float
    integrated_lufs: float | None
    loudness_range_lu: float | None
    max_momentary_lufs: float | None
    max_short_term_lufs: float | None
    true_peak_dbtp: float | None
    sample_peak_dbfs: float | None
    plr_db: float | None
    psr_min_db: float | None
    crest_db: float | None
    dr: int | None
    spectral_tilt_db_per_oct: float | None
    correlation_min: float | None
    # Explained flags (DESIGN.md "Detectors and profiles"): Flag.to_dict() dicts,
    # in order of start.
    flags: tuple[Mapping[str, Any], ...] = ()

    # -- extras ---------------------------------------------------------------
    rms_dbfs: float | None = None
    psr_median_db: float | None = None
    correlation_programme: float | None = None
    side_to_mid_db: float | None = None
    # DIN 45692 sharpness of the long-term spectrum, heard at the K-20 listening
    # loudness (earmark.meters.sharpness): the balance, independent of the level.
    sharpness_acum: float | None = None
    true_peak_channels_dbtp: tuple[float | None, ...] = ()
    sample_peak_channels_dbfs: tuple[float | None, ...] = ()
    non_finite_samples: int = 0  # NaN/Inf samples metered as 0
    format: str | None = None  # libsndfile format and subtype of a file
    subtype: str | None = None
    band_hz: tuple[float, ...] = ()  # 1/3-octave centres
    spectrum_long_db: tuple[float | None, ...] = ()  # long-term band level, dB re full-scale sine
    warnings: tuple[str, ...] = ()  # readable, but worth knowing (one line each)
    profile: str | None = None  # name of the profile the flags were judged against
    readings: Readings | None = field(default=None, repr=False, compare=False)
    # The whole programme's 10 Hz rows (loudness, PSR, spectra ...), kept so that a
    # report or a diff plots and judges them without metering the file again.
    history: History | None = field(default=None, repr=False, compare=False)

    @property
    def problems(self) -> tuple[Mapping[str, Any], ...]:
        """The flags of severity ``problem`` (what ``--strict`` fails on)."""
        return tuple(f for f in self.flags if f.get("severity") == "problem")

    def to_json_dict(self) -> dict[str, Any]:
        """The JSON object of ``earmark analyze --json``.

        Contract keys first, in order, then the extras. dB and LU values are
        rounded to 0.01, correlations to 0.001, durations to 1 ms; undefined
        values are ``None`` (JSON ``null``), never NaN or infinity.
        """
        out: dict[str, Any] = {}
        for key in CONTRACT_KEYS:
            value = getattr(self, key)
            if key == "flags":
                out[key] = [_json_value("", dict(f)) for f in value]
            else:
                out[key] = _round(key, value)
        for key in (
            "rms_dbfs",
            "psr_median_db",
            "correlation_programme",
            "side_to_mid_db",
            "sharpness_acum",
            "true_peak_channels_dbtp",
            "sample_peak_channels_dbfs",
            "non_finite_samples",
            "format",
            "subtype",
            "profile",
        ):
            out[key] = _round(key, getattr(self, key))
        out["spectrum"] = {
            "band_hz": [_round_to(f, 1) for f in self.band_hz],
            "long_term_db": [_round_to(v, 1) for v in self.spectrum_long_db],
        }
        out["warnings"] = list(self.warnings)
        return out


def analyze(
    source: str | os.PathLike[str] | np.ndarray,
    sample_rate: int | None = None,
    profile: Profile | str | os.PathLike[str] | None = None,
) -> Analysis:
    """Measure a whole file or array with every earmark meter.

    Args:
        source: a path to an audio file libsndfile reads (WAV, FLAC, Ogg,
            AIFF, MP3, ...), or an array shaped ``(frames,)`` or
            ``(frames, channels)``. Float arrays are full scale at 1.0;
            integer arrays are PCM and scaled as libsndfile scales them.
            Channels follow the usual orders (5.1 as L R C LFE Ls Rs, the LFE
            excluded from loudness).
        sample_rate: required for an array (8000-384000 Hz); for a file, leave
            it None or give the file's own rate (earmark does not resample).
        profile: what the flags are judged against: a
            :class:`~earmark.meters.profile.Profile`, a profile name ("jazz",
            "pop+spotify") or a profile file; None uses the default profile
            (only unambiguous problems: overs, clipping, strong over-compression).

    Returns:
        An :class:`Analysis`. NaN/Inf samples are metered as 0 and counted in
        ``non_finite_samples``; such things are also explained in ``warnings``.

    Raises:
        earmark.engine.files.AudioFileError: the file cannot be read (missing,
            not audio, truncated, unsupported rate...); a ``ValueError``.
        ValueError: a bad array shape, a missing or unsupported sample rate.
        TypeError: an array that does not hold audio samples.
        earmark.errors.PresetError: the profile is missing or malformed (a
            ``ValueError`` naming the file, line and key).
    """
    from earmark.profiles import resolve_profile

    prof = resolve_profile(profile)
    if isinstance(source, str | os.PathLike):
        return _analyze_file(os.fspath(source), sample_rate, prof)
    return _analyze_array(source, sample_rate, prof)


def _metered(bank: MeterBank, blocks: Iterator[np.ndarray], profile: Profile) -> tuple[Any, ...]:
    """Meter the blocks and run the detectors on the history rows as they come, as live."""
    det = Detector(profile, bank.sample_rate, bank.channels)
    for block in blocks:
        bank.process(block)
        det.update(bank.history(since=det.next_row))
    flags = det.finish()
    return tuple(f.to_dict() for f in flags)


def _analyze_file(path: str, sample_rate: int | None, profile: Profile) -> Analysis:
    info = open_audio(path)
    if sample_rate is not None and sample_rate != info.sample_rate:
        raise ValueError(
            f"{path}: the file is {info.sample_rate} Hz, not {sample_rate} Hz"
            " (earmark does not resample; leave sample_rate=None for files)"
        )
    seconds = info.duration_s if info.duration_s is not None else UNKNOWN_LENGTH_HISTORY_S
    bank = MeterBank(info.channels, info.sample_rate, history_s=seconds + HISTORY_MARGIN_S)
    flags = _metered(bank, iter_blocks(path, DEFAULT_BLOCK_FRAMES, dtype="float32"), profile)
    return _result(
        bank.readings(),
        path,
        info.format,
        info.subtype,
        info.warnings,
        flags,
        profile.name,
        bank.history(),
    )


def _analyze_array(source: Any, sample_rate: int | None, profile: Profile) -> Analysis:
    audio = np.asarray(source)
    if sample_rate is None:
        raise ValueError("sample_rate is required when analysing an array")
    if isinstance(sample_rate, float) and sample_rate.is_integer():
        sample_rate = int(sample_rate)
    if not isinstance(sample_rate, int | np.integer):
        raise TypeError(f"sample_rate must be an integer number of Hz, got {sample_rate!r}")
    if audio.ndim == 1:
        audio = audio.reshape(-1, 1)
    if audio.ndim != 2:
        raise ValueError(
            f"audio must be shaped (frames,) or (frames, channels), got shape {audio.shape}"
        )
    if audio.shape[1] > 64 and audio.shape[1] > audio.shape[0]:
        raise ValueError(
            f"audio of shape {audio.shape} looks like (channels, frames);"
            " earmark expects (frames, channels): pass array.T"
        )
    if not (np.issubdtype(audio.dtype, np.floating) or np.issubdtype(audio.dtype, np.integer)):
        raise TypeError(f"audio samples must be float or integer PCM, got dtype {audio.dtype}")
    seconds = audio.shape[0] / int(sample_rate)
    bank = MeterBank(int(audio.shape[1]), int(sample_rate), history_s=seconds + HISTORY_MARGIN_S)
    flags = _metered(bank, _array_blocks(audio), profile)
    return _result(bank.readings(), None, None, None, (), flags, profile.name, bank.history())


def meter_history(audio: np.ndarray, sample_rate: int) -> History:
    """The 10 Hz history of an array (frames, channels), metered in the blocks ``analyze``
    uses, without the detectors (``diff`` meters BEFORE shifted onto AFTER's timeline)."""
    return meter_array(audio, sample_rate)[1]


def meter_array(audio: np.ndarray, sample_rate: int) -> tuple[Readings, History]:
    """The readings and 10 Hz history of an array (frames, channels), metered in the blocks
    ``analyze`` uses, without the detectors."""
    seconds = audio.shape[0] / sample_rate
    bank = MeterBank(audio.shape[1], sample_rate, history_s=seconds + HISTORY_MARGIN_S)
    for block in _array_blocks(audio):
        bank.process(block)
    return bank.readings(), bank.history()


def _array_blocks(audio: np.ndarray) -> Iterator[np.ndarray]:
    """The array in the blocks a file is read in, as float32/float64."""
    if audio.dtype in (np.float32, np.float64):
        scale, dtype = None, audio.dtype
    elif np.issubdtype(audio.dtype, np.floating):
        scale, dtype = None, np.dtype(np.float64)
    else:
        iinfo = np.iinfo(audio.dtype)
        # libsndfile's convention: full scale is 2**(bits-1); unsigned PCM is offset.
        scale, dtype = 2.0 ** (iinfo.bits - 1), np.dtype(np.float64)
    for start in range(0, audio.shape[0], DEFAULT_BLOCK_FRAMES):
        block = audio[start : start + DEFAULT_BLOCK_FRAMES]
        if scale is not None:
            offset = scale if np.issubdtype(audio.dtype, np.unsignedinteger) else 0.0
            block = (block.astype(np.float64) - offset) / scale
        yield np.ascontiguousarray(block, dtype=dtype)


def _result(
    r: Readings,
    file: str | None,
    fmt: str | None,
    subtype: str | None,
    file_warnings: tuple[str, ...],
    flags: tuple[Mapping[str, Any], ...] = (),
    profile: str | None = None,
    history: History | None = None,
) -> Analysis:
    return Analysis(
        file=file,
        sample_rate=r.sample_rate,
        channels=r.channels,
        duration_s=r.duration_s,
        integrated_lufs=r.integrated_lufs,
        loudness_range_lu=r.loudness_range_lu,
        max_momentary_lufs=r.max_momentary_lufs,
        max_short_term_lufs=r.max_short_term_lufs,
        true_peak_dbtp=r.true_peak_dbtp,
        sample_peak_dbfs=r.sample_peak_dbfs,
        plr_db=r.plr_db,
        psr_min_db=r.psr_min_db,
        crest_db=r.crest_db,
        dr=r.dr,
        spectral_tilt_db_per_oct=r.spectral_tilt_db_per_oct,
        correlation_min=r.correlation_min,
        flags=flags,
        rms_dbfs=r.rms_dbfs,
        psr_median_db=r.psr_median_db,
        correlation_programme=r.correlation_programme,
        side_to_mid_db=r.side_to_mid_db,
        sharpness_acum=r.sharpness_acum,
        true_peak_channels_dbtp=r.true_peak_channels_dbtp,
        sample_peak_channels_dbfs=r.sample_peak_channels_dbfs,
        non_finite_samples=r.non_finite_samples,
        format=fmt,
        subtype=subtype,
        band_hz=r.band_hz,
        spectrum_long_db=r.spectrum_long_db,
        warnings=(*file_warnings, *_warnings(r)),
        profile=profile,
        readings=r,
        history=history,
    )


def _warnings(r: Readings) -> list[str]:
    out = []
    if r.non_finite_samples:
        out.append(
            f"{r.non_finite_samples} non-finite sample(s) (NaN/Inf) were metered as 0;"
            " the audio is damaged"
        )
    if r.duration_s == 0.0:
        out.append("no audio frames: nothing to measure")
    elif r.sample_peak_dbfs is None:
        out.append("digital silence: loudness and peaks are undefined")
    elif r.duration_s < _MIN_LOUDNESS_S:
        out.append(
            f"only {r.duration_s * 1000:.0f} ms long: loudness needs at least 400 ms"
            " and is undefined"
        )
    elif r.integrated_lufs is None:
        out.append("below the -70 LUFS absolute gate throughout: integrated loudness is undefined")
    return out


# -- JSON rounding ---------------------------------------------------------------

_DB_SUFFIXES = ("_lufs", "_lu", "_db", "_dbtp", "_dbfs", "_db_per_oct")


def _round(key: str, value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_round(key, v) for v in value]
    return _json_value(key, value)


def _json_value(key: str, value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _json_value(k, v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_json_value(key, v) for v in value]
    if isinstance(value, bool | str) or value is None:
        return value
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        if key == "duration_s" or key.endswith("_s"):
            return _round_to(value, 3)
        if key.startswith("correlation"):
            return _round_to(value, 3)
        if key.endswith(_DB_SUFFIXES) or key.endswith("_acum"):
            return _round_to(value, 2)
        return _round_to(value, 4)
    return value


def _round_to(value: float | None, digits: int) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    rounded = round(float(value), digits)
    return 0.0 if rounded == 0.0 else rounded  # no "-0.0" in JSON
