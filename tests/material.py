"""Synthesized programme material for the detector tests, with answers known by construction.

- ``acoustic_piece``: plucked strings (additive, per-harmonic decay) in phrases with big
  dynamics and rests, recorded quiet, like a solo acoustic guitar: unprocessed, so no
  detector should fire under the acoustic or jazz profile.
- ``orchestral_piece``: bowed sections (many detuned voices with vibrato, bow noise)
  swelling from pp to a tutti with timpani and back to a single woodwind line, in a
  synthetic hall: the widest dynamics, nothing processed.
- ``target_noise``: a steady beat of noise whose long-term spectrum follows a profile's
  tonal target curve exactly (so its highs sit on the target by construction).
- ``cymbal_passage``: bright, unprocessed cymbal and hi-hat hits alone (no body).
- ``with_bursts``: quiet noise with short bursts at known places and known peaks
  (``clipped_burst``: samples beyond full scale; ``inter_sample_burst``: a true peak
  3 dB above samples that stay within full scale), e.g. ``SEVEN_PLACES``.

Everything is numpy, deterministic for a seed, stereo float64 (frames, 2).
"""

from __future__ import annotations

import numpy as np

from earmark.meters.bands import band_edges

FS = 48000


def _pan(mono: np.ndarray, position: float) -> np.ndarray:
    angle = (position + 1.0) * np.pi / 4.0
    return np.stack([mono * np.cos(angle), mono * np.sin(angle)], axis=1)


def _place(out: np.ndarray, sound: np.ndarray, start: int) -> None:
    end = min(len(out), start + len(sound))
    if end > start >= 0:
        out[start:end] += sound[: end - start]


def _hall(
    x: np.ndarray, fs: int, rng: np.random.Generator, rt60_s: float, wet: float
) -> np.ndarray:
    """Convolve with a decorrelated stereo exponential-noise tail (a synthetic hall)."""
    n_ir = int(rt60_s * fs)
    t = np.arange(n_ir) / fs
    env = 10.0 ** (-3.0 * t / rt60_s)  # -60 dB at rt60
    out = np.empty_like(x)
    n = len(x) + n_ir
    size = 1 << int(np.ceil(np.log2(n)))
    for c in range(x.shape[1]):
        ir = rng.standard_normal(n_ir) * env
        # Air absorbs the highs in a hall: a gentle low-pass on the tail.
        spec = np.fft.rfft(ir, size)
        f = np.fft.rfftfreq(size, 1.0 / fs)
        spec /= np.sqrt(1.0 + (f / 4000.0) ** 2)
        ir = np.fft.irfft(spec, size)[:n_ir]
        ir /= np.sqrt(np.sum(ir**2))
        tail = np.fft.irfft(np.fft.rfft(x[:, c], size) * np.fft.rfft(ir, size), size)[: len(x)]
        out[:, c] = x[:, c] + wet * tail
    return out


def _pluck(freq_hz: float, seconds: float, fs: int, rng: np.random.Generator) -> np.ndarray:
    """A plucked string: harmonics with a pluck-position comb, higher ones dying faster."""
    n = int(seconds * fs)
    t = np.arange(n) / fs
    out = np.zeros(n)
    position = 0.13 + 0.04 * rng.random()  # pluck point along the string
    for k in range(1, 30):
        f = k * freq_hz * (1.0 + 0.0004 * k * k) ** 0.5  # slight inharmonicity
        if f > 0.45 * fs:
            break
        amp = abs(np.sin(np.pi * k * position)) / k
        decay = 1.2 + 0.35 * k * k**0.5
        out += amp * np.exp(-decay * t) * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
    attack = np.minimum(1.0, t / 0.002)
    return out * attack


