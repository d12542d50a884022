"""Blind listening: ABX and "which one is processed?" between loudness-matched paths, and
training on the engineer's own music with an adaptive staircase.

One concept: the listening test. It prepares the material (an excerpt, the known
changes rendered at decreasing amounts, every version loudness-matched by measurement
and given the same headroom), holds the hidden truth of each trial, turns the
listener's auditions into engine commands, scores the answers (binomial p-value,
response time) and, in training, moves an adaptive staircase to the smallest change
the engineer hears. No audio runs here: the engine plays the prepared paths, and the
command line (earmark.cli.listen) reads the keys and stores each answer as it is given
(earmark.store.listening).

The paths: 0 is the reference (the excerpt as it is, or file A); 1.. are the processed
versions, one per staircase level (or file B). A trial compares path 0 with one of
them: in ABX, A is path 0, B the processed one and X one of the two, drawn at random;
in "which", intervals 1 and 2 are the two in a random order and the answer names the
processed one.
"""

from __future__ import annotations

import dataclasses
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from earmark.meters.bank import integrated_lufs

__all__ = [
    "CHANGES",
    "BlindTest",
    "Change",
    "Material",
    "Staircase",
    "Trial",
    "binomial_p",
    "loudest_excerpt",
    "prepare_files",
    "prepare_training",
]

Mode = Literal["abx", "which"]

# Headroom every version of a test gets, the same gain for all of them: a boosted
# version that clipped the converter would give itself away by its distortion.
PEAK_CEILING_DBFS = -1.0
# Fades at the ends of the looped excerpt (the loop point would click otherwise).
FADE_S = 0.02
# Rendered before the excerpt and dropped: filters and compressors settle first.
PREROLL_S = 1.0
# How close a compressor's measured gain reduction is brought to the amount asked for.
GR_TOLERANCE_DB = 0.05


@dataclass(frozen=True)
class Change:
    """A kind of processing the training renders at decreasing amounts.

    ``levels`` are the amounts, easiest first (roughly a third of an octave apart in
    log terms, inference); ``matched`` is False for a level change, which loudness
    matching would undo.
    """

    name: str
    unit: str
    levels: tuple[float, ...]
    what: str  # "{amount}" is replaced by the amount
    matched: bool = True


# The examples: a +3, +2, +1, +0.5 dB shelf; compression with 6, 3, 1.5 dB of
# gain reduction; 1 dB of level. The ladders extend them both ways so a sharp listener
# does not sit on the floor and a tired one on the ceiling.
CHANGES: dict[str, Change] = {
    c.name: c
    for c in (
        Change(
            "shelf",
            "dB",
            (6.0, 4.0, 3.0, 2.0, 1.5, 1.0, 0.7, 0.5, 0.35, 0.25),
            "a high shelf at 4 kHz, +{amount} dB (loudness-matched)",
        ),
        Change(
            "compression",
            "dB GR",
            (8.0, 6.0, 4.0, 3.0, 2.0, 1.5, 1.0, 0.7, 0.5),
            "4:1 compression, 5 ms attack, 100 ms release, {amount} dB of gain reduction "
            "(loudness-matched)",
        ),
        Change(
            "level",
            "dB",
            (3.0, 2.0, 1.5, 1.0, 0.7, 0.5, 0.35, 0.25, 0.15),
            "{amount} dB louder (not matched: the level is the change)",
            matched=False,
        ),
    )
}


# -- statistics ---------------------------------------------------------------------------


def binomial_p(correct: int, trials: int) -> float:
    """One-sided p-value of ``correct`` answers or more out of ``trials`` by guessing
    (chance 1/2): the probability a listener who hears nothing does at least as well."""
    if trials <= 0:
        return 1.0
    correct = max(0, min(correct, trials))
    return sum(math.comb(trials, k) for k in range(correct, trials + 1)) / 2.0**trials


