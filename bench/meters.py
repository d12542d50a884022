"""Meter throughput: earmark's MeterBank against the reference tools, same input, one run.

    .venv/bin/python bench/meters.py [--seconds 600] [--repeat 3]

Prints one table: each tool's wall time on the same 48 kHz stereo programme
(best of --repeat), its speed as x real time and as a ratio to libebur128
(I + LRA + true peak), and the values it measured, then the per-block cost of
the full bank at live block sizes. Nothing here is asserted; CI does not run it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import soundfile as sf

from earmark.engine.demo import demo_mix
from earmark.meters import MeterBank

FS = 48000


def best_of(repeat: int, fn: Callable[[], dict]) -> tuple[float, dict]:
    best, out = float("inf"), {}
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def earmark_bank(x: np.ndarray, *, spectrum: bool, chunk: int = 65536) -> dict:
    bank = MeterBank(2, FS, spectrum=spectrum)
    for i in range(0, len(x), chunk):
        bank.process(x[i : i + chunk])
    r = bank.readings()
    return {"I": r.integrated_lufs, "LRA": r.loudness_range_lu, "TP": r.true_peak_dbtp}


def libebur128(x: np.ndarray) -> dict:
    import pyebur128

    mode = (
        pyebur128.MeasurementMode.MODE_I
        | pyebur128.MeasurementMode.MODE_LRA
        | pyebur128.MeasurementMode.MODE_TRUE_PEAK
    )
    st = pyebur128.R128State(2, FS, mode)
    flat = x.reshape(-1)
    st.add_frames(flat, len(x))
    tp = max(pyebur128.get_true_peak(st, c) for c in range(2))
    return {
        "I": pyebur128.get_loudness_global(st),
        "LRA": pyebur128.get_loudness_range(st),
        "TP": 20 * np.log10(tp),
    }


def pyloudnorm_integrated(x: np.ndarray) -> dict:
    import pyloudnorm

    return {"I": pyloudnorm.Meter(FS).integrated_loudness(x)}


def ffmpeg_ebur128(path: Path) -> dict:
    proc = subprocess.run(
        ["ffmpeg", "-nostats", "-hide_banner", "-i", str(path), "-filter_complex",
         "ebur128=peak=true", "-f", "null", "-"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    out: dict = {}
    summary = proc.stderr[proc.stderr.rfind("Summary:") :]
    for line in summary.splitlines():
        parts = line.split()
        if parts[:1] == ["I:"]:
            out["I"] = float(parts[1])
        elif parts[:1] == ["LRA:"]:
            out["LRA"] = float(parts[1])
        elif parts[:1] == ["Peak:"]:
            out["TP"] = float(parts[1])
    return out


def per_block_cost(x: np.ndarray, block: int, seconds: float = 30.0) -> np.ndarray:
    bank = MeterBank(2, FS)
    bank.process(x[:block])  # compiled already; warm the caches
    n = int(seconds * FS) // block
    times = np.empty(n)
    clock = time.perf_counter_ns
    for k in range(n):
        b = x[k * block : (k + 1) * block]
        t0 = clock()
        bank.process(b)
        times[k] = clock() - t0
    return times / 1000.0


def fmt(v: float | None, nd: int = 2) -> str:
    return "-" if v is None else f"{v:.{nd}f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=600.0)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    print(f"generating {args.seconds:.0f} s of the demo mix at {FS} Hz stereo ...", flush=True)
    x = demo_mix(seconds=args.seconds, sample_rate=FS)
    x32 = np.ascontiguousarray(x, dtype=np.float32)
    x64 = x32.astype(np.float64)

    # Compile and warm up outside the timings.
    earmark_bank(x32[: FS * 4], spectrum=True)
    earmark_bank(x32[: FS * 4], spectrum=False)

    rows: list[tuple[str, str, float, dict]] = []
    t, out = best_of(args.repeat, lambda: libebur128(x32))
    rows.append(("libebur128 1.2.6 (pyebur128)", "I + LRA + TP (4x)", t, out))
    ref_time = t
    t, out = best_of(args.repeat, lambda: earmark_bank(x32, spectrum=False))
    rows.append(("earmark MeterBank", "I+M+S + LRA + TP + PSR/DR/stereo", t, out))
    t, out = best_of(args.repeat, lambda: earmark_bank(x32, spectrum=True))
    rows.append(("earmark MeterBank", "full bank (+ 1/3-oct spectrum)", t, out))
    t, out = best_of(1, lambda: pyloudnorm_integrated(x64))
    rows.append(("pyloudnorm", "I only", t, out))
    if shutil.which("ffmpeg"):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "bench.wav"
            sf.write(path, x32, FS, subtype="FLOAT")
            t, out = best_of(args.repeat, lambda: ffmpeg_ebur128(path))
            rows.append(("ffmpeg ebur128 peak=true", "I + LRA + TP, incl. WAV decode", t, out))
    else:
        print("(ffmpeg not found: `make bench` installs it)")

    print()
    print(f"{args.seconds:.0f} s, 48 kHz stereo, one thread, best of {args.repeat}")
    head = f"{'tool':30} {'measures':36} {'time s':>7} {'x real':>7} {'vs libebur128':>13}"
    print(head + f" {'I LUFS':>8} {'LRA LU':>7} {'TP dBTP':>8}")
    print("-" * (len(head) + 26))
    for name, what, secs, out in rows:
        print(
            f"{name:30} {what:36} {secs:7.2f} {args.seconds / secs:7.0f} {ref_time / secs:12.2f}x"
            f" {fmt(out.get('I')):>8} {fmt(out.get('LRA')):>7} {fmt(out.get('TP')):>8}"
        )

    print()
    print("full bank per live block (30 s of blocks, after warm-up)")
    print(
        f"{'block':>6} {'period us':>10} {'p50 us':>8} {'p99 us':>8} {'p99.9 us':>9}"
        f" {'max us':>8} {'p99 % of period':>16}"
    )
    for block in (32, 64, 128, 256, 1024):
        us = per_block_cost(x32, block)
        period = block / FS * 1e6
        p50, p99, p999 = np.percentile(us, [50, 99, 99.9])
        print(
            f"{block:6d} {period:10.0f} {p50:8.1f} {p99:8.1f} {p999:9.1f} {us.max():8.1f}"
            f" {100 * p99 / period:15.1f}%"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