def acoustic_piece(seconds: float = 40.0, fs: int = FS, seed: int = 3) -> np.ndarray:
    """A quiet, dynamic solo plucked-string piece (see module docstring)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * fs)
    out = np.zeros((n, 2))
    # Open-position chords (MIDI notes), arpeggiated; phrases of 4 bars with rests.
    chords = [(40, 47, 52, 55, 59, 64), (45, 52, 57, 60, 64), (43, 47, 50, 55, 59, 67),
              (38, 45, 50, 57, 62, 66)]  # fmt: skip
    beat_s = 0.42
    t_s = 0.3
    step = 0
    # One recorded pluck per note and string position, as a sampled instrument plays them.
    plucks: dict[tuple[int, int], np.ndarray] = {}
    while t_s < seconds - 2.0:
        phrase = (step // 32) % 3  # p, mf, f phrases in turn: wide dynamics
        level = (0.12, 0.35, 0.9)[phrase]
        if step % 32 >= 28:  # a rest at the end of each phrase
            t_s += beat_s / 2
            step += 1
            continue
        chord = chords[(step // 8) % len(chords)]
        note = chord[(step * 3) % len(chord)]
        freq = 440.0 * 2.0 ** ((note - 69) / 12.0)
        vel = level * (0.8 + 0.4 * rng.random())
        key = (note, int(rng.integers(2)))
        if key not in plucks:
            plucks[key] = _pluck(freq, 2.0, fs, rng)
        sound = plucks[key] * vel
        _place(out, _pan(sound, rng.uniform(-0.3, 0.3)), int((t_s + 0.01 * rng.random()) * fs))
        t_s += beat_s / 2
        step += 1
    out = _hall(out, fs, rng, rt60_s=1.2, wet=0.25)
    # Recorded quiet: peaks at -9 dBFS.
    return out * (10.0 ** (-9.0 / 20.0) / np.max(np.abs(out)))


def orchestral_piece(seconds: float = 60.0, fs: int = FS, seed: int = 5) -> np.ndarray:
    """pp strings swelling to a tutti with timpani, then a lone woodwind line (see docstring)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * fs)
    t = np.arange(n) / fs
    out = np.zeros((n, 2))
    # Dynamics (linear gain): pp -> ff over the first half, hold, then down to pp.
    shape = np.interp(
        t / seconds, [0.0, 0.15, 0.45, 0.6, 0.75, 1.0], [0.02, 0.05, 1.0, 1.0, 0.03, 0.015]
    )
    chords = [(48, 55, 60, 64, 67, 72), (45, 52, 57, 60, 64, 69), (41, 48, 53, 57, 60, 65),
              (43, 50, 55, 59, 62, 67)]  # fmt: skip
    chord_s = seconds / 10.0
    for ci in range(10):
        lo, hi = int(ci * chord_s * fs), int((ci + 1) * chord_s * fs)
        seg = np.zeros((hi - lo, 2))
        tt = t[lo:hi]
        for note in chords[ci % len(chords)]:
            base = 440.0 * 2.0 ** ((note - 69) / 12.0)
            for _voice in range(3):  # a section: detuned players with their own vibrato
                detune = 1.0 + 0.003 * rng.standard_normal()
                vib = 0.004 * np.sin(2 * np.pi * rng.uniform(4.5, 6.0) * tt + rng.uniform(0, 6.3))
                phase = 2 * np.pi * base * detune * np.cumsum(1.0 + vib) / fs
                voice = np.zeros(len(tt))
                for k in range(1, 11):
                    if k * base > 0.4 * fs:
                        break
                    # Bowed-string harmonic roll-off, steeper above the body resonances.
                    amp = 1.0 / k ** (1.4 if k * base < 2000 else 2.6)
                    voice += amp * np.sin(k * phase + rng.uniform(0, 6.3))
                seg += _pan(voice, rng.uniform(-0.8, 0.8)) * 0.05
        fade = np.minimum(
            1.0, np.minimum(np.arange(hi - lo), np.arange(hi - lo)[::-1]) / (0.3 * fs)
        )
        out[lo:hi] += seg * fade[:, None]
    # Bow noise: band-limited noise following the dynamics.
    noise = np.fft.irfft(
        np.fft.rfft(rng.standard_normal((n, 2)), axis=0) * _band(n, fs, 300, 6000)[:, None],
        n,
        axis=0,
    )
    out += 0.004 * noise / noise.std()
    out *= shape[:, None]
    # Timpani at the climax: decaying low tones with a stick noise.
    for hit_s in np.arange(0.38, 0.62, 0.04) * seconds:
        m = int(1.5 * fs)
        tt = np.arange(m) / fs
        tone = np.sin(2 * np.pi * 98.0 * tt) * np.exp(-3.0 * tt) + 0.5 * np.sin(
            2 * np.pi * 147 * tt
        ) * np.exp(-4.0 * tt)
        stick = rng.standard_normal(m) * np.exp(-60.0 * tt) * 0.3
        _place(out, _pan((tone + stick) * 0.5, -0.2), int(hit_s * fs))
    # The woodwind line at the end: one voice with vibrato, pp.
    start = int(0.8 * seconds * fs)
    tt = t[start:] - t[start]
    melody = np.repeat([72, 74, 76, 74, 72, 71, 72], int(np.ceil(len(tt) / 7)))[: len(tt)]
    freq = 440.0 * 2.0 ** ((melody - 69) / 12.0) * (1 + 0.005 * np.sin(2 * np.pi * 5.2 * tt))
    phase = 2 * np.pi * np.cumsum(freq) / fs
    line = np.sin(phase) + 0.3 * np.sin(2 * phase) + 0.1 * np.sin(3 * phase)
    out[start:] += _pan(line * 0.02, 0.3)
    out = _hall(out, fs, rng, rt60_s=2.2, wet=0.5)
    return out * (10.0 ** (-3.0 / 20.0) / np.max(np.abs(out)))


def _band(n: int, fs: int, lo: float, hi: float) -> np.ndarray:
    f = np.fft.rfftfreq(n, 1.0 / fs)
    return ((f >= lo) & (f <= hi)).astype(float)