class Staircase:
    """Two-down one-up adaptive staircase over a ladder of amounts (easiest first).

    Two correct answers in a row make the next trial harder (one step down the
    ladder), one wrong answer makes it easier: it converges on the amount heard 70.7 %
    of the time (Levitt 1971, J. Acoust. Soc. Am. 49, 467-477). It stops after
    ``reversals`` changes of direction or ``max_trials`` trials; the threshold is the
    geometric mean of the amounts at the last ``reversals - 2`` reversals (the first
    two are the approach from the easy end; geometric because the ladder is
    logarithmic, inference).
    """

    def __init__(self, levels: Sequence[float], reversals: int = 8, max_trials: int = 48) -> None:
        if len(levels) < 2:
            raise ValueError("a staircase needs at least two levels")
        self.levels = tuple(float(v) for v in levels)
        self.reversals_wanted = max(3, int(reversals))
        self.max_trials = int(max_trials)
        self.index = 0
        self.trials = 0
        self._streak = 0
        self._direction = 0  # +1 harder, -1 easier, 0 not moved yet
        self.reversal_amounts: list[float] = []

    @property
    def amount(self) -> float:
        """The amount of the next trial."""
        return self.levels[self.index]

    @property
    def done(self) -> bool:
        return len(self.reversal_amounts) >= self.reversals_wanted or self.trials >= self.max_trials

    def record(self, correct: bool) -> None:
        """Move on the ladder after an answer at :attr:`amount`."""
        self.trials += 1
        move = 0
        if correct:
            self._streak += 1
            if self._streak >= 2:
                self._streak = 0
                move = +1
        else:
            self._streak = 0
            move = -1
        if move == 0:
            return
        if self._direction and move != self._direction:
            self.reversal_amounts.append(self.amount)
        self._direction = move
        self.index = min(max(self.index + move, 0), len(self.levels) - 1)

    def threshold(self) -> tuple[float | None, str, str]:
        """(amount, relation, how it was found). relation "=": the reversals' geometric
        mean; "<=": the listener was still right at the ladder's smallest amount (an upper
        bound); ">": still wrong at its largest (a lower bound); None: too few reversals."""
        used = self.reversal_amounts[2:] or self.reversal_amounts
        if len(used) >= 2:
            value = float(np.exp(np.mean(np.log(used))))
            return value, "=", f"mean of {len(used)} reversals"
        if self.trials and self.index == len(self.levels) - 1:
            return self.levels[-1], "<=", "still heard at the smallest amount"
        if self.trials and self.index == 0:
            return self.levels[0], ">", "not heard at the largest amount"
        return None, "", "too few reversals"


# -- trials ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Trial:
    """One answered trial. ``truth`` and ``answer`` are "A"/"B" in ABX (what X was), "1"/"2"
    in "which" (the processed interval)."""

    n: int
    amount: float | None
    truth: str
    answer: str
    correct: bool
    response_s: float
    time: float


@dataclass
class BlindTest:
    """The hidden side of a test: each trial's truth, what each audition plays, the score.

    ``levels`` gives the processed path of each staircase level (path ``1 + i``), or one
    processed path for two files; ``staircase`` is None for a fixed number of trials.
    """

    mode: Mode
    paths: int
    trials_wanted: int = 16
    staircase: Staircase | None = None
    rng: random.Random = field(default_factory=random.SystemRandom)
    answered: list[Trial] = field(default_factory=list)
    truth: str = ""
    processed_path: int = 1
    _started: float = 0.0

    def __post_init__(self) -> None:
        if self.mode not in ("abx", "which"):
            raise ValueError(f"mode must be abx or which, got {self.mode!r}")

    @property
    def done(self) -> bool:
        if self.staircase is not None:
            return self.staircase.done
        return len(self.answered) >= self.trials_wanted

    @property
    def amount(self) -> float | None:
        return self.staircase.amount if self.staircase is not None else None

    def begin(self, now: float | None = None) -> list[tuple]:
        """Draw the next trial's truth; the engine commands that set it up (reference
        against this level's processed path, the first audition selected)."""
        self.processed_path = 1 + (self.staircase.index if self.staircase is not None else 0)
        self.truth = self.rng.choice(("A", "B") if self.mode == "abx" else ("1", "2"))
        self._started = time.monotonic() if now is None else now
        first = "A" if self.mode == "abx" else "1"
        return [("compare", 0, self.processed_path), *self.audition(first)]

    def audition(self, label: str) -> list[tuple]:
        """The engine commands that make ``label`` audible: "A", "B", "X" (ABX) or "1",
        "2" ("which"). The engine's A is path 0, its B the processed path."""
        label = label.upper()
        if self.mode == "abx":
            if label not in ("A", "B", "X"):
                raise ValueError(f"ABX plays A, B or X, not {label!r}")
            side = self.truth if label == "X" else label
        else:
            if label not in ("1", "2"):
                raise ValueError(f"intervals are 1 and 2, not {label!r}")
            # The processed interval is the truth; the other one is the reference.
            side = "B" if label == self.truth else "A"
        return [("select", side)]

    def answer(self, answer: str, now: float | None = None) -> Trial:
        """Score the listener's answer: in ABX what X is ("A"/"B"), in "which" the
        interval heard as processed ("1"/"2")."""
        answer = answer.upper()
        allowed = ("A", "B") if self.mode == "abx" else ("1", "2")
        if answer not in allowed:
            raise ValueError(f"answer one of {', '.join(allowed)}, not {answer!r}")
        if not self.truth:
            raise RuntimeError("answer() before begin()")
        t = time.monotonic() if now is None else now
        trial = Trial(
            n=len(self.answered) + 1,
            amount=self.amount,
            truth=self.truth,
            answer=answer,
            correct=answer == self.truth,
            response_s=max(0.0, t - self._started),
            time=time.time(),
        )
        self.answered.append(trial)
        if self.staircase is not None:
            self.staircase.record(trial.correct)
        self.truth = ""
        return trial

    @property
    def correct(self) -> int:
        return sum(t.correct for t in self.answered)

    def p_value(self) -> float:
        """The binomial p-value of the answers so far (chance 1/2)."""
        return binomial_p(self.correct, len(self.answered))


