"""Rendering a chain offline: audio in, the chain's output out, aligned and with its tail.

:func:`render` runs a :class:`~.spec.ChainSpec` over a whole array block by block,
exactly as the audio callback runs it (the same :class:`~.chain.Chain`, the same
guards), then keeps feeding silence until the chain's tail has died away (a reverb,
a delay, a release), and removes the chain's latency, so that output sample ``n``
lines up with input sample ``n``. ``earmark render``, the fidelity check of
``earmark diff --chain`` and ``demo --offline`` all render through it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .build import build_chain
from .spec import ChainSpec

__all__ = ["Rendered", "render"]

DEFAULT_BLOCK_FRAMES = 4096  # a file's blocks: large enough for speed, <= MAX_BLOCK_FRAMES
_TAIL_SILENT = 1e-6  # -120 dBFS: a tail block peaking below this ends the tail
_MAX_TAIL_S = 30.0  # a freeze-mode reverb never dies away: stop after this long


@dataclass(frozen=True, slots=True)
class Rendered:
    """A chain's output, aligned with its input."""

    audio: np.ndarray  # float32 (frames, channels): input frames + tail_frames
    latency_samples: int  # the chain's latency, removed
    tail_frames: int  # frames past the input's end where the chain still sounded
    muted_blocks: int  # blocks a plugin fault (raise, NaN/Inf) turned into silence
    nonfinite_input_samples: int  # NaN/Inf samples of the input, played as silence
    warnings: tuple[str, ...] = ()


def render(
    spec: ChainSpec,
    audio: np.ndarray,
    sample_rate: float,
    *,
    tail: bool = True,
    block_frames: int = DEFAULT_BLOCK_FRAMES,
    search_path: Sequence[str | os.PathLike[str]] | None = None,
    cache_file: str | os.PathLike[str] | None = None,
) -> Rendered:
    """``audio`` (frames, channels) through ``spec`` at ``sample_rate``, offline.

    The chain's latency is flushed with silence and removed; with ``tail`` the
    output runs on past the input's end while the chain still sounds (above
    -120 dBFS, at most 30 s), without it the output has the input's length.
    Non-finite input samples are played as silence; a block a plugin spoils
    (raise, NaN/Inf) is silence and counted in ``muted_blocks``.

    Raises:
        PresetError: what building the chain raises (file, line and key named).
    """
    x = np.asarray(audio)
    if x.ndim == 1:
        x = x[:, None]
    nonfinite = int(np.count_nonzero(~np.isfinite(x)))
    x = np.nan_to_num(np.ascontiguousarray(x, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    frames, channels = x.shape
    chain = build_chain(spec, sample_rate, channels, search_path, cache_file)
    latency = int(chain.latency_samples)
    block = max(1, min(int(block_frames), DEFAULT_BLOCK_FRAMES * 2))
    out: list[np.ndarray] = []
    for start in range(0, frames, block):
        out.append(chain.process(x[start : start + block]))
    # The latency is owed whatever the tail: the input's last samples are still inside.
    owed = latency
    silence = np.zeros((block, channels), dtype=np.float32)
    while owed > 0:
        n = min(block, owed)
        out.append(chain.process(silence[:n]))
        owed -= n
    tail_frames = 0
    if tail:
        limit = int(_MAX_TAIL_S * sample_rate)
        while tail_frames < limit:
            y = chain.process(silence)
            out.append(y)
            tail_frames += block
            if float(np.max(np.abs(y), initial=0.0)) < _TAIL_SILENT:
                break
    y = np.concatenate(out, axis=0) if out else np.zeros((0, channels), np.float32)
    y = y[latency:]
    if tail:
        # Keep the tail up to its last audible sample (and never shorter than the input).
        loud = np.flatnonzero(np.max(np.abs(y[frames:]), axis=1) >= _TAIL_SILENT)
        tail_frames = int(loud[-1]) + 1 if loud.size else 0
    y = np.nan_to_num(y[: frames + tail_frames], nan=0.0, posinf=0.0, neginf=0.0)
    muted = int(chain.nonfinite_blocks + chain.error_blocks)
    return Rendered(
        audio=np.ascontiguousarray(y, dtype=np.float32),
        latency_samples=latency,
        tail_frames=tail_frames,
        muted_blocks=muted,
        nonfinite_input_samples=nonfinite,
        warnings=tuple(chain.warnings),
    )
