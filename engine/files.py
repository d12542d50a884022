"""Reading audio files in blocks, with one clear error per unreadable file.

libsndfile (through soundfile) decodes WAV/RF64/W64, AIFF, FLAC, Ogg
Vorbis/Opus, MP3 and the rest of its list. This module adds what an analysis
tool needs on top: every failure becomes one :class:`AudioFileError` whose
message names the file and the cause, and a file that ends before its header
says it should (a cut-off copy, an interrupted render) is reported as
truncated instead of being measured as if it were the whole programme.

libsndfile quietly repairs a header that promises more audio than the file
holds: it reports the frames that are there. Its open log still records the
promise ("data : 1920000 (should be 959978)"), and that log is where
truncation of the chunked formats is detected; FLAC, Ogg and MP3 are checked
against their stream headers while reading.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import soundfile as sf

from earmark.errors import EarmarkError
from earmark.meters.bank import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE

__all__ = [
    "MAX_SAMPLE_RATE_HZ",
    "MIN_SAMPLE_RATE_HZ",
    "AudioFileError",
    "AudioFileInfo",
    "iter_blocks",
    "open_audio",
]

# The range the meters accept (K-weighting is derived per rate within it).
MIN_SAMPLE_RATE_HZ = MIN_SAMPLE_RATE
MAX_SAMPLE_RATE_HZ = MAX_SAMPLE_RATE

DEFAULT_BLOCK_FRAMES = 65536

# An MP3 decoder may legitimately deliver up to about one MPEG frame (1152
# samples) more or less than the Xing/LAME header states; more than two
# frames missing is a cut-off file.
_MP3_FRAME_SLACK = 2 * 1152

# Data sizes that streaming writers put in a header before they know the
# length (or never patch): they mean "unknown", not "truncated".
_PLACEHOLDER_SIZES = frozenset({0, 0x7FFFF000, 0x7FFFFFFF, 0xFFFFFFFF})

_DATA_SIZE_RE = re.compile(
    r"^\s*(?:data|SSND|Data Size)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE | re.IGNORECASE
)
_OUTER_SIZE_RE = re.compile(
    r"^\s*(?:RIFF|FORM|RF64|Riff size)\s*:\s*(\d+)\s*\(should be (\d+)\)",
    re.MULTILINE | re.IGNORECASE,
)
_FRAME_COUNT_RES = (
    # AIFF: "Frame count read from 'COMM' chunk (480000) not equal to ..."
    re.compile(r"Frame count read from '\w+' chunk \((\d+)\) not equal"),
    # RF64: "Calculated frame count 47991 does not match value from 'ds64' chunk of 96000."
    re.compile(r"Calculated frame count \d+ does not match value from '\w+' chunk of (\d+)"),
)
# Bytes per sample of the uncompressed encodings, to turn a data size into frames.
_PCM_SAMPLE_BYTES = {
    "PCM_S8": 1, "PCM_U8": 1, "ULAW": 1, "ALAW": 1, "PCM_16": 2, "PCM_24": 3,
    "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8,
}  # fmt: skip
_OGG_NO_EOS = "Last page lacks an end-of-stream bit"
_MPEG_SYNC_RE = re.compile(rb"\xff[\xe0-\xff]")


class AudioFileError(EarmarkError, ValueError):
    """An audio file cannot be read; ``str()`` is one line: ``"<path>: <cause>"``."""

    def __init__(self, path: str | os.PathLike[str], cause: str) -> None:
        self.path = os.fspath(path)
        self.cause = cause
        super().__init__(f"{self.path}: {cause}")


@dataclass(frozen=True, slots=True)
class AudioFileInfo:
    """What the header of a readable audio file says."""

    path: str
    sample_rate: int
    channels: int
    frames: int | None  # None when the file carries no exact length (MP3 without a length header)
    format: str  # libsndfile major format, e.g. "WAV", "FLAC", "MP3"
    subtype: str  # e.g. "PCM_24", "FLOAT", "VORBIS", "MPEG_LAYER_III"
    warnings: tuple[str, ...] = ()  # readable, but the engineer should know

    @property
    def duration_s(self) -> float | None:
        return None if self.frames is None else self.frames / self.sample_rate


def open_audio(path: str | os.PathLike[str]) -> AudioFileInfo:
    """Check that ``path`` is a readable audio file and return its header facts.

    Raises :class:`AudioFileError` for a missing file, a directory, a file that
    cannot be opened, an empty file, anything libsndfile does not recognise or
    cannot decode, a header that declares more audio than the file holds, a
    sample rate outside 8000-384000 Hz and a stream without channels.
    Truncation that only shows while decoding (FLAC, MP3) is raised by
    :func:`iter_blocks`.
    """
    snd, info = _open(path)
    snd.close()
    return info


def iter_blocks(
    path: str | os.PathLike[str],
    block_frames: int = DEFAULT_BLOCK_FRAMES,
    dtype: str = "float32",
) -> Iterator[np.ndarray]:
    """Yield the audio of ``path`` as ``(frames, channels)`` arrays of ``dtype``.

    Every block has ``block_frames`` frames except the last; memory use does
    not grow with the length of the file. Each block is a new array the caller
    may keep. Integer PCM is scaled to [-1, 1) as libsndfile does. After the
    last block the frame count is compared with the header; a shortfall, or a
    decoder error part-way through, raises :class:`AudioFileError` (so a
    caller that consumed the blocks learns that they were not the whole file).
    """
    if block_frames < 1:
        raise ValueError(f"block_frames must be at least 1, got {block_frames}")
    if np.dtype(dtype) not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
    snd, info = _open(path)
    read = 0
    with snd:
        # soundfile re-seeks to the current position after every read; for MP3
        # that restarts mpg123 (losing its bit reservoir), and the first few
        # thousand frames of every block but the first decode as silence.
        reader = _read_unseeked if snd.format == "MP3" else _read_soundfile
        while True:
            try:
                block = reader(snd, block_frames, np.dtype(dtype))
            except (sf.SoundFileError, RuntimeError) as exc:
                raise AudioFileError(
                    info.path,
                    f"truncated or corrupt: decoding failed after {_frames_of(read, info.frames)}"
                    f" ({_libsndfile_reason(exc)})",
                ) from exc
            if block.shape[0] == 0:
                break
            read += block.shape[0]
            yield block
    _check_complete(info, read)


def _read_soundfile(snd: sf.SoundFile, frames: int, dtype: np.dtype) -> np.ndarray:
    return snd.read(frames, dtype=dtype.name, always_2d=True)


def _read_unseeked(snd: sf.SoundFile, frames: int, dtype: np.dtype) -> np.ndarray:
    """``sf_readf_*`` straight into a new array, without soundfile's seek bookkeeping."""
    out = np.empty((frames, snd.channels), dtype=dtype)
    ctype = "float" if dtype == np.float32 else "double"
    readf = getattr(sf._snd, f"sf_readf_{ctype}")
    got = readf(snd._file, sf._ffi.cast(f"{ctype} *", out.ctypes.data), frames)
    error = sf._snd.sf_error(snd._file)
    if error:
        raise sf.LibsndfileError(error)
    return out[:got] if got < frames else out


