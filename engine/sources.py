"""Signal sources for the engine's paths: live input, and audio held in memory.

File references are decoded and resampled to the stream's rate *before*
streaming (no file I/O in the callback); every in-memory source plays at the
position of one shared :class:`Transport`, so a mix and its masters stay
aligned to the sample through seek, loop and stop.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from earmark.meters.channels import stereo_fold_down

from . import block as stage  # (``block`` names a file's blocks below)
from . import rt
from .abi import T_COUNT, T_LENGTH, T_LOOP, T_PLAYING, T_POS, T_SEEK_SEQ, T_SEEK_TO
from .files import iter_blocks, open_audio


class Transport:
    """One play position shared by every file/array source, so references stay
    sample-aligned to each other; seek and play/stop apply at block boundaries.

    The fields live in one int64 array (``state``, ``abi.T_*``) so that the audio
    block in machine code (``engine.block``) reads and advances the same position.
    """

    def __init__(self, length: int = 0, loop: bool = True) -> None:
        self.state = np.zeros(T_COUNT, dtype=np.int64)
        self.length = length
        self.loop = loop
        self.playing = True

    pos = rt.Slot("state", T_POS)
    length = rt.Slot("state", T_LENGTH)
    loop = rt.Slot("state", T_LOOP, bool)
    playing = rt.Slot("state", T_PLAYING, bool)

    def request_seek(self, frame: int) -> None:
        """Seek at the next block's start (``engine.block.start`` applies it; the target
        is written before the sequence, so a callback on another thread never sees half)."""
        self.state[T_SEEK_TO] = max(0, int(frame))
        self.state[T_SEEK_SEQ] += 1

    def advance(self, n: int) -> None:
        """Move on by n frames while playing (looping at ``length``), as a block does."""
        stage.advance(self.state, n)


class Source:
    """Where a path's signal comes from. ``read`` fills ``out[:n]`` (stereo float32)."""

    name = "source"

    def read(
        self, indata: np.ndarray | None, n: int, out: np.ndarray, transport: Transport
    ) -> None:
        raise NotImplementedError


class LiveInput(Source):
    """The audio interface's input (one channel plays on both sides)."""

    def __init__(self, channels: Sequence[int] = (0, 1), name: str = "live input") -> None:
        self.channels = np.asarray(channels, dtype=np.int64)
        self.name = name

    def read(
        self, indata: np.ndarray | None, n: int, out: np.ndarray, transport: Transport
    ) -> None:
        stage.read_input(stage.NO_INPUT if indata is None else indata, self.channels, n, out)


class Player(Source):
    """Audio held in memory at the stream's rate (a decoded, resampled file or the demo)."""

    def __init__(self, data: np.ndarray, name: str, note: str = "", folded_from: int = 0) -> None:
        data = np.asarray(data, dtype=np.float32)
        if data.ndim == 1:
            data = data[:, None]
        self.data = np.ascontiguousarray(data)
        self.name = name
        self.note = note  # how the file was adapted to the stereo path, if it was
        self.folded_from = folded_from  # the channel count of a surround file folded to stereo

    @property
    def frames(self) -> int:
        return int(self.data.shape[0])

    def read(
        self, indata: np.ndarray | None, n: int, out: np.ndarray, transport: Transport
    ) -> None:
        stage.read_player(self.data, transport.state, n, out)


def load_player(path: str | os.PathLike[str], sample_rate: int, name: str | None = None) -> Player:
    """Decode ``path`` (any format ``earmark analyze`` reads) at ``sample_rate``, as a Player.

    Resampling uses pedalboard's streaming resampler chunk by chunk; the decoded
    programme is held in memory (float32: about 23 MB per stereo minute at 48 kHz).
    Live paths are stereo: a surround file (3 to 8 channels in the WAVE/SMPTE
    order) is folded down to stereo by ITU-R BS.775 as it is decoded, and the
    player's ``note`` says so (its meters then read the fold-down; ``earmark
    analyze`` measures the surround programme itself). Other channel counts
    above two play their first two channels, and the note says that.
    """
    from pedalboard.io import StreamResampler

    info = open_audio(path)
    chunks = []
    resampler = None
    fold = stereo_fold_down(info.channels)
    note = ""
    if fold is not None:
        note = f"{info.channels} channels folded down to stereo (ITU-R BS.775, LFE omitted)"
    elif info.channels > 2:
        note = f"{info.channels} channels in no known layout: playing channels 1 and 2"
    if info.sample_rate != sample_rate:
        resampler = StreamResampler(info.sample_rate, sample_rate, info.channels)
    for block in iter_blocks(path):
        if resampler is not None:
            block = resampler.process(np.ascontiguousarray(block.T)).T
        chunks.append(_to_stereo(block, fold))
    if resampler is not None:
        chunks.append(_to_stereo(resampler.process(None).T, fold))
    width = min(info.channels, 2)
    data = np.concatenate(chunks, axis=0) if chunks else np.zeros((0, width), np.float32)
    return Player(
        data,
        name or os.path.basename(os.fspath(path)),
        note=note,
        folded_from=info.channels if fold is not None else 0,
    )


def _to_stereo(block: np.ndarray, fold: np.ndarray | None) -> np.ndarray:
    if fold is not None:
        return np.asarray(block, dtype=np.float32) @ fold
    return block[:, :2] if block.shape[1] > 2 else block