# -- material ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Material:
    """Prepared paths: ``audio[0]`` the reference, ``audio[1:]`` the processed versions
    (one per level, or file B); ``names`` for the engine's paths; ``trim_db`` the
    common headroom gain applied to all."""

    audio: tuple[np.ndarray, ...]
    names: tuple[str, ...]
    sample_rate: int
    start_s: float
    seconds: float
    trim_db: float
    matched_lu: tuple[float | None, ...]  # each version's loudness after matching
    # Compression training: each version's measured gain reduction (with its pre-roll).
    gain_reduction_db: tuple[float | None, ...] = ()


def loudest_excerpt(x: np.ndarray, sample_rate: int, seconds: float) -> float:
    """Where the loudest ``seconds`` of ``x`` start (momentary loudness averaged as energy
    over the window): the chorus, where a small change is easiest to hear."""
    from earmark.offline.analysis import meter_history

    if x.shape[0] <= seconds * sample_rate:
        return 0.0
    h = meter_history(x, sample_rate)
    energy = np.where(np.isfinite(h.momentary_lufs), 10.0 ** (h.momentary_lufs / 10.0), 0.0)
    rows = max(1, int(round(seconds * 10)))
    if len(energy) <= rows:
        return 0.0
    sums = np.convolve(energy, np.ones(rows), mode="valid")
    end_row = int(np.argmax(sums)) + rows - 1
    # A row's momentary loudness covers the 400 ms before its end time.
    start = float(h.t_s[end_row]) - seconds
    return float(min(max(0.0, start), x.shape[0] / sample_rate - seconds))


def _excerpt(x: np.ndarray, sample_rate: int, start_s: float, seconds: float) -> np.ndarray:
    a = int(round(start_s * sample_rate))
    return x[a : a + int(round(seconds * sample_rate))]


