"""Deterministic demo material: an unmastered stereo mix and an over-eager master of it.

``earmark demo``, the tests and the detectors need music they can trust without
shipping audio files: a mix with real kick transients, a stereo image that is
neither mono nor fake-wide, a quieter breakdown (so the loudness range is not
zero) and unmastered levels (about -18.5 LUFS, peaks around -4 dBFS). The
"aggressive master" is what an over-eager automatic mastering service returns
for it: heavily compressed, bright, limited to about -7 LUFS. Everything here is
synthesised with numpy (no per-sample Python loops) and is bit-identical for the
same arguments.

Nothing is generated above 0.45 fs at any sample rate from 8 kHz to 384 kHz:
partials are capped below it and every noise-based hit is band-limited by an
FFT mask, so analysis at high frequencies sees music, not aliasing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pedalboard
import soundfile as sf

from earmark.meters.bank import integrated_lufs

# Arrangement. 120 BPM on a 16th-note grid, one chord per bar.
BPM = 120.0
BEATS_PER_BAR = 4
STEPS_PER_BEAT = 4  # 16th notes
STEPS_PER_BAR = BEATS_PER_BAR * STEPS_PER_BEAT

# i-VI-III-VII in A minor: (bass root as MIDI note, pad voicing as MIDI notes).
# Bass roots sit in the first octave (44-65 Hz) like a real mix's low end.
PROGRESSION: tuple[tuple[int, tuple[int, ...]], ...] = (
    (33, (57, 60, 64)),  # Am
    (29, (57, 60, 65)),  # F
    (36, (55, 60, 64)),  # C
    (31, (55, 59, 62)),  # G
)

KICK_STEPS = (0, 8, 10)
SNARE_STEPS = (4, 12)
OPEN_HAT_STEP = 14  # replaces the closed hat there on every second bar
# (step, semitones above the root, length in steps): a syncopated 8th-note line.
BASS_PATTERN: tuple[tuple[int, int, int], ...] = (
    (0, 0, 3),
    (3, 0, 2),
    (6, 12, 2),
    (8, 0, 3),
    (11, 0, 2),
    (14, 7, 2),
)

# The breakdown sits at roughly 55-75 % of the length: drums out except soft
# hats, bass reduced to one long note per bar, pad unchanged.
BREAKDOWN_START_FRACTION = 0.55
BREAKDOWN_END_FRACTION = 0.75

# The mix is scaled so that the median of its per-bar sample peaks sits here: the
# loudest hit then lands 0.2-0.8 dB higher (about -4 dBFS), like an unmastered
# bounce with headroom. A median, unlike the maximum, does not let one lucky
# coincidence of hits set the level of the whole mix.
MIX_BAR_PEAK_DBFS = -4.4
NYQUIST_GUARD = 0.45  # nothing is generated above this fraction of the sample rate

MIN_SAMPLE_RATE = 8000
MAX_SAMPLE_RATE = 384000

MASTER_CEILING_DBFS = -0.3  # sample-peak ceiling of aggressive_master

# Levels before the final normalisation, relative to the kick's peak. Drum hits
# are peak-normalised like drum samples, so their gains are their peak levels
# (snare -2 dB, closed hats -13 dB, open hats -16 dB). Balanced by ear and so that
# drum peaks set the mix peak while the loudness lands near -18.5 LUFS (PLR ~14.5 dB).
_KICK_GAIN = 1.0
_SNARE_GAIN = 0.79
_HAT_GAIN = 0.22
_OPEN_HAT_GAIN = 0.16
_BASS_GAIN = 0.265
_PAD_GAIN = 0.036

_HAT_PAN = 0.35  # -1 left .. +1 right
_OPEN_HAT_PAN = -0.25
_PAD_HAAS_S = 0.011  # right channel of the pad delayed: width without phase cancellation in mono
_SNARE_ECHO_STEPS = (3, 6)  # dotted-8th ping-pong: right first, then left
_SNARE_ECHO_GAINS = (0.22, 0.12)


@dataclass(frozen=True, slots=True)
class DemoLayout:
    """Where things happen in :func:`demo_mix` of a given length (known by construction)."""

    seconds: float
    beat_s: float
    step_s: float
    breakdown_start_s: float  # equal to breakdown_end_s when the mix is too short for one
    breakdown_end_s: float
    kick_onsets_s: tuple[float, ...]
    snare_onsets_s: tuple[float, ...]


def demo_layout(seconds: float = 30.0) -> DemoLayout:
    """Return the arrangement of a ``seconds`` long demo mix (independent of rate and seed)."""
    _check_seconds(seconds)
    beat_s = 60.0 / BPM
    step_s = beat_s / STEPS_PER_BEAT
    bar_s = beat_s * BEATS_PER_BAR
    # Bar-aligned like an arranged song when there are enough bars, else beat-aligned.
    unit_s = bar_s if seconds >= 5 * bar_s else beat_s
    start_s = round(BREAKDOWN_START_FRACTION * seconds / unit_s) * unit_s
    end_s = round(BREAKDOWN_END_FRACTION * seconds / unit_s) * unit_s
    end_s = max(min(end_s, seconds), start_s)

    n_steps = int(np.ceil(seconds / step_s))
    steps = np.arange(n_steps)
    t_s = steps * step_s
    groove = (t_s < start_s) | (t_s >= end_s)
    in_bar = steps % STEPS_PER_BAR
    kicks = t_s[groove & np.isin(in_bar, KICK_STEPS)]
    snares = t_s[groove & np.isin(in_bar, SNARE_STEPS)]
    return DemoLayout(
        seconds=float(seconds),
        beat_s=beat_s,
        step_s=step_s,
        breakdown_start_s=float(start_s),
        breakdown_end_s=float(end_s),
        kick_onsets_s=tuple(float(t) for t in kicks),
        snare_onsets_s=tuple(float(t) for t in snares),
    )


def demo_mix(seconds: float = 30.0, sample_rate: int = 48000, seed: int = 0) -> np.ndarray:
    """Synthesise a music-like unmastered stereo mix.

    A 120 BPM groove (pitch-swept kick with a click, snare with noise and room,
    panned closed and open hats, a bass line following an Am-F-C-G progression,
    a detuned low-passed saw pad spread by detune and a Haas delay) with a
    quieter breakdown, see :func:`demo_layout`. Levels are those of an
    unmastered mix: sample peaks around -4 dBFS (see ``MIX_BAR_PEAK_DBFS``),
    integrated loudness near -18.5 LUFS, crest factor well above 12 dB.

    Args:
        seconds: Length; the output has ``round(seconds * sample_rate)`` frames.
        sample_rate: 8000 to 384000 Hz.
        seed: Non-negative; varies velocities, hat ghost notes, noise and pad
            phases, not the arrangement.

    Returns:
        float32 array shaped (frames, 2), bit-identical for the same arguments.
    """
    _check_seconds(seconds)
    _check_sample_rate(sample_rate)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")

    layout = demo_layout(seconds)
    fs = int(sample_rate)
    frames = round(seconds * fs)
    out = np.zeros((frames, 2))
    # One generator per instrument, so a change to one part never reshuffles another.
    rng_kick, rng_snare, rng_hats, rng_pad = (
        np.random.default_rng(s) for s in np.random.SeedSequence(int(seed)).spawn(4)
    )

    step_s = layout.step_s
    n_steps = int(np.ceil(seconds / step_s))
    steps = np.arange(n_steps)
    t_s = steps * step_s
    in_bar = steps % STEPS_PER_BAR
    bar = steps // STEPS_PER_BAR
    breakdown = (t_s >= layout.breakdown_start_s) & (t_s < layout.breakdown_end_s)

    # Drums: one rendered template per sound (a small round-robin pool for the
    # noisy ones, as drum samplers do), overlaid at the onsets with velocities.
    # Hits carry a silent lead for their filter's pre-ringing: place them that much early.
    lead = _lead_frames(fs)
    kick = _pan(_kick(fs, rng_kick), 0.0)
    for t in layout.kick_onsets_s:
        vel = 1.0 + 0.03 * float(np.clip(rng_kick.standard_normal(), -2, 2))
        _place(out, kick, round(t * fs) - lead, _KICK_GAIN * vel)

    snares = [_snare(fs, rng_snare) for _ in range(4)]
    snare_stem = np.zeros_like(out)
    for t in layout.snare_onsets_s:
        vel = 1.0 + 0.06 * float(np.clip(rng_snare.standard_normal(), -2, 2))
        _place(snare_stem, snares[rng_snare.integers(len(snares))], round(t * fs) - lead, vel)
    out += _SNARE_GAIN * _ping_pong(snare_stem, round(step_s * fs))

    closed = [_pan(_hat(fs, rng_hats, decay_s=0.028, length_s=0.15), _HAT_PAN) for _ in range(6)]
    opened = [_pan(_hat(fs, rng_hats, decay_s=0.16, length_s=0.6), _OPEN_HAT_PAN) for _ in range(3)]
    for i in range(n_steps):
        eighth = in_bar[i] % 2 == 0
        is_open = in_bar[i] == OPEN_HAT_STEP and bar[i] % 2 == 1 and not breakdown[i]
        # Ghost 16ths are drawn for every step so the pattern does not shift with length.
        ghost = rng_hats.random() < 0.3
        jitter = 1.0 + 0.1 * float(np.clip(rng_hats.standard_normal(), -2, 2))
        pick = rng_hats.integers(6)
        if is_open:
            _place(out, opened[pick % 3], round(t_s[i] * fs) - lead, _OPEN_HAT_GAIN * jitter)
            continue
        if eighth:
            vel = 1.0 if in_bar[i] % 4 == 2 else 0.7  # off-beat accents
        elif ghost:
            vel = 0.35
        else:
            continue
        if breakdown[i]:
            vel *= 0.45
        _place(out, closed[pick], round(t_s[i] * fs) - lead, _HAT_GAIN * vel * jitter)

    # Bass: a note per pattern entry, one long softer note per bar in the breakdown.
    # Notes repeat, so each distinct (pitch, length) is rendered once.
    bass_notes: dict[tuple[int, int], np.ndarray] = {}

    def bass(note: int, steps: int) -> np.ndarray:
        if (note, steps) not in bass_notes:
            bass_notes[note, steps] = _bass_note(fs, note, steps * step_s)
        return bass_notes[note, steps]

    for i in range(n_steps):
        root = PROGRESSION[bar[i] % len(PROGRESSION)][0]
        if breakdown[i]:
            if in_bar[i] == 0:
                _place(out, bass(root, STEPS_PER_BAR), round(t_s[i] * fs), 0.55 * _BASS_GAIN)
            continue
        for step, interval, length in BASS_PATTERN:
            if in_bar[i] == step:
                _place(out, bass(root + interval, length), round(t_s[i] * fs), _BASS_GAIN)

    # Pad: one chord per bar; the progression loops, so each chord is rendered once
    # (with start phases from the seed, as a free-running synth would have).
    bar_s = STEPS_PER_BAR * step_s
    n_bars = int(np.ceil(seconds / bar_s))
    pads = [
        _pad_chord(fs, c, bar_s, rng_pad.random((len(PROGRESSION[c][1]), 4)))
        for c in range(min(n_bars, len(PROGRESSION)))
    ]
    for b in range(n_bars):
        _place(out, pads[b % len(PROGRESSION)], round(b * bar_s * fs), _PAD_GAIN)

    # A short fade so a cut-off tail does not end in a click.
    fade = min(frames, round(0.03 * fs))
    if fade:
        out[frames - fade :] *= (0.5 + 0.5 * np.cos(np.linspace(0.0, np.pi, fade)))[:, None]

    bar_frames = round(bar_s * fs)
    n_full = frames // bar_frames
    if n_full >= 1:
        bar_peaks = np.max(np.abs(out[: n_full * bar_frames]).reshape(n_full, -1), axis=1)
        peak = float(np.median(bar_peaks))
    else:
        peak = float(np.max(np.abs(out)))
    if peak > 0.0:
        out *= 10.0 ** (MIX_BAR_PEAK_DBFS / 20.0) / peak
    return out.astype(np.float32)


def aggressive_master(mix: np.ndarray, sample_rate: int, target_lufs: float = -7.0) -> np.ndarray:
    """Master ``mix`` the way an over-eager automatic service does.

    Heavy fast compression (threshold -24 dB, ratio 7:1, 3 ms attack), a +6 dB
    high shelf at 4 kHz, then drive into pedalboard's brickwall Limiter with a
    -0.3 dBFS sample-peak ceiling. The limiter threshold (and with it the drive)
    is searched, measuring integrated loudness with :class:`earmark.meters.MeterBank`,
    until the result is within 0.1 LU of ``target_lufs`` (at most four passes).

    Like many loud masters it is limited on samples, not true peaks: the
    limiter's instantaneous gain changes leave inter-sample overs of 1-3 dBTP
    at 44.1/48 kHz, which is part of what earmark should flag.

    Args:
        mix: float array shaped (frames, channels).
        sample_rate: In Hz.
        target_lufs: Integrated loudness to reach.

    Returns:
        float32 array of the same shape as ``mix``.
    """
    x = np.asarray(mix, dtype=np.float32)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"mix must be shaped (frames, channels) with both > 0, got {x.shape}")
    fs = float(sample_rate)
    shelf_hz = min(4000.0, 0.4 * fs)  # a shelf at or above Nyquist is undefined
    board = pedalboard.Pedalboard(
        [
            pedalboard.Compressor(threshold_db=-24.0, ratio=7.0, attack_ms=3.0, release_ms=80.0),
            pedalboard.HighShelfFilter(cutoff_frequency_hz=shelf_hz, gain_db=6.0, q=0.707),
        ]
    )
    # pedalboard takes (channels, frames); transposing explicitly avoids its shape guess.
    pre = board(np.ascontiguousarray(x.T), fs)

    ceiling = 10.0 ** (MASTER_CEILING_DBFS / 20.0)

    def limited(threshold_db: float) -> np.ndarray:
        # pedalboard's (JUCE's) Limiter raises its makeup gain as the threshold drops
        # and clips at full scale, so its peaks sit at 1.0; scaling puts them at the
        # ceiling, and the clip guards the ceiling against float rounding.
        y = pedalboard.Limiter(threshold_db=threshold_db, release_ms=60.0)(pre, fs)
        return np.clip(y * ceiling, -ceiling, ceiling).astype(np.float32)

    pre_lufs = integrated_lufs(pre.T, sample_rate)
    if pre_lufs is None:  # silence: nothing to drive
        return limited(0.0).T.copy()

    # Below the threshold the limiter's gain is about -threshold + 3.75 dB (its first,
    # fixed 4:1 stage adds 3.75 dB), so that is the first guess; limiting then loses
    # some loudness, which the secant steps make up.
    threshold = min(0.0, pre_lufs + 3.75 + MASTER_CEILING_DBFS - target_lufs)
    y = limited(threshold)
    lufs = integrated_lufs(y.T, sample_rate)
    prev: tuple[float, float] | None = None
    for _ in range(3):
        if lufs is None or abs(lufs - target_lufs) <= 0.1:
            break
        slope = 1.0
        if prev is not None and prev[0] != threshold:
            slope = (lufs - prev[1]) / (prev[0] - threshold)  # dB louder per dB lower threshold
            slope = float(np.clip(slope, 0.2, 1.5))
        prev = (threshold, lufs)
        threshold = min(0.0, threshold - (target_lufs - lufs) / slope)
        y = limited(threshold)
        lufs = integrated_lufs(y.T, sample_rate)
    return np.ascontiguousarray(y.T)


def through_chain(
    audio: np.ndarray, sample_rate: int, chain: str, blocksize: int = 512
) -> np.ndarray:
    """``audio`` through the chain preset or file ``chain``, offline (``demo --offline``).

    The chain runs block by block, as the audio callback runs it in ``earmark
    demo``; its latency is flushed with silence and removed, so the result lines
    up with ``audio`` sample for sample. Raises what loading and building the
    chain raise (``PresetError`` naming the file and line, ``OSError``).
    """
    from .chains import load_chain
    from .chains.render import render

    x = np.ascontiguousarray(audio, dtype=np.float32)
    return render(load_chain(chain), x, sample_rate, tail=False, block_frames=blocksize).audio


def write_demo_files(
    directory: str | Path, seconds: float = 30.0, sample_rate: int = 48000
) -> tuple[Path, Path]:
    """Write ``demo-mix.wav`` and ``demo-master-aggressive.wav`` (24-bit PCM) to ``directory``.

    The directory is created if needed; existing files are overwritten.

    Returns:
        The paths of the mix and of the master.
    """
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    mix = demo_mix(seconds, sample_rate)
    master = aggressive_master(mix, sample_rate)
    mix_path = folder / "demo-mix.wav"
    master_path = folder / "demo-master-aggressive.wav"
    sf.write(mix_path, mix, sample_rate, subtype="PCM_24")
    sf.write(master_path, master, sample_rate, subtype="PCM_24")
    return mix_path, master_path


# --- synthesis helpers ---------------------------------------------------------


def _check_seconds(seconds: float) -> None:
    if not np.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"seconds must be finite and > 0, got {seconds!r}")


def _check_sample_rate(sample_rate: int) -> None:
    if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE or int(sample_rate) != sample_rate:
        raise ValueError(
            f"sample_rate must be an integer in [{MIN_SAMPLE_RATE}, {MAX_SAMPLE_RATE}] Hz, "
            f"got {sample_rate!r}"
        )


def _midi_hz(note: float) -> float:
    return 440.0 * 2.0 ** ((note - 69.0) / 12.0)


def _place(out: np.ndarray, sound: np.ndarray, start: int, gain: float) -> None:
    """Add ``gain * sound`` into ``out`` from frame ``start``, clipped to both ends."""
    begin = max(start, 0)
    end = min(start + sound.shape[0], out.shape[0])
    if end > begin:
        out[begin:end] += gain * sound[begin - start : end - start]


def _pan(mono: np.ndarray, position: float) -> np.ndarray:
    """Constant-power pan, position -1 (left) .. +1 (right); centre is -3 dB per side."""
    angle = (position + 1.0) * np.pi / 4.0
    return np.stack([mono * np.cos(angle), mono * np.sin(angle)], axis=1) * np.sqrt(2.0)


_HIT_MARGIN_S = 0.004  # room for the pre-ringing of the zero-phase band-limiting filter


def _band_limit(
    x: np.ndarray, sample_rate: int, low_hz: float = 0.0, high_hz: float | None = None
) -> np.ndarray:
    """Zero-phase band-pass along axis 0 with raised-cosine edges, top edge <= 0.45 fs.

    ``x`` must start and end with ``_HIT_MARGIN_S`` of silence so that the
    filter's (short) ringing neither wraps around nor is cut off.
    """
    fs = float(sample_rate)
    low0, low1, top0, top1 = _band_edges(fs, low_hz, high_hz)
    n = x.shape[0]
    n_fft = 1 << int(np.ceil(np.log2(max(n, 2))))
    spectrum = np.fft.rfft(x, n_fft, axis=0)
    f = np.fft.rfftfreq(n_fft, 1.0 / fs)
    mask = _raised_cosine_step(f, top0, top1, rising=False)
    if low1 > 0.0:
        mask *= _raised_cosine_step(f, low0, low1, rising=True)
    shape = (-1,) + (1,) * (x.ndim - 1)
    return np.fft.irfft(spectrum * mask.reshape(shape), n_fft, axis=0)[:n]


def _band_edges(fs: float, low_hz: float, high_hz: float | None) -> tuple[float, ...]:
    """(low start, low end, top start, top end) of :func:`_band_limit`'s pass band in Hz.

    Edges are a sixth of an octave wide (short ringing, no audible filter
    character); at low sample rates the band slides down below 0.45 fs
    rather than vanishing, so hats stay hats at 8 kHz.
    """
    top1 = NYQUIST_GUARD * fs if high_hz is None else min(high_hz, NYQUIST_GUARD * fs)
    top0 = top1 / 2 ** (1 / 6)
    low1 = min(low_hz, 0.6 * top0)
    low0 = low1 / 2 ** (1 / 6)
    return low0, low1, top0, top1


def _band_rms(fs: int, low_hz: float, high_hz: float) -> float:
    """RMS of unit white noise after :func:`_band_limit`, to make noise levels independent of fs."""
    low0, low1, top0, top1 = _band_edges(float(fs), low_hz, high_hz)
    # A raised-cosine edge passes 3/8 of the power of its width.
    width_hz = (top0 - low1) + 0.375 * (top1 - top0) + 0.375 * (low1 - low0)
    return float(np.sqrt(width_hz / (fs / 2.0)))


def _raised_cosine_step(f: np.ndarray, f0: float, f1: float, *, rising: bool) -> np.ndarray:
    ramp = np.clip((f - f0) / max(f1 - f0, 1e-9), 0.0, 1.0)
    up = 0.5 - 0.5 * np.cos(np.pi * ramp)
    return up if rising else 1.0 - up


def _lead_frames(sample_rate: int) -> int:
    return round(_HIT_MARGIN_S * sample_rate)


def _padded_time(length_s: float, sample_rate: int) -> np.ndarray:
    """Time axis of a hit with silent margins of :func:`_lead_frames` (t < 0 before the onset)."""
    lead = _lead_frames(sample_rate)
    n = round(length_s * sample_rate)
    return (np.arange(n + 2 * lead) - lead) / sample_rate


def _gate(t: np.ndarray, length_s: float, fade_s: float) -> np.ndarray:
    """1 from t=0, raised-cosine fade to 0 over the last ``fade_s`` before ``length_s``."""
    g = np.clip((length_s - t) / fade_s, 0.0, 1.0)
    g = 0.5 - 0.5 * np.cos(np.pi * g)
    return np.where(t >= 0.0, g, 0.0)


def _kick(fs: int, rng: np.random.Generator) -> np.ndarray:
    """Pitch-swept sine (180 -> 50 Hz) with soft saturation and a beater click."""
    t = _padded_time(0.5, fs)
    tp = np.maximum(t, 0.0)
    f_start, f_end, sweep_s = 180.0, 50.0, 0.025
    phase = 2 * np.pi * (f_end * tp + (f_start - f_end) * sweep_s * (1 - np.exp(-tp / sweep_s)))
    body = np.sin(phase) * (0.7 * np.exp(-tp / 0.065) + 0.3 * np.exp(-tp / 0.012))
    body = np.tanh(0.8 * body) / np.tanh(0.8)  # a little drive, as kick samples have
    click = rng.standard_normal(t.size) * np.exp(-tp / 0.0015) * (t >= 0)
    click = 0.45 * _band_limit(click, fs, 1200.0, 5000.0) / _band_rms(fs, 1200.0, 5000.0)
    kick = (body + click) * _gate(t, 0.5, 0.06)
    return _peak_normalised(_band_limit(kick, fs))


def _snare(fs: int, rng: np.random.Generator) -> np.ndarray:
    """Two decaying tones, a band-passed noise burst and a decorrelated stereo room tail."""
    length_s = 0.7
    t = _padded_time(length_s, fs)
    tp = np.maximum(t, 0.0)
    on = t >= 0.0
    tone = 0.5 * np.sin(2 * np.pi * 185.0 * tp) * np.exp(-tp / 0.05)
    tone += 0.3 * np.sin(2 * np.pi * 330.0 * tp) * np.exp(-tp / 0.035)
    burst = rng.standard_normal(t.size) * np.exp(-tp / 0.09) * on
    burst = 0.9 * _band_limit(burst, fs, 1000.0, 9000.0) / _band_rms(fs, 1000.0, 9000.0)
    body = (tone + burst) * _gate(t, length_s, 0.05)
    room = (
        rng.standard_normal((t.size, 2))
        * (np.exp(-tp / 0.2) * on * _gate(t, length_s, 0.2))[:, None]
    )
    room = 0.16 * _band_limit(room, fs, 400.0, 6000.0) / _band_rms(fs, 400.0, 6000.0)
    stereo = body[:, None] + room
    return _peak_normalised(_band_limit(stereo, fs))


def _hat(fs: int, rng: np.random.Generator, decay_s: float, length_s: float) -> np.ndarray:
    """High-passed noise (7-16 kHz, scaled into the band below 0.45 fs) with a fast decay."""
    t = _padded_time(length_s, fs)
    tp = np.maximum(t, 0.0)
    noise = rng.standard_normal(t.size) * np.exp(-tp / decay_s) * _gate(t, length_s, length_s / 3)
    return _peak_normalised(_band_limit(noise, fs, 7000.0, 16000.0))


def _peak_normalised(x: np.ndarray) -> np.ndarray:
    # Like a drum sample: the level of a hit does not depend on its noise's luck.
    return x / np.max(np.abs(x))


def _bass_note(fs: int, note: int, length_s: float) -> np.ndarray:
    """Sine plus decaying harmonics (a low-passed saw-like tone), gated to ``length_s``.

    The release ends with the note: a bass player damps one note as the next
    starts, and two overlapping notes in phase would stack into a peak.
    """
    release_s = 0.03
    n = round(length_s * fs)
    t = np.arange(n) / fs
    f0 = _midi_hz(note)
    tone = np.zeros(n)
    for k, a in enumerate((1.0, 0.5, 0.32, 0.2, 0.12, 0.07), start=1):
        if k * f0 < NYQUIST_GUARD * fs:
            tone += a * np.sin(2 * np.pi * k * f0 * t)
    attack = 0.5 - 0.5 * np.cos(np.pi * np.clip(t / 0.004, 0.0, 1.0))
    decay = 0.65 + 0.35 * np.exp(-t / 0.12)
    env = attack * decay * _gate(t, length_s, release_s)
    return _pan(tone * env, 0.0)


def _pad_chord(fs: int, chord: int, bar_s: float, phases: np.ndarray) -> np.ndarray:
    """Detuned, low-passed saws; left and right detuned apart and the right Haas-delayed."""
    notes = PROGRESSION[chord][1]
    release_s, attack_s = 0.5, 0.25
    n = round((bar_s + release_s) * fs)
    t = np.arange(n) / fs
    attack = 0.5 - 0.5 * np.cos(np.pi * np.clip(t / attack_s, 0.0, 1.0))
    env = attack * _gate(t, bar_s + release_s, release_s + 0.1)
    detune_cents = ((-9.0, 3.0), (9.0, -3.0))  # left voices, right voices
    out = np.zeros((n, 2))
    for i, note in enumerate(notes):
        for ch in range(2):
            for v, cents in enumerate(detune_cents[ch]):
                f = _midi_hz(note + cents / 100.0)
                out[:, ch] += _saw(f, fs, t, phases[i, 2 * ch + v], cutoff_hz=1800.0)
    out *= env[:, None]
    delay = round(_PAD_HAAS_S * fs)
    out[:, 1] = np.concatenate([np.zeros(delay), out[: n - delay, 1]])
    return out


def _saw(freq_hz: float, fs: int, t: np.ndarray, phase: float, cutoff_hz: float) -> np.ndarray:
    """Band-limited saw through a 2-pole low-pass, played from a one-cycle wavetable."""
    size = 4096
    k_max = int(min(NYQUIST_GUARD * fs, 6 * cutoff_hz) // freq_hz)
    k_max = max(1, min(k_max, size // 2 - 1))
    k = np.arange(1, k_max + 1)
    weights = (1.0 / k) / np.sqrt(1.0 + (k * freq_hz / cutoff_hz) ** 4)
    spectrum = np.zeros(size // 2 + 1, dtype=complex)
    spectrum[1 : k_max + 1] = -1j * weights * size / 2  # sine series: sum w_k sin(2 pi k x)
    table = np.fft.irfft(spectrum, size)
    table = np.append(table, table[0])
    pos = np.mod(freq_hz * t + phase, 1.0) * size
    return np.interp(pos, np.arange(size + 1), table)


def _ping_pong(stem: np.ndarray, step_frames: int) -> np.ndarray:
    """Add a dotted-8th echo to the right, then the left (mono sum of the stem)."""
    out = stem.copy()
    mono = stem.mean(axis=1)
    for ch, (steps, gain) in enumerate(zip(_SNARE_ECHO_STEPS, _SNARE_ECHO_GAINS, strict=True)):
        d = steps * step_frames
        if d < stem.shape[0]:
            out[d:, 1 - ch] += gain * mono[: stem.shape[0] - d]
    return out