def _open(path: str | os.PathLike[str]) -> tuple[sf.SoundFile, AudioFileInfo]:
    name = os.fspath(path)
    try:
        st = os.stat(name)
    except FileNotFoundError:
        raise AudioFileError(name, "no such file") from None
    except PermissionError:
        raise AudioFileError(name, "permission denied") from None
    except OSError as exc:
        raise AudioFileError(name, f"cannot open: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise AudioFileError(name, "is a directory, not an audio file")
    if not stat.S_ISREG(st.st_mode):
        raise AudioFileError(name, "not a regular file")
    if st.st_size == 0:
        raise AudioFileError(name, "empty file (0 bytes)")
    # Open it ourselves first: the OS names a permission problem precisely,
    # libsndfile only says "System error".
    try:
        with open(name, "rb") as fh:
            mp3_length_header = _mp3_has_length_header(fh)
    except PermissionError:
        raise AudioFileError(name, "permission denied") from None
    except OSError as exc:
        raise AudioFileError(name, f"cannot open: {exc.strerror or exc}") from None

    try:
        snd = sf.SoundFile(name)
    except sf.LibsndfileError as exc:
        raise AudioFileError(name, _open_failure(exc)) from None
    except (sf.SoundFileError, TypeError, ValueError, RuntimeError) as exc:
        # soundfile refuses headerless RAW without rate/channels, among others.
        raise AudioFileError(name, f"not a readable audio file ({exc})") from None

    try:
        info = _inspect(name, snd, mp3_length_header)
    except BaseException:
        snd.close()
        raise
    return snd, info


def _inspect(name: str, snd: sf.SoundFile, mp3_length_header: bool) -> AudioFileInfo:
    if snd.channels < 1:
        raise AudioFileError(name, "the stream has no channels")
    if not MIN_SAMPLE_RATE_HZ <= snd.samplerate <= MAX_SAMPLE_RATE_HZ:
        raise AudioFileError(
            name,
            f"sample rate {snd.samplerate} Hz is outside"
            f" {MIN_SAMPLE_RATE_HZ}-{MAX_SAMPLE_RATE_HZ} Hz",
        )
    frames: int | None = int(snd.frames)
    warnings: list[str] = []
    if frames < 0 or frames >= 2**62:  # libsndfile's "unknown length"
        frames = None
    if snd.format == "MP3" and not mp3_length_header:
        # Without a Xing/Info/VBRI header mpg123 estimates the length from the
        # first frame's bitrate, and libsndfile stops reading at that estimate.
        frames = None
        warnings.append(
            "MP3 has no Xing/Info/VBRI length header; its length is estimated from the"
            " bitrate, so a variable-bitrate file may be read only in part"
        )
    if frames is not None:
        cause = _header_truncation(snd.extra_info, frames, snd.subtype, snd.channels)
        if cause is not None:
            raise AudioFileError(name, cause)
    return AudioFileInfo(
        path=name,
        sample_rate=int(snd.samplerate),
        channels=int(snd.channels),
        frames=frames,
        format=str(snd.format),
        subtype=str(snd.subtype),
        warnings=tuple(warnings),
    )


def _open_failure(exc: sf.LibsndfileError) -> str:
    reason = _libsndfile_reason(exc)
    if exc.code == 1:  # SF_ERR_UNRECOGNISED_FORMAT
        return f"not an audio file, or a format libsndfile cannot read ({reason})"
    if exc.code == 3:  # SF_ERR_MALFORMED_FILE
        return f"malformed or truncated audio file ({reason})"
    if exc.code == 4:  # SF_ERR_UNSUPPORTED_ENCODING
        return f"unsupported audio encoding ({reason})"
    return f"cannot open as audio ({reason})"


def _libsndfile_reason(exc: BaseException) -> str:
    text = ""
    if isinstance(exc, sf.LibsndfileError):
        text = exc.error_string
        # "Error : flac decoder lost sync." -> "flac decoder lost sync"
        text = text.removeprefix("Error : ")
    text = (text or str(exc) or type(exc).__name__).strip().rstrip(".")
    return f"libsndfile: {text}"


def _header_truncation(log: str, frames: int, subtype: str, channels: int) -> str | None:
    """Read libsndfile's open log for a header that promised more than the file holds."""
    if _OGG_NO_EOS in log:
        return (
            f"truncated: the Ogg stream stops after {frames} frames without its end-of-stream page"
        )
    for pattern in _FRAME_COUNT_RES:
        match = pattern.search(log)
        if match and int(match.group(1)) > frames:
            return _shortfall(int(match.group(1)), frames)
    for match in _DATA_SIZE_RE.finditer(log):
        declared, present = int(match.group(1)), int(match.group(2))
        if declared in _PLACEHOLDER_SIZES or declared <= present:
            continue
        frame_bytes = _PCM_SAMPLE_BYTES.get(subtype, 0) * channels
        if frame_bytes:
            declared_frames = declared // frame_bytes
            if declared_frames > frames:
                return _shortfall(declared_frames, frames)
        elif present > 0 and frames > 0:  # compressed in the container: scale
            declared_frames = (declared * frames) // present
            if declared_frames > frames:
                return _shortfall(declared_frames, frames, about=True)
        else:
            return (
                f"truncated: the header declares {declared} bytes of audio,"
                f" the file holds {present}"
            )
    # W64 logs no corrected data size; its outer chunk size is the evidence.
    # Small outer-size errors are a common writer bug on complete files.
    for match in _OUTER_SIZE_RE.finditer(log):
        declared, present = int(match.group(1)), int(match.group(2))
        if declared in _PLACEHOLDER_SIZES:
            continue
        if declared - present > max(4096, declared // 100):
            return f"truncated: the header declares {declared} bytes, the file holds {present}"
    return None


def _check_complete(info: AudioFileInfo, read: int) -> None:
    if info.frames is None:
        return
    slack = _MP3_FRAME_SLACK if info.format == "MP3" else 0
    if read + slack < info.frames:
        raise AudioFileError(info.path, _shortfall(info.frames, read))


def _shortfall(declared: int, read: int, about: bool = False) -> str:
    approx = "about " if about else ""
    return f"truncated: the header declares {approx}{declared} frames but only {read} could be read"


def _frames_of(read: int, frames: int | None) -> str:
    return f"{read} frames" if frames is None else f"{read} of {frames} frames"


def _mp3_has_length_header(fh) -> bool:
    """Whether the first MPEG frame carries a Xing, Info or VBRI length header.

    Looked for in the first frame after any ID3v2 tag. Returns True for
    anything that does not look like MPEG audio, which leaves the decision to
    libsndfile.
    """
    head = fh.read(10)
    offset = 0
    if len(head) == 10 and head[:3] == b"ID3":
        size = (head[6] << 21) | (head[7] << 14) | (head[8] << 7) | head[9]
        offset = 10 + size + (10 if head[5] & 0x10 else 0)
    fh.seek(offset)
    data = fh.read(8192)
    sync = _MPEG_SYNC_RE.search(data)
    if sync is None:
        return True
    first_frame = data[sync.start() : sync.start() + 192]
    return any(tag in first_frame for tag in (b"Xing", b"Info", b"VBRI"))