def _fade(x: np.ndarray, sample_rate: int) -> np.ndarray:
    n = min(int(FADE_S * sample_rate), x.shape[0] // 2)
    if n < 2:
        return x
    ramp = (0.5 - 0.5 * np.cos(np.linspace(0.0, math.pi, n)))[:, None].astype(x.dtype)
    y = x.copy()
    y[:n] *= ramp
    y[-n:] *= ramp[::-1]
    return y


def _render(
    change: Change, amount: float, x: np.ndarray, sample_rate: int
) -> tuple[np.ndarray, float | None]:
    """``x`` (with its pre-roll) through ``change`` at ``amount``; and, for compression, the
    gain reduction measured on it (dB)."""
    import pedalboard

    if change.name == "shelf":
        board = pedalboard.Pedalboard(
            [pedalboard.HighShelfFilter(cutoff_frequency_hz=4000.0, gain_db=amount, q=0.7071)]
        )
    elif change.name == "level":
        board = pedalboard.Pedalboard([pedalboard.Gain(gain_db=amount)])
    elif change.name == "compression":
        return _compress_to(amount, x, sample_rate)
    else:
        raise ValueError(f"unknown change {change.name!r}")
    return board(x.T.astype(np.float32), sample_rate).T, None


def _compress_to(gr_db: float, x: np.ndarray, sample_rate: int) -> tuple[np.ndarray, float | None]:
    """4:1 compression whose threshold is found so the measured gain reduction (integrated
    loudness in minus out, before any make-up) is ``gr_db``: bisection, rendering each
    trial threshold (the reduction depends on the music, so it is measured, not set)."""
    import pedalboard

    ref = integrated_lufs(x, sample_rate)
    if ref is None:
        raise ValueError("the excerpt is silent")

    def run(threshold_db: float) -> tuple[np.ndarray, float]:
        comp = pedalboard.Compressor(
            threshold_db=threshold_db, ratio=4.0, attack_ms=5.0, release_ms=100.0
        )
        y = pedalboard.Pedalboard([comp])(x.T.astype(np.float32), sample_rate).T
        out = integrated_lufs(y, sample_rate)
        return y, (ref - out) if out is not None else math.inf

    lo, hi = -80.0, 0.0  # threshold: lower means more reduction
    y, gr = run(hi)
    for _ in range(30):
        mid = 0.5 * (lo + hi)
        y, gr = run(mid)
        if abs(gr - gr_db) <= GR_TOLERANCE_DB:
            break
        if gr > gr_db:
            lo = mid
        else:
            hi = mid
    return y, gr


def _finish(
    versions: list[np.ndarray],
    names: list[str],
    sample_rate: int,
    matched: Sequence[bool],
    start_s: float,
    seconds: float,
) -> Material:
    """Loudness-match the versions that should be (to the reference), give all of them
    the same headroom, fade the loop's ends."""
    ref_lufs = integrated_lufs(versions[0], sample_rate)
    if ref_lufs is None:
        raise ValueError("the excerpt is silent: choose another --start")
    out: list[np.ndarray] = []
    for y, match in zip(versions, matched, strict=True):
        if match:
            lufs = integrated_lufs(y, sample_rate)
            if lufs is None:
                raise ValueError("a processed version is silent")
            y = y * np.float32(10.0 ** ((ref_lufs - lufs) / 20.0))
        out.append(np.ascontiguousarray(y, dtype=np.float32))
    peak = max(float(np.max(np.abs(y))) for y in out)
    trim_db = min(0.0, PEAK_CEILING_DBFS - 20.0 * math.log10(max(peak, 1e-9)))
    g = np.float32(10.0 ** (trim_db / 20.0))
    out = [_fade(y * g, sample_rate) for y in out]
    return Material(
        audio=tuple(out),
        names=tuple(names),
        sample_rate=sample_rate,
        start_s=start_s,
        seconds=seconds,
        trim_db=trim_db,
        matched_lu=tuple(integrated_lufs(y, sample_rate) for y in out),
    )


def prepare_training(
    x: np.ndarray,
    sample_rate: int,
    change: Change,
    start_s: float | None = None,
    seconds: float = 20.0,
) -> Material:
    """The excerpt of ``x`` (frames, channels) and ``change`` at every level of its ladder,
    each rendered with a pre-roll, loudness-matched (unless the change is the level) and
    given the same headroom. ``start_s`` None: the loudest ``seconds``."""
    x = np.asarray(x, dtype=np.float32)
    seconds = min(seconds, x.shape[0] / sample_rate)
    if start_s is None:
        start_s = loudest_excerpt(x, sample_rate, seconds)
    pre = min(PREROLL_S, start_s)
    long = _excerpt(x, sample_rate, start_s - pre, seconds + pre)
    cut = int(round(pre * sample_rate))
    versions = [long[cut:]]
    measured: list[float | None] = [None]
    for amount in change.levels:
        y, gr = _render(change, amount, long, sample_rate)
        versions.append(y[cut:])
        measured.append(gr)
    names = ["reference"] + [f"{change.name} {a:g} {change.unit}" for a in change.levels]
    matched = [False] + [change.matched] * len(change.levels)
    material = _finish(versions, names, sample_rate, matched, start_s, seconds)
    return dataclasses.replace(material, gain_reduction_db=tuple(measured))


def prepare_files(
    a: np.ndarray,
    b: np.ndarray,
    sample_rate: int,
    names: tuple[str, str],
    start_s: float | None = None,
    seconds: float = 20.0,
) -> Material:
    """Two files (already at ``sample_rate``, time-aligned) as a blind pair: the same
    excerpt of each (``start_s`` None: A's loudest ``seconds``), B matched to A."""
    frames = min(a.shape[0], b.shape[0])
    seconds = min(seconds, frames / sample_rate)
    if start_s is None:
        start_s = loudest_excerpt(a[:frames], sample_rate, seconds)
    versions = [
        _excerpt(a, sample_rate, start_s, seconds),
        _excerpt(b, sample_rate, start_s, seconds),
    ]
    return _finish(versions, list(names), sample_rate, [False, True], start_s, seconds)
