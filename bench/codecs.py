"""Codec cost: encode + decode + meter seconds per minute of stereo audio, per codec.

    .venv/bin/python bench/codecs.py [--seconds 60] [--repeat 2]

Prints one table on the demo's 48 kHz stereo master (engine.demo): per codec, the
seconds one round trip (encode, decode, delay found and removed) takes per minute
of programme, the seconds of the whole ``--codecs`` measure (the round trip, the
meters, and the ceiling search that encodes again), and the speed as x real time.
"live" is what the live codec monitor's host process spends streaming the same
programme through the codec in 64-frame blocks (engine.codec.StreamCodec, the host's
meters not included), as seconds per minute and as the share of one core it keeps
busy; Vorbis is offline-only. Best of ``--repeat``. Nothing here is asserted; tests do not run it.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

from earmark.engine.codec import LIVE_CODECS, StreamCodec, calibrate
from earmark.engine.demo import aggressive_master, demo_mix
from earmark.offline.analysis import analyze
from earmark.offline.codecs import CODECS, codec_result, round_trip

SR = 48000
BLOCK = 64  # the live monitor's blocks (the live commands' default)


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
    print(
        f"{'codec':<12}{'round trip':>12}{'x RT':>8}{'full measure':>14}{'x RT':>8}"
        f"{'live (64)':>11}{'core':>7}"
    )
    x32 = x.astype("float32")
    for name in CODECS:
        trip = best_of(args.repeat, lambda n=name: round_trip(x, SR, n))
        full = best_of(args.repeat, lambda n=name: codec_result(x, SR, n, original))
        live = ""
        if name in LIVE_CODECS:
            prefill, _ = calibrate(CODECS[name], SR, BLOCK)

            def stream(n: str = name, p: int = prefill) -> None:
                codec = StreamCodec(CODECS[n], SR, p)
                for i in range(0, len(x32) - BLOCK + 1, BLOCK):
                    codec.process(x32[i : i + BLOCK])

            t = best_of(args.repeat, stream)
            live = f"{t * per_minute:>11.2f}{100 * t / args.seconds:>6.0f}%"
        print(
            f"{name:<12}{trip * per_minute:>12.2f}{args.seconds / trip:>8.0f}"
            f"{full * per_minute:>14.2f}{args.seconds / full:>8.0f}{live}"
        )


if __name__ == "__main__":
    main()
