"""The codec table and the streaming codec: one home for what a codec setting is.

:data:`CODECS` names every codec setting earmark encodes with (issue 19): the
offline path (``earmark.offline.codecs``: ``analyze/diff --codecs``) and the live
codec monitor (``engine.codec_host``) both read it here, so a name means the same
encoder, bit rate and options in both.

:class:`StreamCodec` encodes and decodes a stream block by block with PyAV (FFmpeg's
encoders and decoders working on frames, in memory): what the live monitor's host
process runs. Its output is the decoded stream behind a fixed pre-fill of silence,
so that a block in always gives a block out; :func:`calibrate` measures, for one
codec, rate and block size, the pre-fill that never runs dry and the whole delay
(pre-fill + the codec's own, by cross-correlation with :func:`measure_delay`).
Vorbis goes through libsndfile, which encodes whole files only: it is offline-only
(:data:`LIVE_CODECS` lists the codecs the live monitor takes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "CODECS",
    "DEFAULT_CODECS",
    "DELAY_PROGRAMME_S",
    "LIVE_CODECS",
    "MAX_DELAY_FRAMES",
    "Codec",
    "StreamCodec",
    "calibrate",
    "live_codec",
    "measure_delay",
    "parse_codecs",
]

# Delay search (inference): encoders prime with at most a few thousand frames (AAC-LC
# 1024 or 2048, Opus 312 at 48 kHz, LAME 576 + 529); 8192 covers them with a resampler.
MAX_DELAY_FRAMES = 8192
# The correlation looks at this much programme (enough music to find one clear peak,
# bounded so a long file costs one short FFT).
DELAY_PROGRAMME_S = 30.0


@dataclass(frozen=True, slots=True)
class Codec:
    """One codec setting: what users type (``name``) and how it is encoded.

    ``engine`` is ``"av"`` (PyAV: ``codec`` is FFmpeg's encoder name, ``decoder`` its
    decoder's, ``container`` the in-memory format of the offline path) or
    ``"vorbis"`` (libsndfile; ``vorbis_quality`` is the Vorbis quality -0.1..1 the
    encoder starts from, see :data:`CODECS`).
    """

    name: str
    label: str
    bitrate_kbps: int
    engine: str
    codec: str = ""
    container: str = ""
    rate_hz: int | None = None  # the only rate the encoder works at (Opus), else None
    vorbis_quality: float = 0.5
    decoder: str = ""


# Vorbis is VBR with a quality, not a rate: the quality starts at the value whose
# nominal rate (Xiph's table for 44.1 kHz stereo: q5 ~ 160 kb/s, q9 ~ 320 kb/s) is the
# one asked for, and is then corrected on the programme itself (see
# earmark.offline.codecs): music simpler than Xiph's test material lands well below the
# nominal rate.
CODECS: dict[str, Codec] = {
    c.name: c
    for c in (
        Codec("aac256", "AAC 256 kb/s", 256, "av", "aac", "adts", decoder="aac"),
        Codec("aac128", "AAC 128 kb/s", 128, "av", "aac", "adts", decoder="aac"),
        Codec("opus160", "Opus 160 kb/s", 160, "av", "libopus", "ogg", 48000, decoder="libopus"),
        Codec("opus96", "Opus 96 kb/s", 96, "av", "libopus", "ogg", 48000, decoder="libopus"),
        Codec("mp3-320", "MP3 320 kb/s", 320, "av", "libmp3lame", "mp3", decoder="mp3float"),
        Codec("mp3-128", "MP3 128 kb/s", 128, "av", "libmp3lame", "mp3", decoder="mp3float"),
        Codec("vorbis320", "Vorbis ~320 kb/s", 320, "vorbis", vorbis_quality=0.9),
        Codec("vorbis160", "Vorbis ~160 kb/s", 160, "vorbis", vorbis_quality=0.5),
    )
}
DEFAULT_CODECS: tuple[str, ...] = tuple(CODECS)
# The codecs the live monitor streams: PyAV's (libsndfile's Vorbis encodes whole files).
LIVE_CODECS: tuple[str, ...] = tuple(n for n, c in CODECS.items() if c.engine == "av")


def parse_codecs(text: str | None) -> tuple[Codec, ...]:
    """The codecs a comma-separated list names (None or "all": every codec).

    Raises:
        ValueError: an unknown name; the message lists the choices.
    """
    if text is None or text.strip().lower() in ("", "all"):
        return tuple(CODECS.values())
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in CODECS]
    if unknown:
        raise ValueError(
            f"unknown codec {', '.join(map(repr, unknown))} (choose from {', '.join(CODECS)})"
        )
    return tuple(CODECS[n] for n in dict.fromkeys(names))


def live_codec(name: str) -> Codec:
    """The codec the live monitor streams for ``name``.

    Raises:
        ValueError: an unknown name, or one the monitor cannot stream (Vorbis).
    """
    key = name.strip().lower()
    if key not in LIVE_CODECS:
        why = "is offline-only (libsndfile encodes whole files)" if key in CODECS else "is unknown"
        raise ValueError(f"codec {name!r} {why}; the live monitor takes {', '.join(LIVE_CODECS)}")
    return CODECS[key]


def measure_delay(original: np.ndarray, decoded: np.ndarray, sample_rate: int) -> int:
    """Frames by which ``decoded`` lags ``original`` (negative: it leads).

    Cross-correlation of the mono sums over the first :data:`DELAY_PROGRAMME_S`
    seconds, within +/- :data:`MAX_DELAY_FRAMES`; 0 for silence.
    """
    n = min(len(original), int(DELAY_PROGRAMME_S * sample_rate))
    a = np.asarray(original[:n], dtype=np.float64).sum(axis=1)
    b = np.asarray(decoded[: n + MAX_DELAY_FRAMES], dtype=np.float64).sum(axis=1)
    if not np.any(a) or not np.any(b):
        return 0
    size = 1 << int(math.ceil(math.log2(len(a) + len(b))))
    corr = np.fft.irfft(np.fft.rfft(b, size) * np.conj(np.fft.rfft(a, size)), size)
    lags = np.r_[np.arange(0, MAX_DELAY_FRAMES + 1), np.arange(-MAX_DELAY_FRAMES, 0)]
    values = np.r_[corr[: MAX_DELAY_FRAMES + 1], corr[size - MAX_DELAY_FRAMES :]]
    return int(lags[int(np.argmax(values))])


# The decoded stream waits in a ring of the pre-fill plus this many frames, rounded up
# to a power of two (inference: 16 AAC frames, far more than any encoder holds back).
_FIFO_FRAMES = 1 << 14


class StreamCodec:
    """A stereo stream through one codec, block by block: ``process(x)`` encodes ``x``
    and returns as many decoded frames, ``prefill`` frames (silence first) behind.

    Args:
        codec: a codec PyAV streams (:data:`LIVE_CODECS`).
        sample_rate: the stream's rate (Opus runs at 48 kHz through FFmpeg's resampler).
        prefill: frames of silence the output starts with (:func:`calibrate`).

    ``underruns`` counts blocks the decoder had not yet delivered (padded with silence;
    never with a calibrated pre-fill).
    """

    def __init__(self, codec: Codec, sample_rate: int, prefill: int = 0) -> None:
        import av

        if codec.engine != "av":
            raise ValueError(f"{codec.label} is not a streaming codec")
        self.codec = codec
        self.sample_rate = int(sample_rate)
        rate = codec.rate_hz or self.sample_rate
        enc: Any = av.CodecContext.create(codec.codec, "w")
        enc.sample_rate = rate
        enc.layout = "stereo"
        enc.format = "fltp" if "fltp" in _formats(enc) else _formats(enc)[0]
        enc.bit_rate = codec.bitrate_kbps * 1000
        enc.open()
        dec: Any = av.CodecContext.create(codec.decoder, "r")
        dec.sample_rate = rate
        dec.layout = "stereo"
        if enc.extradata:  # AAC's AudioSpecificConfig, Opus's header
            dec.extradata = enc.extradata
        dec.open()
        self._av = av
        self._enc, self._dec = enc, dec
        # Format, rate and the encoder's frame size in; the stream's rate and float out.
        self._to_enc = av.AudioResampler(
            format=enc.format.name, layout="stereo", rate=rate, frame_size=enc.frame_size or None
        )
        self._from_dec = av.AudioResampler(format="fltp", layout="stereo", rate=self.sample_rate)
        # A power of two (the ring's index mask), room for the pre-fill and the bursts.
        self._size = 1 << int(math.ceil(math.log2(int(prefill) + _FIFO_FRAMES)))
        self._fifo = np.zeros((self._size, 2), dtype=np.float32)
        self._read = 0
        self._prefill = int(prefill)
        self._written = int(prefill)
        self._pts = 0
        self.underruns = 0

    @property
    def frame_size(self) -> int:
        """Frames the encoder takes at a time, at the stream's rate (1024 without one)."""
        size = self._enc.frame_size or 1024
        return int(math.ceil(size * self.sample_rate / self._enc.sample_rate))

    @property
    def decoded(self) -> int:
        """Frames the decoder has delivered so far."""
        return self._written - self._prefill

    @property
    def waiting(self) -> int:
        """Decoded frames not yet returned."""
        return self._written - self._read

    def _put(self, y: np.ndarray) -> None:
        n = y.shape[0]
        if n > self._size - self.waiting:
            raise RuntimeError("the decoded stream outran its buffer")
        idx = (self._written + np.arange(n)) & (self._size - 1)
        self._fifo[idx] = y
        self._written += n

    def process(self, x: np.ndarray) -> np.ndarray:
        """Encode ``x`` ((frames, 2) float32) and return the next ``len(x)`` decoded frames."""
        frame = self._av.AudioFrame.from_ndarray(
            np.ascontiguousarray(x.T, dtype=np.float32), format="fltp", layout="stereo"
        )
        frame.sample_rate = self.sample_rate
        frame.pts = self._pts
        self._pts += x.shape[0]
        for piece in self._to_enc.resample(frame):
            for packet in self._enc.encode(piece):
                for decoded in self._dec.decode(packet):
                    for back in self._from_dec.resample(decoded):
                        self._put(back.to_ndarray().T)
        n = x.shape[0]
        out = np.zeros((n, 2), dtype=np.float32)
        got = min(n, self.waiting)
        if got < n:
            self.underruns += 1
        idx = (self._read + np.arange(got)) & (self._size - 1)
        out[:got] = self._fifo[idx]
        self._read += got
        return out


