"""Codec cost: encode + decode + meter seconds per minute of stereo audio, per codec.

    .venv/bin/python bench/codecs.py [--seconds 60] [--repeat 2]

Prints one table on the demo's 48 kHz stereo master (engine.demo): per codec, the
seconds one round trip (encode, decode, delay found and removed) takes per minute
of programme, the seconds of the whole ``--codecs`` measure (the round trip, the
meters, and the ceiling search that encodes again), and the speed as x real time.
Best of ``--repeat``. Nothing here is asserted; tests do not run it.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

from earmark.engine.demo import aggressive_master, demo_mix
from earmark.offline.analysis import analyze
from earmark.offline.codecs import CODECS, codec_result, round_trip

SR = 48000


def best_of(repeat: int, run) -> float:
    """The fastest of ``repeat`` runs of ``run()``, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="programme length")
    parser.add_argument("--repeat", type=int, default=2, help="runs per codec (best kept)")
    args = parser.parse_args()
    x = aggressive_master(demo_mix(seconds=args.seconds, sample_rate=SR), SR)
    original = analyze(x, sample_rate=SR)
    per_minute = 60.0 / args.seconds
    print(
        f"{args.seconds:g} s of 48 kHz stereo (the demo's aggressive master), best of"
        f" {args.repeat}; seconds per minute of audio"
    )
    print(f"{'codec':<12}{'round trip':>12}{'x RT':>8}{'full measure':>14}{'x RT':>8}")
    for name in CODECS:
        trip = best_of(args.repeat, lambda n=name: round_trip(x, SR, n))
        full = best_of(args.repeat, lambda n=name: codec_result(x, SR, n, original))
        print(
            f"{name:<12}{trip * per_minute:>12.2f}{args.seconds / trip:>8.0f}"
            f"{full * per_minute:>14.2f}{args.seconds / full:>8.0f}"
        )


if __name__ == "__main__":
    main()
