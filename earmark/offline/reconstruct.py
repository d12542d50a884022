"""``diff --chain``: what a master did, as an editable chain of pedalboard built-ins, checked.

:func:`reconstruct` turns a :class:`~earmark.offline.transform.Transformation` (MIX
-> MASTER) into a chain: the EQ moves diff fitted (shelves, bells, cuts), a
compressor from the level transfer and its envelope, the make-up gain, a limiter at
the ceiling. Then it renders MIX through the chain, measures the render with
earmark's own meters against MASTER and corrects (render and correct, a few rounds):
the gain into the limiter and the ceiling from the loudness and true-peak misses, and
a 1/3-octave correction EQ fitted by least squares to the long-term spectrum's miss.
Each plugin carries the evidence it came from, written into the preset as a comment.

:func:`fidelity` is the check ``diff --chain`` prints every time (issue 20;
docs/reference.md "Reconstruction fidelity"): integrated loudness within 0.5 LU,
every 1/3-octave band of the long-term spectrum from 50 Hz to 16 kHz within 1 dB,
PSR median within 1 dB, true peak within 0.5 dB, LRA within 1 LU.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from earmark.engine.chains import ChainSpec, PluginSpec
from earmark.engine.chains.render import render
from earmark.meters.diff import EqMove, eq_move_response_db
from earmark.meters.flags import hz_text
from earmark.offline.analysis import Analysis, analyze
from earmark.presets.tomltools import chain_text

__all__ = [
    "TOLERANCES",
    "Criterion",
    "Fidelity",
    "Reconstruction",
    "Stage",
    "fidelity",
    "reconstruct",
    "reconstruct_file",
]

#: The fidelity check's tolerances (issue 20; docs/reference.md "Reconstruction fidelity").
TOLERANCES: dict[str, float] = {
    "integrated_lufs": 0.5,  # LU
    "band_db": 1.0,  # every 1/3-octave band, 50 Hz - 16 kHz
    "psr_median_db": 1.0,
    "true_peak_dbtp": 0.5,
    "loudness_range_lu": 1.0,
}
BAND_LOW_HZ, BAND_HIGH_HZ = 50.0, 16000.0

_ROUNDS = 8  # render-and-correct rounds after the first render (inference)
_POLISH_ROUNDS = 2  # rounds after a first pass, while a measure is past half its tolerance
_THIRD_OCTAVE_Q = 4.32  # a bell one third of an octave wide (bandwidth N = 1/3: Q = 4.32)
_MIN_CORRECTION_DB = 0.2  # a correction bell smaller than this is left out
_DEAD_BAND_DB = 0.25  # a band missing the master by less than this needs no bell
_MAX_CORRECTION_DB = 12.0
_RIDGE = 0.05  # keeps the least-squares bells from fighting each other in a band
_LIMITER_LOOKAHEAD_MS = 5.0
_LIMITER_RELEASE_MS = 100.0  # inference: diff measures no limiter release; a common setting
_PSR_STEP_DB = 0.5  # a PSR miss from which the compressor's attack is corrected
_LRA_STEP_LU = 0.5  # an LRA miss from which the compressor's release is corrected
_OVERS_DB = 0.5  # true peak this far above the sample peak: the limiter clips (inference)
_CLIP_THRESHOLD_DB = -3.0  # the clipping limiter's first drive; render and correct moves it
_JUCE_MAKEUP_DB = 3.75  # pedalboard.Limiter's gain below its knee at threshold 0 (measured)


@dataclass
class Stage:
    """One plugin of the reconstruction: a built-in, its parameters, the evidence."""

    builtin: str
    params: dict[str, float | bool]  # canonical preset keys (units in the names)
    label: str
    evidence: str
    role: str = ""  # "eq", "compressor", "gain", "limiter", "ceiling", "correction"

    def spec(self) -> PluginSpec:
        """The stage as a chain's plugin."""
        return PluginSpec("builtin", self.builtin, tuple(self.params.items()), label=self.label)


