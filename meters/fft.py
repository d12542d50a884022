"""A small in-place radix-2 FFT for numba kernels (numpy's FFT is not callable in nopython mode).

The tables are built once in Python; the transform itself neither allocates nor
holds the GIL, so it can run inside the metering kernel on the audio path.
"""

from __future__ import annotations

import numba as nb
import numpy as np


def fft_tables(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Bit-reversal permutation and twiddle factors for a length-``n`` transform."""
    if n < 2 or n & (n - 1):
        raise ValueError(f"FFT length must be a power of two, got {n}")
    bits = n.bit_length() - 1
    idx = np.arange(n)
    rev = np.zeros(n, dtype=np.int64)
    for b in range(bits):
        rev |= ((idx >> b) & 1) << (bits - 1 - b)
    twiddle = np.exp(-2j * np.pi * np.arange(n // 2) / n).astype(np.complex128)
    return rev, twiddle


@nb.njit(cache=True, nogil=True)
def fft_inplace(z: np.ndarray, rev: np.ndarray, twiddle: np.ndarray) -> None:
    """Forward DFT of ``z`` in place (no normalisation)."""
    n = z.shape[0]
    for i in range(n):
        j = rev[i]
        if j > i:
            t = z[i]
            z[i] = z[j]
            z[j] = t
    fft_bitreversed_inplace(z, twiddle)


@nb.njit(cache=True, nogil=True)
def fft_bitreversed_inplace(z: np.ndarray, twiddle: np.ndarray) -> None:
    """Forward DFT in place of input already stored in bit-reversed order.

    Callers that fill ``z`` themselves write sample k to ``z[rev[k]]`` and skip
    the permutation pass.
    """
    n = z.shape[0]
    size = 2
    while size <= n:
        fft_stage(z, twiddle, size)
        size *= 2


def fft_stages(n: int) -> int:
    """How many butterfly stages (``fft_stage`` calls) a length-``n`` transform takes."""
    return n.bit_length() - 1


@nb.njit(cache=True, nogil=True)
def fft_stage(z: np.ndarray, twiddle: np.ndarray, size: int) -> None:
    """One radix-2 butterfly stage (span ``size``) of ``fft_bitreversed_inplace``.

    Running the stages one at a time, in order size = 2, 4, ..., n, gives the same
    transform: the live meters spread a frame's stages over several audio blocks so
    that no single callback pays for a whole FFT.
    """
    n = z.shape[0]
    half = size // 2
    step = n // size
    if half < 8:
        # Short spans: the twiddle is fixed per k, the groups are many.
        for k in range(half):
            w = twiddle[k * step]
            for start in range(0, n, size):
                a = z[start + k]
                b = z[start + k + half] * w
                z[start + k] = a + b
                z[start + k + half] = a - b
    else:
        for start in range(0, n, size):
            for k in range(half):
                w = twiddle[k * step]
                a = z[start + k]
                b = z[start + k + half] * w
                z[start + k] = a + b
                z[start + k + half] = a - b
