"""Real-time soak: the live engine on a JACK dummy server, against a plain-copy floor.

    .venv/bin/python bench/realtime.py [--seconds 600] [--floor-seconds 60] [--periods 64,32]

For each period size it starts a named JACK server (dummy backend, 48 kHz),
then runs in this one process:

1. the floor: a sounddevice duplex stream whose callback only copies input to
   output (the dummy driver itself misses deadlines on a VM; this is the
   baseline those misses set);
2. earmark: the demo session (dry mix, mix through the default chain, the
   aggressive master as reference; the chain is pedalboard's compressor, high
   shelf and limiter plus ZamCompX2 where the VST3 is installed), the full
   MeterBank on every path, A/B toggled every 3 s;
3. the same with the services `earmark demo` runs beside the audio in the same
   process (``--services``): live flags on every path (detectors in their worker
   process), the session log and snapshots into SQLite, the control socket, the
   dashboard's state frame (no window) and a MIDI controller (generic map, JACK
   MIDI ports). Their Python work competes with the callback for the GIL: this
   row measures what that costs. EARMARK_BENCH_SERVICES=flags,record,dashboard,midi
   picks a subset.

It prints callback duration p50/p99/p99.9/max as a share of the period (over
every callback after a 5 s warm-up, whose worst callback is printed apart),
xruns (PortAudio status flags) per run and per minute, how many of them
followed a callback that overran its period, CPU use and RSS at start and end.
Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
JACKD = ROOT / "scripts" / "jackd-dummy"
SERVER = f"earmark-bench-{os.getpid()}"
FS = 48000
WARMUP_S = 5.0

os.environ.update(
    JACK_DEFAULT_SERVER=SERVER, JACK_NO_START_SERVER="1", JACK_NO_AUDIO_RESERVATION="1"
)

import numpy as np


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def jack(cmd: str, period: int) -> None:
    subprocess.run(
        [str(JACKD), cmd, SERVER, str(FS), str(period)], check=True, stdout=subprocess.DEVNULL
    )


def reinit_portaudio():
    import sounddevice as sd

    sd._terminate()
    sd._initialize()
    return sd


def jack_device(sd) -> int:
    for i, d in enumerate(sd.query_devices()):
        api = sd.query_hostapis(d["hostapi"])["name"]
        if "JACK" in api and d["max_input_channels"] >= 2 and d["max_output_channels"] >= 2:
            return i
    raise RuntimeError("PortAudio sees no JACK device")


def floor_run(seconds: float, period: int) -> dict:
    sd = reinit_portaudio()
    n_max = int(seconds * FS / period) + 1000
    times = np.zeros(n_max, dtype=np.int64)
    state = {"n": 0, "xruns": 0}
    flagged = np.zeros(n_max, dtype=np.int64)
    clock = time.perf_counter_ns

    def callback(indata, outdata, frames, _t, status):
        t0 = clock()
        if status:
            flagged[min(state["xruns"], n_max - 1)] = state["n"]
            state["xruns"] += 1
        outdata[:] = indata
        i = state["n"]
        if i < n_max:
            times[i] = clock() - t0
        state["n"] = i + 1

    cpu0, rss0 = cpu_s(), rss_mb()
    with sd.Stream(
        device=jack_device(sd),
        samplerate=FS,
        blocksize=period,
        channels=2,
        dtype="float32",
        callback=callback,
    ):
        time.sleep(seconds)
    n = min(state["n"], n_max)
    return {
        "name": "plain copy (floor)",
        "us": times[:n] / 1000.0,
        "xruns": state["xruns"],
        "xrun_at": flagged[: min(state["xruns"], n_max)],
        "callbacks": state["n"],
        "cpu": (cpu_s() - cpu0) / seconds,
        "rss": (rss0, rss_mb()),
    }


def earmark_run(seconds: float, period: int, services: bool = False) -> dict:
    reinit_portaudio()
    import sounddevice as sd

    from earmark import live
    from earmark.engine.drivers import SoundDeviceDriver

    chain = "bench" if _write_bench_chain() else "gentle-master"
    engine = live.demo_engine(
        FS, chain=str(_BENCH_CHAIN) if chain == "bench" else chain, blocksize=period
    )
    driver = SoundDeviceDriver(engine, device=jack_device(sd), blocksize=period, channels=(2, 2))
    session = None
    if services:
        import tempfile

        os.environ["EARMARK_HOME"] = tempfile.mkdtemp(prefix="earmark-bench-home-")
        from earmark.flags_live import FlagService
        from earmark.recorder import record_live
        from earmark.session import LiveSession

        session = LiveSession(engine, driver, name="bench", say=None)
        which = os.environ.get("EARMARK_BENCH_SERVICES", "flags,record,dashboard,midi").split(",")
        if "flags" in which:
            session.add_service(FlagService(None, befores={1: 0, 2: 0}), name="flags")
        if "record" in which:
            record_live(session, "demo")
        if "dashboard" in which:
            from earmark.dashboard_service import DashboardService

            session.add_service(DashboardService(), name="dashboard")  # the frame, no window
        if "midi" in which:
            from earmark.cli_midi import load_surfaces

            for surface in load_surfaces(["generic"]) or []:
                session.add_service(surface, name="midi")
    cpu0, rss0 = cpu_s(), rss_mb()
    driver.start()
    if session is not None:
        session.start()
    start = time.monotonic()
    rss_warm = None
    toggles = 0
    # The engine keeps the last 65,536 callback durations (87 s at 64 frames): copy
    # them out as the soak goes, so the percentiles cover all of it.
    ring = engine.timings_ns
    every = np.zeros(int(seconds * FS / period * 1.1) + 10_000, dtype=np.int64)
    copied = 0

    def collect() -> int:
        done = min(engine.callbacks, len(every))
        rows = np.arange(copied, done)
        every[copied:done] = ring[rows & (len(ring) - 1)]
        return done

    try:
        while (elapsed := time.monotonic() - start) < seconds:
            time.sleep(3.0)
            engine.post("select", "toggle")
            toggles += 1
            engine.after_callback()
            copied = collect()
            if rss_warm is None and elapsed > 10:
                rss_warm = rss_mb()
    finally:
        if session is not None:
            session.stop()  # stops the driver too
        else:
            driver.stop()
    copied = collect()
    xrun_ring = engine.xrun_callbacks
    kept = min(engine.xruns, len(xrun_ring))
    return {
        "name": f"earmark ({len(engine.paths)} paths, chain {chain}, A/B x{toggles})"
        + (" + services" if services else ""),
        "us": every[:copied] / 1000.0,
        "xruns": engine.xruns,
        "xrun_at": np.sort(xrun_ring[:kept]),
        "callbacks": engine.callbacks,
        "cpu": (cpu_s() - cpu0) / seconds,
        "rss": (rss_warm or rss0, rss_mb()),
    }


_BENCH_CHAIN = ROOT / ".cache" / "bench-chain.toml"


def _write_bench_chain() -> bool:
    """The default chain plus ZamCompX2 when the VST3 is installed."""
    from earmark.engine.plugins import default_search_path, find_bundles

    if not any(b.name.startswith("ZamCompX2") for b in find_bundles(default_search_path())):
        return False
    _BENCH_CHAIN.parent.mkdir(parents=True, exist_ok=True)
    preset = (ROOT / "presets" / "chains" / "gentle-master.toml").read_text()
    preset = preset.replace('name = "gentle master"', 'name = "bench: gentle master + ZamCompX2"')
    preset += '\n[[plugin]]\nvst3 = "ZamCompX2"\nthreshold_db = -20.0\nratio = 2.0\n'
    _BENCH_CHAIN.write_text(preset)
    return True


def own_xruns(us: np.ndarray, xrun_at: np.ndarray, period_us: float) -> int:
    """xruns flagged right after a callback that itself ran longer than the period.

    PortAudio flags the callback *after* the cycle that missed its deadline; when
    the callback before it finished within the period, the deadline was missed
    by the server or the machine (the dummy driver's own timer, a descheduled
    vCPU), as the plain-copy floor's xruns are.
    """
    late = 0
    for c in xrun_at:
        c = int(c)
        if 0 < c <= len(us) and us[c - 1] > period_us:
            late += 1
    return late


def report(period: int, rows: list[dict]) -> None:
    period_us = period / FS * 1e6
    print(f"\nperiod {period} frames at {FS} Hz = {period_us:.0f} us")
    print(
        f"{'run':58} {'callbacks':>9} {'p50':>6} {'p99':>6} {'p99.9':>6} {'max':>7}"
        f" {'xruns':>6} {'/min':>5} {'own':>4} {'CPU':>5} {'RSS MB start->end':>18}"
    )
    for r in rows:
        # Steady state: the first seconds hold each plugin's and kernel's first calls
        # and first-touched pages (their worst callback is printed apart).
        warm = min(len(r["us"]) // 2, int(WARMUP_S * FS / period))
        us = r["us"][warm:]
        r["warmup_max"] = float(r["us"][:warm].max()) if warm else 0.0
        p50, p99, p999 = np.percentile(us, [50, 99, 99.9])
        pct = [100 * v / period_us for v in (p50, p99, p999, us.max())]
        per_min = r["xruns"] / (r["callbacks"] * period / FS / 60.0)
        own = own_xruns(r["us"], r["xrun_at"], period_us)
        print(
            f"{r['name']:58} {r['callbacks']:9d} {pct[0]:5.1f}% {pct[1]:5.1f}% {pct[2]:5.1f}%"
            f" {pct[3]:6.0f}% {r['xruns']:6d} {per_min:5.1f} {own:4d} {100 * r['cpu']:4.0f}%"
            f" {r['rss'][0]:8.1f} -> {r['rss'][1]:6.1f}"
        )
    print(
        "own: xruns right after a callback that overran the period (the rest were missed by\n"
        "the server or the machine, as the floor's are). Percentiles and max cover every\n"
        f"callback after the first {WARMUP_S:.0f} s; the worst callback of those first seconds:\n"
        + ", ".join(f"{100 * r['warmup_max'] / period_us:.0f}%" for r in rows)
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=600.0, help="earmark soak per period")
    ap.add_argument("--floor-seconds", type=float, default=60.0)
    ap.add_argument("--periods", default="64,32")
    ap.add_argument(
        "--services",
        action="store_true",
        help="also run with the session's services (flags, log, control) in the process",
    )
    args = ap.parse_args()
    for period in (int(p) for p in args.periods.split(",")):
        jack("start", period)
        try:
            soak = args.seconds if period == 64 else min(args.seconds, 120.0)
            rows = [floor_run(args.floor_seconds, period), earmark_run(soak, period)]
            if args.services:
                rows.append(earmark_run(soak, period, services=True))
        finally:
            # PortAudio's JACK client must go before its server (else it aborts at exit).
            import sounddevice as sd

            sd._terminate()
            jack("stop", period)
            sd._initialize()
        report(period, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
