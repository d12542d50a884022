"""What the GIL costs a Python audio callback, and what a GIL-free callback keeps.

    .venv/bin/python bench/gil.py [--seconds 20] [--period 64]

On a JACK dummy server (48 kHz), the same plain copy runs as

1. a sounddevice callback (Python, cffi: it takes the GIL every block), and
2. a numba ``cfunc`` handed to PortAudio's ``Pa_OpenStream`` directly (machine
   code: it never touches the GIL),

each with no other thread, then beside a thread that holds the GIL: in short
bytecode slices the interpreter can interrupt (``interruptible``, at the 0.1 ms switch
interval the engine's driver sets; like the meter thread and the session
services), and in long C calls it cannot
(``uninterruptible``; a big ``sum(range())``, like a pickle or a JSON dump of
a large object). It prints callbacks run against real time and the blocks
PortAudio flagged (xruns). This is the measurement behind the live engine's
native callback (``engine.native``), which never takes the GIL. Nothing is
asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numba as nb
import numpy as np
from numba import types as T
from realtime import FS, jack, jack_device, reinit_portaudio

_PA_FLOAT32 = 0x1


@nb.cfunc(
    T.int32(
        T.CPointer(T.float32),  # const void *input (interleaved float32)
        T.CPointer(T.float32),  # void *output
        T.uint64,  # unsigned long frameCount
        T.voidptr,  # const PaStreamCallbackTimeInfo *
        T.uint64,  # PaStreamCallbackFlags
        T.CPointer(T.int64),  # void *userData: [callbacks, flagged]
    ),
    nopython=True,
)
def _copy_callback(inp, out, frames, _time_info, status, stats):  # pragma: no cover - audio
    for i in range(frames * 2):
        out[i] = inp[i]
    stats[0] += 1
    if status != 0:
        stats[1] += 1
    return 0  # paContinue


def _hog(kind: str, stop: threading.Event) -> None:
    """Hold the GIL until stopped, in slices the interpreter can or cannot interrupt."""
    while not stop.is_set():
        if kind == "uninterruptible":
            sum(range(3_000_000))  # one C call, ~30-60 ms, no eval-breaker check inside
        else:
            x = 0
            for i in range(10_000):  # bytecode: yields at the switch interval
                x += i


def _python_run(seconds: float, period: int, hog: str | None) -> tuple[int, int]:
    sd = reinit_portaudio()
    counts = [0, 0]

    def callback(indata, outdata, frames, _t, status):
        if status:
            counts[1] += 1
        outdata[:] = indata
        counts[0] += 1

    stream = sd.Stream(
        device=jack_device(sd), samplerate=FS, blocksize=period, channels=2, dtype="float32",
        callback=callback,
    )  # fmt: skip
    with stream, _hogging(hog):
        time.sleep(seconds)
    return counts[0], counts[1]


def _cfunc_run(seconds: float, period: int, hog: str | None) -> tuple[int, int]:
    sd = reinit_portaudio()
    ffi, lib = sd._ffi, sd._lib
    device = jack_device(sd)
    info = sd.query_devices(device)
    directions = []
    for latency in (info["default_low_input_latency"], info["default_low_output_latency"]):
        p = ffi.new("PaStreamParameters*")
        p.device, p.channelCount, p.sampleFormat = device, 2, _PA_FLOAT32
        p.suggestedLatency, p.hostApiSpecificStreamInfo = latency, ffi.NULL
        directions.append(p)
    stats = np.zeros(2, np.int64)
    stream = ffi.new("PaStream**")
    callback = ffi.cast("PaStreamCallback*", _copy_callback.address)
    user = ffi.cast("void*", stats.ctypes.data)
    err = lib.Pa_OpenStream(stream, *directions, FS, period, 0, callback, user)
    if err:
        raise RuntimeError(ffi.string(lib.Pa_GetErrorText(err)).decode())
    lib.Pa_StartStream(stream[0])
    try:
        with _hogging(hog):
            time.sleep(seconds)
    finally:
        lib.Pa_StopStream(stream[0])
        lib.Pa_CloseStream(stream[0])
    return int(stats[0]), int(stats[1])


@contextlib.contextmanager
def _hogging(kind: str | None) -> Iterator[None]:
    """A thread holding the GIL the ``kind`` way for the duration (none for None)."""
    stop = threading.Event()
    thread = threading.Thread(target=_hog, args=(kind, stop), daemon=True)
    if kind:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        if kind:
            thread.join()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--period", type=int, default=64)
    args = ap.parse_args()
    sys.setswitchinterval(1e-4)  # as the engine's driver sets it while streaming
    jack("start", args.period)
    expected = args.seconds * FS / args.period
    print(f"JACK dummy, {FS} Hz, {args.period} frames, {args.seconds:.0f} s per row")
    print(
        f"{'callback':22} {'GIL held by another thread':28} {'callbacks':>9}"
        f" {'of real time':>12} {'xruns':>6}"
    )
    try:
        for name, run in (("Python (sounddevice)", _python_run), ("numba cfunc", _cfunc_run)):
            for hog in (None, "interruptible", "uninterruptible"):
                n, flagged = run(args.seconds, args.period, hog)
                print(f"{name:22} {hog or 'no':28} {n:9d} {n / expected:12.0%} {flagged:6d}")
    finally:
        import sounddevice as sd

        sd._terminate()  # PortAudio's JACK client goes before its server
        jack("stop", args.period)
    return 0


if __name__ == "__main__":
    sys.exit(main())
