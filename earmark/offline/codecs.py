"""What lossy delivery does to a master: encode, decode, re-measure (issue 19, offline).

Each :class:`Codec` is one setting a streaming service or a listener's player is
likely to use: AAC-LC, Opus and MP3 (LAME) through PyAV (FFmpeg's encoders, in
memory) and Ogg Vorbis through libsndfile (:mod:`soundfile`, in memory).
:func:`round_trip` turns float samples into the decoded float samples, with the
encoder's delay (priming) removed so the two line up to the sample, and
:func:`codec_results` measures, per codec, with earmark's own meters
(:func:`earmark.offline.analysis.analyze`): the decoded true peak, the samples
that clip on decode (and where), the change of integrated loudness, the level
lost above 16 kHz and the highest true-peak ceiling that keeps the decoded audio
under full scale, found by encoding again at trial gains.
:func:`codec_flags` turns the results into ``codec_clipping`` flags.

Opus only works at 48 kHz (RFC 6716; FFmpeg's libopus encoder takes 48, 24, 16,
12 and 8 kHz): other rates go through FFmpeg's resampler in PyAV
(``av.AudioResampler``, to 48 kHz before the encoder, back to the programme's rate
after the decoder). That resampler also converts the sample format each encoder
wants, so one library does both in the same pass, and its default filter is
delay-compensated; whatever delay is left is measured and removed with the codec's.

The delay is found by measurement: the cross-correlation of the original and the
decoded mono sums over the first :data:`DELAY_PROGRAMME_S` seconds, peak searched
within +/- ``engine.codec.MAX_DELAY_FRAMES``. (Measured with PyAV 18 / FFmpeg: ADTS AAC
keeps its 1024 priming frames, Ogg Opus's pre-skip and LAME's gapless header are
already removed by the decoders, libsndfile's Vorbis has none; the correlation
finds all of them without a table.)
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# The codec table and the delay measurement live with the live monitor's streaming
# codec (earmark.engine.codec): one home for what a codec name means.
from earmark.engine.codec import (
    CODECS,
    DEFAULT_CODECS,
    DELAY_PROGRAMME_S,
    Codec,
    measure_delay,
    parse_codecs,
)

__all__ = [
    "CODECS",
    "DEFAULT_CODECS",
    "Codec",
    "CodecResult",
    "codec_flags",
    "codec_results",
    "measure_delay",
    "parse_codecs",
    "round_trip",
]

# "Above 16 kHz": the 1/3-octave bands centred at 16 kHz and up (the 16 kHz band
# starts at 14.1 kHz), where low-bitrate encoders cut first.
HF_FROM_HZ = 16000.0
# A band the decoded audio no longer has at all reads at this floor (inference: far
# under any dithered 24-bit programme), so a full cut still has a finite loss.
HF_FLOOR_DB = -120.0
# Ceiling search (inference): 0.1 dB steps from 0 dBTP down to -6 dBTP. Mastering
# ceilings for lossy delivery are usually quoted between -2 and -0.1 dBTP; 6 dB
# leaves room for a very hot master through a low bitrate.
CEILING_TOP_DBTP = 0.0
CEILING_BOTTOM_DBTP = -6.0
CEILING_STEP_DB = 0.1
# A sample clips on decode when its magnitude reaches full scale as float.
FULL_SCALE = 1.0
# Clipped samples closer than this are one run (inference: 10 ms, one 'click').
RUN_GAP_S = 0.01


# -- encode and decode --------------------------------------------------------------


def _layout(channels: int) -> str:
    if channels == 1:
        return "mono"
    if channels == 2:
        return "stereo"
    raise ValueError(f"codecs are measured on mono or stereo audio, not {channels} channels")


def _av_round_trip(x: np.ndarray, sample_rate: int, codec: Codec) -> tuple[np.ndarray, int]:
    """PyAV encode and decode in memory: (decoded frames x channels, encoded bytes)."""
    import av

    layout = _layout(x.shape[1])
    enc_rate = codec.rate_hz or sample_rate
    buf = io.BytesIO()
    with av.open(buf, "w", format=codec.container) as out:
        stream = out.add_stream(codec.codec, rate=enc_rate, layout=layout)
        stream.bit_rate = codec.bitrate_kbps * 1000
        ctx = stream.codec_context
        # The resampler converts format and rate and cuts the frames the encoder wants.
        resampler = av.AudioResampler(
            format=ctx.format, layout=layout, rate=enc_rate, frame_size=ctx.frame_size or None
        )
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(x.T, dtype=np.float32), format="fltp", layout=layout
        )
        frame.sample_rate = sample_rate
        for piece in [*resampler.resample(frame), *resampler.resample(None)]:
            out.mux(stream.encode(piece))
        out.mux(stream.encode(None))
    size = buf.tell()
    buf.seek(0)
    parts: list[np.ndarray] = []
    with av.open(buf, "r") as inp:
        back = av.AudioResampler(format="fltp", layout=layout, rate=sample_rate)
        for decoded in inp.decode(inp.streams.audio[0]):
            parts.extend(f.to_ndarray() for f in back.resample(decoded))
        parts.extend(f.to_ndarray() for f in back.resample(None))
    y = np.concatenate(parts, axis=1).T if parts else np.zeros((0, x.shape[1]))
    return np.asarray(y, dtype=np.float32), size


def _vorbis_once(x: np.ndarray, sample_rate: int, quality: float) -> tuple[np.ndarray, int]:
    import soundfile as sf

    buf = io.BytesIO()
    # libsndfile's compression level is 1 - Vorbis quality (its ogg_vorbis.c).
    level = min(1.0, max(0.0, 1.0 - quality))
    sf.write(buf, x, sample_rate, format="OGG", subtype="VORBIS", compression_level=level)
    size = buf.tell()
    buf.seek(0)
    y, _ = sf.read(buf, dtype="float32", always_2d=True)
    return y, size


def _vorbis_quality(x: np.ndarray, sample_rate: int, codec: Codec) -> float:
    """The Vorbis quality whose rate on this programme is nearest the codec's.

    Starts at the nominal quality and takes up to two secant steps on the rate
    measured on the first :data:`DELAY_PROGRAMME_S` seconds (the rate of VBR
    depends on the music, so a fixed quality can land far off: q0.9 gave 251 kb/s
    on the demo master).
    """
    excerpt = x[: int(DELAY_PROGRAMME_S * sample_rate)]
    seconds = max(len(excerpt) / sample_rate, 1e-9)
    target = float(codec.bitrate_kbps)

    def rate(q: float) -> float:
        return _vorbis_once(excerpt, sample_rate, q)[1] * 8 / seconds / 1000

    q0, r0 = codec.vorbis_quality, rate(codec.vorbis_quality)
    best = (abs(r0 - target), q0)
    q1 = min(1.0, max(-0.1, q0 + (0.1 if r0 < target else -0.1)))
    for _ in range(2):
        if q1 == q0:
            break
        r1 = rate(q1)
        best = min(best, (abs(r1 - target), q1))
        if abs(r1 - target) <= 0.05 * target or r1 == r0:
            break
        q2 = min(1.0, max(-0.1, q1 + (target - r1) * (q1 - q0) / (r1 - r0)))
        q0, r0, q1 = q1, r1, round(q2, 3)
    return best[1]


def _encode_decode(
    x: np.ndarray, sample_rate: int, codec: Codec, vorbis_quality: float | None
) -> tuple[np.ndarray, int]:
    if codec.engine == "vorbis":
        return _vorbis_once(x, sample_rate, vorbis_quality or codec.vorbis_quality)
    return _av_round_trip(x, sample_rate, codec)


def _aligned(y: np.ndarray, delay: int, frames: int) -> np.ndarray:
    """``y`` moved back by ``delay`` frames and cut or padded with zeros to ``frames``."""
    y = y[delay:] if delay >= 0 else np.vstack([np.zeros((-delay, y.shape[1]), y.dtype), y])
    if len(y) < frames:
        y = np.vstack([y, np.zeros((frames - len(y), y.shape[1]), y.dtype)])
    return np.ascontiguousarray(y[:frames])


def _as_frames(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[1] not in (1, 2):
        raise ValueError(f"expected (frames,) or (frames, 1|2) audio, got shape {x.shape}")
    return x


def round_trip(
    x: np.ndarray, sample_rate: int, codec: Codec | str
) -> tuple[np.ndarray, float, int]:
    """Encode and decode ``x`` in memory; float in, float out, lined up to the sample.

    Returns:
        (decoded audio shaped like ``x`` as ``(frames, channels)`` float32, the
        encoded rate in kb/s, the delay removed in frames).
    """
    c = CODECS[codec] if isinstance(codec, str) else codec
    x = _as_frames(x)
    quality = _vorbis_quality(x, sample_rate, c) if c.engine == "vorbis" else None
    y, size = _encode_decode(x, sample_rate, c, quality)
    delay = measure_delay(x, y, sample_rate)
    kbps = size * 8 / max(len(x) / sample_rate, 1e-9) / 1000
    return _aligned(y, delay, len(x)), kbps, delay


# -- measures -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CodecResult:
    """One codec's effect on a programme (dB/LU values in the unit their name carries).

    ``clipped_between_s`` is (first, last) second of a sample at or over full scale,
    None without one; ``clip_runs`` counts groups of clipped samples less than
    :data:`RUN_GAP_S` apart. ``safe_ceiling_dbtp`` is the highest true-peak ceiling
    (of the original, in 0.1 dB steps down to :data:`CEILING_BOTTOM_DBTP`) whose
    decoded audio has no clipped sample, None when even the bottom clips;
    ``safe_ceiling_true_peak_dbtp`` is the decoded true peak at that ceiling.
    """

    name: str
    label: str
    bitrate_kbps: int
    measured_kbps: float
    delay_frames: int
    true_peak_dbtp: float | None
    original_true_peak_dbtp: float | None
    clipped_samples: int
    clipped_between_s: tuple[float, float] | None
    clip_runs: int
    loudness_change_lu: float | None
    hf_loss_db: float | None
    safe_ceiling_dbtp: float | None
    safe_ceiling_true_peak_dbtp: float | None
    duration_s: float = 0.0

    def to_json_dict(self) -> dict[str, Any]:
        """The object of the ``codecs`` list in ``--json`` (rounded to 0.01 dB)."""

        def r(v: float | None) -> float | None:
            return None if v is None else round(float(v), 2)

        return {
            "name": self.name,
            "bitrate_kbps": self.bitrate_kbps,
            "true_peak_dbtp": r(self.true_peak_dbtp),
            "clipped_samples": self.clipped_samples,
            "clipped_between_s": None
            if self.clipped_between_s is None
            else [round(t, 3) for t in self.clipped_between_s],
            "loudness_change_lu": r(self.loudness_change_lu),
            "hf_loss_db": r(self.hf_loss_db),
            "safe_ceiling_dbtp": r(self.safe_ceiling_dbtp),
            "label": self.label,
            "measured_kbps": round(self.measured_kbps, 1),
            "delay_frames": self.delay_frames,
            "clip_runs": self.clip_runs,
            "safe_ceiling_true_peak_dbtp": r(self.safe_ceiling_true_peak_dbtp),
        }


def _clips(y: np.ndarray, sample_rate: int) -> tuple[int, tuple[float, float] | None, int]:
    """(clipped samples, (first, last) second, runs)."""
    hit = np.abs(y) >= FULL_SCALE
    count = int(hit.sum())
    if not count:
        return 0, None, 0
    frames = np.flatnonzero(hit.any(axis=1))
    runs = 1 + int(np.count_nonzero(np.diff(frames) > RUN_GAP_S * sample_rate))
    return count, (float(frames[0] / sample_rate), float(frames[-1] / sample_rate)), runs


def _hf_level_db(band_hz: Sequence[float], levels: Sequence[float | None]) -> float | None:
    power = 0.0
    any_band = False
    for hz, level in zip(band_hz, levels, strict=False):
        if hz >= HF_FROM_HZ:
            any_band = True
            power += 10.0 ** (max(level if level is not None else -math.inf, HF_FLOOR_DB) / 10.0)
    return 10.0 * math.log10(power) if any_band and power > 0 else None


def _true_peak_dbtp(y: np.ndarray, sample_rate: int) -> float | None:
    from earmark.meters import MeterBank

    bank = MeterBank(y.shape[1], sample_rate, spectrum=False, history_s=1.0)
    bank.process(y)
    return bank.readings().true_peak_dbtp


def _safe_ceiling(
    x: np.ndarray,
    sample_rate: int,
    codec: Codec,
    original_tp_dbtp: float,
    quality: float | None,
) -> tuple[float | None, float | None]:
    """Bisection over the ceilings (0.1 dB grid): the highest one that decodes unclipped.

    Every ceiling returned was encoded and decoded and measured clean (the bisection
    keeps the clean end), so it holds even if a codec is not monotonic in level.
    """

    def decoded_at(ceiling: float) -> np.ndarray:
        gain = 10.0 ** ((ceiling - original_tp_dbtp) / 20.0)
        return _encode_decode(x * np.float32(gain), sample_rate, codec, quality)[0]

    steps = round((CEILING_TOP_DBTP - CEILING_BOTTOM_DBTP) / CEILING_STEP_DB)

    def ceiling_of(i: int) -> float:
        return round(CEILING_BOTTOM_DBTP + i * CEILING_STEP_DB, 1)

    top = decoded_at(ceiling_of(steps))
    if not _clips(top, sample_rate)[0]:
        return ceiling_of(steps), _true_peak_dbtp(top, sample_rate)
    bottom = decoded_at(ceiling_of(0))
    if _clips(bottom, sample_rate)[0]:
        return None, None
    lo, hi, clean = 0, steps, bottom  # lo decodes clean, hi clips
    while hi - lo > 1:
        mid = (lo + hi) // 2
        y = decoded_at(ceiling_of(mid))
        if _clips(y, sample_rate)[0]:
            hi = mid
        else:
            lo, clean = mid, y
    return ceiling_of(lo), _true_peak_dbtp(clean, sample_rate)


def codec_result(
    x: np.ndarray, sample_rate: int, codec: Codec | str, original: Any = None
) -> CodecResult:
    """Measure what ``codec`` does to ``x`` (see the module docstring).

    ``original`` is ``x``'s :class:`~earmark.offline.analysis.Analysis` when the
    caller has it (it is measured otherwise).
    """
    from earmark.offline.analysis import analyze

    c = CODECS[codec] if isinstance(codec, str) else codec
    x = _as_frames(x)
    if original is None:
        original = analyze(x, sample_rate=sample_rate)
    quality = _vorbis_quality(x, sample_rate, c) if c.engine == "vorbis" else None
    raw, size = _encode_decode(x, sample_rate, c, quality)
    delay = measure_delay(x, raw, sample_rate)
    y = _aligned(raw, delay, len(x))
    decoded = analyze(y, sample_rate=sample_rate)
    clipped, between, runs = _clips(raw, sample_rate)
    if between is not None:  # times on the original's timeline
        between = (max(between[0] - delay / sample_rate, 0.0), between[1] - delay / sample_rate)
    loud_change = (
        None
        if original.integrated_lufs is None or decoded.integrated_lufs is None
        else decoded.integrated_lufs - original.integrated_lufs
    )
    hf_before = _hf_level_db(original.band_hz, original.spectrum_long_db)
    hf_after = _hf_level_db(decoded.band_hz, decoded.spectrum_long_db)
    hf_loss = None if hf_before is None or hf_after is None else hf_before - hf_after
    ceiling, ceiling_tp = (
        _safe_ceiling(x, sample_rate, c, original.true_peak_dbtp, quality)
        if original.true_peak_dbtp is not None
        else (None, None)
    )
    return CodecResult(
        name=c.name,
        label=c.label,
        bitrate_kbps=c.bitrate_kbps,
        measured_kbps=size * 8 / max(len(x) / sample_rate, 1e-9) / 1000,
        delay_frames=delay,
        true_peak_dbtp=decoded.true_peak_dbtp,
        original_true_peak_dbtp=original.true_peak_dbtp,
        clipped_samples=clipped,
        clipped_between_s=between,
        clip_runs=runs,
        loudness_change_lu=loud_change,
        hf_loss_db=hf_loss,
        safe_ceiling_dbtp=ceiling,
        safe_ceiling_true_peak_dbtp=ceiling_tp,
        duration_s=len(x) / sample_rate,
    )


def codec_results(
    x: np.ndarray,
    sample_rate: int,
    codecs: Sequence[Codec | str] | None = None,
    original: Any = None,
) -> list[CodecResult]:
    """:func:`codec_result` for each codec (default: all of :data:`CODECS`), in order."""
    from earmark.offline.analysis import analyze

    x = _as_frames(x)
    if original is None:
        original = analyze(x, sample_rate=sample_rate)
    chosen = list(CODECS.values()) if codecs is None else list(codecs)
    return [codec_result(x, sample_rate, c, original) for c in chosen]


def codec_flags(results: Sequence[CodecResult], ceiling_dbtp: float | None = None) -> list[Any]:
    """``codec_clipping`` flags, one per codec that clips or overshoots the ceiling.

    Severity (inference): ``problem`` when samples clip on decode (a player's
    integer output or a fixed-point DAC path clips them), ``warning`` when only the
    decoded true peak is above the profile's ceiling (``ceiling_dbtp``; None: no
    warning).
    """
    from earmark.meters.flags import Flag, Occurrence

    flags = []
    for r in results:
        over = (
            r.true_peak_dbtp is not None
            and ceiling_dbtp is not None
            and r.true_peak_dbtp > ceiling_dbtp
        )
        if not r.clipped_samples and not over:
            continue
        tp = "-inf" if r.true_peak_dbtp is None else f"{r.true_peak_dbtp:+.1f}"
        text = f"after {r.label} the true peak reaches {tp} dBTP"
        if r.clipped_samples:
            first, last = r.clipped_between_s or (0.0, 0.0)
            text += (
                f"; {r.clipped_samples} samples clip on decode between {first:.1f} and {last:.1f} s"
            )
            severity = "problem"
        else:
            text += f", above the {ceiling_dbtp:+.1f} dBTP ceiling; no sample clips on decode"
            first, last = 0.0, r.duration_s  # the programme's true peak: all of it
            severity = "warning"
        if r.safe_ceiling_dbtp is None:
            text += f"; even a ceiling of {CEILING_BOTTOM_DBTP:.1f} dBTP does not avoid clipping"
        elif r.clipped_samples:
            text += f"; a ceiling of {r.safe_ceiling_dbtp:.1f} dBTP avoids it"
            if r.safe_ceiling_true_peak_dbtp is not None:  # whether it also stays <= 0 dBTP
                text += f" (decoded true peak then {r.safe_ceiling_true_peak_dbtp:+.1f} dBTP)"
        else:
            text += f" up to a ceiling of {r.safe_ceiling_dbtp:.1f} dBTP"
        occurrence = Occurrence(first, last, r.true_peak_dbtp, severity, text)
        flags.append(
            Flag(
                code="codec_clipping",
                severity=severity,
                start_s=first,
                end_s=last,
                value=r.true_peak_dbtp,
                threshold=0.0 if r.clipped_samples else ceiling_dbtp,
                unit="dBTP",
                band_hz=None,
                message=text,
                occurrences=(occurrence,),
            )
        )
    return flags