def target_noise(
    levels_db: list[float] | np.ndarray,
    seconds: float = 30.0,
    fs: int = FS,
    seed: int = 1,
    beat_hz: float = 2.0,
    section_s: float = 8.0,
    section_db: float = 6.0,
) -> np.ndarray:
    """Noise whose 1/3-octave levels follow ``levels_db`` (per nominal band, NaN = empty),
    under a 120 BPM envelope (a beat with transients, not a drone), in sections of
    ``section_s`` alternating ``section_db`` apart (verse and chorus: a loudness range).

    The levels are relative: only the shape matters; the result peaks near -6 dBFS.
    """
    rng = np.random.default_rng(seed)
    n = int(seconds * fs)
    _, lo, hi = band_edges(fs)
    levels = np.asarray(levels_db, dtype=float)[: len(lo)]
    f = np.fft.rfftfreq(n, 1.0 / fs)
    gain = np.zeros_like(f)
    for b in range(len(lo)):
        if not np.isfinite(levels[b]):
            continue
        sel = (f >= lo[b]) & (f < hi[b])
        if sel.any():
            # Equal power per band at 0 dB: divide by the band's share of bins.
            gain[sel] = 10.0 ** (levels[b] / 20.0) / np.sqrt(sel.sum())
    spec = np.fft.rfft(rng.standard_normal((n, 2)), axis=0) * gain[:, None]
    x = np.fft.irfft(spec, n, axis=0)
    t = np.arange(n) / fs
    env = 0.35 + 0.65 * np.exp(-((t * beat_hz) % 1.0) * 9.0)
    quiet = (t // section_s) % 2 == 1
    env = env * np.where(quiet, 10.0 ** (-section_db / 20.0), 1.0)
    x = x * env[:, None]
    return x * (10.0 ** (-6.0 / 20.0) / np.max(np.abs(x)))


def cymbal_passage(seconds: float = 12.0, fs: int = FS, seed: int = 7) -> np.ndarray:
    """Ride and hi-hat hits alone: bright band-passed noise with metallic decays, no body."""
    rng = np.random.default_rng(seed)
    n = int(seconds * fs)
    out = np.zeros((n, 2))
    for hit_s in np.arange(0.1, seconds - 0.5, 0.25):
        m = int(0.8 * fs)
        tt = np.arange(m) / fs
        noise = rng.standard_normal(m)
        spec = np.fft.rfft(noise) * _band(m, fs, 3000, 16000)
        # A few inharmonic partials ring on (the cymbal's bell).
        hit = np.fft.irfft(spec, m) * np.exp(-tt * (6.0 if int(hit_s * 4) % 4 else 2.5))
        for f0 in (3150.0, 4470.0, 5620.0, 7290.0):
            hit += 0.02 * np.sin(2 * np.pi * f0 * rng.uniform(0.98, 1.02) * tt) * np.exp(-3 * tt)
        _place(out, _pan(hit, rng.uniform(-0.5, 0.5)), int(hit_s * fs))
    return out * (10.0 ** (-8.0 / 20.0) / np.max(np.abs(out)))


# Seven places (start s, peak dB): 60 s of programme with overs from 23.0 to 59.2 s, the
# worst at 55.0 s.
SEVEN_PLACES = ((23.0, 1.2), (29.0, 0.5), (35.5, 2.0), (41.0, 0.8), (47.0, 3.1), (55.0, 3.96),
                (59.1, 1.5))  # fmt: skip


def clipped_burst(db: float, fs: int = FS) -> np.ndarray:
    """20 ms of a 1 kHz sine whose samples hit its crest (48 a cycle at 48 kHz): sample
    peak ``db`` dBFS, beyond full scale when positive."""
    return 10 ** (db / 20) * np.sin(2 * np.pi * 1000.0 * np.arange(int(0.02 * fs)) / fs)


def inter_sample_burst(db: float, fs: int = FS) -> np.ndarray:
    """20 ms of fs/4 at 45 degrees (EBU Tech 3341 case 19's shape): samples at ``db - 3``
    dBFS, true peak ``db`` dBTP; faded in and out over 4 ms so its edges do not ring."""
    n = np.arange(int(0.02 * fs))
    fade = np.minimum(1.0, np.minimum(n, n[::-1]) / (0.004 * fs))
    return 10 ** ((db - 3.0) / 20) * np.sqrt(2) * np.sin(np.pi / 2 * n + np.pi / 4) * fade


def with_bursts(places, burst=clipped_burst, seconds: float = 60.0, fs: int = FS) -> np.ndarray:
    """``seconds`` of quiet noise (true peak far below -1 dBTP) with ``burst(db)`` at each
    (start s, db) place; stereo float32, both channels alike."""
    rng = np.random.default_rng(7)
    x = 0.05 * rng.standard_normal(int(seconds * fs))
    for start_s, db in places:
        b = burst(db, fs)
        i = int(round(start_s * fs))
        x[i : i + len(b)] = b
    return np.ascontiguousarray(np.stack([x, x], 1), dtype=np.float32)
