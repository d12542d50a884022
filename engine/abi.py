"""Every memory layout the audio block shares: one home for the field numbers.

The audio block (``engine.block``) runs in machine code from arrays that other
code owns: the engine's counters and rings, each path's buffers, the transport,
an isolated chain's shared memory with its host process. Each of those arrays
is laid out here and nowhere else; the engine, the sources, the isolated host,
the native callback and the block import these names (no module reads another's
private constants or attributes). Integers are int64 unless a table says
otherwise; an ``*_COUNT`` is the table's length; addresses are
``ndarray.ctypes.data`` of C-contiguous arrays.

Change a layout, bump :data:`LAYOUT_VERSION`: a plan records it (the native
callback plays silence for another), and an isolated host refuses shared
memory of another version.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# The version of every layout in this module (bumped on any change).
LAYOUT_VERSION = 2

# -- rings (power-of-two lengths: the block indexes them with a mask) ----------------

# Callback durations and start times (``Engine.timings_ns``, ``Engine.starts_ns``).
TIMING_RING = 1 << 16
# Which callbacks PortAudio flagged as xruns (``Engine.xrun_callbacks``).
XRUN_RING = 1 << 12

# -- Engine.counters -----------------------------------------------------------------
# Callbacks run, xruns flagged, the latest block's size, the compared paths A and B.
E_CALLBACKS, E_XRUNS, E_BLOCK, E_A, E_B, E_COUNT = range(6)

# -- a path's state (``Path.state``) ----------------------------------------------------
# The delay line's write position, the alignment delay, blocks the engine muted on the
# path, the delay line's address and rows (the address is written before the rows: a
# replaced line only grows), and the latest muted block's fault (FAULT_*).
P_RING_POS, P_DELAY, P_NONFINITE, P_RING_ADDR, P_RING_ROWS, P_FAULT, P_COUNT = range(7)

# Why a path's block was muted (P_FAULT): rt.guard_path's findings, then the Python
# callback's (a chain raised, or returned something that is not a (frames, 2) float32
# C-contiguous array).
FAULT_NONE, FAULT_NONFINITE, FAULT_ABSURD, FAULT_RAISED, FAULT_WRONG_ARRAY = range(5)

# -- the plan (``Engine.plan``): what the audio block (engine.block) reads ------------------
# Its size and layout version, the number of paths, the stream's input and output
# channels (the native callback's; the Python callback hands the block its arrays);
# addresses of the engine's counters (E_*), xrun ring (XRUN_RING), timing and start
# rings (TIMING_RING each), mix state (float64, X_*), output guard (float64, O_*), A/B
# tap (float32, (G_TAP_ROWS, 4)) and its position (two int64), the transport (T_*)
# and a two-int64 timespec for the block's clock; the engine's largest block; the codec
# monitor's table (C_*; 0: none). Then one row of R_COUNT fields per path.
(
    G_SIZE, G_VERSION, G_PATHS, G_IN_CH, G_OUT_CH, G_COUNTERS, G_XRUN_RING, G_TIMINGS,
    G_STARTS, G_MX, G_GUARD, G_TAP, G_TAP_ROWS, G_TAP_POS, G_TRANSPORT, G_CLOCK,
    G_MAX_BLOCK, G_CODEC, G_COUNT,
) = range(19)  # fmt: skip
# A path's row: addresses of its source buffer and aligned output (float32,
# (max_block, 2)), its state (P_*), its meter feed (float32, (R_FEED_ROWS, 2), a power
# of two) and the feed's frame count (one int64); its source (SOURCE_*: a player's
# samples, float32 (R_DATA_ROWS, R_DATA_CH); live input channels, int64
# (R_CHANNELS_COUNT,)); its chain (CHAIN_*; an isolated one's exchange table, H_*).
(
    R_BUF, R_OUT, R_ST, R_FEED, R_FEED_ROWS, R_FED, R_SOURCE, R_DATA, R_DATA_ROWS, R_DATA_CH,
    R_CHANNELS, R_CHANNELS_COUNT, R_CHAIN, R_EXCHANGE, R_COUNT,
) = range(15)  # fmt: skip
# Sources the block reads itself, and any other (the Python callback reads it).
SOURCE_SILENCE, SOURCE_INPUT, SOURCE_PLAYER, SOURCE_PYTHON = range(4)
# No chain, a stereo chain in an isolated host (the block exchanges with it), and any
# other chain (the Python callback runs it between the block's stages; a path whose
# source is read in Python has its chain run there too).
CHAIN_NONE, CHAIN_ISOLATED, CHAIN_PYTHON = range(3)

# -- Transport.state -----------------------------------------------------------------------
# Play position (frames), playing, looping, programme length, and a seek request: its
# target, then its sequence number (written after the target) and the last one applied.
T_POS, T_PLAYING, T_LOOP, T_LENGTH, T_SEEK_TO, T_SEEK_SEQ, T_SEEK_DONE, T_COUNT = range(8)

# -- the mix state (float64, rt.new_mix_state) -------------------------------------------
X_POS = 0  # crossfade position: 0 = A audible, 1 = B audible
X_TARGET = 1  # 0 or 1
X_STEP = 2  # position change per sample (1 / fade length)
X_GAIN_A = 3  # current linear loudness-match gain of A
X_GAIN_B = 4
X_GAIN_A_TARGET = 5
X_GAIN_B_TARGET = 6
X_SMOOTH = 7  # one-pole coefficient per sample for gains
X_OUT_GAIN = 8  # current monitor gain (trim x dim x mute)
X_OUT_GAIN_TARGET = 9
X_M = 10  # current 2x2 monitor matrix m00 m01 m10 m11 (out = M @ in)
X_M_TARGET = 14
X_COUNT = 18

# -- the output guard's state (float64, rt.new_guard_state) -------------------------------
O_GAIN = 0  # the gain applied now (0 muted, 1 open)
O_STEP = 1  # gain change per sample while fading (1 / ramp frames)
O_CEILING = 2  # linear ceiling (OUTPUT_CEILING_DBFS)
O_HOLD = 3  # clean frames needed before a muted output plays again
O_CLEAN = 4  # clean frames since the last offending sample, while muted
O_MUTED = 5  # 1 while muted
O_TRIPS = 6  # times the guard muted the output (written after the three below)
O_CAUSE = 7  # the latest trip's: FAULT_NONFINITE, or FAULT_ABSURD (above the ceiling)
O_LEVEL = 8  # the tripping block's peak from the first offending sample (linear; inf: NaN/Inf)
O_SOURCE = 9  # the path it came from (engine index), -1: the mix or monitor gain
O_COUNT = 10

# -- an isolated chain -------------------------------------------------------------------------
# Its callback side (``IsolatedChain.state``): the next block number, blocks found late,
# blocks played while the host was dead, whether it is dead, the wake descriptor (-1: none).
I_SEQ, I_LATE, I_DEAD_BLOCKS, I_DEAD, I_WAKE, I_COUNT = range(6)

# The shared memory with its host: ISO_SLOTS input blocks, ISO_SLOTS output blocks (float32,
# (ISO_SLOTS, max_block, channels) each), then the control words (int64, ISO_CTRL): the
# submitted block number, the done block number (each written after its block), the
# host chain's NaN/Inf blocks and error blocks, the layout version, then each slot's
# frame count.
ISO_SLOTS = 8
ISO_SUBMITTED, ISO_DONE, ISO_NONFINITE, ISO_ERRORS, ISO_VERSION, ISO_FRAMES = range(6)
ISO_CTRL = ISO_FRAMES + ISO_SLOTS

# Its exchange table (``IsolatedChain.exchange``), what the block needs to hand it a
# block: addresses of the input and output slots, the control words, the callback
# side (I_*) and the returned block (float32, (max_block, channels)); the pipeline
# depth, the largest block, the channels, and the wake-up's 8-byte increment (1).
H_X, H_Y, H_CTRL, H_STATE, H_OUT, H_DEPTH, H_MAX_BLOCK, H_CHANNELS, H_ONE, H_COUNT = range(10)


# -- the codec monitor (engine.codec_host) -----------------------------------------------------
# Its table (``CodecMonitor.table``), what the block's codec stage reads: the exchange
# table (H_*) of its host, addresses of a stereo copy of the mix and of the delayed
# clean mix (float32, (max_block, 2) each), the clean delay line (float32, (C_RING_ROWS,
# 2)) and its write position, the delay (frames), what is heard (CODEC_*), blocks heard
# clean because the host was late, dead or returned garbage, and blocks run.
(
    C_EXCHANGE, C_X, C_CLEAN, C_RING, C_RING_ROWS, C_RING_POS, C_DELAY, C_MODE, C_FALLBACKS,
    C_BLOCKS, C_COUNT,
) = range(11)  # fmt: skip
# What the codec stage plays: the mix as it is (no delay), the mix delayed like the
# decoded stream, the decoded stream, the decoded stream minus the delayed mix.
CODEC_OFF, CODEC_CLEAN, CODEC_ON, CODEC_ARTEFACTS = range(4)
# The modes by the names commands, views and the state frame use.
CODEC_MODES: dict[str, int] = {
    "off": CODEC_OFF,
    "clean": CODEC_CLEAN,
    "on": CODEC_ON,
    "artefacts": CODEC_ARTEFACTS,
}
# The host's readings (float64, after its isolated layout in the same shared memory):
# the clean and decoded true peaks (dBTP, -inf before any audio) and overs (samples at
# or above full scale) since the last reset, the decoded stream's underruns, and the
# host's delay (frames, its pre-fill included) and pre-fill, and the blocks the callback
# wrote over before the host read them (a host scheduled far too late).
(
    CS_TP_CLEAN, CS_TP_CODEC, CS_OVERS_CLEAN, CS_OVERS_CODEC, CS_UNDERRUNS, CS_DELAY,
    CS_PREFILL, CS_LOST, CS_COUNT,
) = range(9)  # fmt: skip


def codec_shm_bytes(max_block: int) -> int:
    """The size of a codec host's shared memory: a stereo isolated layout, then CS_*."""
    return isolated_shm_bytes(max_block, 2) + CS_COUNT * 8


