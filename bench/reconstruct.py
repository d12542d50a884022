"""How often `diff --chain` reconstructs a master: pedalboard masters of real music, checked.

    .venv/bin/python bench/reconstruct.py [--seed N] [--pieces K1,K2] [--families F1,F2]
                                          [--variants N]

For each excerpt of the judgement corpus (``bench/corpus.py`` builds ``.cache/corpus``)
and each family, a master is made in memory with pedalboard at settings drawn from a
seeded Generator (one per seed, piece and family: a case replays from those three):

- ``gain``: one Gain, -8..+4 dB;
- ``shelf``: a low (60-250 Hz) or high (2.5-10 kHz) shelf of +-2..8 dB;
- ``bell``: a bell at 150 Hz-8 kHz, +-2..8 dB, Q 0.5-2;
- ``comp_limiter``: the corpus's ``crush`` chain (compressor, make-up, JUCE limiter, ceiling);
- ``gentle``: the corpus's gentle compression (ratio 1.3-2.5, slow) with make-up;
- ``combo``: the corpus's ``combo`` (a harsh shelf or bell, then the crush chain) with a
  low shelf in front.

Each master is diffed against its mix (:func:`earmark.diff`), reconstructed
(:func:`earmark.offline.reconstruct.reconstruct`) and checked; the bench prints, per
family, the pass rate and which criteria failed, then the time per case. Nothing is
asserted: the numbers go in the report (issue 20 asks for at least 90 %).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import corpus

FAMILIES = ("gain", "shelf", "bell", "comp_limiter", "gentle", "combo")


def _run(plugins: list[Any], audio: np.ndarray) -> np.ndarray:
    import pedalboard as pb

    y = pb.Pedalboard(plugins)(np.ascontiguousarray(audio.T, dtype=np.float32), corpus.FS)
    return np.ascontiguousarray(y.T, dtype=np.float32)


def _signed(rng: np.random.Generator, low: float, high: float) -> float:
    return float(rng.uniform(low, high) * (1 if rng.random() < 0.5 else -1))


def master(family: str, rng: np.random.Generator, index: int, audio: np.ndarray) -> tuple:
    """(MASTER, what was done) for one case."""
    import pedalboard as pb

    if family == "gain":
        g = float(rng.uniform(-8.0, 4.0))
        return _run([pb.Gain(g)], audio), f"gain {g:+.1f} dB"
    if family == "shelf":
        low = rng.random() < 0.5
        f = float(rng.uniform(60.0, 250.0) if low else rng.uniform(2500.0, 10000.0))
        g = _signed(rng, 2.0, 8.0)
        cls = pb.LowShelfFilter if low else pb.HighShelfFilter
        return _run(
            [cls(f, g, 0.707)], audio
        ), f"{'low' if low else 'high'} shelf {f:.0f} Hz {g:+.1f} dB"
    if family == "bell":
        f = float(np.exp(rng.uniform(np.log(150.0), np.log(8000.0))))
        g, q = _signed(rng, 2.0, 8.0), float(rng.uniform(0.5, 2.0))
        return _run([pb.PeakFilter(f, g, q)], audio), f"bell {f:.0f} Hz {g:+.1f} dB Q {q:.1f}"
    seed_family = {"comp_limiter": "crush", "gentle": "control", "combo": "combo"}[family]
    settings = corpus.draw_settings(int(rng.integers(1 << 30)), index, seed_family, audio)
    if family == "gentle":
        s = settings[1]
        out, _ = corpus.process("control", s, audio)
        return out, f"gentle {s['ratio']:.1f}:1 at {s['threshold_db']:.0f} dBFS"
    s = settings[0]
    if family == "combo":
        f, g = float(rng.uniform(80.0, 250.0)), _signed(rng, 2.0, 5.0)
        audio = _run([pb.LowShelfFilter(f, g, 0.707)], audio)
        out, _ = corpus.process("combo", s, audio)
        return out, f"low shelf {f:.0f} Hz {g:+.1f} dB, {corpus.describe('combo', s)}"
    out, _ = corpus.process("crush", s, audio)
    return out, corpus.describe("crush", s)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--pieces", default="", help="comma-separated keys (default: all)")
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--variants", type=int, default=1, help="cases per piece and family")
    args = parser.parse_args(argv)
    from earmark.offline.reconstruct import reconstruct
    from earmark.offline.transform import diff

    keys = [k for k in args.pieces.split(",") if k] or [p.key for p in corpus.PIECES]
    families = [f for f in args.families.split(",") if f]
    results: dict[str, list[bool]] = defaultdict(list)
    failures: dict[str, Counter] = defaultdict(Counter)
    t0 = time.perf_counter()
    cases = 0
    for index, p in enumerate(corpus.PIECES):
        if p.key not in keys:
            continue
        mix = corpus.load_excerpt(p)
        for family in families:
            rng = np.random.default_rng([args.seed, index, FAMILIES.index(family)])
            for _ in range(args.variants):
                y, what = master(family, rng, index, mix)
                t = diff(mix, y, sample_rate=corpus.FS, force=True)
                rec = reconstruct(t, mix, corpus.FS, t.after)
                fid = rec.fidelity
                cases += 1
                results[family].append(fid.passed)
                missed = [c.label for c in fid.failed]
                for c in fid.failed:
                    failures[family]["band" if c.key.startswith("band_") else c.label] += 1
                verdict = (
                    "pass"
                    if fid.passed
                    else "FAIL "
                    + ", ".join(
                        f"{c.label} {c.difference:+.2f}" if c.difference is not None else c.label
                        for c in fid.failed
                    )
                )
                print(
                    f"{p.key:20s} {family:13s} {what:60s} rounds {rec.rounds}  {verdict}",
                    flush=True,
                )
                del missed
    elapsed = time.perf_counter() - t0
    print()
    total = [ok for v in results.values() for ok in v]
    for family in families:
        v = results.get(family, [])
        if not v:
            continue
        rate = 100.0 * sum(v) / len(v)
        missed = ", ".join(f"{k} x{n}" for k, n in failures[family].most_common()) or "-"
        print(f"{family:13s} {sum(v):3d}/{len(v):3d} pass ({rate:5.1f} %)  failing: {missed}")
    if total:
        print(
            f"{'all':13s} {sum(total):3d}/{len(total):3d} pass "
            f"({100.0 * sum(total) / len(total):5.1f} %)"
        )
    print(f"{cases} cases in {elapsed:.0f} s ({elapsed / max(cases, 1):.1f} s per case)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
