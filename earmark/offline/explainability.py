"""How much of a master its listed moves explain.

``diff --chain`` turns what a master did into a chain of built-ins (earmark.offline.
reconstruct). Rendering the mix through it gives what the listed moves alone make;
whatever the master did that no listed move explains is left in MASTER minus that
render. Explainability is

    1 - energy(MASTER - render) / energy(MASTER - MIX)

(both on MIX's timeline, MASTER aligned and its polarity undone as diff found them):
1.0 when the moves reproduce the master to the sample, 0 when they explain nothing of
the change (and below 0 when the render strays further than the mix itself). It is
given overall, per octave band (the energies of the two differences' spectra, so "the
master did something at 8 kHz that no move explains" shows as that band's low figure)
and per section of the programme (consecutive windows, so a passage treated apart,
an automation move, shows as its section's low figure).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from earmark.meters.flags import hz_text

__all__ = ["OCTAVES_HZ", "SECTION_S", "Explainability", "explain_master", "explainability"]

# Octave band centres, 63 Hz - 16 kHz (IEC 61260 nominal).
OCTAVES_HZ = (63.0, 125.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0, 16000.0)
SECTION_S = 10.0  # the sections of the programme, consecutive
# A band or section whose change is this far below the loudest one's is too small to
# judge (its share would be noise): left out (inference).
_RANGE_DB = 40.0


@dataclass(frozen=True)
class Explainability:
    """The share of MASTER - MIX that MIX rendered through the inferred chain explains."""

    overall: float | None
    bands: tuple[tuple[float, float | None], ...]  # (octave centre Hz, share)
    sections: tuple[tuple[float, float, float | None], ...]  # (start s, end s, share)
    passed_fidelity: bool | None = None

    @property
    def least_band(self) -> tuple[float, float] | None:
        known = [(hz, v) for hz, v in self.bands if v is not None]
        return min(known, key=lambda b: b[1]) if known else None

    @property
    def least_section(self) -> tuple[float, float, float] | None:
        known = [(a, b, v) for a, b, v in self.sections if v is not None]
        return min(known, key=lambda s: s[2]) if known else None

    def sentence(self, name: str = "the master") -> str:
        """``the listed moves explain 94 % of what X did to the mix; least at 8 kHz ...``"""
        if self.overall is None:
            return f"{name}: nothing to explain (it is the mix)"
        text = f"the listed moves explain {_pct(self.overall)} of what {name} did to the mix"
        band, section = self.least_band, self.least_section
        least = []
        if band is not None:
            least.append(f"the octave at {hz_text(band[0])} ({_pct(band[1])})")
        if section is not None:
            least.append(f"{section[0]:.0f}-{section[1]:.0f} s ({_pct(section[2])})")
        if least:
            text += "; least: " + ", ".join(least)
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "overall": _r(self.overall),
            "bands": [{"hz": hz, "share": _r(v)} for hz, v in self.bands],
            "sections": [{"start_s": a, "end_s": b, "share": _r(v)} for a, b, v in self.sections],
            "passed_fidelity": self.passed_fidelity,
        }


def explainability(
    mix: np.ndarray, master_on_mix: np.ndarray, render: np.ndarray, sample_rate: int
) -> Explainability:
    """The share of ``master_on_mix - mix`` that ``render - mix`` explains (all three
    (frames, channels), on MIX's timeline; the shortest length is used)."""
    n = min(len(mix), len(master_on_mix), len(render))
    mix = np.asarray(mix[:n], dtype=np.float64)
    master = np.asarray(master_on_mix[:n], dtype=np.float64)
    render = np.asarray(render[:n], dtype=np.float64)
    change = master - mix
    left = master - render
    overall = _share(_energy(left), _energy(change))
    bands = _band_shares(change, left, sample_rate)
    sections = []
    step = int(SECTION_S * sample_rate)
    energies = [
        (a, _energy(change[a : a + step]), _energy(left[a : a + step]))
        for a in range(0, n, step)
        if n - a >= sample_rate  # a last section under 1 s is left to the one before
    ]
    loudest = max((c for _, c, _ in energies), default=0.0)
    for a, c, res in energies:
        share = _share(res, c) if c > loudest * 10 ** (-_RANGE_DB / 10) else None
        sections.append((a / sample_rate, min(n, a + step) / sample_rate, share))
    return Explainability(overall, tuple(bands), tuple(sections))


def explain_master(t: Any, mix_audio: np.ndarray, master_audio: np.ndarray, rate: int):
    """Reconstruct the chain of diff ``t`` (MIX -> MASTER, both at ``rate``), render MIX
    through it and measure the explained share; returns (Explainability, Reconstruction)."""
    import dataclasses

    from earmark.engine.chains.render import render
    from earmark.offline.reconstruct import reconstruct

    rec = reconstruct(t, mix_audio, rate, t.after)
    rendered = render(rec.spec(), mix_audio, rate, tail=False).audio
    al = t.result.alignment
    lag = int(round(al.offset_ms * rate / 1000.0))
    on_mix = _on_timeline(master_audio, lag, len(mix_audio))
    if al.polarity < 0:
        on_mix = -on_mix
    ex = explainability(mix_audio, on_mix, rendered, rate)
    return dataclasses.replace(ex, passed_fidelity=rec.fidelity.passed), rec


def _on_timeline(x: np.ndarray, lag: int, frames: int) -> np.ndarray:
    """``x`` moved so that its sample ``n + lag`` lands at ``n`` (zeros outside)."""
    out = np.zeros((frames, x.shape[1]), dtype=np.float64)
    src = np.arange(frames) + lag
    ok = (src >= 0) & (src < len(x))
    out[ok] = x[src[ok]]
    return out


def _band_shares(
    change: np.ndarray, left: np.ndarray, sample_rate: int
) -> list[tuple[float, float | None]]:
    """Per octave, the share of the change's spectral energy the render explains."""
    f = np.fft.rfftfreq(len(change), 1.0 / sample_rate)
    pc = _power_spectrum(change)
    pl = _power_spectrum(left)
    rows = []
    for centre in OCTAVES_HZ:
        sel = (f >= centre / math.sqrt(2)) & (f < centre * math.sqrt(2))
        if centre * math.sqrt(2) > sample_rate / 2 or not sel.any():
            continue
        rows.append((centre, float(pc[sel].sum()), float(pl[sel].sum())))
    loudest = max((c for _, c, _ in rows), default=0.0)
    return [
        (hz, _share(res, c) if c > loudest * 10 ** (-_RANGE_DB / 10) else None)
        for hz, c, res in rows
    ]


def _power_spectrum(x: np.ndarray) -> np.ndarray:
    spec = np.fft.rfft(x, axis=0)
    return np.sum(np.abs(spec) ** 2, axis=1)


def _energy(x: np.ndarray) -> float:
    return float(np.sum(x * x))


def _share(residual: float, change: float) -> float | None:
    if change <= 0.0:
        return None
    return 1.0 - residual / change


def _pct(v: float) -> str:
    return f"{100 * v:.0f} %"


def _r(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(v) else round(v, 3)