@dataclass(frozen=True, slots=True)
class Criterion:
    """One measure of the fidelity check, with its number and verdict."""

    key: str
    label: str
    render: float | None
    master: float | None
    difference: float | None  # render minus master
    tolerance: float
    unit: str
    passed: bool
    why: str = ""  # for a failure: which band/measure and what may cause it

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (rounded to 0.01)."""
        return {
            "key": self.key,
            "label": self.label,
            "render": _r(self.render),
            "master": _r(self.master),
            "difference": _r(self.difference),
            "tolerance": self.tolerance,
            "unit": self.unit,
            "passed": self.passed,
            "why": self.why,
        }


@dataclass(frozen=True, slots=True)
class Fidelity:
    """The fidelity check: every criterion, and whether all passed."""

    criteria: tuple[Criterion, ...]

    @property
    def passed(self) -> bool:
        """Every criterion within its tolerance."""
        return all(c.passed for c in self.criteria)

    @property
    def failed(self) -> tuple[Criterion, ...]:
        """The criteria outside their tolerance."""
        return tuple(c for c in self.criteria if not c.passed)

    def score(self) -> float:
        """How far outside the tolerances, summed (0 when it passes): picks the best round."""
        total = 0.0
        for c in self.criteria:
            if c.difference is None:
                total += 0.0 if c.passed else 10.0
            else:
                total += max(0.0, abs(c.difference) / c.tolerance - 0.5)
        return total

    def lines(self) -> list[str]:
        """One line per criterion with its number and pass/fail; the 1/3-octave bands as
        one criterion (the worst band's number), each failing band named."""
        out = []
        bands = [c for c in self.criteria if c.key.startswith("band_")]
        for c in self.criteria:
            if c.key.startswith("band_"):
                if c is bands[0]:
                    out.append(_bands_line(bands))
                continue
            verdict = "pass" if c.passed else "FAIL"
            diff = "n/a" if c.difference is None else f"{c.difference:+.2f} {c.unit}"
            line = f"{verdict}  {c.label}: {diff} (within {c.tolerance:g} {c.unit})"
            if c.why:
                line += f"; {c.why}"
            out.append(line)
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``passed`` and ``criteria``."""
        return {"passed": self.passed, "criteria": [c.to_dict() for c in self.criteria]}


@dataclass
class Reconstruction:
    """The inferred chain, the render it makes, and its fidelity against MASTER."""

    stages: list[Stage]
    fidelity: Fidelity
    rounds: int  # renders made (the first is the inference alone)
    notes: list[str] = field(default_factory=list)  # what the chain leaves out (width...)
    render_analysis: Analysis | None = None

    def spec(self, name: str = "reconstruction") -> ChainSpec:
        """The chain as a :class:`ChainSpec`."""
        return ChainSpec(name=name, plugins=tuple(s.spec() for s in self.stages))

    def toml(self, name: str, mix: str, master: str) -> str:
        """The preset's text: each plugin with its evidence as a comment above it."""
        header = [
            f"Inferred by `earmark diff {mix} {master} --chain`: the master's moves as",
            "pedalboard built-ins, refined by rendering the mix and measuring it against",
            "the master. Fidelity check: " + ("passed" if self.fidelity.passed else "FAILED"),
            *(f"  {line}" for line in self.fidelity.lines()),
            *self.notes,
        ]
        plugins = []
        for s in self.stages:
            table: dict[str, Any] = {"builtin": s.builtin, "label": s.label}
            table.update({k: _rounded_param(v) for k, v in s.params.items()})
            plugins.append((table, [s.evidence]))
        return chain_text(name, "what diff inferred the master did", plugins, header)

    def to_dict(self) -> dict[str, Any]:
        """The ``reconstruction`` object of ``diff --json --chain``."""
        return {
            "fidelity": self.fidelity.to_dict(),
            "rounds": self.rounds,
            "plugins": [
                {
                    "builtin": s.builtin,
                    "label": s.label,
                    "evidence": s.evidence,
                    "params": {k: _rounded_param(v) for k, v in s.params.items()},
                }
                for s in self.stages
            ],
            "notes": list(self.notes),
        }


def reconstruct_file(t: Any, mix: str) -> Reconstruction:
    """:func:`reconstruct` for ``earmark diff MIX MASTER --chain``: MIX read from its file
    and rendered at its own rate, MASTER's measures those ``t`` already holds."""
    from earmark.engine.files import iter_blocks, open_audio

    info = open_audio(mix)
    audio = np.concatenate(list(iter_blocks(mix, 65536, dtype="float32")))
    return reconstruct(t, audio, info.sample_rate, t.after)


def _bands_line(bands: Sequence[Criterion]) -> str:
    worst = max(bands, key=lambda c: abs(c.difference or 0.0))
    failed = [c for c in bands if not c.passed]
    head = (
        f"{'pass' if not failed else 'FAIL'}  1/3-octave bands 50 Hz-16 kHz: worst "
        f"{worst.label.removeprefix('band ')} {worst.difference:+.2f} dB (each within "
        f"{worst.tolerance:g} dB; {len(bands) - len(failed)} of {len(bands)} are)"
    )
    if failed:
        listed = ", ".join(f"{c.label.removeprefix('band ')} {c.difference:+.1f}" for c in failed)
        head += (
            f"; outside: {listed} dB: an EQ narrower than 1/3 octave, a level-dependent "
            "(dynamic or multiband) EQ, or distortion adding harmonics"
        )
    return head


# -- the fidelity check -------------------------------------------------------------------


def fidelity(rendered: Analysis, master: Analysis, stages: Sequence[Stage] = ()) -> Fidelity:
    """Render (MIX through the chain) against MASTER, measured by earmark's own meters."""
    has = {s.role for s in stages}
    crits = [
        _scalar(
            rendered,
            master,
            "integrated_lufs",
            "integrated loudness",
            "LU",
            "the gain or the drive into the limiter",
        ),
        *_bands(rendered, master),
        _scalar(
            rendered,
            master,
            "psr_median_db",
            "PSR median",
            "dB",
            "peak-to-loudness: a limiter or compressor with other time constants, "
            "or a move outside the model (clipping, saturation, multiband)"
            if "limiter" in has or "compressor" in has
            else "a dynamics move the chain has no stage for (limiting, clipping, saturation)",
        ),
        _scalar(
            rendered,
            master,
            "true_peak_dbtp",
            "true peak",
            "dB",
            "the ceiling, or inter-sample overs the master's limiter or clipper makes and "
            "the chain's does not (or the other way round)",
        ),
        _scalar(
            rendered,
            master,
            "loudness_range_lu",
            "LRA",
            "LU",
            "slow compression or automation the compressor stage does not reproduce",
        ),
    ]
    return Fidelity(tuple(crits))


def _scalar(r: Analysis, m: Analysis, key: str, label: str, unit: str, cause: str) -> Criterion:
    tol = TOLERANCES[key]
    a, b = getattr(r, key), getattr(m, key)
    if a is None or b is None:
        same = a is None and b is None
        return Criterion(
            key,
            label,
            a,
            b,
            None,
            tol,
            unit,
            same,
            "" if same else "measured in one of the two only",
        )
    d = float(a) - float(b)
    ok = abs(d) <= tol
    why = "" if ok else f"render {'above' if d > 0 else 'below'} the master: {cause}"
    return Criterion(key, label, float(a), float(b), d, tol, unit, ok, why)


def _bands(r: Analysis, m: Analysis) -> list[Criterion]:
    """One criterion per 1/3-octave band 50 Hz - 16 kHz (the worst band named first)."""
    tol = TOLERANCES["band_db"]
    out = []
    for hz, a, b in zip(m.band_hz, r.spectrum_long_db, m.spectrum_long_db, strict=False):
        if not BAND_LOW_HZ / 1.12 <= hz <= BAND_HIGH_HZ * 1.12:
            continue
        label = f"band {hz_text(hz)}"
        if a is None or b is None:
            continue  # no energy in either: nothing to reproduce
        d = float(a) - float(b)
        ok = abs(d) <= tol
        why = (
            ""
            if ok
            else (
                f"the render is {abs(d):.1f} dB {'above' if d > 0 else 'below'} the master here: "
                "an EQ narrower than 1/3 octave, a level-dependent (dynamic or multiband) EQ, or "
                "distortion adding harmonics"
            )
        )

        out.append(Criterion(f"band_{hz:.0f}_hz", label, float(a), float(b), d, tol, "dB", ok, why))
    return out


# -- inference -----------------------------------------------------------------------------


def infer(t: Any) -> tuple[list[Stage], list[str]]:
    """The chain diff's findings spell out, before any render: (stages, notes)."""
    r = t.result
    stages: list[Stage] = []
    for m in t.eq_moves:
        stages += _eq_stages(m)
    fit = r.transfer.fit
    if r.compressed:
        stages.append(
            Stage(
                "Compressor",
                {
                    "threshold_db": float(np.clip(fit.threshold_db, -100.0, 0.0)),
                    "ratio": float(np.clip(fit.ratio, 1.0, 100.0)),
                    "attack_ms": float(np.clip(r.transfer.attack_s * 1e3, 0.01, 1000.0)),
                    "release_ms": float(np.clip(r.transfer.release_s * 1e3, 1.0, 5000.0)),
                },
                "Compressor",
                f"level transfer: gain falls {1 - 1 / fit.ratio:.2f} dB per dB above "
                f"{fit.threshold_db:.1f} dBFS (fit error {fit.rms_error_db:.2f} dB against "
                f"{fit.flat_error_db:.2f} dB for a constant gain); attack and release: the "
                "detector time constants that best explain the gain envelope",
                "compressor",
            )
        )
    gain = float(t.gain_db)
    stages.append(
        Stage(
            "Gain",
            {"gain_db": gain},
            "Make-up",
            f"level transfer: {gain:+.2f} dB of broadband gain on the quiet passages"
            + ("; corrected by rendering (integrated loudness)" if r.limiting.limited else ""),
            "gain",
        )
    )
    if r.limiting.limited and r.limiting.ceiling_dbfs is not None:
        stages = _with_limiter(
            stages,
            float(r.limiting.ceiling_dbfs),
            t.after,
            f"peak pile-up: {r.limiting.pinned_fraction * 100:.1f} % of 20 ms windows peak "
            f"within 0.2 dB of {r.limiting.ceiling_dbfs:.2f} dBFS",
        )
    notes = []
    width = r.stereo.width_change_pct
    if width is not None and abs(width) >= 3.0:
        notes.append(
            f"Not reproduced: width {width:+.0f} % (side-to-mid "
            f"{r.stereo.side_to_mid_change_db:+.1f} dB); pedalboard has no mid/side built-in,"
            " so the chain leaves the width as it is."
        )
    return stages, notes


def _with_limiter(
    stages: list[Stage], ceiling_db: float, master: Analysis, evidence: str
) -> list[Stage]:
    """``stages`` ending in a limiter at ``ceiling_db``, of the kind MASTER's peaks suggest.

    True peaks well above the sample peaks (inter-sample overs) are the mark of a
    sample-peak limiter with instantaneous gain changes or a clip: pedalboard's
    ``Limiter`` (JUCE's: make-up, then a hard clip at 0 dBFS) and a Gain to the ceiling.
    Otherwise the smooth ``BrickwallLimiter`` (lookahead, no overs of its own).
    """
    ceiling = float(np.clip(ceiling_db, -60.0, 0.0))
    overs = _miss(master.true_peak_dbtp, master.sample_peak_dbfs)
    gain = next(s for s in stages if s.role == "gain")
    if overs > _OVERS_DB:
        # Limiter(T) turns the level up by 3.75 - T dB below its knee (JUCE's first stage
        # makes up 3.75 dB; measured on a sine); the make-up before it keeps the total.
        gain.params["gain_db"] = (
            float(gain.params["gain_db"]) + _CLIP_THRESHOLD_DB - _JUCE_MAKEUP_DB - ceiling
        )
        return [
            *stages,
            Stage(
                "Limiter",
                {"threshold_db": _CLIP_THRESHOLD_DB, "release_ms": _LIMITER_RELEASE_MS},
                "Limiter",
                f"{evidence}; its true peak {overs:.1f} dB above the sample peak (inter-sample "
                "overs): a sample-peak limiter that clips, as JUCE's does; threshold (the "
                "drive) corrected by rendering (integrated loudness), release: inference",
                "limiter",
            ),
            Stage(
                "Gain",
                {"gain_db": ceiling},
                "Ceiling",
                f"the master's sample-peak ceiling ({ceiling_db:.2f} dBFS) after the limiter's "
                "0 dBFS clip; corrected by rendering (true peak)",
                "ceiling",
            ),
        ]
    params: dict[str, float | bool] = {
        "ceiling_db": ceiling,
        "release_ms": _LIMITER_RELEASE_MS,
        "lookahead_ms": _LIMITER_LOOKAHEAD_MS,
        "true_peak": False,
    }
    return [
        *stages,
        Stage(
            "BrickwallLimiter",
            params,
            "Ceiling",
            f"{evidence}; ceiling corrected by rendering (true peak), release and "
            "lookahead: inference",
            "limiter",
        ),
    ]


def _eq_stages(m: EqMove) -> list[Stage]:
    evidence = f"EQ fit of the level-independent transfer curve: {m.describe()}"
    if m.kind in ("low_shelf", "high_shelf", "bell"):
        builtin = {
            "low_shelf": "LowShelfFilter",
            "high_shelf": "HighShelfFilter",
            "bell": "PeakFilter",
        }[m.kind]
        params = {
            "cutoff_frequency_hz": float(m.freq_hz),
            "gain_db": float(m.gain_db),
            "q": float(np.clip(m.q, 0.01, 100.0)),
        }
        word = {"low_shelf": "Low shelf", "high_shelf": "High shelf", "bell": "Bell"}[m.kind]
        return [Stage(builtin, params, f"{word} {hz_text(m.freq_hz)}", evidence, "eq")]
    # pedalboard's high-/low-pass built-ins are first order (6 dB/oct): a steeper cut is
    # that many in series, the same slope with a softer corner (an approximation).
    builtin = "HighpassFilter" if m.kind == "low_cut" else "LowpassFilter"
    n = max(1, int(m.slope_db_per_oct) // 6)
    note = f"; {n} first-order filters in series make its slope" if n > 1 else ""
    label = f"{'Low' if m.kind == 'low_cut' else 'High'} cut {hz_text(m.freq_hz)}"
    return [
        Stage(builtin, {"cutoff_frequency_hz": float(m.freq_hz)}, label, evidence + note, "eq")
        for _ in range(n)
    ]


# -- render and correct ------------------------------------------------------------------------


def reconstruct(
    t: Any, mix_audio: np.ndarray, sample_rate: int, master: Analysis, rounds: int = _ROUNDS
) -> Reconstruction:
    """Infer the chain from ``t`` (MIX -> MASTER), then render ``mix_audio`` through it
    and correct it against ``master`` (its :class:`Analysis`) for up to ``rounds`` rounds;
    the best round's chain (fewest misses) is kept."""
    stages, notes = infer(t)
    best: tuple[tuple[int, float], list[Stage], Fidelity, Analysis] | None = None
    made = polish = 0
    for _ in range(rounds + 1):
        got = _measure(stages, mix_audio, sample_rate)
        made += 1
        fid = fidelity(got, master, stages)
        rank = (len(fid.failed), fid.score())  # a pass beats any miss, then the margin
        if best is None or rank < best[0]:
            best = (rank, [_copy(s) for s in stages], fid, got)
        if fid.passed:
            polish += 1
            # A pass near the tolerances gets up to two more rounds to gain a margin.
            if fid.score() == 0.0 or polish > _POLISH_ROUNDS:
                break
        stages = _corrected(stages, got, master, sample_rate)
    assert best is not None
    _, kept, fid, got = best
    return Reconstruction(kept, fid, made, notes, got)


def _measure(stages: Sequence[Stage], audio: np.ndarray, sample_rate: int) -> Analysis:
    spec = ChainSpec(name="reconstruction", plugins=tuple(s.spec() for s in stages))
    out = render(spec, audio, sample_rate, tail=False).audio
    return analyze(out, sample_rate=sample_rate)


def _copy(s: Stage) -> Stage:
    return Stage(s.builtin, dict(s.params), s.label, s.evidence, s.role)


def _corrected(
    stages: list[Stage], got: Analysis, master: Analysis, sample_rate: int
) -> list[Stage]:
    """One round of corrections from the render's misses."""
    stages = [_copy(s) for s in stages]
    d_lufs = _miss(master.integrated_lufs, got.integrated_lufs)
    d_tp = _miss(master.true_peak_dbtp, got.true_peak_dbtp)
    # A limiter's ceiling holds sample peaks: it follows the master's sample peak, so the
    # render's never exceed it; the true peak follows from how hard the limiter works.
    d_sp = _miss(master.sample_peak_dbfs, got.sample_peak_dbfs)
    if abs(d_tp) > 0.8 * TOLERANCES["true_peak_dbtp"]:
        # The true peak is the criterion: when it misses, it moves the ceiling (which
        # still never goes over 0 dBFS).
        d_sp = d_tp
    gain = next(s for s in stages if s.role == "gain")
    limiter = next((s for s in stages if s.role == "limiter"), None)
    if limiter is not None and limiter.builtin == "Limiter":
        # The Gain after the clip sets the peaks; the threshold (drive) the loudness.
        ceiling = next(s for s in stages if s.role == "ceiling")
        before = float(ceiling.params["gain_db"])
        ceiling.params["gain_db"] = min(before + d_sp, 0.0)
        applied = float(ceiling.params["gain_db"]) - before
        threshold = float(limiter.params["threshold_db"]) - (d_lufs - applied)
        if threshold > 0.0:  # no drive left to take away: turn the make-up down instead
            gain.params["gain_db"] = float(gain.params["gain_db"]) - threshold
        limiter.params["threshold_db"] = float(np.clip(threshold, -60.0, 0.0))
    elif limiter is not None:
        # The gain into the limiter sets the loudness; the ceiling what the peaks miss
        # beyond that (a limiter that is not working lets the gain move the peaks).
        gain.params["gain_db"] = float(gain.params["gain_db"]) + d_lufs
        ceiling_db = float(limiter.params["ceiling_db"]) + d_sp - d_lufs
        limiter.params["ceiling_db"] = float(np.clip(ceiling_db, -60.0, 0.0))
    else:
        gain.params["gain_db"] = float(gain.params["gain_db"]) + d_lufs
    gain.params["gain_db"] = float(np.clip(gain.params["gain_db"], -100.0, 40.0))
    level_ok = abs(d_lufs) <= TOLERANCES["integrated_lufs"]
    comp = next((s for s in stages if s.role == "compressor"), None)
    if comp is not None and level_ok:
        # Only once the level is right: a time constant moves the level too, and both in
        # one round swing it back and forth. The larger miss is corrected first.
        d_psr = _miss(master.psr_median_db, got.psr_median_db)
        d_lra = _miss(master.loudness_range_lu, got.loudness_range_lu)
        # Without a limiter, or before one that clips, the compressor's attack decides what
        # reaches the peaks (a clip's inter-sample overs grow with what it is handed): a
        # true-peak miss says the attack is off when PSR (a median) does not.
        peaks = d_psr if abs(d_psr) > _PSR_STEP_DB else 0.0
        clips = limiter is None or limiter.builtin == "Limiter"
        if not peaks and clips and abs(d_tp) > 0.8 * TOLERANCES["true_peak_dbtp"]:
            peaks = d_tp if abs(d_lra) <= _LRA_STEP_LU else 0.0
        if peaks and abs(peaks) >= abs(d_lra):
            # Peaks the master let through and the render's compressor caught (or the
            # other way round): its attack was read off a coarse grid.
            attack = float(comp.params["attack_ms"]) * (2.0 if peaks > 0 else 0.5)
            comp.params["attack_ms"] = float(np.clip(attack, 0.05, 200.0))
        elif abs(d_lra) > _LRA_STEP_LU:
            # A range the render keeps wider than the master (or narrower): the gain
            # reduction lets go too soon (or holds too long); diff's grid stops at 300 ms.
            release = float(comp.params["release_ms"]) * (2.0 if d_lra < 0 else 0.5)
            comp.params["release_ms"] = float(np.clip(release, 1.0, 5000.0))
    overshoot = d_tp < -TOLERANCES["true_peak_dbtp"] and master.sample_peak_dbfs is not None
    if limiter is None and overshoot and level_ok:
        # The render's peaks overshoot the master's at the master's loudness: the master
        # holds them (a limiter the pile-up test did not see, e.g. behind heavy compression).
        stages = _with_limiter(
            stages,
            min(float(master.sample_peak_dbfs), 0.0),
            master,
            f"render and correct: the render's true peak overshot the "
            f"master's by {-d_tp:.1f} dB; the master's sample peaks stop at "
            f"{master.sample_peak_dbfs:.2f} dBFS",
        )
    residual = _band_residual(got, master, d_lufs)
    if residual is not None:
        stages = _with_correction(stages, residual, sample_rate)
    return stages


def _miss(want: float | None, got: float | None) -> float:
    if want is None or got is None or not (math.isfinite(want) and math.isfinite(got)):
        return 0.0
    return float(want) - float(got)


def _band_residual(got: Analysis, master: Analysis, d_lufs: float) -> tuple | None:
    """(centres, master minus render less the loudness miss) over 50 Hz - 16 kHz."""
    hz, res = [], []
    for f, a, b in zip(master.band_hz, got.spectrum_long_db, master.spectrum_long_db, strict=False):
        if a is None or b is None or not BAND_LOW_HZ / 1.12 <= f <= BAND_HIGH_HZ * 1.12:
            continue
        hz.append(float(f))
        res.append(float(b) - float(a) - d_lufs)
    if not hz:
        return None
    return np.array(hz), np.array(res)


def _with_correction(stages: list[Stage], residual: tuple, sample_rate: int) -> list[Stage]:
    """Add the least-squares 1/3-octave bells that best explain the spectral miss to the
    correction bells already there (same centres: their gains add)."""
    hz, res = residual
    # Misses well inside the tolerance are left alone: fewer, larger bells to edit.
    res = np.sign(res) * np.maximum(np.abs(res) - _DEAD_BAND_DB, 0.0)
    # The bells' responses (per dB of gain) at the band centres; small gains add in dB.
    unit = np.stack(
        [eq_move_response_db(EqMove("bell", f, 1.0, _THIRD_OCTAVE_Q), hz, sample_rate) for f in hz],
        axis=1,
    )
    lhs = unit.T @ unit + _RIDGE * np.eye(hz.size)
    gains = np.linalg.solve(lhs, unit.T @ res)
    existing = {
        round(float(s.params["cutoff_frequency_hz"]), 1): s
        for s in stages
        if s.role == "correction"
    }
    # After the compressor, before the make-up and the limiter: the compressor's detector
    # does not see them (a bass cut before a fast compressor lowers its gain reduction
    # and gives the bass back), so what they correct stays corrected.
    pos = next(i for i, s in enumerate(stages) if s.role == "gain")
    for f, g in zip(hz, gains, strict=True):
        key = round(float(f), 1)
        if key in existing:
            s = existing[key]
            s.params["gain_db"] = float(np.clip(float(s.params["gain_db"]) + g, -12.0, 12.0))
            continue
        if abs(g) < _MIN_CORRECTION_DB or f >= 0.45 * sample_rate:
            continue
        s = Stage(
            "PeakFilter",
            {
                "cutoff_frequency_hz": key,
                "gain_db": float(np.clip(g, -_MAX_CORRECTION_DB, _MAX_CORRECTION_DB)),
                "q": _THIRD_OCTAVE_Q,
            },
            f"Correction {hz_text(f)}",
            f"render and correct: the mix through the moves above missed the master's long-term "
            f"1/3-octave band at {hz_text(f)}; a 1/3-octave bell, fitted by least squares",
            "correction",
        )
        stages.insert(pos, s)
        existing[key] = s
        pos += 1
    return stages


def _rounded_param(v: float | bool) -> float | bool:
    return v if isinstance(v, bool) else round(float(v), 3)


def _r(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(v) else round(float(v), 2)
