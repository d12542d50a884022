"""The engine's plan: the one int64 array the audio block (``engine.block``) runs from.

A plan is laid out in ``engine.abi``: the engine's arrays (``G_*``), then one
row per path (``R_*``) saying what the block reads and runs for it itself
(a player's samples, live input channels, an isolated chain's exchange
table) and what it leaves to the Python callback (any other source or
chain). Both callbacks run from the engine's plan: the Python one calls the
block's stages with its Python work between them, the native one the whole
block. Built and changed off the audio thread only.
"""

from __future__ import annotations

import numpy as np

from . import abi
from .sources import LiveInput, Player, Source

__all__ = ["fill_row", "new_plan", "row", "runs_in_python"]


def new_plan(
    paths: int, arrays: dict[int, np.ndarray], tap_rows: int, max_block: int
) -> np.ndarray:
    """A plan for ``paths`` paths whose ``G_*`` fields hold ``arrays``' addresses (rows
    empty until :func:`fill_row`)."""
    plan = np.zeros(abi.G_COUNT + abi.R_COUNT * paths, dtype=np.int64)
    plan[abi.G_SIZE] = plan.shape[0]
    plan[abi.G_VERSION] = abi.LAYOUT_VERSION
    plan[abi.G_PATHS] = paths
    for field, array in arrays.items():
        plan[field] = abi.address(array)
    plan[abi.G_TAP_ROWS] = tap_rows
    plan[abi.G_MAX_BLOCK] = max_block
    return plan


def row(plan: np.ndarray, k: int) -> np.ndarray:
    """Path k's row of ``plan`` (a view)."""
    return plan[abi.G_COUNT + k * abi.R_COUNT : abi.G_COUNT + (k + 1) * abi.R_COUNT]


def fill_row(
    plan: np.ndarray, k: int, arrays: dict[int, np.ndarray], source: Source, chain: object
) -> None:
    """Plan path k: its buffers (``arrays``: R_BUF, R_OUT, R_ST, R_FEED, R_FED), its
    source and its chain (None, or anything with a ``process`` method)."""
    r = row(plan, k)
    r[:] = 0
    for field, array in arrays.items():
        r[field] = abi.address(array)
    r[abi.R_FEED_ROWS] = arrays[abi.R_FEED].shape[0]
    if isinstance(source, Player):
        r[abi.R_SOURCE] = abi.SOURCE_PLAYER
        r[abi.R_DATA] = abi.address(source.data)
        r[abi.R_DATA_ROWS], r[abi.R_DATA_CH] = source.data.shape
    elif isinstance(source, LiveInput):
        r[abi.R_SOURCE] = abi.SOURCE_INPUT
        r[abi.R_CHANNELS] = abi.address(source.channels)
        r[abi.R_CHANNELS_COUNT] = source.channels.shape[0]
    else:
        r[abi.R_SOURCE] = abi.SOURCE_PYTHON
    # A chain in an isolated host publishes its exchange table (engine.isolated): the
    # block hands it stereo blocks itself, after a source it reads itself.
    exchange = getattr(chain, "exchange", None)
    if chain is None:
        r[abi.R_CHAIN] = abi.CHAIN_NONE
    elif (
        isinstance(exchange, np.ndarray)
        and exchange.shape == (abi.H_COUNT,)
        and exchange[abi.H_CHANNELS] == 2
        and r[abi.R_SOURCE] != abi.SOURCE_PYTHON
    ):
        r[abi.R_CHAIN] = abi.CHAIN_ISOLATED
        r[abi.R_EXCHANGE] = abi.address(exchange)
    else:
        r[abi.R_CHAIN] = abi.CHAIN_PYTHON


def runs_in_python(plan: np.ndarray, k: int) -> tuple[bool, bool]:
    """Whether the Python callback reads path k's source, and whether it runs its chain."""
    r = row(plan, k)
    return bool(r[abi.R_SOURCE] == abi.SOURCE_PYTHON), bool(r[abi.R_CHAIN] == abi.CHAIN_PYTHON)
