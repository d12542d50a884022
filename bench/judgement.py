"""Judgement on real music: are the flags right on pieces processed at settings nobody chose?

    .venv/bin/python bench/judgement.py [--quick] [--seed 17] [--json FILE] [--list]
                                        [--case PIECE/FAMILY/VARIANT] [--write DIR]
    make judgement

Builds the corpus if it is missing (bench/corpus.py: 11 excerpts of Debian's free game
music in six genres), processes each excerpt with pedalboard at seeded random settings
(crush, harsh, combo and control families; 132 cases, ``--quick`` 28), and judges each
case five ways, in-process with the Python API, on a pool of 2 processes:

- ``default``: ``analyze`` with the default profile;
- ``genre``: ``analyze`` with the profile of the piece's genre (corpus.PIECES);
- ``learned``: ``analyze`` with a profile learned (``profile build``'s code) from the
  untouched excerpts of the *other* pieces (leave-one-out: a piece never judges itself);
- ``diff``: ``earmark.offline.transform.diff`` with the untouched excerpt as BEFORE, default
  profile; the flags scored are those ``diff`` reports AFTER introduced;
- ``live``: the live Detector fed block by block (512 frames, rows every 0.1 s, as
  ``earmark.live.flags_worker`` feeds it), with the dry excerpt's MeterBank as BEFORE
  (``befores``), default profile.

It prints precision and recall per flag class and mode (``over-compression`` is
``over_compression`` or ``collapsed_dynamics``; ``harsh_highs``; ``crushed_transients``;
any severity counts), the false-flag rate on the controls (problems and warnings
apart, every code, resonance included), alignment exactness (offset 0 +-1 sample, no
polarity flip) on every diff pair and on each piece against itself, and the issue's
goals. Nothing is asserted; the bench measures whatever the detectors on the branch do.

Truth: ``crush`` is over-compression and crushed transients; ``harsh`` is harsh highs;
``combo`` is all three; the controls are none. About 10 minutes on 2 cores
(``--quick``: 2-3).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import corpus  # bench/corpus.py, beside this file

from earmark.meters.tonal import AIR_HZ, PRESENCE_HZ

MODES = ("default", "genre", "learned", "diff", "live")
CLASSES: dict[str, tuple[str, ...]] = {
    "over-compression": ("over_compression", "collapsed_dynamics"),
    "harsh_highs": ("harsh_highs",),
    "crushed_transients": ("crushed_transients",),
}
TRUTH: dict[str, tuple[str, ...]] = {
    "crush": ("over-compression", "crushed_transients"),
    "harsh": ("harsh_highs",),
    "combo": ("over-compression", "harsh_highs", "crushed_transients"),
    "control": (),
}
# Flag codes in the case listing (lower-case severity letter appended: w, p).
SHORT = {
    "over_compression": "OC",
    "collapsed_dynamics": "CD",
    "crushed_transients": "CT",
    "harsh_highs": "HH",
    "resonance": "RS",
    "true_peak_over": "TP",
    "clipping": "CL",
    "loudness_target": "LT",
}
LIVE_BLOCK_FRAMES = 512
LIVE_TICK_FRAMES = 4800  # the flag service's 10 Hz tick at 48 kHz
POOL = 2
QUICK_PIECES = ("battle-epic", "wz-track5", "city-blues", "frozen-mainzik")
# Goals of issue 17: (class or "controls", modes, floor), read by goals().
RECALL_GOALS: tuple[tuple[str, tuple[str, ...], float], ...] = (
    ("over-compression", ("default", "diff"), 0.9),
    ("harsh_highs", ("diff", "live"), 0.9),
    ("harsh_highs", ("genre", "learned"), 0.7),
)
CONTROL_WARNING_GOAL = 0.05
SPREAD_MAX_DB = 30.0  # the profile parser's upper bound for tonal.spread_db


@dataclass(frozen=True)
class Case:
    """One processed version of one piece."""

    piece_index: int
    family: str
    variant: int
    seed: int

    @property
    def piece(self) -> corpus.Piece:
        return corpus.PIECES[self.piece_index]

    @property
    def key(self) -> str:
        return f"{self.piece.key}/{self.family}/{self.variant}"

    @property
    def positives(self) -> tuple[str, ...]:
        return TRUTH[self.family]


def cases(seed: int, quick: bool = False) -> list[Case]:
    """Every case of the corpus (``quick``: 4 pieces, one variant per family, all controls)."""
    out = []
    for i, p in enumerate(corpus.PIECES):
        if quick and p.key not in QUICK_PIECES:
            continue
        for family in corpus.FAMILIES:
            n = corpus.VARIANTS[family]
            variants = range(n) if not quick or family == "control" else range(1)
            out.extend(Case(i, family, v, seed) for v in variants)
    return out


# -- one case (in a worker) ------------------------------------------------------------------


@cache
def _excerpt(piece_index: int) -> np.ndarray:
    return corpus.load_excerpt(corpus.PIECES[piece_index])


def settings_of(case: Case) -> dict[str, Any]:
    """The seeded settings of ``case`` (its family's Generator, drawn in order)."""
    audio = _excerpt(case.piece_index)
    return corpus.draw_settings(case.seed, case.piece_index, case.family, audio)[case.variant]


def _codes(flags: Iterable[Mapping[str, Any]]) -> list[tuple[str, str]]:
    return [(str(f["code"]), str(f["severity"])) for f in flags]


def live_flags(before: np.ndarray, after: np.ndarray, profile: Any) -> list[tuple[str, str]]:
    """The live Detector on AFTER, fed as the flag worker feeds it, BEFORE as the dry path."""
    from earmark.meters import MeterBank
    from earmark.meters.detectors import Detector
    from earmark.profiles import resolve_profile

    prof = resolve_profile(profile)
    channels = after.shape[1]
    bank_b = MeterBank(channels, corpus.FS)
    bank_a = MeterBank(channels, corpus.FS)
    det = Detector(prof, corpus.FS, channels)
    sent_b = 0
    n = after.shape[0]
    next_tick = LIVE_TICK_FRAMES
    for start in range(0, n, LIVE_BLOCK_FRAMES):
        end = min(n, start + LIVE_BLOCK_FRAMES)
        bank_b.process(before[start:end])
        bank_a.process(after[start:end])
        if end >= next_tick or end == n:
            next_tick += LIVE_TICK_FRAMES
            rows_b = bank_b.history(since=sent_b)
            if len(rows_b):  # BEFORE rows first, as the worker does
                det.add_before(rows_b)
                sent_b += len(rows_b)
            det.update(bank_a.history(since=det.next_row))
    return _codes(f.to_dict() for f in det.finish())


@cache
def _dry_analysis(piece_index: int) -> Any:
    from earmark.offline.analysis import analyze

    return analyze(_excerpt(piece_index), corpus.FS)


def presence_minus_body_db(
    analysis: Any, band_hz: tuple[float, float] = PRESENCE_HZ
) -> float | None:
    """Loudness-normalised 2-5 kHz (or ``band_hz``) minus 250 Hz-1.6 kHz of an Analysis's
    long-term spectrum."""
    from earmark.meters.tonal import BODY_HZ, band_sum_db, k_weighting_gain_db, relative_levels

    hz = analysis.band_hz
    long_db = np.array([np.nan if v is None else v for v in analysis.spectrum_long_db])
    rel = relative_levels(long_db, k_weighting_gain_db(hz, analysis.sample_rate))
    value = float(band_sum_db(rel, hz, *band_hz) - band_sum_db(rel, hz, *BODY_HZ))
    return value if np.isfinite(value) else None


def run_case(case: Case, learned_path: str) -> dict[str, Any]:
    """Process one case and judge it in every mode (runs in a pool worker)."""
    from earmark.offline.analysis import analyze
    from earmark.offline.transform import diff

    t0 = time.perf_counter()
    dry = _excerpt(case.piece_index)
    settings = settings_of(case)
    wet, derived_db = corpus.process(case.family, settings, dry)
    out: dict[str, Any] = {
        "case": case.key,
        "piece": case.piece.key,
        "family": case.family,
        "variant": case.variant,
        "kind": settings.get("kind", case.family),
        "rng": corpus.family_seed(case.seed, case.piece_index, case.family),
        "settings": settings,
        "described": corpus.describe(case.family, settings),
        "derived_gain_db": derived_db,
        "sha256": corpus.audio_digest(wet),
        "flags": {},
    }
    a = analyze(wet, corpus.FS)
    out["flags"]["default"] = _codes(a.flags)
    out["flags"]["genre"] = _codes(analyze(wet, corpus.FS, profile=case.piece.profile).flags)
    out["flags"]["learned"] = _codes(analyze(wet, corpus.FS, profile=learned_path).flags)
    b = _dry_analysis(case.piece_index)
    pb, pa = presence_minus_body_db(b), presence_minus_body_db(a)
    out["measures"] = {
        "integrated_lufs": a.integrated_lufs,
        "loudness_change_lu": _delta(b.integrated_lufs, a.integrated_lufs),
        "psr_median_db": a.psr_median_db,
        "psr_change_db": _delta(b.psr_median_db, a.psr_median_db),
        "presence_change_db": _delta(pb, pa),
        "presence_minus_body_db": pa,
        "air_minus_body_db": presence_minus_body_db(a, AIR_HZ),
        "air_change_db": _delta(
            presence_minus_body_db(b, AIR_HZ), presence_minus_body_db(a, AIR_HZ)
        ),
        "true_peak_dbtp": a.true_peak_dbtp,
    }
    try:
        t = diff(dry, wet, sample_rate=corpus.FS)
        al = t.result.alignment
        out["flags"]["diff"] = _codes(t.flags_introduced)
        out["alignment"] = {
            "offset_samples": al.offset_samples + al.offset_fraction,
            "polarity": al.polarity,
            "correlation": al.correlation,
        }
        out["diff_warnings"] = list(t.warnings)
    except ValueError as exc:  # diff refused the pair: no flags, alignment not exact
        out["flags"]["diff"] = []
        out["alignment"] = None
        out["diff_error"] = str(exc)
    out["flags"]["live"] = live_flags(dry, wet, None)
    out["seconds"] = time.perf_counter() - t0
    return out


def _delta(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else after - before


# -- learned profiles ---------------------------------------------------------------------------


def learned_profiles(out_dir: Path) -> tuple[dict[int, str], list[str]]:
    """Leave-one-out learned profiles: piece i's is learned from every other untouched excerpt."""
    from earmark.offline.learn import learn_profile_text, measure_reference

    out_dir.mkdir(parents=True, exist_ok=True)
    refs = [measure_reference(str(corpus.excerpt_path(p))) for p in corpus.PIECES]
    paths, worst = {}, 0.0
    for i, p in enumerate(corpus.PIECES):
        others = [m for j, m in enumerate(refs) if j != i]
        text = learn_profile_text(f"loo-{p.key}", others, f"corpus without {p.key}")
        text, clamped = _clamp_spreads(text)
        worst = max(worst, clamped)
        path = out_dir / f"loo-{p.key}.toml"
        path.write_text(text)
        paths[i] = str(path)
    notes = []
    if worst:
        notes.append(
            f"profile build wrote tonal spreads up to {worst:.1f} dB, above the"
            f" {SPREAD_MAX_DB:.0f} dB its own parser accepts: clamped to load the learned profiles"
        )
    return paths, notes


def _clamp_spreads(text: str) -> tuple[str, float]:
    """Work around profile build writing ``spread_db`` items the parser refuses (> 30 dB).

    A band above a lossy codec's low-pass is nearly empty in some 3 s windows, so the
    spread of its levels is huge. Returns the text and the largest spread clamped (0 if none).
    """
    lines, worst = [], 0.0
    for line in text.splitlines():
        if line.startswith("spread_db = ["):
            items = [float(v) for v in line.split("[", 1)[1].rstrip("]").split(",")]
            worst = max([worst, *(v for v in items if v > SPREAD_MAX_DB)])
            line = "spread_db = [" + ", ".join(f"{min(v, SPREAD_MAX_DB):.1f}" for v in items) + "]"
        lines.append(line)
    return "\n".join(lines) + "\n", worst


# -- scoring ---------------------------------------------------------------------------------------


@dataclass
class Score:
    """Counts of one flag class in one mode."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    @property
    def precision(self) -> float | None:
        flagged = self.tp + self.fp
        return self.tp / flagged if flagged else None

    @property
    def recall(self) -> float | None:
        positives = self.tp + self.fn
        return self.tp / positives if positives else None


def flagged(codes: Iterable[Sequence[str]], cls: str) -> bool:
    """Whether any flag (any severity) of the flag class ``cls`` is among ``codes``."""
    return any(code in CLASSES[cls] for code, _ in codes)


def score(results: Iterable[Mapping[str, Any]], mode: str, cls: str) -> Score:
    """Precision/recall counts of ``cls`` in ``mode`` (truth from each result's family)."""
    s = Score()
    for r in results:
        hit = flagged(r["flags"][mode], cls)
        positive = cls in TRUTH[r["family"]]
        if positive and hit:
            s.tp += 1
        elif positive:
            s.fn += 1
        elif hit:
            s.fp += 1
        else:
            s.tn += 1
    return s


def control_rates(results: Iterable[Mapping[str, Any]], mode: str) -> dict[str, Any]:
    """On the controls: share with a problem flag, share with a warning, and the codes seen."""
    controls = [r for r in results if r["family"] == "control"]
    problems = [r for r in controls if any(s == "problem" for _, s in r["flags"][mode])]
    warnings = [r for r in controls if any(s == "warning" for _, s in r["flags"][mode])]
    codes = Counter(f"{c}/{s}" for r in controls for c, s in set(map(tuple, r["flags"][mode])))
    n = len(controls)
    return {
        "n": n,
        "problem": len(problems) / n if n else None,
        "warning": len(warnings) / n if n else None,
        "codes": dict(codes.most_common()),
    }


def exact(alignment: Mapping[str, Any] | None) -> bool:
    """Offset 0 +-1 sample and no polarity flip."""
    return (
        alignment is not None
        and abs(alignment["offset_samples"]) <= 1.0
        and alignment["polarity"] > 0
    )


def goals(results: Sequence[Mapping[str, Any]]) -> list[tuple[str, str, bool]]:
    """Each goal of the issue: what it asks, what was measured, whether it is met."""
    out = []
    for cls, modes, floor in RECALL_GOALS:
        for mode in modes:
            rec = score(results, mode, cls).recall
            shown = "-" if rec is None else f"{rec:.2f}"
            out.append(
                (f"{cls} recall >= {floor} ({mode})", shown, rec is not None and rec >= floor)
            )
    for mode in MODES:
        c = control_rates(results, mode)
        if c["n"]:
            p, w = c["problem"], c["warning"]
            out.append((f"controls: no problem flag ({mode})", f"{p:.0%}", p == 0))
            out.append(
                (f"controls: <= 5 % warnings ({mode})", f"{w:.0%}", w <= CONTROL_WARNING_GOAL)
            )
    pairs = [r for r in results if "alignment" in r]
    n_exact = sum(exact(r["alignment"]) for r in pairs)
    out.append(("alignment exact on every pair", f"{n_exact}/{len(pairs)}", n_exact == len(pairs)))
    selves = [r for r in pairs if r["kind"] == "untouched"]
    n_self = sum(exact(r["alignment"]) for r in selves)
    out.append(
        ("alignment exact, piece vs itself", f"{n_self}/{len(selves)}", n_self == len(selves))
    )
    return out


# -- report ------------------------------------------------------------------------------------


def _f(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


# What the processing did, per family: the measures the summary table shows.
_MEASURED = (
    "integrated_lufs",
    "loudness_change_lu",
    "psr_median_db",
    "psr_change_db",
    "presence_change_db",
    "air_change_db",
)


def report(results: list[dict[str, Any]], console: Any, list_cases: bool) -> None:
    """The tables: processing check, precision/recall, controls, alignment, goals."""
    from rich.table import Table

    if list_cases:
        t = Table(
            title="Cases (replay: corpus.draw_settings(seed, piece, family)[variant]);"
            " flags: " + ", ".join(f"{v} {k}" for k, v in SHORT.items())
        )
        for col in ("case", "rng", "settings", *MODES):
            t.add_column(col, overflow="fold")
        for r in sorted(results, key=lambda r: r["case"]):
            cells = [
                " ".join(sorted({SHORT.get(c, c) + s[0] for c, s in r["flags"][m]})) or "-"
                for m in MODES
            ]
            t.add_row(r["case"], str(r["rng"]), r["described"], *cells)
        console.print(t)

    t = Table(title="What the processing did (median over cases; change from the excerpt)")
    for col in (
        "family",
        "cases",
        "LUFS",
        "d LU",
        "PSR dB",
        "d PSR dB",
        "d 2-5k/body dB",
        "d 5-10k/body dB",
    ):
        t.add_column(col, justify="right" if col != "family" else "left")
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        by_kind.setdefault(r["family"] if r["family"] != "control" else r["kind"], []).append(r)
    for kind, rs in by_kind.items():
        med = {k: _median([r["measures"][k] for r in rs]) for k in _MEASURED}
        t.add_row(kind, str(len(rs)), *(_f(med[k]) for k in _MEASURED))
    console.print(t)

    sep = separability(results)
    if sep:
        console.print(
            "single-file separability, band/body of the untouched pieces against what the"
            " harsh EQ moved (a BEFORE removes the spread across pieces): "
            + "; ".join(
                f"{d['band']} {d['min_db']:.1f}..{d['max_db']:.1f} dB (sd {d['sd_db']:.1f},"
                f" {d['pieces']} pieces), moved {d['moved_db']:+.1f} dB, d' {d['d_prime']:.2f}"
                for d in sep
            ),
            markup=False,
        )

    t = Table(title="Precision / recall per flag class (TP/FP/FN), any severity")
    t.add_column("mode")
    for cls in CLASSES:
        t.add_column(f"{cls}\nP  R", justify="right")
    for mode in MODES:
        cells = []
        for cls in CLASSES:
            s = score(results, mode, cls)
            cells.append(f"{_f(s.precision)} {_f(s.recall)}  ({s.tp}/{s.fp}/{s.fn})")
        t.add_row(mode, *cells)
    console.print(t)

    t = Table(title="Controls (gain, gentle compression, +-2 dB EQ, untouched): false flags")
    for col in ("mode", "cases", "problem", "warning", "codes (cases)"):
        t.add_column(col, overflow="fold")
    for mode in MODES:
        c = control_rates(results, mode)
        codes = ", ".join(f"{k} {v}" for k, v in c["codes"].items()) or "-"
        t.add_row(mode, str(c["n"]), f"{c['problem']:.0%}", f"{c['warning']:.0%}", codes)
    console.print(t)

    pairs = [r for r in results if "alignment" in r]
    bad = [r for r in pairs if not exact(r["alignment"])]
    t = Table(title="diff alignment (exact: offset 0 +-1 sample, no polarity flip)")
    for col in ("pairs", "exact", "piece vs itself", "not exact"):
        t.add_column(col, overflow="fold")
    selves = [r for r in pairs if r["kind"] == "untouched"]
    shown = "; ".join(
        f"{r['case']}: "
        + (
            r.get("diff_error", "refused")
            if r["alignment"] is None
            else f"{r['alignment']['offset_samples']:+.1f} smp"
            f"{' inverted' if r['alignment']['polarity'] < 0 else ''}"
            f" r={r['alignment']['correlation']:.2f}"
        )
        for r in bad
    )
    t.add_row(
        str(len(pairs)),
        str(len(pairs) - len(bad)),
        f"{sum(exact(r['alignment']) for r in selves)}/{len(selves)}",
        shown or "-",
    )
    console.print(t)

    t = Table(title="Goals of issue 17")
    for col in ("goal", "measured", "met"):
        t.add_column(col)
    for goal, measured, met in goals(results):
        t.add_row(goal, measured, "[green]yes[/]" if met else "[red]no[/]")
    console.print(t)


def separability(results: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Why a single file is hard: how far the harsh EQ moved each band relative to the
    body, against how far the untouched pieces already differ from one another in it.

    Per band (2-5 kHz, 5-10 kHz): the untouched pieces' range and standard deviation
    (n - 1), the median change over the harsh and combo cases, and d', that change
    over that deviation. With d' well under 2, no threshold on the band alone finds
    70 % of the boosts while leaving 95 % of untouched masters alone, whatever profile
    sets it; a BEFORE version removes the spread across pieces.
    """
    untouched = [r for r in results if r["kind"] == "untouched"]
    harsh = [r for r in results if r["family"] in ("harsh", "combo")]
    out = []
    for name, level_key, change_key in (
        ("2-5 kHz", "presence_minus_body_db", "presence_change_db"),
        ("5-10 kHz", "air_minus_body_db", "air_change_db"),
    ):
        levels = [r["measures"].get(level_key) for r in untouched]
        levels = [v for v in levels if v is not None]
        moved = _median([r["measures"][change_key] for r in harsh])
        if len(levels) < 2 or moved is None:
            continue
        sd = float(np.std(levels, ddof=1))
        if sd <= 0.0:
            continue
        out.append(
            {
                "band": name,
                "pieces": len(levels),
                "min_db": min(levels),
                "max_db": max(levels),
                "sd_db": sd,
                "moved_db": moved,
                "d_prime": moved / sd,
            }
        )
    return out


def write_cases(todo: Sequence[Case], out_dir: Path) -> None:
    """Each case as ``PIECE-FAMILY-VARIANT.wav`` beside its dry ``PIECE.wav`` (float WAV)."""
    import soundfile as sf

    out_dir.mkdir(parents=True, exist_ok=True)
    for c in todo:
        dry = _excerpt(c.piece_index)
        wet, _ = corpus.process(c.family, settings_of(c), dry)
        sf.write(str(out_dir / f"{c.piece.key}.wav"), dry, corpus.FS, subtype="FLOAT")
        name = f"{c.piece.key}-{c.family}-{c.variant}.wav"
        sf.write(str(out_dir / name), wet, corpus.FS, subtype="FLOAT")


def _median(values: Iterable[float | None]) -> float | None:
    v = [x for x in values if x is not None]
    return float(np.median(v)) if v else None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the bench (see the module docstring)."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="4 pieces, one variant per family")
    parser.add_argument("--seed", type=int, default=corpus.DEFAULT_SEED, help="settings seed")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write every case's result")
    parser.add_argument("--list", action="store_true", help="print every case's settings")
    parser.add_argument("--jobs", type=int, default=POOL, help="worker processes (default 2)")
    parser.add_argument(
        "--case",
        action="append",
        metavar="PIECE/FAMILY/VARIANT",
        help="judge only this case (repeatable), e.g. city-blues/harsh/0",
    )
    parser.add_argument(
        "--write",
        type=Path,
        metavar="DIR",
        help="also write each judged case and its dry excerpt as WAV (for earmark diff)",
    )
    args = parser.parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 160, highlight=False)

    missing = [p for p in corpus.PIECES if not corpus.excerpt_path(p).exists()]
    if missing:
        console.print(f"building the corpus ({len(missing)} excerpts missing) ...")
        corpus.build()
    t0 = time.perf_counter()
    todo = cases(args.seed, args.quick)
    if args.case:
        known = {c.key for c in cases(args.seed)}
        unknown = [k for k in args.case if k not in known]
        if unknown:
            parser.error(f"no case {unknown[0]!r}; e.g. {corpus.PIECES[0].key}/crush/0")
        todo = [c for c in cases(args.seed) if c.key in args.case]
    learned, notes = learned_profiles(corpus.CORPUS_DIR / "profiles")
    for note in notes:
        console.print(f"note: {note}", markup=False)
    console.print(
        f"{len(todo)} cases, seed {args.seed}: each piece's and family's settings come from"
        " np.random.default_rng([seed, piece, family]) (piece: corpus.PIECES index;"
        f" family: {', '.join(f'{i} {f}' for i, f in enumerate(corpus.FAMILIES))}),"
        " variants drawn in order; learned profiles: leave-one-out over the other untouched"
        " excerpts",
        markup=False,
    )
    results: list[dict[str, Any]] = []
    columns = (
        BarColumn(),
        "{task.completed}/{task.total}",
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with (
        Progress("[progress.description]{task.description}", *columns, console=console) as bar,
        ProcessPoolExecutor(max_workers=args.jobs) as pool,
    ):
        task = bar.add_task("judging", total=len(todo))
        futures = {pool.submit(run_case, c, learned[c.piece_index]): c for c in todo}
        for fut in as_completed(futures):
            results.append(fut.result())
            bar.update(task, advance=1, description=futures[fut].key)
    elapsed = time.perf_counter() - t0
    results.sort(key=lambda r: r["case"])
    report(results, console, args.list)
    console.print(
        f"{len(results)} cases judged in {elapsed / 60:.1f} min on {args.jobs} processes"
        f" (case median {np.median([r['seconds'] for r in results]):.1f} s)"
    )
    if args.write:
        write_cases(todo, args.write)
        console.print(f"wrote {len(todo)} cases and their dry excerpts to {args.write}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "seed": args.seed,
                    "quick": args.quick,
                    "elapsed_s": elapsed,
                    "goals": [{"goal": g, "measured": m, "met": ok} for g, m, ok in goals(results)],
                    "cases": results,
                },
                indent=1,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
