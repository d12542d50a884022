"""The GIL-free audio callback: the engine's block in machine code, handed to PortAudio.

A Python callback (sounddevice's cffi wrapper around ``Engine.process``) must
take the GIL before it can start. When another thread of the audio process
holds it in one long C call (a pickle, a JSON dump, an SQLite query) the
callback starts late however short it is: ``bench/gil.py`` measured a Python
copy callback running 5 % of its blocks beside such a call, and a numba
``cfunc`` given to ``Pa_OpenStream`` 100 %.

:data:`callback` is that ``cfunc``. It runs ``engine.block.run``, the
block whose stages ``Engine.process`` runs too (``engine.block``), and never
touches a Python object. The callback receives the engine's plan
(``Engine.plan``, one int64 array of addresses and sizes laid out in
``engine.abi``) as PortAudio's ``userData``: the engine's counters, mix state,
output guard, tap and timing rings and transport, then per path its buffers,
delay line state, meter feed, source (live input channels, or a player's
samples) and isolated chain's exchange table. A :class:`NativePlan` sets the
stream's channels in it and keeps it alive. The Python objects keep
those values in int64 arrays (``rt.Slot``), so ``engine.callbacks``,
``path.nonfinite_blocks``, ``transport.pos`` and the rest read the same
whichever callback runs.

What runs natively: every path's chain is none or an ``IsolatedChain`` (a
chain in its own process, exchanged through shared memory: pedalboard needs
the GIL, its host process has its own). :func:`unsupported` says why an engine
cannot. Commands do not queue: ``Engine.post`` applies them at once from the
posting thread, to values the callback reads at its next block boundary
(targets the mix kernel smooths, the alignment delay, a seek request).
"""

from __future__ import annotations

import ctypes

import numba as nb
import numpy as np
from numba import types as T

from earmark.meters import jitcache

from . import abi, block, rt
from .abi import CHAIN_PYTHON, G_COUNT, G_IN_CH, G_OUT_CH, R_CHAIN, R_COUNT, R_SOURCE, SOURCE_PYTHON
from .engine import Engine
from .isolated import IsolatedChain
from .sources import LiveInput, Player

__all__ = ["NativePlan", "callback", "unsupported"]


def _cache_probe() -> None:
    """Locates this module's numba cache for ``jitcache.drop_stale``."""


# The callback compiles in the block (and what it compiles in); numba's cache alone
# would not see those files change.
jitcache.drop_stale(_cache_probe, [block.__file__, rt.__file__, abi.__file__])

# PortAudio's frameCount and statusFlags are C ``unsigned long``s.
_ULONG = T.uint64 if ctypes.sizeof(ctypes.c_ulong) == 8 else T.uint32
_PA_CONTINUE = 0


@nb.cfunc(
    T.int32(
        T.int64,  # const void *input (interleaved float32), as an address
        T.int64,  # void *output
        _ULONG,  # unsigned long frameCount
        T.voidptr,  # const PaStreamCallbackTimeInfo *
        _ULONG,  # PaStreamCallbackFlags
        T.int64,  # void *userData: the plan's address
    ),
    nopython=True,
    cache=True,
)
def callback(inp, out, frames, _time_info, status, plan_address):  # pragma: no cover - audio
    """PortAudio's ``PaStreamCallback``: one block, no GIL (``userData`` is a plan)."""
    block.run(inp, out, np.int64(frames), np.int64(status), plan_address)
    return _PA_CONTINUE


def unsupported(engine: Engine) -> str | None:
    """Why ``engine`` cannot run in the native callback, or None when it can."""
    for p in engine.paths:
        if not isinstance(p.source, LiveInput | Player):
            return f"path {p.name!r} plays a {type(p.source).__name__}"
        if p.chain is not None and not isinstance(p.chain, IsolatedChain):
            return (
                f"path {p.name!r} runs its chain in the audio process (pedalboard needs "
                "the GIL): isolate it"
            )
        if isinstance(p.chain, IsolatedChain) and p.chain.channels != 2:
            return f"path {p.name!r}'s isolated chain is not stereo"
    return None


class NativePlan:
    """The addresses and sizes the native callback works from (keeps the arrays alive).

    Args:
        engine: the engine whose block the callback runs (see :func:`unsupported`).
        in_channels: channels of the stream's input (0: output only).
        out_channels: channels of the stream's output.
    """

    def __init__(self, engine: Engine, in_channels: int, out_channels: int) -> None:
        reason = unsupported(engine)
        if reason is not None:
            raise ValueError(f"the native callback cannot run this engine: {reason}")
        self.engine = engine
        engine.replan()
        plan = engine.plan  # the plan the Python callback runs from, too
        rows = plan[G_COUNT:].reshape(-1, R_COUNT)
        if (rows[:, R_SOURCE] == SOURCE_PYTHON).any() or (rows[:, R_CHAIN] == CHAIN_PYTHON).any():
            raise ValueError("the native callback cannot run this engine: its plan needs Python")
        plan[G_IN_CH] = in_channels
        plan[G_OUT_CH] = out_channels
        self.plan = plan
        self.address = abi.address(plan)

    def process(
        self, indata: np.ndarray | None, outdata: np.ndarray, frames: int, xrun: bool = False
    ) -> None:
        """Run one block through the native callback from Python (tests, offline)."""
        for a in (indata, outdata):
            if a is not None and not (a.dtype == np.float32 and a.flags.c_contiguous):
                raise ValueError("native blocks are C-contiguous float32 (frames, channels)")
        inp = 0 if indata is None else abi.address(indata)
        callback.ctypes(inp, abi.address(outdata), frames, None, int(xrun), self.address)


def warm_up() -> None:
    """Load the callback's machine code now (numba compiles or loads it at import)."""
    ctypes.addressof(callback.ctypes)
