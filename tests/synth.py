"""Test signals whose measured values are known by construction (EBU Tech 3341/3342 style)."""

from __future__ import annotations

import numpy as np


def sine(
    level_dbfs: float,
    seconds: float,
    sample_rate: int = 48000,
    freq_hz: float = 1000.0,
    phase_deg: float = 0.0,
    channels: int = 2,
    fade_s: float = 0.0,
    dtype: type = np.float64,
) -> np.ndarray:
    """A sine of the given peak level on every channel, shape (frames, channels).

    ``fade_s`` applies raised-cosine fades: an abrupt start makes the
    band-limited signal overshoot its own amplitude between samples.
    """
    n = int(round(seconds * sample_rate))
    t = np.arange(n) / sample_rate
    x = 10.0 ** (level_dbfs / 20.0) * np.sin(2 * np.pi * freq_hz * t + np.deg2rad(phase_deg))
    if fade_s > 0:
        k = int(round(fade_s * sample_rate))
        ramp = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, k))
        x[:k] *= ramp
        x[-k:] *= ramp[::-1]
    return np.repeat(x[:, None], channels, axis=1).astype(dtype)


def sequence(*parts: np.ndarray) -> np.ndarray:
    """Concatenate signal parts in time."""
    return np.concatenate(parts, axis=0)


def tone_steps(
    levels_dbfs: list[float], seconds: list[float], sample_rate: int = 48000, channels: int = 2
) -> np.ndarray:
    """1 kHz stereo sine at a sequence of levels, phase-continuous across steps."""
    n = [int(round(s * sample_rate)) for s in seconds]
    t = np.arange(sum(n)) / sample_rate
    amp = np.concatenate(
        [np.full(k, 10.0 ** (lv / 20.0)) for lv, k in zip(levels_dbfs, n, strict=True)]
    )
    x = amp * np.sin(2 * np.pi * 1000.0 * t)
    return np.repeat(x[:, None], channels, axis=1)


def music_like(seconds: float, sample_rate: int, channels: int = 2, seed: int = 0) -> np.ndarray:
    """Broadband, dynamic, partly correlated stereo material: shaped noise with beats and tones.

    Not music, but it has what meters care about: a falling spectrum, transients
    at a tempo, level changes over seconds, and a stereo image that is neither
    mono nor uncorrelated.
    """
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sample_rate))
    t = np.arange(n) / sample_rate

    # Pink-ish noise: white noise shaped by 1/sqrt(f) in the frequency domain.
    def pink() -> np.ndarray:
        spec = np.fft.rfft(rng.standard_normal(n))
        f = np.fft.rfftfreq(n, 1.0 / sample_rate)
        spec[1:] /= np.sqrt(f[1:] / 100.0)
        spec[0] = 0.0
        spec[f > 0.45 * sample_rate] = 0.0
        y = np.fft.irfft(spec, n)
        return y / np.std(y)

    common = pink()
    beat = np.exp(-((t * 2.0) % 1.0) * 18.0)  # 120 BPM decaying hits
    swell = 0.55 + 0.45 * np.sin(2 * np.pi * t / max(seconds / 2.0, 1.0))  # slow level changes
    tones = 0.3 * np.sin(2 * np.pi * 110.0 * t) + 0.15 * np.sin(2 * np.pi * 440.0 * t)
    out = np.empty((n, channels))
    for c in range(channels):
        own = pink()
        out[:, c] = swell * (0.6 * common + 0.4 * own) * (0.25 + beat) * 0.12 + swell * tones * 0.2
    return out