def codec_stats_view(buf: Any, max_block: int) -> np.ndarray:
    """The codec host's readings (CS_*) in its shared memory ``buf``."""
    return np.ndarray(
        (CS_COUNT,), dtype=np.float64, buffer=buf, offset=isolated_shm_bytes(max_block, 2)
    )


def isolated_shm_bytes(max_block: int, channels: int) -> int:
    """The size of an isolated chain's shared memory (slots, then control words)."""
    return 2 * _ring_bytes(max_block, channels) + ISO_CTRL * 8


def isolated_views(
    buf: Any, max_block: int, channels: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The input slots, output slots and control words of an isolated chain's shared
    memory ``buf`` (see ``ISO_*``), as arrays on it."""
    ring = _ring_bytes(max_block, channels)
    shape = (ISO_SLOTS, max_block, channels)
    x = np.ndarray(shape, dtype=np.float32, buffer=buf, offset=0)
    y = np.ndarray(shape, dtype=np.float32, buffer=buf, offset=ring)
    ctrl = np.ndarray((ISO_CTRL,), dtype=np.int64, buffer=buf, offset=2 * ring)
    return x, y, ctrl


def _ring_bytes(max_block: int, channels: int) -> int:
    return ISO_SLOTS * max_block * channels * 4


def address(a: np.ndarray) -> int:
    """``a``'s data address for a table (C-contiguous arrays only: the block indexes
    them as such)."""
    if not a.flags.c_contiguous:
        raise ValueError("the audio block needs C-contiguous arrays")
    return int(a.ctypes.data)
