"""``earmark profile build``: learn a profile from masters the engineer trusts.

Each file is metered with the same MeterBank and 10 Hz rows the detectors read;
the profile then holds what those masters do, with a margin, so that every one of
them passes its own profile and a master that departs from them is flagged:

- loudness: the middle of the references' integrated loudness, with a tolerance
  covering all of them (at least 1 LU), judged as normalised playback hears it: louder
  than the range is a warning, quieter only when the true peak leaves too little
  headroom to raise it into the range;
- true peak: the references' highest true peak, but never a ceiling below -1 dBTP;
- dynamics: PSR (the 5th percentile of the judged 3 s windows), LRA, PLR and DR,
  each the lowest any reference has, less a margin;
- transients: the lowest median onset crest over 10 s any reference has, less a margin;
- tonal: the mean long-term 1/3-octave level (relative to the K-weighted total) over
  the references, with the spread of their 3 s spectra; harshness thresholds never
  tighter than docs/reference.md's inference (3 dB in 2-5 kHz, 5 dB in 5-10 kHz) and
  wide enough for the brightest 3 s of every reference;
- resonance: not judged (references cannot tell a held note from a resonance).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

import numpy as np

from earmark.meters import History
from earmark.meters.bands import NOMINAL_HZ
from earmark.meters.onsets import ONSET_MIN_COUNT, ONSET_WINDOW_ROWS, onset_mask
from earmark.meters.sharpness import sharpness_acum
from earmark.meters.tonal import (
    AIR_HZ,
    BODY_HZ,
    PRESENCE_HZ,
    band_sum_db,
    k_weighting_gain_db,
    relative_levels,
)

__all__ = ["Measured", "learn_profile_text", "measure_reference"]

# Margins between the references and the learned thresholds (inference: about the
# run-to-run spread of these measures on one master's different sections).
PSR_MARGIN_DB = 1.0
LRA_MARGIN_LU = 1.0
PLR_MARGIN_DB = 1.0
DR_MARGIN = 1
CREST_MARGIN_DB = 1.0
TONAL_MARGIN_DB = 0.5
PROBLEM_BELOW_DB = 2.0  # problem thresholds sit this far under the warnings, as shipped
PSR_PERCENTILE = 5.0
JUDGE_ABOVE_LUFS = -20.0  # as the shipped profiles (K-20 reference level)
MIN_SPREAD_DB = 1.5
MAX_SPREAD_DB = 30.0  # the profile schema's range (a band a codec cut off varies wildly)


@dataclass
class Measured:
    """What one reference measured, as ``profile build`` uses it."""

    path: str
    integrated_lufs: float | None
    true_peak_dbtp: float | None
    lra_lu: float | None
    plr_db: float | None
    dr: int | None
    psr_low_db: float | None  # PSR_PERCENTILE of the judged 3 s windows
    onset_crest_low_db: float | None  # lowest 10 s median of onset crests
    band_hz: tuple[float, ...] = ()
    long_rel_db: np.ndarray = field(default_factory=lambda: np.zeros(0))
    window_rel_db: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    sharpness_acum: float | None = None  # median DIN 45692 sharpness of the judged 3 s spectra


def measure_reference(path: str) -> Measured:
    """Meter one reference file (raises ``AudioFileError`` if it cannot be read)."""
    from earmark.offline.analysis import analyze

    # Metered as `earmark analyze` meters it (the whole programme's history is kept).
    analysis = analyze(path)
    r = analysis.readings
    assert r is not None and analysis.history is not None
    parts = [analysis.history] if len(analysis.history) else []
    cat = _concat(parts)
    s, psr, tp = cat["s"], cat["psr"], cat["tp"]
    integrated = r.integrated_lufs
    gate = JUDGE_ABOVE_LUFS if integrated is None else max(JUDGE_ABOVE_LUFS, integrated - 20.0)
    judged = psr[(s >= gate) & np.isfinite(psr)]
    psr_low = float(np.percentile(judged, PSR_PERCENTILE)) if len(judged) else None
    band_hz = r.band_hz
    k_gain = k_weighting_gain_db(band_hz, r.sample_rate)
    long_db = np.array([np.nan if v is None else v for v in r.spectrum_long_db])
    long_rel = relative_levels(long_db, k_gain)
    loud = (s >= max(-50.0, (integrated or -70.0) - 20.0)) & np.isfinite(s)
    window_rel = (
        relative_levels(cat["spec"][loud], k_gain) if cat["spec"].size else np.zeros((0, 0))
    )
    sharp = (
        sharpness_acum(cat["spec"][loud], band_hz, sample_rate=r.sample_rate)
        if cat["spec"].size
        else np.zeros(0)
    )
    sharp = sharp[np.isfinite(sharp)]
    return Measured(
        path=path,
        sharpness_acum=float(np.median(sharp)) if len(sharp) else None,
        integrated_lufs=integrated,
        true_peak_dbtp=r.true_peak_dbtp,
        lra_lu=r.loudness_range_lu,
        plr_db=r.plr_db,
        dr=r.dr,
        psr_low_db=psr_low,
        onset_crest_low_db=_onset_crest_low(cat["power"], tp, s, loud),
        band_hz=band_hz,
        long_rel_db=long_rel,
        window_rel_db=window_rel,
    )


def learn_profile_text(name: str, refs: Sequence[Measured], description: str = "") -> str:
    """A commented profile TOML learned from the measured references."""
    if not refs:
        raise ValueError("profile build needs at least one readable reference")
    n = len(refs)
    files = ", ".join(os.path.basename(m.path) for m in refs)
    lines = [
        f"# earmark profile learned by `earmark profile build` on {date.today().isoformat()}",
        f"# from {n} trusted master{'s' if n != 1 else ''}: {files}",
        "# Thresholds are what these masters do, less a margin, so each passes its own profile.",
        f'name = "{_toml_str(name)}"',
        f'description = "{_toml_str(description or f"Learned from {n} trusted masters")}"',
        'kind = "learned"',
        "",
    ]

    def span(values: list[float], unit: str) -> str:
        return f"references {min(values):.1f} to {max(values):.1f} {unit}"

    loud = [m.integrated_lufs for m in refs if m.integrated_lufs is not None]
    if loud:
        mid = (min(loud) + max(loud)) / 2.0
        tol = max(1.0, (max(loud) - min(loud)) / 2.0 + 0.5)
        lines += [
            "[loudness]",
            f"target_lufs = {mid:.1f}         # the middle of the {span(loud, 'LUFS')}",
            f"tolerance_lu = {tol:.1f}         # covers every reference, at least 1 LU",
            'severity = "warning"',
            f"platform = \"'{_toml_str(name)}' reference\"",
            "normalised_playback = true  # the references' taste, not a delivery spec: quieter"
            " counts only when its true peak stops a platform raising it into the range",
            "",
        ]
    peaks = [m.true_peak_dbtp for m in refs if m.true_peak_dbtp is not None]
    ceiling = -1.0 if not peaks else max(-1.0, math.ceil(max(peaks) * 10.0) / 10.0)
    lines += [
        "[true_peak]",
        f"ceiling_dbtp = {ceiling:.1f}        # the references' highest true peak,"
        " never below the -1 dBTP delivery ceiling",
        "",
        "[dynamics]",
    ]
    psr = [m.psr_low_db for m in refs if m.psr_low_db is not None]
    if psr:
        floor = _down(min(psr) - PSR_MARGIN_DB)
        lines += [
            f"psr_min_db = {floor:.1f}          # {PSR_PERCENTILE:g}th percentile of the judged 3 s"
            f" windows: {span(psr, 'dB')}, less {PSR_MARGIN_DB:g} dB",
            f"psr_problem_db = {max(0.0, floor - PROBLEM_BELOW_DB):.1f}      #"
            f" {PROBLEM_BELOW_DB:g} dB below, as in the shipped profiles",
        ]
    lines += [
        f"judge_above_lufs = {JUDGE_ABOVE_LUFS:.1f}  # as the shipped profiles:"
        " K-20 reference level (Katz, JAES 2000)",
    ]
    lra = [m.lra_lu for m in refs if m.lra_lu is not None]
    if lra:
        low = max(0.0, _down(min(lra) - LRA_MARGIN_LU))
        lines += [
            f"lra_min_lu = {low:.1f}          # {span(lra, 'LU')}, less {LRA_MARGIN_LU:g} LU",
            f"lra_problem_lu = {max(0.0, low - 1.0):.1f}      # 1 LU below",
        ]
    plr = [m.plr_db for m in refs if m.plr_db is not None]
    if plr:
        low = max(0.0, _down(min(plr) - PLR_MARGIN_DB))
        lines += [
            f"plr_min_db = {low:.1f}          # {span(plr, 'dB')}, less {PLR_MARGIN_DB:g} dB",
            f"plr_problem_db = {max(0.0, low - PROBLEM_BELOW_DB):.1f}      #"
            f" {PROBLEM_BELOW_DB:g} dB below",
        ]
    drs = [m.dr for m in refs if m.dr is not None]
    if drs and min(drs) - DR_MARGIN >= 1:
        lines.append(
            f"dr_min = {min(drs) - DR_MARGIN}               # references DR{min(drs)} to"
            f" DR{max(drs)}, less {DR_MARGIN}"
        )
    lines += ["", "[transients]"]
    crest = [m.onset_crest_low_db for m in refs if m.onset_crest_low_db is not None]
    if crest:
        lines.append(
            f"crest_min_db = {max(0.0, _down(min(crest) - CREST_MARGIN_DB)):.1f}        # lowest"
            f" 10 s median onset crest: {span(crest, 'dB')}, less {CREST_MARGIN_DB:g} dB"
        )
    else:
        lines.append(
            "crest_min_db = false       # the references have too few onsets to learn from"
        )
    lines += [
        "drop_db = 3.0              # as shipped (inference): against a BEFORE version",
        "drop_problem_db = 6.0",
        "",
    ]
    lines += _tonal_lines(refs)
    lines += [
        "",
        "# [resonance] is not learned: a narrow peak that persists in a trusted master (a",
        "# pedal point, a held drone, a hall's mode) is part of the music, and references",
        "# cannot say which. Add the section to judge it (docs/reference.md, resonance).",
        "",
    ]
    return "\n".join(lines)


def _tonal_lines(refs: Sequence[Measured]) -> list[str]:
    common = [f for f in NOMINAL_HZ if all(float(f) in m.band_hz for m in refs)]
    if not common:
        return []
    bands = [float(f) for f in common]
    levels, spreads, windows = [], [], []
    for f in bands:
        idx = [m.band_hz.index(f) for m in refs]
        vals = [m.long_rel_db[i] for m, i in zip(refs, idx, strict=True)]
        win = np.concatenate(
            [m.window_rel_db[:, i] for m, i in zip(refs, idx, strict=True) if m.window_rel_db.size]
        )
        finite = [v for v in vals if math.isfinite(v)]
        levels.append(float(np.mean(finite)) if len(finite) == len(vals) else math.nan)
        win = win[np.isfinite(win)]
        spread = float(np.std(win)) if len(win) else MIN_SPREAD_DB
        spreads.append(min(MAX_SPREAD_DB, max(MIN_SPREAD_DB, spread)))
        windows.append(win)
    keep = [i for i, v in enumerate(levels) if math.isfinite(v) and v > -90.0]
    bands = [bands[i] for i in keep]
    levels = [levels[i] for i in keep]
    spreads = [spreads[i] for i in keep]
    target = np.array(levels)
    out = [
        "[tonal]                    # mean long-term 1/3-octave level of the references,",
        "                           # dB relative to their K-weighted total; spread: std of",
        "                           # their 3 s spectra (at least 1.5 dB)",
        "band_hz = [" + ", ".join(f"{f:g}" for f in bands) + "]",
        "level_db = [" + ", ".join(f"{v:.1f}" for v in levels) + "]",
        "spread_db = [" + ", ".join(f"{v:.1f}" for v in spreads) + "]",
        "",
        "[harshness]",
    ]
    # The brightest 3 s of the references, against the learned target.
    excess = {}
    for name, (lo, hi) in (("presence", PRESENCE_HZ), ("air", AIR_HZ), ("body", BODY_HZ)):
        tgt = float(band_sum_db(target, bands, lo, hi))
        worst = []
        for m in refs:
            if not m.window_rel_db.size:
                continue
            sel = [m.band_hz.index(f) for f in bands]
            win = band_sum_db(m.window_rel_db[:, sel], bands, lo, hi)
            win = win[np.isfinite(win)]
            if len(win):
                dev = (tgt - win) if name == "body" else (win - tgt)
                worst.append(float(np.percentile(dev, 99)))
        excess[name] = max(worst) if worst else None
    for key, base, name, text in (
        ("presence_excess_db", 3.0, "presence", "2-5 kHz"),
        ("air_excess_db", 5.0, "air", "5-10 kHz"),
        ("body_deficit_db", 6.0, "body", "250 Hz-1.6 kHz deficit"),
    ):
        seen = excess[name]
        value = base if seen is None else max(base, math.ceil((seen + TONAL_MARGIN_DB) * 10) / 10)
        note = "" if seen is None else f"; the references' brightest 3 s reach {seen:+.1f} dB"
        out.append(f"{key} = {value:.1f}   # at least docs/reference.md's inference ({text}){note}")
    # Each reference's median, over its loud 3 s windows, of the level relative to its
    # body: what the detector ranks a master's median by ("brighter in 2-5 kHz than all
    # 10 of your references"), computed on the same windows.
    for key, (lo, hi) in (("reference_presence_db", PRESENCE_HZ), ("reference_air_db", AIR_HZ)):
        tilts = []
        for m in refs:
            if not m.window_rel_db.size:
                continue
            sel = [m.band_hz.index(f) for f in bands]
            win = m.window_rel_db[:, sel]
            tilt = band_sum_db(win, bands, lo, hi) - band_sum_db(win, bands, *BODY_HZ)
            tilt = tilt[np.isfinite(tilt)]
            if len(tilt):
                tilts.append(float(np.median(tilt)))
        if len(tilts) == len(refs):
            out.append(f"{key} = [" + ", ".join(f"{v:.1f}" for v in tilts) + "]")
    # and its median DIN 45692 sharpness, to rank a master's ("sharper than 9 of ...").
    sharp = [m.sharpness_acum for m in refs]
    if sharp and all(v is not None and math.isfinite(v) for v in sharp):
        out.append("reference_sharpness_acum = [" + ", ".join(f"{v:.2f}" for v in sharp) + "]")
    out += [
        "sustain_s = 5.0            # as shipped (inference)",
        "rise_db = 3.0              # as shipped (inference): added against a BEFORE version",
        "rise_problem_db = 6.0      # as shipped (inference)",
    ]
    return out


def _concat(parts: list[History]) -> dict[str, np.ndarray]:
    if not parts:
        empty = np.zeros(0)
        return {"s": empty, "psr": empty, "tp": empty, "power": empty, "spec": np.zeros((0, 0))}
    return {
        "power": np.concatenate([_power(p.channel_mean_square) for p in parts]),
        "s": np.concatenate([p.short_term_lufs for p in parts]),
        "psr": np.concatenate([p.psr_db for p in parts]),
        "tp": np.concatenate([p.true_peak_dbtp for p in parts]),
        "spec": np.concatenate([p.spectrum_db for p in parts]),
    }


def _onset_crest_low(
    power_db: np.ndarray, tp: np.ndarray, s: np.ndarray, loud: np.ndarray
) -> float | None:
    """The lowest median, over the 10 s before any judged row, of the onsets' true peaks
    above the short-term loudness, as the detector computes it for ``crest_min_db``."""
    onsets = onset_mask(power_db) & loud & np.isfinite(tp)
    rows = np.nonzero(onsets)[0]
    vals = (tp - s)[rows]
    lows = []
    for i in np.nonzero(s >= JUDGE_ABOVE_LUFS)[0]:
        lo = np.searchsorted(rows, i - ONSET_WINDOW_ROWS, side="right")
        hi = np.searchsorted(rows, i, side="right")
        if hi - lo >= ONSET_MIN_COUNT:
            lows.append(float(np.median(vals[lo:hi])))
    return min(lows) if lows else None


def _power(mean_square: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(np.asarray(mean_square).mean(axis=1))


def _down(x: float) -> float:
    return math.floor(x * 10.0) / 10.0


def _toml_str(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