def _formats(ctx: Any) -> list[str]:
    return [f.name for f in (ctx.codec.audio_formats or ())]


# What calibrate() streams (inference: long enough for every encoder to reach its
# steady frame rhythm, short enough to start a monitor in about a second).
_CALIBRATE_S = 2.0


def calibrate(codec: Codec, sample_rate: int, block: int) -> tuple[int, int]:
    """(pre-fill, delay) in frames for ``codec`` at ``sample_rate`` fed ``block`` frames
    at a time: the smallest pre-fill (whole blocks) that never runs dry, and the delay
    of the decoded stream behind its input with that pre-fill, by cross-correlation.

    Measured on a fixed noise burst through fresh codecs: the encoders cut the same
    frames from every stream, so a live stream fed the same blocks has the same delay.
    """
    rng = np.random.default_rng(19)
    frames = int(_CALIBRATE_S * sample_rate) // block * block
    x = (0.1 * rng.standard_normal((frames, 2))).astype(np.float32)
    prefill = _prefill_needed(codec, sample_rate, block, x)
    stream = StreamCodec(codec, sample_rate, prefill=prefill)
    y = np.concatenate([stream.process(x[i : i + block]) for i in range(0, frames, block)])
    # The pre-fill's silence is known: the correlation looks for the codec's own delay
    # behind it (within MAX_DELAY_FRAMES whatever the block size made the pre-fill).
    return prefill, prefill + measure_delay(x, y[prefill:], sample_rate)


def _prefill_needed(codec: Codec, sample_rate: int, block: int, x: np.ndarray) -> int:
    """The most frames a fresh stream owed its output at any block, rounded up to blocks."""
    probe = StreamCodec(codec, sample_rate, prefill=0)
    owed = 0
    fed = 0
    for i in range(0, len(x), block):
        probe.process(x[i : i + block])  # (its own underruns here change nothing measured)
        fed += block
        owed = max(owed, fed - probe.decoded)
    # One encoder frame more than the noise needed (inference): an encoder's packets can
    # come out a frame later on other material (LAME's bit reservoir); the delay is
    # measured with the pre-fill, so the margin costs latency, never alignment.
    owed += probe.frame_size
    return -(-owed // block) * block
